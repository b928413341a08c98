// A FIFO queue of parked waiters, each with its own per-operation
// cancellation: the one mechanism behind every primitive that makes
// operations wait their turn (limiter, async_mutex, event, queue, and any
// other that grants waiters in order).
//
// The owner keeps its own state and mutex; the queue is guarded by that
// mutex. Under it the owner parks waiters and decides which are granted
// (grant_front, fail_all); the completions are collected in a
// waiter_completions and posted once the mutex is released. A waiter whose
// cancellation slot is emitted while it is queued leaves the queue under the
// same mutex and completes with operation_aborted, having taken nothing.
#pragma once

#include "fanout/detail/completion.hpp"
#include "fanout/detail/parked_handlers.hpp"
#include "fanout/detail/parked_waiters.hpp"

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/associated_executor.hpp>
#include <boost/asio/cancellation_type.hpp>
#include <boost/asio/error.hpp>
#include <boost/system/error_code.hpp>

#include <cstddef>
#include <functional>
#include <list>
#include <memory>
#include <mutex>
#include <optional>
#include <tuple>
#include <type_traits>
#include <utility>
#include <vector>

namespace fanout::detail {

template <typename Signature, typename Payload = no_value>
class waiter_queue;

template <typename Signature>
class waiter_completions;

/// Completions decided under an owner's mutex, to be posted once it is
/// released (post()), and the nodes of waiters that left, to be destroyed
/// then too (with their payloads: values that were never taken). Declare it
/// before the lock, so that whatever post() did not take is destroyed after
/// unlocking as well.
template <typename... Args>
class waiter_completions<void(boost::system::error_code, Args...)>
{
public:
  using signature = void(boost::system::error_code, Args...);

  waiter_completions() = default;
  waiter_completions(waiter_completions&&) noexcept = default;
  waiter_completions& operator=(waiter_completions&&) noexcept = default;

  [[nodiscard]] bool empty() const noexcept { return !first_; }

  /// Completes @p handler with (@p ec, @p args...) when posted, through its
  /// own executor or @p executor. @p node is destroyed after that.
  void add(std::shared_ptr<void> node, parked_waiters<signature> handler, boost::asio::any_io_executor executor,
           boost::system::error_code ec, Args... args)
  {
    entry e{std::move(node), std::move(handler), std::move(executor), ec, std::tuple<Args...>(std::move(args)...)};
    if (first_)
      more_.push_back(std::move(e));
    else
      first_.emplace(std::move(e));
  }

  /// Keeps @p node (a waiter that left without completing) until this object
  /// is destroyed.
  void release_later(std::shared_ptr<void> node) { released_.push_back(std::move(node)); }

  /// Posts every completion, in the order they were added. No mutex of the
  /// owner may be held: posting may allocate, and what it destroys on failure
  /// may give back what a waiter held.
  void post()
  {
    if (!first_)
      return;
    post_one(*first_);
    for (auto& e : more_)
      post_one(e);
  }

private:
  struct entry
  {
    std::shared_ptr<void> node;
    parked_waiters<signature> handler;
    boost::asio::any_io_executor executor;
    boost::system::error_code ec;
    std::tuple<Args...> args;
  };

  static void post_one(entry& e)
  {
    e.handler.for_each([&](auto&& h) {
      std::apply([&](auto&... a) { post_completion(std::move(h), e.executor, e.ec, std::move(a)...); }, e.args);
    });
  }

  std::optional<entry> first_; // most batches hold one completion
  std::vector<entry> more_;
  std::vector<std::shared_ptr<void>> released_;
};

/// The queue. Signature is `void(boost::system::error_code, Args...)`, each
/// of Args default-constructible (what a failed or cancelled waiter gets).
/// Each waiter may carry a Payload (say, the value a push waits to enqueue),
/// destroyed with the waiter if it leaves without being granted.
///
/// Invariants (owner's mutex held): every waiter in the queue is parked and
/// still wants its grant: a cancelled or dropped waiter is unlinked under the
/// mutex before anything else happens to it, so a grant never reaches a
/// cancelled waiter and a cancellation never takes a granted one: of a grant
/// and a cancellation that race, the first to take the mutex wins and the
/// other finds the waiter gone (a grant then goes to the next waiter; a late
/// cancellation does nothing, and the waiter gets its grant).
///
/// Each waiter is its own handler_parker, registered with the context of the
/// executor it completes on: waiters from several contexts may share a
/// queue, and a context that shuts down drops only its own (they leave the
/// queue and their handlers are destroyed, not invoked).
template <typename... Args, typename Payload>
class waiter_queue<void(boost::system::error_code, Args...), Payload>
{
public:
  using signature = void(boost::system::error_code, Args...);
  using completions = waiter_completions<signature>;

  static_assert((std::is_default_constructible_v<Args> && ...),
                "a failed or cancelled waiter completes with default-constructed values");

  /// A queue guarded by @p mutex (the owner's).
  explicit waiter_queue(std::mutex& mutex) : mutex_(mutex) {}

  waiter_queue(const waiter_queue&) = delete;
  waiter_queue& operator=(const waiter_queue&) = delete;

  /// Destroys the handlers of the waiters still queued without invoking them
  /// (the owner normally fails them first: fail_all). No mutex held.
  ~waiter_queue()
  {
    for (auto& n : nodes_) {
      n->linked = false;
      auto dropped = n->parked.take();
    }
  }

  /// Runs (mutex held) after a waiter left the queue by cancellation or
  /// because its context shut down, so that the owner can act on it (grant
  /// the next waiter, stop a timer). Set it before parking.
  void on_leave(std::function<void(completions&)> f) { on_leave_ = std::move(f); }

  /// Parks @p handler at the back (mutex held). @p owner holds this queue
  /// (its member): the waiter holds it weakly, to find the mutex when
  /// cancelled. The handler completes on its associated executor, else on
  /// @p executor (the operation's I/O executor), which also names the context
  /// it is registered with.
  ///
  /// Per-operation cancellation: terminal, partial and total are honoured
  /// alike (a queued waiter has taken nothing, so leaving has no side effect).
  template <typename Owner, typename Handler, typename Executor>
  void park(const std::shared_ptr<Owner>& owner, Handler&& handler, const Executor& executor, Payload payload = {})
  {
    auto n =
        allocate_operation<node>(handler, std::shared_ptr<waiter_queue>(owner, this), executor, std::move(payload));
    // Linked first (which may throw before anything is parked), then parked;
    // if parking throws, unlinked again: a linked node always holds its
    // handler, and a parked one is always linked.
    nodes_.push_back(n);
    n->position = std::prev(nodes_.end());
    n->linked = true;
    try {
      n->parked.park(std::forward<Handler>(handler), n, executor,
                     [weak = std::weak_ptr<node>(n)](boost::asio::cancellation_type_t type) {
                       if ((type & (boost::asio::cancellation_type::terminal | boost::asio::cancellation_type::partial |
                                    boost::asio::cancellation_type::total)) == boost::asio::cancellation_type::none)
                         return;
                       if (auto alive = weak.lock())
                         alive->leave(true);
                     });
    } catch (...) {
      (void)unlink(*n);
      throw;
    }
  }

  [[nodiscard]] bool empty() const noexcept { return nodes_.empty(); }
  [[nodiscard]] std::size_t size() const noexcept { return nodes_.size(); }

  /// The front waiter's payload (mutex held, not empty).
  [[nodiscard]] Payload& front_payload() noexcept { return nodes_.front()->payload; }

  /// Takes the front waiter out (mutex held, not empty); it completes with
  /// success and @p args when @p out is posted.
  void grant_front(completions& out, Args... args)
  {
    finish_front(out, boost::system::error_code(), std::move(args)...);
  }

  /// Takes the front waiter out (mutex held, not empty); it completes with
  /// @p ec and default values when @p out is posted.
  void fail_front(completions& out, boost::system::error_code ec) { finish_front(out, ec, Args{}...); }

  /// Takes every waiter out (mutex held); each completes with @p ec.
  void fail_all(completions& out, boost::system::error_code ec)
  {
    while (!nodes_.empty())
      fail_front(out, ec);
  }

private:
  struct node final : handler_parker
  {
    template <typename Executor>
    node(std::shared_ptr<waiter_queue> q, const Executor& ex, Payload p)
        : queue(std::move(q)), executor(ex), payload(std::move(p))
    {}

    // Leaves the queue if still in it: completes with operation_aborted
    // (cancelled), or destroys the handler without invoking it (dropped).
    void leave(bool complete)
    {
      const auto q = queue.lock();
      if (!q)
        return; // the owner is gone, and with it the queue, which took the handler
      completions done;
      parked_waiters<signature> dropped;
      {
        const std::lock_guard lock(q->mutex_);
        if (!linked)
          return; // granted, failed, cancelled or dropped already
        auto self = q->unlink(*this);
        if (complete)
          done.add(std::move(self), parked.take(), executor, boost::asio::error::operation_aborted, Args{}...);
        else {
          dropped = parked.take();
          done.release_later(std::move(self));
        }
        if (q->on_leave_)
          q->on_leave_(done);
      }
      done.post();
    }

    void drop_parked_handlers() noexcept override { leave(false); }

    const std::weak_ptr<waiter_queue> queue;
    const boost::asio::any_io_executor executor; // the fallback for a handler without its own
    Payload payload;
    // Guarded by the owner's mutex: linked while in nodes_ (at `position`).
    parked_waiters<signature> parked;
    typename std::list<std::shared_ptr<node>>::iterator position;
    bool linked = false;
  };

  std::shared_ptr<node> unlink(node& n)
  {
    auto self = std::move(*n.position);
    nodes_.erase(n.position);
    n.linked = false;
    return self;
  }

  void finish_front(completions& out, boost::system::error_code ec, Args... args)
  {
    auto& n = *nodes_.front();
    auto self = unlink(n);
    auto handler = n.parked.take();
    out.add(std::move(self), std::move(handler), n.executor, ec, std::move(args)...);
  }

  std::mutex& mutex_;
  // The waiters, oldest first; each also holds a weak reference back.
  std::list<std::shared_ptr<node>> nodes_;
  std::function<void(completions&)> on_leave_;
};

} // namespace fanout::detail
