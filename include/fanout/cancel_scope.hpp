// fanout/cancel_scope.hpp — cancellation control: an operation the caller's
// cancellation does not interrupt (Trio's shielded scope, asyncio.shield), and
// a time limit that cancels without failing (Trio's move_on_after).
#pragma once

#include "fanout/detail/clock.hpp"
#include "fanout/detail/deadline_op.hpp"
#include "fanout/detail/shield_op.hpp"

#include <boost/asio/async_result.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/error.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/system/system_error.hpp>

#include <chrono>
#include <exception>
#include <optional>
#include <type_traits>
#include <utility>

namespace fanout {

namespace detail {

/// What move_on_at gives for an operation of type T: `std::optional<T>`, or
/// `bool` (it completed) for void.
template <typename T>
using move_on_result_t = std::conditional_t<std::is_void_v<T>, bool, std::optional<T>>;

} // namespace detail

/// Awaits @p op, which the caller's cancellation does not interrupt: @p op
/// runs to completion even if the awaiting coroutine is cancelled meanwhile
/// (Trio's `CancelScope(shield=True)`, asyncio's `shield`, for cleanup that
/// must finish).
///
/// @param op the operation; it runs as a coroutine of its own on the awaiting
///        coroutine's executor.
/// @return @p op's value.
///
/// Outcome, once @p op has finished:
/// - @p op threw: its exception is rethrown, whether or not the caller was
///   cancelled (a real failure is not hidden behind the cancellation).
/// - @p op returned and no cancellation reached the caller meanwhile: its
///   value.
/// - @p op returned, but the caller was cancelled while it ran: throws
///   `boost::system::system_error(asio::error::operation_aborted)`; the value
///   is destroyed (it is not delivered). The caller's cancellation state stays
///   cancelled, so its next `co_await` would throw anyway.
///
/// A coroutine that is cancelled already when it reaches `co_await
/// shield(op)` gets `operation_aborted` from Asio's own check at that
/// `co_await` (while `this_coro::throw_if_cancelled()` is on, the default),
/// before @p op starts. Cleanup after a cancellation therefore turns that
/// check off first: `co_await asio::this_coro::throw_if_cancelled(false);`
/// then @p op runs, and only a cancellation that comes while it runs makes
/// shield throw.
///
/// @par Completion
/// An `asio::awaitable<T, Executor>`, awaited by the caller (no token form:
/// what it guards is the awaiting coroutine's own cancellation).
///
/// @par Per-operation cancellation
/// None reaches @p op; any cancellation type the awaiting coroutine lets
/// through (its cancellation state's filter: terminal by default) is
/// remembered and reported as above.
///
/// @par Thread safety
/// @p op runs on the awaiting coroutine's executor, as a coroutine of its
/// own; a cancellation may be emitted from any thread that may emit into the
/// awaiting coroutine's slot.
///
/// @code
/// try {
///   co_await serve(connection);
/// } catch (...) {
///   co_await asio::this_coro::throw_if_cancelled(false);
///   co_await fanout::shield(connection.async_goodbye()); // finishes, even if cancelled again meanwhile
///   throw;
/// }
/// @endcode
template <typename T, typename Executor>
[[nodiscard]] boost::asio::awaitable<T, Executor> shield(boost::asio::awaitable<T, Executor> op)
{
  const auto executor = co_await boost::asio::this_coro::executor;
  boost::asio::use_awaitable_t<Executor> token;
  if constexpr (std::is_void_v<T>) {
    const bool cancelled =
        co_await boost::asio::async_initiate<boost::asio::use_awaitable_t<Executor>, void(std::exception_ptr, bool)>(
            detail::initiate_shielded{}, token, executor, std::move(op));
    if (cancelled)
      throw boost::system::system_error(boost::asio::error::operation_aborted, "fanout::shield");
  } else {
    // The value goes straight into this frame, which outlives the operation.
    std::optional<T> value;
    const bool cancelled =
        co_await boost::asio::async_initiate<boost::asio::use_awaitable_t<Executor>, void(std::exception_ptr, bool)>(
            detail::initiate_shielded{}, token, executor, detail::store_value(&value, std::move(op)));
    if (cancelled)
      throw boost::system::system_error(boost::asio::error::operation_aborted, "fanout::shield");
    co_return std::move(*value);
  }
}

/// Awaits @p op, but no later than @p deadline: then @p op is cancelled
/// (terminal) and waited for, and the result is empty instead of a failure
/// (Trio's `move_on_at`; fanout::with_deadline is the throwing form).
///
/// @param deadline when to give up, on fanout::clock. A deadline already
///        past gives the empty result at once, without starting @p op.
/// @param op the operation; it runs on a strand of the awaiting coroutine's
///        executor, as with with_deadline.
/// @return `std::optional<T>`: @p op's value, or empty if the deadline passed
///         and @p op then ended with `operation_aborted`. For void, `bool`:
///         true if @p op completed. An @p op that still returned a value after
///         the deadline passed (it handled the cancellation) gives that value.
/// @throws whatever @p op throws, whenever it throws (any failure other than the
///         `operation_aborted` caused by the deadline);
///         `system_error(operation_aborted)` when the awaiting coroutine was
///         cancelled (@p op is cancelled too and waited for first), even if the
///         deadline passed as well.
///
/// @par Completion
/// An `asio::awaitable<std::optional<T>, Executor>` (`bool` for void),
/// awaited by the caller; the throwing token form is
/// fanout::async_with_deadline.
///
/// @par Per-operation cancellation
/// Every cancellation type that reaches the awaiting coroutine (its
/// cancellation state's filter: terminal by default) is forwarded to @p op.
///
/// @par Thread safety
/// @p op and the timer run on a strand of the awaiting coroutine's executor.
///
/// @code
/// if (auto reply = co_await fanout::move_on_at(start + 2s, fetch(url)))
///   use(*reply);
/// else
///   use_cached(); // fetch was cancelled and has finished
/// @endcode
template <typename T, typename Executor>
[[nodiscard]] boost::asio::awaitable<detail::move_on_result_t<T>, Executor>
move_on_at(clock::time_point deadline, boost::asio::awaitable<T, Executor> op)
{
  if constexpr (std::is_void_v<T>) {
    bool done = false;
    co_await detail::await_deadline(detail::mark_done(&done, std::move(op)), deadline, detail::deadline_expiry::quiet);
    co_return done;
  } else {
    // The value goes straight into this frame, which outlives the operation.
    std::optional<T> value;
    co_await detail::await_deadline(detail::store_value(&value, std::move(op)), deadline,
                                    detail::deadline_expiry::quiet);
    co_return value;
  }
}

/// Awaits @p op for at most @p timeout: move_on_at(now + @p timeout, @p op)
/// (Trio's `move_on_after`; fanout::with_timeout is the throwing form). A zero
/// or negative timeout gives the empty result without starting @p op; a huge
/// one never expires.
///
/// @code
/// std::optional<int> n = co_await fanout::move_on_after(500ms, count_rows());
/// bool flushed = co_await fanout::move_on_after(1s, flush()); // void: did it complete?
/// @endcode
template <typename Rep, typename Period, typename T, typename Executor>
[[nodiscard]] boost::asio::awaitable<detail::move_on_result_t<T>, Executor>
move_on_after(std::chrono::duration<Rep, Period> timeout, boost::asio::awaitable<T, Executor> op)
{
  return move_on_at(detail::deadline_after(detail::clamp_duration(timeout)), std::move(op));
}

} // namespace fanout
