#include <fanout/limiter.hpp>

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
#include <boost/asio/use_future.hpp>
#include <boost/system/error_code.hpp>

#include <algorithm>
#include <chrono>
#include <exception>
#include <memory>
#include <optional>
#include <utility>
#include <vector>

// fanout::limiter: places given at once or in FIFO order, permits that give
// them back, resize, cancellation at every stage, destruction of the limiter
// and of the context, and a shared limit on a thread pool.
//
// Every suite sits in its own top-level suite (and namespace): the suites are
// compiled together in unity batches (test/CMakeLists.txt).
BOOST_AUTO_TEST_SUITE(limiter_tests)

namespace asio = boost::asio;
using boost::system::error_code;
using fanout::limiter;
using fanout::test::code_of;
using fanout::test::in_flight;
using fanout::test::record_into;
using fanout::test::recorded;
using fanout::test::run_until;
using fanout::test::tracker;

namespace {

// A holder: takes a place, stays in flight across a suspension, gives it back.
asio::awaitable<void> holder(limiter& lim, tracker& t)
{
  auto permit = co_await lim.acquire();
  const in_flight scope(t);
  co_await asio::post(co_await asio::this_coro::executor, asio::use_awaitable);
}

} // namespace

FANOUT_CO_TEST_CASE(co_await_acquire_gives_a_permit_that_holds_a_place_until_destroyed)
{
  limiter lim(2);
  {
    auto permit = co_await lim.acquire();
    BOOST_TEST(permit.holds());
    BOOST_TEST(lim.in_use() == 1U);
  }
  BOOST_TEST(lim.in_use() == 0U);
}

BOOST_AUTO_TEST_CASE(a_free_place_is_taken_at_once_but_the_completion_is_posted)
{
  asio::io_context ctx{1};
  limiter lim(1);
  recorded<limiter::permit> a;
  lim.async_acquire(record_into(ctx, a));
  BOOST_TEST(a.calls == 0);
  BOOST_TEST(lim.in_use() == 1U);
  ctx.run();
  BOOST_TEST(a.calls == 1);
  BOOST_TEST(!a.ec);
  BOOST_TEST(a.value.holds());
}

BOOST_AUTO_TEST_CASE(the_use_future_token_gives_plain_synchronous_code_a_permit)
{
  limiter lim(1);
  auto first = lim.async_acquire(asio::use_future).get();
  BOOST_TEST(first.holds());
  auto second = lim.async_acquire(asio::use_future);
  BOOST_TEST(lim.waiting() == 1U);
  first.release();
  const auto permit = second.get();
  BOOST_TEST(permit.holds());
  BOOST_TEST(lim.in_use() == 1U);
}

BOOST_AUTO_TEST_CASE(waiters_get_places_in_fifo_order)
{
  asio::io_context ctx{1};
  limiter lim(1);
  auto first = lim.try_acquire();
  BOOST_TEST_REQUIRE(first.has_value());
  std::vector<int> order;
  for (int i = 0; i < 5; ++i)
    lim.async_acquire(asio::bind_executor(ctx.get_executor(), [&order, i](error_code ec, limiter::permit) {
      if (!ec)
        order.push_back(i); // the permit goes here: the next waiter gets the place
    }));
  BOOST_TEST(lim.waiting() == 5U);
  first.reset();
  ctx.run();
  BOOST_TEST(order == (std::vector<int>{0, 1, 2, 3, 4}));
  BOOST_TEST(lim.in_use() == 0U);
}

BOOST_AUTO_TEST_CASE(try_acquire_takes_a_free_place_and_never_overtakes_a_waiter)
{
  asio::io_context ctx{1};
  limiter lim(1);
  auto held = lim.try_acquire();
  BOOST_TEST(held.has_value());
  BOOST_TEST(!lim.try_acquire().has_value());
  recorded<limiter::permit> waiter;
  lim.async_acquire(record_into(ctx, waiter));
  held.reset(); // the place goes to the waiter, not to the next try_acquire
  BOOST_TEST(!lim.try_acquire().has_value());
  ctx.run();
  BOOST_TEST(waiter.value.holds());
  BOOST_TEST(lim.in_use() == 1U);
}

BOOST_AUTO_TEST_CASE(a_permit_gives_its_place_back_when_released_moved_onto_or_destroyed)
{
  limiter lim(3);
  auto a = *lim.try_acquire();
  auto b = *lim.try_acquire();
  auto c = *lim.try_acquire();
  BOOST_TEST(lim.in_use() == 3U);
  a.release();
  BOOST_TEST(!a.holds());
  BOOST_TEST(lim.in_use() == 2U);
  b = std::move(c); // b's place goes back, c's moves into b
  BOOST_TEST(!c.holds());
  BOOST_TEST(b.holds());
  BOOST_TEST(lim.in_use() == 1U);
  {
    const limiter::permit gone = std::move(b);
  }
  BOOST_TEST(lim.in_use() == 0U);
}

BOOST_AUTO_TEST_CASE(a_limiter_of_zero_gives_no_place_until_resized)
{
  asio::io_context ctx{1};
  limiter lim(0);
  BOOST_TEST(!lim.try_acquire().has_value());
  recorded<limiter::permit> a;
  lim.async_acquire(record_into(ctx, a));
  ctx.poll();
  BOOST_TEST(a.calls == 0);
  lim.resize(1);
  ctx.run();
  BOOST_TEST(a.value.holds());
}

BOOST_AUTO_TEST_CASE(growing_gives_the_new_places_to_waiters_at_once)
{
  asio::io_context ctx{1};
  limiter lim(1);
  auto held = lim.try_acquire();
  std::vector<recorded<limiter::permit>> waiters(3);
  for (auto& w : waiters)
    lim.async_acquire(record_into(ctx, w));
  lim.resize(3);
  BOOST_TEST(lim.in_use() == 3U);
  BOOST_TEST(lim.waiting() == 1U);
  ctx.poll(); // the third still waits, holding work on ctx
  BOOST_TEST(waiters[0].value.holds());
  BOOST_TEST(waiters[1].value.holds());
  BOOST_TEST(waiters[2].calls == 0);
  BOOST_TEST(lim.capacity() == 3U);
}

BOOST_AUTO_TEST_CASE(after_shrinking_below_in_use_no_place_is_given_until_in_use_is_below_the_new_capacity)
{
  asio::io_context ctx{1};
  limiter lim(3);
  std::vector<limiter::permit> held;
  for (int i = 0; i < 3; ++i)
    held.push_back(*lim.try_acquire());
  lim.resize(1);
  recorded<limiter::permit> waiter;
  lim.async_acquire(record_into(ctx, waiter));
  held.pop_back(); // 2 in use
  ctx.poll();
  BOOST_TEST(waiter.calls == 0);
  held.pop_back(); // 1 in use: still not below 1
  ctx.poll();
  BOOST_TEST(waiter.calls == 0);
  BOOST_TEST(lim.in_use() == 1U);
  held.pop_back(); // 0 in use
  ctx.run();
  BOOST_TEST(waiter.value.holds());
  BOOST_TEST(lim.in_use() == 1U);
}

// Cancelled while it waits for something else (a timer, whose error it
// ignores), the coroutine never asks for a place: its next co_await throws
// before the acquisition starts.
BOOST_AUTO_TEST_CASE(a_coroutine_cancelled_before_it_asks_for_a_place_takes_none)
{
  asio::io_context ctx{1};
  limiter lim(1);
  asio::cancellation_signal signal;
  std::exception_ptr error;
  bool started = false;
  bool got_permit = false;
  asio::co_spawn(
      ctx,
      [&]() -> asio::awaitable<void> {
        started = true;
        asio::steady_timer timer(co_await asio::this_coro::executor, std::chrono::hours(1));
        (void)co_await timer.async_wait(asio::as_tuple(asio::use_awaitable));
        auto permit = co_await lim.acquire();
        got_permit = permit.holds();
      },
      asio::bind_cancellation_slot(signal.slot(), [&](std::exception_ptr e) { error = e; }));
  BOOST_TEST(run_until(ctx, [&] { return started; }));
  signal.emit(asio::cancellation_type::terminal);
  ctx.run();
  BOOST_TEST(code_of(error) == asio::error::operation_aborted);
  BOOST_TEST(!got_permit);
  BOOST_TEST(lim.in_use() == 0U);
  BOOST_TEST(lim.waiting() == 0U);
}

BOOST_AUTO_TEST_CASE(a_waiter_cancelled_while_queued_leaves_takes_nothing_and_the_next_waiter_gets_the_place)
{
  asio::io_context ctx{1};
  limiter lim(1);
  auto held = lim.try_acquire();
  asio::cancellation_signal signal;
  recorded<limiter::permit> cancelled;
  recorded<limiter::permit> next;
  lim.async_acquire(asio::bind_cancellation_slot(signal.slot(), record_into(ctx, cancelled)));
  lim.async_acquire(record_into(ctx, next));
  signal.emit(asio::cancellation_type::terminal);
  BOOST_TEST(lim.waiting() == 1U);
  held.reset();
  ctx.run();
  BOOST_TEST(cancelled.ec == asio::error::operation_aborted);
  BOOST_TEST(!cancelled.value.holds());
  BOOST_TEST(next.value.holds());
  BOOST_TEST(lim.in_use() == 1U);
}

BOOST_AUTO_TEST_CASE(a_coroutine_cancelled_while_queued_throws_operation_aborted_and_takes_nothing)
{
  asio::io_context ctx{1};
  limiter lim(1);
  auto held = lim.try_acquire();
  asio::cancellation_signal signal;
  std::exception_ptr error;
  asio::co_spawn(
      ctx, [&]() -> asio::awaitable<void> { auto permit = co_await lim.acquire(); },
      asio::bind_cancellation_slot(signal.slot(), [&](std::exception_ptr e) { error = e; }));
  BOOST_TEST(run_until(ctx, [&] { return lim.waiting() == 1U; }));
  signal.emit(asio::cancellation_type::terminal);
  ctx.run();
  BOOST_TEST(code_of(error) == asio::error::operation_aborted);
  BOOST_TEST(lim.waiting() == 0U);
  BOOST_TEST(lim.in_use() == 1U); // only the place held here
}

BOOST_AUTO_TEST_CASE(a_cancellation_after_the_place_was_given_has_no_effect_and_the_permit_gives_it_back)
{
  asio::io_context ctx{1};
  limiter lim(1);
  auto held = lim.try_acquire();
  asio::cancellation_signal signal;
  recorded<limiter::permit> a;
  lim.async_acquire(asio::bind_cancellation_slot(signal.slot(), record_into(ctx, a)));
  held.reset(); // given: the completion is posted
  signal.emit(asio::cancellation_type::terminal);
  ctx.run();
  BOOST_TEST(a.calls == 1);
  BOOST_TEST(!a.ec);
  BOOST_TEST(a.value.holds());
  a.value.release();
  BOOST_TEST(lim.in_use() == 0U);
}

BOOST_AUTO_TEST_CASE(destroying_the_limiter_completes_its_waiters_with_operation_aborted_and_held_permits_stay_valid)
{
  asio::io_context ctx{1};
  recorded<limiter::permit> waiter;
  std::optional<limiter::permit> held;
  {
    limiter lim(1);
    held = lim.try_acquire();
    lim.async_acquire(record_into(ctx, waiter));
  }
  ctx.run();
  BOOST_TEST(waiter.ec == asio::error::operation_aborted);
  BOOST_TEST(!waiter.value.holds());
  BOOST_TEST(held->holds());
  held.reset(); // gives the place back to a state nobody else holds
}

BOOST_AUTO_TEST_CASE(destroying_the_context_while_a_coroutine_waits_for_a_place_frees_its_frame_and_runs_no_handler)
{
  limiter lim(1);
  auto held = lim.try_acquire();
  auto owned = std::make_shared<int>(0);
  const std::weak_ptr<int> frame_alive = owned;
  int calls = 0;
  {
    asio::io_context ctx{1};
    asio::co_spawn(
        ctx,
        [](limiter& l, std::shared_ptr<int>) -> asio::awaitable<void> {
          auto permit = co_await l.acquire();
        }(lim, std::move(owned)),
        [&calls](std::exception_ptr) { ++calls; });
    BOOST_TEST(run_until(ctx, [&] { return lim.waiting() == 1U; }));
    BOOST_TEST(!frame_alive.expired());
  }
  BOOST_TEST(calls == 0);
  BOOST_TEST(frame_alive.expired());
  BOOST_TEST(lim.waiting() == 0U);
  held.reset();
  BOOST_TEST(lim.in_use() == 0U); // the dropped waiter took nothing
}

// Three groups of 100 holders share one limiter of 5 on a 4-thread pool, many
// rounds: never more than 5 hold a place at once.
BOOST_AUTO_TEST_CASE(three_concurrent_groups_of_100_holders_sharing_a_limiter_of_5_never_exceed_5_on_a_thread_pool,
                     *boost::unit_test::timeout(120))
{
  constexpr int rounds = 20;
  int most = 0;
  for (int round = 0; round < rounds; ++round) {
    limiter lim(5);
    tracker t;
    fanout::test::stress::run_in(fanout::test::stress::threads::pool, [&]() -> asio::awaitable<int> {
      auto group = [&](int) -> asio::awaitable<void> {
        co_await fanout::async_map([&](int) { return holder(lim, t); }, fanout::test::iota(0, 100));
      };
      co_await fanout::async_map(group, fanout::test::iota(0, 3));
      co_return 0;
    }());
    BOOST_TEST(t.most.load() <= 5);
    BOOST_TEST(t.started.load() == 300);
    BOOST_TEST(t.now.load() == 0);
    BOOST_TEST(lim.in_use() == 0U);
    BOOST_TEST(lim.waiting() == 0U);
    most = std::max(most, t.most.load());
  }
  BOOST_TEST(most == 5);
}

BOOST_AUTO_TEST_SUITE_END() // limiter_tests
