#include <fanout/async_map.hpp>

#include <boost/test/unit_test.hpp>

#include "support/co_test.hpp"
#include "support/counting_input.hpp"
#include "support/outcomes.hpp"
#include "support/ranges.hpp"

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

// Every suite sits in its own top-level suite (and namespace): the suites are
// compiled together in unity batches (test/CMakeLists.txt).
BOOST_AUTO_TEST_SUITE(async_map_tests)

namespace asio = boost::asio;
using fanout::test::counting_input;
using namespace std::chrono_literals;
using fanout::test::code_of;
using fanout::test::emit_after;
using fanout::test::is_boom;
using fanout::test::joined;
using fanout::test::seconds_since;
using fanout::test::unit;

namespace {

// Counts items in flight, and the most ever at once, from any thread.
struct in_flight_tracker
{
  std::atomic<int> now{0};
  std::atomic<int> most{0};
  std::atomic<int> started{0};
  std::atomic<int> finished{0};

  void enter()
  {
    ++started;
    const int current = ++now;
    int seen = most.load();
    while (current > seen && !most.compare_exchange_weak(seen, current)) {
    }
  }
  void leave()
  {
    --now;
    ++finished;
  }
};

// Marks an item in flight for its whole life, however it ends.
class in_flight
{
public:
  explicit in_flight(in_flight_tracker& tracker) : tracker_(tracker) { tracker_.enter(); }
  in_flight(const in_flight&) = delete;
  in_flight& operator=(const in_flight&) = delete;
  ~in_flight() { tracker_.leave(); }

private:
  in_flight_tracker& tracker_;
};

// Sleeps 10 s unless cancelled, and counts the cancellations it sees.
asio::awaitable<int> value_unless_cancelled(int value, std::atomic<int>& aborted)
{
  try {
    co_await fanout::sleep(10s);
  } catch (const boost::system::system_error& e) {
    if (e.code() == asio::error::operation_aborted)
      ++aborted;
    throw;
  }
  co_return value;
}

in_flight_tracker post_tracker;

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

BOOST_AUTO_TEST_SUITE(results)

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

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(concurrency)

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
  in_flight_tracker tracker;
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
  in_flight_tracker tracker;
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
  in_flight_tracker tracker;
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
  in_flight_tracker tracker;
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

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(errors_and_cancellation)

FANOUT_CO_TEST_CASE(async_map_rethrows_an_item_exception_and_cancels_the_other_items)
{
  in_flight_tracker tracker;
  std::atomic<int> aborted{0};
  const auto start = fanout::clock::now();
  bool caught = false;
  try {
    (void)co_await fanout::async_map(
        [&](int i) -> asio::awaitable<int> {
          in_flight guard(tracker);
          if (i == 2)
            co_return co_await fanout::test::throws_after(unit);
          co_return co_await value_unless_cancelled(i, aborted);
        },
        fanout::test::iota(0, 6));
  } catch (const std::runtime_error& e) {
    caught = is_boom(e);
  }
  const double elapsed = seconds_since(start);
  BOOST_TEST(caught);
  BOOST_TEST(elapsed < 1.0); // well under the 10 s the other items would sleep
  FANOUT_CHECK_ELAPSED(elapsed, unit);
  BOOST_TEST(tracker.started.load() == 6);
  BOOST_TEST(tracker.now.load() == 0); // nothing is left running
  BOOST_TEST(aborted.load() == 5);
}

// Items that finished before the failure free their places' cancellation
// handlers (no later worker will use them); the failure must still reach the
// items that run, with or without a window.
FANOUT_CO_TEST_CASE(async_map_cancels_the_running_items_when_one_fails_after_others_finished)
{
  // Unbounded, and a window of 6: item 6 then takes item 0's place.
  for (const std::size_t window : {std::size_t{0}, std::size_t{6}}) {
    BOOST_TEST_CONTEXT("max_concurrency " << window)
    {
      in_flight_tracker tracker;
      std::atomic<int> aborted{0};
      std::vector<std::string> finished;
      const auto start = fanout::clock::now();
      bool caught = false;
      try {
        (void)co_await fanout::async_map(
            {.max_concurrency = window},
            [&](int i) -> asio::awaitable<int> {
              in_flight guard(tracker);
              if (i < 5) { // done long before the failure
                co_await fanout::sleep(unit / 10);
                finished.push_back(std::to_string(i));
                co_return i;
              }
              if (i == 5)
                co_return co_await fanout::test::throws_after(unit);
              co_return co_await value_unless_cancelled(i, aborted);
            },
            fanout::test::iota(0, 7));
      } catch (const std::runtime_error& e) {
        caught = is_boom(e);
      }
      const double elapsed = seconds_since(start);
      BOOST_TEST(caught);
      BOOST_TEST(elapsed < 1.0); // well under the 10 s item 6 would sleep
      FANOUT_CHECK_ELAPSED(elapsed, unit);
      BOOST_TEST(joined(finished) == "0 1 2 3 4");
      BOOST_TEST(tracker.started.load() == 7);
      BOOST_TEST(tracker.now.load() == 0); // nothing is left running
      BOOST_TEST(aborted.load() == 1);
    }
  }
}

FANOUT_CO_TEST_CASE(async_map_stops_pulling_inputs_after_an_item_fails)
{
  std::vector<int> called;
  bool caught = false;
  try {
    (void)co_await fanout::async_map(
        [&called](int i) {
          called.push_back(i);
          if (i == 2)
            throw std::runtime_error("boom");
          return i;
        },
        fanout::test::iota(0, 10));
  } catch (const std::runtime_error& e) {
    caught = is_boom(e);
  }
  BOOST_TEST(caught);
  BOOST_TEST((called == std::vector<int>{0, 1, 2})); // inline calls after the failure never start

  in_flight_tracker tracker;
  counting_input input(10);
  bool caught_limited = false;
  try {
    (void)co_await fanout::async_map(
        {.max_concurrency = 2},
        [&tracker](int i) -> asio::awaitable<int> {
          in_flight guard(tracker);
          co_await fanout::sleep(i == 0 ? unit : 10s);
          throw std::runtime_error("boom");
        },
        input);
  } catch (const std::runtime_error& e) {
    caught_limited = is_boom(e);
  }
  BOOST_TEST(caught_limited);
  BOOST_TEST(tracker.started.load() == 2);
  BOOST_TEST(tracker.now.load() == 0);
  BOOST_TEST(input.pulled.load() == 2);
}

FANOUT_CO_TEST_CASE(async_map_rethrows_only_the_first_failure)
{
  bool caught_first = false;
  try {
    (void)co_await fanout::async_map(
        [](int i) -> asio::awaitable<int> {
          co_await fanout::sleep(std::chrono::milliseconds(10 * (i + 1)));
          throw std::runtime_error("failure " + std::to_string(i));
        },
        fanout::test::iota(0, 3));
  } catch (const std::runtime_error& e) {
    caught_first = std::string(e.what()) == "failure 0";
  }
  BOOST_TEST(caught_first);
}

FANOUT_CO_TEST_CASE(async_map_rethrows_an_exception_from_pulling_the_input)
{
  in_flight_tracker tracker;
  auto input = fanout::test::iota_transform(0, 6, [](int i) {
    if (i == 3)
      throw std::runtime_error("boom");
    return i;
  });
  const auto start = fanout::clock::now();
  bool caught = false;
  try {
    (void)co_await fanout::async_map(
        [&tracker](int i) -> asio::awaitable<int> {
          in_flight guard(tracker);
          co_await fanout::sleep(10s);
          co_return i;
        },
        input);
  } catch (const std::runtime_error& e) {
    caught = is_boom(e);
  }
  BOOST_TEST(caught);
  BOOST_TEST(tracker.started.load() <= 3);
  BOOST_TEST(tracker.now.load() == 0);
  FANOUT_CHECK_ELAPSED(seconds_since(start), 0ms);
}

FANOUT_CO_TEST_CASE(cancelling_the_awaiting_coroutine_cancels_every_item)
{
  auto ex = co_await asio::this_coro::executor;
  in_flight_tracker tracker;
  std::atomic<int> aborted{0};
  asio::cancellation_signal signal;
  asio::steady_timer canceller(ex);
  const auto start = fanout::clock::now();
  emit_after(canceller, signal, unit);
  auto [e, results] =
      co_await asio::co_spawn(ex,
                              fanout::async_map(
                                  [&](int i) -> asio::awaitable<int> {
                                    in_flight guard(tracker);
                                    try {
                                      co_await fanout::sleep(10s);
                                    } catch (const boost::system::system_error& error) {
                                      if (error.code() == asio::error::operation_aborted)
                                        ++aborted;
                                      throw;
                                    }
                                    co_return i;
                                  },
                                  fanout::test::iota(0, 5)),
                              asio::bind_cancellation_slot(signal.slot(), asio::as_tuple(asio::use_awaitable)));
  BOOST_TEST(code_of(e) == asio::error::operation_aborted);
  BOOST_TEST(results.empty());
  BOOST_TEST(tracker.started.load() == 5);
  BOOST_TEST(tracker.now.load() == 0);
  BOOST_TEST(aborted.load() == 5);
  FANOUT_CHECK_ELAPSED(seconds_since(start), unit);
}

FANOUT_CO_TEST_CASE(cancelling_the_awaiting_coroutine_starts_no_more_items)
{
  auto ex = co_await asio::this_coro::executor;
  in_flight_tracker tracker;
  asio::cancellation_signal signal;
  asio::steady_timer canceller(ex);
  const auto start = fanout::clock::now();
  emit_after(canceller, signal, unit);
  auto [e, results] =
      co_await asio::co_spawn(ex,
                              fanout::async_map(
                                  {.max_concurrency = 2},
                                  [&tracker](int i) -> asio::awaitable<int> {
                                    in_flight guard(tracker);
                                    co_await fanout::sleep(10s);
                                    co_return i;
                                  },
                                  fanout::test::iota(0, 10)),
                              asio::bind_cancellation_slot(signal.slot(), asio::as_tuple(asio::use_awaitable)));
  BOOST_TEST(code_of(e) == asio::error::operation_aborted);
  BOOST_TEST(tracker.started.load() == 2);
  BOOST_TEST(tracker.now.load() == 0);
  FANOUT_CHECK_ELAPSED(seconds_since(start), unit);
}

FANOUT_CO_TEST_CASE(cancelling_the_awaiting_coroutine_of_offloaded_calls_waits_for_the_running_ones)
{
  auto ex = co_await asio::this_coro::executor;
  std::atomic<int> ran{0};
  asio::cancellation_signal signal;
  asio::steady_timer canceller(ex);
  const auto start = fanout::clock::now();
  emit_after(canceller, signal, unit);
  auto [e, results] =
      co_await asio::co_spawn(ex,
                              fanout::async_map(
                                  {.blocking = fanout::blocking_policy::offload},
                                  [&ran](int i) {
                                    std::this_thread::sleep_for(2 * unit);
                                    ++ran;
                                    return i;
                                  },
                                  fanout::test::iota(0, 3)),
                              asio::bind_cancellation_slot(signal.slot(), asio::as_tuple(asio::use_awaitable)));
  BOOST_TEST(code_of(e) == asio::error::operation_aborted);
  BOOST_TEST(ran.load() == 3); // running blocking calls cannot be interrupted: they were waited for
  FANOUT_CHECK_ELAPSED(seconds_since(start), 2 * unit);
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(thread_pools)

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
  in_flight_tracker tracker;
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
    in_flight_tracker tracker;
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

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE_END() // async_map_tests
