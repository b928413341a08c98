#include <fanout/task_group.hpp>

#include <boost/test/unit_test.hpp>

#include "support/co_test.hpp"
#include "support/outcomes.hpp"

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

// Every suite sits in its own top-level suite (and namespace): the suites are
// compiled together in unity batches (test/CMakeLists.txt).
BOOST_AUTO_TEST_SUITE(task_group_tests)

namespace asio = boost::asio;
using namespace std::chrono_literals;
using fanout::test::code_of;
using fanout::test::exception_of;
using fanout::test::seconds_since;
using fanout::test::unit;

namespace {

// Counts tasks in flight (from any thread), and how they ended.
struct tracker
{
  std::atomic<int> now{0};
  std::atomic<int> started{0};
  std::atomic<int> finished{0}; // ran to their end
  std::atomic<int> aborted{0};  // saw operation_aborted
};

// Marks a task in flight for its whole life, however it ends.
class in_flight
{
public:
  explicit in_flight(tracker& t) : tracker_(t)
  {
    ++tracker_.started;
    ++tracker_.now;
  }
  in_flight(const in_flight&) = delete;
  in_flight& operator=(const in_flight&) = delete;
  ~in_flight() { --tracker_.now; }

private:
  tracker& tracker_;
};

// An exception that can be told apart from any other.
struct tagged_error : std::runtime_error
{
  explicit tagged_error(int t) : std::runtime_error("tagged " + std::to_string(t)), tag(t) {}
  int tag;
};

// Sleeps @p delay, then gives @p value; counts a cancellation.
asio::awaitable<int> tracked_value(tracker& t, fanout::clock::duration delay, int value)
{
  in_flight guard(t);
  try {
    co_await fanout::sleep(delay);
  } catch (const boost::system::system_error& e) {
    if (e.code() == asio::error::operation_aborted)
      ++t.aborted;
    throw;
  }
  ++t.finished;
  co_return value;
}

asio::awaitable<void> tracked_sleep(tracker& t, fanout::clock::duration delay)
{
  (void)co_await tracked_value(t, delay, 0);
}

asio::awaitable<int> throws_after(tracker& t, fanout::clock::duration delay, int tag)
{
  in_flight guard(t);
  co_await fanout::sleep(delay);
  throw tagged_error(tag);
}

// When cancelled, fails with its own tagged_error instead of operation_aborted.
asio::awaitable<void> throws_when_cancelled(tracker& t, int tag)
{
  in_flight guard(t);
  bool cancelled = false;
  try {
    co_await fanout::sleep(10s);
  } catch (const boost::system::system_error&) {
    cancelled = true;
  }
  if (cancelled) {
    ++t.aborted;
    throw tagged_error(tag);
  }
}

// Ignores cancellation for @p cleanup: when its sleep is cancelled it goes on
// sleeping, uninterruptibly, then rethrows.
asio::awaitable<void> slow_to_cancel(tracker& t, fanout::clock::duration cleanup)
{
  in_flight guard(t);
  bool cancelled = false;
  try {
    co_await fanout::sleep(10s);
  } catch (const boost::system::system_error&) {
    cancelled = true;
  }
  co_await asio::this_coro::reset_cancellation_state();
  co_await fanout::sleep(cleanup);
  ++t.finished;
  if (cancelled) {
    ++t.aborted;
    throw boost::system::system_error(asio::error::operation_aborted, "slow_to_cancel");
  }
}

// The address and tag of the tagged_error @p e holds (null, -1 if none).
std::pair<const void*, int> tagged_of(const std::exception_ptr& e)
{
  if (!e)
    return {nullptr, -1};
  try {
    std::rethrow_exception(e);
  } catch (const tagged_error& error) {
    return {&error, error.tag};
  } catch (...) {
    return {nullptr, -2};
  }
}

// Runs @p op as its own coroutine on a strand of the current executor,
// cancels it (@p type) from that strand after @p delay, and gives what it
// failed with.
template <typename T>
asio::awaitable<std::exception_ptr> cancel_after(asio::awaitable<T> op, fanout::clock::duration delay,
                                                 asio::cancellation_type type = asio::cancellation_type::terminal)
{
  auto strand = asio::make_strand(co_await asio::this_coro::executor);
  auto signal = std::make_shared<asio::cancellation_signal>();
  asio::steady_timer timer(strand, delay);
  timer.async_wait([signal, type](boost::system::error_code ec) {
    if (!ec)
      signal->emit(type);
  });
  auto result = co_await asio::co_spawn(
      strand, std::move(op), asio::bind_cancellation_slot(signal->slot(), asio::as_tuple(asio::use_awaitable)));
  timer.cancel();
  co_return std::get<0>(result);
}

// Runs a test body on a thread pool of four threads.
void run_on_pool(asio::awaitable<void> body)
{
  asio::thread_pool pool(4);
  auto done = asio::co_spawn(pool, std::move(body), asio::use_future);
  if (done.wait_for(50s) != std::future_status::ready) {
    pool.stop();
    pool.join();
    BOOST_FAIL("the test body hung on the thread pool");
  }
  done.get();
  pool.join(); // returns only when nothing is left running on the pool
}

} // namespace

// Declares a coroutine test body run twice: on a fresh io_context (one
// thread), and on a thread_pool(4).
#define GROUP_TEST_CASE(name)                                                                                          \
  static asio::awaitable<void> name##_body();                                                                          \
  BOOST_AUTO_TEST_CASE(name, *boost::unit_test::timeout(60))                                                           \
  {                                                                                                                    \
    fanout::run(name##_body());                                                                                        \
  }                                                                                                                    \
  BOOST_AUTO_TEST_CASE(name##_on_a_thread_pool, *boost::unit_test::timeout(60))                                        \
  {                                                                                                                    \
    run_on_pool(name##_body());                                                                                        \
  }                                                                                                                    \
  static asio::awaitable<void> name##_body()

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
  co_await g.join();
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
  co_await g.join();
  FANOUT_CHECK_ELAPSED(seconds_since(start), 0ms);
}

GROUP_TEST_CASE(a_group_joined_twice_completes_the_second_join_at_once_with_the_same_outcome)
{
  auto ex = co_await asio::this_coro::executor;
  tracker t;
  {
    fanout::task_group g(ex);
    g.spawn(tracked_sleep(t, unit));
    co_await g.join();
    const auto start = fanout::clock::now();
    co_await g.join();
    FANOUT_CHECK_ELAPSED(seconds_since(start), 0ms);
  }
  {
    fanout::task_group g(ex);
    g.spawn(throws_after(t, unit, 3));
    g.spawn(tracked_sleep(t, 10s));
    const auto first = tagged_of(co_await exception_of(g.join()));
    const auto start = fanout::clock::now();
    const auto second = tagged_of(co_await exception_of(g.join()));
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
  co_await g.join();
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
  co_await g.join();
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
  co_await g.join();
  BOOST_TEST(leaves.load() == 1000);
  BOOST_TEST(g.size() == 0u);
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(failing)

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
  const auto joined = tagged_of(co_await exception_of(g.join()));
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
  BOOST_TEST(tagged_of(co_await exception_of(g.join())).second == 1);
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
  const auto joined = co_await exception_of(g.join());
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
  const auto joined = co_await exception_of(g.join());
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

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(cancelling_join)

namespace {

// Spawns three ten-second tasks into a group on @p ex and joins it.
asio::awaitable<void> join_three_long_tasks(asio::any_io_executor ex, tracker& t, fanout::group_policy policy)
{
  fanout::task_group g(ex, policy);
  for (int i = 0; i < 3; ++i)
    g.spawn(tracked_sleep(t, 10s));
  co_await g.join();
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
      asio::steady_timer canceller(ctx, unit);
      canceller.async_wait([&signal, type](boost::system::error_code ec) {
        if (!ec)
          signal.emit(type);
      });
      int calls = 0;
      std::exception_ptr error;
      const auto start = fanout::clock::now();
      g.join(asio::bind_cancellation_slot(signal.slot(), [&](std::exception_ptr e) {
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

BOOST_AUTO_TEST_SUITE(nesting_and_scopes)

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
  const auto joined = tagged_of(co_await exception_of(g.join()));
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

BOOST_AUTO_TEST_SUITE_END()

// This file's macros end here (the suites share unity batches).
#undef GROUP_TEST_CASE

BOOST_AUTO_TEST_SUITE_END() // task_group_tests
