#include <fanout/async_map.hpp>

#include <boost/test/unit_test.hpp>

#include "support/co_test.hpp"
#include "support/counting_input.hpp"
#include "support/outcomes.hpp"
#include "support/ranges.hpp"
#include "support/tracker.hpp"

#include <fanout/callable.hpp>
#include <fanout/map_options.hpp>
#include <fanout/offload.hpp>
#include <fanout/sleep.hpp>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/cancellation_signal.hpp>
#include <boost/asio/co_spawn.hpp>
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
#include <future>
#include <list>
#include <ranges>
#include <sstream>
#include <stdexcept>
#include <string>
#include <thread>
#include <type_traits>
#include <utility>
#include <vector>

// async_map's concurrency: plain calls inline, coroutines and offloaded calls
// concurrently, and windows (max_concurrency).
//
// Every suite sits in its own top-level suite (and namespace): the suites are
// compiled together in unity batches (test/CMakeLists.txt).
BOOST_AUTO_TEST_SUITE(async_map_concurrency_tests)

namespace asio = boost::asio;
using fanout::test::counting_input;
using fanout::test::in_flight;
using namespace std::chrono_literals;
using fanout::test::joined;
using fanout::test::seconds_since;
using fanout::test::unit;

namespace {

fanout::test::tracker post_tracker;

// The post's a() and b(), sharing one tracker.
std::string a()
{
  in_flight guard(post_tracker);
  std::this_thread::sleep_for(unit);
  return "a";
}

asio::awaitable<std::string> b()
{
  in_flight guard(post_tracker);
  co_await fanout::sleep(unit);
  co_return "b";
}

} // namespace

FANOUT_CO_TEST_CASE(async_map_runs_plain_callables_inline_one_after_another)
{
  post_tracker.most = 0;
  const auto caller = std::this_thread::get_id();
  std::vector<std::string (*)()> tasks(5, &a);
  std::vector<bool> on_caller;
  const auto start = fanout::clock::now();
  auto results = co_await fanout::async_map(
      [&](auto& f) {
        on_caller.push_back(std::this_thread::get_id() == caller);
        return f();
      },
      tasks);
  BOOST_TEST(joined(results) == "a a a a a");
  BOOST_TEST(post_tracker.most.load() == 1);
  BOOST_TEST((on_caller == std::vector<bool>(5, true)));
  FANOUT_CHECK_ELAPSED(seconds_since(start), 5 * unit);
}

FANOUT_CO_TEST_CASE(async_map_runs_coroutine_callables_concurrently)
{
  post_tracker.most = 0;
  std::vector<asio::awaitable<std::string> (*)()> tasks(5, &b);
  const auto start = fanout::clock::now();
  auto results = co_await fanout::async_map([](auto& f) { return f(); }, tasks);
  BOOST_TEST(joined(results) == "b b b b b");
  BOOST_TEST(post_tracker.most.load() == 5);
  BOOST_TEST(post_tracker.now.load() == 0);
  FANOUT_CHECK_ELAPSED(seconds_since(start), unit);
}

FANOUT_CO_TEST_CASE(async_map_of_mixed_callables_runs_blocking_ones_inline_in_three_units)
{
  post_tracker.most = 0;
  std::vector<fanout::callable<std::string()>> tasks{b, a, b, a, b};
  const auto start = fanout::clock::now();
  auto results = co_await fanout::async_map([](auto& x) { return x(); }, tasks);
  BOOST_TEST(joined(results) == "b a b a b");
  // While the second a() blocks the loop, two b()s are asleep: never more.
  BOOST_TEST(post_tracker.most.load() == 3);
  BOOST_TEST(post_tracker.now.load() == 0);
  FANOUT_CHECK_ELAPSED(seconds_since(start), 3 * unit);
}

FANOUT_CO_TEST_CASE(async_map_of_mixed_callables_with_offload_overlaps_everything_in_one_unit)
{
  (void)fanout::blocking_executor(); // start the pool's threads before the clock (slow under TSan)
  post_tracker.most = 0;
  std::vector<fanout::callable<std::string()>> tasks{b, a, b, a, b};
  const auto start = fanout::clock::now();
  auto results = co_await fanout::async_map(
      {.blocking = fanout::blocking_policy::offload}, [](auto& x) { return x(); }, tasks);
  BOOST_TEST(joined(results) == "b a b a b");
  BOOST_TEST(post_tracker.most.load() == 5);
  FANOUT_CHECK_ELAPSED(seconds_since(start), unit);
}

FANOUT_CO_TEST_CASE(async_map_with_offload_runs_plain_callables_concurrently_on_other_threads)
{
  post_tracker.most = 0;
  const auto caller = std::this_thread::get_id();
  std::atomic<int> off_caller{0};
  const auto start = fanout::clock::now();
  auto results = co_await fanout::async_map(
      {.blocking = fanout::blocking_policy::offload},
      [&](int i) {
        if (std::this_thread::get_id() != caller)
          ++off_caller;
        return a() + std::to_string(i);
      },
      fanout::test::iota(0, 5));
  BOOST_TEST(joined(results) == "a0 a1 a2 a3 a4");
  BOOST_TEST(off_caller.load() == 5);
  BOOST_TEST(post_tracker.most.load() == 5);
  BOOST_TEST((std::this_thread::get_id() == caller)); // resumed on the caller's context
  FANOUT_CHECK_ELAPSED(seconds_since(start), unit);
}

FANOUT_CO_TEST_CASE(async_map_with_max_concurrency_2_never_has_more_than_2_in_flight_and_keeps_order)
{
  fanout::test::tracker tracker;
  const auto start = fanout::clock::now();
  auto results = co_await fanout::async_map(
      {.max_concurrency = 2},
      [&tracker](int i) -> asio::awaitable<int> {
        in_flight guard(tracker);
        co_await fanout::sleep(unit);
        co_return i * 3;
      },
      fanout::test::iota(0, 6));
  BOOST_TEST((results == std::vector<int>{0, 3, 6, 9, 12, 15}));
  BOOST_TEST(tracker.most.load() == 2);
  BOOST_TEST(tracker.now.load() == 0);
  BOOST_TEST(tracker.started.load() == 6);
  FANOUT_CHECK_ELAPSED(seconds_since(start), 3 * unit);
}

FANOUT_CO_TEST_CASE(async_map_with_max_concurrency_keeps_order_under_uneven_delays)
{
  fanout::test::tracker tracker;
  auto results = co_await fanout::async_map(
      {.max_concurrency = 3},
      [&tracker](int i) -> asio::awaitable<int> {
        in_flight guard(tracker);
        co_await fanout::sleep(std::chrono::milliseconds((i * 7) % 5 * 4));
        co_return i;
      },
      fanout::test::iota(0, 20));
  std::vector<int> expected;
  for (int i = 0; i < 20; ++i)
    expected.push_back(i);
  BOOST_TEST((results == expected));
  BOOST_TEST(tracker.most.load() <= 3);
  BOOST_TEST(tracker.most.load() >= 2);
}

FANOUT_CO_TEST_CASE(async_map_with_max_concurrency_pulls_inputs_only_as_slots_free_up)
{
  counting_input input(6);
  std::atomic<int> completed{0};
  int most_ahead = 0;
  auto results = co_await fanout::async_map(
      {.max_concurrency = 2},
      [&](int x) -> asio::awaitable<int> {
        most_ahead = std::max(most_ahead, input.pulled.load() - completed.load());
        co_await fanout::sleep(unit / 5);
        ++completed;
        co_return x;
      },
      input);
  BOOST_TEST((results == std::vector<int>{0, 1, 2, 3, 4, 5}));
  BOOST_TEST(most_ahead <= 2);
  BOOST_TEST(input.pulled.load() == 6);
}

FANOUT_CO_TEST_CASE(async_map_with_max_concurrency_1_runs_coroutines_one_at_a_time)
{
  fanout::test::tracker tracker;
  const auto start = fanout::clock::now();
  auto results = co_await fanout::async_map(
      {.max_concurrency = 1},
      [&tracker](int i) -> asio::awaitable<int> {
        in_flight guard(tracker);
        co_await fanout::sleep(unit);
        co_return i;
      },
      fanout::test::iota(0, 3));
  BOOST_TEST((results == std::vector<int>{0, 1, 2}));
  BOOST_TEST(tracker.most.load() == 1);
  FANOUT_CHECK_ELAPSED(seconds_since(start), 3 * unit);
}

FANOUT_CO_TEST_CASE(async_map_with_max_concurrency_above_the_input_size_runs_everything_at_once)
{
  fanout::test::tracker tracker;
  auto results = co_await fanout::async_map(
      {.max_concurrency = 100},
      [&tracker](int i) -> asio::awaitable<int> {
        in_flight guard(tracker);
        co_await fanout::sleep(unit);
        co_return i;
      },
      fanout::test::iota(0, 4));
  BOOST_TEST((results == std::vector<int>{0, 1, 2, 3}));
  BOOST_TEST(tracker.most.load() == 4);
}

BOOST_AUTO_TEST_SUITE_END() // async_map_concurrency_tests
