#include "fanout/detail/event_state.hpp"

#include <boost/asio/error.hpp>

namespace fanout::detail {

void event_state::set()
{
  waiter_queue<signature>::completions woken;
  {
    const std::lock_guard lock(mutex_);
    set_ = true;
    while (!waiters_.empty())
      waiters_.grant_front(woken);
  }
  woken.post();
}

void event_state::clear()
{
  const std::lock_guard lock(mutex_);
  set_ = false;
}

bool event_state::is_set() const
{
  const std::lock_guard lock(mutex_);
  return set_;
}

std::size_t event_state::waiting() const
{
  const std::lock_guard lock(mutex_);
  return waiters_.size();
}

void event_state::abort_waiters()
{
  waiter_queue<signature>::completions aborted;
  {
    const std::lock_guard lock(mutex_);
    waiters_.fail_all(aborted, boost::asio::error::operation_aborted);
  }
  aborted.post();
}

} // namespace fanout::detail
