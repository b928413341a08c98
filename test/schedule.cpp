#include <fanout/schedule.hpp>

#include <boost/test/unit_test.hpp>

#include "support/co_test.hpp"
#include "support/outcomes.hpp"

#include <fanout/error.hpp>
#include <fanout/run.hpp>
#include <fanout/sleep.hpp>
#include <fanout/task.hpp>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/thread_pool.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/use_future.hpp>
#include <boost/system/system_error.hpp>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <exception>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

// Every suite sits in its own top-level suite (and namespace): the suites are
// compiled together in unity batches (test/CMakeLists.txt).
BOOST_AUTO_TEST_SUITE(schedule_tests)

namespace asio = boost::asio;
using namespace std::chrono_literals;
using fanout::test::code_of;
using fanout::test::seconds_since;
using fanout::test::unit;

namespace {

using seconds_d = std::chrono::duration<double>;

double seconds_of(fanout::clock::duration d)
{
  return seconds_d(d).count();
}

// Awaits @p t and gives the exception it failed with (null on success).
asio::awaitable<std::exception_ptr> exception_of(const fanout::task<void>& t)
{
  try {
    co_await t.async_wait();
  } catch (...) {
    co_return std::current_exception();
  }
  co_return nullptr;
}

// Records when each call happened, in seconds since a start time.
struct call_log
{
  explicit call_log(fanout::clock::time_point s) : start(s) {}
  fanout::clock::time_point start;
  std::vector<double> times;
  void record() { times.push_back(seconds_since(start)); }
  [[nodiscard]] int count() const { return static_cast<int>(times.size()); }
};

} // namespace

BOOST_AUTO_TEST_SUITE(call_later_and_call_at)

FANOUT_CO_TEST_CASE(call_later_runs_the_callable_once_after_about_the_delay)
{
  auto ex = co_await asio::this_coro::executor;
  call_log log(fanout::clock::now());
  auto h = fanout::call_later(ex, 2 * unit, [&log] { log.record(); });
  BOOST_TEST(log.count() == 0); // never inside the call
  co_await fanout::sleep(unit);
  BOOST_TEST(log.count() == 0); // nor early
  co_await h.async_wait();
  BOOST_TEST_REQUIRE(log.count() == 1);
  FANOUT_CHECK_ELAPSED(log.times[0], 2 * unit);
  BOOST_TEST(h.done());
}

FANOUT_CO_TEST_CASE(call_later_accepts_any_duration_type)
{
  auto ex = co_await asio::this_coro::executor;
  call_log log(fanout::clock::now());
  auto h = fanout::call_later(ex, seconds_d(0.05), [&log] { log.record(); });
  co_await h.async_wait();
  BOOST_TEST_REQUIRE(log.count() == 1);
  FANOUT_CHECK_ELAPSED(log.times[0], 50ms);
}

FANOUT_CO_TEST_CASE(cancel_before_the_time_means_the_callable_never_runs)
{
  auto ex = co_await asio::this_coro::executor;
  int calls = 0;
  auto h = fanout::call_later(ex, 2 * unit, [&calls] { ++calls; });
  co_await fanout::sleep(unit);
  const auto start = fanout::clock::now();
  h.cancel();
  BOOST_TEST(code_of(co_await exception_of(h)) == asio::error::operation_aborted);
  FANOUT_CHECK_ELAPSED(seconds_since(start), 0ms);
  co_await fanout::sleep(2 * unit); // past the time it was due
  BOOST_TEST(calls == 0);
}

FANOUT_CO_TEST_CASE(cancel_right_after_scheduling_means_the_callable_never_runs)
{
  auto ex = co_await asio::this_coro::executor;
  int calls = 0;
  auto h = fanout::call_later(ex, 0ms, [&calls] { ++calls; });
  h.cancel();
  BOOST_TEST(code_of(co_await exception_of(h)) == asio::error::operation_aborted);
  co_await fanout::sleep(unit);
  BOOST_TEST(calls == 0);
}

FANOUT_CO_TEST_CASE(call_at_with_a_time_already_past_runs_promptly_but_never_inside_the_call)
{
  auto ex = co_await asio::this_coro::executor;
  call_log log(fanout::clock::now());
  auto h = fanout::call_at(ex, fanout::clock::now() - 1s, [&log] { log.record(); });
  BOOST_TEST(log.count() == 0);
  co_await h.async_wait();
  BOOST_TEST_REQUIRE(log.count() == 1);
  FANOUT_CHECK_ELAPSED(log.times[0], 0ms);
}

FANOUT_CO_TEST_CASE(call_at_runs_the_callable_at_the_time_point_and_not_before)
{
  auto ex = co_await asio::this_coro::executor;
  const auto start = fanout::clock::now();
  call_log log(start);
  auto h = fanout::call_at(ex, start + 3 * unit, [&log] { log.record(); });
  co_await h.async_wait();
  BOOST_TEST_REQUIRE(log.count() == 1);
  FANOUT_CHECK_ELAPSED(log.times[0], 3 * unit);
}

FANOUT_CO_TEST_CASE(call_later_with_zero_or_negative_delay_runs_as_soon_as_possible)
{
  auto ex = co_await asio::this_coro::executor;
  int calls = 0;
  const auto start = fanout::clock::now();
  auto zero = fanout::call_later(ex, 0ms, [&calls] { ++calls; });
  auto negative = fanout::call_later(ex, -5s, [&calls] { ++calls; });
  BOOST_TEST(calls == 0);
  co_await zero.async_wait();
  co_await negative.async_wait();
  BOOST_TEST(calls == 2);
  FANOUT_CHECK_ELAPSED(seconds_since(start), 0ms);
}

FANOUT_CO_TEST_CASE(a_coroutine_callable_is_awaited_and_the_handle_completes_after_it)
{
  auto ex = co_await asio::this_coro::executor;
  bool finished = false;
  const auto start = fanout::clock::now();
  auto h = fanout::call_later(ex, unit, [&finished]() -> asio::awaitable<void> {
    co_await fanout::sleep(2 * unit);
    finished = true;
  });
  co_await h.async_wait();
  BOOST_TEST(finished);
  FANOUT_CHECK_ELAPSED(seconds_since(start), 3 * unit);
}

FANOUT_CO_TEST_CASE(awaiting_the_handle_rethrows_what_the_callable_threw)
{
  auto ex = co_await asio::this_coro::executor;
  auto plain = fanout::call_later(ex, 1ms, [] { throw std::runtime_error("plain boom"); });
  auto coroutine = fanout::call_later(ex, 1ms, []() -> asio::awaitable<void> {
    co_await fanout::sleep(1ms);
    throw std::runtime_error("coroutine boom");
  });
  BOOST_CHECK_EXCEPTION(co_await plain.async_wait(), std::runtime_error,
                        [](const std::runtime_error& e) { return std::string(e.what()) == "plain boom"; });
  BOOST_CHECK_EXCEPTION(co_await coroutine.async_wait(), std::runtime_error,
                        [](const std::runtime_error& e) { return std::string(e.what()) == "coroutine boom"; });
}

FANOUT_CO_TEST_CASE(dropping_the_handle_leaves_the_call_scheduled)
{
  auto ex = co_await asio::this_coro::executor;
  auto calls = std::make_shared<int>(0);
  (void)fanout::call_later(ex, unit, [calls] { ++*calls; });
  co_await fanout::sleep(3 * unit);
  BOOST_TEST(*calls == 1);
}

FANOUT_CO_TEST_CASE(cancelling_a_coroutine_callable_in_progress_ends_it_at_its_next_suspension)
{
  auto ex = co_await asio::this_coro::executor;
  bool started = false;
  bool finished = false;
  auto h = fanout::call_later(ex, 0ms, [&]() -> asio::awaitable<void> {
    started = true;
    co_await fanout::sleep(10s);
    finished = true;
  });
  co_await fanout::sleep(unit);
  BOOST_TEST(started);
  const auto start = fanout::clock::now();
  h.cancel();
  BOOST_TEST(code_of(co_await exception_of(h)) == asio::error::operation_aborted);
  FANOUT_CHECK_ELAPSED(seconds_since(start), 0ms);
  BOOST_TEST(!finished);
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(call_every)

FANOUT_CO_TEST_CASE(call_every_fires_about_once_per_period_and_stops_for_good_on_cancel)
{
  auto ex = co_await asio::this_coro::executor;
  constexpr auto period = unit / 5; // 10 ms
  const auto start = fanout::clock::now();
  call_log log(start);
  auto h = fanout::call_every(ex, period, [&log] { log.record(); });
  co_await fanout::sleep(10 * period + period / 2);
  const int count = log.count();
  const double elapsed = seconds_since(start);
  const int expected = static_cast<int>(std::floor(elapsed / seconds_of(period)));
  BOOST_TEST_MESSAGE("call_every: " << count << " calls in " << elapsed << " s; " << expected << " due");
  BOOST_TEST(count >= expected - 2);
  BOOST_TEST(count <= expected + 2);
  BOOST_TEST(count >= 8);
  // The first call is due one period after the start, not at once.
  BOOST_TEST_REQUIRE(count >= 1);
  BOOST_TEST(log.times[0] >= seconds_of(period) * 0.98);

  h.cancel();
  BOOST_TEST(code_of(co_await exception_of(h)) == asio::error::operation_aborted);
  const int at_cancel = log.count();
  co_await fanout::sleep(5 * period);
  BOOST_TEST(log.count() == at_cancel);
  BOOST_TEST(h.done());
}

FANOUT_CO_TEST_CASE(call_every_does_not_drift_when_each_call_takes_time)
{
  // 100 periods of 5 ms with calls that block ~1 ms each: a schedule that
  // slept a period after each call would make its 100th call >= 100 ms late.
  auto ex = co_await asio::this_coro::executor;
  constexpr auto period = 5ms;
  const auto start = fanout::clock::now();
  call_log log(start);
  auto h = fanout::call_every(ex, period, [&log] {
    log.record();
    std::this_thread::sleep_for(1ms);
  });
  while (log.count() < 100)
    co_await fanout::sleep(period);
  h.cancel();
  BOOST_TEST(code_of(co_await exception_of(h)) == asio::error::operation_aborted);

  // Call k is never early: it is due start + k * period at the soonest.
  int early = 0;
  for (int k = 1; k <= log.count(); ++k)
    if (log.times[static_cast<std::size_t>(k - 1)] < seconds_of(k * period) - 1e-4)
      ++early;
  BOOST_TEST(early == 0);
  // Ticks skipped because a loaded machine preempted the event loop for more
  // than a period show as gaps of about two periods or more; they are not
  // drift, so the 100th call's lateness is measured net of them.
  int skipped = 0;
  for (std::size_t k = 1; k < 100; ++k) {
    const double gap = (log.times[k] - log.times[k - 1]) / seconds_of(period);
    skipped += std::max(0, static_cast<int>(std::lround(gap)) - 1);
  }
  const double lateness = log.times[99] - seconds_of(100 * period);
  const double net = lateness - skipped * seconds_of(period);
  BOOST_TEST_MESSAGE("call_every: the 100th call came " << lateness * 1e3 << " ms after its due time; " << skipped
                                                        << " ticks skipped; " << net * 1e3 << " ms net");
  BOOST_TEST(lateness >= -1e-4);
  BOOST_TEST(net < 0.060); // not 100 x 1 ms
}

FANOUT_CO_TEST_CASE(call_every_awaits_a_coroutine_callable_so_calls_never_overlap)
{
  auto ex = co_await asio::this_coro::executor;
  constexpr auto period = unit / 5;
  int running = 0;
  int most = 0;
  int calls = 0;
  auto h = fanout::call_every(ex, period, [&]() -> asio::awaitable<void> {
    ++calls;
    most = std::max(most, ++running);
    struct leave
    {
      int& count;
      ~leave() { --count; }
    } guard{running};
    co_await fanout::sleep(period * 5 / 2); // each call overruns by 1.5 periods
  });
  co_await fanout::sleep(12 * period);
  h.cancel();
  BOOST_TEST(code_of(co_await exception_of(h)) == asio::error::operation_aborted);
  BOOST_TEST(most == 1);
  BOOST_TEST(running == 0); // the call in progress was cancelled and left
  // A call every 2.5 periods at most: about 4 in 12 periods (10 if ticks overlapped or burst).
  BOOST_TEST_MESSAGE("call_every with overrunning calls: " << calls << " calls in 12 periods");
  BOOST_TEST(calls >= 2);
  BOOST_TEST(calls <= 6);
}

FANOUT_CO_TEST_CASE(an_overrun_skips_the_missed_ticks_instead_of_running_them_in_a_burst)
{
  // The first call blocks for 5.5 periods; later ones are instant. Running
  // every missed tick would make four or five calls at once when it ends.
  auto ex = co_await asio::this_coro::executor;
  constexpr auto period = unit;
  const auto start = fanout::clock::now();
  call_log log(start);
  auto h = fanout::call_every(ex, period, [&log, period] {
    log.record();
    if (log.count() == 1)
      std::this_thread::sleep_for(period * 11 / 2);
  });
  co_await fanout::sleep(9 * period + period / 2);
  h.cancel();
  BOOST_TEST(code_of(co_await exception_of(h)) == asio::error::operation_aborted);
  std::string times;
  for (double t : log.times)
    times += std::to_string(t / seconds_of(period)) + " ";
  BOOST_TEST_MESSAGE("call_every after a 5.5-period overrun: calls at (in periods) " << times);
  const double overrun_end = seconds_of(period * 13 / 2); // 1 + 5.5 periods
  int soon_after = 0;
  for (double t : log.times)
    if (t >= overrun_end - 1e-3 && t < overrun_end + seconds_of(period) * 0.9)
      ++soon_after;
  BOOST_TEST(soon_after <= 2);
  // Ticks 7, 8, 9 (and at most one late catch-up) after the first call.
  BOOST_TEST(log.count() >= 3);
  BOOST_TEST(log.count() <= 5);
}

FANOUT_CO_TEST_CASE(after_an_overrun_the_schedule_resumes_at_the_next_due_time_on_its_grid)
{
  // The header: "the missed ticks are skipped, not run in a burst; the
  // schedule resumes at the next due time". The first call (due at 1 period)
  // takes 2.5 periods, ending at 3.5: the ticks due at 2 and 3 were missed,
  // so the next call is due at 4 periods, not at once.
  auto ex = co_await asio::this_coro::executor;
  constexpr auto period = 2 * unit;
  const auto start = fanout::clock::now();
  call_log log(start);
  auto h = fanout::call_every(ex, period, [&log, period]() -> asio::awaitable<void> {
    log.record();
    if (log.count() == 1)
      co_await fanout::sleep(period * 5 / 2);
  });
  co_await fanout::sleep(5 * period + period / 2);
  h.cancel();
  BOOST_TEST(code_of(co_await exception_of(h)) == asio::error::operation_aborted);
  std::string times;
  for (double t : log.times)
    times += std::to_string(t / seconds_of(period)) + " ";
  BOOST_TEST_MESSAGE("call_every after a 2.5-period overrun: calls at (in periods) " << times);
  BOOST_TEST_REQUIRE(log.count() >= 2);
  BOOST_TEST(log.times[1] >= seconds_of(4 * period) * 0.98);
  // Every call lands on the grid start + k * period (a little late at most).
  for (double t : log.times) {
    const double phase = std::fmod(t, seconds_of(period)) / seconds_of(period);
    BOOST_TEST(phase < 0.3, "a call at " << t / seconds_of(period) << " periods is off the grid");
  }
}

FANOUT_CO_TEST_CASE(call_every_with_a_zero_or_negative_period_throws_invalid_argument)
{
  auto ex = co_await asio::this_coro::executor;
  int calls = 0;
  auto is_invalid = [](const boost::system::system_error& e) { return e.code() == fanout::error::invalid_argument; };
  BOOST_CHECK_EXCEPTION((void)fanout::call_every(ex, 0ms, [&calls] { ++calls; }), boost::system::system_error,
                        is_invalid);
  BOOST_CHECK_EXCEPTION((void)fanout::call_every(ex, -1ms, [&calls] { ++calls; }), boost::system::system_error,
                        is_invalid);
  BOOST_CHECK_EXCEPTION((void)fanout::call_every(ex, std::chrono::nanoseconds(0), [&calls] { ++calls; }),
                        boost::system::system_error, is_invalid);
  co_await fanout::sleep(unit);
  BOOST_TEST(calls == 0);
}

FANOUT_CO_TEST_CASE(an_exception_from_the_callable_ends_the_schedule_and_is_rethrown_by_awaiting_the_handle)
{
  auto ex = co_await asio::this_coro::executor;
  int calls = 0;
  auto h = fanout::call_every(ex, 5ms, [&calls] {
    if (++calls == 3)
      throw std::runtime_error("third call");
  });
  const auto start = fanout::clock::now();
  BOOST_CHECK_EXCEPTION(co_await h.async_wait(), std::runtime_error,
                        [](const std::runtime_error& e) { return std::string(e.what()) == "third call"; });
  BOOST_TEST(seconds_since(start) < 2.0);
  BOOST_TEST(calls == 3);
  co_await fanout::sleep(unit);
  BOOST_TEST(calls == 3); // the schedule ended
}

FANOUT_CO_TEST_CASE(an_exception_from_a_coroutine_callable_ends_the_schedule_too)
{
  auto ex = co_await asio::this_coro::executor;
  int calls = 0;
  auto h = fanout::call_every(ex, 5ms, [&calls]() -> asio::awaitable<void> {
    co_await fanout::sleep(1ms);
    if (++calls == 2)
      throw std::logic_error("second call");
  });
  BOOST_CHECK_THROW(co_await h.async_wait(), std::logic_error);
  co_await fanout::sleep(unit);
  BOOST_TEST(calls == 2);
}

BOOST_AUTO_TEST_CASE(call_every_on_a_thread_pool_never_overlaps_its_calls, *boost::unit_test::timeout(60))
{
  asio::thread_pool pool(4);
  std::atomic<int> running{0};
  std::atomic<int> most{0};
  std::atomic<int> calls{0};
  auto h = fanout::call_every(pool.get_executor(), 2ms, [&] {
    const int now = ++running;
    int seen = most.load();
    while (now > seen && !most.compare_exchange_weak(seen, now)) {
    }
    std::this_thread::sleep_for(3ms);
    ++calls;
    --running;
  });
  std::this_thread::sleep_for(4 * unit);
  h.cancel();
  auto done = asio::co_spawn(
      pool, [](fanout::task<void> t) -> asio::awaitable<void> { co_await t.async_wait(); }(h), asio::use_future);
  BOOST_CHECK_EXCEPTION(done.get(), boost::system::system_error, [](const boost::system::system_error& e) {
    return e.code() == asio::error::operation_aborted;
  });
  const int at_cancel = calls.load();
  std::this_thread::sleep_for(unit);
  BOOST_TEST(calls.load() == at_cancel);
  BOOST_TEST(most.load() == 1);
  BOOST_TEST(calls.load() >= 5);
  pool.join();
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE_END() // schedule_tests
