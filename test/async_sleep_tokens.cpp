#include <fanout/sleep.hpp>

#include <boost/test/unit_test.hpp>

#include "support/co_test.hpp"
#include "support/outcomes.hpp"
#include "support/tracker.hpp"

#include <fanout/async_map.hpp>
#include <fanout/error.hpp>
#include <fanout/outcome.hpp>
#include <fanout/run.hpp>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/bind_executor.hpp>
#include <boost/asio/cancellation_signal.hpp>
#include <boost/asio/deferred.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
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
#include <tuple>
#include <utility>
#include <vector>

// async_sleep with completion tokens: callbacks, use_future, deferred, as_tuple,
// cancellation of each type, strands.
//
// Every suite sits in its own top-level suite (and namespace): the suites are
// compiled together in unity batches (test/CMakeLists.txt).
BOOST_AUTO_TEST_SUITE(async_sleep_tokens_tests)

namespace asio = boost::asio;
using fanout::test::tracker;
using namespace std::chrono_literals;
using fanout::test::emit_after;
using fanout::test::seconds_since;
using fanout::test::unit;
constexpr auto& all_types = fanout::test::all_cancellation_types;

BOOST_AUTO_TEST_CASE(async_sleep_with_a_callback_completes_after_the_duration_never_inside_the_call,
                     *boost::unit_test::timeout(60))
{
  asio::io_context ctx;
  int calls = 0;
  boost::system::error_code result = asio::error::would_block;
  double after = -1.0;
  const auto start = fanout::clock::now();
  fanout::async_sleep(ctx.get_executor(), 2 * unit, [&](boost::system::error_code ec) {
    ++calls;
    result = ec;
    after = seconds_since(start);
  });
  BOOST_TEST(calls == 0);
  ctx.run();
  BOOST_TEST(calls == 1);
  BOOST_TEST(!result);
  FANOUT_CHECK_ELAPSED(after, 2 * unit);
}

BOOST_AUTO_TEST_CASE(async_sleep_with_use_future_is_ready_once_the_thread_run_context_has_waited,
                     *boost::unit_test::timeout(60))
{
  asio::io_context ctx;
  auto guard = asio::make_work_guard(ctx);
  std::thread runner([&ctx] { ctx.run(); });
  const auto start = fanout::clock::now();
  std::future<void> done = fanout::async_sleep(ctx.get_executor(), unit, asio::use_future);
  BOOST_CHECK_NO_THROW(done.get());
  FANOUT_CHECK_ELAPSED(seconds_since(start), unit);
  guard.reset();
  runner.join();
}

BOOST_AUTO_TEST_CASE(async_sleep_with_deferred_waits_from_launch, *boost::unit_test::timeout(60))
{
  asio::io_context ctx;
  auto op = fanout::async_sleep(ctx.get_executor(), unit, asio::deferred);
  std::this_thread::sleep_for(2 * unit);
  int calls = 0;
  double waited = -1.0;
  const auto launched = fanout::clock::now();
  std::move(op)([&](boost::system::error_code ec) {
    ++calls;
    if (!ec)
      waited = seconds_since(launched);
  });
  BOOST_TEST(calls == 0);
  ctx.run();
  BOOST_TEST(calls == 1);
  FANOUT_CHECK_ELAPSED(waited, unit);
}

FANOUT_CO_TEST_CASE(async_sleep_with_as_tuple_reports_cancellation_without_throwing)
{
  auto ex = co_await asio::this_coro::executor;
  auto [ok] = co_await fanout::async_sleep(ex, 1ms, asio::as_tuple(asio::use_awaitable));
  BOOST_TEST(!ok);

  asio::cancellation_signal signal;
  asio::steady_timer canceller(ex);
  const auto start = fanout::clock::now();
  emit_after(canceller, signal, unit, asio::cancellation_type::terminal);
  auto [ec] = co_await fanout::async_sleep(
      ex, 10s, asio::bind_cancellation_slot(signal.slot(), asio::as_tuple(asio::use_awaitable)));
  BOOST_TEST(ec == asio::error::operation_aborted);
  FANOUT_CHECK_ELAPSED(seconds_since(start), unit);
}

BOOST_AUTO_TEST_CASE(async_sleep_is_cancelled_by_each_type_through_the_callbacks_slot, *boost::unit_test::timeout(60))
{
  for (auto type : all_types) {
    BOOST_TEST_CONTEXT("cancellation type " << static_cast<int>(type))
    {
      asio::io_context ctx;
      asio::cancellation_signal signal;
      asio::steady_timer canceller(ctx);
      const auto start = fanout::clock::now();
      emit_after(canceller, signal, unit, type);
      boost::system::error_code result;
      int calls = 0;
      fanout::async_sleep(ctx.get_executor(), 10s,
                          asio::bind_cancellation_slot(signal.slot(), [&](boost::system::error_code ec) {
                            ++calls;
                            result = ec;
                          }));
      ctx.run();
      FANOUT_CHECK_ELAPSED(seconds_since(start), unit);
      BOOST_TEST(calls == 1);
      BOOST_TEST(result == asio::error::operation_aborted);
    }
  }
}

BOOST_AUTO_TEST_CASE(async_sleep_callback_bound_to_a_strand_runs_on_it, *boost::unit_test::timeout(60))
{
  asio::thread_pool pool(2);
  auto strand = asio::make_strand(pool);
  std::promise<bool> on_strand;
  fanout::async_sleep(pool.get_executor(), 1ms, asio::bind_executor(strand, [&](boost::system::error_code) {
                        on_strand.set_value(strand.running_in_this_thread());
                      }));
  auto f = on_strand.get_future();
  BOOST_TEST_REQUIRE((f.wait_for(30s) == std::future_status::ready));
  BOOST_TEST(f.get());
  pool.join();
}

BOOST_AUTO_TEST_SUITE_END() // async_sleep_tokens_tests
