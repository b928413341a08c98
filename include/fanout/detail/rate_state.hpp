// The token bucket behind fanout::rate_limiter: a generic cell rate
// algorithm (GCRA) over fanout::clock, FIFO waiters in a waiter_queue, and
// one steady_timer that wakes the queue when the next token is due.
#pragma once

#include "fanout/detail/clock.hpp"
#include "fanout/detail/completion.hpp"
#include "fanout/detail/waiter_queue.hpp"

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/associated_executor.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/system/error_code.hpp>

#include <cstddef>
#include <memory>
#include <mutex>
#include <utility>

namespace fanout::detail {

/// The shared state of one rate limiter: held by its owner; its waiters and
/// its timer hold it weakly.
///
/// The bucket as a GCRA: one token every `interval` (period / count), and at
/// most `burst` at once. `tat` (the theoretical arrival time) is when the
/// bucket would be full again after the tokens taken so far; a token may be
/// taken at `now` if `now >= tat - tolerance`, tolerance = (burst - 1) *
/// interval, and taking it moves tat to `max(tat, now) + interval`. So the
/// bucket starts full (tat = construction time), refills while idle up to
/// burst, and in any span of time t at most `burst + t / interval` tokens are
/// taken. A timer that wakes late does not lose tokens: those due meanwhile
/// are granted at once, up to the burst.
class rate_state : public std::enable_shared_from_this<rate_state>
{
public:
  using signature = void(boost::system::error_code);

  /// @p count tokens per @p period, at most @p burst at once. Throws
  /// `system_error(fanout::error::invalid_argument)` naming @p where for a
  /// zero count or burst, or a period that is not positive.
  rate_state(std::size_t count, clock::duration period, std::size_t burst, const char* where);

  rate_state(const rate_state&) = delete;
  rate_state& operator=(const rate_state&) = delete;
  ~rate_state();

  /// Takes a token for @p handler: posts its completion at once if one is
  /// available and nobody waits, else parks it (FIFO) until its token is due.
  /// The handler must have an associated executor: it completes there, and
  /// the wake-up timer runs there while it is the front waiter.
  template <typename Handler>
  void async_acquire(Handler&& handler)
  {
    boost::asio::any_io_executor executor = boost::asio::get_associated_executor(handler);
    std::shared_ptr<wake_timer> keep; // a timer reference, dropped after unlocking
    {
      std::unique_lock lock(mutex_);
      if (waiters_.empty() && take_token_locked(clock::now())) {
        lock.unlock();
        post_completion(std::forward<Handler>(handler), executor, boost::system::error_code());
        return;
      }
      waiters_.park(shared_from_this(), std::forward<Handler>(handler), executor, executor);
      arm_locked(keep, nullptr);
    }
  }

  /// Completes every waiter with operation_aborted and stops the timer (the
  /// owner is going).
  void abort_waiters();

private:
  // The one timer that wakes the queue; lives in its pending wait's handler
  // (and in `keep` references while the mutex is released). If that handler
  // is destroyed without running (its context was destroyed), the timer is
  // lost: timer_lost() arms another one for the waiters left.
  struct wake_timer
  {
    wake_timer(std::weak_ptr<rate_state> s, const boost::asio::any_io_executor& ex)
        : state(std::move(s)), executor(ex), timer(ex)
    {}
    wake_timer(const wake_timer&) = delete;
    wake_timer& operator=(const wake_timer&) = delete;
    ~wake_timer();

    const std::weak_ptr<rate_state> state;
    const boost::asio::any_io_executor executor;
    // Touched only with the state's mutex held (async_wait, expires_at,
    // cancel), so never by two threads at once.
    boost::asio::steady_timer timer;
    // Its last wait's handler ran (or is running). Mutex held.
    bool fired = false;
  };

  // Takes a token at @p now if one is available (mutex held).
  bool take_token_locked(clock::time_point now) noexcept;
  // Grants due tokens to the waiters, front first (mutex held).
  void grant_due_locked(waiter_queue<signature, boost::asio::any_io_executor>::completions& out);
  // If waiters wait and no timer is armed, arms one for the next token's due
  // time, on the front waiter's executor: @p reuse if it is on that executor,
  // else a new one, kept alive in @p keep too (mutex held).
  void arm_locked(std::shared_ptr<wake_timer>& keep, const std::shared_ptr<wake_timer>& reuse);
  // Cancels the armed timer, if any; @p keep holds it (mutex held).
  void disarm_locked(std::shared_ptr<wake_timer>& keep) noexcept;
  void on_timer(const std::shared_ptr<wake_timer>& t);
  void timer_lost(const wake_timer* t);

  mutable std::mutex mutex_;
  const clock::duration interval_;  // between tokens: period / count
  const clock::duration tolerance_; // (burst - 1) * interval, clamped
  // Guarded by mutex_. Invariants: while waiters_ is not empty, the token
  // the front waiter needs is not available yet (grant_due_locked ran after
  // every change), and a timer is armed (armed_) for its due time on the
  // front waiter's executor, except while a timer's handler or timer_lost()
  // runs, which re-arms (a waiter that leaves moves the timer to the new
  // front's executor if it differs). armed_ is null once the queue is empty
  // (its last leaver cancels the timer).
  clock::time_point tat_;
  waiter_queue<signature, boost::asio::any_io_executor> waiters_{mutex_}; // payload: the waiter's executor
  const wake_timer* armed_ = nullptr;
  std::weak_ptr<wake_timer> armed_timer_;
};

} // namespace fanout::detail
