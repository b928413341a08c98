#include <fanout/async_map.hpp>

#include <boost/test/unit_test.hpp>

#include "support/co_test.hpp"
#include "support/counting_input.hpp"
#include "support/lifetime.hpp"
#include "support/outcomes.hpp"
#include "support/ranges.hpp"

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

// Every suite sits in its own top-level suite (and namespace): the suites are
// compiled together in unity batches (test/CMakeLists.txt).
BOOST_AUTO_TEST_SUITE(faults_tests)

// Sanitized builds (TSan, ASan, and clang's UBSan, which the clang preset
// uses) run 5-15 times slower: the huge-input test scales down there.
#if defined(__SANITIZE_THREAD__) || defined(__SANITIZE_ADDRESS__)
#define FANOUT_FAULTS_SANITIZED 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer) || __has_feature(address_sanitizer) || __has_feature(undefined_behavior_sanitizer)
#define FANOUT_FAULTS_SANITIZED 1
#endif
#endif

namespace asio = boost::asio;
using fanout::test::counting_input;
using namespace std::chrono_literals;
using fanout::test::code_of;
using fanout::test::counted;
using fanout::test::emit_after;
using fanout::test::exception_of;
using fanout::test::iota_vector;
using fanout::test::item_scope;
using fanout::test::lifetime_counts;
using fanout::test::live_items;
using fanout::test::seconds_since;
using fanout::test::timed_out;
using fanout::test::unit;

namespace {

// An exception that can be told apart from any other.
struct tagged_error : std::runtime_error
{
  explicit tagged_error(int t) : std::runtime_error("tagged " + std::to_string(t)), tag(t) {}
  int tag;
};

// Thrown by completion handlers.
struct handler_error : std::runtime_error
{
  explicit handler_error(int t) : std::runtime_error("handler " + std::to_string(t)), tag(t) {}
  int tag;
};

// The tag of the tagged_error (or the int) @p e holds: -1 if null, -2 if
// something else.
int tag_of(const std::exception_ptr& e)
{
  if (!e)
    return -1;
  try {
    std::rethrow_exception(e);
  } catch (const tagged_error& error) {
    return error.tag;
  } catch (int tag) {
    return tag;
  } catch (...) {
    return -2;
  }
}

bool is_bad_function_call(const std::exception_ptr& e)
{
  if (!e)
    return false;
  try {
    std::rethrow_exception(e);
  } catch (const std::bad_function_call&) {
    return true;
  } catch (...) {
    return false;
  }
}

// Runs @p ctx until @p done() holds (at most @p limit); tells whether it does.
template <typename Predicate>
bool run_until(asio::io_context& ctx, Predicate done, fanout::clock::duration limit = 10s)
{
  const auto end = fanout::clock::now() + limit;
  while (!done() && fanout::clock::now() < end)
    ctx.run_one_for(10ms);
  return done();
}

// Waits (without running anything) until @p done() holds, at most @p limit.
template <typename Predicate>
bool wait_until(Predicate done, fanout::clock::duration limit = 10s)
{
  const auto end = fanout::clock::now() + limit;
  while (!done() && fanout::clock::now() < end)
    std::this_thread::sleep_for(1ms);
  return done();
}

// A counted value made by a coroutine, after suspending once if asked.
asio::awaitable<counted> make_counted(lifetime_counts& counts, int i, bool suspend)
{
  if (suspend)
    co_await fanout::sleep(0ms);
  co_return counted(counts, i);
}

// An item that holds a counted value in its frame while it sleeps, then
// returns it; live for its whole life, however it ends.
asio::awaitable<counted> held_value(live_items& items, lifetime_counts& counts, int i, fanout::clock::duration delay)
{
  const item_scope scope(items);
  counted held(counts, i);
  co_await fanout::sleep(delay);
  co_return std::move(held);
}

asio::awaitable<int> held_int(live_items& items, fanout::clock::duration delay, int value)
{
  const item_scope scope(items);
  co_await fanout::sleep(delay);
  co_return value;
}

asio::awaitable<void> held_sleep(live_items& items, fanout::clock::duration delay)
{
  const item_scope scope(items);
  co_await fanout::sleep(delay);
}

asio::awaitable<int> fails_after(live_items& items, fanout::clock::duration delay, int tag)
{
  const item_scope scope(items);
  co_await fanout::sleep(delay);
  throw tagged_error(tag);
}

asio::awaitable<int> coroutine_value(int i)
{
  co_return i;
}

// Checks the lifetime counts of a map that made @p n counted results.
void check_no_copies(const lifetime_counts& counts, std::int64_t n, std::int64_t moves_per_item)
{
  BOOST_TEST(counts.constructed.load() == n);
  BOOST_TEST(counts.copied.load() == 0);
  BOOST_TEST(counts.moved.load() <= moves_per_item * n);
}

} // namespace

BOOST_AUTO_TEST_SUITE(result_lifetimes)

FANOUT_CO_TEST_CASE(async_map_of_coroutine_items_copies_no_result_and_destroys_every_one)
{
  constexpr int n = 1000;
  for (const std::size_t window : {std::size_t{0}, std::size_t{7}}) {
    lifetime_counts counts;
    {
      auto results = co_await fanout::async_map(
          {.max_concurrency = window}, [&counts](int i) { return make_counted(counts, i, i % 3 == 0); },
          fanout::test::iota(0, n));
      BOOST_TEST_REQUIRE(results.size() == static_cast<std::size_t>(n));
      int wrong = 0;
      for (int i = 0; i < n; ++i)
        wrong += results[static_cast<std::size_t>(i)].value() == i ? 0 : 1;
      BOOST_TEST(wrong == 0);
      BOOST_TEST(counts.live() == n); // exactly the results, nothing left inside the map
      BOOST_TEST_MESSAGE("coroutine items, window " << window << ": " << counts.moved.load() << " moves for " << n
                                                    << " results");
      check_no_copies(counts, n, 8);
    }
    BOOST_TEST(counts.live() == 0);
  }
}

FANOUT_CO_TEST_CASE(async_map_of_inline_plain_calls_copies_no_result_and_destroys_every_one)
{
  constexpr int n = 1000;
  {
    lifetime_counts counts;
    {
      auto results = co_await fanout::async_map([&counts](int i) { return counted(counts, i); },
                                                fanout::test::iota(0, n)); // sized: the results are reserved
      BOOST_TEST_REQUIRE(results.size() == static_cast<std::size_t>(n));
      BOOST_TEST(results.back().value() == n - 1);
      BOOST_TEST(counts.live() == n);
      BOOST_TEST_MESSAGE("inline calls, sized input: " << counts.moved.load() << " moves for " << n << " results");
      check_no_copies(counts, n, 8);
    }
    BOOST_TEST(counts.live() == 0);
  }
  {
    lifetime_counts counts;
    counting_input input(n); // unsized: the results vector grows
    {
      auto results = co_await fanout::async_map([&counts](int i) { return counted(counts, i); }, input);
      BOOST_TEST_REQUIRE(results.size() == static_cast<std::size_t>(n));
      BOOST_TEST(results.back().value() == n - 1);
      BOOST_TEST_MESSAGE("inline calls, unsized input: " << counts.moved.load() << " moves for " << n << " results");
      check_no_copies(counts, n, 8);
    }
    BOOST_TEST(counts.live() == 0);
  }
}

FANOUT_CO_TEST_CASE(async_map_settled_streams_and_offloaded_calls_copy_no_result_and_destroy_every_one)
{
  constexpr int n = 500;
  {
    lifetime_counts counts;
    {
      auto results = co_await fanout::async_map_settled(
          [&counts](int i) { return make_counted(counts, i, i % 2 == 0); }, fanout::test::iota(0, n));
      BOOST_TEST(results.size() == static_cast<std::size_t>(n));
      BOOST_TEST(results.back().value().value() == n - 1);
      BOOST_TEST_MESSAGE("settled coroutine items: " << counts.moved.load() << " moves for " << n << " results");
      check_no_copies(counts, n, 8);
    }
    BOOST_TEST(counts.live() == 0);
  }
  {
    lifetime_counts counts;
    {
      auto results = co_await fanout::async_map(
          {.blocking = fanout::blocking_policy::offload}, [&counts](int i) { return counted(counts, i); },
          fanout::test::iota(0, n));
      BOOST_TEST(results.size() == static_cast<std::size_t>(n));
      BOOST_TEST_MESSAGE("offloaded calls: " << counts.moved.load() << " moves for " << n << " results");
      check_no_copies(counts, n, 32);
    }
    BOOST_TEST(counts.live() == 0);
  }
  {
    lifetime_counts counts;
    int read = 0;
    {
      auto stream = fanout::async_map_stream(
          {.max_concurrency = 16}, [&counts](int i) { return make_counted(counts, i, i % 2 == 0); },
          fanout::test::iota(0, n));
      while (auto v = co_await stream.next())
        read += v->value() == read ? 1 : 0;
      BOOST_TEST_MESSAGE("ordered stream: " << counts.moved.load() << " moves for " << n << " results");
      check_no_copies(counts, n, 32);
    }
    BOOST_TEST(read == n);
    BOOST_TEST(counts.live() == 0);
  }
  {
    lifetime_counts counts;
    {
      // Destroyed with results made and never read.
      auto stream = fanout::async_map_as_completed([&counts](int i) { return make_counted(counts, i, false); },
                                                   fanout::test::iota(0, n));
      BOOST_TEST((co_await stream.next()).has_value());
      co_await fanout::sleep(1ms);
      BOOST_TEST(counts.live() >= n - 1); // the unread results wait in the stream
      BOOST_TEST(counts.copied.load() == 0);
    }
    BOOST_TEST(counts.live() == 0);
  }
}

FANOUT_CO_TEST_CASE(a_failing_map_destroys_every_result_it_had_collected_and_every_suspended_item)
{
  constexpr int n = 100;
  {
    // Coroutine items: the early ones have stored results, the late ones
    // hold values in their suspended frames when item n-1 fails.
    lifetime_counts counts;
    live_items items;
    const auto e = co_await exception_of(fanout::async_map(
        [&](int i) -> asio::awaitable<counted> {
          if (i == n - 1) {
            co_await fanout::sleep(5ms);
            throw tagged_error(i);
          }
          co_return co_await held_value(items, counts, i, i < n / 2 ? 0ms : 10s);
        },
        fanout::test::iota(0, n)));
    BOOST_TEST(tag_of(e) == n - 1);
    BOOST_TEST(items.now.load() == 0);
    BOOST_TEST(counts.live() == 0);
    BOOST_TEST(counts.copied.load() == 0);
  }
  {
    // Inline plain calls: the results made before the failure.
    lifetime_counts counts;
    const auto e = co_await exception_of(fanout::async_map(
        [&counts](int i) {
          if (i == n / 2)
            throw tagged_error(i);
          return counted(counts, i);
        },
        fanout::test::iota(0, n)));
    BOOST_TEST(tag_of(e) == n / 2);
    BOOST_TEST(counts.constructed.load() == n / 2);
    BOOST_TEST(counts.live() == 0);
  }
  {
    // Settled: failures among the values; all gone with the outcomes.
    lifetime_counts counts;
    {
      auto outcomes = co_await fanout::async_map_settled(
          [&counts](int i) -> asio::awaitable<counted> {
            if (i % 10 == 3)
              throw tagged_error(i);
            co_return co_await make_counted(counts, i, i % 2 == 0);
          },
          fanout::test::iota(0, n));
      BOOST_TEST(tag_of(outcomes[13].error()) == 13);
      BOOST_TEST(counts.live() == n - n / 10);
    }
    BOOST_TEST(counts.live() == 0);
    BOOST_TEST(counts.copied.load() == 0);
  }
}

BOOST_AUTO_TEST_CASE(a_cancelled_map_has_destroyed_every_result_and_item_by_the_time_its_handler_runs,
                     *boost::unit_test::timeout(60))
{
  constexpr int n = 100;
  asio::io_context ctx{1};
  lifetime_counts counts;
  live_items items;
  asio::cancellation_signal signal;
  asio::steady_timer canceller(ctx);
  emit_after(canceller, signal, 10ms);
  int calls = 0;
  std::exception_ptr error;
  std::int64_t live_in_handler = -1;
  std::int64_t items_in_handler = -1;
  fanout::async_map(
      ctx.get_executor(), [&](int i) { return held_value(items, counts, i, i % 2 == 0 ? 0ms : 10s); },
      fanout::test::iota(0, n),
      asio::bind_cancellation_slot(signal.slot(), [&](std::exception_ptr e, std::vector<counted> r) {
        ++calls;
        error = e;
        live_in_handler = counts.live() - static_cast<std::int64_t>(r.size());
        items_in_handler = items.now.load();
      }));
  const auto start = fanout::clock::now();
  ctx.run();
  BOOST_TEST(seconds_since(start) < 5.0);
  BOOST_TEST(calls == 1);
  BOOST_TEST(code_of(error) == asio::error::operation_aborted);
  BOOST_TEST(items.started.load() == n);
  BOOST_TEST(items_in_handler == 0);
  BOOST_TEST(live_in_handler == 0); // the 50 values already made were dropped with the map
  BOOST_TEST(counts.live() == 0);
  BOOST_TEST(counts.copied.load() == 0);
}

FANOUT_CO_TEST_CASE(a_task_awaited_twice_moves_its_value_to_the_first_waiter_only_and_copies_nothing)
{
  lifetime_counts counts;
  {
    auto t = fanout::spawn(co_await asio::this_coro::executor, make_counted(counts, 7, true));
    auto copy = t; // a second handle to the same task
    const counted first = co_await t.async_wait();
    BOOST_TEST(first.value() == 7);
    const auto e = co_await exception_of(copy.async_wait());
    BOOST_TEST(code_of(e) == fanout::make_error_code(fanout::error::already_awaited));
    BOOST_TEST(counts.constructed.load() == 1);
    BOOST_TEST(counts.copied.load() == 0);
    BOOST_TEST(counts.live() <= 2); // `first`, and at most the moved-from husk the task state keeps
    BOOST_TEST_MESSAGE("task value: " << counts.moved.load() << " moves");
  }
  BOOST_TEST(counts.live() == 0);
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(stopped_or_destroyed_context)

BOOST_AUTO_TEST_CASE(destroying_the_io_context_in_the_middle_of_a_map_frees_the_map_and_its_items_and_runs_no_handler,
                     *boost::unit_test::timeout(60))
{
  constexpr int n = 100;
  for (const int hint : {1, 2}) { // 2: the map runs its workers on strands
    for (const std::size_t window : {std::size_t{0}, std::size_t{10}}) {
      BOOST_TEST_CONTEXT("concurrency hint " << hint << ", window " << window)
      {
        live_items items;
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
  live_items items;
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
  live_items items;
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
    live_items items;
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
                             handles.push_back(g.spawn(held_int(items, 10s, i)));
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
    live_items items;
    int joins = 0;
    auto owned = std::make_shared<int>(0);
    const std::weak_ptr<int> join_handler_alive = owned;
    {
      asio::io_context ctx{1};
      fanout::task_group g(ctx.get_executor());
      for (int i = 0; i < n; ++i)
        (void)g.spawn(held_sleep(items, 10s));
      g.join([&joins, owned = std::move(owned)](std::exception_ptr) { ++joins; });
      BOOST_TEST(run_until(ctx, [&] { return items.started.load() == n; }));
    }
    BOOST_TEST(joins == 0);
    BOOST_TEST(items.now.load() == 0);
    BOOST_TEST(join_handler_alive.expired());
  }
}

BOOST_AUTO_TEST_CASE(destroying_the_io_context_while_coroutines_await_a_task_or_a_stream_frees_their_frames,
                     *boost::unit_test::timeout(60))
{
  live_items items;
  auto owned_by_task_waiter = std::make_shared<int>(0);
  auto owned_by_stream_reader = std::make_shared<int>(0);
  const std::weak_ptr<int> task_waiter_alive = owned_by_task_waiter;
  const std::weak_ptr<int> stream_reader_alive = owned_by_stream_reader;
  int calls = 0;
  {
    asio::io_context ctx{1};
    const auto ex = ctx.get_executor();
    auto t = fanout::spawn(ex, held_int(items, 10s, 1));
    asio::co_spawn(
        ex,
        [](fanout::task<int> awaited, std::shared_ptr<int>) -> asio::awaitable<void> {
          (void)co_await awaited.async_wait();
        }(t, std::move(owned_by_task_waiter)),
        [&calls](std::exception_ptr) { ++calls; });
    asio::co_spawn(
        ex,
        [](live_items& tracked, std::shared_ptr<int>) -> asio::awaitable<void> {
          auto stream = fanout::async_map_stream([&tracked](int i) { return held_int(tracked, 10s, i); },
                                                 fanout::test::iota(0, 3));
          while (co_await stream.next()) {
          }
        }(items, std::move(owned_by_stream_reader)),
        [&calls](std::exception_ptr) { ++calls; });
    BOOST_TEST(run_until(ctx, [&] { return items.started.load() == 4; }));
  }
  BOOST_TEST(calls == 0);
  BOOST_TEST(items.now.load() == 0);
  BOOST_TEST(task_waiter_alive.expired());
  BOOST_TEST(stream_reader_alive.expired());
}

BOOST_AUTO_TEST_CASE(stopping_the_io_context_with_running_group_tasks_pauses_them_and_a_restart_joins_them,
                     *boost::unit_test::timeout(60))
{
  constexpr int n = 10;
  live_items items;
  asio::io_context ctx{1};
  fanout::task_group g(ctx.get_executor());
  std::vector<fanout::task<int>> handles;
  for (int i = 0; i < n; ++i)
    handles.push_back(g.spawn(held_int(items, 20ms, i)));
  int joins = 0;
  std::exception_ptr joined;
  g.join([&](std::exception_ptr e) {
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
    live_items items;
    int calls = 0;
    fanout::task<void> beat;
    {
      asio::io_context ctx{1};
      beat = fanout::call_every(ctx.get_executor(), 1ms, [&]() -> asio::awaitable<void> {
        ++calls;
        co_await held_sleep(items, 10s);
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

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(exceptions)

BOOST_AUTO_TEST_CASE(an_exception_from_any_completion_handler_propagates_out_of_run_and_the_context_runs_again,
                     *boost::unit_test::timeout(60))
{
  asio::io_context ctx{1};
  const auto ex = ctx.get_executor();
  const std::vector<int> xs = iota_vector(10);
  live_items items;
  auto twice = [&items](int x) -> asio::awaitable<int> { co_return 2 * co_await held_int(items, 1ms, x); };
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
      ex, [&items](int x) { return fails_after(items, 1ms, x); }, xs,
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
  auto t = fanout::spawn(ex, held_int(items, 1ms, 3));
  t.async_wait([&](std::exception_ptr, int v) {
    ++calls;
    throw handler_error(v);
  });
  BOOST_TEST(run_and_catch() == 3);
  fanout::task_group g(ex);
  (void)g.spawn(held_int(items, 1ms, 4));
  g.join([&](std::exception_ptr) {
    ++calls;
    throw handler_error(4);
  });
  BOOST_TEST(run_and_catch() == 4);
  fanout::async_with_deadline(ex, held_int(items, 1ms, 5), fanout::clock::now() + 10s, [&](std::exception_ptr, int v) {
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
  stream.next(asio::bind_executor(ex, [&](std::exception_ptr, std::optional<int> v) {
    ++calls;
    throw handler_error(*v + 1000);
  }));
  BOOST_TEST(run_and_catch() == 1000);
  fanout::run(ctx, [&]() -> asio::awaitable<void> {
    while (auto v = co_await stream.next())
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

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(cancellation_stages)

namespace {

asio::awaitable<int> counted_call(int& calls, int i)
{
  ++calls;
  co_return i;
}

// Waits to be cancelled (swallowing it, so that the coroutine's cancellation
// state stays cancelled), then awaits a map of five items that count their
// calls: coroutine items with async_map, plain calls with async_map_settled.
asio::awaitable<int> map_after_cancellation(bool throw_if_cancelled, bool coroutine_items, int& calls)
{
  co_await asio::this_coro::throw_if_cancelled(throw_if_cancelled);
  try {
    co_await fanout::sleep(10s);
  } catch (const boost::system::system_error&) {
  }
  if (coroutine_items)
    co_return static_cast<int>(
        (co_await fanout::async_map([&calls](int i) { return counted_call(calls, i); }, fanout::test::iota(0, 5)))
            .size());
  co_return static_cast<int>((co_await fanout::async_map_settled(
                                  [&calls](int i) {
                                    ++calls;
                                    return i;
                                  },
                                  fanout::test::iota(0, 5)))
                                 .size());
}

} // namespace

FANOUT_CO_TEST_CASE(cancellation_that_arrived_before_the_map_started_starts_no_item)
{
  auto ex = co_await asio::this_coro::executor;
  for (const bool throw_if_cancelled : {false, true}) {
    for (const bool coroutine_items : {true, false}) {
      int calls = 0;
      asio::cancellation_signal signal;
      asio::steady_timer canceller(ex);
      const auto start = fanout::clock::now();
      emit_after(canceller, signal, 5ms);
      auto [e, size] =
          co_await asio::co_spawn(ex, map_after_cancellation(throw_if_cancelled, coroutine_items, calls),
                                  asio::bind_cancellation_slot(signal.slot(), asio::as_tuple(asio::use_awaitable)));
      BOOST_TEST_CONTEXT("throw_if_cancelled " << throw_if_cancelled << ", "
                                               << (coroutine_items ? "coroutine" : "plain") << " items")
      {
        BOOST_TEST(code_of(e) == asio::error::operation_aborted);
        BOOST_TEST(size == 0);
        BOOST_TEST(calls == 0);
        BOOST_TEST(seconds_since(start) < 1.0);
      }
    }
  }
}

FANOUT_CO_TEST_CASE(cancellation_while_items_wait_for_the_window_never_starts_them)
{
  auto ex = co_await asio::this_coro::executor;
  {
    // Coroutine items, one at a time: item 0 runs, the rest wait.
    std::vector<int> started;
    live_items items;
    asio::cancellation_signal signal;
    asio::steady_timer canceller(ex);
    const auto start = fanout::clock::now();
    emit_after(canceller, signal, 10ms);
    auto [e, r] =
        co_await asio::co_spawn(ex,
                                fanout::async_map(
                                    {.max_concurrency = 1},
                                    [&](int i) {
                                      started.push_back(i);
                                      return held_int(items, 10s, i);
                                    },
                                    fanout::test::iota(0, 5)),
                                asio::bind_cancellation_slot(signal.slot(), asio::as_tuple(asio::use_awaitable)));
    BOOST_TEST(code_of(e) == asio::error::operation_aborted);
    BOOST_TEST(r.empty());
    BOOST_TEST((started == std::vector<int>{0}));
    BOOST_TEST(items.now.load() == 0);
    BOOST_TEST(seconds_since(start) < 1.0);
  }
  {
    // Offloaded blocking calls, one at a time: the running one is waited for,
    // the queued ones never start.
    std::atomic<int> ran{0};
    std::atomic<int> started{0};
    asio::cancellation_signal signal;
    asio::steady_timer canceller(ex);
    emit_after(canceller, signal, 10ms);
    auto [e, r] =
        co_await asio::co_spawn(ex,
                                fanout::async_map(
                                    {.max_concurrency = 1, .blocking = fanout::blocking_policy::offload},
                                    [&](int i) {
                                      ++started;
                                      std::this_thread::sleep_for(40ms);
                                      ++ran;
                                      return i;
                                    },
                                    fanout::test::iota(0, 5)),
                                asio::bind_cancellation_slot(signal.slot(), asio::as_tuple(asio::use_awaitable)));
    BOOST_TEST(code_of(e) == asio::error::operation_aborted);
    BOOST_TEST(started.load() == 1);
    BOOST_TEST(ran.load() == 1);
  }
  {
    // A stream with a window of one, cancelled while item 0 runs.
    std::vector<int> started;
    live_items items;
    auto stream = fanout::async_map_as_completed(
        {.max_concurrency = 1},
        [&](int i) {
          started.push_back(i);
          return held_int(items, 10s, i);
        },
        fanout::test::iota(0, 5));
    asio::steady_timer canceller(ex, 10ms);
    canceller.async_wait([&stream](boost::system::error_code ec) {
      if (!ec)
        stream.cancel();
    });
    const auto e = co_await exception_of(stream.next());
    BOOST_TEST(code_of(e) == asio::error::operation_aborted);
    BOOST_TEST((started == std::vector<int>{0}));
    BOOST_TEST(items.now.load() == 0);
  }
}

FANOUT_CO_TEST_CASE(cancellation_while_items_run_aborts_the_suspended_ones_and_leaves_the_finished_ones_finished)
{
  auto ex = co_await asio::this_coro::executor;
  constexpr int n = 20;
  for (const bool settled : {false, true}) {
    std::vector<int> outcome(n, 0); // 1 returned, 2 aborted
    live_items items;
    auto item = [&](int i) -> asio::awaitable<int> {
      try {
        co_await held_sleep(items, i % 2 == 0 ? 0ms : 10s);
      } catch (const boost::system::system_error& error) {
        outcome[static_cast<std::size_t>(i)] = error.code() == asio::error::operation_aborted ? 2 : 3;
        throw;
      }
      outcome[static_cast<std::size_t>(i)] = 1;
      co_return i;
    };
    asio::cancellation_signal signal;
    asio::steady_timer canceller(ex);
    const auto start = fanout::clock::now();
    emit_after(canceller, signal, 10ms);
    std::exception_ptr e;
    if (settled)
      e = std::get<0>(
          co_await asio::co_spawn(ex, fanout::async_map_settled(item, fanout::test::iota(0, n)),
                                  asio::bind_cancellation_slot(signal.slot(), asio::as_tuple(asio::use_awaitable))));
    else
      e = std::get<0>(
          co_await asio::co_spawn(ex, fanout::async_map(item, fanout::test::iota(0, n)),
                                  asio::bind_cancellation_slot(signal.slot(), asio::as_tuple(asio::use_awaitable))));
    BOOST_TEST_CONTEXT((settled ? "async_map_settled" : "async_map"))
    {
      BOOST_TEST(code_of(e) == asio::error::operation_aborted);
      BOOST_TEST(seconds_since(start) < 1.0);
      std::vector<int> expected;
      for (int i = 0; i < n; ++i)
        expected.push_back(i % 2 == 0 ? 1 : 2);
      BOOST_TEST(outcome == expected, boost::test_tools::per_element());
      BOOST_TEST(items.now.load() == 0);
      BOOST_TEST(items.started.load() == n);
    }
  }
}

BOOST_AUTO_TEST_CASE(cancellation_after_completion_has_no_effect, *boost::unit_test::timeout(60))
{
  asio::io_context ctx{1};
  const auto ex = ctx.get_executor();
  live_items items;
  {
    // Emitted after the handler ran, and from inside the handler.
    asio::cancellation_signal signal;
    int calls = 0;
    std::vector<int> values;
    fanout::async_map(
        ex, [&items](int i) { return held_int(items, 1ms, i); }, iota_vector(5),
        asio::bind_cancellation_slot(signal.slot(), [&](std::exception_ptr e, std::vector<int> r) {
          ++calls;
          BOOST_TEST(!e);
          values = std::move(r);
          signal.emit(asio::cancellation_type::terminal);
        }));
    ctx.run();
    for (const auto type :
         {asio::cancellation_type::terminal, asio::cancellation_type::partial, asio::cancellation_type::total})
      signal.emit(type);
    ctx.restart();
    ctx.run();
    BOOST_TEST(calls == 1);
    BOOST_TEST((values == iota_vector(5)));
  }
  {
    // A finished task, a joined group, a stream at its end.
    auto t = fanout::spawn(ex, held_int(items, 1ms, 7));
    fanout::task_group g(ex);
    (void)g.spawn(held_sleep(items, 1ms));
    auto stream = fanout::async_map_stream([&items](int i) { return held_int(items, 1ms, i); }, iota_vector(3));
    const auto read_all = [&]() -> asio::awaitable<int> {
      int read = 0;
      while (co_await stream.next())
        ++read;
      co_await g.join();
      co_return read;
    };
    BOOST_TEST(fanout::run(ctx, read_all()) == 3);
    BOOST_TEST(t.done());
    t.cancel();
    g.cancel();
    stream.cancel();
    BOOST_TEST(fanout::run(ctx, t) == 7); // the value is still there, once
    BOOST_TEST(!fanout::run(ctx, exception_of(g.join())));
    BOOST_TEST(!fanout::run(ctx, [&]() -> asio::awaitable<bool> { co_return (co_await stream.next()).has_value(); }()));
  }
  BOOST_TEST(items.now.load() == 0);
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(bad_input)

FANOUT_CO_TEST_CASE(max_concurrency_0_means_unlimited_and_the_largest_value_is_accepted)
{
  constexpr int n = 200;
  for (const std::size_t window : {std::size_t{0}, std::numeric_limits<std::size_t>::max()}) {
    BOOST_TEST_CONTEXT("max_concurrency " << window)
    {
      live_items items;
      const auto start = fanout::clock::now();
      const auto r = co_await fanout::async_map(
          {.max_concurrency = window}, [&items](int i) { return held_int(items, 20ms, i); }, fanout::test::iota(0, n));
      BOOST_TEST((r == iota_vector(n)));
      BOOST_TEST(items.peak.load() == n);
      FANOUT_CHECK_ELAPSED(seconds_since(start), 20ms);

      live_items streamed;
      auto stream = fanout::async_map_as_completed(
          {.max_concurrency = window}, [&streamed](int i) { return held_int(streamed, 20ms, i); },
          fanout::test::iota(0, n));
      int read = 0;
      while (co_await stream.next())
        ++read;
      BOOST_TEST(read == n);
      BOOST_TEST(streamed.peak.load() == n);

      const auto settled = co_await fanout::async_map_settled(
          {.max_concurrency = window}, [](int i) { return i; }, fanout::test::iota(0, n));
      BOOST_TEST(settled.size() == static_cast<std::size_t>(n));
    }
  }
}

FANOUT_CO_TEST_CASE(zipped_ranges_of_unequal_length_stop_at_the_shortest_and_read_nothing_past_it)
{
  const std::vector<int> three{10, 20, 30};
  {
    counting_input long_input(1000);
    const auto r = co_await fanout::async_map([](int a, int b) { return a + b; }, long_input, three);
    BOOST_TEST((r == std::vector<int>{10, 21, 32}));
    BOOST_TEST(long_input.pulled.load() == 3); // inline calls: not one element more
  }
  {
    counting_input long_input(1000);
    const auto r =
        co_await fanout::async_map([](int a, int b) -> asio::awaitable<int> { co_return a + b; }, long_input, three);
    BOOST_TEST((r == std::vector<int>{10, 21, 32}));
    BOOST_TEST(long_input.pulled.load() == 3); // coroutine items: not one element more
  }
  {
    counting_input long_input(1000);
    auto stream = fanout::async_map_stream([](int a, int b) { return a * b; }, three, long_input);
    std::vector<int> got;
    while (auto v = co_await stream.next())
      got.push_back(*v);
    BOOST_TEST((got == std::vector<int>{0, 20, 60}));
    BOOST_TEST(long_input.pulled.load() == 3);
  }
  {
    // An empty range first, then a practically endless one.
    counting_input endless(std::numeric_limits<int>::max());
    const std::vector<int> none;
    int calls = 0;
    const auto r = co_await fanout::async_map(
        [&calls](int a, int b) {
          ++calls;
          return a + b;
        },
        none, endless);
    BOOST_TEST(r.empty());
    BOOST_TEST(calls == 0);
    BOOST_TEST(endless.pulled.load() == 0);
  }
}

FANOUT_CO_TEST_CASE(a_callable_that_throws_on_its_first_call_fails_the_map_and_starts_nothing_else)
{
  // One thread: the first call throws before any other item could start.
  int calls = 0;
  const auto first_call_throws = [&calls](int i) {
    if (calls++ == 0)
      throw tagged_error(i);
    return i;
  };
  BOOST_TEST(tag_of(co_await exception_of(fanout::async_map(first_call_throws, fanout::test::iota(0, 10)))) == 0);
  BOOST_TEST(calls == 1);

  // The same as a function returning coroutines, and offloaded with a window
  // of one (the pool could otherwise start several at once).
  calls = 0;
  BOOST_TEST(tag_of(co_await exception_of(fanout::async_map(
                 [&](int i) {
                   first_call_throws(i);
                   return coroutine_value(i);
                 },
                 fanout::test::iota(0, 10)))) == 0);
  BOOST_TEST(calls == 1);
  calls = 0;
  std::atomic<int> offloaded_calls{0};
  BOOST_TEST(tag_of(co_await exception_of(fanout::async_map(
                 {.max_concurrency = 1, .blocking = fanout::blocking_policy::offload},
                 [&offloaded_calls](int i) {
                   if (offloaded_calls++ == 0)
                     throw tagged_error(i);
                   return i;
                 },
                 fanout::test::iota(0, 10)))) == 0);
  BOOST_TEST(offloaded_calls.load() == 1);

  // A stream fails the same way; collect-all goes on with the other items.
  calls = 0;
  auto stream = fanout::async_map_stream(first_call_throws, fanout::test::iota(0, 10));
  BOOST_TEST(tag_of(co_await exception_of(stream.next())) == 0);
  BOOST_TEST(calls == 1);
  calls = 0;
  const auto outcomes = co_await fanout::async_map_settled(first_call_throws, fanout::test::iota(0, 10));
  BOOST_TEST(calls == 10);
  BOOST_TEST(tag_of(outcomes[0].error()) == 0);
  BOOST_TEST(outcomes[9].value() == 9);
}

FANOUT_CO_TEST_CASE(a_null_std_function_as_the_callable_is_reported_as_bad_function_call)
{
  const std::function<int(int)> no_plain;
  const std::function<asio::awaitable<int>(int)> no_coroutine;
  BOOST_TEST(is_bad_function_call(co_await exception_of(fanout::async_map(no_plain, iota_vector(3)))));
  BOOST_TEST(is_bad_function_call(co_await exception_of(fanout::async_map(no_coroutine, iota_vector(3)))));
  BOOST_TEST(is_bad_function_call(co_await exception_of(
      fanout::async_map({.blocking = fanout::blocking_policy::offload}, no_plain, iota_vector(3)))));
  for (const auto& r : co_await fanout::async_map_settled(no_plain, iota_vector(3)))
    BOOST_TEST(is_bad_function_call(r.error()));
  for (const auto& r : co_await fanout::async_map_settled(no_coroutine, iota_vector(3)))
    BOOST_TEST(is_bad_function_call(r.error()));
  auto stream = fanout::async_map_as_completed(no_coroutine, iota_vector(3));
  BOOST_TEST(is_bad_function_call(co_await exception_of(stream.next())));

  // Wrapped in a fanout::callable, handed to to_thread and to call_later.
  const std::vector<fanout::callable<int()>> calls{std::function<int()>{}};
  BOOST_TEST(is_bad_function_call(
      co_await exception_of(fanout::async_map([](const fanout::callable<int()>& c) { return c(); }, calls))));
  BOOST_TEST(is_bad_function_call(co_await exception_of(fanout::to_thread(std::function<int()>{}))));
  auto later = fanout::call_later(co_await asio::this_coro::executor, 0ms, std::function<void()>{});
  BOOST_TEST(is_bad_function_call(co_await exception_of(later.async_wait())));
}

FANOUT_CO_TEST_CASE(zero_and_negative_durations_mean_at_once_or_no_limit_and_call_every_rejects_them)
{
  auto ex = co_await asio::this_coro::executor;
  live_items items;
  const auto start = fanout::clock::now();
  // item_timeout: zero means none (documented); a negative one is treated the same.
  for (const auto timeout : {fanout::clock::duration::zero(), fanout::clock::duration(-1ms)}) {
    const auto r = co_await fanout::async_map(
        {.item_timeout = timeout}, [&items](int i) { return held_int(items, 2ms, i); }, iota_vector(3));
    BOOST_TEST((r == std::vector<int>{0, 1, 2}));
  }
  // Waits of zero or negative length (of any duration type) complete at once.
  co_await fanout::sleep(std::chrono::duration<double>(-0.5));
  co_await fanout::sleep(std::chrono::nanoseconds(0));
  co_await fanout::async_sleep(ex, -1h, asio::use_awaitable);
  int later_calls = 0;
  co_await fanout::call_later(ex, -1h, [&later_calls] { ++later_calls; }).async_wait();
  BOOST_TEST(later_calls == 1);
  // with_timeout of zero or less fails without starting the operation.
  BOOST_TEST(code_of(co_await exception_of(fanout::with_timeout(held_int(items, 1ms, 0), -1ns))) == timed_out());
  BOOST_TEST(items.started.load() == 6);
  FANOUT_CHECK_ELAPSED(seconds_since(start), 4ms);
  // A period that truncates to zero nanoseconds is as invalid as zero.
  const auto invalid = [](const boost::system::system_error& e) { return e.code() == fanout::error::invalid_argument; };
  BOOST_CHECK_EXCEPTION((void)fanout::call_every(ex, std::chrono::duration<double, std::nano>(0.4), [] {}),
                        boost::system::system_error, invalid);
  BOOST_CHECK_EXCEPTION((void)fanout::call_every(ex, std::chrono::duration<double>(-1e-3), [] {}),
                        boost::system::system_error, invalid);
}

FANOUT_CO_TEST_CASE(a_deadline_already_past_starts_nothing_in_any_kind_of_map)
{
  std::atomic<int> calls{0};
  const auto plain = [&calls](int i) {
    ++calls;
    return i;
  };
  const auto past = fanout::clock::now() - 1ms;
  const auto very_past = fanout::clock::time_point::min();
  BOOST_TEST(code_of(co_await exception_of(fanout::async_map({.deadline = past}, plain, iota_vector(5)))) ==
             timed_out()); // inline calls
  BOOST_TEST(
      code_of(co_await exception_of(fanout::async_map({.blocking = fanout::blocking_policy::offload, .deadline = past},
                                                      plain, iota_vector(5)))) == timed_out());
  BOOST_TEST(code_of(co_await exception_of(
                 fanout::async_map_settled({.deadline = very_past}, plain, iota_vector(5)))) == timed_out());
  auto ordered = fanout::async_map_stream({.deadline = past}, plain, iota_vector(5));
  BOOST_TEST(code_of(co_await exception_of(ordered.next())) == timed_out());
  auto as_completed = fanout::async_map_as_completed({.deadline = very_past}, plain, iota_vector(5));
  BOOST_TEST(code_of(co_await exception_of(as_completed.next())) == timed_out());
  bool threw = false;
  try {
    for (const int v : fanout::sync_map({.deadline = past}, plain, iota_vector(5)))
      (void)v;
  } catch (const boost::system::system_error& e) {
    threw = e.code() == timed_out();
  }
  BOOST_TEST(threw);
  live_items items;
  BOOST_TEST(code_of(co_await exception_of(fanout::with_deadline(held_int(items, 1ms, 0), very_past))) == timed_out());
  co_await fanout::sleep(5ms);
  BOOST_TEST(calls.load() == 0);
  BOOST_TEST(items.started.load() == 0);

  // The far end: time_point::max() neither fails nor delays.
  const auto start = fanout::clock::now();
  const auto r = co_await fanout::async_map(
      {.deadline = fanout::clock::time_point::max()}, [&items](int i) { return held_int(items, 1ms, i); },
      iota_vector(3));
  BOOST_TEST((r == std::vector<int>{0, 1, 2}));
  BOOST_TEST(co_await fanout::with_deadline(held_int(items, 1ms, 4), fanout::clock::time_point::max()) == 4);
  FANOUT_CHECK_ELAPSED(seconds_since(start), 2ms);
}

FANOUT_CO_TEST_CASE(a_task_group_joined_twice_at_once_completes_both_joins_with_the_same_outcome)
{
  auto ex = co_await asio::this_coro::executor;
  live_items items;
  for (const bool failing : {false, true}) {
    fanout::task_group g(ex);
    for (int i = 0; i < 3; ++i)
      (void)g.spawn(held_int(items, 10ms, i));
    if (failing)
      (void)g.spawn(fails_after(items, 5ms, 7));
    // Both joins are parked before any task finished.
    auto first = fanout::spawn(ex, exception_of(g.join()));
    auto second = fanout::spawn(ex, exception_of(g.join()));
    const auto start = fanout::clock::now();
    const auto e1 = co_await first.async_wait();
    const auto e2 = co_await second.async_wait();
    const auto e3 = co_await exception_of(g.join()); // and once more, after
    BOOST_TEST_CONTEXT((failing ? "a failing task" : "no failure"))
    {
      BOOST_TEST(seconds_since(start) < 1.0);
      BOOST_TEST(tag_of(e1) == (failing ? 7 : -1));
      BOOST_TEST((e1 == e2)); // the very same exception (or none)
      BOOST_TEST((e1 == e3));
      BOOST_TEST(items.now.load() == 0);
      BOOST_TEST(g.size() == 0U);
    }
  }
}

namespace {

#if defined(FANOUT_FAULTS_SANITIZED)
constexpr int huge_input = 100000; // sanitizers run 5-15 times slower
#else
constexpr int huge_input = 10000000;
#endif

// A trivial item that suspends once in @p stride calls, so that the window
// fills up.
asio::awaitable<void> trivial_item(live_items& items, std::int64_t& sum, int i, int stride)
{
  const item_scope scope(items);
  if (i % stride == 0)
    co_await asio::post(co_await asio::this_coro::executor, asio::use_awaitable);
  sum += i;
}

} // namespace

BOOST_AUTO_TEST_CASE(a_huge_lazy_input_through_a_window_of_1000_never_has_more_than_1000_items_running,
                     *boost::unit_test::timeout(120))
{
  const int n = huge_input;
  const int stride = std::clamp(n / 10000, 8, 1024); // about 10,000 suspensions
  live_items items;
  std::int64_t sum = 0;
  const auto start = fanout::clock::now();
  fanout::run(fanout::async_map(
      {.max_concurrency = 1000}, [&](int i) { return trivial_item(items, sum, i, stride); }, fanout::test::iota(0, n)));
  const double elapsed = seconds_since(start);
  BOOST_TEST_MESSAGE("huge input: " << n << " items through a window of 1000 in " << elapsed << " s, peak "
                                    << items.peak.load());
  BOOST_TEST(items.started.load() == n);
  BOOST_TEST(sum == std::int64_t{n} * (n - 1) / 2);
  BOOST_TEST(items.peak.load() <= 1000);
  BOOST_TEST(items.peak.load() > 1); // the window was used
  BOOST_TEST(items.now.load() == 0);
}

BOOST_AUTO_TEST_SUITE_END()

// Durations so large that `now + duration` overflows the clock. fanout adds
// them to clock::now() itself; Asio's own timers saturate instead.
BOOST_AUTO_TEST_SUITE(huge_durations)

FANOUT_CO_TEST_CASE(the_largest_clock_duration_means_never_for_sleep_timeouts_and_schedules)
{
  auto ex = co_await asio::this_coro::executor;
  constexpr auto forever = fanout::clock::duration::max();
  live_items items;
  // A sleep that should outlast a 20 ms timeout.
  BOOST_TEST(code_of(co_await exception_of(fanout::with_timeout(fanout::sleep(forever), 20ms))) == timed_out());
  // A timeout that should never expire.
  BOOST_TEST(!co_await exception_of(fanout::with_timeout(held_int(items, 1ms, 1), forever)));
  // An item timeout that should never expire.
  BOOST_TEST(!co_await exception_of(fanout::async_map(
      {.item_timeout = forever}, [&items](int i) { return held_int(items, 1ms, i); }, iota_vector(3))));
  // Calls that should not come within 20 ms.
  int calls = 0;
  auto later = fanout::call_later(ex, forever, [&calls] { ++calls; });
  auto every = fanout::call_every(ex, forever, [&calls] { ++calls; });
  co_await fanout::sleep(20ms);
  BOOST_TEST(calls == 0);
  later.cancel();
  every.cancel();
  (void)co_await exception_of(later.async_wait());
  (void)co_await exception_of(every.async_wait());
}

BOOST_AUTO_TEST_SUITE_END()

// This file's macros end here (the suites share unity batches).
#undef FANOUT_FAULTS_SANITIZED

BOOST_AUTO_TEST_SUITE_END() // faults_tests
