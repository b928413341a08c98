#include <fanout/map_options.hpp>

#include <boost/test/unit_test.hpp>

#include "support/co_test.hpp"
#include "support/counting_input.hpp"
#include "support/outcomes.hpp"
#include "support/tracker.hpp"

#include <fanout/async_map.hpp>
#include <fanout/error.hpp>
#include <fanout/offload.hpp>
#include <fanout/outcome.hpp>
#include <fanout/run.hpp>
#include <fanout/sleep.hpp>

#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/system/system_error.hpp>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstddef>
#include <exception>
#include <iterator>
#include <memory>
#include <mutex>
#include <ranges>
#include <stdexcept>
#include <string>
#include <thread>
#include <utility>
#include <vector>

// Every suite sits in its own top-level suite (and namespace): the suites are
// compiled together in unity batches (test/CMakeLists.txt).
BOOST_AUTO_TEST_SUITE(map_options_tests)

namespace asio = boost::asio;
using fanout::test::counting_input;
using fanout::test::in_flight;
using fanout::test::tracked_value;
using fanout::test::tracker;
using namespace std::chrono_literals;
using fanout::test::code_of;
using fanout::test::exception_of;
using fanout::test::iota_vector;
using fanout::test::is_timed_out;
using fanout::test::message_of;
using fanout::test::seconds_since;
using fanout::test::throws_after;
using fanout::test::timed_out;
using fanout::test::unit;

BOOST_AUTO_TEST_SUITE(item_timeout)

FANOUT_CO_TEST_CASE(item_timeout_fails_a_slow_item_with_timed_out_and_async_map_throws_it_promptly)
{
  tracker t;
  const auto start = fanout::clock::now();
  const auto e = co_await exception_of(fanout::async_map(
      {.item_timeout = unit}, [&t](int i) { return tracked_value(t, i == 2 ? 10s : 1ms, i); }, iota_vector(5)));
  FANOUT_CHECK_ELAPSED(seconds_since(start), unit);
  BOOST_TEST(code_of(e) == timed_out());
  BOOST_TEST(t.now.load() == 0);
  BOOST_TEST(t.aborted.load() == 1);
  BOOST_TEST(t.finished.load() == 4);
}

FANOUT_CO_TEST_CASE(item_timeout_in_async_map_settled_makes_only_that_item_time_out)
{
  tracker t;
  const auto start = fanout::clock::now();
  auto results = co_await fanout::async_map_settled(
      {.item_timeout = 4 * unit}, [&t](int i) { return tracked_value(t, i == 2 ? 10s : unit, i * 10); },
      iota_vector(5));
  FANOUT_CHECK_ELAPSED(seconds_since(start), 4 * unit); // the slow item's timeout, not its 10 s
  BOOST_TEST_REQUIRE(results.size() == 5u);
  for (std::size_t i = 0; i < results.size(); ++i) {
    BOOST_TEST_CONTEXT("item " << i)
    {
      if (i == 2) {
        BOOST_TEST(!results[i].has_value());
        BOOST_TEST(code_of(results[i].error()) == timed_out());
      } else {
        BOOST_TEST(results[i].has_value());
        BOOST_TEST(results[i].value() == static_cast<int>(i) * 10);
      }
    }
  }
  BOOST_TEST(t.aborted.load() == 1);
  BOOST_TEST(t.finished.load() == 4);
  BOOST_TEST(t.now.load() == 0);
}

FANOUT_CO_TEST_CASE(an_item_that_returns_a_value_after_its_timeout_expired_still_fails_with_timed_out)
{
  // map_options.hpp: "An item still running when it expires is cancelled,
  // waited for, and fails with fanout::error::timed_out". This item handles
  // the cancellation, finishes a short cleanup and returns a value anyway.
  bool cleaned_up = false;
  const auto start = fanout::clock::now();
  auto results = co_await fanout::async_map_settled(
      {.item_timeout = unit},
      [&cleaned_up](int i) -> asio::awaitable<int> {
        if (i == 1) {
          try {
            co_await fanout::sleep(10s);
          } catch (const boost::system::system_error&) {
          }
          co_await asio::this_coro::reset_cancellation_state();
          co_await fanout::sleep(unit);
          cleaned_up = true;
        }
        co_return i;
      },
      iota_vector(2));
  FANOUT_CHECK_ELAPSED(seconds_since(start), 2 * unit);
  BOOST_TEST(cleaned_up);
  BOOST_TEST_REQUIRE(results.size() == 2u);
  BOOST_TEST(results[0].has_value());
  BOOST_TEST(!results[1].has_value());
  BOOST_TEST(code_of(results[1].error()) == timed_out());
}

FANOUT_CO_TEST_CASE(item_timeout_does_not_affect_items_that_finish_in_time_nor_delay_the_map)
{
  tracker t;
  const auto start = fanout::clock::now();
  auto results = co_await fanout::async_map(
      {.item_timeout = 10s}, [&t](int i) { return tracked_value(t, unit, i); }, iota_vector(4));
  FANOUT_CHECK_ELAPSED(seconds_since(start), unit);
  BOOST_TEST((results == std::vector<int>{0, 1, 2, 3}));
  BOOST_TEST(t.aborted.load() == 0);
}

FANOUT_CO_TEST_CASE(item_timeout_applies_to_each_item_from_its_own_start_under_a_concurrency_limit)
{
  // Two at a time, each taking half the timeout: four items take two
  // timeouts' worth in all, yet none times out.
  tracker t;
  const auto start = fanout::clock::now();
  auto results = co_await fanout::async_map(
      {.max_concurrency = 2, .item_timeout = 2 * unit}, [&t](int i) { return tracked_value(t, unit, i); },
      iota_vector(8));
  FANOUT_CHECK_ELAPSED(seconds_since(start), 4 * unit);
  BOOST_TEST((results == iota_vector(8)));
  BOOST_TEST(t.most.load() <= 2);
}

FANOUT_CO_TEST_CASE(plain_calls_made_inline_ignore_item_timeout)
{
  int calls = 0;
  const auto start = fanout::clock::now();
  auto results = co_await fanout::async_map(
      {.item_timeout = unit / 5},
      [&calls](int i) {
        ++calls;
        std::this_thread::sleep_for(unit / 2);
        return i + 1;
      },
      iota_vector(3));
  FANOUT_CHECK_ELAPSED(seconds_since(start), 3 * unit / 2);
  BOOST_TEST((results == std::vector<int>{1, 2, 3}));
  BOOST_TEST(calls == 3);
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(deadline)

FANOUT_CO_TEST_CASE(a_deadline_cancels_every_item_and_the_map_throws_timed_out_promptly)
{
  tracker t;
  const auto start = fanout::clock::now();
  const auto e = co_await exception_of(fanout::async_map(
      {.deadline = start + unit}, [&t](int i) { return tracked_value(t, i == 0 ? 1ms : 10s, i); }, iota_vector(5)));
  FANOUT_CHECK_ELAPSED(seconds_since(start), unit);
  BOOST_TEST(code_of(e) == timed_out());
  BOOST_TEST(t.now.load() == 0);
  BOOST_TEST(t.finished.load() == 1);
  BOOST_TEST(t.aborted.load() == 4);
}

FANOUT_CO_TEST_CASE(a_deadline_also_fails_async_map_settled_with_timed_out)
{
  tracker t;
  const auto start = fanout::clock::now();
  BOOST_CHECK_EXCEPTION(
      (void)co_await fanout::async_map_settled(
          {.deadline = start + unit}, [&t](int i) { return tracked_value(t, 10s, i); }, iota_vector(3)),
      boost::system::system_error, is_timed_out);
  FANOUT_CHECK_ELAPSED(seconds_since(start), unit);
  BOOST_TEST(t.now.load() == 0);
  BOOST_TEST(t.aborted.load() == 3);
}

FANOUT_CO_TEST_CASE(a_deadline_stops_a_limited_map_from_starting_more_items)
{
  tracker t;
  counting_input input(100);
  const auto start = fanout::clock::now();
  const auto e = co_await exception_of(fanout::async_map(
      {.max_concurrency = 2, .deadline = start + 5 * unit}, [&t](int i) { return tracked_value(t, 2 * unit, i); },
      input));
  FANOUT_CHECK_ELAPSED(seconds_since(start), 5 * unit);
  BOOST_TEST(code_of(e) == timed_out());
  // Rounds of two items at 0, 2 and 4 units; the third round is cancelled
  // at 5 units, and nothing is pulled after.
  BOOST_TEST_MESSAGE("deadline with a window: " << t.started.load() << " items started");
  BOOST_TEST(t.started.load() >= 4);
  BOOST_TEST(t.started.load() <= 6);
  BOOST_TEST(input.pulled.load() == t.started.load());
  BOOST_TEST(t.aborted.load() == t.started.load() - t.finished.load());
  BOOST_TEST(t.aborted.load() >= 1);
  BOOST_TEST(t.now.load() == 0);
}

FANOUT_CO_TEST_CASE(a_deadline_already_past_starts_nothing_and_fails_with_timed_out)
{
  tracker t;
  counting_input input(5);
  const auto e = co_await exception_of(fanout::async_map(
      {.deadline = fanout::clock::now() - 1ms}, [&t](int i) { return tracked_value(t, 1ms, i); }, input));
  BOOST_TEST(code_of(e) == timed_out());
  const auto settled = co_await exception_of(fanout::async_map_settled(
      {.deadline = fanout::clock::now() - 1s}, [&t](int i) { return tracked_value(t, 1ms, i); }, iota_vector(5)));
  BOOST_TEST(code_of(settled) == timed_out());
  co_await fanout::sleep(unit);
  BOOST_TEST(t.started.load() == 0);
  BOOST_TEST(input.pulled.load() == 0);
}

FANOUT_CO_TEST_CASE(a_deadline_that_is_not_reached_neither_fails_nor_delays_the_map)
{
  tracker t;
  const auto start = fanout::clock::now();
  auto results = co_await fanout::async_map(
      {.deadline = start + 10s}, [&t](int i) { return tracked_value(t, unit, i * 2); }, iota_vector(3));
  FANOUT_CHECK_ELAPSED(seconds_since(start), unit);
  BOOST_TEST((results == std::vector<int>{0, 2, 4}));
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(settled)

FANOUT_CO_TEST_CASE(async_map_settled_collects_every_value_and_exception_in_input_order_without_throwing)
{
  tracker t;
  const auto start = fanout::clock::now();
  auto results = co_await fanout::async_map_settled(
      [&t](int i) {
        // Failures come first in time, so they could cancel the rest if they were fail-fast.
        return i % 3 == 1 ? throws_after(t, 0ms, "item " + std::to_string(i)) : tracked_value(t, unit, i * 10);
      },
      iota_vector(7));
  FANOUT_CHECK_ELAPSED(seconds_since(start), unit);
  BOOST_TEST_REQUIRE(results.size() == 7u);
  for (int i = 0; i < 7; ++i) {
    const auto& r = results[static_cast<std::size_t>(i)];
    BOOST_TEST_CONTEXT("item " << i)
    {
      if (i % 3 == 1) {
        BOOST_TEST(!r.has_value());
        BOOST_TEST(!static_cast<bool>(r));
        BOOST_TEST(message_of(r.error()) == "item " + std::to_string(i));
        BOOST_CHECK_THROW((void)r.value(), std::runtime_error);
      } else {
        BOOST_TEST(r.has_value());
        BOOST_TEST(!r.error());
        BOOST_TEST(r.value() == i * 10);
      }
    }
  }
  BOOST_TEST(t.aborted.load() == 0);
  BOOST_TEST(t.finished.load() == 5);
  BOOST_TEST(t.now.load() == 0);
}

FANOUT_CO_TEST_CASE(async_map_settled_of_void_items_gives_an_outcome_of_void_per_item)
{
  int ran = 0;
  auto results = co_await fanout::async_map_settled(
      [&ran](int i) -> asio::awaitable<void> {
        co_await fanout::sleep(1ms);
        ++ran;
        if (i == 1 || i == 3)
          throw std::invalid_argument("void item " + std::to_string(i));
      },
      iota_vector(5));
  static_assert(std::is_same_v<decltype(results), std::vector<fanout::outcome<void>>>);
  BOOST_TEST(ran == 5);
  BOOST_TEST_REQUIRE(results.size() == 5u);
  for (std::size_t i = 0; i < results.size(); ++i) {
    BOOST_TEST_CONTEXT("item " << i)
    {
      const bool fails = i == 1 || i == 3;
      BOOST_TEST(results[i].has_value() == !fails);
      BOOST_TEST(static_cast<bool>(results[i].error()) == fails);
      if (fails) {
        BOOST_TEST(message_of(results[i].error()) == "void item " + std::to_string(i));
        BOOST_CHECK_THROW(results[i].value(), std::invalid_argument);
      } else {
        BOOST_CHECK_NO_THROW(results[i].value());
      }
    }
  }
}

FANOUT_CO_TEST_CASE(async_map_settled_of_plain_calls_records_their_exceptions_too)
{
  auto results = co_await fanout::async_map_settled(
      [](int i) {
        if (i == 0)
          throw std::out_of_range("zero");
        return 100 / i;
      },
      iota_vector(4));
  BOOST_TEST_REQUIRE(results.size() == 4u);
  BOOST_TEST(message_of(results[0].error()) == "zero");
  BOOST_TEST(results[1].value() == 100);
  BOOST_TEST(results[2].value() == 50);
  BOOST_TEST(results[3].value() == 33);
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(max_concurrency)

FANOUT_CO_TEST_CASE(max_concurrency_of_one_runs_the_items_strictly_one_after_another)
{
  std::vector<std::pair<double, double>> spans; // start and end of each item
  const auto start = fanout::clock::now();
  auto results = co_await fanout::async_map(
      {.max_concurrency = 1},
      [&](int i) -> asio::awaitable<int> {
        const double began = seconds_since(start);
        co_await fanout::sleep(unit);
        spans.emplace_back(began, seconds_since(start));
        co_return i;
      },
      iota_vector(4));
  FANOUT_CHECK_ELAPSED(seconds_since(start), 4 * unit);
  BOOST_TEST((results == iota_vector(4)));
  BOOST_TEST_REQUIRE(spans.size() == 4u);
  for (std::size_t i = 1; i < spans.size(); ++i)
    BOOST_TEST(spans[i].first >= spans[i - 1].second); // the next began after the previous ended
}

FANOUT_CO_TEST_CASE(with_a_window_async_map_never_reads_more_input_than_running_plus_finished_items)
{
  for (std::size_t k : {std::size_t{1}, std::size_t{4}, std::size_t{10}}) {
    BOOST_TEST_CONTEXT("max_concurrency " << k)
    {
      counting_input input(40);
      int finished = 0;
      int running = 0;
      int most_ahead = 0;
      int over = 0;
      auto results = co_await fanout::async_map(
          {.max_concurrency = k},
          [&](int i) -> asio::awaitable<int> {
            ++running;
            // Everything read so far is running or has finished.
            const int ahead = input.pulled.load() - finished;
            most_ahead = std::max(most_ahead, ahead);
            if (ahead > static_cast<int>(k))
              ++over;
            co_await fanout::sleep(std::chrono::milliseconds(1 + i % 3));
            --running;
            ++finished;
            co_return i;
          },
          input);
      BOOST_TEST((results == iota_vector(40)));
      BOOST_TEST(over == 0);
      BOOST_TEST(most_ahead == static_cast<int>(k)); // the window filled
      BOOST_TEST(input.pulled.load() == 40);
    }
  }
}

FANOUT_CO_TEST_CASE(with_offload_max_concurrency_bounds_the_blocking_calls_running_at_once)
{
  tracker t;
  const auto start = fanout::clock::now();
  auto results = co_await fanout::async_map(
      {.max_concurrency = 3, .blocking = fanout::blocking_policy::offload},
      [&t](int i) {
        in_flight guard(t);
        std::this_thread::sleep_for(unit);
        return i * i;
      },
      iota_vector(9));
  // Never below three rounds of three; that calls overlapped is shown by
  // t.most, not by an upper bound on time that a loaded machine exceeds.
  BOOST_TEST(seconds_since(start) >= std::chrono::duration<double>(3 * unit).count() * 0.98);
  BOOST_TEST((results == std::vector<int>{0, 1, 4, 9, 16, 25, 36, 49, 64}));
  BOOST_TEST(t.most.load() <= 3);
  BOOST_TEST(t.most.load() >= 2);
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(offload_and_timeouts)

FANOUT_CO_TEST_CASE(an_offloaded_call_that_times_out_while_queued_never_starts_and_running_ones_are_waited_for)
{
  // More blocking calls than the pool has threads, each blocking three units,
  // with a one-unit timeout. map_options.hpp: "An item still running when it
  // expires is cancelled, waited for, and fails with timed_out ... (a queued
  // call never starts; a running one cannot be interrupted and is waited
  // for)". So every item times out: the queued ones without starting, the
  // running ones after returning.
  const int pool = static_cast<int>(fanout::blocking_pool_size());
  const int n = pool + 8;
  BOOST_TEST_MESSAGE("blocking pool: " << pool << " threads; " << n << " calls");
  (void)co_await fanout::to_thread([] { return 0; }); // the pool's threads exist before the clock starts

  std::vector<std::atomic<int>> state(static_cast<std::size_t>(n)); // 0 never started, 1 running, 2 finished
  std::atomic<int> started{0};
  std::atomic<int> finished{0};
  const auto start = fanout::clock::now();
  auto results = co_await fanout::async_map_settled(
      {.blocking = fanout::blocking_policy::offload, .item_timeout = unit},
      [&](int i) {
        auto& s = state[static_cast<std::size_t>(i)];
        s = 1;
        ++started;
        std::this_thread::sleep_for(3 * unit);
        s = 2;
        ++finished;
        return i;
      },
      iota_vector(n));
  const double elapsed = seconds_since(start);
  // Sampled at once: nothing that started is still running after the map returned.
  const int started_at_return = started.load();
  const int finished_at_return = finished.load();
  BOOST_TEST_REQUIRE(results.size() == static_cast<std::size_t>(n));
  int with_value = 0;
  int timed_out_count = 0;
  int timed_out_never_started = 0;
  int abandoned_running = 0;
  int never_started = 0;
  for (int i = 0; i < n; ++i) {
    const auto& r = results[static_cast<std::size_t>(i)];
    const int s = state[static_cast<std::size_t>(i)].load();
    never_started += s == 0 ? 1 : 0;
    abandoned_running += s == 1 ? 1 : 0;
    if (r.has_value()) {
      ++with_value;
    } else if (code_of(r.error()) == timed_out()) {
      ++timed_out_count;
      timed_out_never_started += s == 0 ? 1 : 0;
    }
  }
  BOOST_TEST_MESSAGE("offload with item_timeout: " << started_at_return << " started, " << never_started
                                                   << " never started, " << with_value << " values, " << timed_out_count
                                                   << " timed out, in " << elapsed << " s");
  // Counters are consistent: nothing was abandoned running, nothing started late.
  BOOST_TEST(abandoned_running == 0);
  BOOST_TEST(started_at_return == finished_at_return);
  BOOST_TEST(started_at_return + never_started == n);
  BOOST_TEST(started_at_return <= pool);
  BOOST_TEST(never_started >= 8); // at least the calls that found no thread
  BOOST_TEST(timed_out_never_started == never_started);
  // Every item outlived its timeout, so every outcome is timed_out.
  BOOST_TEST(timed_out_count == n);
  BOOST_TEST(with_value == 0);
  // The map waited for the running calls' three units, and no longer.
  if (started_at_return > 0)
    FANOUT_CHECK_ELAPSED(elapsed, 3 * unit);
  co_await fanout::sleep(unit);
  BOOST_TEST(started.load() == started_at_return); // no queued call started afterwards
}

FANOUT_CO_TEST_CASE(a_fail_fast_map_of_offloaded_calls_throws_timed_out_only_after_the_running_calls_returned)
{
  std::atomic<int> started{0};
  std::atomic<int> finished{0};
  const auto start = fanout::clock::now();
  const auto e = co_await exception_of(fanout::async_map(
      {.blocking = fanout::blocking_policy::offload, .item_timeout = unit},
      [&](int i) {
        ++started;
        std::this_thread::sleep_for(i == 0 ? 3 * unit : 0ms);
        ++finished;
        return i;
      },
      iota_vector(4)));
  const double elapsed = seconds_since(start);
  BOOST_TEST(started.load() == finished.load());
  BOOST_TEST(code_of(e) == timed_out());
  FANOUT_CHECK_ELAPSED(elapsed, 3 * unit);
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE_END() // map_options_tests
