#include "fanout/detail/deadline_op.hpp"

#include <boost/asio/async_result.hpp>
#include <boost/asio/use_awaitable.hpp>

namespace fanout::detail {

template void start_deadline_op<boost::asio::any_io_executor>(boost::asio::any_io_executor,
                                                              boost::asio::awaitable<void>, clock::time_point, bool,
                                                              deadline_handler);

boost::asio::awaitable<void> await_strict_deadline(boost::asio::awaitable<void> op, clock::time_point deadline)
{
  if (deadline <= clock::now())
    std::rethrow_exception(timed_out_error()); // already past: never starts
  const auto executor = co_await boost::asio::this_coro::executor;
  boost::asio::use_awaitable_t<> token;
  co_await boost::asio::async_initiate<boost::asio::use_awaitable_t<>, void(std::exception_ptr)>(
      [&](auto handler) {
        start_deadline_op<boost::asio::any_io_executor>(boost::asio::make_strand(executor), std::move(op), deadline,
                                                        true, deadline_handler(std::move(handler)));
      },
      token);
}

} // namespace fanout::detail
