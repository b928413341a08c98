// fanout/offload.hpp — run blocking calls on a thread pool (asyncio.to_thread).
#pragma once

#include "fanout/detail/io_executor.hpp"
#include "fanout/detail/offload_op.hpp"

#include <boost/asio/async_result.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/thread_pool.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <concepts>
#include <exception>
#include <tuple>
#include <type_traits>
#include <utility>

namespace fanout {

/// The executor of fanout's blocking-work pool: an `asio::thread_pool` of
/// blocking_pool_size() threads, created on first use and joined at program
/// exit (calls still running then are waited for; queued ones are dropped).
boost::asio::thread_pool::executor_type blocking_executor();

/// Threads in the blocking-work pool: the FANOUT_BLOCKING_THREADS environment
/// variable if set to a positive number when the pool is first used, else 64,
/// so that many one-second blocking calls overlap (asyncio's default executor
/// has min(32, cores + 4)).
std::size_t blocking_pool_size();

/// Runs the blocking callable @p function (no arguments; bind them) on
/// @p pool and completes @p token with its result.
///
/// @param pool an executor for blocking work, e.g. fanout::blocking_executor()
///        or your own `asio::thread_pool`'s (or the `thread_pool` itself).
/// @param function called once on a @p pool thread; it must be
///        move-constructible. Its result must be void or default-constructible
///        (a failure passes `R{}`); to_thread has no such requirement.
/// @param token any completion token; by default the pool executor's default
///        completion token (see detail::default_token_t: asio::deferred, or
///        asio::use_awaitable before Boost 1.83).
///
/// @par Completion signature
/// `void(std::exception_ptr, R)`, or `void(std::exception_ptr)` when R is void.
/// An exception thrown by @p function is delivered in the exception_ptr.
/// The handler runs on its associated executor (or @p pool if it has none),
/// which keeps outstanding work until then.
///
/// @par Per-operation cancellation
/// Any cancellation type: if the call has not started, it never will, and the
/// operation completes with `operation_aborted`. A call already running cannot
/// be interrupted; the operation completes when it returns, with its result.
///
/// @par Lifetime
/// A started call holds work on the handler's executor until it completes
/// there: that executor's context must outlive the call.
///
/// @par Thread safety
/// May be called from any thread.
template <detail::executor_or_context Pool, typename Function,
          boost::asio::completion_token_for<detail::value_signature_t<std::invoke_result_t<std::decay_t<Function>&>>>
              Token = detail::default_token_t<decltype(detail::io_executor_of(std::declval<Pool&>()))>>
auto async_to_thread(Pool&& pool, Function&& function, Token&& token = Token())
{
  using result = std::invoke_result_t<std::decay_t<Function>&>;
  static_assert(detail::failure_carries_value_v<result>,
                "fanout::async_to_thread: the result must be void or default-constructible, since a failure completes "
                "with void(std::exception_ptr, R) and passes R{}; fanout::to_thread needs only a move-constructible R");
  using signature = detail::value_signature_t<result>;
  return boost::asio::async_initiate<Token, signature>(detail::initiate_offload{}, token, detail::io_executor_of(pool),
                                                       std::forward<Function>(function));
}

namespace detail {

/// A decay-copy of F callable, as an lvalue, with decay-copies of Args as
/// lvalues: how to_thread makes the call. (In parentheses, which change
/// nothing, because clang-format 14 reads `>&,` as comparisons.)
template <typename F, typename... Args>
concept decay_copies_invocable = (std::invocable<std::decay_t<F>&, std::decay_t<Args>&...>);

} // namespace detail

/// Calls `f(args...)` on fanout's blocking-work pool and resumes the awaiting
/// coroutine on its own executor with the result (asyncio's `to_thread`).
///
/// @p f and @p args are decay-copied (use std::ref to pass a reference), as
/// std::thread does. Exceptions thrown by the call are rethrown to the awaiter.
/// The result need only be move-constructible (or void).
///
/// @par Cancellation
/// Cancelling the awaiting coroutine before the call starts means it never
/// starts (the await throws `operation_aborted`); a call already running is
/// waited for.
///
/// @par Thread safety
/// The call runs on a pool thread, concurrently with the awaiting
/// coroutine's executor: whatever it touches must be safe to use from there.
///
/// @code
/// std::string s = co_await fanout::to_thread(a); // a() blocks one second
/// @endcode
template <typename F, typename... Args>
requires detail::decay_copies_invocable<F, Args...>
[[nodiscard]] auto to_thread(F&& f, Args&&... args)
{
  auto call = [fn = std::forward<F>(f), tuple = std::make_tuple(std::forward<Args>(args)...)]() mutable {
    return std::apply(fn, tuple);
  };
  return detail::offload_call<std::invoke_result_t<decltype(call)&>>(blocking_executor(), std::move(call));
}

} // namespace fanout
