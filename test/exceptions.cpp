#include <fanout/async_map.hpp>

#include <boost/test/unit_test.hpp>

#include "support/co_test.hpp"
#include "support/outcomes.hpp"
#include "support/ranges.hpp"
#include "support/tracker.hpp"

#include <fanout/callable.hpp>
#include <fanout/error.hpp>
#include <fanout/map_options.hpp>
#include <fanout/map_stream.hpp>
#include <fanout/offload.hpp>
#include <fanout/outcome.hpp>
#include <fanout/run.hpp>
#include <fanout/schedule.hpp>
#include <fanout/sleep.hpp>
#include <fanout/sync_map.hpp>
#include <fanout/task.hpp>
#include <fanout/task_group.hpp>
#include <fanout/timeout.hpp>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/bind_executor.hpp>
#include <boost/asio/cancellation_signal.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/thread_pool.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/use_future.hpp>
#include <boost/system/system_error.hpp>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <exception>
#include <functional>
#include <future>
#include <limits>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <thread>
#include <type_traits>
#include <utility>
#include <vector>

// Exceptions from an item, a blocking call or a completion handler are reported,
// never swallowed (a handler's comes out of run()).
//
// Every suite sits in its own top-level suite (and namespace): the suites are
// compiled together in unity batches (test/CMakeLists.txt).
BOOST_AUTO_TEST_SUITE(exceptions_tests)

namespace asio = boost::asio;
using namespace std::chrono_literals;
using fanout::test::exception_of;
using fanout::test::iota_vector;
using fanout::test::tag_of;
using fanout::test::tagged_error;
using fanout::test::throws_after;
using fanout::test::tracked_value;
using fanout::test::tracker;

namespace {

// Thrown by completion handlers.
struct handler_error : std::runtime_error
{
  explicit handler_error(int t) : std::runtime_error("handler " + std::to_string(t)), tag(t) {}
  int tag;
};

} // namespace

BOOST_AUTO_TEST_CASE(an_exception_from_any_completion_handler_propagates_out_of_run_and_the_context_runs_again,
                     *boost::unit_test::timeout(60))
{
  asio::io_context ctx{1};
  const auto ex = ctx.get_executor();
  const std::vector<int> xs = iota_vector(10);
  tracker items;
  auto twice = [&items](int x) -> asio::awaitable<int> { co_return 2 * co_await tracked_value(items, 1ms, x); };
  int calls = 0;
  // Runs ctx until it throws; gives the tag of the handler_error that came out.
  auto run_and_catch = [&ctx]() {
    ctx.restart();
    try {
      ctx.run();
    } catch (const handler_error& e) {
      return e.tag;
    }
    return -1;
  };

  // The token form of async_map: on success, and on failure.
  fanout::async_map(ex, twice, xs, [&](std::exception_ptr e, std::vector<int> r) {
    ++calls;
    if (!e && r.size() == xs.size())
      throw handler_error(1);
  });
  BOOST_TEST(run_and_catch() == 1);
  fanout::async_map(
      ex, [&items](int x) { return throws_after(items, 1ms, x); }, xs,
      [&](std::exception_ptr e, std::vector<int>) {
        ++calls;
        throw handler_error(100 + tag_of(e));
      });
  BOOST_TEST(run_and_catch() == 100); // item 0 fails first (equal delays, started in order)
  fanout::async_map_settled(ex, twice, xs, [&](std::exception_ptr, std::vector<fanout::outcome<int>> r) {
    ++calls;
    throw handler_error(static_cast<int>(r.size()));
  });
  BOOST_TEST(run_and_catch() == 10);

  // async_sleep, a task's async_wait, a group's join, async_with_deadline,
  // async_to_thread with a handler bound to the context.
  fanout::async_sleep(ex, 1ms, [&](boost::system::error_code) {
    ++calls;
    throw handler_error(2);
  });
  BOOST_TEST(run_and_catch() == 2);
  auto t = fanout::spawn(ex, tracked_value(items, 1ms, 3));
  t.async_wait([&](std::exception_ptr, int v) {
    ++calls;
    throw handler_error(v);
  });
  BOOST_TEST(run_and_catch() == 3);
  fanout::task_group g(ex);
  (void)g.spawn(tracked_value(items, 1ms, 4));
  g.async_join([&](std::exception_ptr) {
    ++calls;
    throw handler_error(4);
  });
  BOOST_TEST(run_and_catch() == 4);
  fanout::async_with_deadline(ex, tracked_value(items, 1ms, 5), fanout::clock::now() + 10s,
                              [&](std::exception_ptr, int v) {
                                ++calls;
                                throw handler_error(v);
                              });
  BOOST_TEST(run_and_catch() == 5);
  asio::thread_pool pool(1);
  fanout::async_to_thread(
      pool.get_executor(), [] { return 6; }, asio::bind_executor(ex, [&](std::exception_ptr, int v) {
        ++calls;
        throw handler_error(v);
      }));
  BOOST_TEST(run_and_catch() == 6);

  // A stream whose next() handler threw still hands out the next elements.
  auto stream = fanout::async_map_stream(twice, xs);
  std::vector<int> got;
  stream.async_next(asio::bind_executor(ex, [&](std::exception_ptr, std::optional<int> v) {
    ++calls;
    throw handler_error(*v + 1000);
  }));
  BOOST_TEST(run_and_catch() == 1000);
  fanout::run(ctx, [&]() -> asio::awaitable<void> {
    while (auto v = co_await stream.async_next())
      got.push_back(*v);
  }());
  BOOST_TEST((got == std::vector<int>{2, 4, 6, 8, 10, 12, 14, 16, 18}));

  BOOST_TEST(calls == 9); // every handler ran exactly once
  // The context is still good for more work.
  BOOST_TEST((fanout::run(ctx, fanout::async_map(twice, xs)) == std::vector<int>{0, 2, 4, 6, 8, 10, 12, 14, 16, 18}));
  BOOST_TEST(items.now.load() == 0);
  pool.join();
}

namespace {

// Item i of five fails with tagged_error(2) when i == 2, through the kind of
// callable under test; checks fail-fast reports it and collect-all records it.
template <typename F>
asio::awaitable<void> check_item_failure_is_reported(const char* kind, fanout::map_options options, F f, int tag = 2)
{
  const auto e = co_await exception_of(fanout::async_map(options, f, fanout::test::iota(0, 5)));
  const auto outcomes = co_await fanout::async_map_settled(options, f, fanout::test::iota(0, 5));
  BOOST_TEST_CONTEXT(kind)
  {
    BOOST_TEST(tag_of(e) == tag);
    BOOST_TEST_REQUIRE(outcomes.size() == 5U);
    for (int i = 0; i < 5; ++i) {
      const auto& r = outcomes[static_cast<std::size_t>(i)];
      if (i == 2)
        BOOST_TEST(tag_of(r.error()) == tag);
      else
        BOOST_TEST((r.has_value() && r.value() == i));
    }
  }
}

asio::awaitable<int> coroutine_failing_at_2(int i, bool suspend_first)
{
  if (suspend_first)
    co_await fanout::sleep(1ms);
  if (i == 2)
    throw tagged_error(2);
  co_return i;
}

int plain_failing_at_2(int i)
{
  if (i == 2)
    throw tagged_error(2);
  return i;
}

} // namespace

FANOUT_CO_TEST_CASE(an_exception_from_every_kind_of_item_is_reported_by_async_map_and_kept_by_async_map_settled)
{
  const fanout::map_options offload{.blocking = fanout::blocking_policy::offload};
  co_await check_item_failure_is_reported("a coroutine that throws after suspending", {},
                                          [](int i) { return coroutine_failing_at_2(i, true); });
  co_await check_item_failure_is_reported("a coroutine that throws before suspending", {},
                                          [](int i) { return coroutine_failing_at_2(i, false); });
  co_await check_item_failure_is_reported("a function that throws instead of returning its coroutine", {}, [](int i) {
    if (i == 2)
      throw tagged_error(2);
    return coroutine_failing_at_2(i, true);
  });
  co_await check_item_failure_is_reported("a plain call made inline", {}, plain_failing_at_2);
  co_await check_item_failure_is_reported("a plain call offloaded", offload, plain_failing_at_2);
  co_await check_item_failure_is_reported("a plain call with a window and an item timeout",
                                          {.max_concurrency = 2, .item_timeout = 10s}, plain_failing_at_2);
  co_await check_item_failure_is_reported("a coroutine with an item timeout", {.item_timeout = 10s},
                                          [](int i) { return coroutine_failing_at_2(i, true); });
  const fanout::callable<int(int)> blocking = plain_failing_at_2;
  const fanout::callable<int(int)> coroutine = [](int i) { return coroutine_failing_at_2(i, true); };
  co_await check_item_failure_is_reported("a blocking fanout::callable made inline", {},
                                          [&](int i) { return blocking(i); });
  co_await check_item_failure_is_reported("a blocking fanout::callable offloaded", offload,
                                          [&](int i) { return blocking(i); });
  co_await check_item_failure_is_reported("a coroutine fanout::callable", {}, [&](int i) { return coroutine(i); });
  co_await check_item_failure_is_reported(
      "an exception that is not a std::exception", {},
      [](int i) {
        if (i == 2)
          throw 42; // NOLINT(hicpp-exception-baseclass): the point of the test
        return i;
      },
      42);
  co_await check_item_failure_is_reported(
      "an offloaded exception that is not a std::exception", offload,
      [](int i) {
        if (i == 2)
          throw 43; // NOLINT(hicpp-exception-baseclass)
        return i;
      },
      43);
}

FANOUT_CO_TEST_CASE(exceptions_from_blocking_calls_on_the_pool_reach_their_own_waiters_exactly_once)
{
  // Fifty concurrent to_thread calls, each throwing its own exception (half
  // of them not std::exceptions): each waiter gets its own, once.
  constexpr int n = 50;
  std::atomic<int> thrown{0};
  const auto tags = co_await fanout::async_map_settled(
      [&thrown](int i) -> asio::awaitable<int> {
        co_return co_await fanout::to_thread([&thrown, i]() -> int {
          std::this_thread::sleep_for(1ms);
          ++thrown;
          if (i % 2 == 0)
            throw tagged_error(i);
          throw i; // NOLINT(hicpp-exception-baseclass)
        });
      },
      fanout::test::iota(0, n));
  BOOST_TEST(thrown.load() == n);
  int right = 0;
  for (int i = 0; i < n; ++i)
    right += tag_of(tags[static_cast<std::size_t>(i)].error()) == i ? 1 : 0;
  BOOST_TEST(right == n);

  // The callback form on a pool of one's own gives the exception pointer.
  asio::thread_pool pool(2);
  std::promise<int> delivered;
  fanout::async_to_thread(
      pool.get_executor(), []() -> int { throw tagged_error(9); },
      [&delivered](std::exception_ptr e, int) { delivered.set_value(tag_of(e)); });
  BOOST_TEST(delivered.get_future().get() == 9);
  pool.join();
}

BOOST_AUTO_TEST_SUITE_END() // exceptions_tests
