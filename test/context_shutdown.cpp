#include <fanout/async_map.hpp>

#include <boost/test/unit_test.hpp>

#include "support/co_test.hpp"
#include "support/counting_input.hpp"
#include "support/lifetime.hpp"
#include "support/outcomes.hpp"
#include "support/ranges.hpp"
#include "support/run_until.hpp"
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

// A stopped or destroyed context: destroying the io_context (or thread_pool) in
// the middle of a map, a group or a periodic call frees everything and runs no
// handler; stopping it pauses them. (Parked waiters: parked_waiters.cpp.)
//
// Every suite sits in its own top-level suite (and namespace): the suites are
// compiled together in unity batches (test/CMakeLists.txt).
BOOST_AUTO_TEST_SUITE(context_shutdown_tests)

namespace asio = boost::asio;
using namespace std::chrono_literals;
using fanout::test::counted;
using fanout::test::counting_input;
using fanout::test::held_value;
using fanout::test::in_flight;
using fanout::test::iota_vector;
using fanout::test::lifetime_counts;
using fanout::test::run_until;
using fanout::test::tracked_sleep;
using fanout::test::tracked_value;
using fanout::test::tracker;
using fanout::test::wait_until;

BOOST_AUTO_TEST_CASE(destroying_the_io_context_in_the_middle_of_a_map_frees_the_map_and_its_items_and_runs_no_handler,
                     *boost::unit_test::timeout(60))
{
  constexpr int n = 100;
  for (const int hint : {1, 2}) { // 2: the map runs its workers on strands
    for (const std::size_t window : {std::size_t{0}, std::size_t{10}}) {
      BOOST_TEST_CONTEXT("concurrency hint " << hint << ", window " << window)
      {
        tracker items;
        lifetime_counts counts;
        std::atomic<int> calls{0};
        // Owned by the map's function object: freed when the map is.
        auto owned = std::make_shared<int>(0);
        const std::weak_ptr<int> map_alive = owned;
        {
          asio::io_context ctx{hint};
          fanout::async_map(
              ctx.get_executor(), fanout::map_options{.max_concurrency = window},
              [&items, &counts, owned = std::move(owned)](int i) {
                // Items 0-4 finish at once: their results wait in the map.
                return held_value(items, counts, i, i < 5 ? 0ms : 10s);
              },
              fanout::test::iota(0, n), [&calls](std::exception_ptr, std::vector<counted>) { ++calls; });
          const auto expected = window == 0 ? n : static_cast<int>(window) + 5;
          BOOST_TEST(run_until(ctx, [&] { return items.started.load() == expected; }));
          ctx.poll(); // nothing more starts
          BOOST_TEST(items.started.load() == expected);
          BOOST_TEST(items.now.load() == expected - 5);
          BOOST_TEST(counts.live() == expected);
        } // destroyed with every item suspended
        BOOST_TEST(calls.load() == 0);
        BOOST_TEST(items.now.load() == 0); // each item's scope ended with its frame
        BOOST_TEST(map_alive.expired());   // the map itself is gone...
        BOOST_TEST(counts.live() == 0);    // ...with the results it held
      }
    }
  }
}

BOOST_AUTO_TEST_CASE(stopping_the_io_context_in_the_middle_of_a_map_pauses_it_and_running_it_again_completes_it,
                     *boost::unit_test::timeout(60))
{
  constexpr int n = 50;
  tracker items;
  lifetime_counts counts;
  asio::io_context ctx{1};
  int calls = 0;
  std::vector<int> values;
  fanout::async_map(
      ctx.get_executor(), [&](int i) { return held_value(items, counts, i, 20ms); }, fanout::test::iota(0, n),
      [&](std::exception_ptr e, std::vector<counted> r) {
        ++calls;
        BOOST_TEST(!e);
        for (const auto& c : r)
          values.push_back(c.value());
      });
  BOOST_TEST(run_until(ctx, [&] { return items.started.load() == n; }));
  ctx.stop();
  std::this_thread::sleep_for(40ms); // every timer expires while the context is stopped
  ctx.run();                         // stopped: runs nothing
  BOOST_TEST(items.now.load() == n);
  BOOST_TEST(calls == 0);
  ctx.restart();
  ctx.run();
  BOOST_TEST(calls == 1);
  BOOST_TEST((values == iota_vector(n)));
  BOOST_TEST(items.now.load() == 0);
  values.clear();
  BOOST_TEST(counts.live() == 0);
  BOOST_TEST(counts.copied.load() == 0);
}

BOOST_AUTO_TEST_CASE(destroying_a_thread_pool_in_the_middle_of_a_map_frees_the_map_and_its_items_and_runs_no_handler,
                     *boost::unit_test::timeout(60))
{
  constexpr int n = 200;
  tracker items;
  lifetime_counts counts;
  std::atomic<int> calls{0};
  auto owned = std::make_shared<int>(0);
  const std::weak_ptr<int> map_alive = owned;
  {
    asio::thread_pool pool(4);
    fanout::async_map(
        pool.get_executor(), fanout::map_options{.max_concurrency = 50},
        [&items, &counts, owned = std::move(owned)](int i) {
          return held_value(items, counts, i, i < 100 ? 1ms : 10s);
        },
        fanout::test::iota(0, n), [&calls](std::exception_ptr, std::vector<counted>) { ++calls; });
    BOOST_TEST(wait_until([&] { return items.started.load() == 150; }));
    pool.stop();
    pool.join();
    BOOST_TEST(items.now.load() == 50);
  }
  BOOST_TEST(calls.load() == 0);
  BOOST_TEST(items.now.load() == 0);
  BOOST_TEST(map_alive.expired());
  BOOST_TEST(counts.live() == 0); // the 100 results already made went with the map
}

BOOST_AUTO_TEST_CASE(destroying_the_io_context_with_a_task_group_of_running_tasks_frees_them_and_runs_no_handler,
                     *boost::unit_test::timeout(60))
{
  constexpr int n = 10;
  {
    // The group lives in a coroutine frame (with_task_group) that awaits its
    // join; everything is destroyed with the context.
    tracker items;
    int calls = 0;
    auto owned = std::make_shared<int>(0);
    const std::weak_ptr<int> body_alive = owned;
    std::vector<fanout::task<int>> handles; // outlive the context: they only watch
    {
      asio::io_context ctx{1};
      asio::co_spawn(ctx,
                     fanout::with_task_group(
                         [&items, &handles, owned = std::move(owned)](fanout::task_group& g) -> asio::awaitable<void> {
                           for (int i = 0; i < n; ++i)
                             handles.push_back(g.spawn(tracked_value(items, 10s, i)));
                           co_return;
                         }),
                     [&calls](std::exception_ptr) { ++calls; });
      BOOST_TEST(run_until(ctx, [&] { return items.started.load() == n; }));
      BOOST_TEST(items.now.load() == n);
    }
    BOOST_TEST(calls == 0);
    BOOST_TEST(items.now.load() == 0);
    BOOST_TEST(body_alive.expired()); // the scope's frame (and its group) is gone
    BOOST_TEST(handles.size() == static_cast<std::size_t>(n));
    for (const auto& h : handles)
      BOOST_TEST(!h.done()); // never finished: destroyed, not run to an end
  }
  {
    // A group object that dies before its context, with a join parked: its
    // destructor asks its tasks to cancel, and the context is destroyed
    // before running that.
    tracker items;
    int joins = 0;
    auto owned = std::make_shared<int>(0);
    const std::weak_ptr<int> join_handler_alive = owned;
    {
      asio::io_context ctx{1};
      fanout::task_group g(ctx.get_executor());
      for (int i = 0; i < n; ++i)
        (void)g.spawn(tracked_sleep(items, 10s));
      g.async_join([&joins, owned = std::move(owned)](std::exception_ptr) { ++joins; });
      BOOST_TEST(run_until(ctx, [&] { return items.started.load() == n; }));
    }
    BOOST_TEST(joins == 0);
    BOOST_TEST(items.now.load() == 0);
    BOOST_TEST(join_handler_alive.expired());
  }
}

BOOST_AUTO_TEST_CASE(stopping_the_io_context_with_running_group_tasks_pauses_them_and_a_restart_joins_them,
                     *boost::unit_test::timeout(60))
{
  constexpr int n = 10;
  tracker items;
  asio::io_context ctx{1};
  fanout::task_group g(ctx.get_executor());
  std::vector<fanout::task<int>> handles;
  for (int i = 0; i < n; ++i)
    handles.push_back(g.spawn(tracked_value(items, 20ms, i)));
  int joins = 0;
  std::exception_ptr joined;
  g.async_join([&](std::exception_ptr e) {
    ++joins;
    joined = e;
  });
  BOOST_TEST(run_until(ctx, [&] { return items.started.load() == n; }));
  ctx.stop();
  std::this_thread::sleep_for(40ms);
  BOOST_TEST(joins == 0);
  BOOST_TEST(items.now.load() == n);
  ctx.restart();
  ctx.run();
  BOOST_TEST(joins == 1);
  BOOST_TEST(!joined);
  BOOST_TEST(items.now.load() == 0);
  for (int i = 0; i < n; ++i)
    BOOST_TEST(fanout::run(ctx, handles[static_cast<std::size_t>(i)]) == i);
}

BOOST_AUTO_TEST_CASE(destroying_the_io_context_in_the_middle_of_call_every_destroys_the_callable_without_calling_it,
                     *boost::unit_test::timeout(60))
{
  {
    // A plain callable, between two ticks.
    std::atomic<int> calls{0};
    auto owned = std::make_shared<int>(0);
    const std::weak_ptr<int> watch = owned;
    fanout::task<void> beat;
    int before = 0;
    {
      asio::io_context ctx{1};
      beat = fanout::call_every(ctx.get_executor(), 5ms, [&calls, owned = std::move(owned)] { ++calls; });
      BOOST_TEST(run_until(ctx, [&] { return calls.load() >= 3; }));
      before = calls.load();
      BOOST_TEST(!watch.expired());
    }
    BOOST_TEST(calls.load() == before); // no tick ran while the context was destroyed
    BOOST_TEST(watch.expired());        // the callable (and what it owns) is gone
    BOOST_TEST(!beat.done());
  }
  {
    // A coroutine callable in the middle of a call.
    tracker items;
    int calls = 0;
    fanout::task<void> beat;
    {
      asio::io_context ctx{1};
      beat = fanout::call_every(ctx.get_executor(), 1ms, [&]() -> asio::awaitable<void> {
        ++calls;
        co_await tracked_sleep(items, 10s);
      });
      BOOST_TEST(run_until(ctx, [&] { return items.now.load() == 1; }));
    }
    BOOST_TEST(calls == 1);
    BOOST_TEST(items.now.load() == 0); // the call in progress was destroyed, its scope ended
    BOOST_TEST(!beat.done());
  }
}

BOOST_AUTO_TEST_CASE(stopping_the_io_context_pauses_call_every_and_a_restart_skips_the_missed_ticks,
                     *boost::unit_test::timeout(60))
{
  asio::io_context ctx{1};
  int calls = 0;
  auto beat = fanout::call_every(ctx.get_executor(), 10ms, [&calls] { ++calls; });
  BOOST_TEST(run_until(ctx, [&] { return calls >= 2; }));
  ctx.stop();
  const int before = calls;
  std::this_thread::sleep_for(100ms); // ten periods missed
  BOOST_TEST(calls == before);
  ctx.restart();
  BOOST_TEST(run_until(ctx, [&] { return calls > before; }));
  ctx.poll();
  // One late call, then back on the grid: no burst of the ten missed ticks.
  BOOST_TEST(calls >= before + 1);
  BOOST_TEST(calls <= before + 2);
  beat.cancel();
  ctx.run();
  BOOST_TEST(beat.done());
}

namespace {

// A task body that holds a counted value in its frame while it awaits a long
// sleep under a long timeout.
asio::awaitable<void> waits_under_a_timeout(tracker& items, lifetime_counts& counts)
{
  const in_flight scope(items);
  const counted held(counts, 1);
  co_await fanout::with_timeout(fanout::sleep(10s), 20s);
}

// Reads an as-completed stream whose items 0 and 1 finish at once and the
// others sleep; the function object holds @p owned.
asio::awaitable<void> read_as_completed(tracker& items, lifetime_counts& counts, counted owned, int n)
{
  auto stream = fanout::async_map_as_completed(
      [&items, &counts, owned = std::move(owned)](int i) { return held_value(items, counts, i, i < 2 ? 0ms : 10s); },
      fanout::test::iota(0, n));
  while (co_await stream.async_next()) {
  }
}

} // namespace

// Destroying an io_context frees what waited on it.
BOOST_AUTO_TEST_CASE(destroying_the_io_context_while_a_task_awaits_with_timeout_frees_the_task_frame,
                     *boost::unit_test::timeout(60))
{
  for (const int hint : {1, 2}) { // 2: the task runs on a strand
    for (const bool keep_handle : {false, true}) {
      BOOST_TEST_CONTEXT("concurrency hint " << hint << ", handle " << (keep_handle ? "kept" : "dropped"))
      {
        tracker items;
        lifetime_counts counts;
        fanout::task<void> kept; // outlives the context: it only watches
        {
          asio::io_context ctx{hint};
          auto t = fanout::spawn(ctx, waits_under_a_timeout(items, counts));
          if (keep_handle)
            kept = t;
          BOOST_TEST(run_until(ctx, [&] { return items.started.load() == 1; }));
          ctx.poll();
          BOOST_TEST(counts.live() == 1);
        } // destroyed while the task is suspended
        BOOST_TEST(items.now.load() == 0);
        BOOST_TEST(counts.live() == 0);
        BOOST_TEST(!kept.done());
      }
    }
  }
}

BOOST_AUTO_TEST_CASE(
    destroying_the_io_context_while_an_as_completed_stream_or_a_map_with_item_timeout_is_pending_frees_all,
    *boost::unit_test::timeout(60))
{
  constexpr int n = 8;
  for (const int hint : {1, 2}) { // 2: the workers run on strands
    for (const bool stream : {true, false}) {
      BOOST_TEST_CONTEXT("concurrency hint " << hint << ", " << (stream ? "as-completed stream" : "item_timeout map"))
      {
        tracker items;
        lifetime_counts item_counts;     // held by the items' frames and by the results
        lifetime_counts function_counts; // held by the mapped function objects
        int calls = 0;
        {
          asio::io_context ctx{hint};
          if (stream) {
            asio::co_spawn(ctx, read_as_completed(items, item_counts, counted(function_counts, 0), n),
                           [&calls](std::exception_ptr) { ++calls; });
          } else {
            fanout::async_map(
                ctx.get_executor(), fanout::map_options{.item_timeout = 20s},
                [&items, &item_counts, owned = counted(function_counts, 1)](int i) {
                  return held_value(items, item_counts, i, i < 2 ? 0ms : 10s);
                },
                fanout::test::iota(0, n), [&calls](std::exception_ptr, std::vector<counted>) { ++calls; });
          }
          BOOST_TEST(run_until(ctx, [&] { return items.started.load() == n; }));
          ctx.poll();
          BOOST_TEST(items.now.load() == n - 2);
          BOOST_TEST(item_counts.live() > 0);
          BOOST_TEST(function_counts.live() > 0);
        } // destroyed with the items suspended
        BOOST_TEST(calls == 0);
        BOOST_TEST(items.now.load() == 0);
        BOOST_TEST(item_counts.live() == 0);     // every item frame and result is gone...
        BOOST_TEST(function_counts.live() == 0); // ...and the engine with its function object
      }
    }
  }
}

BOOST_AUTO_TEST_SUITE_END() // context_shutdown_tests
