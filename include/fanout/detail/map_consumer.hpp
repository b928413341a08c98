// The consumer side of a map's stream: one next() at a time, handed the next
// ready result, the end, or the failure, or parked until there is one.
#pragma once

#include "fanout/detail/completion.hpp"
#include "fanout/detail/map_window.hpp"
#include "fanout/detail/parked_waiters.hpp"

#include <exception>
#include <memory>
#include <mutex>
#include <optional>
#include <utility>

namespace fanout::detail {

/// @tparam Sink ordered_cells or completion_queue: pop_ready() gives an
///         Element when one is ready for the consumer.
///
/// Invariant: guarded by the window's mutex, like the sink; a handler is
/// completed (posted) only after unlocking. Each result handed out frees its
/// room in the window; the functions that hand one out say whether another
/// item may start now.
template <typename Element, typename Sink>
class map_consumer
{
public:
  using signature = void(std::exception_ptr, std::optional<Element>);

  /// Hands @p handler the next element, or the end (or the failure) if the
  /// map has finished, or parks it for notify(). True if an item may start
  /// and no spawn posted by an earlier call is pending: the caller posts one.
  template <typename Handler, typename OnCancel>
  bool next(Handler&& handler, map_window& window, Sink& sink, const std::shared_ptr<handler_parker>& owner,
            OnCancel on_cancel)
  {
    std::unique_lock lock(window.mutex());
    if (auto element = pop_locked(window, sink)) {
      const bool room = window.can_start_locked() && window.claim_posted_spawn_locked();
      lock.unlock();
      post_completion(std::forward<Handler>(handler), window.executor(), std::exception_ptr(), std::move(element));
      return room;
    }
    if (window.finished_locked()) {
      auto e = window.error_locked();
      lock.unlock();
      post_completion(std::forward<Handler>(handler), window.executor(), e, std::optional<Element>());
      return false;
    }
    waiter_.park(std::forward<Handler>(handler), owner, window.executor(), std::move(on_cancel));
    return false;
  }

  /// A result was stored or the map finished: hands a parked next() its
  /// element or the end. True if an item may start.
  bool notify(map_window& window, Sink& sink)
  {
    parked_waiters<signature> consumer;
    std::optional<Element> element;
    std::exception_ptr e;
    bool room = false;
    {
      std::lock_guard lock(window.mutex());
      if (waiter_.empty())
        return false;
      element = pop_locked(window, sink);
      if (!element && !window.finished_locked())
        return false;
      if (!element)
        e = window.error_locked();
      room = element && window.can_start_locked();
      consumer = waiter_.take();
    }
    consumer.for_each([&](auto&& h) { post_completion(std::move(h), window.executor(), e, std::move(element)); });
    return room;
  }

  /// The parked next(), for the caller to destroy after unlocking (mutex held).
  parked_waiters<signature> take() { return waiter_.take(); }

private:
  // The next element, if one is ready and no failure is pending (fail-fast:
  // results not yet read are dropped). Mutex held.
  static std::optional<Element> pop_locked(map_window& window, Sink& sink)
  {
    if (window.error_locked())
      return std::nullopt;
    auto element = sink.pop_ready();
    if (element)
      window.release_locked(); // its room in the window is free
    return element;
  }

  parked_waiters<signature> waiter_; // a parked next()
};

} // namespace fanout::detail
