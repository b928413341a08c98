#include <fanout/offload.hpp>

#include <boost/test/unit_test.hpp>

#include "support/co_test.hpp"
#include "support/outcomes.hpp"
#include "support/ranges.hpp"
#include "support/tracker.hpp"

#include <fanout/async_map.hpp>
#include <fanout/run.hpp>
#include <fanout/sleep.hpp>
#include <fanout/task.hpp>

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
#include <cstdlib>
#include <exception>
#include <functional>
#include <future>
#include <memory>
#include <ranges>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

// Every suite sits in its own top-level suite (and namespace): the suites are
// compiled together in unity batches (test/CMakeLists.txt).
BOOST_AUTO_TEST_SUITE(offload_tests)

namespace asio = boost::asio;
using namespace std::chrono_literals;
using fanout::test::code_of;
using fanout::test::is_boom;
using fanout::test::seconds_since;
using fanout::test::unit;

namespace {

fanout::test::tracker a_tracker;

// The post's a(): blocks its thread for one unit, returns "a".
std::string a()
{
  const fanout::test::in_flight guard(a_tracker);
  std::this_thread::sleep_for(unit);
  return "a";
}

// Waits (polling) until @p flag is set, or fails after a generous time.
bool wait_for_flag(const std::atomic<bool>& flag)
{
  const auto give_up = fanout::clock::now() + 20s;
  while (!flag.load()) {
    if (fanout::clock::now() > give_up)
      return false;
    std::this_thread::sleep_for(1ms);
  }
  return true;
}

} // namespace

BOOST_AUTO_TEST_SUITE(coroutines)

FANOUT_CO_TEST_CASE(to_thread_runs_the_call_on_another_thread_and_resumes_on_the_callers_thread)
{
  const auto caller = std::this_thread::get_id();
  const auto callee = co_await fanout::to_thread([] { return std::this_thread::get_id(); });
  BOOST_TEST((callee != caller));
  BOOST_TEST((std::this_thread::get_id() == caller));
}

FANOUT_CO_TEST_CASE(to_thread_runs_the_call_on_the_blocking_pool)
{
  const bool on_pool = co_await fanout::to_thread([] { return fanout::blocking_executor().running_in_this_thread(); });
  BOOST_TEST(on_pool);
  BOOST_TEST(!fanout::blocking_executor().running_in_this_thread());
}

FANOUT_CO_TEST_CASE(to_thread_returns_the_value_of_the_call)
{
  BOOST_TEST(co_await fanout::to_thread(a) == "a");
  BOOST_TEST(co_await fanout::to_thread([] { return 6 * 7; }) == 42);
}

FANOUT_CO_TEST_CASE(to_thread_passes_copies_of_the_arguments)
{
  std::string text = "x";
  auto call = fanout::to_thread([](std::string s, int n) { return s + std::to_string(n); }, text, 3);
  text = "changed"; // the call holds its own copy
  BOOST_TEST(co_await std::move(call) == "x3");
}

FANOUT_CO_TEST_CASE(to_thread_passes_references_given_through_std_ref)
{
  int counter = 0;
  co_await fanout::to_thread([](int& c) { c += 5; }, std::ref(counter));
  BOOST_TEST(counter == 5);
}

FANOUT_CO_TEST_CASE(to_thread_of_a_void_call_completes_after_its_side_effects)
{
  std::atomic<int> effects{0};
  const auto start = fanout::clock::now();
  co_await fanout::to_thread([&effects] {
    std::this_thread::sleep_for(unit);
    effects = 1;
  });
  BOOST_TEST(effects.load() == 1);
  FANOUT_CHECK_ELAPSED(seconds_since(start), unit);
}

FANOUT_CO_TEST_CASE(to_thread_takes_about_as_long_as_the_blocking_call)
{
  const auto start = fanout::clock::now();
  BOOST_TEST(co_await fanout::to_thread(a) == "a");
  FANOUT_CHECK_ELAPSED(seconds_since(start), unit);
}

FANOUT_CO_TEST_CASE(to_thread_rethrows_the_exception_of_the_blocking_call)
{
  bool caught = false;
  try {
    (void)co_await fanout::to_thread([]() -> int { throw std::runtime_error("boom"); });
  } catch (const std::runtime_error& e) {
    caught = is_boom(e);
  }
  BOOST_TEST(caught);

  bool caught_void = false;
  try {
    co_await fanout::to_thread([] { throw std::runtime_error("boom"); });
  } catch (const std::runtime_error& e) {
    caught_void = is_boom(e);
  }
  BOOST_TEST(caught_void);
}

FANOUT_CO_TEST_CASE(five_blocking_calls_via_to_thread_spawned_concurrently_overlap)
{
  auto ex = co_await asio::this_coro::executor;
  a_tracker.most = 0;
  const auto start = fanout::clock::now();
  std::vector<fanout::task<std::string>> tasks;
  for (int i = 0; i < 5; ++i)
    tasks.push_back(
        fanout::spawn(ex, []() -> asio::awaitable<std::string> { co_return co_await fanout::to_thread(a); }()));
  std::string results;
  for (auto& t : tasks)
    results += co_await t.async_wait();
  BOOST_TEST(results == "aaaaa");
  BOOST_TEST(a_tracker.most.load() == 5);
  BOOST_TEST(a_tracker.now.load() == 0);
  FANOUT_CHECK_ELAPSED(seconds_since(start), unit);
}

FANOUT_CO_TEST_CASE(five_blocking_calls_via_to_thread_in_async_map_overlap)
{
  a_tracker.most = 0;
  const auto start = fanout::clock::now();
  auto results = co_await fanout::async_map([](int) { return fanout::to_thread(a); }, fanout::test::iota(0, 5));
  BOOST_TEST((results == std::vector<std::string>(5, "a")));
  BOOST_TEST(a_tracker.most.load() == 5);
  FANOUT_CHECK_ELAPSED(seconds_since(start), unit);
}

FANOUT_CO_TEST_CASE(a_blocking_call_on_a_thread_does_not_block_the_event_loop)
{
  auto ex = co_await asio::this_coro::executor;
  int ticks = 0;
  auto ticker = [&ticks]() -> asio::awaitable<void> {
    for (int i = 0; i < 3; ++i) {
      co_await fanout::sleep(unit / 2);
      ++ticks;
    }
  };
  auto t = fanout::spawn(ex, ticker());
  co_await fanout::to_thread([] { std::this_thread::sleep_for(3 * unit); });
  BOOST_TEST(ticks == 3); // the loop kept running while the call blocked
  co_await t.async_wait();
}

FANOUT_CO_TEST_CASE(async_to_thread_with_use_awaitable_runs_on_a_user_pool)
{
  asio::thread_pool pool(2);
  auto pool_ex = pool.get_executor();
  const bool on_pool = co_await fanout::async_to_thread(
      pool_ex, [pool_ex] { return pool_ex.running_in_this_thread(); }, asio::use_awaitable);
  BOOST_TEST(on_pool);
  pool.join();
}

FANOUT_CO_TEST_CASE(cancelling_a_coroutine_waiting_on_a_queued_call_means_the_call_never_starts)
{
  auto ex = co_await asio::this_coro::executor;
  asio::thread_pool pool(1);
  std::atomic<bool> first_started{false};
  // Shared: the releasing timer's handler may outlive this frame.
  auto release = std::make_shared<std::atomic<bool>>(false);
  std::atomic<bool> second_ran{false};
  std::future<int> first = fanout::async_to_thread(
      pool.get_executor(),
      [&first_started, release] {
        first_started = true;
        while (!release->load())
          std::this_thread::sleep_for(1ms);
        return 1;
      },
      asio::use_future);
  BOOST_TEST_REQUIRE(wait_for_flag(first_started)); // the pool's one thread is busy

  // Cancel the wait after one unit; free the pool only much later (20 units).
  asio::cancellation_signal signal;
  asio::steady_timer canceller(ex, unit);
  canceller.async_wait([&signal](boost::system::error_code ec) {
    if (!ec)
      signal.emit(asio::cancellation_type::terminal);
  });
  asio::steady_timer releaser(ex, 20 * unit);
  releaser.async_wait([release](boost::system::error_code) { *release = true; });

  auto second = [&]() -> asio::awaitable<int> {
    co_return co_await fanout::async_to_thread(
        pool.get_executor(),
        [&second_ran] {
          second_ran = true;
          return 2;
        },
        asio::use_awaitable);
  };
  const auto start = fanout::clock::now();
  auto [e, value] = co_await asio::co_spawn(
      ex, second(), asio::bind_cancellation_slot(signal.slot(), asio::as_tuple(asio::use_awaitable)));
  const double waited = seconds_since(start);
  BOOST_TEST(code_of(e) == asio::error::operation_aborted);
  BOOST_TEST(value == 0);
  // The call never started, so nothing had to be waited for: the wait ends
  // when it is cancelled, not when the busy pool frees up.
  FANOUT_CHECK_ELAPSED(waited, unit);
  BOOST_TEST(!release->load());

  *release = true;
  BOOST_TEST(first.get() == 1);
  pool.join();
  BOOST_TEST(!second_ran.load());
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(callbacks)

BOOST_AUTO_TEST_CASE(async_to_thread_completes_a_callback_on_the_handlers_executor, *boost::unit_test::timeout(60))
{
  asio::io_context ctx;
  const auto caller = std::this_thread::get_id();
  int calls = 0;
  int value = 0;
  std::thread::id ran_on;
  std::thread::id completed_on;
  fanout::async_to_thread(
      fanout::blocking_executor(),
      [&ran_on] {
        ran_on = std::this_thread::get_id();
        std::this_thread::sleep_for(unit);
        return 7;
      },
      asio::bind_executor(ctx, [&](std::exception_ptr e, int v) {
        ++calls;
        if (!e)
          value = v;
        completed_on = std::this_thread::get_id();
      }));
  BOOST_TEST(calls == 0);
  const auto start = fanout::clock::now();
  ctx.run(); // kept busy by the pending call until its callback has run
  BOOST_TEST(calls == 1);
  BOOST_TEST(value == 7);
  BOOST_TEST((ran_on != caller));
  BOOST_TEST((completed_on == caller));
  FANOUT_CHECK_ELAPSED(seconds_since(start), unit * 0.9);
}

BOOST_AUTO_TEST_CASE(async_to_thread_without_an_associated_executor_completes_on_the_pool,
                     *boost::unit_test::timeout(60))
{
  asio::thread_pool pool(2);
  auto pool_ex = pool.get_executor();
  std::promise<bool> completed_on_pool;
  auto done = completed_on_pool.get_future();
  fanout::async_to_thread(
      pool_ex, [] { return std::string("x"); },
      [&completed_on_pool, pool_ex](std::exception_ptr e, std::string v) {
        completed_on_pool.set_value(!e && v == "x" && pool_ex.running_in_this_thread());
      });
  BOOST_TEST((done.wait_for(20s) == std::future_status::ready));
  BOOST_TEST(done.get());
  pool.join();
}

BOOST_AUTO_TEST_CASE(async_to_thread_delivers_the_exception_in_the_exception_ptr, *boost::unit_test::timeout(60))
{
  asio::io_context ctx;
  std::exception_ptr error;
  int value = -1;
  fanout::async_to_thread(
      fanout::blocking_executor(), []() -> int { throw std::runtime_error("boom"); },
      asio::bind_executor(ctx, [&](std::exception_ptr e, int v) {
        error = e;
        value = v;
      }));
  ctx.run();
  BOOST_TEST_REQUIRE(static_cast<bool>(error));
  BOOST_CHECK_EXCEPTION(std::rethrow_exception(error), std::runtime_error, is_boom);
  BOOST_TEST(value == 0); // the default-constructed filler
}

BOOST_AUTO_TEST_CASE(async_to_thread_with_use_future_gives_the_value, *boost::unit_test::timeout(60))
{
  asio::thread_pool pool(2);
  std::future<int> f = fanout::async_to_thread(
      pool.get_executor(), [] { return 5; }, asio::use_future);
  BOOST_TEST(f.get() == 5);
  std::future<void> v = fanout::async_to_thread(
      pool.get_executor(), [] {}, asio::use_future);
  BOOST_CHECK_NO_THROW(v.get());
  std::future<int> fails = fanout::async_to_thread(
      pool.get_executor(), []() -> int { throw std::runtime_error("boom"); }, asio::use_future);
  BOOST_CHECK_EXCEPTION(fails.get(), std::runtime_error, is_boom);
  pool.join();
}

BOOST_AUTO_TEST_CASE(async_to_thread_on_a_user_pool_runs_on_that_pool, *boost::unit_test::timeout(60))
{
  asio::io_context ctx;
  asio::thread_pool pool(2);
  auto pool_ex = pool.get_executor();
  std::vector<bool> on_pool;
  for (int i = 0; i < 4; ++i)
    fanout::async_to_thread(
        pool_ex, [pool_ex] { return pool_ex.running_in_this_thread(); },
        asio::bind_executor(ctx, [&on_pool](std::exception_ptr e, bool v) { on_pool.push_back(!e && v); }));
  ctx.run();
  pool.join();
  BOOST_TEST((on_pool == std::vector<bool>(4, true)));
}

BOOST_AUTO_TEST_CASE(a_cancelled_queued_call_never_starts_and_its_wait_ends_with_operation_aborted,
                     *boost::unit_test::timeout(60))
{
  asio::io_context ctx;
  asio::thread_pool pool(1);
  std::atomic<bool> first_started{false};
  std::atomic<bool> release{false};
  std::atomic<bool> second_ran{false};

  int first_value = 0;
  std::exception_ptr first_error;
  fanout::async_to_thread(
      pool.get_executor(),
      [&] {
        first_started = true;
        while (!release.load())
          std::this_thread::sleep_for(1ms);
        return 1;
      },
      asio::bind_executor(ctx, [&](std::exception_ptr e, int v) {
        first_error = e;
        first_value = v;
      }));
  BOOST_TEST_REQUIRE(wait_for_flag(first_started)); // the pool's one thread is busy

  asio::cancellation_signal signal;
  int second_calls = 0;
  int second_value = -1;
  std::exception_ptr second_error;
  fanout::async_to_thread(
      pool.get_executor(),
      [&second_ran] {
        second_ran = true;
        return 2;
      },
      asio::bind_cancellation_slot(signal.slot(), asio::bind_executor(ctx, [&](std::exception_ptr e, int v) {
                                     ++second_calls;
                                     second_error = e;
                                     second_value = v;
                                   })));
  // Cancel the queued wait from the handler's executor, then let the pool go.
  asio::post(ctx, [&] {
    signal.emit(asio::cancellation_type::terminal);
    release = true;
  });
  ctx.run();
  pool.join();

  BOOST_TEST(!first_error);
  BOOST_TEST(first_value == 1);
  BOOST_TEST(second_calls == 1);
  BOOST_TEST(code_of(second_error) == asio::error::operation_aborted);
  BOOST_TEST(second_value == 0);
  BOOST_TEST(!second_ran.load()); // never started, even after the pool freed up
}

BOOST_AUTO_TEST_CASE(cancelling_a_running_call_waits_for_it_and_gives_its_result, *boost::unit_test::timeout(60))
{
  asio::io_context ctx;
  asio::thread_pool pool(1);
  std::atomic<bool> started{false};
  asio::cancellation_signal signal;
  int calls = 0;
  int value = 0;
  std::exception_ptr error;
  const auto start = fanout::clock::now();
  fanout::async_to_thread(
      pool.get_executor(),
      [&started] {
        started = true;
        std::this_thread::sleep_for(2 * unit);
        return 9;
      },
      asio::bind_cancellation_slot(signal.slot(), asio::bind_executor(ctx, [&](std::exception_ptr e, int v) {
                                     ++calls;
                                     error = e;
                                     value = v;
                                   })));
  BOOST_TEST_REQUIRE(wait_for_flag(started));
  asio::post(ctx, [&signal] { signal.emit(asio::cancellation_type::terminal); });
  ctx.run();
  pool.join();
  BOOST_TEST(calls == 1);
  BOOST_TEST(!error);
  BOOST_TEST(value == 9);
  FANOUT_CHECK_ELAPSED(seconds_since(start), 2 * unit);
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_CASE(the_blocking_pool_has_the_configured_number_of_threads)
{
  const char* env = std::getenv("FANOUT_BLOCKING_THREADS");
  std::size_t expected = 64;
  if (env != nullptr) {
    try {
      const long n = std::stol(env);
      if (n > 0)
        expected = static_cast<std::size_t>(n);
    } catch (const std::exception&) {
    }
  }
  BOOST_TEST(fanout::blocking_pool_size() == expected);
  BOOST_TEST(fanout::blocking_pool_size() >= 1U);
}

BOOST_AUTO_TEST_SUITE_END() // offload_tests
