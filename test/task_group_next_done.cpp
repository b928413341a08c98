#include <fanout/task_group.hpp>

#include <boost/test/unit_test.hpp>

#include "support/cancel_when.hpp"
#include "support/co_test.hpp"
#include "support/group.hpp"
#include "support/outcomes.hpp"
#include "support/run_until.hpp"
#include "support/tracker.hpp"

#include <fanout/run.hpp>
#include <fanout/sleep.hpp>
#include <fanout/task.hpp>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/cancellation_signal.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstddef>
#include <exception>
#include <memory>
#include <mutex>
#include <optional>
#include <tuple>
#include <utility>
#include <vector>

// task_group::async_next_done: the spawn index of each task as it finishes,
// each once, then the end; several waits at once; cancelling one wait; on a
// 4-thread pool; and a context destroyed while a wait is parked. Coroutine
// cases marked GROUP_TEST_CASE run on one thread and on a 4-thread pool
// (support/group.hpp).
//
// Every suite sits in its own top-level suite (and namespace): the suites are
// compiled together in unity batches (test/CMakeLists.txt).
BOOST_AUTO_TEST_SUITE(task_group_next_done_tests)

namespace asio = boost::asio;
using namespace std::chrono_literals;
using fanout::test::code_of;
using fanout::test::run_until;
using fanout::test::throws_after;
using fanout::test::tracked_sleep;
using fanout::test::tracked_value;
using fanout::test::tracker;
using fanout::test::unit;

namespace {

using index_list = std::vector<std::optional<std::size_t>>;

// Every index async_next_done gives until the end, in order; then the end.
asio::awaitable<index_list> drain(fanout::task_group& g)
{
  index_list out;
  for (;;) {
    const std::optional<std::size_t> i = co_await g.async_next_done(asio::use_awaitable);
    out.push_back(i);
    if (!i)
      co_return out;
  }
}

using wait_result = std::tuple<std::exception_ptr, std::optional<std::size_t>>;

// One async_next_done, awaited without throwing; sets @p waiting first.
asio::awaitable<wait_result> next_done_flagged(fanout::task_group& g, std::shared_ptr<std::atomic<bool>> waiting)
{
  waiting->store(true);
  co_return co_await g.async_next_done(asio::as_tuple(asio::use_awaitable));
}

// One async_next_done on a strand of the current executor, cancelled
// (terminal) from that strand @p delay after it started: its error and its
// index.
asio::awaitable<wait_result> next_done_cancelled_after(fanout::task_group& g, std::chrono::microseconds delay)
{
  auto waiting = std::make_shared<std::atomic<bool>>(false);
  const auto started = [waiting] { return waiting->load(); };
  auto [e, result] = co_await fanout::test::cancel_once_started(next_done_flagged(g, waiting), started, delay);
  BOOST_TEST(!e); // the wait itself reports its cancellation
  co_return result;
}

index_list indices(std::initializer_list<std::size_t> list)
{
  index_list out(list.begin(), list.end());
  out.emplace_back();
  return out;
}

} // namespace

BOOST_AUTO_TEST_SUITE(order)

GROUP_TEST_CASE(next_done_gives_each_spawn_index_once_in_finish_order_then_an_empty_optional)
{
  tracker t;
  fanout::task_group g(co_await asio::this_coro::executor);
  for (int delay : {3, 1, 4, 2})
    g.spawn(tracked_value(t, delay * unit, delay));
  const index_list got = co_await drain(g);
  BOOST_TEST(got == indices({1, 3, 0, 2}), "finish order");
  BOOST_TEST(t.finished.load() == 4);
  BOOST_TEST(t.now.load() == 0);
  co_await g.async_join();
}

GROUP_TEST_CASE(next_done_of_a_group_without_tasks_is_empty_at_once)
{
  fanout::task_group g(co_await asio::this_coro::executor);
  const auto i = co_await g.async_next_done();
  BOOST_TEST(!i.has_value());
  co_await g.async_join();
}

GROUP_TEST_CASE(next_done_hands_out_tasks_that_finished_before_it_was_called_in_finish_order)
{
  tracker t;
  fanout::task_group g(co_await asio::this_coro::executor);
  for (int delay : {2, 3, 1})
    g.spawn(tracked_value(t, delay * unit, delay));
  co_await g.async_join(); // every task has finished, none handed out yet
  const index_list got = co_await drain(g);
  BOOST_TEST(got == indices({2, 0, 1}), "finish order");
}

GROUP_TEST_CASE(a_task_spawned_after_the_end_was_given_gets_the_next_spawn_index)
{
  tracker t;
  fanout::task_group g(co_await asio::this_coro::executor);
  g.spawn(tracked_value(t, 1ms, 0));
  g.spawn(tracked_value(t, 1ms, 1));
  const index_list first = co_await drain(g); // in either order
  BOOST_TEST((first == indices({0, 1}) || first == indices({1, 0})));
  auto late = g.spawn(tracked_value(t, 1ms, 2));
  const auto i = co_await g.async_next_done();
  BOOST_TEST(i.value_or(99) == 2u);
  BOOST_TEST(co_await late.async_wait() == 2); // the task's handle gives its value
  BOOST_TEST(!(co_await g.async_next_done()).has_value());
  co_await g.async_join();
}

GROUP_TEST_CASE(failed_and_cancelled_tasks_are_handed_out_like_the_others)
{
  tracker t;
  fanout::task_group g(co_await asio::this_coro::executor, fanout::group_policy::keep_going);
  auto failing = g.spawn(throws_after(t, unit, "boom"));
  auto cancelled = g.spawn(tracked_value(t, 10s, 1));
  g.spawn(tracked_value(t, 3 * unit, 2));
  BOOST_TEST((co_await g.async_next_done()).value_or(99) == 0u);
  cancelled.cancel();
  BOOST_TEST((co_await g.async_next_done()).value_or(99) == 1u);
  BOOST_TEST((co_await g.async_next_done()).value_or(99) == 2u);
  BOOST_TEST(!(co_await g.async_next_done()).has_value());
  BOOST_TEST(code_of(co_await fanout::test::exception_of(cancelled.async_wait())) == asio::error::operation_aborted);
  BOOST_TEST(fanout::test::message_of(co_await fanout::test::exception_of(failing.async_wait())) == "boom");
  co_await g.async_join();
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(cancelling)

GROUP_TEST_CASE(cancelling_a_pending_next_done_wait_completes_it_with_operation_aborted_and_cancels_no_task)
{
  tracker t;
  fanout::task_group g(co_await asio::this_coro::executor);
  g.spawn(tracked_value(t, 3 * unit, 0));
  const auto [e, i] =
      co_await next_done_cancelled_after(g, std::chrono::duration_cast<std::chrono::microseconds>(unit));
  BOOST_TEST(code_of(e) == asio::error::operation_aborted);
  BOOST_TEST(!i.has_value());
  BOOST_TEST(t.now.load() == 1); // the task still runs
  BOOST_TEST(t.aborted.load() == 0);
  // The index was not taken: the next wait gets it.
  BOOST_TEST((co_await g.async_next_done()).value_or(99) == 0u);
  BOOST_TEST(t.finished.load() == 1);
  co_await g.async_join();
}

BOOST_AUTO_TEST_CASE(
    of_several_pending_waits_a_cancelled_one_leaves_and_the_others_get_indices_in_the_order_they_started,
    *boost::unit_test::timeout(60))
{
  for (auto type : fanout::test::all_cancellation_types) {
    BOOST_TEST_CONTEXT("cancellation type " << static_cast<int>(type))
    {
      asio::io_context ctx;
      tracker t;
      fanout::task_group g(ctx.get_executor());
      g.spawn(tracked_value(t, unit, 0));
      g.spawn(tracked_value(t, 2 * unit, 1));
      std::vector<std::pair<int, std::optional<std::size_t>>> got; // (wait, index)
      std::exception_ptr cancelled_error;
      asio::cancellation_signal signal;
      auto wait = [&](int id) {
        return [&got, id](std::exception_ptr, std::optional<std::size_t> i) { got.emplace_back(id, i); };
      };
      g.async_next_done(wait(0));
      g.async_next_done(
          asio::bind_cancellation_slot(signal.slot(), [&](std::exception_ptr e, std::optional<std::size_t> i) {
            cancelled_error = e;
            got.emplace_back(1, i);
          }));
      g.async_next_done(wait(2));
      g.async_next_done(wait(3)); // more waits than tasks: this one gets the end
      BOOST_TEST(got.empty());    // never inside the call
      signal.emit(type);
      BOOST_TEST(got.empty()); // nor inside the emit
      ctx.run();
      const std::vector<std::pair<int, std::optional<std::size_t>>> expected{
          {1, std::nullopt}, {0, 0}, {2, 1}, {3, std::nullopt}};
      BOOST_TEST((got == expected));
      BOOST_TEST(code_of(cancelled_error) == asio::error::operation_aborted);
      BOOST_TEST(t.finished.load() == 2);
      BOOST_TEST(t.aborted.load() == 0);
    }
  }
}

BOOST_AUTO_TEST_CASE(a_cancellation_that_comes_after_the_wait_was_handed_an_index_changes_nothing,
                     *boost::unit_test::timeout(60))
{
  asio::io_context ctx;
  tracker t;
  fanout::task_group g(ctx.get_executor());
  g.spawn(tracked_value(t, 1ms, 0));
  asio::cancellation_signal signal;
  int calls = 0;
  std::exception_ptr error;
  std::optional<std::size_t> index;
  g.async_next_done(
      asio::bind_cancellation_slot(signal.slot(), [&](std::exception_ptr e, std::optional<std::size_t> i) {
        ++calls;
        error = e;
        index = i;
      }));
  ctx.run();
  signal.emit(asio::cancellation_type::terminal);
  ctx.restart();
  ctx.run();
  BOOST_TEST(calls == 1);
  BOOST_TEST(!error);
  BOOST_TEST(index.value_or(99) == 0u);
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(threads)

namespace {

// Reads async_next_done until the end, recording each index.
asio::awaitable<void> consume(fanout::task_group& g, std::mutex& mutex, std::vector<std::size_t>& seen)
{
  while (const auto i = co_await g.async_next_done(asio::use_awaitable)) {
    const std::lock_guard lock(mutex);
    seen.push_back(*i);
  }
}

// A task that yields, or sleeps a little, and returns.
asio::awaitable<void> short_task(int i)
{
  if (i % 3 == 0)
    co_await fanout::sleep(std::chrono::microseconds(100 * (i % 7)));
  else
    co_await asio::post(co_await asio::this_coro::executor, asio::use_awaitable);
}

} // namespace

BOOST_AUTO_TEST_CASE(next_done_on_a_four_thread_pool_hands_every_index_to_exactly_one_of_three_readers,
                     *boost::unit_test::timeout(120))
{
  constexpr int rounds = 60;
  constexpr int tasks = 40;
  fanout::test::run_on_pool([]() -> asio::awaitable<void> {
    const auto ex = co_await asio::this_coro::executor;
    for (int round = 0; round < rounds; ++round) {
      BOOST_TEST_CONTEXT("round " << round)
      {
        fanout::task_group g(ex);
        std::mutex mutex;
        std::vector<std::size_t> seen;
        for (int i = 0; i < tasks; ++i)
          g.spawn(short_task(i));
        std::vector<fanout::task<void>> readers;
        for (int r = 0; r < 3; ++r)
          readers.push_back(fanout::spawn(ex, consume(g, mutex, seen)));
        for (auto& reader : readers)
          co_await reader.async_wait();
        co_await g.async_join();
        std::sort(seen.begin(), seen.end());
        std::vector<std::size_t> every(tasks);
        for (std::size_t i = 0; i < every.size(); ++i)
          every[i] = i;
        BOOST_TEST(seen == every, boost::test_tools::per_element());
      }
    }
  }());
}

BOOST_AUTO_TEST_CASE(a_wait_cancelled_as_its_task_finishes_on_a_four_thread_pool_takes_the_index_or_leaves_it,
                     *boost::unit_test::timeout(120))
{
  constexpr int rounds = 60;
  fanout::test::run_on_pool([]() -> asio::awaitable<void> {
    const auto ex = co_await asio::this_coro::executor;
    for (int round = 0; round < rounds; ++round) {
      BOOST_TEST_CONTEXT("round " << round)
      {
        tracker t;
        fanout::task_group g(ex);
        g.spawn(tracked_value(t, 1ms, 0));
        const auto [e, i] = co_await next_done_cancelled_after(g, std::chrono::microseconds(round % 4 * 500));
        const bool aborted = code_of(e) == asio::error::operation_aborted;
        BOOST_TEST((aborted != i.has_value()));
        const auto next = co_await g.async_next_done();
        // Exactly one of the two waits got index 0; the other the end.
        BOOST_TEST((aborted ? next.value_or(99) == 0u : !next.has_value()));
        co_await g.async_join();
        BOOST_TEST(t.now.load() == 0);
      }
    }
  }());
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(shutdown)

BOOST_AUTO_TEST_CASE(destroying_the_context_with_a_parked_next_done_wait_frees_the_awaiting_frame_and_runs_no_handler,
                     *boost::unit_test::timeout(60))
{
  tracker t;
  int calls = 0;
  auto owned = std::make_shared<int>(0);
  const std::weak_ptr<int> frame_alive = owned;
  {
    asio::io_context ctx{1};
    asio::co_spawn(
        ctx,
        [](tracker& tracked, std::shared_ptr<int>) -> asio::awaitable<void> {
          fanout::task_group g(co_await asio::this_coro::executor);
          g.spawn(tracked_sleep(tracked, 10s));
          g.spawn(tracked_sleep(tracked, 10s));
          (void)co_await g.async_next_done(asio::use_awaitable);
        }(t, std::move(owned)),
        [&calls](std::exception_ptr) { ++calls; });
    BOOST_TEST(run_until(ctx, [&] { return t.started.load() == 2; }));
    ctx.poll();
    BOOST_TEST(!frame_alive.expired());
  } // destroyed with the wait parked
  BOOST_TEST(calls == 0);
  BOOST_TEST(frame_alive.expired()); // the frame (and its group) is gone
  BOOST_TEST(t.now.load() == 0);     // and every task's frame
  BOOST_TEST(t.finished.load() == 0);
}

BOOST_AUTO_TEST_CASE(destroying_the_context_after_a_next_done_wait_was_cancelled_still_frees_a_parked_join,
                     *boost::unit_test::timeout(60))
{
  tracker t;
  int calls = 0;
  int waits = 0;
  asio::cancellation_signal signal;
  auto owned = std::make_shared<int>(0);
  const std::weak_ptr<int> frame_alive = owned;
  {
    asio::io_context ctx{1};
    asio::co_spawn(
        ctx,
        [](tracker& tracked, asio::cancellation_signal& sig, int& completed,
           std::shared_ptr<int>) -> asio::awaitable<void> {
          fanout::task_group g(co_await asio::this_coro::executor);
          g.spawn(tracked_sleep(tracked, 10s));
          g.async_next_done(asio::bind_cancellation_slot(
              sig.slot(), [&completed](std::exception_ptr, std::optional<std::size_t>) { ++completed; }));
          co_await g.async_join(asio::use_awaitable); // parked: the frame holds the group
        }(t, signal, waits, std::move(owned)),
        [&calls](std::exception_ptr) { ++calls; });
    BOOST_TEST(run_until(ctx, [&] { return t.started.load() == 1; }));
    ctx.poll();
    signal.emit(asio::cancellation_type::terminal); // the wait leaves; the join stays parked
    BOOST_TEST(run_until(ctx, [&] { return waits == 1; }));
    BOOST_TEST(!frame_alive.expired());
  }
  BOOST_TEST(calls == 0);
  BOOST_TEST(frame_alive.expired());
  BOOST_TEST(t.now.load() == 0);
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE_END() // task_group_next_done_tests
