#include <fanout/event.hpp>

#include <boost/test/unit_test.hpp>

#include "support/co_test.hpp"
#include "support/outcomes.hpp"
#include "support/recorded.hpp"
#include "support/run_until.hpp"

#include <fanout/run.hpp>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/cancellation_signal.hpp>
#include <boost/asio/cancellation_type.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/thread_pool.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <atomic>
#include <chrono>
#include <exception>
#include <memory>
#include <vector>

// fanout::event: set wakes every waiter, waits on a set event pass, clear,
// cancellation at every stage, destruction of the event and of the context,
// and many waiters woken across a thread pool.
//
// Every suite sits in its own top-level suite (and namespace): the suites are
// compiled together in unity batches (test/CMakeLists.txt).
BOOST_AUTO_TEST_SUITE(event_tests)

namespace asio = boost::asio;
using namespace std::chrono_literals;
using fanout::event;
using fanout::test::code_of;
using fanout::test::record_into;
using fanout::test::recorded;
using fanout::test::run_until;
using fanout::test::wait_until;

FANOUT_CO_TEST_CASE(co_await_async_wait_resumes_once_the_event_is_set)
{
  event ev;
  auto ex = co_await asio::this_coro::executor;
  asio::post(ex, [&ev] { ev.set(); });
  co_await ev.async_wait();
  BOOST_TEST(ev.is_set());
}

BOOST_AUTO_TEST_CASE(set_wakes_every_waiter_with_success)
{
  asio::io_context ctx{1};
  event ev;
  std::vector<recorded<>> waits(3);
  for (auto& w : waits)
    ev.async_wait(record_into(ctx, w));
  ctx.poll();
  BOOST_TEST(ev.waiting() == 3U);
  BOOST_TEST(waits[0].calls == 0);
  ev.set();
  BOOST_TEST(ev.waiting() == 0U);
  ctx.run();
  for (const auto& w : waits) {
    BOOST_TEST(w.calls == 1);
    BOOST_TEST(!w.ec);
  }
}

BOOST_AUTO_TEST_CASE(a_wait_on_a_set_event_completes_at_once_but_is_posted)
{
  asio::io_context ctx{1};
  event ev;
  ev.set();
  recorded<> w;
  ev.async_wait(record_into(ctx, w));
  BOOST_TEST(w.calls == 0);
  BOOST_TEST(ev.waiting() == 0U);
  ctx.run();
  BOOST_TEST(w.calls == 1);
  BOOST_TEST(!w.ec);
}

BOOST_AUTO_TEST_CASE(clear_makes_later_waits_wait_for_the_next_set)
{
  asio::io_context ctx{1};
  event ev;
  ev.set();
  BOOST_TEST(ev.is_set());
  ev.clear();
  BOOST_TEST(!ev.is_set());
  recorded<> w;
  ev.async_wait(record_into(ctx, w));
  ctx.poll();
  BOOST_TEST(w.calls == 0);
  ev.set();
  ctx.run();
  BOOST_TEST(w.calls == 1);
}

BOOST_AUTO_TEST_CASE(a_wait_cancelled_while_parked_completes_with_operation_aborted_and_leaves_the_others)
{
  asio::io_context ctx{1};
  event ev;
  asio::cancellation_signal signal;
  recorded<> cancelled;
  recorded<> other;
  ev.async_wait(asio::bind_cancellation_slot(signal.slot(), record_into(ctx, cancelled)));
  ev.async_wait(record_into(ctx, other));
  signal.emit(asio::cancellation_type::terminal);
  BOOST_TEST(ev.waiting() == 1U);
  ctx.poll();
  BOOST_TEST(cancelled.ec == asio::error::operation_aborted);
  BOOST_TEST(other.calls == 0);
  ev.set();
  ctx.run();
  BOOST_TEST(cancelled.calls == 1);
  BOOST_TEST(other.calls == 1);
  BOOST_TEST(!other.ec);
}

BOOST_AUTO_TEST_CASE(a_coroutine_cancelled_before_it_waits_throws_operation_aborted_without_parking)
{
  asio::io_context ctx{1};
  event ev;
  asio::cancellation_signal signal;
  std::exception_ptr error;
  bool started = false;
  bool passed = false;
  asio::co_spawn(
      ctx,
      [&]() -> asio::awaitable<void> {
        started = true;
        asio::steady_timer timer(co_await asio::this_coro::executor, std::chrono::hours(1));
        (void)co_await timer.async_wait(asio::as_tuple(asio::use_awaitable));
        co_await ev.async_wait();
        passed = true;
      },
      asio::bind_cancellation_slot(signal.slot(), [&](std::exception_ptr e) { error = e; }));
  BOOST_TEST(run_until(ctx, [&] { return started; }));
  signal.emit(asio::cancellation_type::terminal);
  ctx.run();
  BOOST_TEST(code_of(error) == asio::error::operation_aborted);
  BOOST_TEST(!passed);
  BOOST_TEST(ev.waiting() == 0U);
}

BOOST_AUTO_TEST_CASE(a_cancellation_after_set_woke_the_wait_has_no_effect)
{
  asio::io_context ctx{1};
  event ev;
  asio::cancellation_signal signal;
  recorded<> w;
  ev.async_wait(asio::bind_cancellation_slot(signal.slot(), record_into(ctx, w)));
  ev.set();
  signal.emit(asio::cancellation_type::terminal);
  ctx.run();
  BOOST_TEST(w.calls == 1);
  BOOST_TEST(!w.ec);
}

BOOST_AUTO_TEST_CASE(destroying_the_event_completes_its_waiters_with_operation_aborted)
{
  asio::io_context ctx{1};
  recorded<> w;
  {
    event ev;
    ev.async_wait(record_into(ctx, w));
  }
  ctx.run();
  BOOST_TEST(w.calls == 1);
  BOOST_TEST(w.ec == asio::error::operation_aborted);
}

BOOST_AUTO_TEST_CASE(destroying_the_context_while_a_coroutine_waits_frees_its_frame_and_runs_no_handler)
{
  event ev;
  auto owned = std::make_shared<int>(0);
  const std::weak_ptr<int> frame_alive = owned;
  int calls = 0;
  {
    asio::io_context ctx{1};
    asio::co_spawn(
        ctx,
        [](event& e, std::shared_ptr<int>) -> asio::awaitable<void> { co_await e.async_wait(); }(ev, std::move(owned)),
        [&calls](std::exception_ptr) { ++calls; });
    BOOST_TEST(run_until(ctx, [&] { return ev.waiting() == 1U; }));
  }
  BOOST_TEST(calls == 0);
  BOOST_TEST(frame_alive.expired());
  BOOST_TEST(ev.waiting() == 0U);
  ev.set(); // nobody left to wake
}

// Many rounds on a 4-thread pool: 20 coroutines wait on strands of the pool,
// one set() from another thread wakes each exactly once.
BOOST_AUTO_TEST_CASE(one_set_wakes_every_waiter_exactly_once_on_a_thread_pool, *boost::unit_test::timeout(120))
{
  constexpr int rounds = 50;
  constexpr int waiters = 20;
  asio::thread_pool pool(4);
  int wrong = 0;
  for (int round = 0; round < rounds; ++round) {
    event ev;
    std::atomic<int> parked{0};
    std::atomic<int> woke{0};
    for (int i = 0; i < waiters; ++i)
      asio::co_spawn(
          asio::make_strand(pool),
          [&]() -> asio::awaitable<void> {
            ++parked;
            co_await ev.async_wait();
            ++woke;
          },
          [](const std::exception_ptr& e) {
            if (e)
              std::rethrow_exception(e);
          });
    if (!wait_until([&] { return parked.load() == waiters; }, 10s))
      ++wrong;
    std::atomic<bool> set_returned{false};
    asio::post(pool, [&ev, &set_returned] {
      ev.set();
      set_returned = true;
    });
    if (!wait_until([&] { return woke.load() == waiters && set_returned.load(); }, 10s))
      ++wrong;
    wrong += ev.waiting() == 0U ? 0 : 1;
  }
  pool.join();
  BOOST_TEST(wrong == 0);
}

BOOST_AUTO_TEST_SUITE_END() // event_tests
