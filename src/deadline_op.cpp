#include "fanout/detail/deadline_op.hpp"

namespace fanout::detail {

template void start_deadline_op<boost::asio::any_io_executor>(boost::asio::any_io_executor,
                                                              boost::asio::awaitable<void>, clock::time_point,
                                                              deadline_expiry, deadline_handler);

template boost::asio::awaitable<void> await_deadline<boost::asio::any_io_executor>(boost::asio::awaitable<void>,
                                                                                   clock::time_point, deadline_expiry);

} // namespace fanout::detail
