// fanout/async_map.hpp — the post's async_map: f over zipped ranges,
// concurrently, results in input order.
#pragma once

#include "fanout/callable.hpp"
#include "fanout/map_options.hpp"
#include "fanout/outcome.hpp"

#include "fanout/detail/io_executor.hpp"
#include "fanout/detail/map_arguments.hpp"
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

// Aliases only (no class instantiated): used in the signatures of the
// overloads, where a wrong guess must be a substitution failure.
template <typename F, typename... Ranges>
using map_value_t = item_value_t<std::decay_t<F>, map_args_t<Ranges...>>;

// The engine of a collect map: fail-fast keeps values, settled outcomes.
template <bool Settled, typename F, typename... Ranges>
using collect_engine_t =
    map_engine<map_delivery::collect, Settled,
               std::conditional_t<Settled, outcome<map_value_t<F, Ranges...>>, map_value_t<F, Ranges...>>,
               std::decay_t<F>, map_input_t<Ranges...>>;

inline map_settings settings_of(const map_options& options)
{
  map_settings settings{
      options.max_concurrency, {options.blocking == blocking_policy::offload, options.item_timeout}, options.deadline};
  settings.item.limiter = options.limiter;
  settings.item.rate = options.rate;
  settings.item.retry = options.retry;
  settings.item.map_deadline = options.deadline;
  return settings;
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
                               make_map_input<Ranges...>(std::forward<Ranges>(ranges)...));
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

/// A callable async_map accepts for these inputs: invocable with one element
/// of each range (or of the one asynchronous source), returning
/// `asio::awaitable<R>`, a fanout::invocation<R>, or a plain R (including
/// void).
template <typename F, typename... Ranges>
concept map_function = (sizeof...(Ranges) > 0) && detail::map_callable<F, Ranges...>;

/// map_function over ranges only (no asynchronous source).
template <typename F, typename... Ranges>
concept map_ranges_function = (detail::range_argument<Ranges> && ...) && map_function<F, Ranges...>;

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
/// - Instead of ranges, one asynchronous source (a pipeline stage): another
///   fanout stream, an `asio::experimental::channel` or `concurrent_channel`
///   of one signature `void(error_code, T)` (read with `async_receive` until
///   closed; another error fails the map), or anything whose
///   `async_next(token)`, `async_next()` or `next()` gives
///   `asio::awaitable<std::optional<T>>` (empty at the end), tried in that
///   order. It is read one element at a time, only while an item may start,
///   so a stage holds at most its own window ahead of the one that reads it
///   (back-pressure through every stage). A source that fails fails the map;
///   when the map stops (a failure, cancellation, the deadline) a pending
///   read is cancelled and a fanout stream source is cancelled as a whole. An
///   lvalue source must outlive the map; an rvalue is moved in. Blocking
///   plain calls over a source are made by the workers (never all at once
///   before the source is read).
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
/// auto pages = fanout::async_map_stream({.max_concurrency = 50}, fetch, urls);
/// auto parsed = co_await fanout::async_map({.max_concurrency = 8}, parse, pages);
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

// The completion signature of a token-form map of f over Ranges.
template <bool Settled, typename F, typename... Ranges>
using map_token_signature_t =
    value_signature_t<std::conditional_t<Settled, map_settled_result_t<F, Ranges...>, map_result_t<F, Ranges...>>>;

// Args... is `ranges..., token`: splits it and checks both parts. `ranges`:
// f maps the arguments before the last; `value`: and the last is a token for
// the map's signature.
template <bool Settled, typename F, typename Indices, typename... Args>
struct map_token_arguments_check
{
  static constexpr bool ranges = false;
  static constexpr bool value = false;
};
// f maps the arguments at @p Indices (the ranges of `ranges..., token`).
template <typename F, typename Indices, typename... Args>
struct maps_leading_arguments : std::false_type
{
};
template <typename F, std::size_t... I, typename... Args>
struct maps_leading_arguments<F, std::index_sequence<I...>, Args...>
    : std::bool_constant<map_function<F, std::tuple_element_t<I, std::tuple<Args...>>...>>
{
};

// `args...` is at least a range and a token, and f maps the ranges.
template <typename F, typename Indices, typename... Args>
concept token_form_maps = (sizeof...(Args) >= 2) && maps_leading_arguments<F, Indices, Args...>::value;

template <bool Settled, typename F, std::size_t... I, typename... Args>
requires token_form_maps<F, std::index_sequence<I...>, Args...>
struct map_token_arguments_check<Settled, F, std::index_sequence<I...>, Args...>
{
  static constexpr bool ranges = true;
  static constexpr bool value = boost::asio::completion_token_for<
      std::tuple_element_t<sizeof...(Args) - 1, std::tuple<Args...>>,
      map_token_signature_t<Settled, F, std::tuple_element_t<I, std::tuple<Args...>>...>>;
};

// The indices of every argument but the last.
template <typename... Args>
using all_but_last_t = std::make_index_sequence<(sizeof...(Args) > 0 ? sizeof...(Args) - 1 : 0)>;

template <bool Settled, typename F, typename... Args>
using map_token_check_t = map_token_arguments_check<Settled, F, all_but_last_t<Args...>, Args...>;

// A token-form call whose map is right and whose token is not: missing (f
// maps every argument after it), or not a completion token for the map's
// signature.
template <bool Settled, typename F, typename... Args>
concept map_token_mistake = !map_token_check_t<Settled, F, Args...>::value &&
                            (map_function<F, Args...> || map_token_check_t<Settled, F, Args...>::ranges);

// Says which mistake, in one line.
template <bool Settled, typename F, typename... Args>
constexpr void diagnose_map_token()
{
  constexpr bool missing = map_function<F, Args...>;
  if constexpr (Settled) {
    static_assert(!missing, "fanout::async_map_settled(executor, [options,] f, ranges..., token): the completion "
                            "token is missing (pass a callback, asio::use_future, asio::deferred, ... last)");
    static_assert(missing, "fanout::async_map_settled(executor, [options,] f, ranges..., token): the last argument "
                           "is not a completion token for void(std::exception_ptr, std::vector<fanout::outcome<R>>)");
  } else {
    static_assert(!missing, "fanout::async_map(executor, [options,] f, ranges..., token): the completion token is "
                            "missing (pass a callback, asio::use_future, asio::deferred, ... last)");
    static_assert(missing, "fanout::async_map(executor, [options,] f, ranges..., token): the last argument is not a "
                           "completion token for void(std::exception_ptr, std::vector<R>) (void(std::exception_ptr) "
                           "when R is void)");
  }
}

// Runs the map of @p f over `args...` = `ranges..., token` on @p executor.
template <bool Settled, typename Executor, typename F, typename... Args>
auto initiate_map_on(const Executor& executor, const map_options& options, F&& f, Args&&... args)
{
  auto all = std::forward_as_tuple(std::forward<Args>(args)...);
  using arguments = std::tuple<Args...>;
  return [&]<std::size_t... I>(std::index_sequence<I...>)
  {
    using engine = collect_engine_t<Settled, F, std::tuple_element_t<I, arguments>...>;
    auto e = std::make_shared<engine>(settings_of(options), boost::asio::any_io_executor(executor),
                                      std::decay_t<F>(std::forward<F>(f)),
                                      make_map_input<std::tuple_element_t<I, arguments>...>(
                                          std::forward<std::tuple_element_t<I, arguments>>(std::get<I>(all))...));
    using token_type = std::tuple_element_t<sizeof...(Args) - 1, arguments>;
    return boost::asio::async_initiate<token_type, value_signature_t<typename engine::result_type>>(
        initiate_map{}, std::get<sizeof...(Args) - 1>(all), std::move(e));
  }
  (std::make_index_sequence<sizeof...(Args) - 1>{});
}

} // namespace detail

/// The arguments of a token-form async_map after the executor and options:
/// `f, ranges..., token`, with `f` a map_function of the ranges and `token` a
/// completion token for `void(std::exception_ptr, std::vector<R>)` (or
/// `void(std::exception_ptr)` when R is void).
template <typename F, typename... RangesThenToken>
concept map_token_arguments = detail::map_token_check_t<false, F, RangesThenToken...>::value;

/// The same for async_map_settled: the token completes with
/// `void(std::exception_ptr, std::vector<outcome<R>>)`.
template <typename F, typename... RangesThenToken>
concept map_settled_token_arguments = detail::map_token_check_t<true, F, RangesThenToken...>::value;

/// The completion-token form of async_map and async_map_settled, for code
/// that is not written as coroutines:
/// `fanout::async_map(executor, [options,] f, ranges..., token)`.
///
/// Runs the map on @p executor and completes @p token with its result. The
/// ranges are used in place: lvalue ranges must outlive the operation.
///
/// @param executor where the items run: any Asio executor, or an execution
///        context (`io_context&`, `thread_pool&`: its executor).
/// @param options as for the coroutine form, braced too:
///        `fanout::async_map(ex, {.max_concurrency = 2}, f, xs, token)`.
/// @param f as for async_map.
/// @param args the ranges (as for async_map), then the completion token: a
///        callback, `asio::use_future`, `asio::deferred`,
///        `asio::use_awaitable`, `asio::as_tuple(...)`, ... The token has no
///        default (the ranges are variadic: a missing token would be taken for
///        a range); forgetting it is a compile-time error that says so.
///
/// @par Completion signature
/// `void(std::exception_ptr, std::vector<R>)`, or `void(std::exception_ptr)`
/// when R is void. The handler runs on its associated executor (@p executor
/// if it has none), never inside this call; its executor keeps outstanding
/// work until then.
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
/// fanout::async_map(ctx, fetch, urls, [](std::exception_ptr e, std::vector<page> pages) { ... });
/// std::future<std::vector<int>> f = fanout::async_map(pool, {.max_concurrency = 4}, twice, xs, asio::use_future);
/// @endcode
template <detail::executor_or_context Executor, typename F, typename... RangesThenToken>
requires map_token_arguments<F, RangesThenToken...>
auto async_map(Executor&& executor, const map_options& options, F&& f, RangesThenToken&&... args)
{
  return detail::initiate_map_on<false>(detail::io_executor_of(executor), options, std::forward<F>(f),
                                        std::forward<RangesThenToken>(args)...);
}

/// The token form of async_map with default options.
template <detail::executor_or_context Executor, typename F, typename... RangesThenToken>
requires map_token_arguments<F, RangesThenToken...>
auto async_map(Executor&& executor, F&& f, RangesThenToken&&... args)
{
  return detail::initiate_map_on<false>(detail::io_executor_of(executor), map_options{}, std::forward<F>(f),
                                        std::forward<RangesThenToken>(args)...);
}

/// The completion-token form of async_map_settled; see async_map(executor, ...).
/// Completion signature: `void(std::exception_ptr, std::vector<outcome<R>>)`.
template <detail::executor_or_context Executor, typename F, typename... RangesThenToken>
requires map_settled_token_arguments<F, RangesThenToken...>
auto async_map_settled(Executor&& executor, const map_options& options, F&& f, RangesThenToken&&... args)
{
  return detail::initiate_map_on<true>(detail::io_executor_of(executor), options, std::forward<F>(f),
                                       std::forward<RangesThenToken>(args)...);
}

/// The token form of async_map_settled with default options.
template <detail::executor_or_context Executor, typename F, typename... RangesThenToken>
requires map_settled_token_arguments<F, RangesThenToken...>
auto async_map_settled(Executor&& executor, F&& f, RangesThenToken&&... args)
{
  return detail::initiate_map_on<true>(detail::io_executor_of(executor), map_options{}, std::forward<F>(f),
                                       std::forward<RangesThenToken>(args)...);
}

/// A token form called without its token, or with something else last:
/// rejected with a message that names what is wrong.
template <detail::executor_or_context Executor, typename F, typename... Args>
requires detail::map_token_mistake<false, F, Args...>
void async_map(Executor&&, F&&, Args&&...)
{
  detail::diagnose_map_token<false, F, Args...>();
}

/// As above, with options.
template <detail::executor_or_context Executor, typename F, typename... Args>
requires detail::map_token_mistake<false, F, Args...>
void async_map(Executor&&, const map_options&, F&&, Args&&...)
{
  detail::diagnose_map_token<false, F, Args...>();
}

/// async_map_settled called without a token or with a wrong one; see above.
template <detail::executor_or_context Executor, typename F, typename... Args>
requires detail::map_token_mistake<true, F, Args...>
void async_map_settled(Executor&&, F&&, Args&&...)
{
  detail::diagnose_map_token<true, F, Args...>();
}

/// As above, with options.
template <detail::executor_or_context Executor, typename F, typename... Args>
requires detail::map_token_mistake<true, F, Args...>
void async_map_settled(Executor&&, const map_options&, F&&, Args&&...)
{
  detail::diagnose_map_token<true, F, Args...>();
}

} // namespace fanout
