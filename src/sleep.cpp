#include "fanout/sleep.hpp"

#include <boost/asio/this_coro.hpp>

namespace fanout {

boost::asio::awaitable<void> sleep_until(clock::time_point deadline)
{
  boost::asio::steady_timer timer(co_await boost::asio::this_coro::executor, deadline);
  co_await timer.async_wait(boost::asio::use_awaitable);
}

} // namespace fanout
