// fanout/callable.hpp — one type for "a coroutine function or a blocking one",
// so that a range can mix them, as the post's [b, a, b, a, b] does.
#pragma once

#include <boost/asio/awaitable.hpp>

#include <concepts>
#include <functional>
#include <tuple>
#include <type_traits>
#include <utility>
#include <variant>

namespace fanout {

/// True (`std::true_type`) for `asio::awaitable<T, E>`, false for any other
/// type; see is_awaitable_v.
template <typename T>
struct is_awaitable : std::false_type
{
};
/// An `asio::awaitable<T, E>`: true.
template <typename T, typename Executor>
struct is_awaitable<boost::asio::awaitable<T, Executor>> : std::true_type
{
};
/// True for `asio::awaitable<T, E>`.
template <typename T>
inline constexpr bool is_awaitable_v = is_awaitable<std::remove_cvref_t<T>>::value;

/// What calling a fanout::callable gives: either a coroutine, ready to be
/// awaited, or a blocking call, bound to its arguments and not yet made. The
/// choice of when and where to make the blocking call (inline on the event
/// loop, or on a thread) is left to whoever consumes it: fanout::async_map
/// does it according to its map_options.
template <typename R>
class invocation
{
public:
  /// The call's result type.
  using value_type = R;

  /// A coroutine call.
  explicit invocation(boost::asio::awaitable<R> coroutine) : call_(std::move(coroutine)) {}
  /// A blocking call, made when call_blocking() is invoked.
  explicit invocation(std::function<R()> blocking) : call_(std::move(blocking)) {}

  /// True if this is a blocking call.
  [[nodiscard]] bool is_blocking() const noexcept { return call_.index() == 1; }

  /// The coroutine (precondition: !is_blocking()). Leaves this invocation empty.
  [[nodiscard]] boost::asio::awaitable<R> take_coroutine() { return std::get<0>(std::move(call_)); }

  /// The blocking call (precondition: is_blocking()).
  [[nodiscard]] std::function<R()> take_blocking() { return std::get<1>(std::move(call_)); }

private:
  std::variant<boost::asio::awaitable<R>, std::function<R()>> call_;
};

/// Declared for function types only: see callable<R(Args...)>.
template <typename Signature>
class callable;

namespace detail {

/// What callable<R(Args...)> (@p Self) wraps: anything callable as an lvalue
/// with Args, other than a callable of the same signature (which is copied).
template <typename F, typename Self, typename... Args>
concept wrappable_by = !std::same_as<std::remove_cvref_t<F>, Self> && std::invocable<F&, Args...>;

} // namespace detail

/// A callable that is either a coroutine function (returning
/// `asio::awaitable<R>`) or a plain blocking function (returning R), chosen
/// at run time. Calling it never runs blocking code: it returns an
/// invocation<R> for the consumer to run.
///
/// @code
/// std::vector<fanout::callable<std::string()>> tasks{b, a, b, a, b};
/// auto results = co_await fanout::async_map([](auto& x) { return x(); }, tasks);
/// @endcode
template <typename R, typename... Args>
class callable<R(Args...)>
{
public:
  /// How a coroutine function is held.
  using coroutine_function = std::function<boost::asio::awaitable<R>(Args...)>;
  /// How a blocking function is held.
  using blocking_function = std::function<R(Args...)>;

  /// Wraps @p f: a coroutine function if `f(args...)` is an
  /// `asio::awaitable<R>`, else a blocking function whose result converts to R.
  template <detail::wrappable_by<callable, Args...> F>
  callable(F f) // NOLINT(google-explicit-constructor): implicit, so {b, a} lists work
  {
    using result = std::invoke_result_t<F&, Args...>;
    if constexpr (is_awaitable_v<result>)
      fn_.template emplace<0>(std::move(f));
    else
      fn_.template emplace<1>(std::move(f));
  }

  /// True if it wraps a coroutine function.
  [[nodiscard]] bool is_coroutine() const noexcept { return fn_.index() == 0; }

  /// Starts nothing: returns the coroutine to await, or the blocking call
  /// bound to copies of @p args.
  [[nodiscard]] invocation<R> operator()(Args... args) const
  {
    if (fn_.index() == 0)
      return invocation<R>(std::get<0>(fn_)(std::forward<Args>(args)...));
    return invocation<R>(
        std::function<R()>([fn = std::get<1>(fn_), bound = std::make_tuple(std::move(args)...)]() mutable {
          return std::apply(fn, bound);
        }));
  }

private:
  std::variant<coroutine_function, blocking_function> fn_;
};

/// True (`std::true_type`) for fanout::invocation<R>, false for any other
/// type; see is_invocation_v.
template <typename T>
struct is_invocation : std::false_type
{
};
/// A fanout::invocation<R>: true.
template <typename R>
struct is_invocation<invocation<R>> : std::true_type
{
};
/// True for fanout::invocation<R>.
template <typename T>
inline constexpr bool is_invocation_v = is_invocation<std::remove_cvref_t<T>>::value;

} // namespace fanout
