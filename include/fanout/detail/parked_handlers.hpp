// Completion handlers that fanout parks in its own state (a map's waiter, a
// task's or a group's waiters) and that the execution context must destroy
// when it shuts down, as it destroys the handlers of its own pending
// operations.
//
// Without this, destroying an io_context while a coroutine awaits a map, a
// task or a group would leak: the parked handler owns the awaiting
// coroutine's frames, and those frames own a shared_ptr to the state that
// parks the handler. Only completion would break that cycle, and a destroyed
// context never completes anything.
#pragma once

#include <boost/asio/execution/context.hpp>
#include <boost/asio/execution_context.hpp>
#include <boost/asio/query.hpp>

#include <memory>
#include <mutex>
#include <unordered_map>
#include <utility>
#include <vector>

namespace fanout::detail {

/// Something that parks completion handlers.
class handler_parker
{
public:
  /// Destroys every parked handler without invoking it. Called once the
  /// context is shutting down; must not hold a lock while the handlers are
  /// destroyed (destroying one may destroy this object's last owner).
  virtual void drop_parked_handlers() noexcept = 0;

  handler_parker() = default;
  handler_parker(const handler_parker&) = delete;
  handler_parker& operator=(const handler_parker&) = delete;
  virtual ~handler_parker() = default;
};

/// The execution-context service that remembers which parkers hold handlers,
/// and makes them drop those handlers at shutdown (before the scheduler
/// shuts down, since services shut down in reverse order of creation).
class parked_handlers_service : public boost::asio::execution_context::service
{
public:
  using key_type = parked_handlers_service;
  inline static boost::asio::execution_context::id id;

  explicit parked_handlers_service(boost::asio::execution_context& ctx) : service(ctx) {}

  /// @p parker holds at least one handler (again: a no-op).
  void park(const std::shared_ptr<handler_parker>& parker)
  {
    std::lock_guard lock(mutex_);
    parked_.try_emplace(parker.get(), parker);
  }

  /// @p parker holds no handler any more.
  void unpark(const handler_parker* parker)
  {
    std::lock_guard lock(mutex_);
    parked_.erase(parker);
  }

private:
  void shutdown() override
  {
    std::vector<std::weak_ptr<handler_parker>> parked;
    {
      std::lock_guard lock(mutex_);
      parked.reserve(parked_.size());
      for (auto& entry : parked_)
        parked.push_back(std::move(entry.second));
      parked_.clear();
    }
    for (auto& weak : parked)
      if (auto parker = weak.lock())
        parker->drop_parked_handlers();
  }

  std::mutex mutex_;
  std::unordered_map<const handler_parker*, std::weak_ptr<handler_parker>> parked_;
};

/// The service of the context that @p executor belongs to.
template <typename Executor>
parked_handlers_service& parked_handlers_of(const Executor& executor)
{
  return boost::asio::use_service<parked_handlers_service>(
      boost::asio::query(executor, boost::asio::execution::context));
}

} // namespace fanout::detail
