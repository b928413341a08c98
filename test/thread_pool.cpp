// Maps on a four-thread asio::thread_pool, over many rounds, each under a
// watchdog: a hung round fails the test and ends the process, naming the round
// (a hung pool cannot be recovered).
#include <fanout/async_map.hpp>

#include <boost/test/unit_test.hpp>

#include "support/co_test.hpp"
#include "support/outcomes.hpp"
#include "support/ranges.hpp"
#include "support/run_until.hpp"
#include "support/tracker.hpp"

#include <fanout/map_options.hpp>
#include <fanout/map_stream.hpp>
#include <fanout/outcome.hpp>
#include <fanout/run.hpp>
#include <fanout/sleep.hpp>
#include <fanout/sync_map.hpp>
#include <fanout/task.hpp>
#include <fanout/timeout.hpp>

#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/cancellation_signal.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/thread_pool.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/use_future.hpp>
#include <boost/system/error_code.hpp>

#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <exception>
#include <future>
#include <iostream>
#include <memory>
#include <optional>
#include <random>
#include <stdexcept>
#include <string>
#include <thread>
#include <type_traits>
#include <utility>
#include <vector>

// Every suite sits in its own top-level suite (and namespace): the suites are
// compiled together in unity batches (test/CMakeLists.txt).
BOOST_AUTO_TEST_SUITE(thread_pool_tests)

// Sanitized builds run 5-15 times slower: fewer rounds and items there.
#if defined(__SANITIZE_THREAD__) || defined(__SANITIZE_ADDRESS__)
#define FANOUT_POOL_SANITIZED 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer) || __has_feature(address_sanitizer) || __has_feature(undefined_behavior_sanitizer)
#define FANOUT_POOL_SANITIZED 1
#endif
#endif

namespace asio = boost::asio;
using namespace std::chrono_literals;
using fanout::test::code_of;
using fanout::test::in_flight;
using fanout::test::message_of;
using fanout::test::run_until;
using fanout::test::seconds_since;
using fanout::test::timed_out;
using fanout::test::tracker;
using fanout::test::unit;
using fanout::test::wait_until;

namespace {

#if defined(FANOUT_POOL_SANITIZED)
constexpr bool sanitized = true;
#else
constexpr bool sanitized = false;
#endif
constexpr int fail_fast_rounds = sanitized ? 8 : 40;
constexpr int fail_fast_items = sanitized ? 2000 : 20000;
constexpr int stream_rounds = sanitized ? 200 : 1500;
constexpr int cancel_rounds = sanitized ? 40 : 200;
constexpr int timeout_rounds = sanitized ? 1 : 3;
constexpr int window_rounds = sanitized ? 10 : 20;
constexpr int sync_rounds = sanitized ? 20 : 100;
constexpr auto hang_limit = sanitized ? 120s : 30s;
constexpr fanout::clock::duration window_deadline = sanitized ? fanout::clock::duration(1s) : 2 * unit;

// How long a cancelled map may take to end: well under a second, far under
// the seconds its items would sleep (more under TSan, see late_slack_seconds).
constexpr double prompt_seconds = 0.75 + fanout::test::late_slack_seconds;

// Ends the process: the thread that hung cannot be stopped, and the pool or
// context it hung on cannot be destroyed.
[[noreturn]] void give_up(const std::string& what)
{
  std::cout.flush();
  std::cerr << "thread_pool_tests: " << what << " did not complete within "
            << std::chrono::duration<double>(hang_limit).count() << " s: it hangs; exiting" << std::endl;
  std::_Exit(1);
}

// Waits for @p future at most hang_limit; fails the test and exits if it does
// not complete.
template <typename T>
void wait_or_give_up(std::future<T>& future, const std::string& what)
{
  if (future.wait_for(hang_limit) != std::future_status::ready) {
    BOOST_ERROR(what << " hangs");
    give_up(what);
  }
}

// Runs @p body on a thread of its own and gives its result, at most
// hang_limit.
template <typename Body>
std::invoke_result_t<Body&> within_limit(const std::string& what, Body body)
{
  std::packaged_task<std::invoke_result_t<Body&>()> task(std::move(body));
  auto future = task.get_future();
  std::thread thread(std::move(task));
  if (future.wait_for(hang_limit) != std::future_status::ready) {
    thread.detach();
    BOOST_ERROR(what << " hangs");
    give_up(what);
  }
  thread.join();
  return future.get();
}

std::string round_name(const char* test, int round)
{
  return std::string(test) + ", round " + std::to_string(round);
}

// Item 0 fails after @p fail_after; every other item sleeps @p delay, then
// counts itself in @p slept (an item that ran its full sleep: not cancelled).
asio::awaitable<int> sleeper_or_failure(tracker& items, std::atomic<int>& slept, int i,
                                        fanout::clock::duration fail_after, fanout::clock::duration delay)
{
  const in_flight scope(items);
  if (i == 0) {
    co_await fanout::sleep(fail_after);
    throw std::runtime_error("item 0 failed");
  }
  co_await fanout::sleep(delay);
  ++slept;
  co_return i;
}

asio::awaitable<int> held_int(tracker& items, fanout::clock::duration delay, int value)
{
  const in_flight scope(items);
  co_await fanout::sleep(delay);
  co_return value;
}

// Item 0 waits @p first, the others return without suspending.
asio::awaitable<int> ready_item(tracker& items, int i, fanout::clock::duration first)
{
  const in_flight scope(items);
  if (i == 0)
    co_await fanout::sleep(first);
  co_return i;
}

struct stream_failure
{
  std::exception_ptr error;
  int read = 0;
  double seconds = 0;
};

// How item 0 of a stream fails: at once, after yielding to the pool once, or
// after a zero sleep (three spots in the spawning of the items after it).
enum class failure_timing { at_once, after_a_yield, after_a_zero_sleep };

// Reads an ordered stream with a window of 8 whose item 0 fails (@p timing)
// while the 3 s items after it are being spawned on other threads.
asio::awaitable<stream_failure> read_failing_stream(tracker& items, std::atomic<int>& slept, failure_timing timing)
{
  stream_failure out;
  auto stream = fanout::async_map_stream(
      {.max_concurrency = 8},
      [&items, &slept, timing](int i) -> asio::awaitable<int> {
        const in_flight scope(items);
        if (i == 0) {
          if (timing == failure_timing::after_a_yield)
            co_await asio::post(co_await asio::this_coro::executor, asio::use_awaitable);
          else if (timing == failure_timing::after_a_zero_sleep)
            co_await fanout::sleep(0ms);
          throw std::runtime_error("item 0 failed");
        }
        co_await fanout::sleep(3s);
        ++slept;
        co_return i;
      },
      fanout::test::iota(0, 40));
  const auto start = fanout::clock::now();
  try {
    while (co_await stream.async_next())
      ++out.read;
  } catch (...) {
    out.error = std::current_exception();
  }
  out.seconds = seconds_since(start);
  co_return out;
}

// One token-form map, its cancellation signal, and what its handler saw.
struct cancelled_map
{
  tracker items;
  asio::cancellation_signal signal;
  std::atomic<int> calls{0};
  std::exception_ptr error;
  std::int64_t items_in_handler = -1;
  std::promise<void> completed;
};

struct timeout_case
{
  int index;
  std::chrono::microseconds operation;
  std::chrono::microseconds limit;
};

enum class ending { deadline, cancel };

struct full_window_end
{
  int first = -1;
  int finished_before = 0;
  std::exception_ptr error;
  std::optional<int> value;
  double seconds = 0;
};

// Reads item 0 of an ordered stream with a window of 2 whose items are ready
// at once, lets items 1 and 2 fill the window unread, ends the stream as
// @p how says, and times the next next().
asio::awaitable<full_window_end> next_after_a_full_window(ending how)
{
  std::atomic<int> finished{0};
  fanout::map_options options{.max_concurrency = 2};
  if (how == ending::deadline)
    options.deadline = fanout::clock::now() + window_deadline;
  auto stream = fanout::async_map_stream(
      options,
      [&finished](int i) -> asio::awaitable<int> {
        ++finished;
        co_return i;
      },
      fanout::test::iota(0, 10));
  full_window_end out;
  out.first = (co_await stream.async_next()).value_or(-1); // starts the map
  const auto give_up_at = fanout::clock::now() + 2s;
  while (finished.load() < 3 && fanout::clock::now() < give_up_at)
    co_await fanout::sleep(1ms);
  co_await fanout::sleep(unit / 5); // nothing more starts: the window is full
  out.finished_before = finished.load();
  if (how == ending::deadline)
    co_await fanout::sleep_until(*options.deadline + unit / 5);
  else
    stream.cancel();
  const auto start = fanout::clock::now();
  try {
    out.value = co_await stream.async_next();
  } catch (...) {
    out.error = std::current_exception();
  }
  out.seconds = seconds_since(start);
  co_return out;
}

void check_full_window_ends(ending how, const char* test, const boost::system::error_code& expected)
{
  asio::thread_pool pool(4);
  for (int round = 0; round < window_rounds; ++round) {
    BOOST_TEST_CONTEXT("round " << round)
    {
      auto future = asio::co_spawn(pool, next_after_a_full_window(how), asio::use_future);
      wait_or_give_up(future, round_name(test, round));
      const full_window_end out = future.get();
      BOOST_TEST(out.first == 0);
      BOOST_TEST(out.finished_before == 3); // item 0 read, items 1 and 2 unread in the window
      BOOST_TEST(code_of(out.error) == expected);
      BOOST_TEST(!out.value.has_value());
      BOOST_TEST(out.seconds < prompt_seconds);
    }
  }
  pool.join();
}

} // namespace

// Fail-fast maps and streams: a failure cancels the items being spawned too.
BOOST_AUTO_TEST_CASE(a_failure_among_20000_sleeping_items_on_a_pool_ends_the_map_in_well_under_a_second)
{
  asio::thread_pool pool(4);
  for (int round = 0; round < fail_fast_rounds; ++round) {
    BOOST_TEST_CONTEXT("round " << round << " of " << fail_fast_rounds)
    {
      tracker items;
      std::atomic<int> slept{0};
      const auto start = fanout::clock::now();
      auto future = asio::co_spawn(
          pool,
          fanout::async_map([&items, &slept](int i) { return sleeper_or_failure(items, slept, i, 200us, 4s); },
                            fanout::test::iota(0, fail_fast_items)),
          asio::use_future);
      wait_or_give_up(future, round_name("fail-fast map of 20000 items", round));
      std::exception_ptr error;
      try {
        (void)future.get();
      } catch (...) {
        error = std::current_exception();
      }
      const double elapsed = seconds_since(start);
      BOOST_TEST(message_of(error) == "item 0 failed");
      BOOST_TEST(elapsed < prompt_seconds);
      BOOST_TEST(slept.load() == 0); // every sleeping item was cancelled
      BOOST_TEST(items.now.load() == 0);
      if (elapsed >= prompt_seconds || slept.load() != 0)
        break; // one slow round is enough: each costs the items' 4 s
    }
  }
  pool.join();
}

// The race is narrow (a few rounds in a thousand hit it): many cheap rounds.
BOOST_AUTO_TEST_CASE(
    an_ordered_stream_on_a_pool_throws_a_failure_met_while_spawning_at_once_and_runs_no_item_to_its_end)
{
  asio::thread_pool pool(4);
  for (int round = 0; round < stream_rounds; ++round) {
    const auto timing = static_cast<failure_timing>(round % 3);
    BOOST_TEST_CONTEXT("round " << round << " of " << stream_rounds << ", failure timing " << round % 3)
    {
      tracker items;
      std::atomic<int> slept{0};
      auto future = asio::co_spawn(pool, read_failing_stream(items, slept, timing), asio::use_future);
      wait_or_give_up(future, round_name("ordered stream with a window of 8", round));
      const stream_failure out = future.get();
      BOOST_TEST(message_of(out.error) == "item 0 failed");
      BOOST_TEST(out.read == 0);
      BOOST_TEST(out.seconds < prompt_seconds);
      BOOST_TEST(slept.load() == 0); // every 3 s item was cancelled
      BOOST_TEST(items.now.load() == 0);
      if (out.seconds >= prompt_seconds || slept.load() != 0)
        break; // one slow round is enough: each costs the items' 3 s
    }
  }
  pool.join();
}

// Cancellation from other threads, and timeouts racing their operations.
BOOST_AUTO_TEST_CASE(cancelling_a_token_form_map_on_a_pool_from_another_thread_calls_its_handler_once_with_aborted)
{
  constexpr int n = 100;
  asio::thread_pool pool(4);
  // Every round's signal and handler state outlive the pool's last handler.
  std::vector<std::unique_ptr<cancelled_map>> maps;
  for (int round = 0; round < cancel_rounds; ++round) {
    // Cancelled once every item runs, or while the map still spawns them; from
    // a pool thread or from this one.
    const bool all_started = round % 2 == 0;
    const bool from_pool = round % 3 != 2;
    BOOST_TEST_CONTEXT("round " << round << ", cancelled " << (all_started ? "once all run" : "while spawning")
                                << " from " << (from_pool ? "a pool thread" : "the test thread"))
    {
      auto& map = *maps.emplace_back(std::make_unique<cancelled_map>());
      auto completed = map.completed.get_future();
      const auto start = fanout::clock::now();
      fanout::async_map(
          pool.get_executor(), [&items = map.items](int i) { return held_int(items, 10s, i); },
          fanout::test::iota(0, n),
          asio::bind_cancellation_slot(map.signal.slot(), [&map](std::exception_ptr e, std::vector<int>) {
            if (++map.calls == 1) {
              map.error = std::move(e);
              map.items_in_handler = map.items.now.load();
              map.completed.set_value();
            }
          }));
      BOOST_TEST(wait_until([&] { return map.items.started.load() >= (all_started ? n : 1); }));
      if (from_pool)
        asio::post(pool, [&map] { map.signal.emit(asio::cancellation_type::terminal); });
      else
        map.signal.emit(asio::cancellation_type::terminal);
      wait_or_give_up(completed, round_name("cancelled token-form map", round));
      const double elapsed = seconds_since(start);
      BOOST_TEST(code_of(map.error) == asio::error::operation_aborted);
      BOOST_TEST(map.items_in_handler == 0);
      BOOST_TEST(elapsed < prompt_seconds);
      if (elapsed >= prompt_seconds)
        break; // one slow round is enough: each costs the items' 10 s
    }
  }
  within_limit("joining the pool after the cancelled maps", [&pool] { pool.join(); });
  int rounds_not_called_once = 0;
  for (const auto& map : maps)
    if (map->calls.load() != 1)
      ++rounds_not_called_once;
  BOOST_TEST(rounds_not_called_once == 0);
}

BOOST_AUTO_TEST_CASE(three_thousand_timeouts_racing_their_operations_on_a_pool_each_give_the_value_or_timed_out)
{
  constexpr int n = 3000;
  asio::thread_pool pool(4);
  for (int round = 0; round < timeout_rounds; ++round) {
    BOOST_TEST_CONTEXT("round " << round)
    {
      std::mt19937 random(20240607U + static_cast<unsigned>(round)); // fixed: the same races every run
      std::uniform_int_distribution<int> operation_us(0, 400);
      std::uniform_int_distribution<int> limit_us(1, 400);
      std::vector<timeout_case> cases;
      for (int i = 0; i < n; ++i) // braced: the operation is drawn before the limit
        cases.push_back(
            {i, std::chrono::microseconds(operation_us(random)), std::chrono::microseconds(limit_us(random))});
      // Both ends of the race in every round, however loaded the machine: on
      // a stalled process every timer of the race above may expire in one
      // batch, operations first, and then every late value stands.
      for (int i = 14; i < n; i += 16) {
        cases[static_cast<std::size_t>(i)].operation = std::chrono::microseconds(0); // a value, 100 ms early
        cases[static_cast<std::size_t>(i)].limit = std::chrono::milliseconds(100);
        cases[static_cast<std::size_t>(i) + 1].operation = std::chrono::milliseconds(100); // timed out, 99 ms late
        cases[static_cast<std::size_t>(i) + 1].limit = std::chrono::milliseconds(1);
      }
      tracker items;
      auto future = fanout::async_map_settled(
          pool.get_executor(),
          [&items](const timeout_case& c) {
            return fanout::with_timeout(held_int(items, c.operation, c.index), c.limit);
          },
          cases, asio::use_future);
      wait_or_give_up(future, round_name("3000 timeouts mapped by async_map_settled", round));
      const auto outcomes = future.get();
      BOOST_TEST_REQUIRE(outcomes.size() == cases.size());
      int values = 0;
      int timeouts = 0;
      int others = 0;
      for (std::size_t i = 0; i < outcomes.size(); ++i) {
        if (outcomes[i].has_value() && outcomes[i].value() == static_cast<int>(i))
          ++values;
        else if (!outcomes[i].has_value() && code_of(outcomes[i].error()) == timed_out())
          ++timeouts;
        else
          ++others;
      }
      BOOST_TEST_MESSAGE("round " << round << ": " << values << " values, " << timeouts << " timeouts");
      BOOST_TEST(others == 0);
      BOOST_TEST(values > 0); // both ends of the race happened
      BOOST_TEST(timeouts > 0);
      BOOST_TEST(items.now.load() == 0);
    }
  }
  pool.join();
}

// Streams whose window is full of finished, unread results.
BOOST_AUTO_TEST_CASE(a_deadline_passing_while_the_window_is_full_of_unread_results_ends_next_with_timed_out_promptly)
{
  check_full_window_ends(ending::deadline, "next() after the deadline of a full window", timed_out());
}

BOOST_AUTO_TEST_CASE(cancelling_a_stream_whose_window_is_full_of_unread_results_ends_next_with_aborted_promptly)
{
  check_full_window_ends(ending::cancel, "next() after cancel() of a full window", asio::error::operation_aborted);
}

// Leaving a sync_map loop early.
BOOST_AUTO_TEST_CASE(breaking_out_of_a_sync_map_with_a_window_of_1_after_the_first_result_returns_from_its_destructor)
{
  constexpr int n = 10;
  for (int round = 0; round < sync_rounds; ++round) {
    BOOST_TEST_CONTEXT("round " << round)
    {
      tracker items;
      const auto seen = within_limit(round_name("sync_map destructor after a break (window 1)", round), [&items] {
        std::vector<int> values;
        {
          auto results = fanout::sync_map(
              {.max_concurrency = 1}, [&items](int i) { return ready_item(items, i, 1ms); }, fanout::test::iota(0, n));
          for (const int v : results) {
            values.push_back(v);
            break;
          }
        } // cancels what runs and waits for it
        return values;
      });
      BOOST_TEST((seen == std::vector<int>{0}));
      BOOST_TEST(items.started.load() <= 2); // the window held one more item at most
      BOOST_TEST(items.now.load() == 0);
    }
  }
}

BOOST_AUTO_TEST_CASE(
    breaking_out_of_a_sync_map_on_a_busy_io_context_of_ours_after_other_work_returns_from_its_destructor)
{
  constexpr int n = 10;
  for (int round = 0; round < sync_rounds; ++round) {
    BOOST_TEST_CONTEXT("round " << round)
    {
      tracker items;
      asio::io_context ctx{1};
      // The context's other, long-lived work (a server's, say): it keeps the
      // context from running out of work while the destructor waits.
      asio::steady_timer background(ctx, 60s);
      background.async_wait([](boost::system::error_code) {});
      const auto seen = within_limit(round_name("sync_map destructor after a break (own context)", round), [&] {
        std::vector<int> values;
        {
          auto results = fanout::sync_map(
              ctx, {.max_concurrency = 2}, [&items](int i) { return ready_item(items, i, 1ms); },
              fanout::test::iota(0, n));
          for (const int v : results) {
            values.push_back(v);
            fanout::run(ctx, fanout::sleep(5ms)); // other work on the same context: the window fills
            break;
          }
        }
        return values;
      });
      BOOST_TEST((seen == std::vector<int>{0}));
      BOOST_TEST(items.started.load() <= 3);
      BOOST_TEST(items.now.load() == 0);
      background.cancel();
      within_limit(round_name("draining the io_context", round), [&ctx] { ctx.run(); });
    }
  }
}

// This file's macros end here (the suites share unity batches).
#undef FANOUT_POOL_SANITIZED

BOOST_AUTO_TEST_SUITE_END() // thread_pool_tests
