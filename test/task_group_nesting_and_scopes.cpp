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

// Nested task groups and scopes: with_task_group always joins, a group dropped
// unjoined cancels its tasks. Each case runs on one thread and on a 4-thread
// pool (support/group.hpp).
//
// Every suite sits in its own top-level suite (and namespace): the suites are
// compiled together in unity batches (test/CMakeLists.txt).
BOOST_AUTO_TEST_SUITE(task_group_nesting_and_scopes_tests)

namespace asio = boost::asio;
using namespace std::chrono_literals;
using fanout::test::cancel_after;
using fanout::test::code_of;
using fanout::test::exception_of;
using fanout::test::seconds_since;
using fanout::test::slow_to_cancel;
using fanout::test::tagged_error;
using fanout::test::tagged_of;
using fanout::test::throws_after;
using fanout::test::tracked_sleep;
using fanout::test::tracked_value;
using fanout::test::tracker;
using fanout::test::unit;

GROUP_TEST_CASE(an_inner_groups_failure_propagates_out_of_a_nested_group_and_cancels_the_outer_tasks)
{
  auto ex = co_await asio::this_coro::executor;
  tracker outer;
  tracker inner;
  struct nested
  {
    static asio::awaitable<void> run_inner(tracker& tr)
    {
      co_await fanout::with_task_group([&tr](fanout::task_group& g) -> asio::awaitable<void> {
        g.spawn(tracked_sleep(tr, 10s));
        g.spawn(throws_after(tr, unit, 7));
        co_return;
      });
    }
  };
  fanout::task_group g(ex);
  // Timed from before the spawns: on a thread pool the tasks start at once.
  const auto start = fanout::clock::now();
  auto inner_task = g.spawn(nested::run_inner(inner));
  g.spawn(tracked_sleep(outer, 10s));
  const auto joined = tagged_of(co_await exception_of(g.async_join(asio::use_awaitable)));
  FANOUT_CHECK_ELAPSED(seconds_since(start), unit);
  BOOST_TEST(joined.second == 7);
  BOOST_TEST(tagged_of(co_await exception_of(inner_task.async_wait())).second == 7);
  BOOST_TEST(inner.now.load() == 0);
  BOOST_TEST(inner.aborted.load() == 1);
  BOOST_TEST(outer.now.load() == 0);
  BOOST_TEST(outer.aborted.load() == 1);
}

GROUP_TEST_CASE(with_task_group_returns_once_every_task_has_finished)
{
  tracker t;
  const auto start = fanout::clock::now();
  co_await fanout::with_task_group([&t](fanout::task_group& g) -> asio::awaitable<void> {
    for (int i = 0; i < 4; ++i)
      g.spawn(tracked_sleep(t, unit));
    co_return; // the body returns at once; the scope still waits
  });
  FANOUT_CHECK_ELAPSED(seconds_since(start), unit);
  BOOST_TEST(t.finished.load() == 4);
  BOOST_TEST(t.now.load() == 0);
}

GROUP_TEST_CASE(with_task_group_rethrows_the_first_task_failure_after_cancelling_the_others)
{
  tracker t;
  const auto start = fanout::clock::now();
  const auto e = co_await exception_of(fanout::with_task_group([&t](fanout::task_group& g) -> asio::awaitable<void> {
    g.spawn(tracked_sleep(t, 10s));
    g.spawn(throws_after(t, unit, 4));
    co_return;
  }));
  FANOUT_CHECK_ELAPSED(seconds_since(start), unit);
  BOOST_TEST(tagged_of(e).second == 4);
  BOOST_TEST(t.now.load() == 0);
  BOOST_TEST(t.aborted.load() == 1);
}

GROUP_TEST_CASE(with_task_group_with_keep_going_does_not_throw_for_a_task_failure)
{
  tracker t;
  const auto e = co_await exception_of(fanout::with_task_group(
      [&t](fanout::task_group& g) -> asio::awaitable<void> {
        g.spawn(tracked_sleep(t, unit));
        g.spawn(throws_after(t, 0ms, 4));
        co_return;
      },
      fanout::group_policy::keep_going));
  BOOST_TEST(!e);
  BOOST_TEST(t.finished.load() == 1);
  BOOST_TEST(t.now.load() == 0);
}

GROUP_TEST_CASE(with_task_group_joins_even_when_the_body_throws_and_rethrows_the_bodys_exception)
{
  tracker t;
  const auto start = fanout::clock::now();
  const auto e = co_await exception_of(fanout::with_task_group([&t](fanout::task_group& g) -> asio::awaitable<void> {
    g.spawn(tracked_sleep(t, 10s));
    g.spawn(tracked_sleep(t, 10s));
    g.spawn(slow_to_cancel(t, 2 * unit)); // takes two units to honour the cancellation
    co_await fanout::sleep(unit);
    throw tagged_error(9);
  }));
  const double elapsed = seconds_since(start);
  BOOST_TEST(tagged_of(e).second == 9); // the body's exception, not the tasks' operation_aborted
  BOOST_TEST(t.now.load() == 0);        // nothing outlived the scope
  BOOST_TEST(t.started.load() == 3);
  BOOST_TEST(t.aborted.load() == 3);
  BOOST_TEST(t.finished.load() == 1); // the slow one completed its cleanup before the scope ended
  FANOUT_CHECK_ELAPSED(elapsed, 3 * unit);
}

GROUP_TEST_CASE(with_task_group_cancelled_from_outside_still_joins_its_tasks_before_throwing_operation_aborted)
{
  tracker t;
  struct scope
  {
    static asio::awaitable<void> run(tracker& tr)
    {
      co_await fanout::with_task_group([&tr](fanout::task_group& g) -> asio::awaitable<void> {
        g.spawn(slow_to_cancel(tr, 2 * unit));
        g.spawn(tracked_sleep(tr, 10s));
        co_await fanout::sleep(10s);
      });
    }
  };
  const auto start = fanout::clock::now();
  const auto e = co_await cancel_after(scope::run(t), unit);
  const double elapsed = seconds_since(start);
  BOOST_TEST(code_of(e) == asio::error::operation_aborted);
  BOOST_TEST(t.now.load() == 0);
  BOOST_TEST(t.finished.load() == 1);
  FANOUT_CHECK_ELAPSED(elapsed, 3 * unit);
}

GROUP_TEST_CASE(destroying_a_group_that_was_never_joined_cancels_its_tasks)
{
  tracker t;
  std::vector<fanout::task<int>> tasks;
  {
    fanout::task_group g(co_await asio::this_coro::executor);
    for (int i = 0; i < 3; ++i)
      tasks.push_back(g.spawn(tracked_value(t, 10s, i)));
    co_await fanout::sleep(unit);
    BOOST_TEST(t.now.load() == 3);
  }
  const auto start = fanout::clock::now();
  for (auto& task : tasks)
    BOOST_TEST(code_of(co_await exception_of(task.async_wait())) == asio::error::operation_aborted);
  FANOUT_CHECK_ELAPSED(seconds_since(start), 0ms);
  BOOST_TEST(t.aborted.load() == 3);
  BOOST_TEST(t.now.load() == 0);
}

BOOST_AUTO_TEST_SUITE_END() // task_group_nesting_and_scopes_tests
