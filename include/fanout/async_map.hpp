// fanout/async_map.hpp — the post's async_map: f over zipped ranges,
// concurrently, results in input order.
#pragma once

#include "fanout/callable.hpp"
#include "fanout/map_options.hpp"
#include "fanout/outcome.hpp"

#include "fanout/detail/map_completion.hpp"
#include "fanout/detail/map_engine.hpp"
#include "fanout/detail/signature.hpp"

#include <boost/asio/awaitable.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/deferred.hpp>
#include <boost/asio/execution/executor.hpp>
#include <boost/asio/is_executor.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <concepts>
#include <cstddef>
#include <memory>
#include <ranges>
#include <tuple>
#include <type_traits>
#include <utility>
#include <vector>

namespace fanout {

namespace detail {

template <typename... Ranges>
using map_input_t = zip_input<range_holder<Ranges>...>;

// Aliases only (no class instantiated): used in the signatures of the
// overloads, where a wrong guess must be a substitution failure.
template <typename F, typename... Ranges>
using map_value_t = item_value_t<std::decay_t<F>, std::tuple<map_arg_t<range_holder<Ranges>>...>>;

// The engine of a collect map: fail-fast keeps values, settled outcomes.
template <bool Settled, typename F, typename... Ranges>
using collect_engine_t =
    map_engine<map_delivery::collect, Settled,
               std::conditional_t<Settled, outcome<map_value_t<F, Ranges...>>, map_value_t<F, Ranges...>>,
               std::decay_t<F>, map_input_t<Ranges...>>;

inline map_settings settings_of(const map_options& options)
{
  return {
      options.max_concurrency, {options.blocking == blocking_policy::offload, options.item_timeout}, options.deadline};
}

template <typename Engine, typename F, typename Input>
boost::asio::awaitable<typename Engine::result_type> map_coroutine(map_settings settings, F f, Input input)
{
  // Already cancelled: start nothing (the wait below would throw at once,
  // leaving started items behind).
  const boost::asio::cancellation_state state = co_await boost::asio::this_coro::cancellation_state;
  if (state.cancelled() != boost::asio::cancellation_type::none)
    std::rethrow_exception(aborted_error("fanout::async_map"));
  auto engine =
      std::make_shared<Engine>(settings, co_await boost::asio::this_coro::executor, std::move(f), std::move(input));
  engine->start();
  // A map that finished inside start() (plain calls made inline) has nothing
  // to wait for.
  if (!engine->finished())
    co_await engine->await_finished();
  co_return engine->take_result();
}

template <bool Settled, typename F, typename... Ranges>
auto make_map_coroutine(const map_options& options, F&& f, Ranges&&... ranges)
{
  using engine = collect_engine_t<Settled, F, Ranges...>;
  return map_coroutine<engine>(settings_of(options), std::decay_t<F>(std::forward<F>(f)),
                               map_input_t<Ranges...>(range_holder<Ranges>(std::forward<Ranges>(ranges))...));
}

} // namespace detail

/// What `co_await async_map(f, ranges...)` gives: `std::vector<R>` in input
/// order, or void when f's items produce nothing.
template <typename F, typename... Ranges>
using map_result_t = std::conditional_t<std::is_void_v<detail::map_value_t<F, Ranges...>>, void,
                                        std::vector<detail::map_value_t<F, Ranges...>>>;

/// What `co_await async_map_settled(f, ranges...)` gives: one
/// `fanout::outcome<R>` per item, in input order.
template <typename F, typename... Ranges>
using map_settled_result_t = std::vector<outcome<detail::map_value_t<F, Ranges...>>>;

/// A callable async_map accepts for these ranges: invocable with one element
/// of each, returning `asio::awaitable<R>`, a fanout::invocation<R>, or a
/// plain R (including void).
template <typename F, typename... Ranges>
concept map_function = (sizeof...(Ranges) > 0) &&
                       (std::ranges::input_range<typename detail::range_holder<Ranges>::range_type&> && ...) &&
                       std::invocable<std::decay_t<F>&, detail::map_arg_t<detail::range_holder<Ranges>>&...>;

/// Applies @p f to each tuple of elements of @p ranges (zipped: the shortest
/// range decides, as Python's `map`), runs the items concurrently on the
/// awaiting coroutine's executor, and gives their results in input order.
///
/// - `f(args...)` may return `asio::awaitable<R>` (awaited), a plain `R` (a
///   blocking call: made inline on the event loop by default, exactly the
///   post's behaviour, or on fanout's blocking pool with
///   `blocking_policy::offload`), a fanout::invocation<R> (from a
///   fanout::callable, for ranges that mix both kinds), or an Asio async
///   operation not yet started with one completion signature (e.g.
///   `timer.async_wait(asio::deferred)`): it is started by awaiting it, an
///   error_code failure is an item failure (`boost::system::system_error`),
///   and it is cancelled like any item. One that cannot be run is rejected at
///   compile time.
/// - R need only be move-constructible (no default constructor, no copy),
///   with or without `item_timeout` and `deadline`, in every form of the map.
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
/// by several threads): workers run on strands of the executor (up to 16,
/// shared), each item's cancellation is emitted on its worker's strand, and
/// the shared bookkeeping is guarded. `f` may be called concurrently from several
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
  return detail::make_map_coroutine<false>(options, std::forward<F>(f), std::forward<Ranges>(ranges)...);
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
  return detail::make_map_coroutine<true>(options, std::forward<F>(f), std::forward<Ranges>(ranges)...);
}

/// async_map_settled with default options.
template <typename F, typename... Ranges>
requires map_function<F, Ranges...>
[[nodiscard]] boost::asio::awaitable<map_settled_result_t<F, Ranges...>> async_map_settled(F&& f, Ranges&&... ranges)
{
  return async_map_settled(map_options{}, std::forward<F>(f), std::forward<Ranges>(ranges)...);
}

namespace detail {

template <typename T>
concept executor_like = boost::asio::execution::is_executor<T>::value || boost::asio::is_executor<T>::value;

// The token form: async_map(executor, [options,] f, ranges..., token).
template <bool Settled, typename Executor, typename... Args>
auto initiate_map_on(const Executor& executor, Args&&... args)
{
  auto all = std::forward_as_tuple(std::forward<Args>(args)...);
  constexpr std::size_t last = sizeof...(Args) - 1;
  constexpr bool with_options = std::is_convertible_v<std::tuple_element_t<0, std::tuple<Args...>>, const map_options&>;
  constexpr std::size_t first_range = with_options ? 2 : 1;
  return [&]<std::size_t... I>(std::index_sequence<I...>)
  {
    using F = std::tuple_element_t<first_range - 1, std::tuple<Args...>>;
    using engine = collect_engine_t<Settled, F, std::tuple_element_t<first_range + I, std::tuple<Args...>>...>;
    map_options options;
    if constexpr (with_options)
      options = std::get<0>(all);
    auto e = std::make_shared<engine>(
        settings_of(options), boost::asio::any_io_executor(executor),
        std::decay_t<F>(std::forward<F>(std::get<first_range - 1>(all))),
        typename engine::input_type(range_holder<std::tuple_element_t<first_range + I, std::tuple<Args...>>>(
            std::forward<std::tuple_element_t<first_range + I, std::tuple<Args...>>>(
                std::get<first_range + I>(all)))...));
    using token_type = std::tuple_element_t<last, std::tuple<Args...>>;
    return boost::asio::async_initiate<token_type, value_signature_t<typename engine::result_type>>(
        initiate_map{}, std::get<last>(all), std::move(e));
  }
  (std::make_index_sequence<sizeof...(Args) - first_range - 1>{});
}

} // namespace detail

/// The completion-token form of async_map and async_map_settled, for code
/// that is not written as coroutines:
/// `fanout::async_map(executor, [options,] f, ranges..., token)`.
///
/// Runs the map on @p executor and completes @p token with its result. The
/// ranges are used in place: lvalue ranges must outlive the operation.
///
/// @param executor where the items run (any Asio executor).
/// @param args `[options,] f, ranges...` as for async_map, then the token
///        (a callback, `asio::use_future`, `asio::deferred`,
///        `asio::use_awaitable`, `asio::as_tuple(...)`, ...). Boost 1.81 has no
///        default completion token, so the token must be given.
///
/// @par Completion signature
/// `void(std::exception_ptr, std::vector<R>)`, or `void(std::exception_ptr)`
/// when R is void. The handler runs on its associated executor (@p executor
/// if it has none), never inside this call.
///
/// @par Per-operation cancellation
/// `terminal`, `partial` and `total` through the handler's cancellation slot
/// cancel every running item; the handler then gets `operation_aborted` once
/// they have finished.
///
/// @par Thread safety
/// May be called from any thread.
///
/// @code
/// fanout::async_map(ctx.get_executor(), fetch, urls,
///                   [](std::exception_ptr e, std::vector<page> pages) { ... });
/// std::future<std::vector<int>> f = fanout::async_map(pool.get_executor(), twice, xs, asio::use_future);
/// @endcode
template <detail::executor_like Executor, typename... Args>
requires(sizeof...(Args) >= 3) auto async_map(const Executor& executor, Args&&... args)
{
  return detail::initiate_map_on<false>(executor, std::forward<Args>(args)...);
}

/// The completion-token form of async_map_settled; see async_map(executor, ...).
/// Completion signature: `void(std::exception_ptr, std::vector<outcome<R>>)`.
template <detail::executor_like Executor, typename... Args>
requires(sizeof...(Args) >= 3) auto async_map_settled(const Executor& executor, Args&&... args)
{
  return detail::initiate_map_on<true>(executor, std::forward<Args>(args)...);
}

} // namespace fanout
