// The state a task_group shares with its tasks' completion handlers: the
// children to cancel, the joins and async_next_done waiters parked until the
// children finish. fanout::group_policy is declared here, beside the state
// that applies it.
#pragma once

#include "fanout/detail/errors.hpp"
#include "fanout/detail/parked_waiters.hpp"
#include "fanout/detail/task_state.hpp"

#include <boost/asio/any_io_executor.hpp>

#include <cstddef>
#include <cstdint>
#include <exception>
#include <memory>
#include <mutex>
#include <optional>
#include <vector>

namespace fanout {

/// What a task_group does when one of its tasks fails.
enum class group_policy {
  /// The first failure cancels every other task, and async_join() rethrows it once
  /// they have all finished (asyncio.TaskGroup, Trio).
  fail_fast,
  /// Failures cancel nothing and async_join() does not throw for them; each task's
  /// own handle still rethrows its exception when awaited.
  keep_going,
};

namespace detail {

struct group_state final : std::enable_shared_from_this<group_state>, handler_parker
{
  using children_type = std::vector<std::shared_ptr<task_state_base>>;
  using next_done_signature = void(std::exception_ptr, std::optional<std::size_t>);

  group_state(boost::asio::any_io_executor ex, group_policy p) : executor(std::move(ex)), policy(p) {}

  const boost::asio::any_io_executor executor;
  const group_policy policy;

  // Guards everything below. Never held while a child is cancelled or a join
  // completes: cancel_locked() hands the children out to cancel after
  // unlocking.
  std::mutex mutex;
  std::size_t running = 0;  // children spawned and not yet finished
  bool cancelling = false;  // every child was told to cancel; new ones are cancelled at once
  bool closed = false;      // a join completed: no new children
  std::exception_ptr error; // fail_fast: the first failure; or operation_aborted when the owner cancelled
  children_type children;   // to cancel them; finished ones are pruned
  parked_waiters<void(std::exception_ptr)> joins;

  // async_next_done. Invariant: spawned == handed + (finished.size() -
  // finished_head) + running, and next_waiters is empty unless no finished
  // index waits and a task runs (running > 0).
  std::size_t spawned = 0;           // the index the next spawned task gets
  std::size_t handed = 0;            // indices handed to next_done waiters
  std::vector<std::size_t> finished; // indices of finished tasks, in finish order...
  std::size_t finished_head = 0;     // ...from here on not yet handed out
  parked_waiters<next_done_signature> next_waiters;

  // The next_done waiters are registered with the parked-handlers service on
  // their own (joins register the group itself, and taking them unregisters
  // it): this member, through a shared_ptr that shares the group's ownership.
  struct next_done_parker final : handler_parker
  {
    explicit next_done_parker(group_state& g) : group(g) {}
    group_state& group;
    void drop_parked_handlers() noexcept override { group.drop_next_done(); }
  };
  next_done_parker next_parker{*this};

  std::shared_ptr<handler_parker> next_parker_owner() { return {shared_from_this(), &next_parker}; }

  // The next finished index not yet handed out (mutex held; one must wait).
  std::size_t pop_finished_locked()
  {
    const std::size_t index = finished[finished_head++];
    ++handed;
    if (finished_head == finished.size()) {
      finished.clear();
      finished_head = 0;
    } else if (finished_head >= 64 && 2 * finished_head >= finished.size()) {
      finished.erase(finished.begin(), finished.begin() + static_cast<std::ptrdiff_t>(finished_head));
      finished_head = 0;
    }
    return index;
  }

  // The next_done wait with @p ticket was cancelled: it completes with
  // operation_aborted, unless it was handed an index (or the end) already.
  void cancel_next_done(std::uint64_t ticket)
  {
    parked_waiters<next_done_signature> cancelled;
    {
      std::lock_guard lock(mutex);
      cancelled = next_waiters.take(ticket);
    }
    cancelled.complete_all(executor, aborted_error("fanout::task_group::async_next_done"),
                           std::optional<std::size_t>());
  }

  void drop_next_done() noexcept
  {
    parked_waiters<next_done_signature> dropped;
    std::lock_guard lock(mutex);
    dropped = next_waiters.take();
  } // unlocked before the handlers are destroyed

  // Records @p reason (the first wins) and returns the children to cancel:
  // every child, the first time; none after.
  [[nodiscard]] children_type cancel_locked(std::exception_ptr reason)
  {
    if (!error && reason)
      error = std::move(reason);
    if (cancelling)
      return {};
    cancelling = true;
    return children;
  }

  static void cancel_all(const children_type& to_cancel)
  {
    for (const auto& child : to_cancel)
      child->request_cancel();
  }

  void cancel(std::exception_ptr reason)
  {
    children_type to_cancel;
    {
      std::lock_guard lock(mutex);
      to_cancel = cancel_locked(std::move(reason));
    }
    cancel_all(to_cancel);
  }

  // Task @p index has finished with @p e (null: returned).
  void child_finished(const std::exception_ptr& e, std::size_t index)
  {
    children_type to_cancel;
    parked_waiters<void(std::exception_ptr)> ready;
    parked_waiters<next_done_signature> next;  // gets index
    parked_waiters<next_done_signature> ended; // get the end: nothing runs, nothing waits to be handed out
    std::exception_ptr outcome;
    {
      std::lock_guard lock(mutex);
      if (e && policy == group_policy::fail_fast)
        to_cancel = cancel_locked(e);
      --running;
      if (next_waiters.empty()) {
        finished.push_back(index);
      } else {
        next = next_waiters.take_front();
        ++handed;
        if (running == 0)
          ended = next_waiters.take();
      }
      if (running == 0 && !joins.empty()) {
        closed = true;
        outcome = error;
        ready = joins.take();
      }
    }
    cancel_all(to_cancel);
    ready.complete_all(executor, outcome);
    next.complete_all(executor, std::exception_ptr(), std::optional<std::size_t>(index));
    ended.complete_all(executor, std::exception_ptr(), std::optional<std::size_t>());
  }

  // The executor's context is shutting down: destroy the parked joins without
  // invoking them (they own coroutines that own this state).
  void drop_parked_handlers() noexcept override
  {
    parked_waiters<void(std::exception_ptr)> dropped;
    std::lock_guard lock(mutex);
    dropped = joins.take();
  } // unlocked before the handlers are destroyed
};

} // namespace detail

} // namespace fanout
