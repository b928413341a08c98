// What fanout can tell about an executor's threads.
#pragma once

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/strand.hpp>

#include <mutex>

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

/// A mutex (BasicLockable) that can be told it is not needed: then lock() and
/// unlock() do nothing. For state that every thread reaches through one
/// executor: if that executor runs serially, nothing can run beside the
/// holder anyway, and an uncontended lock per item is a large part of the cost
/// of a trivial item. Decide before any concurrent use; the choice is fixed.
class optional_mutex
{
public:
  /// Locks for real unless skip_locking() was called.
  void lock()
  {
    if (needed_)
      mutex_.lock();
  }
  void unlock()
  {
    if (needed_)
      mutex_.unlock();
  }
  /// From now on, lock() and unlock() do nothing.
  void skip_locking() noexcept { needed_ = false; }

private:
  std::mutex mutex_;
  bool needed_ = true;
};

} // namespace fanout::detail
