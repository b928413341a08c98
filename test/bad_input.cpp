#include <fanout/map_options.hpp>

#include <boost/test/unit_test.hpp>

#include "support/co_test.hpp"
#include "support/counting_input.hpp"
#include "support/outcomes.hpp"
#include "support/ranges.hpp"
#include "support/tracker.hpp"

#include <fanout/async_map.hpp>
#include <fanout/callable.hpp>
#include <fanout/error.hpp>
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

// Bad input has a documented outcome: windows of 0 and of the largest size,
// zipped ranges of unequal length, callables that throw or are null, zero and
// negative durations, deadlines already past, a group joined twice at once, a
// huge lazy input.
//
// Every suite sits in its own top-level suite (and namespace): the suites are
// compiled together in unity batches (test/CMakeLists.txt).
BOOST_AUTO_TEST_SUITE(bad_input_tests)

namespace asio = boost::asio;
using namespace std::chrono_literals;
using fanout::test::code_of;
using fanout::test::counting_input;
using fanout::test::exception_of;
using fanout::test::in_flight;
using fanout::test::iota_vector;
using fanout::test::seconds_since;
using fanout::test::tag_of;
using fanout::test::tagged_error;
using fanout::test::throws_after;
using fanout::test::timed_out;
using fanout::test::tracked_value;
using fanout::test::tracker;

// Sanitized builds (TSan, ASan, and clang's UBSan, which the clang preset
// uses) run 5-15 times slower: the huge-input test scales down there.
#if defined(__SANITIZE_THREAD__) || defined(__SANITIZE_ADDRESS__)
#define FANOUT_BAD_INPUT_SANITIZED 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer) || __has_feature(address_sanitizer) || __has_feature(undefined_behavior_sanitizer)
#define FANOUT_BAD_INPUT_SANITIZED 1
#endif
#endif

namespace {

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

asio::awaitable<int> coroutine_value(int i)
{
  co_return i;
}

} // namespace

FANOUT_CO_TEST_CASE(max_concurrency_0_means_unlimited_and_the_largest_value_is_accepted)
{
  constexpr int n = 200;
  for (const std::size_t window : {std::size_t{0}, std::numeric_limits<std::size_t>::max()}) {
    BOOST_TEST_CONTEXT("max_concurrency " << window)
    {
      tracker items;
      const auto start = fanout::clock::now();
      const auto r = co_await fanout::async_map(
          {.max_concurrency = window}, [&items](int i) { return tracked_value(items, 20ms, i); },
          fanout::test::iota(0, n));
      BOOST_TEST((r == iota_vector(n)));
      BOOST_TEST(items.most.load() == n);
      FANOUT_CHECK_ELAPSED(seconds_since(start), 20ms);

      tracker streamed;
      auto stream = fanout::async_map_as_completed(
          {.max_concurrency = window}, [&streamed](int i) { return tracked_value(streamed, 20ms, i); },
          fanout::test::iota(0, n));
      int read = 0;
      while (co_await stream.async_next())
        ++read;
      BOOST_TEST(read == n);
      BOOST_TEST(streamed.most.load() == n);

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
    while (auto v = co_await stream.async_next())
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
  BOOST_TEST(tag_of(co_await exception_of(stream.async_next(asio::use_awaitable))) == 0);
  BOOST_TEST(calls == 1);
  calls = 0;
  const auto outcomes = co_await fanout::async_map_settled(first_call_throws, fanout::test::iota(0, 10));
  BOOST_TEST(calls == 10);
  BOOST_TEST(tag_of(outcomes[0].error()) == 0);
  BOOST_TEST(outcomes[9].value() == 9);
}

FANOUT_CO_TEST_CASE(offloaded_without_a_limit_calls_already_started_run_on_and_queued_ones_never_start)
{
  // Three times as many items as pool threads: the first call throws at once,
  // the others block long enough that no pool thread is free before the
  // failure's cancellation has reached every queued call.
  const int pool = static_cast<int>(fanout::blocking_pool_size());
  const int items = 3 * pool;
  const auto call_time = std::chrono::duration_cast<std::chrono::milliseconds>(
      std::chrono::duration<double>(0.1 + fanout::test::late_slack_seconds));
  std::atomic<int> started{0};
  std::atomic<int> finished{0};
  const auto first_call_throws = [&](int i) {
    if (started++ == 0)
      throw tagged_error(i);
    std::this_thread::sleep_for(call_time);
    ++finished;
    return i;
  };
  const auto e = co_await exception_of(
      fanout::async_map({.blocking = fanout::blocking_policy::offload}, first_call_throws, iota_vector(items)));
  BOOST_TEST(tag_of(e) >= 0); // the failing call's own exception
  // The calls the pool had already started ran to completion before the map
  // completed; the rest never started, then or later. Started: one per pool
  // thread, and one more for the thread whose call threw, which is free
  // again before the map has even seen the failure.
  const int started_then = started.load();
  BOOST_TEST(started_then <= pool + 1);
  BOOST_TEST(finished.load() == started_then - 1);
  std::this_thread::sleep_for(2 * call_time);
  BOOST_TEST(started.load() == started_then);
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
  BOOST_TEST(is_bad_function_call(co_await exception_of(stream.async_next(asio::use_awaitable))));

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
  tracker items;
  const auto start = fanout::clock::now();
  // item_timeout: zero means none (documented); a negative one is treated the same.
  for (const auto timeout : {fanout::clock::duration::zero(), fanout::clock::duration(-1ms)}) {
    const auto r = co_await fanout::async_map(
        {.item_timeout = timeout}, [&items](int i) { return tracked_value(items, 2ms, i); }, iota_vector(3));
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
  BOOST_TEST(code_of(co_await exception_of(fanout::with_timeout(tracked_value(items, 1ms, 0), -1ns))) == timed_out());
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
  BOOST_TEST(code_of(co_await exception_of(ordered.async_next(asio::use_awaitable))) == timed_out());
  auto as_completed = fanout::async_map_as_completed({.deadline = very_past}, plain, iota_vector(5));
  BOOST_TEST(code_of(co_await exception_of(as_completed.async_next(asio::use_awaitable))) == timed_out());
  bool threw = false;
  try {
    for (const int v : fanout::sync_map({.deadline = past}, plain, iota_vector(5)))
      (void)v;
  } catch (const boost::system::system_error& e) {
    threw = e.code() == timed_out();
  }
  BOOST_TEST(threw);
  tracker items;
  BOOST_TEST(code_of(co_await exception_of(fanout::with_deadline(tracked_value(items, 1ms, 0), very_past))) ==
             timed_out());
  co_await fanout::sleep(5ms);
  BOOST_TEST(calls.load() == 0);
  BOOST_TEST(items.started.load() == 0);

  // The far end: time_point::max() neither fails nor delays.
  const auto start = fanout::clock::now();
  const auto r = co_await fanout::async_map(
      {.deadline = fanout::clock::time_point::max()}, [&items](int i) { return tracked_value(items, 1ms, i); },
      iota_vector(3));
  BOOST_TEST((r == std::vector<int>{0, 1, 2}));
  BOOST_TEST(co_await fanout::with_deadline(tracked_value(items, 1ms, 4), fanout::clock::time_point::max()) == 4);
  FANOUT_CHECK_ELAPSED(seconds_since(start), 2ms);
}

FANOUT_CO_TEST_CASE(a_task_group_joined_twice_at_once_completes_both_joins_with_the_same_outcome)
{
  auto ex = co_await asio::this_coro::executor;
  tracker items;
  for (const bool failing : {false, true}) {
    fanout::task_group g(ex);
    for (int i = 0; i < 3; ++i)
      (void)g.spawn(tracked_value(items, 10ms, i));
    if (failing)
      (void)g.spawn(throws_after(items, 5ms, 7));
    // Both joins are parked before any task finished.
    auto first = fanout::spawn(ex, exception_of(g.async_join(asio::use_awaitable)));
    auto second = fanout::spawn(ex, exception_of(g.async_join(asio::use_awaitable)));
    const auto start = fanout::clock::now();
    const auto e1 = co_await first.async_wait();
    const auto e2 = co_await second.async_wait();
    const auto e3 = co_await exception_of(g.async_join(asio::use_awaitable)); // and once more, after
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
asio::awaitable<void> trivial_item(tracker& items, std::int64_t& sum, int i, int stride)
{
  const in_flight scope(items);
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
  tracker items;
  std::int64_t sum = 0;
  const auto start = fanout::clock::now();
  fanout::run(fanout::async_map(
      {.max_concurrency = 1000}, [&](int i) { return trivial_item(items, sum, i, stride); }, fanout::test::iota(0, n)));
  const double elapsed = seconds_since(start);
  BOOST_TEST_MESSAGE("huge input: " << n << " items through a window of 1000 in " << elapsed << " s, peak "
                                    << items.most.load());
  BOOST_TEST(items.started.load() == n);
  BOOST_TEST(sum == std::int64_t{n} * (n - 1) / 2);
  BOOST_TEST(items.most.load() <= 1000);
  BOOST_TEST(items.most.load() > 1); // the window was used
  BOOST_TEST(items.now.load() == 0);
}

// This file's macros end here (the suites share unity batches).
#undef FANOUT_BAD_INPUT_SANITIZED

BOOST_AUTO_TEST_SUITE_END() // bad_input_tests
