// Completion handlers parked in fanout's own state until an outcome is ready:
// the one mechanism behind a map's wait, a stream's next(), a task's wait and
// a group's join.
#pragma once

#include "fanout/detail/completion.hpp"
#include "fanout/detail/handler_adapter.hpp"
#include "fanout/detail/parked_handlers.hpp"

#include <boost/asio/any_completion_handler.hpp>
#include <boost/asio/associated_cancellation_slot.hpp>
#include <boost/asio/cancellation_type.hpp>

#include <memory>
#include <optional>
#include <utility>
#include <vector>

namespace fanout::detail {

/// Parked handlers of one signature, usually one (kept in place) and
/// sometimes several (a task awaited from several coroutines).
///
/// Invariant: guarded by its owner's mutex. Nothing here runs, completes or
/// destroys a handler: take() hands them over, and the owner completes them
/// (complete_all) or destroys them after unlocking.
///
/// Parking does four things, in this order: takes outstanding work on the
/// executor the handler will complete on (its own, else the owner's), held
/// by the parked handler until it has run or is destroyed; type-erases the
/// handler; registers the owner with the parked-handlers service of the context (so
/// that a context destroyed mid-operation frees the handler and what it owns),
/// and assigns the handler's cancellation slot. The slot is assigned after
/// type erasure: any_completion_handler takes over the handler's slot and
/// offers its own, which is where ours must go.
template <typename Signature>
class parked_waiters
{
public:
  using handler_type = boost::asio::any_completion_handler<Signature>;

  parked_waiters() = default;
  parked_waiters(parked_waiters&&) noexcept = default;
  parked_waiters& operator=(parked_waiters&&) noexcept = default;

  /// Parks @p handler for @p owner, whose context is @p executor's (the
  /// operation's I/O executor).
  /// @p on_cancel(cancellation_type_t) runs when the handler's slot is
  /// emitted; it must hold @p owner weakly (the owner holds the handler, and
  /// the handler's slot holds on_cancel).
  template <typename Handler, typename Executor, typename OnCancel>
  void park(Handler&& handler, const std::shared_ptr<handler_parker>& owner, const Executor& executor,
            OnCancel on_cancel)
  {
    auto work = handler_work(handler, executor);
    auto working =
        adapt_handler(std::forward<Handler>(handler), [work = std::move(work)](auto&& h, auto&&... args) mutable {
          std::move(h)(std::forward<decltype(args)>(args)...);
        });
    handler_type& parked = first_ ? more_.emplace_back(std::move(working)) : first_.emplace(std::move(working));
    if (!service_)
      service_ = &parked_handlers_of(executor);
    owner_ = owner.get();
    service_->park(owner);
    auto slot = boost::asio::get_associated_cancellation_slot(parked);
    if (slot.is_connected())
      slot.assign(std::move(on_cancel));
  }

  [[nodiscard]] bool empty() const noexcept { return !first_; }

  /// Every parked handler, in parking order, handed to the caller; the owner
  /// is no longer registered (it holds no handler).
  parked_waiters take()
  {
    parked_waiters out;
    if (!first_)
      return out;
    out.first_.swap(first_);
    out.more_.swap(more_);
    if (service_)
      service_->unpark(owner_);
    return out;
  }

  /// Calls @p f(handler) for each handler, in parking order.
  template <typename F>
  void for_each(F&& f)
  {
    if (!first_)
      return;
    f(std::move(*first_));
    for (auto& h : more_)
      f(std::move(h));
  }

  /// Posts every handler's completion with @p args (copied for each), through
  /// its own executor or @p fallback.
  template <typename Executor, typename... Args>
  void complete_all(const Executor& fallback, const Args&... args)
  {
    for_each([&](handler_type&& h) { post_completion(std::move(h), fallback, args...); });
  }

private:
  std::optional<handler_type> first_;
  std::vector<handler_type> more_;
  parked_handlers_service* service_ = nullptr; // where the owner is registered while it parks
  const handler_parker* owner_ = nullptr;      // the owner, as registered
};

} // namespace fanout::detail
