// fanout/timeout.hpp — deadlines for any awaitable (asyncio.wait_for / timeout).
#pragma once

#include "fanout/error.hpp"

#include "fanout/detail/clock.hpp"
#include "fanout/detail/deadline_op.hpp"

#include <boost/asio/async_result.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <chrono>
#include <exception>
#include <optional>
#include <type_traits>
#include <utility>

namespace fanout {

/// Runs @p op on @p executor with a deadline and completes @p token with its
/// outcome.
///
/// - If @p op finishes first: its value, or its exception.
/// - If @p deadline passes first: @p op is cancelled (terminal), waited for
///   (an operation that ignores cancellation is never abandoned running),
///   and the operation fails with `fanout::error::timed_out` — unless @p op
///   still returned a value, which is then delivered, or failed with an
///   error of its own (anything but `operation_aborted`), which is passed on.
/// - A deadline already past fails with `timed_out` without starting @p op.
///
/// @par Completion signature
/// `void(std::exception_ptr, T)` (`void(std::exception_ptr)` for void); a
/// non-void T must be default-constructible, as with `asio::co_spawn` (a
/// failure passes `T{}`). with_deadline and with_timeout need only a
/// move-constructible T.
///
/// @par Per-operation cancellation
/// Every cancellation type is forwarded to @p op; the operation completes
/// once @p op has finished.
///
/// @par Thread safety
/// @p op runs on a strand of @p executor, with the timer.
template <typename Executor, typename T, typename AwaitableExecutor,
          boost::asio::completion_token_for<detail::value_signature_t<T>> Token>
auto async_with_deadline(const Executor& executor, boost::asio::awaitable<T, AwaitableExecutor> op,
                         clock::time_point deadline, Token&& token)
{
  static_assert(detail::failure_carries_value_v<T>,
                "fanout::async_with_deadline: T must be default-constructible, since a failure completes with "
                "void(std::exception_ptr, T) and passes T{} (as asio::co_spawn); fanout::with_deadline and "
                "fanout::with_timeout need only a move-constructible T");
  return boost::asio::async_initiate<Token, detail::value_signature_t<T>>(detail::initiate_with_deadline{}, token,
                                                                          executor, std::move(op), deadline);
}

/// Awaits @p op, but no later than @p deadline (Trio's `fail_at`): see
/// async_with_deadline for the outcome. When the deadline passes, @p op is
/// cancelled and waited for; if it then ends cancelled, this throws
/// `boost::system::system_error(fanout::error::timed_out)` (a value it still
/// returns is delivered). T need only be move-constructible (or void).
///
/// @par Cancellation
/// Cancelling the awaiting coroutine is forwarded to @p op (as for
/// async_with_deadline); the await completes once @p op has finished.
///
/// @code
/// auto body = co_await fanout::with_deadline(fetch(url), start + 2s);
/// @endcode
template <typename T, typename Executor>
[[nodiscard]] boost::asio::awaitable<T, Executor> with_deadline(boost::asio::awaitable<T, Executor> op,
                                                                clock::time_point deadline)
{
  const auto executor = co_await boost::asio::this_coro::executor;
  if constexpr (std::is_void_v<T>) {
    co_await async_with_deadline(executor, std::move(op), deadline, boost::asio::use_awaitable_t<Executor>{});
  } else {
    // The value goes straight into this frame, which outlives the operation:
    // the operation completes only once op has finished.
    std::optional<T> value;
    co_await async_with_deadline(executor, detail::store_value(&value, std::move(op)), deadline,
                                 boost::asio::use_awaitable_t<Executor>{});
    co_return std::move(*value);
  }
}

/// Awaits @p op for at most @p timeout (asyncio's `wait_for`): on expiry @p op
/// is cancelled and waited for, and if it ends cancelled this throws
/// `boost::system::system_error(fanout::error::timed_out)` (a value it still
/// returns is delivered). A zero or negative timeout fails at
/// once without starting @p op. Cancellation as for with_deadline.
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
