// fanout/async_mutex.hpp — a mutex for coroutines: waiting for it suspends
// the coroutine, never the thread.
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

/// A mutex held across suspension points: `co_await m.async_lock()` gives a
/// scoped_lock that unlocks when destroyed. Waiters get the lock in the order
/// they asked (FIFO); an unlock hands it to the longest waiter directly, so a
/// newcomer never overtakes them. Not recursive: locking it again from the
/// holder waits forever.
///
/// It is a semaphore of one place (the machinery of fanout::limiter). A
/// waiter resumes on its own executor (the awaiting coroutine's, or the one
/// bound to its handler). Destroying the mutex completes its waiters with
/// `asio::error::operation_aborted`; a lock still held stays valid.
///
/// @par Thread safety
/// Every member may be called concurrently from any thread; a scoped_lock
/// may be destroyed on any thread.
///
/// @code
/// fanout::async_mutex m;
/// {
///   auto lock = co_await m.async_lock();
///   co_await write_both_halves(); // no other holder meanwhile
/// } // unlocked
/// @endcode
class async_mutex
{
public:
  /// Ownership of the mutex, released when destroyed, moved onto, or
  /// unlock()ed. Move-only; empty when default-constructed or moved from.
  class scoped_lock
  {
  public:
    /// An empty lock: owns no mutex.
    scoped_lock() = default;

    /// True while this object holds the mutex.
    [[nodiscard]] bool owns_lock() const noexcept { return place_.held(); }
    /// owns_lock().
    explicit operator bool() const noexcept { return owns_lock(); }

    /// Unlocks now (the longest waiter gets the mutex); then empty.
    void unlock() noexcept { place_.release(); }

  private:
    friend class async_mutex;
    explicit scoped_lock(detail::semaphore_place place) noexcept : place_(std::move(place)) {}
    detail::semaphore_place place_;
  };

  /// The completion signature of async_lock.
  using lock_signature = void(boost::system::error_code, scoped_lock);

  /// An unlocked mutex.
  async_mutex() : state_(std::make_shared<detail::semaphore_state>(1)) {}

  async_mutex(const async_mutex&) = delete;
  async_mutex& operator=(const async_mutex&) = delete;

  /// Completes every waiter with operation_aborted.
  ~async_mutex() { state_->abort_waiters(); }

  /// Waits for the mutex.
  ///
  /// @param token any completion token whose handler has an associated
  ///        executor (a coroutine's, asio::use_future's, or a callback bound with
  ///        `asio::bind_executor`). By default detail::default_token_t
  ///        (asio::deferred, or asio::use_awaitable before Boost 1.83):
  ///        `co_await m.async_lock()` either way.
  ///
  /// @par Completion signature
  /// `void(boost::system::error_code, async_mutex::scoped_lock)`: success and
  /// a lock that owns the mutex, or `asio::error::operation_aborted` and an
  /// empty lock (cancelled, or the mutex destroyed). The handler runs on its
  /// associated executor, never inside this call, even when the mutex is free.
  ///
  /// @par Per-operation cancellation
  /// `terminal`, `partial` and `total`: a waiter cancelled while queued leaves
  /// the queue and completes with operation_aborted without the lock. Once
  /// the lock is given (the completion is posted), cancellation has no effect.
  ///
  /// @par Thread safety
  /// May be called from any thread.
  ///
  /// @code
  /// auto lock = co_await m.async_lock();
  /// @endcode
  template <
      boost::asio::completion_token_for<lock_signature> Token = detail::default_token_t<boost::asio::any_io_executor>>
  auto async_lock(Token&& token = Token())
  {
    return boost::asio::async_initiate<Token, lock_signature>(initiate_lock{}, token, state_);
  }

  /// The lock at once if the mutex is free and nobody waits; else empty.
  [[nodiscard]] std::optional<scoped_lock> try_lock()
  {
    if (auto place = state_->try_acquire())
      return scoped_lock(std::move(*place));
    return std::nullopt;
  }

  /// True while someone holds the mutex (or it is on its way to a waiter).
  [[nodiscard]] bool is_locked() const { return state_->in_use() != 0; }

  /// Lock requests waiting.
  [[nodiscard]] std::size_t waiting() const { return state_->waiting(); }

private:
  struct initiate_lock
  {
    template <typename Handler>
    void operator()(Handler&& handler, std::shared_ptr<detail::semaphore_state> state) const
    {
      static_assert(detail::has_associated_executor_v<Handler>,
                    "fanout::async_mutex::async_lock: the completion handler needs an associated executor "
                    "(bind one with asio::bind_executor)");
      state->async_acquire(detail::adapt_handler(
          std::forward<Handler>(handler), [](auto&& h, boost::system::error_code ec, detail::semaphore_place place) {
            std::move(h)(ec, scoped_lock(std::move(place)));
          }));
    }
  };

  std::shared_ptr<detail::semaphore_state> state_;
};

} // namespace fanout
