#include "fanout/sleep.hpp"

#include <boost/asio/deferred.hpp>
#include <boost/asio/this_coro.hpp>

namespace fanout {

boost::asio::awaitable<void> sleep_until(clock::time_point deadline)
{
  boost::asio::steady_timer timer(co_await boost::asio::this_coro::executor, deadline);
  // Awaited as a deferred operation: the coroutine awaits the wait directly,
  // without the extra coroutine frame that use_awaitable's initiation costs.
  co_await timer.async_wait(boost::asio::deferred);
}

} // namespace fanout
