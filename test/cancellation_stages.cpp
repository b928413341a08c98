#include <fanout/async_map.hpp>

#include <boost/test/unit_test.hpp>

#include "support/co_test.hpp"
#include "support/outcomes.hpp"
#include "support/ranges.hpp"
#include "support/tracker.hpp"

#include <fanout/callable.hpp>
#include <fanout/error.hpp>
#include <fanout/map_options.hpp>
#include <fanout/map_stream.hpp>
#include <fanout/offload.hpp>
#include <fanout/outcome.hpp>
#include <fanout/run.hpp>
#include <fanout/schedule.hpp>
#include <fanout/sleep.hpp>
#include <fanout/sync_map.hpp>
#include <fanout/task.hpp>
#include <fanout/task_group.hpp>
#include <fanout/timeout.hpp>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/bind_executor.hpp>
#include <boost/asio/cancellation_signal.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
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
#include <functional>
#include <future>
#include <limits>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <thread>
#include <type_traits>
#include <utility>
#include <vector>

// Cancellation of a map before start, while queued for the window, while running
// and after completion: each stage has one outcome.
//
// Every suite sits in its own top-level suite (and namespace): the suites are
// compiled together in unity batches (test/CMakeLists.txt).
BOOST_AUTO_TEST_SUITE(cancellation_stages_tests)

namespace asio = boost::asio;
using namespace std::chrono_literals;
using fanout::test::code_of;
using fanout::test::emit_after;
using fanout::test::exception_of;
using fanout::test::iota_vector;
using fanout::test::seconds_since;
using fanout::test::tracked_sleep;
using fanout::test::tracked_value;
using fanout::test::tracker;

namespace {

asio::awaitable<int> counted_call(int& calls, int i)
{
  ++calls;
  co_return i;
}

// Waits to be cancelled (swallowing it, so that the coroutine's cancellation
// state stays cancelled), then awaits a map of five items that count their
// calls: coroutine items with async_map, plain calls with async_map_settled.
asio::awaitable<int> map_after_cancellation(bool throw_if_cancelled, bool coroutine_items, int& calls)
{
  co_await asio::this_coro::throw_if_cancelled(throw_if_cancelled);
  try {
    co_await fanout::sleep(10s);
  } catch (const boost::system::system_error&) {
  }
  if (coroutine_items)
    co_return static_cast<int>(
        (co_await fanout::async_map([&calls](int i) { return counted_call(calls, i); }, fanout::test::iota(0, 5)))
            .size());
  co_return static_cast<int>((co_await fanout::async_map_settled(
                                  [&calls](int i) {
                                    ++calls;
                                    return i;
                                  },
                                  fanout::test::iota(0, 5)))
                                 .size());
}

} // namespace

FANOUT_CO_TEST_CASE(cancellation_that_arrived_before_the_map_started_starts_no_item)
{
  auto ex = co_await asio::this_coro::executor;
  for (const bool throw_if_cancelled : {false, true}) {
    for (const bool coroutine_items : {true, false}) {
      int calls = 0;
      asio::cancellation_signal signal;
      asio::steady_timer canceller(ex);
      const auto start = fanout::clock::now();
      emit_after(canceller, signal, 5ms);
      auto [e, size] =
          co_await asio::co_spawn(ex, map_after_cancellation(throw_if_cancelled, coroutine_items, calls),
                                  asio::bind_cancellation_slot(signal.slot(), asio::as_tuple(asio::use_awaitable)));
      BOOST_TEST_CONTEXT("throw_if_cancelled " << throw_if_cancelled << ", "
                                               << (coroutine_items ? "coroutine" : "plain") << " items")
      {
        BOOST_TEST(code_of(e) == asio::error::operation_aborted);
        BOOST_TEST(size == 0);
        BOOST_TEST(calls == 0);
        BOOST_TEST(seconds_since(start) < 1.0);
      }
    }
  }
}

FANOUT_CO_TEST_CASE(cancellation_while_items_wait_for_the_window_never_starts_them)
{
  auto ex = co_await asio::this_coro::executor;
  {
    // Coroutine items, one at a time: item 0 runs, the rest wait.
    std::vector<int> started;
    tracker items;
    asio::cancellation_signal signal;
    asio::steady_timer canceller(ex);
    const auto start = fanout::clock::now();
    emit_after(canceller, signal, 10ms);
    auto [e, r] =
        co_await asio::co_spawn(ex,
                                fanout::async_map(
                                    {.max_concurrency = 1},
                                    [&](int i) {
                                      started.push_back(i);
                                      return tracked_value(items, 10s, i);
                                    },
                                    fanout::test::iota(0, 5)),
                                asio::bind_cancellation_slot(signal.slot(), asio::as_tuple(asio::use_awaitable)));
    BOOST_TEST(code_of(e) == asio::error::operation_aborted);
    BOOST_TEST(r.empty());
    BOOST_TEST((started == std::vector<int>{0}));
    BOOST_TEST(items.now.load() == 0);
    BOOST_TEST(seconds_since(start) < 1.0);
  }
  {
    // Offloaded blocking calls, one at a time: the running one is waited for,
    // the queued ones never start.
    std::atomic<int> ran{0};
    std::atomic<int> started{0};
    asio::cancellation_signal signal;
    asio::steady_timer canceller(ex);
    fanout::test::emit_when(canceller, signal, [&] { return started.load() == 1; }); // item 0 runs
    auto [e, r] =
        co_await asio::co_spawn(ex,
                                fanout::async_map(
                                    {.max_concurrency = 1, .blocking = fanout::blocking_policy::offload},
                                    [&](int i) {
                                      ++started;
                                      std::this_thread::sleep_for(40ms);
                                      ++ran;
                                      return i;
                                    },
                                    fanout::test::iota(0, 5)),
                                asio::bind_cancellation_slot(signal.slot(), asio::as_tuple(asio::use_awaitable)));
    BOOST_TEST(code_of(e) == asio::error::operation_aborted);
    BOOST_TEST(started.load() == 1);
    BOOST_TEST(ran.load() == 1);
  }
  {
    // A stream with a window of one, cancelled while item 0 runs.
    std::vector<int> started;
    tracker items;
    auto stream = fanout::async_map_as_completed(
        {.max_concurrency = 1},
        [&](int i) {
          started.push_back(i);
          return tracked_value(items, 10s, i);
        },
        fanout::test::iota(0, 5));
    asio::steady_timer canceller(ex, 10ms);
    canceller.async_wait([&stream](boost::system::error_code ec) {
      if (!ec)
        stream.cancel();
    });
    const auto e = co_await exception_of(stream.async_next(asio::use_awaitable));
    BOOST_TEST(code_of(e) == asio::error::operation_aborted);
    BOOST_TEST((started == std::vector<int>{0}));
    BOOST_TEST(items.now.load() == 0);
  }
}

FANOUT_CO_TEST_CASE(cancellation_while_items_run_aborts_the_suspended_ones_and_leaves_the_finished_ones_finished)
{
  auto ex = co_await asio::this_coro::executor;
  constexpr int n = 20;
  for (const bool settled : {false, true}) {
    std::vector<int> outcome(n, 0); // 1 returned, 2 aborted
    tracker items;
    auto item = [&](int i) -> asio::awaitable<int> {
      try {
        co_await tracked_sleep(items, i % 2 == 0 ? 0ms : 10s);
      } catch (const boost::system::system_error& error) {
        outcome[static_cast<std::size_t>(i)] = error.code() == asio::error::operation_aborted ? 2 : 3;
        throw;
      }
      outcome[static_cast<std::size_t>(i)] = 1;
      co_return i;
    };
    asio::cancellation_signal signal;
    asio::steady_timer canceller(ex);
    const auto start = fanout::clock::now();
    emit_after(canceller, signal, 10ms);
    std::exception_ptr e;
    if (settled)
      e = std::get<0>(
          co_await asio::co_spawn(ex, fanout::async_map_settled(item, fanout::test::iota(0, n)),
                                  asio::bind_cancellation_slot(signal.slot(), asio::as_tuple(asio::use_awaitable))));
    else
      e = std::get<0>(
          co_await asio::co_spawn(ex, fanout::async_map(item, fanout::test::iota(0, n)),
                                  asio::bind_cancellation_slot(signal.slot(), asio::as_tuple(asio::use_awaitable))));
    BOOST_TEST_CONTEXT((settled ? "async_map_settled" : "async_map"))
    {
      BOOST_TEST(code_of(e) == asio::error::operation_aborted);
      BOOST_TEST(seconds_since(start) < 1.0);
      std::vector<int> expected;
      for (int i = 0; i < n; ++i)
        expected.push_back(i % 2 == 0 ? 1 : 2);
      BOOST_TEST(outcome == expected, boost::test_tools::per_element());
      BOOST_TEST(items.now.load() == 0);
      BOOST_TEST(items.started.load() == n);
    }
  }
}

FANOUT_CO_TEST_CASE(an_item_that_reset_its_cancellation_state_is_still_cancelled_when_the_map_fails)
{
  // Item 0 re-creates its cancellation state (this_coro::reset_cancellation_state)
  // and then waits 10 s; item 1 fails after one unit. The map fails fast: item 0
  // must be cancelled through its new state, or the map lasts 10 s.
  bool reset_item_aborted = false;
  const auto start = fanout::clock::now();
  const std::exception_ptr e = co_await exception_of(fanout::async_map(
      [&](int i) -> asio::awaitable<int> {
        if (i == 1) {
          co_await fanout::sleep(fanout::test::unit);
          throw fanout::test::tagged_error(1);
        }
        co_await asio::this_coro::reset_cancellation_state();
        try {
          co_await fanout::sleep(10s);
        } catch (const boost::system::system_error& error) {
          reset_item_aborted = error.code() == asio::error::operation_aborted;
          throw;
        }
        co_return i;
      },
      fanout::test::iota(0, 2)));
  FANOUT_CHECK_ELAPSED(seconds_since(start), fanout::test::unit);
  BOOST_TEST(fanout::test::tag_of(e) == 1);
  BOOST_TEST(reset_item_aborted);
}

BOOST_AUTO_TEST_CASE(cancellation_after_completion_has_no_effect, *boost::unit_test::timeout(60))
{
  asio::io_context ctx{1};
  const auto ex = ctx.get_executor();
  tracker items;
  {
    // Emitted after the handler ran, and from inside the handler.
    asio::cancellation_signal signal;
    int calls = 0;
    std::vector<int> values;
    fanout::async_map(
        ex, [&items](int i) { return tracked_value(items, 1ms, i); }, iota_vector(5),
        asio::bind_cancellation_slot(signal.slot(), [&](std::exception_ptr e, std::vector<int> r) {
          ++calls;
          BOOST_TEST(!e);
          values = std::move(r);
          signal.emit(asio::cancellation_type::terminal);
        }));
    ctx.run();
    for (const auto type :
         {asio::cancellation_type::terminal, asio::cancellation_type::partial, asio::cancellation_type::total})
      signal.emit(type);
    ctx.restart();
    ctx.run();
    BOOST_TEST(calls == 1);
    BOOST_TEST((values == iota_vector(5)));
  }
  {
    // A finished task, a joined group, a stream at its end.
    auto t = fanout::spawn(ex, tracked_value(items, 1ms, 7));
    fanout::task_group g(ex);
    (void)g.spawn(tracked_sleep(items, 1ms));
    auto stream = fanout::async_map_stream([&items](int i) { return tracked_value(items, 1ms, i); }, iota_vector(3));
    const auto read_all = [&]() -> asio::awaitable<int> {
      int read = 0;
      while (co_await stream.async_next())
        ++read;
      co_await g.async_join();
      co_return read;
    };
    BOOST_TEST(fanout::run(ctx, read_all()) == 3);
    BOOST_TEST(t.done());
    t.cancel();
    g.cancel();
    stream.cancel();
    BOOST_TEST(fanout::run(ctx, t) == 7); // the value is still there, once
    BOOST_TEST(!fanout::run(ctx, exception_of(g.async_join(asio::use_awaitable))));
    BOOST_TEST(
        !fanout::run(ctx, [&]() -> asio::awaitable<bool> { co_return (co_await stream.async_next()).has_value(); }()));
  }
  BOOST_TEST(items.now.load() == 0);
}

BOOST_AUTO_TEST_SUITE_END() // cancellation_stages_tests
