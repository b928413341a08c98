#include "fanout/detail/semaphore.hpp"

#include <boost/asio/error.hpp>

namespace fanout::detail {

void semaphore_place::release() noexcept
{
  if (auto state = std::move(state_))
    state->release();
}

std::optional<semaphore_place> semaphore_state::try_acquire()
{
  const std::lock_guard lock(mutex_);
  if (!waiters_.empty() || in_use_ >= capacity_)
    return std::nullopt;
  ++in_use_;
  return semaphore_place(shared_from_this());
}

void semaphore_state::grant_locked(waiter_queue<signature>::completions& out)
{
  while (!waiters_.empty() && in_use_ < capacity_) {
    ++in_use_;
    waiters_.grant_front(out, semaphore_place(shared_from_this()));
  }
}

void semaphore_state::release() noexcept
{
  waiter_queue<signature>::completions granted;
  {
    const std::lock_guard lock(mutex_);
    --in_use_;
    grant_locked(granted);
  }
  granted.post();
}

void semaphore_state::resize(std::size_t capacity)
{
  waiter_queue<signature>::completions granted;
  {
    const std::lock_guard lock(mutex_);
    capacity_ = capacity;
    grant_locked(granted);
  }
  granted.post();
}

void semaphore_state::abort_waiters()
{
  waiter_queue<signature>::completions aborted;
  {
    const std::lock_guard lock(mutex_);
    waiters_.fail_all(aborted, boost::asio::error::operation_aborted);
  }
  aborted.post();
}

std::size_t semaphore_state::capacity() const
{
  const std::lock_guard lock(mutex_);
  return capacity_;
}

std::size_t semaphore_state::in_use() const
{
  const std::lock_guard lock(mutex_);
  return in_use_;
}

std::size_t semaphore_state::waiting() const
{
  const std::lock_guard lock(mutex_);
  return waiters_.size();
}

} // namespace fanout::detail
