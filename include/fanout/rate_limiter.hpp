// fanout/rate_limiter.hpp — a token bucket that any number of coroutines,
// maps and groups share (aiolimiter, p-throttle).
#pragma once

#include "fanout/detail/clock.hpp"
#include "fanout/detail/completion.hpp"
#include "fanout/detail/io_executor.hpp"
#include "fanout/detail/rate_state.hpp"

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/async_result.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/system/error_code.hpp>

#include <chrono>
#include <cstddef>
#include <memory>
#include <utility>

namespace fanout {

/// At most `count` acquisitions per steady-clock `period`, and up to `burst`
/// at once after idling: a token bucket of `burst` tokens, full at
/// construction, refilled with one token every `period / count`.
///
/// - Waiters are served in FIFO order, and a newcomer never takes a token
///   ahead of a waiter.
/// - In any span of time t, at most `burst + t * count / period`
///   acquisitions complete (measured from when their token was granted).
///   A waiter wakes when its token is due; one steady_timer, on the front
///   waiter's executor, waits for that.
/// - A waiter cancelled while queued takes no token.
/// - Waiting has no executor of its own: a waiter resumes on its own
///   executor (the awaiting coroutine's, or the one bound to its handler).
/// - Destroying the limiter completes its waiters with
///   `asio::error::operation_aborted`.
///
/// @par Thread safety
/// Every member may be called concurrently from any thread, by waiters on
/// any executors.
///
/// @code
/// fanout::rate_limiter rl(20, 1s, 5); // 20 per second, bursts of 5
/// for (auto& url : urls) {
///   co_await rl.acquire();
///   co_await fetch(url);
/// }
/// @endcode
class rate_limiter
{
public:
  /// The completion signature of async_acquire.
  using acquire_signature = void(boost::system::error_code);

  /// A limiter of @p count acquisitions per @p period, with bursts of up to
  /// @p burst (1: none); all @p burst are available at once.
  ///
  /// @throws `system_error(fanout::error::invalid_argument)` if @p count or
  ///         @p burst is 0, or @p period is zero or negative.
  template <typename Rep, typename Period>
  rate_limiter(std::size_t count, std::chrono::duration<Rep, Period> period, std::size_t burst)
      : state_(
            std::make_shared<detail::rate_state>(count, detail::clamp_duration(period), burst, "fanout::rate_limiter"))
  {}

  rate_limiter(const rate_limiter&) = delete;
  rate_limiter& operator=(const rate_limiter&) = delete;

  /// Completes every waiter with operation_aborted.
  ~rate_limiter() { state_->abort_waiters(); }

  /// Waits for a token.
  ///
  /// @param token any completion token whose handler has an associated
  ///        executor (a coroutine's; or a callback bound with
  ///        `asio::bind_executor`): the limiter has none of its own. By
  ///        default detail::default_token_t (asio::deferred, or
  ///        asio::use_awaitable before Boost 1.83): `co_await rl.async_acquire()`
  ///        either way.
  ///
  /// @par Completion signature
  /// `void(boost::system::error_code)`: success once a token was taken, or
  /// `asio::error::operation_aborted` (cancelled while queued, or the
  /// limiter destroyed), having taken none. The handler runs on its
  /// associated executor, never inside this call, even when a token is
  /// available at once; its executor keeps outstanding work until then.
  ///
  /// @par Per-operation cancellation
  /// `terminal`, `partial` and `total` alike: a waiter cancelled while queued
  /// leaves the queue, takes no token and completes with operation_aborted.
  /// Once its token is granted (the completion posted), cancellation has no
  /// effect and the token is spent.
  ///
  /// @par Thread safety
  /// May be called from any thread.
  ///
  /// @code
  /// rl.async_acquire(asio::bind_executor(ex, [](boost::system::error_code ec) { if (!ec) send(); }));
  /// @endcode
  template <boost::asio::completion_token_for<acquire_signature> Token =
                detail::default_token_t<boost::asio::any_io_executor>>
  auto async_acquire(Token&& token = Token())
  {
    return boost::asio::async_initiate<Token, acquire_signature>(initiate_acquire{}, token, state_);
  }

  /// Waits for a token, in a coroutine: `co_await rl.acquire();`. Throws
  /// `boost::system::system_error` with operation_aborted when the awaiting
  /// coroutine is cancelled while queued (as its cancellation state lets
  /// through: terminal by default) or the limiter is destroyed; see
  /// async_acquire.
  [[nodiscard]] boost::asio::awaitable<void> acquire() { return async_acquire(boost::asio::use_awaitable); }

private:
  struct initiate_acquire
  {
    // The state by value: the completion that rate_state::async_acquire
    // posts may end the awaiting frame, which holds the caller's copy,
    // before the call returns.
    template <typename Handler>
    void operator()(Handler&& handler, std::shared_ptr<detail::rate_state> state) const
    {
      static_assert(detail::has_associated_executor_v<Handler>,
                    "fanout::rate_limiter::async_acquire: the completion handler needs an associated executor "
                    "(bind one with asio::bind_executor)");
      state->async_acquire(std::forward<Handler>(handler));
    }
  };

  // Shared with the waiters and the timer (weakly), so that a waiter that
  // leaves after the limiter is gone finds nothing to touch.
  std::shared_ptr<detail::rate_state> state_;
};

} // namespace fanout
