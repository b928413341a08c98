#include <fanout/task.hpp>

#include <boost/test/unit_test.hpp>

#include "support/co_test.hpp"
#include "support/outcomes.hpp"
#include "support/tracker.hpp"

#include <fanout/error.hpp>
#include <fanout/run.hpp>
#include <fanout/sleep.hpp>

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
#include <boost/system/system_error.hpp>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <exception>
#include <memory>
#include <stdexcept>
#include <string>
#include <thread>
#include <utility>
#include <vector>

// Every suite sits in its own top-level suite (and namespace): the suites are
// compiled together in unity batches (test/CMakeLists.txt).
BOOST_AUTO_TEST_SUITE(task_tests)

namespace asio = boost::asio;
using namespace std::chrono_literals;
using fanout::test::code_of;
using fanout::test::is_aborted;
using fanout::test::is_boom;
using fanout::test::seconds_since;
using fanout::test::throws_after;
using fanout::test::unit;
using fanout::test::value_after;

namespace {

asio::awaitable<std::string> b(fanout::test::tracker& tracker)
{
  const fanout::test::in_flight guard(tracker);
  co_await fanout::sleep(unit);
  co_return "b";
}

// Sets @p flag as the first thing it does, then sleeps.
asio::awaitable<int> flags_then_sleeps(std::shared_ptr<std::atomic<bool>> flag, fanout::clock::duration delay)
{
  flag->store(true);
  co_await fanout::sleep(delay);
  co_return 1;
}

// Counts its completion; holds @p keep_alive for its whole life.
asio::awaitable<void> counts_after(fanout::clock::duration delay, std::shared_ptr<std::atomic<int>> counter,
                                   std::shared_ptr<int> /*keep_alive*/)
{
  co_await fanout::sleep(delay);
  ++*counter;
}

} // namespace

BOOST_AUTO_TEST_SUITE(starting)

FANOUT_CO_TEST_CASE(spawn_starts_eagerly_so_five_spawned_sleeps_awaited_in_turn_take_one_unit)
{
  auto ex = co_await asio::this_coro::executor;
  fanout::test::tracker tracker;
  const auto start = fanout::clock::now();
  std::vector<fanout::task<std::string>> tasks;
  for (int i = 0; i < 5; ++i)
    tasks.push_back(fanout::spawn(ex, b(tracker)));
  std::string results;
  for (auto& t : tasks)
    results += co_await t.async_wait();
  BOOST_TEST(results == "bbbbb");
  BOOST_TEST(tracker.most.load() == 5); // all five were sleeping at once
  BOOST_TEST(tracker.now.load() == 0);
  FANOUT_CHECK_ELAPSED(seconds_since(start), unit);
}

FANOUT_CO_TEST_CASE(spawn_runs_the_body_even_if_the_task_is_never_awaited)
{
  auto ex = co_await asio::this_coro::executor;
  auto counter = std::make_shared<std::atomic<int>>(0);
  auto t = fanout::spawn(ex, counts_after(unit, counter, nullptr));
  co_await fanout::sleep(2 * unit);
  BOOST_TEST(counter->load() == 1);
  BOOST_TEST(t.done());
}

FANOUT_CO_TEST_CASE(spawn_never_runs_the_body_inside_the_call)
{
  auto ex = co_await asio::this_coro::executor;
  auto flag = std::make_shared<std::atomic<bool>>(false);
  auto t = fanout::spawn(ex, flags_then_sleeps(flag, 1ms));
  BOOST_TEST(!flag->load());
  BOOST_TEST(!t.done());
  BOOST_TEST(co_await t.async_wait() == 1);
  BOOST_TEST(flag->load());
}

FANOUT_CO_TEST_CASE(spawn_on_an_execution_context_uses_its_executor)
{
  asio::io_context other;
  auto t = fanout::spawn(other, value_after(1ms, 9));
  BOOST_TEST(t.valid());
  BOOST_TEST((t.get_executor() == asio::any_io_executor(other.get_executor())));
  BOOST_TEST(fanout::run(other, t) == 9);
  co_return;
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(awaiting)

FANOUT_CO_TEST_CASE(awaiting_async_wait_gives_the_task_value)
{
  const auto start = fanout::clock::now();
  auto t = fanout::spawn(co_await asio::this_coro::executor, value_after(unit, 42));
  const int value = co_await t.async_wait();
  BOOST_TEST(value == 42);
  FANOUT_CHECK_ELAPSED(seconds_since(start), unit);
}

FANOUT_CO_TEST_CASE(awaiting_a_void_task_waits_for_it)
{
  auto counter = std::make_shared<std::atomic<int>>(0);
  const auto start = fanout::clock::now();
  auto t = fanout::spawn(co_await asio::this_coro::executor, counts_after(unit, counter, nullptr));
  co_await t.async_wait();
  BOOST_TEST(counter->load() == 1);
  FANOUT_CHECK_ELAPSED(seconds_since(start), unit);
}

FANOUT_CO_TEST_CASE(async_wait_with_a_token_adapter_gives_the_exception_and_value)
{
  auto ex = co_await asio::this_coro::executor;
  auto t = fanout::spawn(ex, value_after(1ms, 42));
  auto [e, value] = co_await t.async_wait(asio::as_tuple(asio::use_awaitable));
  BOOST_TEST(!e);
  BOOST_TEST(value == 42);
  auto failing = fanout::spawn(ex, throws_after(1ms));
  auto [error, filler] = co_await failing.async_wait(asio::as_tuple(asio::use_awaitable));
  BOOST_TEST(static_cast<bool>(error));
  BOOST_TEST(filler == 0);
}

FANOUT_CO_TEST_CASE(awaiting_a_finished_task_gives_its_value_at_once)
{
  auto t = fanout::spawn(co_await asio::this_coro::executor, value_after(0ms, 5));
  co_await fanout::sleep(unit);
  BOOST_TEST(t.done());
  const auto start = fanout::clock::now();
  BOOST_TEST(co_await t.async_wait() == 5);
  FANOUT_CHECK_ELAPSED(seconds_since(start), 0ms);
}

FANOUT_CO_TEST_CASE(awaiting_a_task_twice_fails_with_already_awaited)
{
  auto t = fanout::spawn(co_await asio::this_coro::executor, value_after(1ms, 42));
  BOOST_TEST(co_await t.async_wait() == 42);
  bool threw = false;
  try {
    (void)co_await t.async_wait();
  } catch (const boost::system::system_error& e) {
    threw = true;
    BOOST_TEST(e.code() == fanout::make_error_code(fanout::error::already_awaited));
    BOOST_TEST(std::string(e.code().category().name()) == "fanout");
  }
  BOOST_TEST(threw);
}

FANOUT_CO_TEST_CASE(waiters_parked_before_completion_get_the_value_once_and_already_awaited_after)
{
  auto ex = co_await asio::this_coro::executor;
  auto t = fanout::spawn(ex, value_after(unit, 8));
  auto first = fanout::spawn(
      ex, [](fanout::task<int> waited) -> asio::awaitable<int> { co_return co_await waited.async_wait(); }(t));
  auto second = fanout::spawn(
      ex, [](fanout::task<int> waited) -> asio::awaitable<int> { co_return co_await waited.async_wait(); }(t));
  int values = 0;
  int already_awaited = 0;
  for (auto* waiter : {&first, &second}) {
    try {
      BOOST_TEST(co_await waiter->async_wait() == 8);
      ++values;
    } catch (const boost::system::system_error& e) {
      if (e.code() == fanout::make_error_code(fanout::error::already_awaited))
        ++already_awaited;
    }
  }
  BOOST_TEST(values == 1);
  BOOST_TEST(already_awaited == 1);
}

FANOUT_CO_TEST_CASE(a_void_task_can_be_awaited_twice)
{
  auto counter = std::make_shared<std::atomic<int>>(0);
  auto t = fanout::spawn(co_await asio::this_coro::executor, counts_after(1ms, counter, nullptr));
  co_await t.async_wait();
  co_await t.async_wait();
  co_await t.async_wait();
  BOOST_TEST(counter->load() == 1); // the body ran once
}

FANOUT_CO_TEST_CASE(a_task_rethrows_the_exception_of_its_coroutine_to_every_waiter)
{
  auto t = fanout::spawn(co_await asio::this_coro::executor, throws_after(1ms));
  int boom = 0;
  for (int i = 0; i < 2; ++i) {
    try {
      (void)co_await t.async_wait();
    } catch (const std::runtime_error& e) {
      if (is_boom(e))
        ++boom;
    }
  }
  BOOST_TEST(boom == 2);
  BOOST_TEST(t.done());
}

FANOUT_CO_TEST_CASE(async_wait_with_a_callback_never_completes_inside_the_call)
{
  auto ex = co_await asio::this_coro::executor;
  auto t = fanout::spawn(ex, value_after(0ms, 3));
  co_await fanout::sleep(1ms);
  BOOST_TEST_REQUIRE(t.done());
  int calls = 0;
  int got = 0;
  t.async_wait([&](std::exception_ptr e, int value) {
    ++calls;
    if (!e)
      got = value;
  });
  BOOST_TEST(calls == 0);
  co_await fanout::sleep(1ms);
  BOOST_TEST(calls == 1);
  BOOST_TEST(got == 3);
}

FANOUT_CO_TEST_CASE(copies_of_a_handle_refer_to_the_same_task)
{
  auto t = fanout::spawn(co_await asio::this_coro::executor, value_after(1ms, 6));
  const fanout::task<int> copy = t;
  BOOST_TEST(co_await copy.async_wait() == 6);
  BOOST_TEST(t.done());
  BOOST_CHECK_EXCEPTION(co_await t.async_wait(), boost::system::system_error, [](const boost::system::system_error& e) {
    return e.code() == fanout::error::already_awaited;
  });
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(state)

FANOUT_CO_TEST_CASE(done_is_false_while_the_task_runs_and_true_after)
{
  auto t = fanout::spawn(co_await asio::this_coro::executor, value_after(2 * unit, 1));
  BOOST_TEST(t.valid());
  BOOST_TEST(!t.done());
  co_await fanout::sleep(unit);
  BOOST_TEST(!t.done());
  BOOST_TEST(co_await t.async_wait() == 1);
  BOOST_TEST(t.done());
}

FANOUT_CO_TEST_CASE(done_is_true_after_a_task_failed)
{
  auto t = fanout::spawn(co_await asio::this_coro::executor, throws_after(1ms));
  co_await fanout::sleep(unit);
  BOOST_TEST(t.done());
}

FANOUT_CO_TEST_CASE(an_empty_task_handle_is_invalid_and_waiting_on_it_fails_with_no_task)
{
  fanout::task<int> empty;
  BOOST_TEST(!empty.valid());
  BOOST_TEST(!empty.done());
  empty.cancel(); // does nothing
  BOOST_CHECK_EXCEPTION((void)empty.get_executor(), boost::system::system_error,
                        [](const boost::system::system_error& e) { return e.code() == fanout::error::no_task; });
  bool threw = false;
  try {
    (void)co_await empty.async_wait();
  } catch (const boost::system::system_error& e) {
    threw = true;
    BOOST_TEST(e.code() == fanout::make_error_code(fanout::error::no_task));
  }
  BOOST_TEST(threw);

  fanout::task<void> empty_void;
  BOOST_CHECK_EXCEPTION(co_await empty_void.async_wait(), boost::system::system_error,
                        [](const boost::system::system_error& e) { return e.code() == fanout::error::no_task; });
}

FANOUT_CO_TEST_CASE(a_moved_from_handle_is_empty)
{
  auto t = fanout::spawn(co_await asio::this_coro::executor, value_after(1ms, 4));
  auto moved = std::move(t);
  BOOST_TEST(!t.valid()); // NOLINT(bugprone-use-after-move): the documented moved-from state
  BOOST_TEST(moved.valid());
  BOOST_CHECK_EXCEPTION(co_await t.async_wait(), boost::system::system_error,
                        [](const boost::system::system_error& e) { return e.code() == fanout::error::no_task; });
  BOOST_TEST(co_await moved.async_wait() == 4);
}

FANOUT_CO_TEST_CASE(destroying_every_handle_of_an_unfinished_task_detaches_it)
{
  auto ex = co_await asio::this_coro::executor;
  auto counter = std::make_shared<std::atomic<int>>(0);
  auto alive = std::make_shared<int>(0);
  const std::weak_ptr<int> watch = alive;
  {
    auto t = fanout::spawn(ex, counts_after(unit, counter, std::move(alive)));
    BOOST_TEST(!t.done());
  }
  BOOST_TEST(counter->load() == 0);
  BOOST_TEST(!watch.expired());
  co_await fanout::sleep(3 * unit);
  BOOST_TEST(counter->load() == 1); // it still ran to completion
  BOOST_TEST(watch.expired());      // and its coroutine is gone
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(cancellation)

FANOUT_CO_TEST_CASE(cancel_on_a_sleeping_task_makes_the_await_throw_operation_aborted_early)
{
  auto t = fanout::spawn(co_await asio::this_coro::executor, value_after(10s, 1));
  const auto start = fanout::clock::now();
  co_await fanout::sleep(unit);
  t.cancel();
  BOOST_CHECK_EXCEPTION(co_await t.async_wait(), boost::system::system_error, is_aborted);
  BOOST_TEST(t.done());
  FANOUT_CHECK_ELAPSED(seconds_since(start), unit);
}

FANOUT_CO_TEST_CASE(cancel_twice_or_after_finishing_does_nothing)
{
  auto t = fanout::spawn(co_await asio::this_coro::executor, value_after(1ms, 2));
  co_await fanout::sleep(unit);
  BOOST_TEST_REQUIRE(t.done());
  t.cancel();
  t.cancel();
  BOOST_TEST(co_await t.async_wait() == 2);

  auto u = fanout::spawn(co_await asio::this_coro::executor, value_after(10s, 1));
  co_await fanout::sleep(1ms);
  u.cancel();
  u.cancel();
  BOOST_CHECK_EXCEPTION(co_await u.async_wait(), boost::system::system_error, is_aborted);
}

FANOUT_CO_TEST_CASE(a_task_that_handles_its_cancellation_gives_its_value)
{
  auto body = []() -> asio::awaitable<int> {
    bool aborted = false;
    try {
      co_await fanout::sleep(10s);
    } catch (const boost::system::system_error& e) {
      aborted = e.code() == asio::error::operation_aborted;
    }
    co_return aborted ? 11 : 0;
  };
  auto t = fanout::spawn(co_await asio::this_coro::executor, body());
  co_await fanout::sleep(1ms);
  t.cancel();
  BOOST_TEST(co_await t.async_wait() == 11);
}

BOOST_AUTO_TEST_CASE(cancel_before_start_means_the_body_never_runs, *boost::unit_test::timeout(60))
{
  asio::io_context ctx;
  auto flag = std::make_shared<std::atomic<bool>>(false);
  auto t = fanout::spawn(ctx, flags_then_sleeps(flag, 10s));
  t.cancel(); // before ctx runs: the coroutine has not started
  const auto start = fanout::clock::now();
  BOOST_CHECK_EXCEPTION(fanout::run(ctx, t), boost::system::system_error, is_aborted);
  BOOST_TEST(!flag->load());
  BOOST_TEST(t.done());
  FANOUT_CHECK_ELAPSED(seconds_since(start), 0ms);
}

BOOST_AUTO_TEST_CASE(cancel_from_another_thread_ends_the_task, *boost::unit_test::timeout(60))
{
  asio::io_context ctx;
  auto t = fanout::spawn(ctx, value_after(10s, 1));
  const auto start = fanout::clock::now();
  std::thread canceller([t] {
    std::this_thread::sleep_for(unit);
    t.cancel();
  });
  BOOST_CHECK_EXCEPTION(fanout::run(ctx, t), boost::system::system_error, is_aborted);
  canceller.join();
  FANOUT_CHECK_ELAPSED(seconds_since(start), unit);
}

FANOUT_CO_TEST_CASE(cancelling_the_coroutine_that_awaits_a_task_cancels_the_task)
{
  auto ex = co_await asio::this_coro::executor;
  auto t = fanout::spawn(ex, value_after(10s, 1));
  asio::cancellation_signal signal;
  const auto start = fanout::clock::now(); // before the canceller's clock starts
  asio::steady_timer canceller(ex, unit);
  canceller.async_wait([&signal](boost::system::error_code ec) {
    if (!ec)
      signal.emit(asio::cancellation_type::terminal);
  });
  auto waiter = [](fanout::task<int> waited) -> asio::awaitable<int> { co_return co_await waited.async_wait(); };
  auto [e, value] = co_await asio::co_spawn(
      ex, waiter(t), asio::bind_cancellation_slot(signal.slot(), asio::as_tuple(asio::use_awaitable)));
  BOOST_TEST(code_of(e) == asio::error::operation_aborted);
  BOOST_TEST(value == 0);
  BOOST_TEST(t.done());
  FANOUT_CHECK_ELAPSED(seconds_since(start), unit);
}

FANOUT_CO_TEST_CASE(a_cancelled_waiter_resumes_only_when_the_task_has_finished)
{
  auto ex = co_await asio::this_coro::executor;
  // The task takes the cancellation, cleans up for two more units, and
  // returns normally: the waiter gets its value, after all of that.
  auto slow_to_stop = []() -> asio::awaitable<int> {
    bool aborted = false;
    try {
      co_await fanout::sleep(10s);
    } catch (const boost::system::system_error& e) {
      aborted = e.code() == asio::error::operation_aborted;
    }
    co_await asio::this_coro::reset_cancellation_state();
    co_await fanout::sleep(2 * unit);
    co_return aborted ? 21 : 0;
  };
  auto t = fanout::spawn(ex, slow_to_stop());
  asio::cancellation_signal signal;
  const auto start = fanout::clock::now(); // before the canceller's clock starts
  asio::steady_timer canceller(ex, unit);
  canceller.async_wait([&signal](boost::system::error_code ec) {
    if (!ec)
      signal.emit(asio::cancellation_type::terminal);
  });
  auto waiter = [](fanout::task<int> waited) -> asio::awaitable<int> { co_return co_await waited.async_wait(); };
  auto [e, value] = co_await asio::co_spawn(
      ex, waiter(t), asio::bind_cancellation_slot(signal.slot(), asio::as_tuple(asio::use_awaitable)));
  BOOST_TEST(!e);
  BOOST_TEST(value == 21);
  BOOST_TEST(t.done());
  FANOUT_CHECK_ELAPSED(seconds_since(start), 3 * unit);
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(executors)

FANOUT_CO_TEST_CASE(tasks_on_a_thread_pool_run_there_and_their_values_reach_the_awaiting_coroutine)
{
  asio::thread_pool pool(4);
  const auto caller = std::this_thread::get_id();
  auto body = [](int i, asio::thread_pool::executor_type pool_ex) -> asio::awaitable<int> {
    co_await fanout::sleep(unit);
    co_return pool_ex.running_in_this_thread() ? i* i : -1;
  };
  const auto start = fanout::clock::now();
  std::vector<fanout::task<int>> tasks;
  for (int i = 0; i < 8; ++i)
    tasks.push_back(fanout::spawn(pool.get_executor(), body(i, pool.get_executor())));
  for (int i = 0; i < 8; ++i) {
    BOOST_TEST(co_await tasks[static_cast<std::size_t>(i)].async_wait() == i * i);
    BOOST_TEST((std::this_thread::get_id() == caller)); // resumed on the test's own context
  }
  FANOUT_CHECK_ELAPSED(seconds_since(start), unit);
  pool.join();
}

FANOUT_CO_TEST_CASE(tasks_on_a_thread_pool_can_be_cancelled)
{
  asio::thread_pool pool(4);
  std::vector<fanout::task<int>> tasks;
  for (int i = 0; i < 4; ++i)
    tasks.push_back(fanout::spawn(pool.get_executor(), value_after(10s, i)));
  co_await fanout::sleep(unit);
  const auto start = fanout::clock::now();
  for (auto& t : tasks)
    t.cancel();
  int aborted = 0;
  for (auto& t : tasks) {
    try {
      (void)co_await t.async_wait();
    } catch (const boost::system::system_error& e) {
      if (e.code() == asio::error::operation_aborted)
        ++aborted;
    }
  }
  BOOST_TEST(aborted == 4);
  FANOUT_CHECK_ELAPSED(seconds_since(start), 0ms);
  pool.join();
}

FANOUT_CO_TEST_CASE(tasks_on_one_strand_of_a_thread_pool_never_run_at_the_same_time)
{
  asio::thread_pool pool(4);
  auto strand = asio::make_strand(pool.get_executor());
  std::atomic<int> active{0};
  std::atomic<bool> overlapped{false};
  long total = 0; // only touched on the strand
  auto body = [&]() -> asio::awaitable<int> {
    for (int step = 0; step < 200; ++step) {
      if (active.fetch_add(1) != 0)
        overlapped = true;
      for (int spin = 0; spin < 1000; ++spin)
        ++total;
      active.fetch_sub(1);
      co_await fanout::sleep(0ms); // yields to the strand's other tasks
    }
    co_return 1;
  };
  std::vector<fanout::task<int>> tasks;
  for (int i = 0; i < 6; ++i)
    tasks.push_back(fanout::spawn(strand, body()));
  int finished = 0;
  for (auto& t : tasks)
    finished += co_await t.async_wait();
  pool.join();
  BOOST_TEST(finished == 6);
  BOOST_TEST(total == 6L * 200 * 1000);
  BOOST_TEST(!overlapped.load());
}

FANOUT_CO_TEST_CASE(tasks_spawned_from_several_threads_all_complete)
{
  auto ex = co_await asio::this_coro::executor;
  std::vector<fanout::task<int>> tasks(4);
  std::vector<std::thread> spawners;
  for (std::size_t i = 0; i < tasks.size(); ++i)
    spawners.emplace_back([&tasks, ex, i] { tasks[i] = fanout::spawn(ex, value_after(unit, static_cast<int>(i))); });
  for (auto& s : spawners)
    s.join();
  for (std::size_t i = 0; i < tasks.size(); ++i)
    BOOST_TEST(co_await tasks[i].async_wait() == static_cast<int>(i));
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE_END() // task_tests
