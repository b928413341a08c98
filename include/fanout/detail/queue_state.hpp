// The state behind fanout::queue<T>: a bounded buffer, the pushes parked
// while it is full (each holding its value) and the pops parked while it is
// empty.
#pragma once

#include "fanout/detail/completion.hpp"
#include "fanout/detail/errors.hpp"
#include "fanout/detail/waiter_queue.hpp"

#include <boost/asio/associated_executor.hpp>
#include <boost/asio/error.hpp>
#include <boost/system/error_code.hpp>

#include <cstddef>
#include <deque>
#include <memory>
#include <mutex>
#include <optional>
#include <utility>

namespace fanout::detail {

template <typename T>
class queue_state : public std::enable_shared_from_this<queue_state<T>>
{
public:
  using push_signature = void(boost::system::error_code);
  using pop_signature = void(boost::system::error_code, std::optional<T>);

  explicit queue_state(std::size_t capacity) : capacity_(capacity) {}

  /// Enqueues @p value (or hands it to the longest parked pop) and posts the
  /// push's completion; parks the push, holding the value, while the buffer
  /// is full; fails it with fanout::error::closed once closed.
  template <typename Handler>
  void async_push(Handler&& handler, T value)
  {
    auto executor = boost::asio::get_associated_executor(handler);
    typename pop_queue::completions popped;
    boost::system::error_code ec;
    {
      const std::lock_guard lock(mutex_);
      if (closed_)
        ec = closed_error();
      else if (!pops_.empty()) // the buffer is empty
        pops_.grant_front(popped, std::optional<T>(std::move(value)));
      else if (buffer_.size() < capacity_)
        buffer_.push_back(std::move(value));
      else {
        pushes_.park(this->shared_from_this(), std::forward<Handler>(handler), executor, std::move(value));
        return;
      }
    }
    popped.post();
    post_completion(std::forward<Handler>(handler), executor, ec);
  }

  /// Takes the oldest value (the longest parked push then moves its value
  /// in) and posts the pop's completion with it; an empty optional once
  /// closed and drained; parks the pop while the buffer is empty.
  template <typename Handler>
  void async_pop(Handler&& handler)
  {
    auto executor = boost::asio::get_associated_executor(handler);
    typename push_queue::completions pushed;
    std::optional<T> value;
    {
      const std::lock_guard lock(mutex_);
      if (!buffer_.empty())
        take_locked(pushed, value);
      else if (!closed_) {
        pops_.park(this->shared_from_this(), std::forward<Handler>(handler), executor);
        return;
      }
    }
    pushed.post();
    post_completion(std::forward<Handler>(handler), executor, boost::system::error_code(), std::move(value));
  }

  /// The oldest value at once, if any.
  std::optional<T> try_pop()
  {
    typename push_queue::completions pushed;
    std::optional<T> value;
    {
      const std::lock_guard lock(mutex_);
      if (!buffer_.empty())
        take_locked(pushed, value);
    }
    pushed.post();
    return value;
  }

  /// Enqueues @p value at once if there is room (or a parked pop); else
  /// leaves it with the caller and returns false.
  bool try_push(T& value)
  {
    typename pop_queue::completions popped;
    {
      const std::lock_guard lock(mutex_);
      if (closed_)
        return false;
      if (!pops_.empty())
        pops_.grant_front(popped, std::optional<T>(std::move(value)));
      else if (buffer_.size() < capacity_)
        buffer_.push_back(std::move(value));
      else
        return false;
    }
    popped.post();
    return true;
  }

  /// Closes: parked pops complete with an empty optional, parked pushes with
  /// fanout::error::closed (their values are not enqueued).
  void close() { end(closed_error()); }

  /// Closes, and every parked operation completes with operation_aborted
  /// (the owner is going).
  void abort_waiters() { end(boost::asio::error::operation_aborted); }

  [[nodiscard]] bool is_closed() const
  {
    const std::lock_guard lock(mutex_);
    return closed_;
  }
  [[nodiscard]] std::size_t size() const
  {
    const std::lock_guard lock(mutex_);
    return buffer_.size();
  }
  [[nodiscard]] std::size_t capacity() const noexcept { return capacity_; }

private:
  using push_queue = waiter_queue<push_signature, T>;
  using pop_queue = waiter_queue<pop_signature>;

  // Moves the oldest value into @p value (empty); the longest parked push
  // moves its value into the room made (mutex held, buffer not empty). T
  // needs only to be move-constructible.
  void take_locked(typename push_queue::completions& pushed, std::optional<T>& value)
  {
    value.emplace(std::move(buffer_.front()));
    buffer_.pop_front();
    if (!pushes_.empty()) {
      buffer_.push_back(std::move(pushes_.front_payload()));
      pushes_.grant_front(pushed);
    }
  }

  void end(boost::system::error_code push_error)
  {
    typename pop_queue::completions popped;
    typename push_queue::completions pushed;
    {
      const std::lock_guard lock(mutex_);
      closed_ = true;
      const bool aborting = push_error == boost::asio::error::operation_aborted;
      while (!pops_.empty()) {
        if (aborting)
          pops_.fail_front(popped, push_error);
        else
          pops_.grant_front(popped, std::nullopt);
      }
      pushes_.fail_all(pushed, push_error);
    }
    popped.post();
    pushed.post();
  }

  const std::size_t capacity_;
  mutable std::mutex mutex_;
  // Guarded by mutex_. buffer_ holds at most capacity_ values (capacity_ >=
  // 1). Pushes park only while the buffer is full, pops only while it is
  // empty and the queue open, so at most one of pushes_ and pops_ is ever
  // non-empty; closing empties both, and nothing parks once closed_.
  std::deque<T> buffer_;
  push_queue pushes_{mutex_};
  pop_queue pops_{mutex_};
  bool closed_ = false;
};

} // namespace fanout::detail
