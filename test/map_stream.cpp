#include <fanout/map_stream.hpp>

#include <boost/test/unit_test.hpp>

#include "support/co_test.hpp"
#include "support/counting_input.hpp"
#include "support/outcomes.hpp"
#include "support/tracker.hpp"

#include <fanout/error.hpp>
#include <fanout/run.hpp>
#include <fanout/sleep.hpp>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/bind_executor.hpp>
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
#include <exception>
#include <iterator>
#include <memory>
#include <optional>
#include <random>
#include <ranges>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

// Every suite sits in its own top-level suite (and namespace): the suites are
// compiled together in unity batches (test/CMakeLists.txt).
BOOST_AUTO_TEST_SUITE(map_stream_tests)

namespace asio = boost::asio;
using fanout::test::counting_input;
using fanout::test::in_flight;
using fanout::test::tracked_value;
using fanout::test::tracker;
using namespace std::chrono_literals;
using fanout::test::code_of;
using fanout::test::iota_vector;
using fanout::test::is_aborted;
using fanout::test::is_boom;
using fanout::test::seconds_since;
using fanout::test::throws_after;
using fanout::test::unit;

namespace {

// Sleeps its delay and gives its input, tracked: one type for streams that
// must have the same type.
struct tracked_item
{
  tracker* t;
  fanout::clock::duration delay;
  asio::awaitable<int> operator()(int i) const { return tracked_value(*t, delay, i); }
};

// An input range of 0, 1, ... whose element @p bad throws when read.
class throwing_input
{
public:
  struct sentinel
  {
  };

  class iterator
  {
  public:
    using value_type = int;
    using difference_type = std::ptrdiff_t;

    iterator() = default;
    explicit iterator(throwing_input* range) : range_(range) {}

    int operator*() const
    {
      if (range_->next_ == range_->bad_)
        throw std::out_of_range("bad input");
      return range_->next_;
    }
    iterator& operator++()
    {
      ++range_->next_;
      return *this;
    }
    void operator++(int) { ++*this; }
    [[nodiscard]] bool at_end() const { return range_->next_ >= range_->size_; }
    friend bool operator==(const iterator& it, sentinel) { return it.at_end(); }

  private:
    throwing_input* range_ = nullptr;
  };

  throwing_input(int size, int bad) : size_(size), bad_(bad) {}
  iterator begin() { return iterator(this); }
  [[nodiscard]] sentinel end() const { return {}; }

private:
  int size_;
  int bad_;
  int next_ = 0;
};

static_assert(std::ranges::input_range<throwing_input&>);

} // namespace

BOOST_AUTO_TEST_SUITE(ordered_stream)

FANOUT_CO_TEST_CASE(async_map_stream_hands_out_the_first_result_long_before_the_last_item_finishes)
{
  tracker t;
  constexpr int n = 5;
  // Item 0 is instant, the last takes eight units.
  auto stream = fanout::async_map_stream(
      [&t](int i) { return tracked_value(t, i == n - 1 ? 8 * unit : i * unit / 2, i * 10); }, iota_vector(n));
  const auto start = fanout::clock::now();
  auto first = co_await stream.async_next();
  const double first_after = seconds_since(start);
  BOOST_TEST_REQUIRE(first.has_value());
  BOOST_TEST(*first == 0);
  BOOST_TEST(first_after < std::chrono::duration<double>(2 * unit).count());
  BOOST_TEST(t.now.load() >= 3); // the later items are still running
  std::vector<int> rest;
  while (auto next = co_await stream.async_next())
    rest.push_back(*next);
  BOOST_TEST((rest == std::vector<int>{10, 20, 30, 40}));
  FANOUT_CHECK_ELAPSED(seconds_since(start), 8 * unit); // all ran at once
  BOOST_TEST(t.now.load() == 0);
  BOOST_TEST(t.most.load() == n);
}

FANOUT_CO_TEST_CASE(async_map_stream_keeps_input_order_when_later_items_finish_first)
{
  tracker t;
  constexpr int n = 5;
  auto stream =
      fanout::async_map_stream([&t](int i) { return tracked_value(t, (n - 1 - i) * unit / 2, i); }, iota_vector(n));
  const auto start = fanout::clock::now();
  std::vector<int> got;
  std::vector<double> at;
  while (auto next = co_await stream.async_next()) {
    got.push_back(*next);
    at.push_back(seconds_since(start));
  }
  BOOST_TEST((got == std::vector<int>{0, 1, 2, 3, 4}));
  // Item 0 was the slowest: everything came out once it was done.
  BOOST_TEST_REQUIRE(at.size() == 5u);
  FANOUT_CHECK_ELAPSED(at.front(), 2 * unit);
  FANOUT_CHECK_ELAPSED(at.back(), 2 * unit);
}

FANOUT_CO_TEST_CASE(the_end_of_a_stream_is_an_empty_optional_and_stays_so)
{
  auto stream = fanout::async_map_stream([](int i) -> asio::awaitable<int> { co_return i + 1; }, iota_vector(3));
  std::vector<int> got;
  while (auto next = co_await stream.async_next())
    got.push_back(*next);
  BOOST_TEST((got == std::vector<int>{1, 2, 3}));
  for (int i = 0; i < 3; ++i) {
    const auto after_end = co_await stream.async_next();
    BOOST_TEST(!after_end.has_value());
  }
}

FANOUT_CO_TEST_CASE(a_stream_of_an_empty_range_ends_at_once)
{
  int calls = 0;
  auto stream = fanout::async_map_stream(
      [&calls](int i) -> asio::awaitable<int> {
        ++calls;
        co_return i;
      },
      std::vector<int>{});
  const auto start = fanout::clock::now();
  BOOST_TEST(!(co_await stream.async_next()).has_value());
  BOOST_TEST(!(co_await stream.async_next()).has_value());
  FANOUT_CHECK_ELAPSED(seconds_since(start), 0ms);
  BOOST_TEST(calls == 0);
}

FANOUT_CO_TEST_CASE(a_stream_zips_several_ranges_and_the_shortest_decides)
{
  const std::vector<int> xs{1, 2, 3, 4};
  const std::vector<std::string> ys{"a", "b", "c"};
  auto stream = fanout::async_map_stream(
      [](int x, const std::string& y) -> asio::awaitable<std::string> { co_return y + std::to_string(x); }, xs, ys);
  std::vector<std::string> got;
  while (auto next = co_await stream.async_next())
    got.push_back(*next);
  BOOST_TEST((got == std::vector<std::string>{"a1", "b2", "c3"}));
}

FANOUT_CO_TEST_CASE(with_max_concurrency_k_a_slow_reader_never_has_more_than_k_items_pulled_and_unconsumed)
{
  for (std::size_t k : {std::size_t{1}, std::size_t{3}, std::size_t{8}}) {
    BOOST_TEST_CONTEXT("max_concurrency " << k)
    {
      tracker t;
      counting_input input(30);
      auto stream = fanout::async_map_stream(
          {.max_concurrency = k}, [&t](int i) { return tracked_value(t, 1ms, i); }, input);
      int consumed = 0;
      int most_ahead = 0;
      std::vector<int> got;
      while (auto next = co_await stream.async_next()) {
        got.push_back(*next);
        ++consumed;
        most_ahead = std::max(most_ahead, input.pulled.load() - consumed);
        BOOST_TEST(input.pulled.load() - consumed <= static_cast<int>(k));
        co_await fanout::sleep(3ms); // a slow reader: the window fills meanwhile
        most_ahead = std::max(most_ahead, input.pulled.load() - consumed);
        BOOST_TEST(input.pulled.load() - consumed <= static_cast<int>(k));
      }
      BOOST_TEST(got == iota_vector(30));
      BOOST_TEST(input.pulled.load() == 30);
      BOOST_TEST(t.most.load() <= static_cast<int>(k));
      BOOST_TEST(most_ahead == static_cast<int>(k)); // the window was used, not just respected
      BOOST_TEST(t.now.load() == 0);
    }
  }
}

FANOUT_CO_TEST_CASE(a_stream_that_is_never_read_starts_nothing)
{
  tracker t;
  counting_input input(5);
  {
    auto stream = fanout::async_map_stream([&t](int i) { return tracked_value(t, 1ms, i); }, input);
    co_await fanout::sleep(unit);
  }
  co_await fanout::sleep(unit);
  BOOST_TEST(t.started.load() == 0);
  BOOST_TEST(input.pulled.load() == 0);
}

FANOUT_CO_TEST_CASE(a_hundred_thousand_items_through_a_window_of_a_hundred_give_the_exact_sum)
{
  constexpr int n = 100'000;
  counting_input input(n);
  auto stream = fanout::async_map_stream(
      {.max_concurrency = 100}, [](int i) -> asio::awaitable<long long> { co_return static_cast<long long>(i) * 3; },
      input);
  long long sum = 0;
  int count = 0;
  int most_ahead = 0;
  int out_of_order = 0;
  while (auto next = co_await stream.async_next()) {
    if (*next != static_cast<long long>(count) * 3)
      ++out_of_order;
    sum += *next;
    ++count;
    most_ahead = std::max(most_ahead, input.pulled.load() - count);
  }
  BOOST_TEST(count == n);
  BOOST_TEST(out_of_order == 0);
  BOOST_TEST(sum == 3LL * n * (n - 1) / 2);
  BOOST_TEST(most_ahead <= 100);
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(as_completed_stream)

FANOUT_CO_TEST_CASE(async_map_as_completed_yields_index_and_value_in_completion_order)
{
  tracker t;
  constexpr int n = 5;
  auto stream = fanout::async_map_as_completed([&t](int i) { return tracked_value(t, (n - 1 - i) * unit, i * 10); },
                                               iota_vector(n));
  const auto start = fanout::clock::now();
  std::vector<std::pair<std::size_t, int>> got;
  std::vector<double> at;
  while (auto next = co_await stream.async_next()) {
    got.push_back(*next);
    at.push_back(seconds_since(start));
  }
  BOOST_TEST_REQUIRE(got.size() == 5u);
  for (std::size_t k = 0; k < got.size(); ++k) {
    const std::size_t index = static_cast<std::size_t>(n) - 1 - k;
    BOOST_TEST(got[k].first == index);
    BOOST_TEST(got[k].second == static_cast<int>(index) * 10);
  }
  FANOUT_CHECK_ELAPSED(at.front(), 0ms); // the last item was instant
  FANOUT_CHECK_ELAPSED(at.back(), 4 * unit);
  BOOST_TEST(t.now.load() == 0);
}

FANOUT_CO_TEST_CASE(async_map_as_completed_covers_every_index_exactly_once_with_random_delays)
{
  constexpr unsigned seed = 20240611;
  BOOST_TEST_MESSAGE("as_completed random delays: seed " << seed);
  std::mt19937 rng(seed);
  std::uniform_int_distribution<int> delay_ms(0, 20);
  std::vector<int> delays;
  for (int i = 0; i < 300; ++i)
    delays.push_back(delay_ms(rng));
  tracker t;
  auto stream = fanout::async_map_as_completed(
      {.max_concurrency = 40}, [&t](int d) { return tracked_value(t, std::chrono::milliseconds(d), d * 7); }, delays);
  std::vector<int> seen(delays.size(), 0);
  int wrong_values = 0;
  while (auto next = co_await stream.async_next()) {
    BOOST_TEST_REQUIRE(next->first < delays.size());
    ++seen[next->first];
    if (next->second != delays[next->first] * 7)
      ++wrong_values;
  }
  BOOST_TEST(std::all_of(seen.begin(), seen.end(), [](int s) { return s == 1; }));
  BOOST_TEST(wrong_values == 0);
  BOOST_TEST(t.most.load() <= 40);
  BOOST_TEST(t.now.load() == 0);
}

FANOUT_CO_TEST_CASE(async_map_as_completed_with_a_window_never_has_more_than_k_items_pulled_and_unconsumed)
{
  constexpr std::size_t k = 4;
  counting_input input(25);
  auto stream = fanout::async_map_as_completed(
      {.max_concurrency = k}, [](int i) -> asio::awaitable<int> { co_return i; }, input);
  int consumed = 0;
  int most_ahead = 0;
  std::vector<int> seen(25, 0);
  while (auto next = co_await stream.async_next()) {
    ++seen[next->first];
    ++consumed;
    co_await fanout::sleep(1ms);
    most_ahead = std::max(most_ahead, input.pulled.load() - consumed);
  }
  BOOST_TEST(consumed == 25);
  BOOST_TEST(std::all_of(seen.begin(), seen.end(), [](int s) { return s == 1; }));
  BOOST_TEST(most_ahead <= static_cast<int>(k));
  BOOST_TEST(most_ahead >= 1);
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(failure_and_cancellation)

FANOUT_CO_TEST_CASE(a_failing_item_makes_next_throw_its_exception_after_the_other_items_were_cancelled)
{
  tracker t;
  // Items 0 and 1 are instant, 2 fails after a unit, the rest sleep 10 s.
  auto stream = fanout::async_map_stream(
      [&t](int i) { return i == 2 ? throws_after(t, unit) : tracked_value(t, i < 2 ? 0ms : 10s, i); }, iota_vector(6));
  const auto start = fanout::clock::now();
  BOOST_TEST(*co_await stream.async_next() == 0);
  BOOST_TEST(*co_await stream.async_next() == 1);
  BOOST_CHECK_EXCEPTION((void)co_await stream.async_next(), std::runtime_error, is_boom);
  FANOUT_CHECK_ELAPSED(seconds_since(start), unit);
  BOOST_TEST(t.now.load() == 0); // the sleepers were cancelled and finished before the throw
  BOOST_TEST(t.aborted.load() == 3);
}

FANOUT_CO_TEST_CASE(a_failing_item_in_an_as_completed_stream_makes_next_throw_after_the_others_were_cancelled)
{
  tracker t;
  auto stream = fanout::async_map_as_completed(
      [&t](int i) { return i == 3 ? throws_after(t, unit) : tracked_value(t, i == 0 ? 0ms : 10s, i); }, iota_vector(5));
  const auto start = fanout::clock::now();
  auto first = co_await stream.async_next();
  BOOST_TEST_REQUIRE(first.has_value());
  BOOST_TEST(first->first == 0u);
  BOOST_CHECK_EXCEPTION((void)co_await stream.async_next(), std::runtime_error, is_boom);
  FANOUT_CHECK_ELAPSED(seconds_since(start), unit);
  BOOST_TEST(t.now.load() == 0);
  BOOST_TEST(t.aborted.load() == 3);
}

FANOUT_CO_TEST_CASE(a_failure_while_the_reader_is_away_drops_the_unread_results_and_next_throws_it)
{
  tracker t;
  // Item 0 is ready at once, item 1 fails at once, the rest sleep 10 s.
  auto stream = fanout::async_map_stream(
      [&t](int i) { return i == 1 ? throws_after(t, 0ms) : tracked_value(t, i == 0 ? 0ms : 10s, i); }, iota_vector(5));
  auto first = co_await stream.async_next(); // starts the map
  BOOST_TEST_REQUIRE(first.has_value());
  BOOST_TEST(*first == 0);
  co_await fanout::sleep(unit); // meanwhile item 1 fails and the sleepers are cancelled
  BOOST_TEST(t.now.load() == 0);
  const auto start = fanout::clock::now();
  BOOST_CHECK_EXCEPTION((void)co_await stream.async_next(), std::runtime_error, is_boom);
  FANOUT_CHECK_ELAPSED(seconds_since(start), 0ms);
  BOOST_TEST(t.aborted.load() == 3);
}

FANOUT_CO_TEST_CASE(an_exception_from_the_input_range_ends_the_stream_with_that_exception)
{
  tracker t;
  throwing_input input(10, 3);
  auto stream = fanout::async_map_stream(
      {.max_concurrency = 2}, [&t](int i) { return tracked_value(t, 1ms, i); }, input);
  std::vector<int> got;
  bool threw = false;
  try {
    while (auto next = co_await stream.async_next())
      got.push_back(*next);
  } catch (const std::out_of_range& e) {
    threw = std::string(e.what()) == "bad input";
  }
  BOOST_TEST(threw);
  BOOST_TEST(got.size() <= 3u); // whatever came before the bad element, in order
  for (std::size_t i = 0; i < got.size(); ++i)
    BOOST_TEST(got[i] == static_cast<int>(i));
  BOOST_TEST(t.now.load() == 0);
}

FANOUT_CO_TEST_CASE(a_stream_of_plain_calls_gives_their_results_in_order)
{
  int calls = 0;
  auto stream = fanout::async_map_stream(
      [&calls](int i) {
        ++calls;
        return std::to_string(i * i);
      },
      iota_vector(4));
  std::vector<std::string> got;
  while (auto next = co_await stream.async_next())
    got.push_back(*next);
  BOOST_TEST((got == std::vector<std::string>{"0", "1", "4", "9"}));
  BOOST_TEST(calls == 4);
}

FANOUT_CO_TEST_CASE(destroying_a_stream_early_cancels_the_items_still_running)
{
  tracker t;
  counting_input input(10);
  {
    auto stream = fanout::async_map_stream(
        {.max_concurrency = 5}, [&t](int i) { return tracked_value(t, i == 0 ? 0ms : 10s, i); }, input);
    BOOST_TEST(*co_await stream.async_next() == 0);
    co_await fanout::sleep(unit / 5);
    BOOST_TEST(t.now.load() == 5); // items 1-5 are running (the window moved on by one)
  }
  co_await fanout::sleep(unit);
  BOOST_TEST(t.now.load() == 0);
  BOOST_TEST(t.aborted.load() == 5);
  BOOST_TEST(input.pulled.load() == 6); // and nothing more was pulled
}

FANOUT_CO_TEST_CASE(move_assigning_over_a_running_stream_cancels_its_items)
{
  auto ex = co_await asio::this_coro::executor;
  tracker slow;
  tracker fast;
  auto stream = fanout::async_map_stream(tracked_item{&slow, 10s}, iota_vector(3));
  auto other = fanout::async_map_stream(tracked_item{&fast, 0ms}, iota_vector(3));
  // Start the first stream with a callback, which stays parked while its items sleep.
  int calls = 0;
  std::exception_ptr parked_error;
  stream.async_next(asio::bind_executor(ex, [&](std::exception_ptr e, std::optional<int> value) {
    ++calls;
    parked_error = e;
    BOOST_TEST(!value.has_value());
  }));
  co_await fanout::sleep(unit / 5);
  BOOST_TEST(slow.now.load() == 3);
  stream = std::move(other);
  co_await fanout::sleep(unit);
  BOOST_TEST(calls == 1);
  BOOST_TEST(code_of(parked_error) == asio::error::operation_aborted);
  BOOST_TEST(slow.now.load() == 0);
  BOOST_TEST(slow.aborted.load() == 3);
  std::vector<int> got;
  while (auto next = co_await stream.async_next())
    got.push_back(*next);
  BOOST_TEST((got == std::vector<int>{0, 1, 2}));
  BOOST_TEST(fast.finished.load() == 3);
}

FANOUT_CO_TEST_CASE(cancel_ends_the_stream_with_operation_aborted_after_the_items_finished)
{
  tracker t;
  auto stream =
      fanout::async_map_stream([&t](int i) { return tracked_value(t, i == 0 ? 0ms : 10s, i); }, iota_vector(4));
  BOOST_TEST(*co_await stream.async_next() == 0);
  const auto start = fanout::clock::now();
  stream.cancel();
  BOOST_CHECK_EXCEPTION((void)co_await stream.async_next(), boost::system::system_error, is_aborted);
  FANOUT_CHECK_ELAPSED(seconds_since(start), 0ms);
  BOOST_TEST(t.now.load() == 0);
  BOOST_TEST(t.aborted.load() == 3);
}

FANOUT_CO_TEST_CASE(cancelling_the_coroutine_awaiting_next_cancels_the_map_with_operation_aborted)
{
  auto ex = co_await asio::this_coro::executor;
  tracker t;
  auto stream = fanout::async_map_stream([&t](int i) { return tracked_value(t, 10s, i); }, iota_vector(4));
  asio::cancellation_signal signal;
  const auto start = fanout::clock::now(); // before the canceller's clock starts
  asio::steady_timer canceller(ex, unit);
  canceller.async_wait([&signal](boost::system::error_code ec) {
    if (!ec)
      signal.emit(asio::cancellation_type::terminal);
  });
  auto [e, value] =
      co_await stream.async_next(asio::bind_cancellation_slot(signal.slot(), asio::as_tuple(asio::use_awaitable)));
  FANOUT_CHECK_ELAPSED(seconds_since(start), unit);
  BOOST_TEST(code_of(e) == asio::error::operation_aborted);
  BOOST_TEST(!value.has_value());
  BOOST_TEST(t.now.load() == 0);
  BOOST_TEST(t.aborted.load() == 4);
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(threads)

BOOST_AUTO_TEST_CASE(a_stream_read_on_a_thread_pool_gives_every_result_in_order, *boost::unit_test::timeout(60))
{
  asio::thread_pool pool(4);
  auto body = []() -> asio::awaitable<std::vector<int>> {
    auto stream = fanout::async_map_stream(
        {.max_concurrency = 16},
        [](int i) -> asio::awaitable<int> {
          co_await fanout::sleep(std::chrono::milliseconds(i % 3));
          co_return i * 2;
        },
        iota_vector(2000));
    std::vector<int> out;
    while (auto next = co_await stream.async_next())
      out.push_back(*next);
    co_return out;
  };
  auto done = asio::co_spawn(pool, body(), asio::use_future);
  const auto out = done.get();
  BOOST_TEST_REQUIRE(out.size() == 2000u);
  int wrong = 0;
  for (std::size_t i = 0; i < out.size(); ++i)
    if (out[i] != static_cast<int>(i) * 2)
      ++wrong;
  BOOST_TEST(wrong == 0);
  pool.join();
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE_END() // map_stream_tests
