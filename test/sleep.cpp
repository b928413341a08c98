#include <fanout/sleep.hpp>

#include <boost/test/unit_test.hpp>

#include "support/co_test.hpp"
#include "support/outcomes.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/cancellation_signal.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/deferred.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/use_future.hpp>
#include <boost/system/system_error.hpp>

#include <chrono>
#include <exception>
#include <future>
#include <thread>
#include <variant>

// Every suite sits in its own top-level suite (and namespace): the suites are
// compiled together in unity batches (test/CMakeLists.txt).
BOOST_AUTO_TEST_SUITE(sleep_tests)

namespace asio = boost::asio;
using namespace std::chrono_literals;
using fanout::test::code_of;
using fanout::test::emit_after;
using fanout::test::seconds_since;
using fanout::test::unit;

namespace {

asio::awaitable<void> long_sleep()
{
  co_await fanout::sleep(10s);
}

} // namespace

BOOST_AUTO_TEST_SUITE(coroutine_sleep)

FANOUT_CO_TEST_CASE(sleep_suspends_for_about_the_requested_duration)
{
  const auto start = fanout::clock::now();
  co_await fanout::sleep(unit);
  FANOUT_CHECK_ELAPSED(seconds_since(start), unit);
}

FANOUT_CO_TEST_CASE(sleep_accepts_any_duration_type)
{
  const auto start = fanout::clock::now();
  co_await fanout::sleep(std::chrono::duration<double>(0.05));
  FANOUT_CHECK_ELAPSED(seconds_since(start), 50ms);
}

FANOUT_CO_TEST_CASE(sleep_until_a_future_deadline_resumes_at_that_deadline)
{
  const auto start = fanout::clock::now();
  const auto deadline = start + 2 * unit;
  co_await fanout::sleep_until(deadline);
  BOOST_TEST((fanout::clock::now() >= deadline));
  FANOUT_CHECK_ELAPSED(seconds_since(start), 2 * unit);
}

FANOUT_CO_TEST_CASE(sleep_until_a_past_deadline_completes_at_once)
{
  const auto start = fanout::clock::now();
  co_await fanout::sleep_until(start - 10s);
  FANOUT_CHECK_ELAPSED(seconds_since(start), 0ms);
}

FANOUT_CO_TEST_CASE(sleep_until_a_past_deadline_resumes_through_the_executor_not_inline)
{
  // A handler posted before the sleep runs before the coroutine resumes: the
  // completion went through the executor's queue.
  bool posted_ran = false;
  asio::post(co_await asio::this_coro::executor, [&posted_ran] { posted_ran = true; });
  co_await fanout::sleep_until(fanout::clock::now() - 1s);
  BOOST_TEST(posted_ran);
}

FANOUT_CO_TEST_CASE(sleep_of_zero_duration_completes_at_once)
{
  const auto start = fanout::clock::now();
  co_await fanout::sleep(0ms);
  co_await fanout::sleep(fanout::clock::duration::zero());
  FANOUT_CHECK_ELAPSED(seconds_since(start), 0ms);
}

FANOUT_CO_TEST_CASE(sleep_of_negative_duration_completes_at_once)
{
  const auto start = fanout::clock::now();
  co_await fanout::sleep(-1ms);
  co_await fanout::sleep(-10s);
  FANOUT_CHECK_ELAPSED(seconds_since(start), 0ms);
}

FANOUT_CO_TEST_CASE(consecutive_sleeps_add_up)
{
  const auto start = fanout::clock::now();
  for (int i = 0; i < 3; ++i)
    co_await fanout::sleep(unit);
  FANOUT_CHECK_ELAPSED(seconds_since(start), 3 * unit);
}

FANOUT_CO_TEST_CASE(sleep_ends_early_with_operation_aborted_when_cancelled)
{
  auto ex = co_await asio::this_coro::executor;
  asio::cancellation_signal signal;
  asio::steady_timer canceller(ex);
  const auto start = fanout::clock::now();
  emit_after(canceller, signal, unit);

  auto [e] = co_await asio::co_spawn(ex, long_sleep(),
                                     asio::bind_cancellation_slot(signal.slot(), asio::as_tuple(asio::use_awaitable)));
  BOOST_TEST(static_cast<bool>(e));
  BOOST_TEST(code_of(e) == asio::error::operation_aborted);
  FANOUT_CHECK_ELAPSED(seconds_since(start), unit);
}

FANOUT_CO_TEST_CASE(sleep_throws_a_system_error_with_operation_aborted_inside_the_cancelled_coroutine)
{
  auto ex = co_await asio::this_coro::executor;
  asio::cancellation_signal signal;
  asio::steady_timer canceller(ex);
  const auto start = fanout::clock::now(); // before the canceller's clock starts
  emit_after(canceller, signal, unit);

  boost::system::error_code seen;
  bool caught = false;
  bool continued_past_sleep = false;
  auto body = [&]() -> asio::awaitable<void> {
    try {
      co_await fanout::sleep(10s);
      continued_past_sleep = true;
    } catch (const boost::system::system_error& error) {
      caught = true;
      seen = error.code();
    }
  };
  auto [e] = co_await asio::co_spawn(ex, body(),
                                     asio::bind_cancellation_slot(signal.slot(), asio::as_tuple(asio::use_awaitable)));
  BOOST_TEST(!e); // handled inside
  BOOST_TEST(caught);
  BOOST_TEST(!continued_past_sleep);
  BOOST_TEST(seen == asio::error::operation_aborted);
  FANOUT_CHECK_ELAPSED(seconds_since(start), unit);
}

FANOUT_CO_TEST_CASE(sleep_losing_a_race_with_a_shorter_sleep_is_cancelled_with_operation_aborted)
{
  using namespace asio::experimental::awaitable_operators;
  boost::system::error_code seen;
  auto watched = [&]() -> asio::awaitable<void> {
    try {
      co_await fanout::sleep(10s);
    } catch (const boost::system::system_error& error) {
      seen = error.code();
      throw;
    }
  };
  const auto start = fanout::clock::now();
  auto winner = co_await (watched() || fanout::sleep(unit));
  BOOST_TEST(winner.index() == 1U);
  BOOST_TEST(seen == asio::error::operation_aborted);
  FANOUT_CHECK_ELAPSED(seconds_since(start), unit);
}

FANOUT_CO_TEST_CASE(sleep_is_cancelled_by_total_cancellation_when_the_coroutine_lets_it_through)
{
  auto ex = co_await asio::this_coro::executor;
  asio::cancellation_signal signal;
  asio::steady_timer canceller(ex);
  const auto start = fanout::clock::now(); // before the canceller is armed
  emit_after(canceller, signal, unit, asio::cancellation_type::total);

  auto body = []() -> asio::awaitable<void> {
    co_await asio::this_coro::reset_cancellation_state(asio::enable_total_cancellation());
    co_await fanout::sleep(10s);
  };
  auto [e] = co_await asio::co_spawn(ex, body(),
                                     asio::bind_cancellation_slot(signal.slot(), asio::as_tuple(asio::use_awaitable)));
  BOOST_TEST(code_of(e) == asio::error::operation_aborted);
  FANOUT_CHECK_ELAPSED(seconds_since(start), unit);
}

FANOUT_CO_TEST_CASE(sleep_can_be_restarted_after_a_cancellation_is_handled)
{
  auto ex = co_await asio::this_coro::executor;
  asio::cancellation_signal signal;
  asio::steady_timer canceller(ex);
  const auto start = fanout::clock::now(); // before the canceller's clock starts
  emit_after(canceller, signal, unit);

  bool aborted = false;
  auto body = [&]() -> asio::awaitable<int> {
    try {
      co_await fanout::sleep(10s);
    } catch (const boost::system::system_error& error) {
      aborted = error.code() == asio::error::operation_aborted;
    }
    co_await asio::this_coro::reset_cancellation_state();
    co_await fanout::sleep(unit);
    co_return 7;
  };
  auto [e, value] = co_await asio::co_spawn(
      ex, body(), asio::bind_cancellation_slot(signal.slot(), asio::as_tuple(asio::use_awaitable)));
  BOOST_TEST(!e);
  BOOST_TEST(aborted);
  BOOST_TEST(value == 7);
  FANOUT_CHECK_ELAPSED(seconds_since(start), 2 * unit);
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(callback_sleep)

BOOST_AUTO_TEST_CASE(async_sleep_calls_the_callback_with_success_after_the_duration, *boost::unit_test::timeout(60))
{
  asio::io_context ctx;
  bool called = false;
  boost::system::error_code result = asio::error::would_block;
  double called_after = -1.0;
  const auto start = fanout::clock::now();
  fanout::async_sleep(ctx.get_executor(), unit, [&](boost::system::error_code ec) {
    called = true;
    result = ec;
    called_after = seconds_since(start);
  });
  BOOST_TEST(!called); // never inside the call
  ctx.run();
  BOOST_TEST(called);
  BOOST_TEST(!result);
  FANOUT_CHECK_ELAPSED(called_after, unit);
}

BOOST_AUTO_TEST_CASE(async_sleep_of_zero_or_negative_duration_completes_at_once_but_never_inside_the_call,
                     *boost::unit_test::timeout(60))
{
  asio::io_context ctx;
  int calls = 0;
  int successes = 0;
  auto handler = [&](boost::system::error_code ec) {
    ++calls;
    if (!ec)
      ++successes;
  };
  const auto start = fanout::clock::now();
  fanout::async_sleep(ctx.get_executor(), 0ms, handler);
  fanout::async_sleep(ctx.get_executor(), -5s, handler);
  BOOST_TEST(calls == 0);
  ctx.run();
  BOOST_TEST(calls == 2);
  BOOST_TEST(successes == 2);
  FANOUT_CHECK_ELAPSED(seconds_since(start), 0ms);
}

BOOST_AUTO_TEST_CASE(async_sleeps_started_together_overlap, *boost::unit_test::timeout(60))
{
  asio::io_context ctx;
  int done = 0;
  const auto start = fanout::clock::now();
  for (int i = 0; i < 5; ++i)
    fanout::async_sleep(ctx.get_executor(), unit, [&done](boost::system::error_code ec) {
      if (!ec)
        ++done;
    });
  ctx.run();
  BOOST_TEST(done == 5);
  FANOUT_CHECK_ELAPSED(seconds_since(start), unit);
  BOOST_TEST(seconds_since(start) < (4 * std::chrono::duration<double>(unit)).count());
}

BOOST_AUTO_TEST_CASE(async_sleep_with_use_future_completes_the_future_when_the_context_runs_in_a_thread,
                     *boost::unit_test::timeout(60))
{
  asio::io_context ctx;
  const auto start = fanout::clock::now();
  std::future<void> done = fanout::async_sleep(ctx.get_executor(), unit, asio::use_future);
  std::thread runner([&ctx] { ctx.run(); });
  BOOST_CHECK_NO_THROW(done.get());
  const double elapsed = seconds_since(start);
  runner.join();
  FANOUT_CHECK_ELAPSED(elapsed, unit);
}

BOOST_AUTO_TEST_CASE(async_sleep_with_use_future_is_ready_after_the_context_has_run, *boost::unit_test::timeout(60))
{
  asio::io_context ctx;
  const auto start = fanout::clock::now();
  std::future<void> done = fanout::async_sleep(ctx.get_executor(), unit, asio::use_future);
  BOOST_TEST((done.wait_for(0s) == std::future_status::timeout));
  ctx.run();
  BOOST_TEST((done.wait_for(0s) == std::future_status::ready));
  BOOST_CHECK_NO_THROW(done.get());
  FANOUT_CHECK_ELAPSED(seconds_since(start), unit);
}

BOOST_AUTO_TEST_CASE(async_sleep_with_use_future_throws_operation_aborted_when_cancelled,
                     *boost::unit_test::timeout(60))
{
  asio::io_context ctx;
  asio::cancellation_signal signal;
  asio::steady_timer canceller(ctx);
  const auto start = fanout::clock::now();
  emit_after(canceller, signal, unit);
  std::future<void> done =
      fanout::async_sleep(ctx.get_executor(), 10s, asio::bind_cancellation_slot(signal.slot(), asio::use_future));
  ctx.run();
  FANOUT_CHECK_ELAPSED(seconds_since(start), unit);
  BOOST_CHECK_EXCEPTION(done.get(), boost::system::system_error, [](const boost::system::system_error& e) {
    return e.code() == asio::error::operation_aborted;
  });
}

BOOST_AUTO_TEST_CASE(async_sleep_with_deferred_runs_when_the_deferred_operation_is_launched,
                     *boost::unit_test::timeout(60))
{
  asio::io_context ctx;
  bool called = false;
  boost::system::error_code result = asio::error::would_block;
  const auto start = fanout::clock::now();
  auto op = fanout::async_sleep(ctx.get_executor(), unit, asio::deferred);
  std::move(op)([&](boost::system::error_code ec) {
    called = true;
    result = ec;
  });
  BOOST_TEST(!called);
  ctx.run();
  BOOST_TEST(called);
  BOOST_TEST(!result);
  FANOUT_CHECK_ELAPSED(seconds_since(start), unit);
}

BOOST_AUTO_TEST_CASE(async_sleep_with_deferred_waits_the_full_duration_from_launch_not_from_creation,
                     *boost::unit_test::timeout(60))
{
  // A deferred operation starts when it is launched: the wait it stands for
  // must last the whole duration from then, however long ago it was made.
  asio::io_context ctx;
  auto op = fanout::async_sleep(ctx.get_executor(), 2 * unit, asio::deferred);
  std::this_thread::sleep_for(3 * unit);
  double waited = -1.0;
  const auto launched = fanout::clock::now();
  std::move(op)([&](boost::system::error_code) { waited = seconds_since(launched); });
  ctx.run();
  FANOUT_CHECK_ELAPSED(waited, 2 * unit);
}

FANOUT_CO_TEST_CASE(async_sleep_with_deferred_can_be_awaited_in_a_coroutine)
{
  auto ex = co_await asio::this_coro::executor;
  const auto start = fanout::clock::now();
  auto [ec] = co_await fanout::async_sleep(ex, unit, asio::as_tuple(asio::deferred));
  BOOST_TEST(!ec);
  FANOUT_CHECK_ELAPSED(seconds_since(start), unit);
}

FANOUT_CO_TEST_CASE(async_sleep_with_use_awaitable_suspends_the_coroutine)
{
  auto ex = co_await asio::this_coro::executor;
  const auto start = fanout::clock::now();
  co_await fanout::async_sleep(ex, unit, asio::use_awaitable);
  FANOUT_CHECK_ELAPSED(seconds_since(start), unit);
}

BOOST_AUTO_TEST_CASE(async_sleep_ends_early_with_operation_aborted_when_cancelled_through_its_slot,
                     *boost::unit_test::timeout(60))
{
  for (auto type :
       {asio::cancellation_type::terminal, asio::cancellation_type::partial, asio::cancellation_type::total}) {
    asio::io_context ctx;
    asio::cancellation_signal signal;
    asio::steady_timer canceller(ctx);
    const auto start = fanout::clock::now(); // before the canceller is armed
    emit_after(canceller, signal, unit, type);
    int calls = 0;
    boost::system::error_code result;
    double called_after = -1.0;
    fanout::async_sleep(ctx.get_executor(), 10s,
                        asio::bind_cancellation_slot(signal.slot(), [&](boost::system::error_code ec) {
                          ++calls;
                          result = ec;
                          called_after = seconds_since(start);
                        }));
    ctx.run();
    BOOST_TEST(calls == 1);
    BOOST_TEST(result == asio::error::operation_aborted);
    FANOUT_CHECK_ELAPSED(called_after, unit);
  }
}

BOOST_AUTO_TEST_CASE(async_sleep_cancelled_after_completion_is_unaffected, *boost::unit_test::timeout(60))
{
  asio::io_context ctx;
  asio::cancellation_signal signal;
  int calls = 0;
  boost::system::error_code result = asio::error::would_block;
  fanout::async_sleep(ctx.get_executor(), 1ms, asio::bind_cancellation_slot(signal.slot(), [&](auto ec) {
                        ++calls;
                        result = ec;
                      }));
  ctx.run();
  signal.emit(asio::cancellation_type::terminal); // nothing is attached any more
  ctx.restart();
  ctx.run();
  BOOST_TEST(calls == 1);
  BOOST_TEST(!result);
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE_END() // sleep_tests
