// fanout/retry.hpp — retrying a failing operation with exponential backoff
// and jitter (folly's retryWithExponentialBackoff, p-retry).
#pragma once

#include "fanout/detail/backoff.hpp"
#include "fanout/detail/retry_loop.hpp"

#include <boost/asio/awaitable.hpp>

#include <utility>

namespace fanout {

// fanout::backoff, the policy, is declared in fanout/detail/backoff.hpp (so
// that map_options can hold one): its fields, defaults and delay formula are
// documented there.

/// Awaits `make_op()` and, while it fails, waits a backoff delay and awaits
/// a fresh `make_op()` again, up to `policy.max_attempts` attempts in all.
///
/// - Gives the value of the first attempt that succeeds.
/// - When retry gives up it rethrows the last failure: the attempts are
///   spent, or `policy.retry_if` (if set) returned false for it.
/// - The delay after attempt k fails is
///   `min(initial * factor^(k-1), max_delay) * (1 - jitter * U)`, U uniform
///   in [0, 1) (see fanout::backoff). Each call draws its jitter from a
///   generator of its own (splitmix64) with a seed different for each call,
///   so concurrent retries of one failing service spread out; the sleeps are
///   fanout::sleep_until on the awaiting coroutine's executor.
/// - An exception thrown by `make_op()` itself is that attempt's failure; one
///   thrown by `retry_if` comes out of retry instead.
///
/// @param make_op a callable, called once per attempt, that returns
///        `asio::awaitable<T>` (T may be void). Kept by retry until it ends.
/// @param policy the delays and the limits; a value out of range (see
///        fanout::backoff) fails with
///        `system_error(fanout::error::invalid_argument)` when awaited, and
///        @p make_op is never called.
/// @return an `asio::awaitable<T>`: nothing runs until it is awaited.
///
/// @par Cancellation
/// Cancelling the awaiting coroutine (as its cancellation state lets
/// through: terminal by default) stops retry at once with
/// `operation_aborted`: a backoff sleep ends, and an attempt in progress
/// sees the cancellation itself and is not followed by another (if it still
/// returns a value, that value comes out). An attempt failing with
/// `operation_aborted` is never retried and never shown to `retry_if`.
///
/// @par Thread safety
/// Each call keeps its own state, and runs on the awaiting coroutine's
/// executor. Calls may run concurrently on a multi-threaded executor; then
/// `make_op` and `retry_if` copies run concurrently too, and anything they
/// share must be thread-safe.
///
/// @code
/// auto body = co_await fanout::retry([&] { return fetch(url); },
///                                    {.initial = 200ms, .max_attempts = 5,
///                                     .retry_if = [](const std::exception_ptr& e) { return is_transient(e); }});
/// @endcode
template <detail::retry_factory MakeOp>
[[nodiscard]] boost::asio::awaitable<detail::retry_value_t<MakeOp>> retry(MakeOp make_op, backoff policy = {})
{
  return detail::retry_with(std::move(make_op), std::move(policy), {});
}

} // namespace fanout
