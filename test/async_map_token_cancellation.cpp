#include <fanout/async_map.hpp>

#include <boost/test/unit_test.hpp>

#include "support/co_test.hpp"
#include "support/outcomes.hpp"
#include "support/tracker.hpp"

#include <fanout/error.hpp>
#include <fanout/outcome.hpp>
#include <fanout/run.hpp>
#include <fanout/sleep.hpp>

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

// async_map's token form cancelled through the handler's slot: every type, and
// the handler runs only once the items have finished. (The stages before start,
// while queued, while running and after completion: parked_waiters.cpp.)
//
// Every suite sits in its own top-level suite (and namespace): the suites are
// compiled together in unity batches (test/CMakeLists.txt).
BOOST_AUTO_TEST_SUITE(async_map_token_cancellation_tests)

namespace asio = boost::asio;
using fanout::test::tracked_value;
using fanout::test::tracker;
using namespace std::chrono_literals;
using fanout::test::code_of;
using fanout::test::emit_after;
using fanout::test::iota_vector;
using fanout::test::seconds_since;
using fanout::test::unit;
constexpr auto& all_types = fanout::test::all_cancellation_types;

BOOST_AUTO_TEST_CASE(every_cancellation_type_through_the_handlers_slot_cancels_the_items_promptly,
                     *boost::unit_test::timeout(60))
{
  for (auto type : all_types) {
    BOOST_TEST_CONTEXT("cancellation type " << static_cast<int>(type))
    {
      asio::io_context ctx;
      tracker t;
      const auto xs = iota_vector(4);
      asio::cancellation_signal signal;
      asio::steady_timer canceller(ctx);
      const auto start = fanout::clock::now(); // before the canceller is armed
      emit_after(canceller, signal, unit, type);
      int calls = 0;
      std::exception_ptr error;
      std::vector<int> results{-1};
      fanout::async_map(
          ctx.get_executor(), [&t](int x) { return tracked_value(t, 10s, x); }, xs,
          asio::bind_cancellation_slot(signal.slot(), [&](std::exception_ptr e, std::vector<int> r) {
            ++calls;
            error = e;
            results = std::move(r);
          }));
      ctx.run();
      FANOUT_CHECK_ELAPSED(seconds_since(start), unit);
      BOOST_TEST(calls == 1);
      BOOST_TEST(code_of(error) == asio::error::operation_aborted);
      BOOST_TEST(results.empty());
      BOOST_TEST(t.aborted.load() == 4);
      BOOST_TEST(t.now.load() == 0);
    }
  }
}

BOOST_AUTO_TEST_CASE(a_cancelled_map_completes_only_once_its_items_have_finished, *boost::unit_test::timeout(60))
{
  for (auto type : all_types) {
    BOOST_TEST_CONTEXT("cancellation type " << static_cast<int>(type))
    {
      asio::io_context ctx;
      const auto xs = iota_vector(3);
      asio::cancellation_signal signal;
      asio::steady_timer canceller(ctx);
      const auto start = fanout::clock::now(); // before the canceller is armed
      emit_after(canceller, signal, unit, type);
      std::atomic<int> cleaned_up{0};
      int cleaned_up_at_completion = -1;
      std::exception_ptr error;
      // Each item takes two units to honour the cancellation.
      fanout::async_map(
          ctx.get_executor(),
          [&cleaned_up](int) -> asio::awaitable<void> {
            bool cancelled = false;
            try {
              co_await fanout::sleep(10s);
            } catch (const boost::system::system_error&) {
              cancelled = true;
            }
            co_await asio::this_coro::reset_cancellation_state();
            co_await fanout::sleep(2 * unit);
            ++cleaned_up;
            if (cancelled)
              throw boost::system::system_error(asio::error::operation_aborted, "item");
          },
          xs, asio::bind_cancellation_slot(signal.slot(), [&](std::exception_ptr e) {
            error = e;
            cleaned_up_at_completion = cleaned_up.load();
          }));
      ctx.run();
      BOOST_TEST(code_of(error) == asio::error::operation_aborted);
      BOOST_TEST(cleaned_up_at_completion == 3);
      FANOUT_CHECK_ELAPSED(seconds_since(start), 3 * unit);
    }
  }
}

BOOST_AUTO_TEST_CASE(use_future_with_a_cancellation_slot_throws_operation_aborted, *boost::unit_test::timeout(60))
{
  asio::io_context ctx;
  tracker t;
  const auto xs = iota_vector(3);
  asio::cancellation_signal signal;
  asio::steady_timer canceller(ctx);
  const auto start = fanout::clock::now(); // before the canceller is armed
  emit_after(canceller, signal, unit, asio::cancellation_type::partial);
  auto results = fanout::async_map(
      ctx.get_executor(), [&t](int x) { return tracked_value(t, 10s, x); }, xs,
      asio::bind_cancellation_slot(signal.slot(), asio::use_future));
  ctx.run();
  FANOUT_CHECK_ELAPSED(seconds_since(start), unit);
  BOOST_CHECK_EXCEPTION(results.get(), boost::system::system_error, [](const boost::system::system_error& e) {
    return e.code() == asio::error::operation_aborted;
  });
  BOOST_TEST(t.now.load() == 0);
}

BOOST_AUTO_TEST_SUITE_END() // async_map_token_cancellation_tests
