#include <fanout/async_mutex.hpp>

#include <boost/test/unit_test.hpp>

#include "support/co_test.hpp"
#include "support/outcomes.hpp"
#include "support/ranges.hpp"
#include "support/recorded.hpp"
#include "support/run_until.hpp"
#include "support/stress.hpp"
#include "support/tracker.hpp"

#include <fanout/async_map.hpp>
#include <fanout/run.hpp>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/bind_executor.hpp>
#include <boost/asio/cancellation_signal.hpp>
#include <boost/asio/cancellation_type.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/system/error_code.hpp>

#include <chrono>
#include <exception>
#include <memory>
#include <optional>
#include <utility>
#include <vector>

// fanout::async_mutex: the lock given at once or in FIFO order, scoped locks
// that unlock, cancellation at every stage, destruction of the mutex and of
// the context, and mutual exclusion on a thread pool.
//
// Every suite sits in its own top-level suite (and namespace): the suites are
// compiled together in unity batches (test/CMakeLists.txt).
BOOST_AUTO_TEST_SUITE(async_mutex_tests)

namespace asio = boost::asio;
using boost::system::error_code;
using fanout::async_mutex;
using fanout::test::code_of;
using fanout::test::in_flight;
using fanout::test::record_into;
using fanout::test::recorded;
using fanout::test::run_until;
using fanout::test::tracker;

namespace {

// Adds @p n to @p counter (a plain int) one at a time, each under the lock
// and across a suspension that lets the other coroutines run.
asio::awaitable<void> add_under_lock(async_mutex& m, int& counter, tracker& holders, int n)
{
  for (int i = 0; i < n; ++i) {
    auto lock = co_await m.async_lock();
    const in_flight scope(holders);
    const int seen = counter;
    co_await asio::post(co_await asio::this_coro::executor, asio::use_awaitable);
    counter = seen + 1;
  }
}

} // namespace

FANOUT_CO_TEST_CASE(co_await_async_lock_gives_a_lock_that_unlocks_when_destroyed)
{
  async_mutex m;
  {
    auto lock = co_await m.async_lock();
    BOOST_TEST(lock.owns_lock());
    BOOST_TEST(m.is_locked());
  }
  BOOST_TEST(!m.is_locked());
}

BOOST_AUTO_TEST_CASE(a_free_mutex_is_taken_at_once_but_the_completion_is_posted)
{
  asio::io_context ctx{1};
  async_mutex m;
  recorded<async_mutex::scoped_lock> l;
  m.async_lock(record_into(ctx, l));
  BOOST_TEST(l.calls == 0);
  BOOST_TEST(m.is_locked());
  ctx.run();
  BOOST_TEST(l.calls == 1);
  BOOST_TEST(!l.ec);
  BOOST_TEST(l.value.owns_lock());
}

BOOST_AUTO_TEST_CASE(waiters_get_the_lock_in_fifo_order)
{
  asio::io_context ctx{1};
  async_mutex m;
  auto first = m.try_lock();
  BOOST_TEST_REQUIRE(first.has_value());
  std::vector<int> order;
  for (int i = 0; i < 5; ++i)
    m.async_lock(asio::bind_executor(ctx.get_executor(), [&order, i](error_code ec, async_mutex::scoped_lock) {
      if (!ec)
        order.push_back(i); // unlocked here: the next waiter gets it
    }));
  BOOST_TEST(m.waiting() == 5U);
  first.reset();
  ctx.run();
  BOOST_TEST(order == (std::vector<int>{0, 1, 2, 3, 4}));
  BOOST_TEST(!m.is_locked());
}

BOOST_AUTO_TEST_CASE(try_lock_fails_while_locked_and_never_overtakes_a_waiter)
{
  asio::io_context ctx{1};
  async_mutex m;
  auto held = m.try_lock();
  BOOST_TEST(held.has_value());
  BOOST_TEST(!m.try_lock().has_value());
  recorded<async_mutex::scoped_lock> waiter;
  m.async_lock(record_into(ctx, waiter));
  held.reset(); // handed to the waiter
  BOOST_TEST(!m.try_lock().has_value());
  ctx.run();
  BOOST_TEST(waiter.value.owns_lock());
}

BOOST_AUTO_TEST_CASE(a_scoped_lock_unlocks_when_unlocked_or_moved_onto_and_moves_ownership)
{
  async_mutex m;
  auto a = *m.try_lock();
  a.unlock();
  BOOST_TEST(!a.owns_lock());
  BOOST_TEST(!m.is_locked());
  auto b = *m.try_lock();
  async_mutex::scoped_lock c = std::move(b);
  BOOST_TEST(!b.owns_lock());
  BOOST_TEST(c.owns_lock());
  BOOST_TEST(m.is_locked());
  c = async_mutex::scoped_lock();
  BOOST_TEST(!m.is_locked());
}

BOOST_AUTO_TEST_CASE(a_coroutine_cancelled_before_it_asks_for_the_lock_takes_none)
{
  asio::io_context ctx{1};
  async_mutex m;
  asio::cancellation_signal signal;
  std::exception_ptr error;
  bool started = false;
  bool got_lock = false;
  asio::co_spawn(
      ctx,
      [&]() -> asio::awaitable<void> {
        started = true;
        asio::steady_timer timer(co_await asio::this_coro::executor, std::chrono::hours(1));
        (void)co_await timer.async_wait(asio::as_tuple(asio::use_awaitable));
        auto lock = co_await m.async_lock();
        got_lock = lock.owns_lock();
      },
      asio::bind_cancellation_slot(signal.slot(), [&](std::exception_ptr e) { error = e; }));
  BOOST_TEST(run_until(ctx, [&] { return started; }));
  signal.emit(asio::cancellation_type::terminal);
  ctx.run();
  BOOST_TEST(code_of(error) == asio::error::operation_aborted);
  BOOST_TEST(!got_lock);
  BOOST_TEST(!m.is_locked());
}

BOOST_AUTO_TEST_CASE(a_waiter_cancelled_while_queued_leaves_without_the_lock_and_the_next_waiter_gets_it)
{
  asio::io_context ctx{1};
  async_mutex m;
  auto held = m.try_lock();
  asio::cancellation_signal signal;
  recorded<async_mutex::scoped_lock> cancelled;
  recorded<async_mutex::scoped_lock> next;
  m.async_lock(asio::bind_cancellation_slot(signal.slot(), record_into(ctx, cancelled)));
  m.async_lock(record_into(ctx, next));
  signal.emit(asio::cancellation_type::terminal);
  BOOST_TEST(m.waiting() == 1U);
  held.reset();
  ctx.run();
  BOOST_TEST(cancelled.ec == asio::error::operation_aborted);
  BOOST_TEST(!cancelled.value.owns_lock());
  BOOST_TEST(next.value.owns_lock());
}

BOOST_AUTO_TEST_CASE(a_cancellation_after_the_lock_was_given_has_no_effect)
{
  asio::io_context ctx{1};
  async_mutex m;
  auto held = m.try_lock();
  asio::cancellation_signal signal;
  recorded<async_mutex::scoped_lock> l;
  m.async_lock(asio::bind_cancellation_slot(signal.slot(), record_into(ctx, l)));
  held.reset();
  signal.emit(asio::cancellation_type::terminal);
  ctx.run();
  BOOST_TEST(!l.ec);
  BOOST_TEST(l.value.owns_lock());
  l.value.unlock();
  BOOST_TEST(!m.is_locked());
}

BOOST_AUTO_TEST_CASE(destroying_the_mutex_completes_its_waiters_with_operation_aborted)
{
  asio::io_context ctx{1};
  recorded<async_mutex::scoped_lock> waiter;
  std::optional<async_mutex::scoped_lock> held;
  {
    async_mutex m;
    held = m.try_lock();
    m.async_lock(record_into(ctx, waiter));
  }
  ctx.run();
  BOOST_TEST(waiter.ec == asio::error::operation_aborted);
  BOOST_TEST(!waiter.value.owns_lock());
  BOOST_TEST(held->owns_lock());
}

BOOST_AUTO_TEST_CASE(destroying_the_context_while_a_coroutine_waits_for_the_lock_frees_its_frame_and_runs_no_handler)
{
  async_mutex m;
  auto held = m.try_lock();
  auto owned = std::make_shared<int>(0);
  const std::weak_ptr<int> frame_alive = owned;
  int calls = 0;
  {
    asio::io_context ctx{1};
    asio::co_spawn(
        ctx,
        [](async_mutex& mutex, std::shared_ptr<int>) -> asio::awaitable<void> {
          auto lock = co_await mutex.async_lock();
        }(m, std::move(owned)),
        [&calls](std::exception_ptr) { ++calls; });
    BOOST_TEST(run_until(ctx, [&] { return m.waiting() == 1U; }));
  }
  BOOST_TEST(calls == 0);
  BOOST_TEST(frame_alive.expired());
  BOOST_TEST(m.waiting() == 0U);
  held.reset();
  BOOST_TEST(!m.is_locked());
}

// Eight coroutines on a 4-thread pool each add 200 to a plain int, reading it
// before a suspension and writing it after, under the lock: no update is lost
// and at most one coroutine is ever inside (TSan sees no race on the int).
BOOST_AUTO_TEST_CASE(the_mutex_keeps_a_plain_counter_exact_across_suspensions_on_a_thread_pool,
                     *boost::unit_test::timeout(120))
{
  constexpr int rounds = 10;
  constexpr int coroutines = 8;
  constexpr int adds = 200;
  for (int round = 0; round < rounds; ++round) {
    async_mutex m;
    int counter = 0;
    tracker holders;
    fanout::test::stress::run_in(fanout::test::stress::threads::pool, [&]() -> asio::awaitable<int> {
      co_await fanout::async_map([&](int) { return add_under_lock(m, counter, holders, adds); },
                                 fanout::test::iota(0, coroutines));
      co_return 0;
    }());
    BOOST_TEST(counter == coroutines * adds);
    BOOST_TEST(holders.most.load() == 1);
    BOOST_TEST(!m.is_locked());
    BOOST_TEST(m.waiting() == 0U);
  }
}

BOOST_AUTO_TEST_SUITE_END() // async_mutex_tests
