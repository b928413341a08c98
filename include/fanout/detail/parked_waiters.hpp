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

#include <algorithm>
#include <cstddef>
#include <cstdint>
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
///
/// Each parked handler has a ticket (next_ticket() before it is parked), by
/// which one waiter can be taken alone: a waiter whose own wait is cancelled
/// leaves while the others stay parked. The owner stays registered with the
/// service while any handler is parked.
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
    const std::uint64_t ticket = next_ticket_++;
    handler_type& parked = first_ ? more_.emplace_back(entry{ticket, handler_type(std::move(working))}).handler
                                  : first_.emplace(entry{ticket, handler_type(std::move(working))}).handler;
    if (!service_)
      service_ = &parked_handlers_of(executor);
    owner_ = owner.get();
    service_->park(owner);
    auto slot = boost::asio::get_associated_cancellation_slot(parked);
    if (slot.is_connected())
      slot.assign(std::move(on_cancel));
  }

  [[nodiscard]] bool empty() const noexcept { return !first_; }

  /// The ticket of the handler that park() parks next.
  [[nodiscard]] std::uint64_t next_ticket() const noexcept { return next_ticket_; }

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

  /// The handler parked first, alone, handed to the caller (none if empty);
  /// the others stay parked.
  parked_waiters take_front()
  {
    parked_waiters out;
    if (!first_)
      return out;
    out.first_.swap(first_);
    if (!more_.empty()) {
      first_.emplace(std::move(more_.front()));
      remove_more(0);
    } else if (service_) {
      service_->unpark(owner_);
    }
    return out;
  }

  /// The handler parked with @p ticket, alone, handed to the caller (none if
  /// it is no longer parked); the others stay parked.
  parked_waiters take(std::uint64_t ticket)
  {
    if (first_ && first_->ticket == ticket)
      return take_front();
    parked_waiters out;
    const auto it = std::find_if(more_.begin(), more_.end(), [ticket](const entry& e) { return e.ticket == ticket; });
    if (it != more_.end()) {
      out.first_.emplace(std::move(*it));
      remove_more(static_cast<std::size_t>(it - more_.begin()));
    }
    return out;
  }

  /// Calls @p f(handler) for each handler, in parking order.
  template <typename F>
  void for_each(F&& f)
  {
    if (!first_)
      return;
    f(std::move(first_->handler));
    for (auto& e : more_)
      f(std::move(e.handler));
  }

  /// Posts every handler's completion with @p args (copied for each), through
  /// its own executor or @p fallback.
  template <typename Executor, typename... Args>
  void complete_all(const Executor& fallback, const Args&... args)
  {
    for_each([&](handler_type&& h) { post_completion(std::move(h), fallback, args...); });
  }

private:
  struct entry
  {
    std::uint64_t ticket;
    handler_type handler;
  };

  // Drops more_[i] (moved from), keeping the others' order. The vector is
  // rebuilt by move construction, never by move assignment (erase): Asio
  // 1.81's any_completion_handler move assignment wraps the handler in a new
  // any_completion_handler, recursively, instead of moving it.
  void remove_more(std::size_t i)
  {
    std::vector<entry> rest;
    rest.reserve(more_.size() - 1);
    for (std::size_t k = 0; k < more_.size(); ++k)
      if (k != i)
        rest.push_back(std::move(more_[k]));
    more_.swap(rest);
  }

  std::optional<entry> first_; // parked first
  std::vector<entry> more_;    // the others, in parking order
  std::uint64_t next_ticket_ = 0;
  parked_handlers_service* service_ = nullptr; // where the owner is registered while it parks
  const handler_parker* owner_ = nullptr;      // the owner, as registered
};

} // namespace fanout::detail
