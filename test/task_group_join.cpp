#include <fanout/task_group.hpp>

#include <boost/test/unit_test.hpp>

#include "support/co_test.hpp"
#include "support/group.hpp"
#include "support/outcomes.hpp"
#include "support/tracker.hpp"

#include <fanout/error.hpp>
#include <fanout/run.hpp>
#include <fanout/sleep.hpp>
#include <fanout/task.hpp>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/cancellation_signal.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/thread_pool.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/use_future.hpp>
#include <boost/system/system_error.hpp>

#include <atomic>
#include <chrono>
#include <exception>
#include <future>
#include <memory>
#include <stdexcept>
#include <string>
#include <thread>
#include <tuple>
#include <vector>

// task_group::join: it waits for every task (also those spawned while joining),
// joining twice, spawning after a join, and cancelling the join. Each coroutine
// case runs on one thread and on a 4-thread pool (support/group.hpp).
//
// Every suite sits in its own top-level suite (and namespace): the suites are
// compiled together in unity batches (test/CMakeLists.txt).
BOOST_AUTO_TEST_SUITE(task_group_join_tests)

namespace asio = boost::asio;
using namespace std::chrono_literals;
using fanout::test::cancel_after;
using fanout::test::code_of;
using fanout::test::exception_of;
using fanout::test::seconds_since;
using fanout::test::tagged_of;
using fanout::test::throws_after;
using fanout::test::tracked_sleep;
using fanout::test::tracked_value;
using fanout::test::tracker;
using fanout::test::unit;

BOOST_AUTO_TEST_SUITE(joining)

GROUP_TEST_CASE(join_waits_for_every_task_and_each_handle_gives_its_value)
{
  tracker t;
  fanout::task_group g(co_await asio::this_coro::executor);
  std::vector<fanout::task<int>> tasks;
  const auto start = fanout::clock::now();
  for (int i = 0; i < 5; ++i)
    tasks.push_back(g.spawn(tracked_value(t, (1 + i % 2) * unit, i * 10)));
  BOOST_TEST(g.size() == 5u);
  co_await g.async_join();
  FANOUT_CHECK_ELAPSED(seconds_since(start), 2 * unit);
  BOOST_TEST(t.now.load() == 0);
  BOOST_TEST(t.finished.load() == 5);
  BOOST_TEST(g.size() == 0u);
  for (int i = 0; i < 5; ++i) {
    auto& task = tasks[static_cast<std::size_t>(i)];
    BOOST_TEST(task.done());
    BOOST_TEST(co_await task.async_wait() == i * 10);
  }
}

GROUP_TEST_CASE(join_of_a_group_without_tasks_completes_at_once)
{
  fanout::task_group g(co_await asio::this_coro::executor);
  const auto start = fanout::clock::now();
  co_await g.async_join();
  FANOUT_CHECK_ELAPSED(seconds_since(start), 0ms);
}

GROUP_TEST_CASE(a_group_joined_twice_completes_the_second_join_at_once_with_the_same_outcome)
{
  auto ex = co_await asio::this_coro::executor;
  tracker t;
  {
    fanout::task_group g(ex);
    g.spawn(tracked_sleep(t, unit));
    co_await g.async_join();
    const auto start = fanout::clock::now();
    co_await g.async_join();
    FANOUT_CHECK_ELAPSED(seconds_since(start), 0ms);
  }
  {
    fanout::task_group g(ex);
    g.spawn(throws_after(t, unit, 3));
    g.spawn(tracked_sleep(t, 10s));
    const auto first = tagged_of(co_await exception_of(g.async_join(asio::use_awaitable)));
    const auto start = fanout::clock::now();
    const auto second = tagged_of(co_await exception_of(g.async_join(asio::use_awaitable)));
    FANOUT_CHECK_ELAPSED(seconds_since(start), 0ms);
    BOOST_TEST(first.second == 3);
    BOOST_TEST(second.second == 3);
    BOOST_TEST(first.first == second.first); // the very same exception object
  }
  BOOST_TEST(t.now.load() == 0);
}

GROUP_TEST_CASE(spawn_after_a_join_completed_throws_group_closed_and_never_runs_the_body)
{
  tracker t;
  fanout::task_group g(co_await asio::this_coro::executor);
  g.spawn(tracked_sleep(t, 1ms));
  co_await g.async_join();
  bool threw = false;
  try {
    (void)g.spawn(tracked_value(t, 1ms, 1));
  } catch (const boost::system::system_error& e) {
    threw = e.code() == fanout::error::group_closed;
  }
  BOOST_TEST(threw);
  co_await fanout::sleep(unit);
  BOOST_TEST(t.started.load() == 1);
  BOOST_TEST(g.size() == 0u);
}

GROUP_TEST_CASE(tasks_spawned_by_a_task_while_the_group_is_joining_are_awaited_too)
{
  tracker t;
  std::atomic<int> grandchildren_done{0};
  fanout::task_group g(co_await asio::this_coro::executor);
  // Each task sleeps one unit, then spawns the next into the group: a chain
  // of three, all spawned while the owner is already in join().
  struct chain
  {
    static asio::awaitable<void> link(fanout::task_group& group, tracker& tr, std::atomic<int>& done, int left)
    {
      co_await tracked_sleep(tr, unit);
      if (left > 0)
        group.spawn(link(group, tr, done, left - 1));
      else
        ++done;
    }
  };
  const auto start = fanout::clock::now();
  g.spawn(chain::link(g, t, grandchildren_done, 2));
  co_await g.async_join();
  FANOUT_CHECK_ELAPSED(seconds_since(start), 3 * unit);
  BOOST_TEST(grandchildren_done.load() == 1);
  BOOST_TEST(t.finished.load() == 3);
  BOOST_TEST(t.now.load() == 0);
  BOOST_TEST(g.size() == 0u);
}

GROUP_TEST_CASE(many_tasks_spawning_tasks_concurrently_are_all_joined)
{
  std::atomic<int> leaves{0};
  fanout::task_group g(co_await asio::this_coro::executor);
  struct fan
  {
    static asio::awaitable<void> leaf(std::atomic<int>& count)
    {
      co_await fanout::sleep(1ms);
      ++count;
    }
    static asio::awaitable<void> branch(fanout::task_group& group, std::atomic<int>& count)
    {
      for (int i = 0; i < 50; ++i) {
        group.spawn(leaf(count));
        if (i % 10 == 0)
          co_await fanout::sleep(0ms);
      }
    }
  };
  for (int i = 0; i < 20; ++i)
    g.spawn(fan::branch(g, leaves));
  co_await g.async_join();
  BOOST_TEST(leaves.load() == 1000);
  BOOST_TEST(g.size() == 0u);
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(cancelling_join)

namespace {

// Spawns three ten-second tasks into a group on @p ex and joins it.
asio::awaitable<void> join_three_long_tasks(asio::any_io_executor ex, tracker& t, fanout::group_policy policy)
{
  fanout::task_group g(ex, policy);
  for (int i = 0; i < 3; ++i)
    g.spawn(tracked_sleep(t, 10s));
  co_await g.async_join();
}

} // namespace

GROUP_TEST_CASE(cancelling_the_coroutine_awaiting_join_cancels_every_task_and_join_throws_operation_aborted)
{
  auto ex = co_await asio::this_coro::executor;
  for (auto policy : {fanout::group_policy::fail_fast, fanout::group_policy::keep_going}) {
    tracker t;
    const auto start = fanout::clock::now();
    const auto e = co_await cancel_after(join_three_long_tasks(ex, t, policy), unit);
    FANOUT_CHECK_ELAPSED(seconds_since(start), unit);
    BOOST_TEST(code_of(e) == asio::error::operation_aborted);
    BOOST_TEST(t.aborted.load() == 3);
    BOOST_TEST(t.now.load() == 0);
  }
}

BOOST_AUTO_TEST_CASE(join_with_a_callback_is_cancelled_by_each_cancellation_type_through_its_slot,
                     *boost::unit_test::timeout(60))
{
  for (auto type :
       {asio::cancellation_type::terminal, asio::cancellation_type::partial, asio::cancellation_type::total}) {
    BOOST_TEST_CONTEXT("cancellation type " << static_cast<int>(type))
    {
      asio::io_context ctx;
      tracker t;
      fanout::task_group g(ctx.get_executor());
      for (int i = 0; i < 3; ++i)
        g.spawn(tracked_sleep(t, 10s));
      asio::cancellation_signal signal;
      const auto start = fanout::clock::now(); // before the canceller's clock starts
      asio::steady_timer canceller(ctx, unit);
      canceller.async_wait([&signal, type](boost::system::error_code ec) {
        if (!ec)
          signal.emit(type);
      });
      int calls = 0;
      std::exception_ptr error;
      g.async_join(asio::bind_cancellation_slot(signal.slot(), [&](std::exception_ptr e) {
        ++calls;
        error = e;
      }));
      BOOST_TEST(calls == 0); // never inside the call
      ctx.run();
      FANOUT_CHECK_ELAPSED(seconds_since(start), unit);
      BOOST_TEST(calls == 1);
      BOOST_TEST(code_of(error) == asio::error::operation_aborted);
      BOOST_TEST(t.aborted.load() == 3);
      BOOST_TEST(t.now.load() == 0);
    }
  }
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE_END() // task_group_join_tests
