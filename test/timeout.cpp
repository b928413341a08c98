#include <fanout/timeout.hpp>

#include <boost/test/unit_test.hpp>

#include "support/co_test.hpp"
#include "support/outcomes.hpp"

#include <fanout/error.hpp>
#include <fanout/run.hpp>
#include <fanout/sleep.hpp>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/cancellation_signal.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/thread_pool.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/use_future.hpp>
#include <boost/system/system_error.hpp>

#include <atomic>
#include <chrono>
#include <exception>
#include <future>
#include <memory>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

// Every suite sits in its own top-level suite (and namespace): the suites are
// compiled together in unity batches (test/CMakeLists.txt).
BOOST_AUTO_TEST_SUITE(timeout_tests)

namespace asio = boost::asio;
using namespace std::chrono_literals;
using fanout::test::code_of;
using fanout::test::emit_after;
using fanout::test::is_timed_out;
using fanout::test::seconds_since;
using fanout::test::throws_after;
using fanout::test::timed_out;
using fanout::test::unit;
using fanout::test::value_after;

namespace {

// Awaits @p op and gives the error code it failed with (success if none).
template <typename T>
asio::awaitable<boost::system::error_code> error_of(asio::awaitable<T> op)
{
  try {
    if constexpr (std::is_void_v<T>)
      co_await std::move(op);
    else
      (void)co_await std::move(op);
  } catch (const boost::system::system_error& e) {
    co_return e.code();
  } catch (...) {
    co_return asio::error::fault;
  }
  co_return boost::system::error_code{};
}

// What an operation under a deadline went through.
struct op_record
{
  std::atomic<bool> started{false};
  std::atomic<bool> aborted{false};  // it saw operation_aborted
  std::atomic<bool> finished{false}; // it reached its end (whatever it did there)
};

// Sleeps for @p delay and records whether the sleep was cancelled.
asio::awaitable<int> recorded_sleep(std::shared_ptr<op_record> record, fanout::clock::duration delay, int value)
{
  record->started = true;
  try {
    co_await fanout::sleep(delay);
  } catch (const boost::system::system_error& e) {
    record->aborted = e.code() == asio::error::operation_aborted;
    record->finished = true;
    throw;
  }
  record->finished = true;
  co_return value;
}

asio::awaitable<void> recorded_void_sleep(std::shared_ptr<op_record> record, fanout::clock::duration delay)
{
  (void)co_await recorded_sleep(std::move(record), delay, 0);
}

// Ignores cancellation for a while: when its sleep is cancelled, it goes on
// sleeping @p cleanup without being interruptible, then rethrows (or returns
// @p value_after_cleanup if @p swallow).
asio::awaitable<int> slow_to_cancel(std::shared_ptr<op_record> record, fanout::clock::duration cleanup, bool swallow)
{
  record->started = true;
  bool aborted = false;
  try {
    co_await fanout::sleep(10s);
  } catch (const boost::system::system_error& e) {
    aborted = e.code() == asio::error::operation_aborted;
  }
  record->aborted = aborted;
  co_await asio::this_coro::reset_cancellation_state();
  co_await fanout::sleep(cleanup);
  record->finished = true;
  if (!swallow)
    throw boost::system::system_error(asio::error::operation_aborted, "slow_to_cancel");
  co_return 99;
}

// Blocks its thread for @p block first (the event loop cannot run the timer
// meanwhile), then sleeps long.
asio::awaitable<int> blocks_then_sleeps(std::shared_ptr<op_record> record, fanout::clock::duration block)
{
  record->started = true;
  std::this_thread::sleep_for(block);
  record->finished = true;
  co_await fanout::sleep(10s);
  co_return 1;
}

asio::awaitable<int> throws_aborted_after(fanout::clock::duration delay)
{
  co_await fanout::sleep(delay);
  throw boost::system::system_error(asio::error::operation_aborted, "own abort");
}

} // namespace

BOOST_AUTO_TEST_SUITE(finishing_first)

FANOUT_CO_TEST_CASE(with_timeout_returns_the_value_of_an_operation_that_finishes_first_without_waiting_for_the_timer)
{
  const auto start = fanout::clock::now();
  const int value = co_await fanout::with_timeout(value_after(unit, 42), 10s);
  BOOST_TEST(value == 42);
  FANOUT_CHECK_ELAPSED(seconds_since(start), unit);
}

FANOUT_CO_TEST_CASE(with_timeout_of_a_void_operation_that_finishes_first_completes_normally)
{
  auto record = std::make_shared<op_record>();
  const auto start = fanout::clock::now();
  co_await fanout::with_timeout(recorded_void_sleep(record, unit), 10s);
  BOOST_TEST(record->finished.load());
  BOOST_TEST(!record->aborted.load());
  FANOUT_CHECK_ELAPSED(seconds_since(start), unit);
}

FANOUT_CO_TEST_CASE(with_timeout_passes_the_operations_exception_through_unchanged)
{
  const auto start = fanout::clock::now();
  BOOST_CHECK_EXCEPTION((void)co_await fanout::with_timeout(throws_after(unit), 10s), std::runtime_error,
                        [](const std::runtime_error& e) { return std::string(e.what()) == "boom"; });
  FANOUT_CHECK_ELAPSED(seconds_since(start), unit);
}

FANOUT_CO_TEST_CASE(
    an_operation_aborted_thrown_by_the_operation_itself_before_the_deadline_is_not_turned_into_timed_out)
{
  const auto code = co_await error_of(fanout::with_timeout(throws_aborted_after(1ms), 10s));
  BOOST_TEST(code == asio::error::operation_aborted);
  BOOST_TEST(code != timed_out());
}

FANOUT_CO_TEST_CASE(many_short_operations_under_a_timeout_each_give_their_own_value)
{
  for (int i = 0; i < 50; ++i)
    BOOST_TEST(co_await fanout::with_timeout(value_after(0ms, i), 10s) == i);
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(expiring)

FANOUT_CO_TEST_CASE(with_timeout_cancels_a_long_operation_and_throws_timed_out_long_before_it_would_end)
{
  auto record = std::make_shared<op_record>();
  const auto start = fanout::clock::now();
  bool threw = false;
  try {
    (void)co_await fanout::with_timeout(recorded_sleep(record, 10s, 1), unit);
  } catch (const boost::system::system_error& e) {
    threw = true;
    BOOST_TEST(e.code() == timed_out());
    BOOST_TEST(e.code() != asio::error::operation_aborted);
    BOOST_TEST(std::string(e.code().category().name()) == "fanout");
  }
  BOOST_TEST(threw);
  BOOST_TEST(record->aborted.load());  // the operation itself saw the cancellation
  BOOST_TEST(record->finished.load()); // and had ended before the error was delivered
  FANOUT_CHECK_ELAPSED(seconds_since(start), unit);
}

FANOUT_CO_TEST_CASE(with_timeout_of_a_void_operation_throws_timed_out_on_expiry)
{
  auto record = std::make_shared<op_record>();
  const auto start = fanout::clock::now();
  BOOST_CHECK_EXCEPTION(co_await fanout::with_timeout(recorded_void_sleep(record, 10s), unit),
                        boost::system::system_error, is_timed_out);
  BOOST_TEST(record->aborted.load());
  FANOUT_CHECK_ELAPSED(seconds_since(start), unit);
}

FANOUT_CO_TEST_CASE(an_operation_that_ignores_cancellation_for_a_while_is_waited_for_before_timed_out_is_delivered)
{
  auto record = std::make_shared<op_record>();
  const auto start = fanout::clock::now();
  const auto code = co_await error_of(fanout::with_timeout(slow_to_cancel(record, 2 * unit, false), unit));
  const double elapsed = seconds_since(start);
  BOOST_TEST(code == timed_out());
  BOOST_TEST(record->aborted.load());
  BOOST_TEST(record->finished.load());     // never abandoned while it still ran
  FANOUT_CHECK_ELAPSED(elapsed, 3 * unit); // the timeout, then its two-unit cleanup
}

FANOUT_CO_TEST_CASE(an_operation_that_returns_a_value_after_its_deadline_expired_delivers_that_value)
{
  // The header: "fails with timed_out — unless op still returned a value,
  // which is then delivered".
  auto record = std::make_shared<op_record>();
  const auto start = fanout::clock::now();
  const int value = co_await fanout::with_timeout(slow_to_cancel(record, unit, true), unit);
  BOOST_TEST(value == 99);
  BOOST_TEST(record->aborted.load());
  BOOST_TEST(record->finished.load());
  FANOUT_CHECK_ELAPSED(seconds_since(start), 2 * unit);
}

FANOUT_CO_TEST_CASE(an_operation_blocking_past_its_timeout_is_cancelled_at_its_next_suspension_and_waited_for)
{
  auto record = std::make_shared<op_record>();
  const auto start = fanout::clock::now();
  const auto code = co_await error_of(fanout::with_timeout(blocks_then_sleeps(record, 3 * unit), unit));
  const double elapsed = seconds_since(start);
  BOOST_TEST(code == timed_out());
  BOOST_TEST(record->finished.load());
  FANOUT_CHECK_ELAPSED(elapsed, 3 * unit); // the blocking step, not the 10 s sleep after it
}

FANOUT_CO_TEST_CASE(with_deadline_returns_the_value_before_the_deadline_and_throws_timed_out_after_it)
{
  auto start = fanout::clock::now();
  BOOST_TEST(co_await fanout::with_deadline(value_after(unit, 5), start + 10s) == 5);
  FANOUT_CHECK_ELAPSED(seconds_since(start), unit);

  auto record = std::make_shared<op_record>();
  start = fanout::clock::now();
  const auto code = co_await error_of(fanout::with_deadline(recorded_sleep(record, 10s, 1), start + 2 * unit));
  BOOST_TEST(code == timed_out());
  BOOST_TEST(record->aborted.load());
  FANOUT_CHECK_ELAPSED(seconds_since(start), 2 * unit);
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(never_starting)

FANOUT_CO_TEST_CASE(a_zero_timeout_fails_with_timed_out_without_starting_the_operation)
{
  auto record = std::make_shared<op_record>();
  const auto start = fanout::clock::now();
  const auto code = co_await error_of(fanout::with_timeout(recorded_sleep(record, 1ms, 1), 0ms));
  BOOST_TEST(code == timed_out());
  FANOUT_CHECK_ELAPSED(seconds_since(start), 0ms);
  co_await fanout::sleep(unit); // had it been started, it would have finished by now
  BOOST_TEST(!record->started.load());
}

FANOUT_CO_TEST_CASE(a_negative_timeout_fails_with_timed_out_without_starting_the_operation)
{
  auto record = std::make_shared<op_record>();
  const auto code = co_await error_of(fanout::with_timeout(recorded_sleep(record, 1ms, 1), -1s));
  BOOST_TEST(code == timed_out());
  co_await fanout::sleep(unit);
  BOOST_TEST(!record->started.load());
}

FANOUT_CO_TEST_CASE(a_deadline_already_past_fails_with_timed_out_without_starting_the_operation)
{
  auto record = std::make_shared<op_record>();
  const auto code =
      co_await error_of(fanout::with_deadline(recorded_sleep(record, 1ms, 1), fanout::clock::now() - 1ms));
  BOOST_TEST(code == timed_out());
  auto void_record = std::make_shared<op_record>();
  const auto void_code =
      co_await error_of(fanout::with_deadline(recorded_void_sleep(void_record, 1ms), fanout::clock::now() - 1h));
  BOOST_TEST(void_code == timed_out());
  co_await fanout::sleep(unit);
  BOOST_TEST(!record->started.load());
  BOOST_TEST(!void_record->started.load());
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(outer_cancellation)

FANOUT_CO_TEST_CASE(cancelling_the_awaiting_coroutine_cancels_the_operation_with_operation_aborted_not_timed_out)
{
  auto ex = co_await asio::this_coro::executor;
  auto record = std::make_shared<op_record>();
  asio::cancellation_signal signal;
  asio::steady_timer canceller(ex);
  const auto start = fanout::clock::now();
  emit_after(canceller, signal, unit);
  auto [e, value] =
      co_await asio::co_spawn(ex, fanout::with_timeout(recorded_sleep(record, 10s, 1), 10s),
                              asio::bind_cancellation_slot(signal.slot(), asio::as_tuple(asio::use_awaitable)));
  BOOST_TEST(code_of(e) == asio::error::operation_aborted);
  BOOST_TEST(code_of(e) != timed_out());
  BOOST_TEST(value == 0);
  BOOST_TEST(record->aborted.load());
  BOOST_TEST(record->finished.load());
  FANOUT_CHECK_ELAPSED(seconds_since(start), unit);
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(callback_form)

BOOST_AUTO_TEST_CASE(async_with_deadline_calls_the_callback_with_the_value_on_the_io_context_never_inside_the_call,
                     *boost::unit_test::timeout(60))
{
  asio::io_context ctx;
  int calls = 0;
  std::exception_ptr error;
  int got = 0;
  double called_after = -1.0;
  const auto start = fanout::clock::now();
  fanout::async_with_deadline(ctx.get_executor(), value_after(unit, 7), start + 10s,
                              [&](std::exception_ptr e, int value) {
                                ++calls;
                                error = e;
                                got = value;
                                called_after = seconds_since(start);
                              });
  BOOST_TEST(calls == 0);
  ctx.run();
  BOOST_TEST(calls == 1);
  BOOST_TEST(!error);
  BOOST_TEST(got == 7);
  FANOUT_CHECK_ELAPSED(called_after, unit); // ctx.run() did not wait for the 10 s timer either
}

BOOST_AUTO_TEST_CASE(async_with_deadline_calls_the_callback_with_timed_out_when_the_deadline_passes,
                     *boost::unit_test::timeout(60))
{
  asio::io_context ctx;
  auto record = std::make_shared<op_record>();
  int calls = 0;
  std::exception_ptr error;
  int got = -1;
  const auto start = fanout::clock::now();
  fanout::async_with_deadline(ctx.get_executor(), recorded_sleep(record, 10s, 1), start + unit,
                              [&](std::exception_ptr e, int value) {
                                ++calls;
                                error = e;
                                got = value;
                              });
  ctx.run();
  BOOST_TEST(calls == 1);
  BOOST_TEST(code_of(error) == timed_out());
  BOOST_TEST(got == 0);
  BOOST_TEST(record->aborted.load());
  FANOUT_CHECK_ELAPSED(seconds_since(start), unit);
}

BOOST_AUTO_TEST_CASE(async_with_deadline_of_a_void_operation_calls_back_with_only_an_exception_pointer,
                     *boost::unit_test::timeout(60))
{
  asio::io_context ctx;
  auto fast = std::make_shared<op_record>();
  auto slow = std::make_shared<op_record>();
  std::vector<boost::system::error_code> codes;
  fanout::async_with_deadline(ctx.get_executor(), recorded_void_sleep(fast, 1ms), fanout::clock::now() + 10s,
                              [&](std::exception_ptr e) { codes.push_back(code_of(e)); });
  fanout::async_with_deadline(ctx.get_executor(), recorded_void_sleep(slow, 10s), fanout::clock::now() + unit,
                              [&](std::exception_ptr e) { codes.push_back(code_of(e)); });
  const auto start = fanout::clock::now();
  ctx.run();
  BOOST_TEST_REQUIRE(codes.size() == 2u);
  BOOST_TEST(!codes[0]);
  BOOST_TEST(codes[1] == timed_out());
  BOOST_TEST(fast->finished.load());
  BOOST_TEST(slow->aborted.load());
  FANOUT_CHECK_ELAPSED(seconds_since(start), unit);
}

BOOST_AUTO_TEST_CASE(async_with_deadline_past_deadline_calls_back_with_timed_out_never_inside_the_call,
                     *boost::unit_test::timeout(60))
{
  asio::io_context ctx;
  auto record = std::make_shared<op_record>();
  int calls = 0;
  std::exception_ptr error;
  fanout::async_with_deadline(ctx.get_executor(), recorded_sleep(record, 1ms, 1), fanout::clock::now() - 1s,
                              [&](std::exception_ptr e, int) {
                                ++calls;
                                error = e;
                              });
  BOOST_TEST(calls == 0);
  ctx.run();
  BOOST_TEST(calls == 1);
  BOOST_TEST(code_of(error) == timed_out());
  BOOST_TEST(!record->started.load());
}

BOOST_AUTO_TEST_CASE(async_with_deadline_forwards_each_cancellation_type_through_the_handlers_slot,
                     *boost::unit_test::timeout(60))
{
  for (auto type :
       {asio::cancellation_type::terminal, asio::cancellation_type::partial, asio::cancellation_type::total}) {
    BOOST_TEST_CONTEXT("cancellation type " << static_cast<int>(type))
    {
      asio::io_context ctx;
      asio::cancellation_signal signal;
      asio::steady_timer canceller(ctx);
      emit_after(canceller, signal, unit, type);
      auto record = std::make_shared<op_record>();
      // The operation lets every cancellation type through, so that what is
      // forwarded to it reaches its sleep.
      auto op = [](std::shared_ptr<op_record> r) -> asio::awaitable<int> {
        co_await asio::this_coro::reset_cancellation_state(asio::enable_total_cancellation());
        co_return co_await recorded_sleep(std::move(r), 10s, 1);
      };
      std::exception_ptr error;
      int calls = 0;
      const auto start = fanout::clock::now();
      fanout::async_with_deadline(ctx.get_executor(), op(record), start + 10s,
                                  asio::bind_cancellation_slot(signal.slot(), [&](std::exception_ptr e, int) {
                                    ++calls;
                                    error = e;
                                  }));
      ctx.run();
      BOOST_TEST(calls == 1);
      BOOST_TEST(code_of(error) == asio::error::operation_aborted);
      BOOST_TEST(record->aborted.load());
      FANOUT_CHECK_ELAPSED(seconds_since(start), unit);
    }
  }
}

BOOST_AUTO_TEST_CASE(async_with_deadline_with_use_future_delivers_the_value_and_the_timeout,
                     *boost::unit_test::timeout(60))
{
  asio::io_context ctx;
  auto guard = asio::make_work_guard(ctx);
  std::thread runner([&ctx] { ctx.run(); });
  std::future<int> fast = fanout::async_with_deadline(ctx.get_executor(), value_after(1ms, 3),
                                                      fanout::clock::now() + 10s, asio::use_future);
  std::future<int> slow = fanout::async_with_deadline(ctx.get_executor(), value_after(10s, 4),
                                                      fanout::clock::now() + unit, asio::use_future);
  BOOST_TEST(fast.get() == 3);
  BOOST_CHECK_EXCEPTION(slow.get(), boost::system::system_error, is_timed_out);
  guard.reset();
  runner.join();
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(threads)

BOOST_AUTO_TEST_CASE(timeouts_on_a_thread_pool_give_values_and_timed_out_as_expected, *boost::unit_test::timeout(60))
{
  asio::thread_pool pool(4);
  constexpr int n = 40;
  auto body = []() -> asio::awaitable<std::vector<int>> {
    // Even items finish at once under a generous timeout, odd ones sleep far
    // past a short one.
    std::vector<int> out;
    for (int i = 0; i < n; ++i) {
      const bool even = i % 2 == 0;
      try {
        out.push_back(co_await fanout::with_timeout(value_after(even ? 0ms : 10s, i), even ? 10s : 5ms));
      } catch (const boost::system::system_error& e) {
        out.push_back(e.code() == fanout::error::timed_out ? -1 : -2);
      }
    }
    co_return out;
  };
  const auto start = fanout::clock::now();
  std::vector<std::future<std::vector<int>>> futures;
  for (int k = 0; k < 4; ++k)
    futures.push_back(asio::co_spawn(pool, body(), asio::use_future));
  for (auto& f : futures) {
    const auto out = f.get();
    BOOST_TEST_REQUIRE(out.size() == static_cast<std::size_t>(n));
    for (int i = 0; i < n; ++i)
      BOOST_TEST(out[static_cast<std::size_t>(i)] == (i % 2 == 0 ? i : -1));
  }
  BOOST_TEST(seconds_since(start) < 5.0); // 20 sequential 5 ms timeouts per coroutine, never a 10 s sleep
  pool.join();
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE_END() // timeout_tests
