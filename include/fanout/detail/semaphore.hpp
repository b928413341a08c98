// The counting semaphore behind fanout::limiter and fanout::async_mutex: a
// number of places, given in FIFO order to waiters parked in a waiter_queue.
#pragma once

#include "fanout/detail/completion.hpp"
#include "fanout/detail/waiter_queue.hpp"

#include <boost/asio/associated_executor.hpp>
#include <boost/system/error_code.hpp>

#include <cstddef>
#include <memory>
#include <mutex>
#include <optional>
#include <utility>

namespace fanout::detail {

class semaphore_state;

/// One place held in a semaphore, given back when destroyed (or release()d).
/// Empty when default-constructed or moved from.
class semaphore_place
{
public:
  semaphore_place() = default;
  explicit semaphore_place(std::shared_ptr<semaphore_state> state) noexcept : state_(std::move(state)) {}
  semaphore_place(semaphore_place&& other) noexcept = default;
  semaphore_place& operator=(semaphore_place&& other) noexcept
  {
    if (this != &other) {
      release();
      state_ = std::move(other.state_);
    }
    return *this;
  }
  semaphore_place(const semaphore_place&) = delete;
  semaphore_place& operator=(const semaphore_place&) = delete;
  ~semaphore_place() { release(); }

  [[nodiscard]] bool held() const noexcept { return state_ != nullptr; }

  /// Gives the place back (to the front waiter, if any); then empty.
  void release() noexcept;

private:
  std::shared_ptr<semaphore_state> state_;
};

/// The shared state of one semaphore: held by its owner (limiter,
/// async_mutex) and by every place given out, so that a place may outlive the
/// owner.
class semaphore_state : public std::enable_shared_from_this<semaphore_state>
{
public:
  using signature = void(boost::system::error_code, semaphore_place);

  explicit semaphore_state(std::size_t capacity) : capacity_(capacity) {}

  /// A place at once, if one is free and nobody waits (waiters are served
  /// first: FIFO); else empty.
  std::optional<semaphore_place> try_acquire();

  /// Parks @p handler for a place, or posts its completion with one at once
  /// if one is free and nobody waits. The handler must have an associated
  /// executor: it completes there.
  template <typename Handler>
  void async_acquire(Handler&& handler)
  {
    auto executor = boost::asio::get_associated_executor(handler);
    {
      std::unique_lock lock(mutex_);
      if (waiters_.empty() && in_use_ < capacity_) {
        ++in_use_;
        lock.unlock();
        post_completion(std::forward<Handler>(handler), executor, boost::system::error_code(),
                        semaphore_place(shared_from_this()));
        return;
      }
      waiters_.park(shared_from_this(), std::forward<Handler>(handler), executor);
    }
  }

  /// Sets the number of places to @p capacity; places freed by a larger
  /// capacity go to waiters at once. Below in_use(), nothing is given until
  /// in_use() < capacity.
  void resize(std::size_t capacity);

  /// Completes every waiter with operation_aborted (the owner is going).
  void abort_waiters();

  [[nodiscard]] std::size_t capacity() const;
  [[nodiscard]] std::size_t in_use() const;
  [[nodiscard]] std::size_t waiting() const;

private:
  friend class semaphore_place;

  // A place comes back.
  void release() noexcept;

  // Gives free places to waiters, front first (mutex held).
  void grant_locked(waiter_queue<signature>::completions& out);

  mutable std::mutex mutex_;
  // Guarded by mutex_. in_use_ counts places given out: held by a
  // semaphore_place, or on their way to a waiter in a posted completion.
  // While waiters_ is not empty, in_use_ >= capacity_: a free place goes to
  // the front waiter at once (grant_locked runs on every release and resize),
  // so a newcomer never takes a place ahead of a waiter.
  std::size_t capacity_;
  std::size_t in_use_ = 0;
  waiter_queue<signature> waiters_{mutex_};
};

} // namespace fanout::detail
