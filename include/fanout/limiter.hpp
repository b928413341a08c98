// fanout/limiter.hpp — a capacity limiter that any number of coroutines,
// maps and groups share (Trio's CapacityLimiter, asyncio's Semaphore).
#pragma once

#include "fanout/detail/completion.hpp"
#include "fanout/detail/handler_adapter.hpp"
#include "fanout/detail/io_executor.hpp"
#include "fanout/detail/semaphore.hpp"

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/async_result.hpp>
#include <boost/system/error_code.hpp>

#include <cstddef>
#include <memory>
#include <optional>
#include <utility>

namespace fanout {

/// At most `capacity()` holders at once: `acquire()` gives a permit, whose
/// destruction gives the place back to the longest waiter (FIFO).
///
/// Waiting has no executor of its own: a waiter resumes on its own executor
/// (the awaiting coroutine's, or the one bound to its handler). A free place
/// goes to waiters first, so a newcomer never overtakes them.
///
/// Destroying the limiter completes its waiters with
/// `asio::error::operation_aborted`; permits still held stay valid and give
/// their place back harmlessly when destroyed.
///
/// @par Thread safety
/// Every member may be called concurrently from any thread; permits may be
/// destroyed on any thread.
///
/// @code
/// fanout::limiter lim(5);
/// auto permit = co_await lim.acquire(); // at most 5 coroutines past this line
/// co_await fetch(url);
/// @endcode
class limiter
{
public:
  /// One place held in a limiter; gives it back when destroyed, moved onto,
  /// or release()d. Move-only. Empty when default-constructed or moved from.
  class permit
  {
  public:
    /// An empty permit: holds no place.
    permit() = default;

    /// True while this permit holds a place.
    [[nodiscard]] bool holds() const noexcept { return place_.held(); }
    /// holds().
    explicit operator bool() const noexcept { return holds(); }

    /// Gives the place back now (to the longest waiter, if any); then empty.
    void release() noexcept { place_.release(); }

  private:
    friend class limiter;
    explicit permit(detail::semaphore_place place) noexcept : place_(std::move(place)) {}
    detail::semaphore_place place_;
  };

  /// The completion signature of async_acquire.
  using acquire_signature = void(boost::system::error_code, permit);

  /// A limiter of @p capacity places. 0 gives no place until resize().
  explicit limiter(std::size_t capacity) : state_(std::make_shared<detail::semaphore_state>(capacity)) {}

  limiter(const limiter&) = delete;
  limiter& operator=(const limiter&) = delete;

  /// Completes every waiter with operation_aborted.
  ~limiter() { state_->abort_waiters(); }

  /// Waits for a place.
  ///
  /// @param token any completion token whose handler has an associated
  ///        executor (a coroutine's, asio::use_future's, or a callback bound with
  ///        `asio::bind_executor`): the limiter has none of its own. By default
  ///        detail::default_token_t (asio::deferred, or asio::use_awaitable
  ///        before Boost 1.83): `co_await lim.async_acquire()` either way.
  ///
  /// @par Completion signature
  /// `void(boost::system::error_code, limiter::permit)`: success and a permit
  /// holding a place, or `asio::error::operation_aborted` and an empty permit
  /// (cancelled, or the limiter destroyed). The handler runs on its associated
  /// executor, never inside this call, even when a place is free at once.
  ///
  /// @par Per-operation cancellation
  /// `terminal`, `partial` and `total`: a waiter cancelled while queued leaves
  /// the queue, takes nothing and completes with operation_aborted. Once a
  /// place is given (the completion is posted), cancellation has no effect:
  /// the waiter gets its permit.
  ///
  /// @par Thread safety
  /// May be called from any thread.
  ///
  /// @code
  /// lim.async_acquire(asio::bind_executor(ex, [](boost::system::error_code ec, fanout::limiter::permit p) { ... }));
  /// @endcode
  template <boost::asio::completion_token_for<acquire_signature> Token =
                detail::default_token_t<boost::asio::any_io_executor>>
  auto async_acquire(Token&& token = Token())
  {
    return boost::asio::async_initiate<Token, acquire_signature>(initiate_acquire{}, token, state_);
  }

  /// `async_acquire()` with the default token: `auto p = co_await lim.acquire();`
  /// (throws `boost::system::system_error` with operation_aborted when
  /// cancelled).
  [[nodiscard]] auto acquire() { return async_acquire(); }

  /// A place at once if one is free and nobody waits; else empty. Never
  /// waits.
  [[nodiscard]] std::optional<permit> try_acquire()
  {
    if (auto place = state_->try_acquire())
      return permit(std::move(*place));
    return std::nullopt;
  }

  /// Places held now (including places given to waiters whose completion has
  /// not run yet).
  [[nodiscard]] std::size_t in_use() const { return state_->in_use(); }

  /// Acquisitions waiting for a place.
  [[nodiscard]] std::size_t waiting() const { return state_->waiting(); }

  /// The number of places.
  [[nodiscard]] std::size_t capacity() const { return state_->capacity(); }

  /// Sets the number of places. Growing gives the new places to waiters at
  /// once; shrinking below in_use() takes nothing back: no place is given
  /// until in_use() < @p capacity.
  void resize(std::size_t capacity) { state_->resize(capacity); }

private:
  struct initiate_acquire
  {
    template <typename Handler>
    void operator()(Handler&& handler, std::shared_ptr<detail::semaphore_state> state) const
    {
      static_assert(detail::has_associated_executor_v<Handler>,
                    "fanout::limiter::async_acquire: the completion handler needs an associated executor "
                    "(bind one with asio::bind_executor)");
      state->async_acquire(detail::adapt_handler(
          std::forward<Handler>(handler), [](auto&& h, boost::system::error_code ec, detail::semaphore_place place) {
            std::move(h)(ec, permit(std::move(place)));
          }));
    }
  };

  std::shared_ptr<detail::semaphore_state> state_;
};

} // namespace fanout
