// fanout/schedule.hpp — run a callable later, at a time point, or every
// period (asyncio's call_later / call_at, plus a drift-free periodic call).
#pragma once

#include "fanout/callable.hpp"
#include "fanout/sleep.hpp"
#include "fanout/task.hpp"

#include <boost/asio/awaitable.hpp>

#include <chrono>
#include <concepts>
#include <type_traits>
#include <utility>

namespace fanout {

namespace detail {

// Calls f(): awaits it if it returns an awaitable, else calls it inline.
template <typename F>
boost::asio::awaitable<void> invoke_scheduled(F& f)
{
  if constexpr (is_awaitable_v<std::invoke_result_t<F&>>)
    co_await f();
  else
    f();
}

template <typename F>
boost::asio::awaitable<void> call_at_body(F f, clock::time_point when)
{
  co_await sleep_until(when);
  co_await invoke_scheduled(f);
}

template <typename F>
boost::asio::awaitable<void> call_every_body(F f, clock::time_point first, clock::duration period)
{
  // Fixed rate: run k is due at first + k * period, whatever each run took,
  // so lateness never accumulates.
  // Time points are clamped at the clock's end: a huge period waits forever.
  for (auto due = first;; due = later_by(due, period)) {
    co_await sleep_until(due);
    co_await invoke_scheduled(f);
    const auto now = clock::now();
    if (now >= later_by(due, period))         // overran: skip the ticks already missed, no burst
      due += ((now - due) / period) * period; // the loop then steps to the next tick after now
  }
}

} // namespace detail

/// A callable that call_later, call_at and call_every take: no arguments,
/// returning void or `asio::awaitable<void>`.
template <typename F>
concept scheduled_callable = std::invocable<F&> &&
    (std::is_void_v<std::invoke_result_t<F&>> || std::same_as<std::invoke_result_t<F&>, boost::asio::awaitable<void>>);

/// Calls @p f on @p executor at @p when (asyncio's `loop.call_at`). A time
/// already past runs it as soon as the executor gets to it.
///
/// @param executor where @p f runs (as for spawn).
/// @param when the steady-clock time to call @p f at.
/// @param f a plain callable (called on the executor) or a coroutine function
///        returning `asio::awaitable<void>` (awaited there).
/// @return a task<void> handle: `cancel()` before the time means @p f never
///         runs; awaiting it waits for the call and rethrows what @p f threw.
///         Dropping the handle leaves the call scheduled.
///
/// @par Thread safety
/// May be called from any thread (as spawn); @p f runs on @p executor.
///
/// @code
/// auto h = fanout::call_at(ctx.get_executor(), fanout::clock::now() + 1s, [] { std::cout << "tick\n"; });
/// @endcode
template <typename Executor, scheduled_callable F>
[[nodiscard]] task<void> call_at(const Executor& executor, clock::time_point when, F f)
{
  return spawn(executor, detail::call_at_body(std::move(f), when));
}

/// Calls @p f on @p executor after @p delay (asyncio's `loop.call_later`); see
/// call_at. A zero or negative delay runs it as soon as possible.
template <typename Executor, typename Rep, typename Period, scheduled_callable F>
[[nodiscard]] task<void> call_later(const Executor& executor, std::chrono::duration<Rep, Period> delay, F f)
{
  return call_at(executor, detail::deadline_after(detail::clamp_duration(delay)), std::move(f));
}

/// Calls @p f on @p executor every @p period, the first time one period from
/// now, until cancelled.
///
/// - Fixed rate: call k is due at start + k × period, so the schedule does not
///   drift however long each call takes or however late the executor is.
/// - A call never overlaps the previous one: a coroutine @p f is awaited.
///   When a call (or the executor) overruns past the next due time, the
///   missed ticks are skipped, not run in a burst; the schedule resumes at the
///   next due time.
/// - Returns a task<void>: `cancel()` stops it (a call in progress is
///   cancelled at its next suspension point); awaiting it then throws
///   `operation_aborted`. An exception thrown by @p f ends the schedule and is
///   rethrown by awaiting the handle.
///
/// @throws `system_error(fanout::error::invalid_argument)` for a zero or
///         negative period.
///
/// @par Thread safety
/// As for call_at.
///
/// @code
/// auto heartbeat = fanout::call_every(ctx.get_executor(), 100ms, [&] { send_heartbeat(); });
/// ...
/// heartbeat.cancel();
/// @endcode
template <typename Executor, typename Rep, typename Period, scheduled_callable F>
[[nodiscard]] task<void> call_every(const Executor& executor, std::chrono::duration<Rep, Period> period, F f)
{
  const auto step = detail::clamp_duration(period);
  if (step <= clock::duration::zero())
    throw_error(error::invalid_argument, "fanout::call_every: the period must be positive");
  return spawn(executor, detail::call_every_body(std::move(f), detail::deadline_after(step), step));
}

} // namespace fanout
