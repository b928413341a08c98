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

// task_group failures: the first failure cancels the siblings (fail_fast),
// keep_going cancels nothing, cancel() cancels every task. Each case runs on one
// thread and on a 4-thread pool (support/group.hpp).
//
// Every suite sits in its own top-level suite (and namespace): the suites are
// compiled together in unity batches (test/CMakeLists.txt).
BOOST_AUTO_TEST_SUITE(task_group_failures_tests)

namespace asio = boost::asio;
using namespace std::chrono_literals;
using fanout::test::code_of;
using fanout::test::exception_of;
using fanout::test::seconds_since;
using fanout::test::tagged_of;
using fanout::test::throws_after;
using fanout::test::throws_when_cancelled;
using fanout::test::tracked_value;
using fanout::test::tracker;
using fanout::test::unit;

GROUP_TEST_CASE(the_first_failure_cancels_the_siblings_promptly_and_join_rethrows_that_exact_exception)
{
  tracker t;
  fanout::task_group g(co_await asio::this_coro::executor);
  // Timed from before the spawns: on a thread pool the tasks start at once.
  const auto start = fanout::clock::now();
  std::vector<fanout::task<int>> siblings;
  for (int i = 0; i < 3; ++i)
    siblings.push_back(g.spawn(tracked_value(t, 10s, i)));
  // Fails when cancelled, after the first failure: join must still give the first.
  auto second_failure = g.spawn(throws_when_cancelled(t, 2));
  auto failing = g.spawn(throws_after(t, unit, 1));
  const auto joined = tagged_of(co_await exception_of(g.async_join(asio::use_awaitable)));
  FANOUT_CHECK_ELAPSED(seconds_since(start), unit);
  BOOST_TEST(joined.second == 1);
  BOOST_TEST(t.now.load() == 0);
  BOOST_TEST(t.aborted.load() == 4);
  // The failing task's own handle holds the same exception object.
  const auto own = tagged_of(co_await exception_of(failing.async_wait()));
  BOOST_TEST(own.second == 1);
  BOOST_TEST(own.first == joined.first);
  BOOST_TEST(tagged_of(co_await exception_of(second_failure.async_wait())).second == 2);
  for (auto& s : siblings)
    BOOST_TEST(code_of(co_await exception_of(s.async_wait())) == asio::error::operation_aborted);
}

GROUP_TEST_CASE(a_task_spawned_after_the_group_started_cancelling_is_cancelled_at_once)
{
  tracker t;
  fanout::task_group g(co_await asio::this_coro::executor);
  g.spawn(throws_after(t, 0ms, 1));
  co_await fanout::sleep(unit); // the failure has cancelled the group by now
  const auto start = fanout::clock::now();
  auto late = g.spawn(tracked_value(t, 10s, 5));
  BOOST_TEST(code_of(co_await exception_of(late.async_wait())) == asio::error::operation_aborted);
  BOOST_TEST(tagged_of(co_await exception_of(g.async_join(asio::use_awaitable))).second == 1);
  FANOUT_CHECK_ELAPSED(seconds_since(start), 0ms);
  BOOST_TEST(t.finished.load() == 0);
  BOOST_TEST(t.now.load() == 0);
}

GROUP_TEST_CASE(keep_going_lets_a_failure_cancel_nothing_and_join_does_not_throw_while_its_handle_rethrows)
{
  tracker t;
  fanout::task_group g(co_await asio::this_coro::executor, fanout::group_policy::keep_going);
  // Timed from before the spawns: on a thread pool the tasks start at once.
  const auto start = fanout::clock::now();
  std::vector<fanout::task<int>> siblings;
  for (int i = 0; i < 3; ++i)
    siblings.push_back(g.spawn(tracked_value(t, 2 * unit, i)));
  auto failing = g.spawn(throws_after(t, unit, 1));
  auto also_failing = g.spawn(throws_after(t, 0ms, 2));
  const auto joined = co_await exception_of(g.async_join(asio::use_awaitable));
  FANOUT_CHECK_ELAPSED(seconds_since(start), 2 * unit);
  BOOST_TEST(!joined);
  BOOST_TEST(t.aborted.load() == 0);
  BOOST_TEST(t.finished.load() == 3);
  BOOST_TEST(t.now.load() == 0);
  for (int i = 0; i < 3; ++i)
    BOOST_TEST(co_await siblings[static_cast<std::size_t>(i)].async_wait() == i);
  BOOST_TEST(tagged_of(co_await exception_of(failing.async_wait())).second == 1);
  BOOST_TEST(tagged_of(co_await exception_of(also_failing.async_wait())).second == 2);
}

GROUP_TEST_CASE(cancel_cancels_every_task_and_any_spawned_later)
{
  auto ex = co_await asio::this_coro::executor;
  tracker t;
  fanout::task_group g(ex);
  std::vector<fanout::task<int>> tasks;
  for (int i = 0; i < 3; ++i)
    tasks.push_back(g.spawn(tracked_value(t, 10s, i)));
  co_await fanout::sleep(unit);
  const auto start = fanout::clock::now();
  g.cancel();
  tasks.push_back(g.spawn(tracked_value(t, 10s, 3)));
  const auto joined = co_await exception_of(g.async_join(asio::use_awaitable));
  FANOUT_CHECK_ELAPSED(seconds_since(start), 0ms);
  BOOST_TEST(code_of(joined) == asio::error::operation_aborted);
  for (auto& task : tasks)
    BOOST_TEST(code_of(co_await exception_of(task.async_wait())) == asio::error::operation_aborted);
  // On one thread the late task is cancelled before its body starts; on a
  // pool its body may have started first, and is cancelled at its first
  // suspension point.
  const bool on_pool = ex.target<asio::thread_pool::executor_type>() != nullptr;
  BOOST_TEST_MESSAGE("cancel then spawn: " << t.started.load() << " bodies started" << (on_pool ? " (pool)" : ""));
  if (!on_pool)
    BOOST_TEST(t.started.load() == 3); // the late one never ran its body
  BOOST_TEST(t.started.load() <= 4);
  BOOST_TEST(t.aborted.load() == t.started.load());
  BOOST_TEST(t.finished.load() == 0);
  BOOST_TEST(t.now.load() == 0);
}

BOOST_AUTO_TEST_SUITE_END() // task_group_failures_tests
