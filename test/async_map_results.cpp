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

// async_map's results: input order, zipped ranges, every kind of range, void
// items, empty input.
//
// Every suite sits in its own top-level suite (and namespace): the suites are
// compiled together in unity batches (test/CMakeLists.txt).
BOOST_AUTO_TEST_SUITE(async_map_results_tests)

namespace asio = boost::asio;
using fanout::test::counting_input;
using namespace std::chrono_literals;
using fanout::test::seconds_since;

FANOUT_CO_TEST_CASE(async_map_keeps_input_order_when_later_items_finish_first)
{
  constexpr int n = 8;
  std::vector<int> finish_order;
  const auto start = fanout::clock::now();
  auto results = co_await fanout::async_map(
      [&finish_order](int i) -> asio::awaitable<int> {
        co_await fanout::sleep(std::chrono::milliseconds(5 * (n - i)));
        finish_order.push_back(i);
        co_return i * 10;
      },
      fanout::test::iota(0, n));
  BOOST_TEST((results == std::vector<int>{0, 10, 20, 30, 40, 50, 60, 70}));
  BOOST_TEST((finish_order == std::vector<int>{7, 6, 5, 4, 3, 2, 1, 0}));
  FANOUT_CHECK_ELAPSED(seconds_since(start), 5ms * n);
}

FANOUT_CO_TEST_CASE(async_map_starts_items_in_input_order)
{
  std::vector<int> start_order;
  auto results = co_await fanout::async_map(
      [&start_order](int i) -> asio::awaitable<int> {
        start_order.push_back(i);
        co_await fanout::sleep(1ms);
        co_return i;
      },
      fanout::test::iota(0, 6));
  BOOST_TEST((start_order == std::vector<int>{0, 1, 2, 3, 4, 5}));
  BOOST_TEST((results == std::vector<int>{0, 1, 2, 3, 4, 5}));
}

FANOUT_CO_TEST_CASE(async_map_calls_the_function_once_per_element)
{
  std::vector<int> calls(5, 0);
  auto results = co_await fanout::async_map(
      [&calls](int i) -> asio::awaitable<int> {
        ++calls[static_cast<std::size_t>(i)];
        co_return -i;
      },
      fanout::test::iota(0, 5));
  BOOST_TEST((calls == std::vector<int>(5, 1)));
  BOOST_TEST((results == std::vector<int>{0, -1, -2, -3, -4}));
}

FANOUT_CO_TEST_CASE(async_map_zips_two_ranges_and_the_shortest_wins)
{
  const std::vector<int> xs{1, 2, 3, 4};
  const std::vector<int> ys{10, 20, 30};
  int calls = 0;
  auto sums = co_await fanout::async_map(
      [&calls](int x, int y) -> asio::awaitable<int> {
        ++calls;
        co_await fanout::sleep(1ms);
        co_return x + y;
      },
      xs, ys);
  BOOST_TEST((sums == std::vector<int>{11, 22, 33}));
  BOOST_TEST(calls == 3);
}

FANOUT_CO_TEST_CASE(async_map_zips_three_ranges_of_different_kinds_and_the_shortest_wins)
{
  std::vector<std::string> words{"a", "b", "c", "d", "e"};
  const std::list<char> marks{'!', '?', '.', ';'};
  auto results = co_await fanout::async_map(
      [](int n, const std::string& word, char mark) { return std::to_string(n) + word + mark; },
      fanout::test::iota(1, 100), words, marks);
  BOOST_TEST((results == std::vector<std::string>{"1a!", "2b?", "3c.", "4d;"}));
}

FANOUT_CO_TEST_CASE(async_map_works_with_an_iota_view_of_prvalue_elements)
{
  auto squares = co_await fanout::async_map([](int i) { return i * i; }, fanout::test::iota(0, 5));
  BOOST_TEST((squares == std::vector<int>{0, 1, 4, 9, 16}));
  auto doubled =
      co_await fanout::async_map([](int i) -> asio::awaitable<long> { co_return 2L * i; }, fanout::test::iota(3, 6));
  BOOST_TEST((doubled == std::vector<long>{6, 8, 10}));
}

FANOUT_CO_TEST_CASE(async_map_works_with_a_std_list)
{
  std::list<std::string> words{"x", "yy", "zzz"};
  auto results = co_await fanout::async_map(
      [](const std::string& s) -> asio::awaitable<std::string> {
        co_await fanout::sleep(1ms);
        co_return s + s;
      },
      words);
  BOOST_TEST((results == std::vector<std::string>{"xx", "yyyy", "zzzzzz"}));
}

FANOUT_CO_TEST_CASE(async_map_works_with_a_const_vector)
{
  const std::vector<int> values{1, 2, 3};
  auto results = co_await fanout::async_map([](const int& x) { return x + 1; }, values);
  BOOST_TEST((results == std::vector<int>{2, 3, 4}));
  BOOST_TEST((values == std::vector<int>{1, 2, 3}));
}

FANOUT_CO_TEST_CASE(async_map_works_with_an_rvalue_vector_which_it_moves_in)
{
  std::vector<std::string> words{"a", "bb", "ccc"};
  auto sizes = co_await fanout::async_map(
      [](std::string& s) -> asio::awaitable<std::size_t> {
        co_await fanout::sleep(1ms);
        co_return s.size();
      },
      std::move(words));
  BOOST_TEST((sizes == std::vector<std::size_t>{1, 2, 3}));

  std::vector<std::string> source{"long enough not to fit in a small string buffer", "x"};
  auto mapping = fanout::async_map([](const std::string& s) { return s.size(); }, std::move(source));
  BOOST_TEST(source.empty()); // NOLINT(bugprone-use-after-move): moved into the map at the call
  auto moved_sizes = co_await std::move(mapping);
  BOOST_TEST((moved_sizes == std::vector<std::size_t>{47, 1}));
}

FANOUT_CO_TEST_CASE(async_map_passes_elements_of_forward_ranges_by_reference)
{
  std::vector<int> values{1, 2, 3};
  co_await fanout::async_map(
      [](int& x) -> asio::awaitable<void> {
        x *= 10;
        co_return;
      },
      values);
  BOOST_TEST((values == std::vector<int>{10, 20, 30}));
  co_await fanout::async_map([](int& x) { ++x; }, values);
  BOOST_TEST((values == std::vector<int>{11, 21, 31}));
}

FANOUT_CO_TEST_CASE(async_map_works_with_a_lazily_pulled_istream_view)
{
  std::istringstream in("1 2 3 4 5");
  fanout::test::istream_range<int> numbers(in);
  auto results = co_await fanout::async_map(
      [](int x) -> asio::awaitable<int> {
        co_await fanout::sleep(1ms);
        co_return x * 10;
      },
      numbers);
  BOOST_TEST((results == std::vector<int>{10, 20, 30, 40, 50}));
}

FANOUT_CO_TEST_CASE(async_map_zips_a_single_pass_range_with_a_vector)
{
  std::istringstream in("7 8 9 10");
  fanout::test::istream_range<int> numbers(in);
  const std::vector<std::string> names{"seven", "eight", "nine"};
  auto results = co_await fanout::async_map(
      [](int x, const std::string& name) { return name + "=" + std::to_string(x); }, numbers, names);
  BOOST_TEST((results == std::vector<std::string>{"seven=7", "eight=8", "nine=9"}));
}

FANOUT_CO_TEST_CASE(async_map_works_with_a_custom_single_pass_range)
{
  counting_input input(6);
  auto results = co_await fanout::async_map(
      [](int x) -> asio::awaitable<int> {
        co_await fanout::sleep(1ms);
        co_return x + 100;
      },
      input);
  BOOST_TEST((results == std::vector<int>{100, 101, 102, 103, 104, 105}));
  BOOST_TEST(input.pulled.load() == 6);
}

FANOUT_CO_TEST_CASE(async_map_of_void_items_gives_void_after_all_side_effects)
{
  std::vector<int> seen(5, 0);
  auto mapping = fanout::async_map(
      [&seen](int i) -> asio::awaitable<void> {
        co_await fanout::sleep(std::chrono::milliseconds(5 * (5 - i)));
        seen[static_cast<std::size_t>(i)] = i + 1;
      },
      fanout::test::iota(0, 5));
  static_assert(std::is_same_v<decltype(mapping), asio::awaitable<void>>);
  co_await std::move(mapping);
  BOOST_TEST((seen == std::vector<int>{1, 2, 3, 4, 5}));

  int plain_calls = 0;
  co_await fanout::async_map([&plain_calls](int) { ++plain_calls; }, fanout::test::iota(0, 4));
  BOOST_TEST(plain_calls == 4);
}

FANOUT_CO_TEST_CASE(async_map_of_empty_input_completes_at_once_with_an_empty_vector)
{
  const std::vector<int> none;
  int calls = 0;
  const auto start = fanout::clock::now();
  auto results = co_await fanout::async_map(
      [&calls](int x) -> asio::awaitable<int> {
        ++calls;
        co_return x;
      },
      none);
  BOOST_TEST(results.empty());
  auto plain = co_await fanout::async_map([&calls](int x) { return ++calls + x; }, none);
  BOOST_TEST(plain.empty());
  auto limited = co_await fanout::async_map(
      {.max_concurrency = 2}, [](int x) { return x; }, fanout::test::iota(0, 0));
  BOOST_TEST(limited.empty());
  co_await fanout::async_map([&calls](int) { ++calls; }, none);
  // Zipped with an empty range, a long range gives nothing either.
  auto zipped = co_await fanout::async_map([](int x, int y) { return x + y; }, fanout::test::iota(0, 1000), none);
  BOOST_TEST(zipped.empty());
  BOOST_TEST(calls == 0);
  FANOUT_CHECK_ELAPSED(seconds_since(start), 0ms);
}

BOOST_AUTO_TEST_SUITE_END() // async_map_results_tests
