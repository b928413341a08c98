// The worker window of a map: how many items may be in flight, where workers
// run, stopping (a failure, the consumer's cancellation, the deadline) and
// knowing when all work is over. Independent of the map's types: compiled
// once, in src/map_window.cpp.
#pragma once

#include "fanout/detail/clock.hpp"
#include "fanout/detail/executor_traits.hpp"
#include "fanout/detail/lazy_deque.hpp"
#include "fanout/detail/parked_waiters.hpp"
#include "fanout/detail/spawned_cancel.hpp"
#include "fanout/detail/worker_coroutine.hpp"

#include <boost/asio/any_completion_handler.hpp>
#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/steady_timer.hpp>

#include <algorithm>
#include <atomic>
#include <cstddef>
#include <exception>
#include <memory>
#include <optional>
#include <utility>
#include <vector>

namespace fanout::detail {

class map_window
{
public:
  /// Bytes kept inside a place for the cancellation handler a worker's start
  /// connects there: a direct worker's cancellation state (two words). The
  /// same whether or not FANOUT_PORTABLE_WORKERS is defined, since the library
  /// and its users may differ on it: co_spawn's handler (the portable start)
  /// fits on Asio versions where it is a bare signal, and goes to the heap
  /// where it also holds the executor.
  static constexpr std::size_t worker_cancel_room = 2 * sizeof(void*);

  /// Where one worker runs: a strand of the map's executor (shared with
  /// other places), and the worker's cancellation, emitted on that strand.
  /// A place is reused by a later worker once the previous one's co_spawn
  /// has completed.
  struct place
  {
    explicit place(const boost::asio::any_io_executor& s) : strand(&s) {}
    const boost::asio::any_io_executor* strand; // one of strands_
    spawned_cancel<worker_cancel_room> cancel;
  };

  /// @p limit: most items in the window at once (pulled and not yet
  /// released); 0 means no limit. @p collect: the map's results are collected
  /// at the end, so on an executor that runs serially every call is made on
  /// it, and no lock is needed.
  map_window(boost::asio::any_io_executor executor, std::size_t limit, bool collect);
  ~map_window();
  map_window(const map_window&) = delete;
  map_window& operator=(const map_window&) = delete;

  /// Guards the window's counters and the engine's input and results. Never
  /// held while an item, a handler or a cancellation emit runs.
  optional_mutex& mutex() noexcept { return mutex_; }

  const boost::asio::any_io_executor& executor() const noexcept { return executor_; }
  /// A stream learns its executor at its first next(), before anything runs.
  void set_executor(boost::asio::any_io_executor executor) { executor_ = std::move(executor); }

  // --- With mutex() held. ---

  /// Another item may start: not stopping, input left, room in the window.
  [[nodiscard]] bool can_start_locked() const noexcept { return !stopping_ && !exhausted_ && occupied_ < limit_; }
  /// An item was pulled: it holds room in the window until released.
  void occupy_locked() noexcept { ++occupied_; }
  /// An item's room is free again (it finished, or its result was consumed).
  void release_locked() noexcept { --occupied_; }
  /// The input has no more items.
  void set_exhausted_locked() noexcept { exhausted_ = true; }
  /// A place for one more worker; the worker counts as running from now on.
  place* take_place_locked();
  /// About @p n items are expected (a sized input): room for their places.
  void expect_items_locked(std::size_t n) noexcept { places_.reserve(std::min(n, limit_)); }
  /// The consumer made room: true if it should post a spawn, false if one
  /// is posted already and has not run (consecutive ones coalesce).
  [[nodiscard]] bool claim_posted_spawn_locked() noexcept { return !std::exchange(spawn_posted_, true); }
  /// The posted spawn runs: room made later needs another.
  void posted_spawn_ran_locked() noexcept { spawn_posted_ = false; }
  [[nodiscard]] bool finished_locked() const noexcept { return finished_; }
  [[nodiscard]] const std::exception_ptr& error_locked() const noexcept { return error_; }

  // --- Without the mutex. ---

  /// A spawning loop begins: the map cannot finish before the matching end.
  void begin_spawning();
  /// ... and ends, having found the input @p exhausted or not. True if this
  /// made the map finish (the caller completes it).
  [[nodiscard]] bool end_spawning(bool exhausted = false);
  /// A worker's body has ended. True if this made the map finish.
  [[nodiscard]] bool leave();

  /// No more items start (read by a worker on its strand, where a stop's
  /// emit is also seen; and by the inline loop).
  [[nodiscard]] bool stopping() const noexcept { return stop_flag_.load(std::memory_order_acquire); }

  /// Records @p e (the first failure wins), starts no more items and, the
  /// first time, cancels every running worker, each on its strand, after the
  /// lock is released. @p keep keeps the map alive until those emits ran.
  /// True if this made the map finish (the caller completes it).
  [[nodiscard]] bool stop(std::exception_ptr e, const std::shared_ptr<void>& keep);

  /// Runs @p worker on @p p's strand through co_spawn, its cancellation
  /// bound to the place. @p keep keeps the map alive until the worker's
  /// coroutine has completed. The worker ends with leave().
  void spawn(place* p, boost::asio::awaitable<void> worker, std::shared_ptr<void> keep);

#if FANOUT_DIRECT_WORKERS_AVAILABLE
  /// Runs @p worker on @p p's strand as its own coroutine thread, whose
  /// cancellation slot is the place's; while any such worker runs, the map's
  /// executor has outstanding work. The worker keeps the map alive itself and
  /// ends with leave(p).
  void launch(place* p, direct_worker worker);
  /// A launched worker's body has ended: @p p may take a later worker. True
  /// if this made the map finish.
  [[nodiscard]] bool leave(place* p);
#endif

  /// Arms the overall deadline: @p handler(error_code) runs when it passes
  /// (or with operation_aborted once the map finished first).
  template <typename Handler>
  void arm_deadline(clock::time_point deadline, Handler&& handler)
  {
    deadline_.emplace(executor_, deadline);
    deadline_->async_wait(std::forward<Handler>(handler));
  }

  /// The map finished: the deadline is no longer needed.
  void cancel_deadline()
  {
    if (deadline_)
      deadline_->cancel();
  }

  // --- Collect maps: their one waiter lives here, so that waiting, the
  // deadline and cancellation are compiled once. @p owner is the engine:
  // registered with the context while a waiter is parked, held weakly by the
  // waiter's cancellation slot, and kept alive by pending operations. ---

  /// Arms the deadline of a collect map: when it passes, the map stops with
  /// timed_out (and completes if nothing runs).
  void arm_collect_deadline(clock::time_point deadline, const std::shared_ptr<handler_parker>& owner);
  /// Parks @p handler until the map finishes (posts it if it has); its
  /// cancellation (any type) cancels the map.
  void wait(boost::asio::any_completion_handler<void()> handler, const std::shared_ptr<handler_parker>& owner);
  /// wait() as an awaitable.
  boost::asio::awaitable<void> await_finished(std::shared_ptr<handler_parker> owner);
  /// Stops the map with @p e; completes it if nothing runs.
  void stop_collect(std::exception_ptr e, const std::shared_ptr<handler_parker>& owner);
  /// All work is over: completes the waiter.
  void finish_collect();
  /// The context shuts down: destroys the waiter without invoking it.
  void drop_waiter() noexcept;

private:
  struct worker_done;
  bool finish_locked() noexcept;
  void worker_exited(place* p, const std::exception_ptr& e);

  boost::asio::any_io_executor executor_;
  const std::size_t limit_;
  // Set with stopping_, for reads without the lock.
  std::atomic<bool> stop_flag_{false};
  // A collect map on an executor that runs serially: no locking, and every
  // call is made on that executor (fixed at construction).
  bool serial_collect_ = false;
  std::optional<boost::asio::steady_timer> deadline_;

  // Guards everything below.
  optional_mutex mutex_;
  static constexpr std::size_t strand_count = 16;
  // Shared by the places, round robin; never reallocated (places point in).
  std::vector<boost::asio::any_io_executor> strands_;
  std::size_t strands_wanted_ = 0; // strand_count, or 1 (executor_ itself) when it runs serially
  // Stable addresses. Only added to while not stopping, so a stop may walk
  // them after unlocking.
  lazy_deque<place> places_;
  std::vector<place*> free_places_; // their worker's co_spawn has completed
  std::size_t occupied_ = 0;        // items pulled and not yet released
  std::size_t workers_ = 0;         // worker bodies started and not yet ended
  // While launched workers run (workers_ != 0): outstanding work on executor_.
  std::optional<boost::asio::any_io_executor> work_;
  std::size_t spawning_ = 0;      // spawning loops in progress
  bool exhausted_ = false;        // the input has no more items
  bool stopping_ = false;         // no more items start
  bool finished_ = false;         // all work is over; the outcome is final
  bool spawn_posted_ = false;     // streams: a spawn posted by the consumer has not run yet
  std::exception_ptr error_;      // the first failure (or operation_aborted, timed_out)
  parked_waiters<void()> waiter_; // collect maps: the awaiting coroutine
};

} // namespace fanout::detail
