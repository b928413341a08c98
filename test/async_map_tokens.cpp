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

// async_map with completion tokens: callbacks (never called inside the call,
// bound to strands), use_future, deferred, as_tuple, use_awaitable.
//
// Every suite sits in its own top-level suite (and namespace): the suites are
// compiled together in unity batches (test/CMakeLists.txt).
BOOST_AUTO_TEST_SUITE(async_map_tokens_tests)

namespace asio = boost::asio;
using fanout::test::tracked_value;
using fanout::test::tracker;
using namespace std::chrono_literals;
using fanout::test::iota_vector;
using fanout::test::message_of;
using fanout::test::seconds_since;
using fanout::test::throws_after;
using fanout::test::tracked_sleep;
using fanout::test::unit;
constexpr auto& all_types = fanout::test::all_cancellation_types;

BOOST_AUTO_TEST_SUITE(async_map_callback)

BOOST_AUTO_TEST_CASE(a_callback_gets_null_and_the_results_on_the_io_context_thread_never_inside_the_call,
                     *boost::unit_test::timeout(60))
{
  asio::io_context ctx;
  tracker t;
  const auto xs = iota_vector(5);
  bool returned = false;
  int calls = 0;
  bool returned_before_handler = false;
  std::exception_ptr error = std::make_exception_ptr(std::logic_error("not called"));
  std::vector<int> results;
  std::thread::id handler_thread;
  const auto start = fanout::clock::now();
  fanout::async_map(
      ctx.get_executor(), [&t](int x) { return tracked_value(t, unit, x * 2); }, xs,
      [&](std::exception_ptr e, std::vector<int> r) {
        ++calls;
        returned_before_handler = returned;
        error = e;
        results = std::move(r);
        handler_thread = std::this_thread::get_id();
      });
  returned = true;
  std::thread runner([&ctx] { ctx.run(); });
  const auto runner_id = runner.get_id();
  runner.join();
  BOOST_TEST(calls == 1);
  BOOST_TEST(returned_before_handler);
  BOOST_TEST(!error);
  BOOST_TEST((results == std::vector<int>{0, 2, 4, 6, 8}));
  BOOST_TEST((handler_thread == runner_id));
  BOOST_TEST(t.most.load() == 5);
  FANOUT_CHECK_ELAPSED(seconds_since(start), unit);
}

BOOST_AUTO_TEST_CASE(a_callback_is_never_called_inside_the_call_even_from_the_io_context_thread_with_instant_items,
                     *boost::unit_test::timeout(60))
{
  // Called from a handler on the io_context, where a dispatch would run
  // inline, with items that complete without suspending.
  asio::io_context ctx;
  const auto xs = iota_vector(3);
  bool returned = false;
  int calls = 0;
  bool returned_before_handler = false;
  std::vector<int> results;
  asio::post(ctx, [&] {
    fanout::async_map(
        ctx.get_executor(), [](int x) { return x + 1; }, xs,
        [&](std::exception_ptr, std::vector<int> r) {
          ++calls;
          returned_before_handler = returned;
          results = std::move(r);
        });
    returned = true;
  });
  ctx.run();
  BOOST_TEST(calls == 1);
  BOOST_TEST(returned_before_handler);
  BOOST_TEST((results == std::vector<int>{1, 2, 3}));
}

BOOST_AUTO_TEST_CASE(a_failing_item_is_delivered_as_the_exception_pointer_with_empty_results,
                     *boost::unit_test::timeout(60))
{
  asio::io_context ctx;
  tracker t;
  const auto xs = iota_vector(4);
  int calls = 0;
  std::exception_ptr error;
  std::vector<int> results{-1};
  const auto start = fanout::clock::now();
  fanout::async_map(
      ctx.get_executor(), [&t](int x) { return x == 2 ? throws_after(t, unit) : tracked_value(t, 10s, x); }, xs,
      [&](std::exception_ptr e, std::vector<int> r) {
        ++calls;
        error = e;
        results = std::move(r);
      });
  ctx.run();
  FANOUT_CHECK_ELAPSED(seconds_since(start), unit);
  BOOST_TEST(calls == 1);
  BOOST_TEST(message_of(error) == "boom");
  BOOST_TEST(results.empty());
  BOOST_TEST(t.now.load() == 0);
  BOOST_TEST(t.aborted.load() == 3);
}

BOOST_AUTO_TEST_CASE(void_items_complete_a_callback_taking_only_the_exception_pointer, *boost::unit_test::timeout(60))
{
  asio::io_context ctx;
  tracker t;
  const auto xs = iota_vector(4);
  int calls = 0;
  std::exception_ptr error = std::make_exception_ptr(std::logic_error("not called"));
  fanout::async_map(
      ctx.get_executor(), [&t](int) { return tracked_sleep(t, 1ms); }, xs,
      [&](std::exception_ptr e) {
        ++calls;
        error = e;
      });
  ctx.run();
  BOOST_TEST(calls == 1);
  BOOST_TEST(!error);
  BOOST_TEST(t.finished.load() == 4);

  // A failing void item.
  ctx.restart();
  fanout::async_map(
      ctx.get_executor(),
      [](int x) {
        if (x == 3)
          throw std::runtime_error("void boom");
      },
      xs,
      [&](std::exception_ptr e) {
        ++calls;
        error = e;
      });
  ctx.run();
  BOOST_TEST(calls == 2);
  BOOST_TEST(message_of(error) == "void boom");
}

BOOST_AUTO_TEST_CASE(the_token_form_takes_options_and_several_ranges, *boost::unit_test::timeout(60))
{
  asio::io_context ctx;
  tracker t;
  const std::vector<int> xs{1, 2, 3, 4, 5, 6};
  const std::vector<int> ys{10, 20, 30, 40, 50}; // the shorter range decides
  std::vector<int> results;
  const auto start = fanout::clock::now();
  fanout::async_map(
      ctx.get_executor(), fanout::map_options{.max_concurrency = 2},
      [&t](int x, int y) { return tracked_value(t, unit, x + y); }, xs, ys,
      [&](std::exception_ptr e, std::vector<int> r) {
        if (!e)
          results = std::move(r);
      });
  ctx.run();
  BOOST_TEST((results == std::vector<int>{11, 22, 33, 44, 55}));
  BOOST_TEST(t.most.load() == 2);
  FANOUT_CHECK_ELAPSED(seconds_since(start), 3 * unit);
}

BOOST_AUTO_TEST_CASE(a_callback_bound_to_a_strand_runs_on_that_strand, *boost::unit_test::timeout(60))
{
  asio::thread_pool pool(4);
  auto strand = asio::make_strand(pool);
  tracker t;
  const auto xs = iota_vector(20);
  std::promise<void> done;
  std::atomic<bool> on_strand{false};
  std::vector<int> results;
  fanout::async_map(
      pool.get_executor(), [&t](int x) { return tracked_value(t, 1ms, x); }, xs,
      asio::bind_executor(strand, [&](std::exception_ptr e, std::vector<int> r) {
        on_strand = strand.running_in_this_thread();
        if (!e)
          results = std::move(r);
        done.set_value();
      }));
  BOOST_TEST_REQUIRE((done.get_future().wait_for(30s) == std::future_status::ready));
  BOOST_TEST(on_strand.load());
  BOOST_TEST(results == xs);
  pool.join();
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(async_map_other_tokens)

BOOST_AUTO_TEST_CASE(use_future_gives_the_results_when_the_io_context_runs_on_a_thread, *boost::unit_test::timeout(60))
{
  asio::io_context ctx;
  auto guard = asio::make_work_guard(ctx);
  std::thread runner([&ctx] { ctx.run(); });
  tracker t;
  const auto xs = iota_vector(6);
  const auto start = fanout::clock::now();
  // Called from this thread while the io_context runs on another.
  std::future<std::vector<int>> results = fanout::async_map(
      ctx.get_executor(), [&t](int x) { return tracked_value(t, unit, x * x); }, xs, asio::use_future);
  BOOST_TEST((results.get() == std::vector<int>{0, 1, 4, 9, 16, 25}));
  FANOUT_CHECK_ELAPSED(seconds_since(start), unit);

  std::future<std::vector<int>> failing = fanout::async_map(
      ctx.get_executor(), [&t](int x) { return x == 1 ? throws_after(t, 1ms) : tracked_value(t, 1ms, x); }, xs,
      asio::use_future);
  BOOST_CHECK_EXCEPTION(failing.get(), std::runtime_error,
                        [](const std::runtime_error& e) { return std::string(e.what()) == "boom"; });
  guard.reset();
  runner.join();
  BOOST_TEST(t.now.load() == 0);
}

BOOST_AUTO_TEST_CASE(use_future_on_a_thread_pool_executor_gives_the_results, *boost::unit_test::timeout(60))
{
  asio::thread_pool pool(4);
  const auto xs = iota_vector(100);
  std::future<std::vector<int>> results = fanout::async_map(
      pool.get_executor(), [](int x) { return 2 * x; }, xs, asio::use_future);
  const auto out = results.get();
  BOOST_TEST_REQUIRE(out.size() == 100u);
  int wrong = 0;
  for (std::size_t i = 0; i < out.size(); ++i)
    wrong += out[i] == 2 * static_cast<int>(i) ? 0 : 1;
  BOOST_TEST(wrong == 0);
  std::future<void> nothing = fanout::async_map(
      pool.get_executor(), [](int) {}, xs, asio::use_future);
  BOOST_CHECK_NO_THROW(nothing.get());
  pool.join();
}

BOOST_AUTO_TEST_CASE(deferred_starts_nothing_until_it_is_launched, *boost::unit_test::timeout(60))
{
  asio::io_context ctx;
  tracker t;
  const auto xs = iota_vector(4);
  auto op = fanout::async_map(
      ctx.get_executor(), [&t](int x) { return tracked_value(t, unit, x + 100); }, xs, asio::deferred);
  ctx.run(); // nothing to do yet
  ctx.restart();
  std::this_thread::sleep_for(unit);
  BOOST_TEST(t.started.load() == 0);
  std::vector<int> results;
  int calls = 0;
  const auto launched = fanout::clock::now();
  std::move(op)([&](std::exception_ptr e, std::vector<int> r) {
    ++calls;
    if (!e)
      results = std::move(r);
  });
  BOOST_TEST(calls == 0);
  ctx.run();
  BOOST_TEST(calls == 1);
  BOOST_TEST((results == std::vector<int>{100, 101, 102, 103}));
  FANOUT_CHECK_ELAPSED(seconds_since(launched), unit);
}

BOOST_AUTO_TEST_CASE(a_deferred_map_over_a_temporary_range_owns_the_range_until_launched,
                     *boost::unit_test::timeout(60))
{
  asio::io_context ctx;
  auto op = fanout::async_map(
      ctx.get_executor(), [](const std::string& s) -> asio::awaitable<std::size_t> { co_return s.size(); },
      std::vector<std::string>{"a", "bb", std::string(100, 'c')}, asio::deferred);
  // The temporary vector is gone; the operation must hold its own copy.
  std::vector<std::size_t> results;
  std::move(op)([&](std::exception_ptr e, std::vector<std::size_t> r) {
    if (!e)
      results = std::move(r);
  });
  ctx.run();
  BOOST_TEST((results == std::vector<std::size_t>{1, 2, 100}));
}

FANOUT_CO_TEST_CASE(as_tuple_use_awaitable_gives_the_exception_and_results_without_throwing)
{
  auto ex = co_await asio::this_coro::executor;
  tracker t;
  const auto xs = iota_vector(3);
  auto [e, results] = co_await fanout::async_map(
      ex, [&t](int x) { return tracked_value(t, 1ms, x * 3); }, xs, asio::as_tuple(asio::use_awaitable));
  BOOST_TEST(!e);
  BOOST_TEST((results == std::vector<int>{0, 3, 6}));

  auto [error, none] = co_await fanout::async_map(
      ex, [&t](int x) { return x == 0 ? throws_after(t, 1ms) : tracked_value(t, 10s, x); }, xs,
      asio::as_tuple(asio::use_awaitable));
  BOOST_TEST(message_of(error) == "boom");
  BOOST_TEST(none.empty());
  BOOST_TEST(t.now.load() == 0);
}

FANOUT_CO_TEST_CASE(use_awaitable_gives_the_results_and_rethrows)
{
  auto ex = co_await asio::this_coro::executor;
  const auto xs = iota_vector(3);
  auto results = co_await fanout::async_map(
      ex, [](int x) -> asio::awaitable<int> { co_return x + 7; }, xs, asio::use_awaitable);
  BOOST_TEST((results == std::vector<int>{7, 8, 9}));
  BOOST_CHECK_THROW(co_await fanout::async_map(
                        ex,
                        [](int x) {
                          if (x == 2)
                            throw std::out_of_range("two");
                        },
                        xs, asio::use_awaitable),
                    std::out_of_range);
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE_END() // async_map_tokens_tests
