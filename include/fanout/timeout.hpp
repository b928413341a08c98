// fanout/timeout.hpp — deadlines for any awaitable (asyncio.wait_for / timeout).
#pragma once

#include "fanout/error.hpp"
#include "fanout/sleep.hpp"

#include "fanout/detail/completion.hpp"

#include <boost/asio/associated_cancellation_slot.hpp>
#include <boost/asio/async_result.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/bind_executor.hpp>
#include <boost/asio/cancellation_signal.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/dispatch.hpp>
#include <boost/asio/error.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/system/system_error.hpp>

#include <exception>
#include <memory>
#include <optional>
#include <type_traits>
#include <utility>

namespace fanout {

namespace detail {

template <typename T>
struct deadline_signature
{
  using type = void(std::exception_ptr, T);
};
template <>
struct deadline_signature<void>
{
  using type = void(std::exception_ptr);
};

inline bool is_operation_aborted(const std::exception_ptr& e)
{
  try {
    std::rethrow_exception(e);
  } catch (const boost::system::system_error& error) {
    return error.code() == boost::asio::error::operation_aborted;
  } catch (...) {
    return false;
  }
}

inline std::exception_ptr timed_out_error()
{
  return std::make_exception_ptr(boost::system::system_error(make_error_code(error::timed_out), "fanout::timeout"));
}

// One operation under a deadline. Every member is touched only on `strand`:
// the child's completion, the timer's and the forwarded outside cancellation
// all run there, so no lock is needed.
template <typename T, typename Handler, typename Strand>
struct deadline_state
{
  deadline_state(Handler h, Strand s, clock::time_point deadline, bool fail_late_values)
      : handler(std::move(h)), strand(std::move(s)), timer(strand, deadline), strict(fail_late_values)
  {}

  Handler handler;
  Strand strand;
  boost::asio::steady_timer timer;
  boost::asio::cancellation_signal child_signal; // bound to the child coroutine
  std::conditional_t<std::is_void_v<T>, no_value, std::optional<T>> value;
  std::exception_ptr error;
  bool child_done = false;
  bool timer_done = false;
  bool expired = false; // the deadline passed while the child still ran
  bool strict;          // expiry fails the operation even if the child still returned

  void maybe_complete()
  {
    if (!child_done || !timer_done)
      return;
    if (expired && (strict || (error && is_operation_aborted(error))))
      error = timed_out_error();
    if constexpr (std::is_void_v<T>)
      post_completion(std::move(handler), strand, error);
    else
      post_completion(std::move(handler), strand, error, error ? T{} : std::move(*value));
  }
};

template <typename T, typename Executor>
boost::asio::awaitable<void, Executor> run_child(std::conditional_t<std::is_void_v<T>, no_value, std::optional<T>>* out,
                                                 boost::asio::awaitable<T, Executor> op)
{
  if constexpr (std::is_void_v<T>)
    co_await std::move(op);
  else
    out->emplace(co_await std::move(op));
}

// strict: a deadline that passed while the operation ran fails it with
// timed_out even if the operation still returned a value (async_map's
// item_timeout); otherwise such a late value is delivered.
struct initiate_with_deadline
{
  bool strict = false;

  template <typename Handler, typename Executor, typename T, typename AwaitableExecutor>
  void operator()(Handler&& handler, const Executor& executor, boost::asio::awaitable<T, AwaitableExecutor> op,
                  clock::time_point deadline) const
  {
    if (deadline <= clock::now()) {
      // Already past: fail without starting the operation.
      if constexpr (std::is_void_v<T>)
        post_completion(std::forward<Handler>(handler), executor, timed_out_error());
      else
        post_completion(std::forward<Handler>(handler), executor, timed_out_error(), T{});
      return;
    }
    auto strand = boost::asio::make_strand(executor);
    using state_type = deadline_state<T, std::decay_t<Handler>, decltype(strand)>;
    auto state = std::make_shared<state_type>(std::forward<Handler>(handler), strand, deadline, strict);

    auto slot = boost::asio::get_associated_cancellation_slot(state->handler);
    if (slot.is_connected()) {
      slot.assign([state](boost::asio::cancellation_type_t type) {
        boost::asio::dispatch(state->strand, [state, type] {
          if (!state->child_done)
            state->child_signal.emit(type);
        });
      });
    }

    state->timer.async_wait(boost::asio::bind_executor(state->strand, [state](boost::system::error_code ec) {
      state->timer_done = true;
      if (!ec && !state->child_done) {
        state->expired = true;
        state->child_signal.emit(boost::asio::cancellation_type::terminal);
      }
      state->maybe_complete();
    }));

    boost::asio::co_spawn(
        state->strand, run_child<T, AwaitableExecutor>(&state->value, std::move(op)),
        boost::asio::bind_cancellation_slot(state->child_signal.slot(), [state](std::exception_ptr e) {
          state->child_done = true;
          state->error = std::move(e);
          state->timer.cancel();
          state->maybe_complete();
        }));
  }
};

// with_deadline, strict: a deadline that passes while @p op runs fails it with
// timed_out whatever @p op then returns.
template <typename T, typename Executor>
boost::asio::awaitable<T, Executor> with_strict_deadline(boost::asio::awaitable<T, Executor> op,
                                                         clock::time_point deadline)
{
  boost::asio::use_awaitable_t<Executor> token;
  co_return co_await boost::asio::async_initiate<boost::asio::use_awaitable_t<Executor>,
                                                 typename deadline_signature<T>::type>(
      initiate_with_deadline{true}, token, co_await boost::asio::this_coro::executor, std::move(op), deadline);
}

} // namespace detail

/// Runs @p op on @p executor with a deadline and completes @p token with its
/// outcome.
///
/// - If @p op finishes first: its value, or its exception.
/// - If @p deadline passes first: @p op is cancelled (terminal), waited for
///   (an operation that ignores cancellation is never abandoned running),
///   and the operation fails with `fanout::error::timed_out` — unless @p op
///   still returned a value, which is then delivered.
/// - A deadline already past fails with `timed_out` without starting @p op.
///
/// @par Completion signature
/// `void(std::exception_ptr, T)` (`void(std::exception_ptr)` for void); a
/// non-void T must be default-constructible, as with `asio::co_spawn`.
///
/// @par Per-operation cancellation
/// Every cancellation type is forwarded to @p op; the operation completes
/// once @p op has finished.
///
/// @par Thread safety
/// @p op runs on a strand of @p executor, with the timer.
template <typename Executor, typename T, typename AwaitableExecutor,
          boost::asio::completion_token_for<typename detail::deadline_signature<T>::type> Token>
auto async_with_deadline(const Executor& executor, boost::asio::awaitable<T, AwaitableExecutor> op,
                         clock::time_point deadline, Token&& token)
{
  return boost::asio::async_initiate<Token, typename detail::deadline_signature<T>::type>(
      detail::initiate_with_deadline{}, token, executor, std::move(op), deadline);
}

/// Awaits @p op, but no later than @p deadline (Trio's `fail_at`): see
/// async_with_deadline for the outcome. Throws
/// `boost::system::system_error(fanout::error::timed_out)` on expiry.
///
/// @code
/// auto body = co_await fanout::with_deadline(fetch(url), start + 2s);
/// @endcode
template <typename T, typename Executor>
[[nodiscard]] boost::asio::awaitable<T, Executor> with_deadline(boost::asio::awaitable<T, Executor> op,
                                                                clock::time_point deadline)
{
  co_return co_await async_with_deadline(co_await boost::asio::this_coro::executor, std::move(op), deadline,
                                         boost::asio::use_awaitable_t<Executor>{});
}

/// Awaits @p op for at most @p timeout (asyncio's `wait_for`); throws
/// `boost::system::system_error(fanout::error::timed_out)` on expiry, after
/// @p op was cancelled and has finished. A zero or negative timeout fails at
/// once without starting @p op.
///
/// @code
/// try {
///   co_await fanout::with_timeout(b(), 500ms);
/// } catch (const boost::system::system_error& e) {
///   if (e.code() == fanout::error::timed_out) { ... }
/// }
/// @endcode
template <typename T, typename Executor, typename Rep, typename Period>
[[nodiscard]] boost::asio::awaitable<T, Executor> with_timeout(boost::asio::awaitable<T, Executor> op,
                                                               std::chrono::duration<Rep, Period> timeout)
{
  return with_deadline(std::move(op), detail::deadline_after(detail::clamp_duration(timeout)));
}

} // namespace fanout
