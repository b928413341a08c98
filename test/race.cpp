#include <fanout/race.hpp>

#include <boost/test/unit_test.hpp>

#include "support/co_test.hpp"

#include <fanout/error.hpp>
#include <fanout/run.hpp>
#include <fanout/sleep.hpp>

#include <boost/asio/awaitable.hpp>
#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/cancellation_signal.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/error.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/thread_pool.hpp>
#include <boost/asio/use_future.hpp>
#include <boost/system/system_error.hpp>

#include <atomic>
#include <chrono>
#include <exception>
#include <future>
#include <stdexcept>
#include <string>
#include <vector>

// Every suite sits in its own top-level suite (and namespace): the suites are
// compiled together in unity batches (test/CMakeLists.txt).
BOOST_AUTO_TEST_SUITE(race_tests)

namespace {

namespace asio = boost::asio;
using fanout::test::unit;

// Counts the entrants still running, and those that ended by cancellation.
struct scoreboard
{
  std::atomic<int> running{0};
  std::atomic<int> cancelled{0};
  std::atomic<int> finished{0};
};

asio::awaitable<std::string> entrant(scoreboard& board, std::chrono::milliseconds delay, std::string value)
{
  ++board.running;
  try {
    co_await fanout::sleep(delay);
  } catch (const boost::system::system_error& e) {
    --board.running;
    if (e.code() == asio::error::operation_aborted)
      ++board.cancelled;
    throw;
  }
  --board.running;
  ++board.finished;
  co_return value;
}

asio::awaitable<std::string> failing_after(std::chrono::milliseconds delay, const char* what)
{
  co_await fanout::sleep(delay);
  throw std::runtime_error(what);
}

} // namespace

BOOST_AUTO_TEST_SUITE(winning)

FANOUT_CO_TEST_CASE(the_first_to_finish_wins_and_the_others_are_cancelled_and_waited_for)
{
  scoreboard board;
  const auto start = std::chrono::steady_clock::now();
  std::vector<asio::awaitable<std::string>> ops;
  ops.push_back(entrant(board, 4 * unit, "slow"));
  ops.push_back(entrant(board, unit, "fast"));
  ops.push_back(entrant(board, 8 * unit, "slowest"));
  const auto [index, value] = co_await fanout::race(std::move(ops));
  BOOST_TEST(index == 1u);
  BOOST_TEST(value == "fast");
  FANOUT_CHECK_ELAPSED(fanout::test::seconds_since(start), unit);
  BOOST_TEST(board.running == 0); // nothing left running when race returns
  BOOST_TEST(board.cancelled == 2);
  BOOST_TEST(board.finished == 1);
}

FANOUT_CO_TEST_CASE(race_takes_operations_one_by_one_too)
{
  scoreboard board;
  const auto [index, value] =
      co_await fanout::race(entrant(board, 3 * unit, "a"), entrant(board, unit, "b"), entrant(board, 2 * unit, "c"));
  BOOST_TEST(index == 1u);
  BOOST_TEST(value == "b");
  BOOST_TEST(board.running == 0);
}

FANOUT_CO_TEST_CASE(a_single_operation_wins_with_its_value)
{
  scoreboard board;
  const auto [index, value] = co_await fanout::race(entrant(board, std::chrono::milliseconds(1), "only"));
  BOOST_TEST(index == 0u);
  BOOST_TEST(value == "only");
}

FANOUT_CO_TEST_CASE(a_race_of_void_operations_gives_the_winners_index)
{
  std::vector<asio::awaitable<void>> ops;
  ops.push_back(fanout::sleep(3 * unit));
  ops.push_back(fanout::sleep(unit));
  const std::size_t index = co_await fanout::race(std::move(ops));
  BOOST_TEST(index == 1u);
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(failing)

FANOUT_CO_TEST_CASE(a_failure_does_not_win_when_another_operation_succeeds_later)
{
  scoreboard board;
  std::vector<asio::awaitable<std::string>> ops;
  ops.push_back(failing_after(std::chrono::milliseconds(1), "early failure"));
  ops.push_back(entrant(board, unit, "late success"));
  const auto [index, value] = co_await fanout::race(std::move(ops));
  BOOST_TEST(index == 1u);
  BOOST_TEST(value == "late success");
}

// The failure's message, as race's aggregate_error keeps it.
std::string what_of(const std::exception_ptr& e)
{
  try {
    std::rethrow_exception(e);
  } catch (const std::exception& error) {
    return error.what();
  } catch (...) {
    return "?";
  }
}

FANOUT_CO_TEST_CASE(when_every_operation_fails_race_throws_an_aggregate_error_with_every_failure_in_index_order)
{
  std::vector<asio::awaitable<std::string>> ops;
  ops.push_back(failing_after(2 * unit, "second"));
  ops.push_back(failing_after(unit, "first"));
  try {
    co_await fanout::race(std::move(ops));
    BOOST_FAIL("race did not throw");
  } catch (const fanout::aggregate_error& e) {
    BOOST_TEST_REQUIRE(e.errors().size() == 2u);
    BOOST_TEST(e.errors()[0].first == 0u);
    BOOST_TEST(what_of(e.errors()[0].second) == "second");
    BOOST_TEST(e.errors()[1].first == 1u);
    BOOST_TEST(what_of(e.errors()[1].second) == "first");
  }
}

FANOUT_CO_TEST_CASE(a_single_failing_operation_gives_an_aggregate_error_of_one_failure)
{
  try {
    co_await fanout::race(failing_after(std::chrono::milliseconds(1), "only"));
    BOOST_FAIL("race did not throw");
  } catch (const fanout::aggregate_error& e) {
    BOOST_TEST_REQUIRE(e.errors().size() == 1u);
    BOOST_TEST(e.errors()[0].first == 0u);
    BOOST_TEST(what_of(e.errors()[0].second) == "only");
  }
}

FANOUT_CO_TEST_CASE(an_empty_race_fails_with_invalid_argument)
{
  try {
    co_await fanout::race(std::vector<asio::awaitable<int>>{});
    BOOST_FAIL("race did not throw");
  } catch (const boost::system::system_error& e) {
    BOOST_TEST(e.code() == fanout::make_error_code(fanout::error::invalid_argument));
  }
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(cancelling)

BOOST_AUTO_TEST_CASE(cancelling_the_awaiting_coroutine_cancels_every_operation_and_throws_operation_aborted)
{
  asio::io_context ctx(1);
  scoreboard board;
  asio::cancellation_signal signal;
  std::exception_ptr outcome;
  bool completed = false;
  std::vector<asio::awaitable<std::string>> ops;
  ops.push_back(entrant(board, 40 * unit, "a"));
  ops.push_back(entrant(board, 40 * unit, "b"));
  asio::co_spawn(ctx, fanout::race(std::move(ops)),
                 asio::bind_cancellation_slot(signal.slot(), [&](std::exception_ptr e, auto) {
                   completed = true;
                   outcome = e;
                   BOOST_TEST(board.running == 0); // waited for before completing
                 }));
  const auto start = std::chrono::steady_clock::now();
  ctx.run_for(unit);
  signal.emit(asio::cancellation_type::terminal);
  ctx.run();
  BOOST_TEST(completed);
  BOOST_TEST(fanout::test::seconds_since(start) < 10 * std::chrono::duration<double>(unit).count());
  BOOST_TEST(board.cancelled == 2);
  BOOST_REQUIRE(outcome);
  try {
    std::rethrow_exception(outcome);
  } catch (const boost::system::system_error& e) {
    BOOST_TEST(e.code() == asio::error::operation_aborted);
  }
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(threads)

BOOST_AUTO_TEST_CASE(a_race_on_a_four_thread_pool_has_exactly_one_winner_and_leaves_nothing_running)
{
  asio::thread_pool pool(4);
  for (int round = 0; round < 20; ++round) {
    scoreboard board;
    std::vector<asio::awaitable<std::string>> ops;
    for (int i = 0; i < 8; ++i)
      ops.push_back(entrant(board, std::chrono::milliseconds(i == 5 ? 1 : 200), std::to_string(i)));
    auto result = asio::co_spawn(pool, fanout::race(std::move(ops)), asio::use_future).get();
    BOOST_TEST(result.first == 5u);
    BOOST_TEST(result.second == "5");
    BOOST_TEST(board.running == 0);
    BOOST_TEST(board.finished == 1);
  }
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE_END() // race_tests
