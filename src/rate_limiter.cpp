#include "fanout/rate_limiter.hpp"

#include "fanout/error.hpp"

#include <boost/asio/error.hpp>
#include <boost/system/system_error.hpp>

#include <algorithm>
#include <limits>
#include <string>

namespace fanout::detail {
namespace {

using completions = waiter_queue<rate_state::signature, boost::asio::any_io_executor>::completions;

[[noreturn]] void reject(const char* where, const char* what)
{
  throw boost::system::system_error(make_error_code(error::invalid_argument), std::string(where) + ": " + what);
}

clock::duration checked_interval(std::size_t count, clock::duration period, const char* where)
{
  if (count == 0)
    reject(where, "the count must be at least 1");
  if (period <= clock::duration::zero())
    reject(where, "the period must be positive");
  const auto n = static_cast<unsigned long long>(count);
  return n > static_cast<unsigned long long>(std::numeric_limits<clock::rep>::max())
             ? clock::duration::zero()
             : period / static_cast<clock::rep>(n);
}

clock::duration checked_tolerance(std::size_t burst, clock::duration interval, const char* where)
{
  if (burst == 0)
    reject(where, "the burst must be at least 1");
  const long double wide = static_cast<long double>(burst - 1) * static_cast<long double>(interval.count());
  return wide >= static_cast<long double>(clock::duration::max().count())
             ? clock::duration::max()
             : clock::duration(static_cast<clock::rep>(wide));
}

// @p t - @p d for d >= 0, clamped at the clock's first time point.
clock::time_point earlier_by(clock::time_point t, clock::duration d) noexcept
{
  return t.time_since_epoch() < clock::duration::min() + d ? clock::time_point::min() : t - d;
}

} // namespace

rate_state::rate_state(std::size_t count, clock::duration period, std::size_t burst, const char* where)
    : interval_(checked_interval(count, period, where)), tolerance_(checked_tolerance(burst, interval_, where)),
      tat_(clock::now())
{
  waiters_.on_leave([this](completions& out) {
    // A waiter left (cancelled, or its context shut down). The timer follows
    // the front waiter: once the queue is empty nothing may keep the timer's
    // context busy, and a new front waiter on another executor must not
    // depend on the departed one's context being run. The completions keep
    // the timers until the mutex is released.
    std::shared_ptr<wake_timer> current = armed_timer_.lock();
    if (!waiters_.empty() && (!current || current->executor == waiters_.front_payload())) {
      out.release_later(std::move(current));
      return;
    }
    std::shared_ptr<wake_timer> old;
    std::shared_ptr<wake_timer> fresh;
    disarm_locked(old);
    arm_locked(fresh, nullptr);
    out.release_later(std::move(current));
    out.release_later(std::move(old));
    out.release_later(std::move(fresh));
  });
}

rate_state::~rate_state() = default;

rate_state::wake_timer::~wake_timer()
{
  if (fired)
    return;
  if (auto s = state.lock())
    s->timer_lost(this);
}

bool rate_state::take_token_locked(clock::time_point now) noexcept
{
  if (now < earlier_by(tat_, tolerance_))
    return false;
  tat_ = later_by(std::max(tat_, now), interval_);
  return true;
}

void rate_state::grant_due_locked(completions& out)
{
  const auto now = clock::now();
  while (!waiters_.empty() && take_token_locked(now))
    waiters_.grant_front(out);
}

void rate_state::arm_locked(std::shared_ptr<wake_timer>& keep, const std::shared_ptr<wake_timer>& reuse)
{
  if (waiters_.empty() || armed_ != nullptr)
    return;
  const auto& executor = waiters_.front_payload();
  std::shared_ptr<wake_timer> t =
      reuse && reuse->executor == executor ? reuse : std::make_shared<wake_timer>(weak_from_this(), executor);
  keep = t;
  t->timer.expires_at(earlier_by(tat_, tolerance_));
  t->fired = false;
  armed_ = t.get();
  armed_timer_ = t;
  t->timer.async_wait([t](boost::system::error_code) {
    if (auto s = t->state.lock())
      s->on_timer(t);
    else
      t->fired = true; // nobody to wake: the limiter is gone
  });
}

void rate_state::disarm_locked(std::shared_ptr<wake_timer>& keep) noexcept
{
  if (armed_ == nullptr)
    return;
  keep = armed_timer_.lock();
  armed_ = nullptr;
  armed_timer_.reset();
  // Its handler runs with operation_aborted and finds itself disarmed.
  if (keep)
    keep->timer.cancel();
}

void rate_state::on_timer(const std::shared_ptr<wake_timer>& t)
{
  completions granted;
  std::shared_ptr<wake_timer> keep;
  {
    const std::lock_guard lock(mutex_);
    t->fired = true;
    if (armed_ != t.get())
      return; // cancelled: the queue emptied, or the limiter is going
    armed_ = nullptr;
    armed_timer_.reset();
    grant_due_locked(granted);
    arm_locked(keep, t);
  }
  granted.post();
}

void rate_state::timer_lost(const wake_timer* t)
{
  std::shared_ptr<wake_timer> keep;
  {
    const std::lock_guard lock(mutex_);
    if (armed_ != t)
      return;
    armed_ = nullptr;
    armed_timer_.reset();
    arm_locked(keep, nullptr);
  }
}

void rate_state::abort_waiters()
{
  completions aborted;
  std::shared_ptr<wake_timer> keep;
  {
    const std::lock_guard lock(mutex_);
    waiters_.fail_all(aborted, boost::asio::error::operation_aborted);
    disarm_locked(keep);
  }
  aborted.post();
}

} // namespace fanout::detail
