// fanout/async_map.hpp — the post's async_map: f over zipped ranges,
// concurrently, results in input order.
#pragma once

#include "fanout/callable.hpp"
#include "fanout/map_options.hpp"
#include "fanout/outcome.hpp"

#include "fanout/detail/map_engine.hpp"

#include <boost/asio/awaitable.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <concepts>
#include <memory>
#include <ranges>
#include <type_traits>
#include <utility>

namespace fanout {

/// What `co_await async_map(f, ranges...)` gives: `std::vector<R>` in input
/// order, or void when f's items produce nothing.
template <typename F, typename... Ranges>
using map_result_t =
    typename detail::map_results<detail::map_value_t<std::decay_t<F>, detail::range_holder<Ranges>...>>::result_type;

/// What `co_await async_map_settled(f, ranges...)` gives: one
/// `fanout::outcome<R>` per item, in input order.
template <typename F, typename... Ranges>
using map_settled_result_t =
    std::vector<outcome<detail::map_value_t<std::decay_t<F>, detail::range_holder<Ranges>...>>>;

/// A callable async_map accepts for these ranges: invocable with one element
/// of each, returning `asio::awaitable<R>`, a fanout::invocation<R>, or a
/// plain R (including void).
template <typename F, typename... Ranges>
concept map_function = (sizeof...(Ranges) > 0) &&
                       (std::ranges::input_range<typename detail::range_holder<Ranges>::range_type&> && ...) &&
                       std::invocable<std::decay_t<F>&, detail::map_arg_t<detail::range_holder<Ranges>>&...>;

namespace detail {

template <error_policy Policy, typename F, typename... Views>
boost::asio::awaitable<typename map_engine<Policy, map_delivery::collect, F, Views...>::result_type>
map_coroutine(map_options options, F f, Views... views)
{
  // Already cancelled: start nothing (the wait below would throw at once,
  // leaving started items behind).
  const boost::asio::cancellation_state state = co_await boost::asio::this_coro::cancellation_state;
  if (state.cancelled() != boost::asio::cancellation_type::none)
    throw boost::system::system_error(boost::asio::error::operation_aborted, "fanout::async_map");
  auto engine = std::make_shared<map_engine<Policy, map_delivery::collect, F, Views...>>(
      options, co_await boost::asio::this_coro::executor, std::move(f), std::move(views)...);
  engine->start();
  co_await engine->async_wait(boost::asio::use_awaitable);
  co_return engine->take_result();
}

} // namespace detail

/// Applies @p f to each tuple of elements of @p ranges (zipped: the shortest
/// range decides, as Python's `map`), runs the items concurrently on the
/// awaiting coroutine's executor, and gives their results in input order.
///
/// - `f(args...)` may return `asio::awaitable<R>` (awaited), a plain `R` (a
///   blocking call: made inline on the event loop by default, exactly the
///   post's behaviour, or on fanout's blocking pool with
///   `blocking_policy::offload`), or a fanout::invocation<R> (from a
///   fanout::callable, for ranges that mix both kinds).
/// - Items start in input order; with `options.max_concurrency` = n > 0, at
///   most n run at once and inputs are pulled only as slots free up. Inline
///   blocking calls run one at a time, whatever the limit.
/// - Empty input completes at once with an empty vector (without blocking).
/// - Ranges are held for the duration: lvalues by reference, rvalues moved in.
///   Elements of forward ranges are passed by reference, others by value.
///
/// @par Errors
/// The first exception thrown by an item (or by the input ranges) cancels the
/// items still running, starts no new ones, and is rethrown once every started
/// item has finished. Nothing keeps running after the await completes.
///
/// @par Cancellation
/// Cancelling the awaiting coroutine cancels every running item (terminal
/// cancellation), starts no more, and the await throws
/// `boost::system::system_error(operation_aborted)` once they have finished.
/// Blocking calls still queued on the pool never start; running ones are
/// waited for.
///
/// @par Thread safety
/// Correct on multi-threaded executors (a `thread_pool`, an `io_context` run
/// by several threads): each worker runs on its own strand, and the shared
/// bookkeeping is guarded. `f` may be called concurrently from several
/// threads there, and with `offload`.
///
/// @code
/// auto results = co_await fanout::async_map([](auto& x) { return x(); }, tasks);
/// auto sums = co_await fanout::async_map({.max_concurrency = 5}, add, xs, ys);
/// @endcode
template <typename F, typename... Ranges>
requires map_function<F, Ranges...>
[[nodiscard]] boost::asio::awaitable<map_result_t<F, Ranges...>> async_map(const map_options& options, F&& f,
                                                                           Ranges&&... ranges)
{
  return detail::map_coroutine<error_policy::fail_fast, std::decay_t<F>, detail::range_holder<Ranges>...>(
      options, std::forward<F>(f), detail::range_holder<Ranges>(std::forward<Ranges>(ranges))...);
}

/// async_map with default options: unlimited concurrency, plain calls inline.
template <typename F, typename... Ranges>
requires map_function<F, Ranges...>
[[nodiscard]] boost::asio::awaitable<map_result_t<F, Ranges...>> async_map(F&& f, Ranges&&... ranges)
{
  return async_map(map_options{}, std::forward<F>(f), std::forward<Ranges>(ranges)...);
}

/// async_map with the collect-all error policy (Promise.allSettled, asyncio's
/// `gather(return_exceptions=True)`): every item runs, whatever the others
/// do, and the result holds each item's value or exception, in input order.
/// Item failures never throw; the map itself still fails with
/// `operation_aborted` when the awaiting coroutine is cancelled and with
/// `fanout::error::timed_out` when `options.deadline` passes. Everything else
/// (concurrency limit, blocking policy, per-item timeout, ordering,
/// cancellation, thread safety) is as for async_map.
///
/// @code
/// for (auto& r : co_await fanout::async_map_settled(fetch, urls))
///   if (r) use(r.value()); else log(r.error());
/// @endcode
template <typename F, typename... Ranges>
requires map_function<F, Ranges...>
[[nodiscard]] boost::asio::awaitable<map_settled_result_t<F, Ranges...>> async_map_settled(const map_options& options,
                                                                                           F&& f, Ranges&&... ranges)
{
  return detail::map_coroutine<error_policy::collect_all, std::decay_t<F>, detail::range_holder<Ranges>...>(
      options, std::forward<F>(f), detail::range_holder<Ranges>(std::forward<Ranges>(ranges))...);
}

/// async_map_settled with default options.
template <typename F, typename... Ranges>
requires map_function<F, Ranges...>
[[nodiscard]] boost::asio::awaitable<map_settled_result_t<F, Ranges...>> async_map_settled(F&& f, Ranges&&... ranges)
{
  return async_map_settled(map_options{}, std::forward<F>(f), std::forward<Ranges>(ranges)...);
}

} // namespace fanout
