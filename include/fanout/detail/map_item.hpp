// One item of a map: what f(args...) returns, and how it is run (awaited,
// started as an Asio operation, called inline, offloaded to the blocking
// pool, under the item timeout; through a shared limiter, a rate limiter and
// retries when the map has them).
#pragma once

#include "fanout/detail/backoff.hpp"
#include "fanout/detail/clock.hpp"
#include "fanout/detail/deadline_op.hpp"
#include "fanout/detail/map_gates.hpp"
#include "fanout/detail/offload_op.hpp"
#include "fanout/detail/retry_loop.hpp"

#include <boost/asio/async_result.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/deferred.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/version.hpp>

#include <optional>
#include <tuple>
#include <type_traits>
#include <utility>

namespace fanout::detail {

template <typename T>
struct awaitable_traits
{
  static constexpr bool value = false;
};
template <typename T, typename Executor>
struct awaitable_traits<boost::asio::awaitable<T, Executor>>
{
  static constexpr bool value = true;
  using value_type = T;
};

/// `asio::awaitable<T, E>`.
template <typename T>
concept awaitable_type = awaitable_traits<std::remove_cvref_t<T>>::value;

/// A call that is either a coroutine or a blocking call not yet made, the
/// consumer choosing where to make it (fanout::invocation).
template <typename T>
concept invocation_type = requires(T& t)
{
  typename T::value_type;
  {
    t.is_blocking()
    } -> std::convertible_to<bool>;
  t.take_coroutine();
  t.take_blocking();
};

// std::move(op)(use_awaitable) gives an awaitable (a call that does not
// compile makes it false).
template <typename T>
concept starts_as_awaitable = awaitable_type<decltype(std::move(std::declval<T&>())(boost::asio::use_awaitable_t<>{}))>;

/// An Asio asynchronous operation not yet started, with one completion
/// signature: a deferred operation (`timer.async_wait(asio::deferred)`), or
/// any object `op` that `std::move(op)(token)` initiates. The item starts it
/// by awaiting it with `use_awaitable`, under the item's cancellation slot:
/// an error_code failure is thrown as `boost::system::system_error`, an
/// exception_ptr one rethrown.
template <typename T>
concept async_operation_type = !awaitable_type<T> && !invocation_type<T> && starts_as_awaitable<T>;

/// Anything Asio would take for an asynchronous operation (deferred, or one
/// that accepts a completion token), runnable by a map or not.
template <typename T>
concept asio_operation_like = boost::asio::is_deferred<T>::value
#if BOOST_ASIO_VERSION >= 102800
    || boost::asio::is_async_operation<T>::value
#endif
    ;

/// What f returned is a blocking call's result, to be made inline or
/// offloaded.
template <typename T>
concept plain_call_type = !awaitable_type<T> && !invocation_type<T> && !async_operation_type<T>;

/// What awaiting an item gives, from what f returned: T for
/// `awaitable<T>` and `invocation<T>`, what `co_await op(use_awaitable)`
/// gives for an async operation, else the plain call's own result.
template <typename R>
struct item_value
{
  static_assert(!asio_operation_like<R>,
                "fanout::async_map: f returns an Asio deferred object or asynchronous operation that cannot be run "
                "as an item: an item operation must have exactly one completion signature (void(error_code, T), "
                "void(T), void(error_code), void(std::exception_ptr, T) or void()) and accept asio::use_awaitable");
  using type = R;
};
template <async_operation_type R>
struct item_value<R>
{
  using type = typename awaitable_traits<decltype(std::declval<R>()(boost::asio::use_awaitable_t<>{}))>::value_type;
};
template <awaitable_type R>
struct item_value<R>
{
  using type = typename awaitable_traits<R>::value_type;
};
template <invocation_type R>
struct item_value<R>
{
  using type = typename R::value_type;
};

/// What f(args...) returns, for one item's arguments @p Args (a tuple).
template <typename F, typename Args>
using item_call_t = std::remove_cvref_t<decltype(std::apply(std::declval<F&>(), std::declval<Args&>()))>;

template <typename F, typename Args>
using item_value_t = typename item_value<item_call_t<F, Args>>::type;

/// How items run (from map_options).
struct item_settings
{
  bool offload = false;                            // plain calls go to the blocking pool
  clock::duration timeout{};                       // per item; zero or less: none
  fanout::limiter* limiter = nullptr;              // a place held while the item runs
  fanout::rate_limiter* rate = nullptr;            // a token before each attempt
  std::optional<backoff> retry{};                  // attempts after a failure
  std::optional<clock::time_point> map_deadline{}; // no retry sleep ends past it
  bool has_timeout() const noexcept { return timeout > clock::duration::zero(); }
  /// The item passes a limiter, a rate limiter or retries.
  bool gated() const noexcept { return limiter != nullptr || rate != nullptr || retry.has_value(); }
};

/// Awaits @p op under the item timeout's @p deadline: an item still running
/// when it passes fails with timed_out, whatever it then returns.
template <typename V>
boost::asio::awaitable<V> timed_item(boost::asio::awaitable<V> op, clock::time_point deadline)
{
  if constexpr (std::is_void_v<V>) {
    co_await await_strict_deadline(std::move(op), deadline);
  } else {
    std::optional<V> value;
    co_await await_strict_deadline(store_value(&value, std::move(op)), deadline);
    co_return std::move(*value);
  }
}

/// An item whose call is not an awaitable, as one: the coroutine an
/// invocation holds, or the blocking call made inline or offloaded.
template <typename V, typename F, typename Args>
boost::asio::awaitable<V> call_item(F& f, Args& args, bool offload)
{
  using call_type = item_call_t<F, Args>;
  if constexpr (invocation_type<call_type>) {
    auto call = std::apply(f, args);
    if (!call.is_blocking())
      co_return co_await call.take_coroutine();
    else if (offload)
      co_return co_await offload_call<V>(blocking_executor(), call.take_blocking());
    else
      co_return call.take_blocking()();
  } else if (offload) {
    co_return co_await offload_call<V>(blocking_executor(), [&f, &args] { return std::apply(f, args); });
  } else {
    co_return std::apply(f, args);
  }
}

/// One call of f, as an awaitable.
template <typename V, typename F, typename Args>
boost::asio::awaitable<V> start_item(F& f, Args& args, const item_settings& settings)
{
  if constexpr (awaitable_type<item_call_t<F, Args>>)
    return std::apply(f, args);
  else if constexpr (async_operation_type<item_call_t<F, Args>>)
    return std::apply(f, args)(boost::asio::use_awaitable_t<>{}); // starts when awaited
  else
    return call_item<V>(f, args, settings.offload);
}

/// The item under its timeout, retried: each attempt takes a rate token
/// first; the timeout bounds every attempt and backoff sleep together, and no
/// sleep ends past it or the map's deadline.
template <typename V, typename F, typename Args>
boost::asio::awaitable<V> retried_item(F& f, Args& args, const item_settings& settings)
{
  auto attempt = [&f, &args, &settings]() -> boost::asio::awaitable<V> {
    if (settings.rate != nullptr)
      co_await take_token(*settings.rate);
    co_return co_await start_item<V>(f, args, settings);
  };
  std::optional<clock::time_point> item_deadline;
  if (settings.has_timeout())
    item_deadline = deadline_after(settings.timeout);
  std::optional<clock::time_point> bound = settings.map_deadline;
  if (item_deadline && (!bound || *item_deadline < *bound))
    bound = item_deadline;
  auto run =
      settings.retry ? retry_with(attempt, *settings.retry, {.deadline = bound}, "fanout::async_map") : attempt();
  if (item_deadline)
    co_return co_await timed_item<V>(std::move(run), *item_deadline);
  co_return co_await std::move(run);
}

/// The item holding a place of its limiter: the place is held by code
/// compiled once (map_gates.cpp), through which the item goes type-erased.
template <typename V, typename F, typename Args>
boost::asio::awaitable<V> held_item(F& f, Args& args, const item_settings& settings)
{
  if constexpr (std::is_void_v<V>) {
    co_await run_holding_place(*settings.limiter, retried_item<V>(f, args, settings));
  } else {
    std::optional<V> value;
    co_await run_holding_place(*settings.limiter, store_value(&value, retried_item<V>(f, args, settings)));
    co_return std::move(*value);
  }
}

/// The item as one awaitable, with its timeout, its limiter place, rate
/// tokens and retries.
template <typename V, typename F, typename Args>
boost::asio::awaitable<V> run_item(F& f, Args& args, const item_settings& settings)
{
  if (settings.limiter != nullptr)
    return held_item<V>(f, args, settings);
  if (settings.gated())
    return retried_item<V>(f, args, settings);
  if (settings.has_timeout())
    return timed_item<V>(start_item<V>(f, args, settings), deadline_after(settings.timeout));
  return start_item<V>(f, args, settings);
}

} // namespace fanout::detail
