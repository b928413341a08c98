#include <fanout/async_map.hpp>

#include <boost/test/unit_test.hpp>

#include "support/co_test.hpp"
#include "support/ranges.hpp"
#include "support/tracker.hpp"

#include <fanout/map_stream.hpp>
#include <fanout/sleep.hpp>

#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/cancellation_signal.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/experimental/channel.hpp>
#include <boost/asio/experimental/concurrent_channel.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/thread_pool.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/use_future.hpp>
#include <boost/system/system_error.hpp>

#include <atomic>
#include <chrono>
#include <future>
#include <optional>
#include <stdexcept>
#include <vector>

// Maps whose input is an asynchronous source: another fanout stream (stages
// chained into a pipeline), an Asio channel, or anything with an awaitable
// next(). Order, back-pressure, failure and cancellation across stages.
BOOST_AUTO_TEST_SUITE(async_sources_tests)

namespace asio = boost::asio;
using namespace std::chrono_literals;
using fanout::test::in_flight;
using fanout::test::seconds_since;
using fanout::test::tracker;
using fanout::test::unit;

using int_channel = asio::experimental::channel<void(boost::system::error_code, int)>;

// A source of 0..n-1 with an awaitable next(), each element after a short wait.
struct counting_source
{
  int n;
  int produced = 0;
  asio::awaitable<std::optional<int>> next()
  {
    if (produced == n)
      co_return std::nullopt;
    co_await fanout::sleep(1ms);
    co_return produced++;
  }
};

// Sends 0..n-1 into @p ch, then closes it. The channels that are closed are
// unbuffered: the Asio of Boost 1.81 drops what a channel still buffers when
// it is closed (later Asio keeps it for the receiver).
asio::awaitable<void> send_all(int_channel& ch, int n)
{
  for (int i = 0; i < n; ++i)
    co_await ch.async_send(boost::system::error_code{}, i, asio::use_awaitable);
  ch.close();
}

std::vector<int> iota_vector(int n)
{
  std::vector<int> v(static_cast<std::size_t>(n));
  for (int i = 0; i < n; ++i)
    v[static_cast<std::size_t>(i)] = i;
  return v;
}

FANOUT_CO_TEST_CASE(a_stream_feeds_a_second_stage_in_input_order)
{
  const auto xs = iota_vector(200);
  auto first = fanout::async_map_stream(
      {.max_concurrency = 8},
      [](int x) -> asio::awaitable<int> {
        co_await fanout::sleep(std::chrono::microseconds(100 * ((x * 7) % 5))); // finish out of order
        co_return x * 2;
      },
      xs);
  auto second = fanout::async_map_stream(
      {.max_concurrency = 4}, [](int x) { return x + 1; }, first);
  const std::vector<int> out = co_await fanout::async_map([](int x) { return x * 10; }, second);
  BOOST_TEST_REQUIRE(out.size() == 200U);
  for (int i = 0; i < 200; ++i)
    BOOST_TEST(out[static_cast<std::size_t>(i)] == (i * 2 + 1) * 10);
}

FANOUT_CO_TEST_CASE(a_source_with_an_awaitable_next_is_read_to_its_end)
{
  counting_source source{10};
  const std::vector<int> out = co_await fanout::async_map(
      {.max_concurrency = 3}, [](int x) { return x * x; }, source);
  BOOST_TEST(out == (std::vector<int>{0, 1, 4, 9, 16, 25, 36, 49, 64, 81}), boost::test_tools::per_element());
  BOOST_TEST(source.produced == 10);
}

FANOUT_CO_TEST_CASE(a_source_moved_in_is_held_by_the_map)
{
  const std::vector<int> out = co_await fanout::async_map([](int x) { return x + 1; }, counting_source{4});
  BOOST_TEST(out == (std::vector<int>{1, 2, 3, 4}), boost::test_tools::per_element());
}

FANOUT_CO_TEST_CASE(an_empty_source_gives_an_empty_result)
{
  const std::vector<int> out = co_await fanout::async_map([](int x) { return x; }, counting_source{0});
  BOOST_TEST(out.empty());
}

FANOUT_CO_TEST_CASE(a_channel_is_read_until_it_is_closed)
{
  int_channel ch(co_await asio::this_coro::executor);
  asio::co_spawn(ch.get_executor(), send_all(ch, 50), asio::detached);
  const std::vector<int> out = co_await fanout::async_map(
      [](int x) -> asio::awaitable<int> {
        co_await fanout::sleep(std::chrono::microseconds(50 * (x % 3)));
        co_return -x;
      },
      ch);
  BOOST_TEST_REQUIRE(out.size() == 50U);
  for (int i = 0; i < 50; ++i)
    BOOST_TEST(out[static_cast<std::size_t>(i)] == -i);
}

FANOUT_CO_TEST_CASE(an_error_sent_on_a_channel_fails_the_map_with_it)
{
  int_channel ch(co_await asio::this_coro::executor, 4);
  asio::co_spawn(
      ch.get_executor(),
      [&ch]() -> asio::awaitable<void> {
        co_await ch.async_send(boost::system::error_code{}, 1, asio::use_awaitable);
        co_await ch.async_send(asio::error::connection_reset, 0, asio::use_awaitable);
      },
      asio::detached);
  try {
    co_await fanout::async_map([](int x) { return x; }, ch);
    BOOST_FAIL("the map should have failed");
  } catch (const boost::system::system_error& e) {
    BOOST_TEST(e.code() == asio::error::connection_reset);
  }
}

FANOUT_CO_TEST_CASE(an_as_completed_stream_reads_a_channel)
{
  int_channel ch(co_await asio::this_coro::executor);
  asio::co_spawn(ch.get_executor(), send_all(ch, 20), asio::detached);
  auto stream = fanout::async_map_as_completed([](int x) -> asio::awaitable<int> { co_return x * 3; }, ch);
  std::vector<bool> seen(20, false);
  int count = 0;
  while (auto done = co_await stream.async_next()) {
    BOOST_TEST(done->second == static_cast<int>(done->first) * 3);
    seen[done->first] = true;
    ++count;
  }
  BOOST_TEST(count == 20);
  BOOST_TEST(std::count(seen.begin(), seen.end(), true) == 20);
}

FANOUT_CO_TEST_CASE(an_upstream_failure_fails_the_last_stage_with_it_and_stops_every_stage)
{
  tracker upstream;
  const auto xs = iota_vector(100);
  auto first = fanout::async_map_stream(
      {.max_concurrency = 4},
      [&upstream](int x) -> asio::awaitable<int> {
        in_flight guard(upstream);
        if (x == 10)
          throw std::runtime_error("upstream boom");
        co_await fanout::sleep(x < 10 ? 0ms : 10 * unit); // later items run long, unless cancelled
        co_return x;
      },
      xs);
  const auto start = std::chrono::steady_clock::now();
  try {
    co_await fanout::async_map(
        {.max_concurrency = 2}, [](int x) { return x; }, first);
    BOOST_FAIL("the map should have failed");
  } catch (const std::runtime_error& e) {
    BOOST_TEST(std::string(e.what()) == "upstream boom");
  }
  BOOST_TEST(seconds_since(start) < 5 * std::chrono::duration<double>(unit).count());
  BOOST_TEST(upstream.now == 0); // nothing of the first stage is left running
}

FANOUT_CO_TEST_CASE(a_downstream_failure_cancels_the_upstream_stage)
{
  tracker upstream;
  const auto xs = iota_vector(1000);
  auto first = fanout::async_map_stream(
      {.max_concurrency = 8},
      [&upstream](int x) -> asio::awaitable<int> {
        in_flight guard(upstream);
        co_await fanout::sleep(x < 3 ? 0ms : 10 * unit);
        co_return x;
      },
      xs);
  const auto start = std::chrono::steady_clock::now();
  try {
    co_await fanout::async_map(
        {.max_concurrency = 4},
        [](int x) -> int {
          if (x == 2)
            throw std::runtime_error("downstream boom");
          return x;
        },
        first);
    BOOST_FAIL("the map should have failed");
  } catch (const std::runtime_error& e) {
    BOOST_TEST(std::string(e.what()) == "downstream boom");
  }
  BOOST_TEST(seconds_since(start) < 5 * std::chrono::duration<double>(unit).count());
  // The upstream was cancelled with the downstream map: its waiting items
  // were woken, and none is left once its cancellation has run.
  co_await fanout::sleep(unit);
  BOOST_TEST(upstream.now == 0);
  BOOST_TEST(upstream.started <= 8 + 4 + 1);
}

FANOUT_CO_TEST_CASE(a_slow_last_stage_holds_the_first_stage_within_its_window)
{
  std::atomic<int> produced{0};
  std::atomic<int> consumed{0};
  int most_ahead = 0;
  const auto xs = iota_vector(60);
  auto first = fanout::async_map_stream(
      {.max_concurrency = 5},
      [&produced](int x) {
        ++produced;
        return x;
      },
      xs);
  auto second = fanout::async_map_stream(
      {.max_concurrency = 3}, [](int x) { return x; }, first);
  while (auto v = co_await second.async_next()) {
    most_ahead = std::max(most_ahead, produced.load() - consumed.load());
    co_await fanout::sleep(1ms); // the slow consumer
    ++consumed;
  }
  BOOST_TEST(consumed == 60);
  // Ahead of the consumer: the second stage's window (3), one element read
  // ahead by it, and the first stage's window (5).
  BOOST_TEST(most_ahead <= 3 + 1 + 5);
}

FANOUT_CO_TEST_CASE(cancelling_the_last_stage_cancels_every_stage)
{
  tracker upstream;
  const auto xs = iota_vector(100);
  auto first = fanout::async_map_stream(
      {.max_concurrency = 4},
      [&upstream](int x) -> asio::awaitable<int> {
        in_flight guard(upstream);
        co_await fanout::sleep(10 * unit);
        co_return x;
      },
      xs);
  asio::cancellation_signal cancel;
  auto ex = co_await asio::this_coro::executor;
  std::future<std::vector<int>> result = asio::co_spawn(ex, fanout::async_map([](int x) { return x; }, first),
                                                        asio::bind_cancellation_slot(cancel.slot(), asio::use_future));
  co_await fanout::sleep(unit / 5);
  BOOST_TEST(upstream.now == 4);
  const auto start = std::chrono::steady_clock::now();
  cancel.emit(asio::cancellation_type::terminal);
  while (result.wait_for(0s) != std::future_status::ready)
    co_await fanout::sleep(1ms);
  BOOST_TEST(seconds_since(start) < 5 * std::chrono::duration<double>(unit).count());
  try {
    result.get();
    BOOST_FAIL("the map should have been cancelled");
  } catch (const boost::system::system_error& e) {
    BOOST_TEST(e.code() == asio::error::operation_aborted);
  }
  co_await fanout::sleep(unit / 5);
  BOOST_TEST(upstream.now == 0);
}

FANOUT_CO_TEST_CASE(the_deadline_ends_a_map_whose_source_never_produces)
{
  int_channel ch(co_await asio::this_coro::executor, 1); // never sent to
  const auto start = std::chrono::steady_clock::now();
  try {
    co_await fanout::async_map(
        {.deadline = fanout::clock::now() + unit}, [](int x) { return x; }, ch);
    BOOST_FAIL("the map should have timed out");
  } catch (const boost::system::system_error& e) {
    BOOST_TEST((e.code() == fanout::error::timed_out));
  }
  FANOUT_CHECK_ELAPSED(seconds_since(start), unit);
}

BOOST_AUTO_TEST_CASE(the_token_form_reads_a_channel, *boost::unit_test::timeout(60))
{
  asio::io_context ctx;
  int_channel ch(ctx);
  asio::co_spawn(ctx, send_all(ch, 30), asio::detached);
  std::future<std::vector<int>> out = fanout::async_map(
      ctx, [](int x) { return x * 2; }, ch, asio::use_future);
  ctx.run();
  const std::vector<int> values = out.get();
  BOOST_TEST_REQUIRE(values.size() == 30U);
  for (int i = 0; i < 30; ++i)
    BOOST_TEST(values[static_cast<std::size_t>(i)] == i * 2);
}

// Three stages on a 4-thread pool, many rounds: every value arrives, in
// order, and nothing is left running.
BOOST_AUTO_TEST_CASE(a_three_stage_pipeline_on_a_thread_pool_keeps_input_order, *boost::unit_test::timeout(120))
{
  constexpr int n = 2000;
  for (int round = 0; round < 20; ++round) {
    asio::thread_pool pool(4);
    auto body = []() -> asio::awaitable<std::vector<int>> {
      const auto xs = iota_vector(n);
      auto s1 = fanout::async_map_stream(
          {.max_concurrency = 16},
          [](int x) -> asio::awaitable<int> {
            if (x % 7 == 0)
              co_await fanout::sleep(0ms); // resumes on any pool thread
            co_return x + 1;
          },
          xs);
      auto s2 = fanout::async_map_stream(
          {.max_concurrency = 8}, [](int x) { return x * 2; }, s1);
      co_return co_await fanout::async_map(
          {.max_concurrency = 4}, [](int x) { return x - 2; }, s2);
    };
    std::future<std::vector<int>> done = asio::co_spawn(pool, body(), asio::use_future);
    BOOST_TEST_REQUIRE((done.wait_for(60s) == std::future_status::ready), "round " << round << " hung");
    pool.join();
    const std::vector<int> out = done.get();
    BOOST_TEST_REQUIRE(out.size() == static_cast<std::size_t>(n));
    int wrong = 0;
    for (int i = 0; i < n; ++i)
      wrong += out[static_cast<std::size_t>(i)] != i * 2 ? 1 : 0;
    BOOST_TEST(wrong == 0, "round " << round);
  }
}

// A concurrent channel fed from pool threads, read by a map on the pool.
BOOST_AUTO_TEST_CASE(a_concurrent_channel_on_a_thread_pool_is_read_in_order, *boost::unit_test::timeout(120))
{
  using channel = asio::experimental::concurrent_channel<void(boost::system::error_code, int)>;
  for (int round = 0; round < 20; ++round) {
    asio::thread_pool pool(4);
    channel ch(pool);
    asio::co_spawn(
        pool,
        [&ch]() -> asio::awaitable<void> {
          for (int i = 0; i < 500; ++i)
            co_await ch.async_send(boost::system::error_code{}, i, asio::use_awaitable);
          ch.close();
        },
        asio::detached);
    std::future<std::vector<int>> out = fanout::async_map(
        pool, {.max_concurrency = 6},
        [](int x) -> asio::awaitable<int> {
          co_await fanout::sleep(0ms);
          co_return x + 3;
        },
        ch, asio::use_future);
    BOOST_TEST_REQUIRE((out.wait_for(60s) == std::future_status::ready), "round " << round << " hung");
    pool.join();
    const std::vector<int> values = out.get();
    BOOST_TEST_REQUIRE(values.size() == 500U);
    int wrong = 0;
    for (int i = 0; i < 500; ++i)
      wrong += values[static_cast<std::size_t>(i)] != i + 3 ? 1 : 0;
    BOOST_TEST(wrong == 0, "round " << round);
  }
}

BOOST_AUTO_TEST_SUITE_END()
