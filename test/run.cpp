#include <fanout/run.hpp>

#include <boost/test/unit_test.hpp>

#include "support/co_test.hpp"
#include "support/outcomes.hpp"

#include <fanout/sleep.hpp>
#include <fanout/task.hpp>

#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/thread_pool.hpp>

#include <chrono>
#include <memory>
#include <stdexcept>
#include <string>
#include <thread>

// Every suite sits in its own top-level suite (and namespace): the suites are
// compiled together in unity batches (test/CMakeLists.txt).
BOOST_AUTO_TEST_SUITE(run_tests)

namespace asio = boost::asio;
using namespace std::chrono_literals;
using fanout::test::is_boom;
using fanout::test::seconds_since;
using fanout::test::throws_after;
using fanout::test::unit;

namespace {

asio::awaitable<int> forty_two()
{
  co_return 42;
}

// The post's b(): sleeps one unit without blocking, returns "b".
asio::awaitable<std::string> b()
{
  co_await fanout::sleep(unit);
  co_return "b";
}

asio::awaitable<void> leftover(std::shared_ptr<int> /*alive*/, bool& finished)
{
  co_await fanout::sleep(10s);
  finished = true;
}

asio::awaitable<int> spawns_a_leftover(std::shared_ptr<int> alive, bool& finished)
{
  auto ignored = fanout::spawn(co_await asio::this_coro::executor, leftover(std::move(alive), finished));
  co_await fanout::sleep(1ms);
  co_return 5;
}

} // namespace

BOOST_AUTO_TEST_CASE(run_returns_the_value_of_the_coroutine, *boost::unit_test::timeout(60))
{
  BOOST_TEST(fanout::run(forty_two()) == 42);
}

BOOST_AUTO_TEST_CASE(run_returns_a_value_produced_after_suspending, *boost::unit_test::timeout(60))
{
  const auto start = fanout::clock::now();
  BOOST_TEST(fanout::run(b()) == "b");
  FANOUT_CHECK_ELAPSED(seconds_since(start), unit);
}

BOOST_AUTO_TEST_CASE(run_returns_move_only_values, *boost::unit_test::timeout(60))
{
  auto body = []() -> asio::awaitable<std::unique_ptr<int>> {
    co_await fanout::sleep(1ms);
    co_return std::make_unique<int>(7);
  };
  std::unique_ptr<int> value = fanout::run(body());
  BOOST_TEST_REQUIRE(value != nullptr);
  BOOST_TEST(*value == 7);
}

BOOST_AUTO_TEST_CASE(run_on_a_fresh_context_completes_a_void_coroutine, *boost::unit_test::timeout(60))
{
  int steps = 0;
  auto body = [&steps]() -> asio::awaitable<void> {
    ++steps;
    co_await fanout::sleep(unit);
    ++steps;
  };
  const auto start = fanout::clock::now();
  fanout::run(body());
  BOOST_TEST(steps == 2);
  FANOUT_CHECK_ELAPSED(seconds_since(start), unit);
}

BOOST_AUTO_TEST_CASE(run_rethrows_a_runtime_error_thrown_inside_the_coroutine, *boost::unit_test::timeout(60))
{
  BOOST_CHECK_EXCEPTION(fanout::run(throws_after(1ms)), std::runtime_error, is_boom);
  asio::io_context ctx;
  BOOST_CHECK_EXCEPTION(fanout::run(ctx, throws_after(1ms)), std::runtime_error, is_boom);
  // The context is usable afterwards.
  BOOST_TEST(fanout::run(ctx, forty_two()) == 42);
}

BOOST_AUTO_TEST_CASE(run_rethrows_an_exception_thrown_before_the_first_suspension, *boost::unit_test::timeout(60))
{
  auto body = []() -> asio::awaitable<void> {
    throw std::runtime_error("boom");
    co_return;
  };
  BOOST_CHECK_EXCEPTION(fanout::run(body()), std::runtime_error, is_boom);
}

BOOST_AUTO_TEST_CASE(run_on_the_same_context_five_times_in_a_row_takes_five_units, *boost::unit_test::timeout(60))
{
  asio::io_context ctx;
  std::string results;
  const auto start = fanout::clock::now();
  for (int i = 0; i < 5; ++i)
    results += fanout::run(ctx, b());
  BOOST_TEST(results == "bbbbb");
  FANOUT_CHECK_ELAPSED(seconds_since(start), 5 * unit);
}

BOOST_AUTO_TEST_CASE(run_of_a_task_returns_the_task_value, *boost::unit_test::timeout(60))
{
  asio::io_context ctx;
  auto t = fanout::spawn(ctx, b());
  const auto start = fanout::clock::now();
  BOOST_TEST(fanout::run(ctx, t) == "b");
  FANOUT_CHECK_ELAPSED(seconds_since(start), unit);
  BOOST_TEST(t.done());
}

BOOST_AUTO_TEST_CASE(run_of_a_void_task_waits_for_it, *boost::unit_test::timeout(60))
{
  asio::io_context ctx;
  bool finished = false;
  auto body = [&finished]() -> asio::awaitable<void> {
    co_await fanout::sleep(unit);
    finished = true;
  };
  auto t = fanout::spawn(ctx, body());
  fanout::run(ctx, t);
  BOOST_TEST(finished);
  BOOST_TEST(t.done());
}

BOOST_AUTO_TEST_CASE(run_of_a_task_rethrows_its_exception, *boost::unit_test::timeout(60))
{
  asio::io_context ctx;
  auto t = fanout::spawn(ctx, throws_after(1ms));
  BOOST_CHECK_EXCEPTION(fanout::run(ctx, t), std::runtime_error, is_boom);
}

BOOST_AUTO_TEST_CASE(run_of_a_task_on_a_thread_pool_drives_the_context_until_the_task_is_done,
                     *boost::unit_test::timeout(60))
{
  asio::io_context ctx;
  asio::thread_pool pool(2);
  const auto caller = std::this_thread::get_id();
  auto body = [caller]() -> asio::awaitable<bool> {
    co_await fanout::sleep(unit);
    co_return std::this_thread::get_id() != caller;
  };
  // Timed from before the spawn: on a pool the body starts sleeping at once.
  const auto start = fanout::clock::now();
  auto t = fanout::spawn(pool.get_executor(), body());
  BOOST_TEST(fanout::run(ctx, t)); // ran on a pool thread
  FANOUT_CHECK_ELAPSED(seconds_since(start), unit);
  pool.join();
}

BOOST_AUTO_TEST_CASE(run_restarts_a_stopped_context, *boost::unit_test::timeout(60))
{
  asio::io_context ctx;
  ctx.stop();
  BOOST_TEST(ctx.stopped());
  BOOST_TEST(fanout::run(ctx, forty_two()) == 42);
  // And again, after a context that ran out of work.
  ctx.run();
  BOOST_TEST(ctx.stopped());
  BOOST_TEST(fanout::run(ctx, b()) == "b");
}

BOOST_AUTO_TEST_CASE(run_throws_runtime_error_when_the_context_is_stopped_before_the_coroutine_completes,
                     *boost::unit_test::timeout(60))
{
  asio::io_context ctx;
  bool finished = false;
  auto body = [&ctx, &finished]() -> asio::awaitable<int> {
    ctx.stop();
    co_await fanout::sleep(2 * unit);
    finished = true;
    co_return 1;
  };
  const auto start = fanout::clock::now();
  BOOST_CHECK_THROW(fanout::run(ctx, body()), std::runtime_error);
  FANOUT_CHECK_ELAPSED(seconds_since(start), 0ms);
  BOOST_TEST(!finished);

  // The coroutine stayed suspended on the context: running it finishes it.
  ctx.restart();
  ctx.run();
  BOOST_TEST(finished);
  FANOUT_CHECK_ELAPSED(seconds_since(start), 2 * unit);
}

BOOST_AUTO_TEST_CASE(run_drives_other_work_on_the_context_meanwhile, *boost::unit_test::timeout(60))
{
  asio::io_context ctx;
  int posted_runs = 0;
  asio::post(ctx, [&posted_runs] { ++posted_runs; });
  bool background_done = false;
  auto background = [&background_done]() -> asio::awaitable<void> {
    co_await fanout::sleep(unit);
    background_done = true;
  };
  auto t = fanout::spawn(ctx, background());
  fanout::run(ctx, fanout::sleep(2 * unit));
  BOOST_TEST(posted_runs == 1);
  BOOST_TEST(background_done);
  BOOST_TEST(t.done());
}

BOOST_AUTO_TEST_CASE(run_leaves_work_still_pending_on_the_context_for_the_next_run, *boost::unit_test::timeout(60))
{
  asio::io_context ctx;
  int steps = 0;
  auto longer = [&steps]() -> asio::awaitable<int> {
    co_await fanout::sleep(3 * unit);
    ++steps;
    co_return 3;
  };
  const auto start = fanout::clock::now();
  auto t = fanout::spawn(ctx, longer());
  BOOST_TEST(fanout::run(ctx, b()) == "b");
  FANOUT_CHECK_ELAPSED(seconds_since(start), unit);
  BOOST_TEST(steps == 0);
  BOOST_TEST(!t.done());

  BOOST_TEST(fanout::run(ctx, t) == 3);
  BOOST_TEST(steps == 1);
  FANOUT_CHECK_ELAPSED(seconds_since(start), 3 * unit);
}

BOOST_AUTO_TEST_CASE(run_on_a_fresh_context_destroys_tasks_left_running_without_running_them,
                     *boost::unit_test::timeout(60))
{
  auto alive = std::make_shared<int>(0);
  const std::weak_ptr<int> watch = alive;
  bool leftover_finished = false;
  const auto start = fanout::clock::now();
  BOOST_TEST(fanout::run(spawns_a_leftover(std::move(alive), leftover_finished)) == 5);
  FANOUT_CHECK_ELAPSED(seconds_since(start), 0ms);
  BOOST_TEST(!leftover_finished);
  BOOST_TEST(watch.expired()); // the leftover coroutine was destroyed with its context
}

FANOUT_CO_TEST_CASE(co_test_cases_run_inside_a_coroutine_on_their_own_context)
{
  const auto caller = std::this_thread::get_id();
  auto ex = co_await asio::this_coro::executor;
  BOOST_TEST(static_cast<bool>(ex));
  co_await fanout::sleep(1ms);
  BOOST_TEST((std::this_thread::get_id() == caller));
}

BOOST_AUTO_TEST_SUITE_END() // run_tests
