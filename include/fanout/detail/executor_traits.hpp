// What fanout can tell about an executor's threads, from public Asio only.
#pragma once

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/execution_context.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/thread_pool.hpp>

#include <mutex>

namespace fanout::detail {

/// Present in an io_context that fanout itself created to be run by one
/// thread (fanout::run's, sync_map's own). Asio offers no public way to learn
/// an io_context's concurrency hint, so fanout marks the contexts it owns.
class serial_context_marker final : public boost::asio::execution_context::service
{
public:
  using key_type = serial_context_marker;
  inline static boost::asio::execution_context::id id;
  explicit serial_context_marker(boost::asio::execution_context& ctx) : service(ctx) {}

private:
  void shutdown() override {}
};

/// Marks @p ctx as run by one thread at a time. The caller must keep it so.
inline void mark_serial(boost::asio::io_context& ctx)
{
  boost::asio::use_service<serial_context_marker>(ctx);
}

/// True if everything submitted to @p ex runs on one thread at a time: a
/// strand, or an io_context that fanout created and runs from one thread
/// (mark_serial). Then fanout needs no strands of its own to keep a worker
/// and its cancellation apart, nor a lock for state only that executor
/// touches.
inline bool runs_serially(const boost::asio::any_io_executor& ex)
{
  using io_executor = boost::asio::io_context::executor_type;
  if (const auto* io = ex.target<io_executor>())
    return boost::asio::has_service<serial_context_marker>(io->context());
  return ex.target<boost::asio::strand<io_executor>>() != nullptr ||
         ex.target<boost::asio::strand<boost::asio::thread_pool::executor_type>>() != nullptr ||
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
