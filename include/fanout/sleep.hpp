// fanout/sleep.hpp — timed waits for coroutines and for callback code.
#pragma once

#include "fanout/detail/clock.hpp"
#include "fanout/detail/completion.hpp"
#include "fanout/detail/io_executor.hpp"

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/associated_cancellation_slot.hpp>
#include <boost/asio/async_result.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/dispatch.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/system/error_code.hpp>

#include <chrono>
#include <memory>
#include <utility>

namespace fanout {

/// Suspends the calling coroutine until @p deadline, on the coroutine's own
/// executor.
///
/// A deadline already in the past completes at once (the coroutine is still
/// resumed through its executor, never inline).
///
/// @par Cancellation
/// Cancelling the awaiting coroutine (terminal, partial or total, as its
/// cancellation state lets through) ends the wait early: the `co_await`
/// throws `boost::system::system_error` with `asio::error::operation_aborted`.
///
/// @par Thread safety
/// Safe to call from any coroutine; the timer is owned by the call.
///
/// @code
/// co_await fanout::sleep_until(fanout::clock::now() + 1s);
/// @endcode
[[nodiscard]] boost::asio::awaitable<void> sleep_until(clock::time_point deadline);

/// Suspends the calling coroutine for @p duration (zero or negative: completes
/// at once). Equivalent to `sleep_until(clock::now() + duration)`, with the
/// same cancellation behaviour.
///
/// @code
/// co_await fanout::sleep(std::chrono::seconds(1)); // asyncio.sleep(1)
/// @endcode
template <typename Rep, typename Period>
[[nodiscard]] boost::asio::awaitable<void> sleep(std::chrono::duration<Rep, Period> duration)
{
  return sleep_until(detail::deadline_after(detail::clamp_duration(duration)));
}

namespace detail {

// One async_sleep: the timer and the handler, shared by the timer's
// completion and the handler's cancellation slot. The timer is not tied to the
// handler's slot directly: Asio leaves a timer's cancellation handler in the
// slot after completion, and this timer dies with the operation, so a signal
// emitted later must not reach it. Our slot handler is cleared on completion.
template <typename Handler, typename Executor>
struct sleep_op
{
  sleep_op(Handler h, const Executor& ex, clock::duration d)
      : work(handler_work(h, ex)), handler(std::move(h)), timer(ex, d)
  {}
  // Outstanding work on the handler's executor while the timer waits (the
  // timer keeps only its own context's).
  decltype(handler_work(std::declval<const Handler&>(), std::declval<const Executor&>())) work;
  Handler handler;
  boost::asio::steady_timer timer;
};

struct initiate_sleep
{
  // The timer is made when the operation is launched (for asio::deferred, not
  // when the deferred operation is created), so the wait lasts the full
  // duration from launch.
  template <typename Handler, typename Executor>
  void operator()(Handler&& handler, const Executor& executor, clock::duration duration) const
  {
    using op_type = sleep_op<std::decay_t<Handler>, Executor>;
    auto op = allocate_operation<op_type>(handler, std::forward<Handler>(handler), executor, duration);
    auto slot = boost::asio::get_associated_cancellation_slot(op->handler);
    if (slot.is_connected())
      // Weakly: the op owns the handler, which owns the slot; a context
      // destroyed mid-wait frees the op with the timer's pending handler.
      slot.assign([weak = std::weak_ptr<op_type>(op)](boost::asio::cancellation_type_t) {
        // On the timer's executor: cancel() must not race with its completion.
        if (auto alive = weak.lock())
          boost::asio::dispatch(alive->timer.get_executor(), [alive] { alive->timer.cancel(); });
      });
    op->timer.async_wait(
        [op](boost::system::error_code ec) { post_completion(std::move(op->handler), op->timer.get_executor(), ec); });
  }
};

} // namespace detail

/// Waits for @p duration on @p executor and then completes @p token, for code
/// that is not written as coroutines.
///
/// @param executor where the timer runs: an executor, or an execution context
///        (its executor).
/// @param duration how long to wait (zero or negative: completes at once, through
///        the handler's executor, never inside this call).
/// @param token any completion token: a callback, `asio::use_future`,
///        `asio::deferred`, `asio::use_awaitable`, `asio::as_tuple(...)`. The
///        default is the executor's default completion token (see
///        detail::default_token_t: asio::deferred, or asio::use_awaitable
///        before Boost 1.83; `co_await fanout::async_sleep(ex, 1s)` either way).
///
/// @par Completion signature
/// `void(boost::system::error_code)`: success, or `asio::error::operation_aborted`
/// when cancelled. The handler runs on its associated executor, or on
/// @p executor if it has none; its executor keeps outstanding work until then.
///
/// @par Per-operation cancellation
/// `terminal`, `partial` and `total` cancellation through the handler's
/// associated cancellation slot end the wait with `operation_aborted`.
///
/// @par Thread safety
/// May be called from any thread; the timer is owned by the operation.
///
/// @code
/// fanout::async_sleep(ctx.get_executor(), 10ms, [](boost::system::error_code ec) { ... });
/// @endcode
template <detail::executor_or_context ExecutorOrContext, typename Rep, typename Period,
          boost::asio::completion_token_for<void(boost::system::error_code)> Token =
              detail::default_token_t<decltype(detail::io_executor_of(std::declval<ExecutorOrContext&>()))>>
auto async_sleep(ExecutorOrContext&& executor, std::chrono::duration<Rep, Period> duration, Token&& token = Token())
{
  return boost::asio::async_initiate<Token, void(boost::system::error_code)>(
      detail::initiate_sleep{}, token, detail::io_executor_of(executor), detail::clamp_duration(duration));
}

} // namespace fanout
