// The task_group suites' helpers (task_group_join, task_group_failures,
// task_group_nesting_and_scopes): tasks that fail or linger when cancelled,
// cancelling an operation from outside, and test bodies run on one thread and
// on a 4-thread pool.
#pragma once

#include "outcomes.hpp"
#include "tracker.hpp"

#include <fanout/run.hpp>
#include <fanout/sleep.hpp>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/cancellation_signal.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/thread_pool.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/use_future.hpp>
#include <boost/system/system_error.hpp>
#include <boost/test/unit_test.hpp>

#include <chrono>
#include <exception>
#include <future>
#include <memory>
#include <tuple>
#include <utility>

namespace fanout::test {

namespace asio = boost::asio;
using namespace std::chrono_literals;

// When cancelled, fails with its own tagged_error instead of operation_aborted.
inline asio::awaitable<void> throws_when_cancelled(tracker& t, int tag)
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
inline asio::awaitable<void> slow_to_cancel(tracker& t, fanout::clock::duration cleanup)
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
inline std::pair<const void*, int> tagged_of(const std::exception_ptr& e)
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
inline void run_on_pool(asio::awaitable<void> body)
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

} // namespace fanout::test

// Declares a coroutine test body run twice: on a fresh io_context (one
// thread), and on a thread_pool(4).
#define GROUP_TEST_CASE(name)                                                                                          \
  static boost::asio::awaitable<void> name##_body();                                                                   \
  BOOST_AUTO_TEST_CASE(name, *boost::unit_test::timeout(60))                                                           \
  {                                                                                                                    \
    fanout::run(name##_body());                                                                                        \
  }                                                                                                                    \
  BOOST_AUTO_TEST_CASE(name##_on_a_thread_pool, *boost::unit_test::timeout(60))                                        \
  {                                                                                                                    \
    ::fanout::test::run_on_pool(name##_body());                                                                        \
  }                                                                                                                    \
  static boost::asio::awaitable<void> name##_body()
