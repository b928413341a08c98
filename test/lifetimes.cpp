#include <fanout/async_map.hpp>

#include <boost/test/unit_test.hpp>

#include "support/co_test.hpp"
#include "support/counting_input.hpp"
#include "support/lifetime.hpp"
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

// Result lifetimes: no result is copied, and every result and item is destroyed
// -- after success, failure or cancellation.
//
// Every suite sits in its own top-level suite (and namespace): the suites are
// compiled together in unity batches (test/CMakeLists.txt).
BOOST_AUTO_TEST_SUITE(lifetimes_tests)

namespace asio = boost::asio;
using namespace std::chrono_literals;
using fanout::test::code_of;
using fanout::test::counted;
using fanout::test::counting_input;
using fanout::test::emit_after;
using fanout::test::exception_of;
using fanout::test::held_value;
using fanout::test::lifetime_counts;
using fanout::test::make_counted;
using fanout::test::seconds_since;
using fanout::test::tag_of;
using fanout::test::tagged_error;
using fanout::test::tracker;

namespace {

// Checks the lifetime counts of a map that made @p n counted results.
void check_no_copies(const lifetime_counts& counts, std::int64_t n, std::int64_t moves_per_item)
{
  BOOST_TEST(counts.constructed.load() == n);
  BOOST_TEST(counts.copied.load() == 0);
  BOOST_TEST(counts.moved.load() <= moves_per_item * n);
}

} // namespace

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
      while (auto v = co_await stream.async_next())
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
      BOOST_TEST((co_await stream.async_next()).has_value());
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
    tracker items;
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
  tracker items;
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

BOOST_AUTO_TEST_SUITE_END() // lifetimes_tests
