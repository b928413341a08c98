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

// async_map on a 4-thread pool: exact results for 100,000 items, windows, and a
// failure that cancels the other items promptly.
//
// Every suite sits in its own top-level suite (and namespace): the suites are
// compiled together in unity batches (test/CMakeLists.txt).
BOOST_AUTO_TEST_SUITE(async_map_on_thread_pools_tests)

namespace asio = boost::asio;
using fanout::test::counting_input;
using fanout::test::in_flight;
using namespace std::chrono_literals;
using fanout::test::is_boom;
using fanout::test::seconds_since;

BOOST_AUTO_TEST_CASE(async_map_on_a_thread_pool_with_100000_trivial_items_gives_exact_results,
                     *boost::unit_test::timeout(120))
{
  constexpr int n = 100000;
  asio::thread_pool pool(4);
  std::future<std::vector<std::int64_t>> future =
      asio::co_spawn(pool,
                     fanout::async_map([](int i) -> asio::awaitable<std::int64_t> { co_return std::int64_t{i} * i; },
                                       fanout::test::iota(0, n)),
                     asio::use_future);
  const auto results = future.get();
  pool.join();
  BOOST_TEST_REQUIRE(results.size() == static_cast<std::size_t>(n));
  std::size_t wrong = 0;
  for (std::size_t i = 0; i < results.size(); ++i)
    if (results[i] != static_cast<std::int64_t>(i * i))
      ++wrong;
  BOOST_TEST(wrong == 0U);
}

BOOST_AUTO_TEST_CASE(async_map_on_a_thread_pool_with_100000_plain_items_gives_exact_results,
                     *boost::unit_test::timeout(120))
{
  constexpr int n = 100000;
  asio::thread_pool pool(4);
  std::future<std::vector<int>> future =
      asio::co_spawn(pool, fanout::async_map([](int i) { return n - i; }, fanout::test::iota(0, n)), asio::use_future);
  const auto results = future.get();
  pool.join();
  BOOST_TEST_REQUIRE(results.size() == static_cast<std::size_t>(n));
  std::size_t wrong = 0;
  for (std::size_t i = 0; i < results.size(); ++i)
    if (results[i] != n - static_cast<int>(i))
      ++wrong;
  BOOST_TEST(wrong == 0U);
}

BOOST_AUTO_TEST_CASE(async_map_on_a_thread_pool_with_suspending_items_gives_exact_results_within_the_limit,
                     *boost::unit_test::timeout(120))
{
  constexpr int n = 10000;
  asio::thread_pool pool(4);
  fanout::test::tracker tracker;
  std::future<std::vector<int>> future =
      asio::co_spawn(pool,
                     fanout::async_map(
                         {.max_concurrency = 8},
                         [&tracker](int i) -> asio::awaitable<int> {
                           in_flight guard(tracker);
                           co_await fanout::sleep(0ms); // suspends, resumes on any pool thread
                           co_return i + 1;
                         },
                         fanout::test::iota(0, n)),
                     asio::use_future);
  const auto results = future.get();
  pool.join();
  BOOST_TEST_REQUIRE(results.size() == static_cast<std::size_t>(n));
  std::size_t wrong = 0;
  for (std::size_t i = 0; i < results.size(); ++i)
    if (results[i] != static_cast<int>(i) + 1)
      ++wrong;
  BOOST_TEST(wrong == 0U);
  BOOST_TEST(tracker.most.load() <= 8);
  BOOST_TEST(tracker.started.load() == n);
  BOOST_TEST(tracker.now.load() == 0);
}

BOOST_AUTO_TEST_CASE(async_map_on_a_thread_pool_rethrows_a_failure_and_cancels_the_other_items_promptly,
                     *boost::unit_test::timeout(120))
{
  // Item 0 fails at once while the other items are still being started on
  // other threads: every one of them must still be cancelled.
  constexpr int rounds = 5;
  constexpr int n = 200;
  asio::thread_pool pool(4);
  int prompt_rounds = 0;
  int failures_seen = 0;
  int rounds_with_leftovers = 0;
  for (int round = 0; round < rounds; ++round) {
    fanout::test::tracker tracker;
    const auto start = fanout::clock::now();
    std::future<std::vector<int>> future = asio::co_spawn(pool,
                                                          fanout::async_map(
                                                              [&tracker](int i) -> asio::awaitable<int> {
                                                                in_flight guard(tracker);
                                                                if (i == 0)
                                                                  throw std::runtime_error("boom");
                                                                co_await fanout::sleep(10s);
                                                                co_return i;
                                                              },
                                                              fanout::test::iota(0, n)),
                                                          asio::use_future);
    try {
      (void)future.get();
    } catch (const std::runtime_error& e) {
      if (is_boom(e))
        ++failures_seen;
    }
    if (seconds_since(start) < 2.0)
      ++prompt_rounds;
    if (tracker.now.load() != 0)
      ++rounds_with_leftovers;
  }
  pool.join();
  BOOST_TEST(failures_seen == rounds);
  BOOST_TEST(prompt_rounds == rounds);
  BOOST_TEST(rounds_with_leftovers == 0);
}

BOOST_AUTO_TEST_SUITE_END() // async_map_on_thread_pools_tests
