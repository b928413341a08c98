#include <fanout/cancel_scope.hpp>

#include <boost/test/unit_test.hpp>

#include "support/cancel_when.hpp"
#include "support/co_test.hpp"
#include "support/group.hpp"
#include "support/outcomes.hpp"
#include "support/tracker.hpp"

#include <fanout/error.hpp>
#include <fanout/run.hpp>
#include <fanout/sleep.hpp>
#include <fanout/timeout.hpp>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/cancellation_signal.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/error.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/system/system_error.hpp>

#include <atomic>
#include <chrono>
#include <exception>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>

// fanout::shield, move_on_after and move_on_at: an operation that finishes
// although its caller was cancelled, and a time limit that cancels the
// operation, waits for it and gives an empty result instead of failing.
// Coroutine cases marked GROUP_TEST_CASE run on one thread and on a 4-thread
// pool (support/group.hpp); cancellation comes from the caller's strand.
//
// Every suite sits in its own top-level suite (and namespace): the suites are
// compiled together in unity batches (test/CMakeLists.txt).
BOOST_AUTO_TEST_SUITE(cancel_scope_tests)

namespace asio = boost::asio;
using namespace std::chrono_literals;
using fanout::test::cancel_after;
using fanout::test::code_of;
using fanout::test::exception_of;
using fanout::test::in_flight;
using fanout::test::message_of;
using fanout::test::seconds_since;
using fanout::test::throws_after;
using fanout::test::tracked_sleep;
using fanout::test::tracked_value;
using fanout::test::tracker;
using fanout::test::unit;

namespace {

// Sleeps 10 s; when cancelled, still returns @p value (it handles its
// cancellation). In flight in @p t meanwhile.
asio::awaitable<int> returns_when_cancelled(tracker& t, int value)
{
  const in_flight guard(t);
  try {
    co_await fanout::sleep(10s);
  } catch (const boost::system::system_error&) {
    ++t.aborted;
  }
  co_return value;
}

// Sleeps 10 s; when cancelled, goes on for @p cleanup with its cancellation
// state reset (a second cancellation cuts that short), then fails with
// operation_aborted.
asio::awaitable<int> slow_to_give_up(tracker& t, fanout::clock::duration cleanup)
{
  const in_flight guard(t);
  try {
    co_await fanout::sleep(10s);
  } catch (const boost::system::system_error&) {
    ++t.aborted;
  }
  co_await asio::this_coro::reset_cancellation_state();
  co_await fanout::sleep(cleanup);
  throw boost::system::system_error(asio::error::operation_aborted, "slow_to_give_up");
}

} // namespace

BOOST_AUTO_TEST_SUITE(shielding)

GROUP_TEST_CASE(a_shielded_operation_finishes_while_its_caller_is_cancelled_and_the_caller_then_sees_operation_aborted)
{
  tracker t;
  const auto start = fanout::clock::now();
  const auto e = co_await cancel_after(fanout::shield(tracked_value(t, 3 * unit, 7)), unit);
  BOOST_TEST(code_of(e) == asio::error::operation_aborted);
  BOOST_TEST(t.finished.load() == 1); // ran to its end: the cancellation never reached it
  BOOST_TEST(t.aborted.load() == 0);
  BOOST_TEST(t.now.load() == 0);                        // and had finished when the caller resumed
  FANOUT_CHECK_ELAPSED(seconds_since(start), 3 * unit); // not at the cancellation, one unit in
}

GROUP_TEST_CASE(a_shielded_operation_that_no_cancellation_reaches_gives_its_value)
{
  tracker t;
  const int value = co_await fanout::shield(tracked_value(t, 1ms, 42));
  BOOST_TEST(value == 42);
  co_await fanout::shield(tracked_sleep(t, 1ms));
  BOOST_TEST(t.finished.load() == 2);
}

GROUP_TEST_CASE(a_shielded_operations_own_failure_is_rethrown_even_if_the_caller_was_cancelled)
{
  tracker t;
  const auto uncancelled = co_await exception_of(fanout::shield(throws_after(t, 1ms, "own failure")));
  BOOST_TEST(message_of(uncancelled) == "own failure");
  const auto cancelled = co_await cancel_after(fanout::shield(throws_after(t, 3 * unit, "own failure")), unit);
  BOOST_TEST(message_of(cancelled) == "own failure");
  BOOST_TEST(t.now.load() == 0);
}

GROUP_TEST_CASE(a_shielded_void_operation_finishes_while_its_caller_is_cancelled)
{
  tracker t;
  const auto e = co_await cancel_after(fanout::shield(tracked_sleep(t, 3 * unit)), unit);
  BOOST_TEST(code_of(e) == asio::error::operation_aborted);
  BOOST_TEST(t.finished.load() == 1);
  BOOST_TEST(t.now.load() == 0);
}

namespace {

// A caller cancelled before it cleans up: it turns Asio's check at co_await
// off, then runs its cleanup shielded; gives the cleanup's value.
asio::awaitable<int> cleanup_after_cancellation(tracker& t)
{
  try {
    co_await fanout::sleep(10s);
  } catch (const boost::system::system_error&) {
  }
  co_await asio::this_coro::throw_if_cancelled(false);
  co_return co_await fanout::shield(tracked_value(t, unit, 5));
}

} // namespace

GROUP_TEST_CASE(a_caller_cancelled_before_it_cleans_up_runs_its_shielded_cleanup_to_the_end_and_gets_its_value)
{
  tracker t;
  auto strand = asio::make_strand(co_await asio::this_coro::executor);
  asio::cancellation_signal signal;
  asio::steady_timer timer(strand);
  fanout::test::emit_after(timer, signal, unit);
  // The cancellation came before the shield: only one that comes while the
  // cleanup runs would make it throw.
  const auto [e, value] =
      co_await asio::co_spawn(strand, cleanup_after_cancellation(t),
                              asio::bind_cancellation_slot(signal.slot(), asio::as_tuple(asio::use_awaitable)));
  BOOST_TEST(!e);
  BOOST_TEST(value == 5);
  BOOST_TEST(t.finished.load() == 1);
}

BOOST_AUTO_TEST_CASE(shielded_operations_on_a_four_thread_pool_always_finish_and_report_each_cancellation,
                     *boost::unit_test::timeout(120))
{
  constexpr int rounds = 40;
  fanout::test::run_on_pool([]() -> asio::awaitable<void> {
    for (int round = 0; round < rounds; ++round) {
      BOOST_TEST_CONTEXT("round " << round)
      {
        // Shared with the canceller's timer handlers, which may outlive the round.
        const auto t = std::make_shared<tracker>();
        // Cancelled 0 to 2 ms after a 1 ms operation started: at once, while
        // it runs, as it ends or after.
        const auto cancel_at = std::chrono::microseconds(round % 5 * 500);
        const auto started = [t] { return t->started.load() > 0; };
        const auto [e, value] = co_await fanout::test::cancel_once_started(
            fanout::shield(tracked_value(*t, 1ms, round)), started, cancel_at);
        BOOST_TEST(t->finished.load() == 1);
        BOOST_TEST(t->now.load() == 0);
        if (e)
          BOOST_TEST(code_of(e) == asio::error::operation_aborted);
        else
          BOOST_TEST(value == round);
      }
    }
  }());
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(moving_on)

GROUP_TEST_CASE(move_on_after_gives_the_value_of_an_operation_that_finishes_in_time)
{
  tracker t;
  const std::optional<int> value = co_await fanout::move_on_after(10s, tracked_value(t, 1ms, 9));
  BOOST_TEST(value.has_value());
  BOOST_TEST(value.value_or(-1) == 9);
  BOOST_TEST(t.finished.load() == 1);
}

GROUP_TEST_CASE(move_on_after_cancels_a_slow_operation_waits_for_it_and_gives_an_empty_optional)
{
  tracker t;
  const auto start = fanout::clock::now();
  const std::optional<int> value = co_await fanout::move_on_after(unit, tracked_value(t, 10s, 9));
  const int in_flight_on_return = t.now.load();
  FANOUT_CHECK_ELAPSED(seconds_since(start), unit);
  BOOST_TEST(!value.has_value());
  BOOST_TEST(t.aborted.load() == 1);    // it was cancelled...
  BOOST_TEST(in_flight_on_return == 0); // ...and had finished before move_on_after returned
  BOOST_TEST(t.finished.load() == 0);
}

GROUP_TEST_CASE(move_on_after_waits_for_a_slow_operation_that_is_slow_to_give_up)
{
  tracker t;
  const auto start = fanout::clock::now();
  const std::optional<int> value = co_await fanout::move_on_after(unit, slow_to_give_up(t, 2 * unit));
  BOOST_TEST(t.now.load() == 0);
  FANOUT_CHECK_ELAPSED(seconds_since(start), 3 * unit);
  BOOST_TEST(!value.has_value());
  BOOST_TEST(t.aborted.load() == 1);
}

GROUP_TEST_CASE(move_on_after_gives_a_value_that_a_cancelled_operation_still_returned)
{
  tracker t;
  const std::optional<int> value = co_await fanout::move_on_after(unit, returns_when_cancelled(t, 11));
  BOOST_TEST(t.aborted.load() == 1);
  BOOST_TEST(value.value_or(-1) == 11);
}

GROUP_TEST_CASE(move_on_after_a_void_operation_tells_whether_it_completed)
{
  tracker t;
  const bool fast = co_await fanout::move_on_after(10s, tracked_sleep(t, 1ms));
  const bool slow = co_await fanout::move_on_after(unit, tracked_sleep(t, 10s));
  BOOST_TEST(fast);
  BOOST_TEST(!slow);
  BOOST_TEST(t.finished.load() == 1);
  BOOST_TEST(t.aborted.load() == 1);
  BOOST_TEST(t.now.load() == 0);
}

GROUP_TEST_CASE(move_on_after_rethrows_the_operations_own_failure)
{
  tracker t;
  const auto e = co_await exception_of(fanout::move_on_after(10s, throws_after(t, 1ms, "own failure")));
  BOOST_TEST(message_of(e) == "own failure");
}

GROUP_TEST_CASE(a_timed_out_error_of_the_operation_itself_is_rethrown_and_not_taken_for_the_deadline)
{
  tracker t;
  // The inner with_timeout expires first: its timed_out is the operation's
  // own failure, which move_on_after must not swallow.
  const auto e = co_await exception_of(fanout::move_on_after(10s, fanout::with_timeout(tracked_sleep(t, 10s), unit)));
  BOOST_TEST(code_of(e) == fanout::test::timed_out());
  BOOST_TEST(t.now.load() == 0);
}

GROUP_TEST_CASE(move_on_after_rethrows_operation_aborted_when_the_caller_is_cancelled)
{
  tracker t;
  const auto start = fanout::clock::now();
  const auto e = co_await cancel_after(fanout::move_on_after(10s, tracked_value(t, 10s, 1)), unit);
  FANOUT_CHECK_ELAPSED(seconds_since(start), unit);
  BOOST_TEST(code_of(e) == asio::error::operation_aborted);
  BOOST_TEST(t.aborted.load() == 1); // the operation was cancelled and has finished
  BOOST_TEST(t.now.load() == 0);
}

GROUP_TEST_CASE(move_on_after_rethrows_the_callers_cancellation_even_after_the_deadline_passed)
{
  tracker t;
  // Deadline at 1 unit: the operation takes 4 more to give up; the caller is
  // cancelled 2 units in, while it does.
  const auto e = co_await cancel_after(fanout::move_on_after(unit, slow_to_give_up(t, 4 * unit)), 2 * unit);
  BOOST_TEST(code_of(e) == asio::error::operation_aborted);
  BOOST_TEST(t.now.load() == 0);
}

GROUP_TEST_CASE(move_on_at_a_deadline_already_past_gives_an_empty_result_without_starting_the_operation)
{
  tracker t;
  const std::optional<int> value = co_await fanout::move_on_at(fanout::clock::now() - 1s, tracked_value(t, 1ms, 3));
  const bool done = co_await fanout::move_on_after(0s, tracked_sleep(t, 1ms));
  BOOST_TEST(!value.has_value());
  BOOST_TEST(!done);
  BOOST_TEST(t.started.load() == 0);
}

GROUP_TEST_CASE(move_on_at_gives_the_value_before_its_deadline_and_nothing_after)
{
  tracker t;
  const auto fast = co_await fanout::move_on_at(fanout::clock::now() + 10s, tracked_value(t, 1ms, 4));
  const auto slow = co_await fanout::move_on_at(fanout::clock::now() + unit, tracked_value(t, 10s, 5));
  BOOST_TEST(fast.value_or(-1) == 4);
  BOOST_TEST(!slow.has_value());
  BOOST_TEST(t.now.load() == 0);
}

BOOST_AUTO_TEST_CASE(move_on_after_on_a_four_thread_pool_gives_fast_values_and_leaves_nothing_running,
                     *boost::unit_test::timeout(120))
{
  constexpr int rounds = 40;
  fanout::test::run_on_pool([]() -> asio::awaitable<void> {
    for (int round = 0; round < rounds; ++round) {
      BOOST_TEST_CONTEXT("round " << round)
      {
        tracker t;
        const bool fast = round % 2 == 0;
        const auto value = co_await fanout::move_on_after(fast ? 10s : 2ms, tracked_value(t, fast ? 1ms : 10s, round));
        BOOST_TEST(t.now.load() == 0);
        if (fast)
          BOOST_TEST(value.value_or(-1) == round);
        else
          BOOST_TEST(!value.has_value());
      }
    }
  }());
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE_END() // cancel_scope_tests
