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

// async_map's failures and cancellation: the first failure is rethrown and
// cancels the other items; cancelling the awaiting coroutine cancels them all.
//
// Every suite sits in its own top-level suite (and namespace): the suites are
// compiled together in unity batches (test/CMakeLists.txt).
BOOST_AUTO_TEST_SUITE(async_map_errors_tests)

namespace asio = boost::asio;
using fanout::test::counting_input;
using fanout::test::in_flight;
using namespace std::chrono_literals;
using fanout::test::code_of;
using fanout::test::emit_after;
using fanout::test::is_boom;
using fanout::test::joined;
using fanout::test::seconds_since;
using fanout::test::unit;

namespace {

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

} // namespace

FANOUT_CO_TEST_CASE(async_map_rethrows_an_item_exception_and_cancels_the_other_items)
{
  fanout::test::tracker tracker;
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
      fanout::test::tracker tracker;
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

  fanout::test::tracker tracker;
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
  fanout::test::tracker tracker;
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
  fanout::test::tracker tracker;
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
  fanout::test::tracker tracker;
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
  std::atomic<int> started{0};
  asio::cancellation_signal signal;
  asio::steady_timer canceller(ex);
  const auto start = fanout::clock::now();
  fanout::test::emit_when(canceller, signal, [&] { return started.load() == 3; }); // all three are running
  auto [e, results] =
      co_await asio::co_spawn(ex,
                              fanout::async_map(
                                  {.blocking = fanout::blocking_policy::offload},
                                  [&ran, &started](int i) {
                                    ++started;
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

BOOST_AUTO_TEST_SUITE_END() // async_map_errors_tests
