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

// async_map_settled with completion tokens: callbacks, options, use_future, void
// items, cancellation, as_tuple.
//
// Every suite sits in its own top-level suite (and namespace): the suites are
// compiled together in unity batches (test/CMakeLists.txt).
BOOST_AUTO_TEST_SUITE(async_map_settled_tokens_tests)

namespace asio = boost::asio;
using fanout::test::tracked_value;
using fanout::test::tracker;
using namespace std::chrono_literals;
using fanout::test::code_of;
using fanout::test::emit_after;
using fanout::test::iota_vector;
using fanout::test::message_of;
using fanout::test::seconds_since;
using fanout::test::throws_after;
using fanout::test::tracked_sleep;
using fanout::test::unit;
constexpr auto& all_types = fanout::test::all_cancellation_types;

BOOST_AUTO_TEST_CASE(async_map_settled_with_a_callback_gives_every_outcome_in_input_order,
                     *boost::unit_test::timeout(60))
{
  asio::io_context ctx;
  tracker t;
  const auto xs = iota_vector(5);
  int calls = 0;
  bool returned = false;
  bool returned_before_handler = false;
  std::exception_ptr error = std::make_exception_ptr(std::logic_error("not called"));
  std::vector<fanout::outcome<int>> results;
  fanout::async_map_settled(
      ctx.get_executor(), [&t](int x) { return x % 2 == 1 ? throws_after(t, 1ms) : tracked_value(t, unit, x); }, xs,
      [&](std::exception_ptr e, std::vector<fanout::outcome<int>> r) {
        ++calls;
        returned_before_handler = returned;
        error = e;
        results = std::move(r);
      });
  returned = true;
  ctx.run();
  BOOST_TEST(calls == 1);
  BOOST_TEST(returned_before_handler);
  BOOST_TEST(!error);
  BOOST_TEST_REQUIRE(results.size() == 5u);
  for (std::size_t i = 0; i < results.size(); ++i) {
    BOOST_TEST_CONTEXT("item " << i)
    {
      if (i % 2 == 1) {
        BOOST_TEST(message_of(results[i].error()) == "boom");
      } else {
        BOOST_TEST(results[i].has_value());
        BOOST_TEST(results[i].value() == static_cast<int>(i));
      }
    }
  }
  BOOST_TEST(t.aborted.load() == 0);
}

BOOST_AUTO_TEST_CASE(async_map_settled_token_form_takes_options_and_use_future, *boost::unit_test::timeout(60))
{
  asio::io_context ctx;
  auto guard = asio::make_work_guard(ctx);
  std::thread runner([&ctx] { ctx.run(); });
  tracker t;
  const auto xs = iota_vector(4);
  auto results = fanout::async_map_settled(
      ctx.get_executor(), fanout::map_options{.item_timeout = 2 * unit},
      [&t](int x) { return tracked_value(t, x == 3 ? 10s : 1ms, x); }, xs, asio::use_future);
  const auto out = results.get();
  guard.reset();
  runner.join();
  BOOST_TEST_REQUIRE(out.size() == 4u);
  for (std::size_t i = 0; i < 3; ++i)
    BOOST_TEST(out[i].value() == static_cast<int>(i));
  BOOST_TEST(code_of(out[3].error()) == fanout::make_error_code(fanout::error::timed_out));
}

BOOST_AUTO_TEST_CASE(async_map_settled_token_form_of_void_items_and_cancellation, *boost::unit_test::timeout(60))
{
  asio::io_context ctx;
  tracker t;
  const auto xs = iota_vector(3);
  std::vector<fanout::outcome<void>> outcomes;
  fanout::async_map_settled(
      ctx.get_executor(),
      [&t](int x) -> asio::awaitable<void> {
        co_await tracked_sleep(t, 1ms);
        if (x == 1)
          throw std::runtime_error("one");
      },
      xs, [&](std::exception_ptr, std::vector<fanout::outcome<void>> r) { outcomes = std::move(r); });
  ctx.run();
  BOOST_TEST_REQUIRE(outcomes.size() == 3u);
  BOOST_TEST(outcomes[0].has_value());
  BOOST_TEST(message_of(outcomes[1].error()) == "one");
  BOOST_TEST(outcomes[2].has_value());

  // Cancellation still fails the whole settled map.
  ctx.restart();
  asio::cancellation_signal signal;
  const auto start = fanout::clock::now(); // before the canceller's clock starts
  asio::steady_timer canceller(ctx);
  emit_after(canceller, signal, unit, asio::cancellation_type::partial);
  std::exception_ptr error;
  std::size_t size = 99;
  fanout::async_map_settled(
      ctx.get_executor(), [&t](int) { return tracked_sleep(t, 10s); }, xs,
      asio::bind_cancellation_slot(signal.slot(), [&](std::exception_ptr e, std::vector<fanout::outcome<void>> r) {
        error = e;
        size = r.size();
      }));
  ctx.run();
  FANOUT_CHECK_ELAPSED(seconds_since(start), unit);
  BOOST_TEST(code_of(error) == asio::error::operation_aborted);
  BOOST_TEST(size == 0u);
  BOOST_TEST(t.now.load() == 0);
}

FANOUT_CO_TEST_CASE(async_map_settled_with_as_tuple_in_a_coroutine)
{
  auto ex = co_await asio::this_coro::executor;
  const auto xs = iota_vector(2);
  auto [e, outcomes] = co_await fanout::async_map_settled(
      ex,
      [](int x) -> asio::awaitable<int> {
        if (x == 0)
          throw std::runtime_error("zero");
        co_return x;
      },
      xs, asio::as_tuple(asio::use_awaitable));
  BOOST_TEST(!e);
  BOOST_TEST_REQUIRE(outcomes.size() == 2u);
  BOOST_TEST(message_of(outcomes[0].error()) == "zero");
  BOOST_TEST(outcomes[1].value() == 1);
}

BOOST_AUTO_TEST_SUITE_END() // async_map_settled_tokens_tests
