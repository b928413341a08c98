// What an initiating function accepts for its I/O executor: an executor, or
// an execution context (whose executor it then uses), as Asio's own do.
#pragma once

#include <boost/asio/async_result.hpp>
#include <boost/asio/deferred.hpp>
#include <boost/asio/execution/executor.hpp>
#include <boost/asio/execution_context.hpp>
#include <boost/asio/is_executor.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/version.hpp>

#include <type_traits>

namespace fanout::detail {

/// An Asio executor (standard or Networking TS style).
template <typename T>
concept io_executor = boost::asio::execution::is_executor<std::remove_cvref_t<T>>::value ||
    boost::asio::is_executor<std::remove_cvref_t<T>>::value;

/// An Asio execution context, or a class derived from one. (In parentheses,
/// which change nothing, because clang-format 14 reads `>&,` as comparisons.)
template <typename T>
concept execution_context_type = (std::is_convertible_v<std::remove_cvref_t<T>&, boost::asio::execution_context&>);

/// Something with a get_executor() member.
template <typename T>
concept has_executor = requires(std::remove_cvref_t<T>& ctx)
{
  ctx.get_executor();
};

/// An execution context with an executor (`io_context`, `thread_pool`, ...).
template <typename T>
concept io_context_like = execution_context_type<T> && has_executor<T>;

/// What a token form takes where Asio takes an executor or a context.
template <typename T>
concept executor_or_context = io_executor<T> || io_context_like<T>;

/// The executor of @p target: itself, or the context's.
template <executor_or_context T>
auto io_executor_of(T& target)
{
  if constexpr (io_context_like<T>)
    return target.get_executor();
  else
    return std::remove_cvref_t<T>(target);
}

/// What fanout takes when Asio's trait names no default token (before Boost
/// 1.86, for a plain executor): asio::deferred, as later Boosts do; but
/// before Asio 1.28.2 (Boost 1.83) a deferred operation completing with
/// `void(std::exception_ptr, T)` cannot be awaited in a coroutine (the
/// awaitable's handler tests the wrong member), so there it is
/// asio::use_awaitable (for a coroutine on an any_io_executor, whatever the
/// operation's executor). Either way `co_await op()` works.
#if BOOST_ASIO_VERSION >= 102802
template <typename Executor>
using fallback_token_t = boost::asio::deferred_t;
#else
template <typename Executor>
using fallback_token_t = boost::asio::use_awaitable_t<>;
#endif

/// The default completion token of an operation whose I/O executor is
/// @p Executor: Asio's default_completion_token_t for it (asio::deferred for
/// a plain executor from Boost 1.86), else fallback_token_t.
template <typename Executor>
using default_token_t =
    std::conditional_t<std::is_void_v<boost::asio::default_completion_token_t<Executor>>, fallback_token_t<Executor>,
                       boost::asio::default_completion_token_t<Executor>>;

} // namespace fanout::detail
