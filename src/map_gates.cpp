#include "fanout/detail/map_gates.hpp"

#include "fanout/limiter.hpp"
#include "fanout/rate_limiter.hpp"

#include <boost/asio/use_awaitable.hpp>

#include <utility>

namespace fanout::detail {

boost::asio::awaitable<void> run_holding_place(fanout::limiter& lim, boost::asio::awaitable<void> item)
{
  const limiter::permit held = co_await lim.async_acquire(boost::asio::use_awaitable);
  co_await std::move(item);
}

boost::asio::awaitable<void> take_token(fanout::rate_limiter& rate)
{
  co_await rate.async_acquire(boost::asio::use_awaitable);
}

} // namespace fanout::detail
