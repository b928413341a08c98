// fanout/event.hpp — a flag that coroutines wait for (asyncio.Event).
#pragma once

#include "fanout/detail/completion.hpp"
#include "fanout/detail/event_state.hpp"
#include "fanout/detail/io_executor.hpp"

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/async_result.hpp>
#include <boost/system/error_code.hpp>

#include <cstddef>
#include <memory>
#include <utility>

namespace fanout {

/// A flag, initially clear: `set()` wakes every waiter and lets later waits
/// through at once until `clear()`.
///
/// A waiter resumes on its own executor (the awaiting coroutine's, or the
/// one bound to its handler). Destroying the event completes its waiters with
/// `asio::error::operation_aborted`.
///
/// @par Thread safety
/// Every member may be called concurrently from any thread.
///
/// @code
/// fanout::event ready;
/// // one coroutine:            // another:
/// co_await ready.async_wait(); // ready.set();
/// @endcode
class event
{
public:
  /// The completion signature of async_wait.
  using wait_signature = void(boost::system::error_code);

  /// A clear event.
  event() : state_(std::make_shared<detail::event_state>()) {}

  event(const event&) = delete;
  event& operator=(const event&) = delete;

  /// Completes every waiter with operation_aborted.
  ~event() { state_->abort_waiters(); }

  /// Sets the flag: every waiter completes (with success), and so does every
  /// later wait until clear(). Setting a set event does nothing.
  void set() { state_->set(); }

  /// Clears the flag: later waits wait for the next set(). Waiters woken by
  /// an earlier set() still complete with success.
  void clear() { state_->clear(); }

  /// True while the flag is set.
  [[nodiscard]] bool is_set() const { return state_->is_set(); }

  /// Waits parked now.
  [[nodiscard]] std::size_t waiting() const { return state_->waiting(); }

  /// Waits until the flag is set.
  ///
  /// @param token any completion token whose handler has an associated
  ///        executor (a coroutine's, asio::use_future's, or a callback bound with
  ///        `asio::bind_executor`). By default detail::default_token_t
  ///        (asio::deferred, or asio::use_awaitable before Boost 1.83):
  ///        `co_await ev.async_wait()` either way.
  ///
  /// @par Completion signature
  /// `void(boost::system::error_code)`: success once the flag is set, or
  /// `asio::error::operation_aborted` (cancelled, or the event destroyed). The
  /// handler runs on its associated executor, never inside this call, even
  /// when the flag is set already.
  ///
  /// @par Per-operation cancellation
  /// `terminal`, `partial` and `total`: a cancelled wait leaves the waiters
  /// and completes with operation_aborted. After a set() has woken it,
  /// cancellation has no effect.
  ///
  /// @par Thread safety
  /// May be called from any thread.
  ///
  /// @code
  /// co_await ev.async_wait();
  /// @endcode
  template <
      boost::asio::completion_token_for<wait_signature> Token = detail::default_token_t<boost::asio::any_io_executor>>
  auto async_wait(Token&& token = Token())
  {
    return boost::asio::async_initiate<Token, wait_signature>(initiate_wait{}, token, state_);
  }

private:
  struct initiate_wait
  {
    template <typename Handler>
    void operator()(Handler&& handler, std::shared_ptr<detail::event_state> state) const
    {
      static_assert(detail::has_associated_executor_v<Handler>,
                    "fanout::event::async_wait: the completion handler needs an associated executor "
                    "(bind one with asio::bind_executor)");
      state->async_wait(std::forward<Handler>(handler));
    }
  };

  std::shared_ptr<detail::event_state> state_;
};

} // namespace fanout
