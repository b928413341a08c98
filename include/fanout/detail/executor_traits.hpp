// What fanout can tell about an executor's threads.
#pragma once

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/strand.hpp>

namespace fanout::detail {

/// True if everything submitted to @p ex runs on one thread at a time: an
/// io_context constructed with concurrency hint 1 (`asio::io_context ctx{1}`,
/// as fanout::run makes), or a strand. Then fanout needs no strands of its own
/// to keep a worker and its cancellation apart.
inline bool runs_serially(const boost::asio::any_io_executor& ex)
{
  using io_executor = boost::asio::io_context::executor_type;
  if (const auto* io = ex.target<io_executor>()) {
#if !defined(BOOST_ASIO_HAS_IOCP)
    return boost::asio::use_service<boost::asio::detail::io_context_impl>(io->context()).concurrency_hint() == 1;
#else
    return false;
#endif
  }
  return ex.target<boost::asio::strand<io_executor>>() != nullptr ||
         ex.target<boost::asio::strand<boost::asio::any_io_executor>>() != nullptr;
}

} // namespace fanout::detail
