// The state behind fanout::event: a flag and the waiters parked until it is
// set.
#pragma once

#include "fanout/detail/completion.hpp"
#include "fanout/detail/waiter_queue.hpp"

#include <boost/asio/associated_executor.hpp>
#include <boost/system/error_code.hpp>

#include <cstddef>
#include <memory>
#include <mutex>
#include <utility>

namespace fanout::detail {

class event_state : public std::enable_shared_from_this<event_state>
{
public:
  using signature = void(boost::system::error_code);

  /// Parks @p handler until the flag is set, or posts its completion at once
  /// if it is set. The handler must have an associated executor.
  template <typename Handler>
  void async_wait(Handler&& handler)
  {
    auto executor = boost::asio::get_associated_executor(handler);
    std::unique_lock lock(mutex_);
    if (set_) {
      lock.unlock();
      post_completion(std::forward<Handler>(handler), executor, boost::system::error_code());
      return;
    }
    waiters_.park(shared_from_this(), std::forward<Handler>(handler), executor);
  }

  /// Sets the flag and completes every waiter with success.
  void set();
  /// Clears the flag: later waits park until the next set().
  void clear();
  [[nodiscard]] bool is_set() const;
  [[nodiscard]] std::size_t waiting() const;
  /// Completes every waiter with operation_aborted (the owner is going).
  void abort_waiters();

private:
  mutable std::mutex mutex_;
  // Guarded by mutex_. While set_, waiters_ is empty: set() takes every
  // waiter out, and a wait that finds the flag set never parks.
  bool set_ = false;
  waiter_queue<signature> waiters_{mutex_};
};

} // namespace fanout::detail
