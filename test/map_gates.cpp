#include <fanout/map_options.hpp>

#include <boost/test/unit_test.hpp>

#include "support/co_test.hpp"
#include "support/tracker.hpp"

#include <fanout/async_map.hpp>
#include <fanout/limiter.hpp>
#include <fanout/map_stream.hpp>
#include <fanout/rate_limiter.hpp>
#include <fanout/retry.hpp>
#include <fanout/sleep.hpp>
#include <fanout/task_group.hpp>

#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/cancellation_signal.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/thread_pool.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/use_future.hpp>
#include <boost/system/system_error.hpp>

#include <atomic>
#include <chrono>
#include <future>
#include <memory>
#include <stdexcept>
#include <vector>

// map_options.limiter, .rate and .retry: what every item of a map passes
// before it runs, shared with other maps and groups.
BOOST_AUTO_TEST_SUITE(map_gates_tests)

namespace asio = boost::asio;
using namespace std::chrono_literals;
using fanout::test::in_flight;
using fanout::test::seconds_since;
using fanout::test::tracker;
using fanout::test::unit;

std::vector<int> iota_vector(int n)
{
  std::vector<int> v(static_cast<std::size_t>(n));
  for (int i = 0; i < n; ++i)
    v[static_cast<std::size_t>(i)] = i;
  return v;
}

// An item that is in flight for @p t while it waits @p d, then gives x + 1.
auto tracked_item(tracker& t, fanout::clock::duration d)
{
  return [&t, d](int x) -> asio::awaitable<int> {
    in_flight guard(t);
    co_await fanout::sleep(d);
    co_return x + 1;
  };
}

FANOUT_CO_TEST_CASE(three_maps_sharing_a_limiter_of_5_never_have_more_than_5_items_in_flight_together)
{
  fanout::limiter lim(5);
  tracker all;
  const auto xs = iota_vector(100);
  const fanout::map_options options{.max_concurrency = 10, .limiter = &lim};
  fanout::task_group group(co_await asio::this_coro::executor);
  auto m1 = group.spawn(fanout::async_map(options, tracked_item(all, 1ms), xs));
  auto m2 = group.spawn(fanout::async_map(options, tracked_item(all, 1ms), xs));
  auto m3 = group.spawn(fanout::async_map(options, tracked_item(all, 1ms), xs));
  co_await group.async_join();
  for (auto* m : {&m1, &m2, &m3}) {
    const std::vector<int> out = co_await m->async_wait();
    BOOST_TEST_REQUIRE(out.size() == 100U);
    BOOST_TEST(out.front() == 1);
    BOOST_TEST(out.back() == 100);
  }
  BOOST_TEST(all.started == 300);
  BOOST_TEST(all.most == 5);
  BOOST_TEST(lim.in_use() == 0U);
}

FANOUT_CO_TEST_CASE(each_map_sharing_a_limiter_is_still_bounded_by_its_own_max_concurrency)
{
  fanout::limiter lim(10);
  tracker t;
  co_await fanout::async_map({.max_concurrency = 3, .limiter = &lim}, tracked_item(t, 1ms), iota_vector(30));
  BOOST_TEST(t.most == 3);
}

FANOUT_CO_TEST_CASE(a_cancelled_maps_waiters_leave_the_limiters_queue_and_take_nothing)
{
  fanout::limiter lim(1);
  auto held = co_await lim.acquire(); // the only place is taken elsewhere
  tracker t;
  asio::cancellation_signal cancel;
  std::future<std::vector<int>> result =
      asio::co_spawn(co_await asio::this_coro::executor,
                     fanout::async_map({.max_concurrency = 4, .limiter = &lim}, tracked_item(t, 1ms), iota_vector(20)),
                     asio::bind_cancellation_slot(cancel.slot(), asio::use_future));
  co_await fanout::sleep(unit / 5);
  BOOST_TEST(lim.waiting() == 4U); // the window's four items queue for the place
  cancel.emit(asio::cancellation_type::terminal);
  while (result.wait_for(0s) != std::future_status::ready)
    co_await fanout::sleep(1ms);
  BOOST_CHECK_THROW(result.get(), boost::system::system_error);
  BOOST_TEST(lim.waiting() == 0U);
  BOOST_TEST(lim.in_use() == 1U); // still only the place held above
  BOOST_TEST(t.started == 0);
}

FANOUT_CO_TEST_CASE(a_task_group_and_a_map_share_a_limiter)
{
  fanout::limiter lim(2);
  tracker t;
  fanout::task_group group(co_await asio::this_coro::executor);
  for (int i = 0; i < 6; ++i)
    group.spawn([](fanout::limiter& l, tracker& tr) -> asio::awaitable<void> {
      auto permit = co_await l.acquire(); // a group's task under the limiter
      in_flight guard(tr);
      co_await fanout::sleep(1ms);
    }(lim, t));
  const auto out = co_await fanout::async_map({.limiter = &lim}, tracked_item(t, 1ms), iota_vector(6));
  co_await group.async_join();
  BOOST_TEST(out.size() == 6U);
  BOOST_TEST(t.started == 12);
  BOOST_TEST(t.most == 2);
}

BOOST_AUTO_TEST_CASE(maps_on_a_thread_pool_sharing_a_limiter_never_exceed_it, *boost::unit_test::timeout(120))
{
  for (int round = 0; round < 10; ++round) {
    fanout::limiter lim(5);
    tracker t;
    asio::thread_pool pool(4);
    auto body = [&]() -> asio::awaitable<int> {
      const fanout::map_options options{.max_concurrency = 8, .limiter = &lim};
      auto item = [&t](int x) -> asio::awaitable<int> {
        in_flight guard(t);
        co_await fanout::sleep(x % 3 == 0 ? 100us : 0us);
        co_return x;
      };
      fanout::task_group group(co_await asio::this_coro::executor);
      auto a = group.spawn(fanout::async_map(options, item, iota_vector(300)));
      auto b = group.spawn(fanout::async_map(options, item, iota_vector(300)));
      co_await group.async_join();
      co_return static_cast<int>((co_await a.async_wait()).size() + (co_await b.async_wait()).size());
    };
    std::future<int> done = asio::co_spawn(pool, body(), asio::use_future);
    BOOST_TEST_REQUIRE((done.wait_for(60s) == std::future_status::ready), "round " << round << " hung");
    pool.join();
    BOOST_TEST(done.get() == 600);
    BOOST_TEST(t.most <= 5);
    BOOST_TEST(t.now == 0);
    BOOST_TEST(lim.in_use() == 0U);
  }
}

FANOUT_CO_TEST_CASE(a_map_with_a_rate_limiter_starts_items_at_that_rate)
{
  // 100 items at 20 per unit with a burst of 5: (100 - 5) / 20 units.
  fanout::rate_limiter rate(20, unit, 5);
  const auto start = std::chrono::steady_clock::now();
  const auto out = co_await fanout::async_map(
      {.rate = &rate}, [](int x) { return x * 2; }, iota_vector(100));
  BOOST_TEST(out.size() == 100U);
  BOOST_TEST(out.back() == 198);
  FANOUT_CHECK_ELAPSED(seconds_since(start), unit * 95 / 20);
}

FANOUT_CO_TEST_CASE(flaky_items_are_retried_until_their_third_attempt_succeeds)
{
  std::vector<int> attempts(10, 0);
  const fanout::backoff policy{.initial = unit / 5, .factor = 2, .jitter = 0, .max_attempts = 3};
  const auto start = std::chrono::steady_clock::now();
  const auto out = co_await fanout::async_map(
      {.retry = policy},
      [&attempts](int x) -> asio::awaitable<int> {
        if (++attempts[static_cast<std::size_t>(x)] < 3)
          throw std::runtime_error("flaky");
        co_return x;
      },
      iota_vector(10));
  BOOST_TEST(out.size() == 10U);
  for (int a : attempts)
    BOOST_TEST(a == 3);
  // Backoff sleeps of 1/5 and 2/5 of a unit, all items at once.
  FANOUT_CHECK_ELAPSED(seconds_since(start), unit * 3 / 5);
}

FANOUT_CO_TEST_CASE(an_item_that_always_fails_is_attempted_max_attempts_times_and_its_last_failure_comes_out)
{
  std::atomic<int> attempts{0};
  try {
    co_await fanout::async_map(
        {.retry = fanout::backoff{.initial = 1ms, .jitter = 0, .max_attempts = 4}},
        [&attempts](int) -> asio::awaitable<int> {
          throw std::runtime_error("attempt " + std::to_string(++attempts));
          co_return 0;
        },
        iota_vector(1));
    BOOST_FAIL("the map should have failed");
  } catch (const std::runtime_error& e) {
    BOOST_TEST(std::string(e.what()) == "attempt 4");
  }
  BOOST_TEST(attempts == 4);
}

FANOUT_CO_TEST_CASE(a_settled_map_keeps_each_items_outcome_after_its_retries)
{
  const auto out = co_await fanout::async_map_settled(
      {.retry = fanout::backoff{.initial = 1ms, .jitter = 0, .max_attempts = 2}},
      [](int x) -> int {
        if (x % 2 == 1)
          throw std::runtime_error("odd");
        return x;
      },
      iota_vector(4));
  BOOST_TEST_REQUIRE(out.size() == 4U);
  BOOST_TEST(out[0].has_value());
  BOOST_TEST(!out[1].has_value());
  BOOST_TEST(out[2].value() == 2);
  BOOST_TEST(!out[3].has_value());
}

FANOUT_CO_TEST_CASE(a_retry_never_sleeps_past_the_items_timeout)
{
  // Attempt 1 fails at once, sleeps one fifth of a unit, attempt 2 fails;
  // the next sleep (two fifths) would end past the timeout (half a unit):
  // the item gives up with its failure at once, without timing out.
  std::atomic<int> attempts{0};
  const auto start = std::chrono::steady_clock::now();
  try {
    co_await fanout::async_map(
        {.item_timeout = unit / 2, .retry = fanout::backoff{.initial = unit / 5, .factor = 2, .jitter = 0}},
        [&attempts](int) -> asio::awaitable<int> {
          ++attempts;
          throw std::runtime_error("down");
          co_return 0;
        },
        iota_vector(1));
    BOOST_FAIL("the map should have failed");
  } catch (const std::runtime_error& e) {
    BOOST_TEST(std::string(e.what()) == "down");
  }
  BOOST_TEST(attempts == 2);
  FANOUT_CHECK_ELAPSED(seconds_since(start), unit / 5);
}

FANOUT_CO_TEST_CASE(a_retry_policy_with_bad_values_fails_the_map_before_any_item_starts)
{
  std::atomic<int> calls{0};
  try {
    co_await fanout::async_map(
        {.retry = fanout::backoff{.max_attempts = 0}}, [&calls](int x) { return ++calls + x; }, iota_vector(3));
    BOOST_FAIL("the map should have failed");
  } catch (const boost::system::system_error& e) {
    BOOST_TEST((e.code() == fanout::error::invalid_argument));
  }
  BOOST_TEST(calls == 0);
}

FANOUT_CO_TEST_CASE(cancelling_a_map_during_a_retry_backoff_ends_it_at_once)
{
  asio::cancellation_signal cancel;
  std::future<std::vector<int>> result =
      asio::co_spawn(co_await asio::this_coro::executor,
                     fanout::async_map(
                         {.retry = fanout::backoff{.initial = 20 * unit, .jitter = 0}},
                         [](int) -> asio::awaitable<int> {
                           throw std::runtime_error("down");
                           co_return 0;
                         },
                         iota_vector(3)),
                     asio::bind_cancellation_slot(cancel.slot(), asio::use_future));
  co_await fanout::sleep(unit / 5);
  const auto start = std::chrono::steady_clock::now();
  cancel.emit(asio::cancellation_type::terminal);
  while (result.wait_for(0s) != std::future_status::ready)
    co_await fanout::sleep(1ms);
  BOOST_TEST(seconds_since(start) < std::chrono::duration<double>(unit).count());
  try {
    result.get();
    BOOST_FAIL("the map should have been cancelled");
  } catch (const boost::system::system_error& e) {
    BOOST_TEST(e.code() == asio::error::operation_aborted);
  }
}

FANOUT_CO_TEST_CASE(a_stream_with_a_limiter_gives_every_result_in_order)
{
  fanout::limiter lim(2);
  tracker t;
  auto stream =
      fanout::async_map_stream({.max_concurrency = 6, .limiter = &lim}, tracked_item(t, 1ms), iota_vector(20));
  int expected = 1;
  while (auto v = co_await stream.async_next())
    BOOST_TEST(*v == expected++);
  BOOST_TEST(expected == 21);
  BOOST_TEST(t.most == 2);
}

BOOST_AUTO_TEST_SUITE_END()
