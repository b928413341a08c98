// The part of fanout::async_map's engine that does not depend on the mapped
// function, the ranges or the result type: worker places and strands, the
// bookkeeping of running workers, stopping (fail-fast, cancellation, the
// overall deadline), the collect map's waiter. Compiled once, in
// src/map_engine_core.cpp, instead of once per async_map call site: every
// map_engine derives from it and adds only what depends on its types
// (pulling inputs, the worker coroutine, the results).
#pragma once

#include "fanout/map_options.hpp"

#include "fanout/detail/executor_traits.hpp"
#include "fanout/detail/lazy_deque.hpp"
#include "fanout/detail/parked_handlers.hpp"

#include <boost/asio/any_completion_handler.hpp>
#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/cancellation_signal.hpp>
#include <boost/asio/steady_timer.hpp>

#include <atomic>
#include <cstddef>
#include <exception>
#include <memory>
#include <mutex>
#include <optional>
#include <vector>

namespace fanout::detail {

class map_engine_core : public std::enable_shared_from_this<map_engine_core>, public handler_parker
{
public:
  /// Cancels every running item and starts no more (the consumer was
  /// cancelled or went away). Does nothing once the map has finished.
  void cancel();

  /// The executor's context is shutting down: destroys a parked waiter
  /// without invoking it (it owns the awaiting coroutine, which owns this
  /// engine). Streams drop theirs too (drop_stream_waiter).
  void drop_parked_handlers() noexcept final;

  /// Every item has finished and the outcome is final (a map of plain inline
  /// calls is, as soon as start() returns).
  bool finished()
  {
    std::lock_guard lock(mutex_);
    return finished_;
  }

protected:
  using strand_type = boost::asio::any_io_executor; // a strand of executor_, or executor_ itself

  // One worker's place: a strand of the map's executor (shared with other
  // places), on which the worker runs and its cancellation signal is emitted
  // (so emitting never races with the worker, even on a multi-threaded
  // executor), and the signal bound to the worker's co_spawn. Reused by later
  // workers once its worker finished.
  struct worker_slot
  {
    explicit worker_slot(const strand_type& s) : strand(&s) {}
    const strand_type* strand; // one of strands_
    boost::asio::cancellation_signal signal;
    // The signal is being emitted (on the strand): a worker that finishes
    // inside that call must not clear the handler being run.
    bool emitting = false;
  };

  /// @p inline_calls: plain calls made inline (one worker, no timeouts).
  /// @p collect: results are collected at the end (not streamed), so every
  /// access is on @p executor and a serial executor needs no lock.
  map_engine_core(const map_options& options, boost::asio::any_io_executor executor, bool inline_calls, bool collect);
  ~map_engine_core() override;

  /// Arms the overall deadline (or, if it is already past, stops the map
  /// before anything starts).
  void arm_deadline();

  /// Collect maps: parks @p handler until every worker has finished (or
  /// completes it at once if they have), and ties its cancellation slot to
  /// cancel().
  void wait(boost::asio::any_completion_handler<void()> handler);

  /// A call of spawn_workers (or run_inline) begins: the map cannot finish
  /// until the matching end_spawning.
  void begin_spawning();
  /// ... and ends, having pulled @p pulled more items; @p exhausted: a range
  /// reached its end; @p failure: pulling or an inline call failed.
  void end_spawning(std::size_t pulled = 0, bool exhausted = false, std::exception_ptr failure = nullptr);

  /// A place for one more worker (counted in workers_). Mutex held.
  worker_slot* acquire_place_locked();

  /// Runs @p worker on @p place's strand, its cancellation bound to the
  /// place's signal; worker_done follows on that strand. The engine stays
  /// alive until then.
  void spawn(worker_slot* place, boost::asio::awaitable<void> worker);

  /// Records the first failure, starts no more items and cancels the running
  /// ones, each through its own strand. Mutex held.
  void stop_locked(std::exception_ptr e);
  void fail(std::exception_ptr e);

  /// All work is over: no worker runs, none is being spawned, and no more will be.
  bool done_locked() const { return !finished_ && workers_ == 0 && spawning_ == 0 && (exhausted_ || stopping_); }

  /// Every worker has finished: the result is final. Wakes the waiter.
  void finish();

  /// A waiter is parked: the context must drop it if it shuts down first.
  void park_locked();
  void unpark_locked();

  // What streams add (collect maps leave them empty).
  /// The map finished: hand a parked consumer the end.
  virtual void on_finished() {}
  /// A worker left: a stream may have room for another.
  virtual void on_worker_left() {}
  /// The context is shutting down: destroy the parked next() handler.
  virtual void drop_stream_waiter() noexcept {}

  const map_options options_;
  // Where workers run; for streams, set by the first next().
  boost::asio::any_io_executor executor_;
  std::size_t limit_ = 0;     // most workers at once; for streams, also most items pulled and not yet consumed
  bool inline_calls_ = false; // plain calls made inline: no workers, no timeouts
  // A collect map on a serial executor: every call into the engine is made
  // on executor_ (the awaiting coroutine's), so workers are spawned in place.
  bool on_executor_ = false;
  // Set with stopping_, for run_inline to check without the lock.
  std::atomic<bool> stop_flag_{false};
  // Fires at options_.deadline; cancelled when the map finishes.
  std::optional<boost::asio::steady_timer> deadline_timer_;

  // Guards everything below (and the derived engine's inputs and results):
  // held only for short steps, never while an item runs or a worker is
  // spawned.
  optional_mutex mutex_; // locks unless every access is on one serial executor
  static constexpr std::size_t strand_count = 16;
  std::vector<strand_type> strands_;     // shared by the workers, round robin; never reallocated
  lazy_deque<worker_slot> slots_;        // stable addresses; at most limit_ in use
  std::vector<worker_slot*> free_slots_; // places whose worker has finished
  std::size_t workers_ = 0;              // workers spawned and not yet finished
  std::size_t spawning_ = 0;             // calls of spawn_workers in progress
  std::size_t pulled_ = 0;               // items taken from the ranges
  std::size_t consumed_ = 0;             // stream elements handed to the consumer
  bool started_ = false;                 // streams: the first next() started the map
  bool exhausted_ = false;               // a range reached its end
  bool stopping_ = false;                // no more items start
  bool finished_ = false;                // all work is over; the outcome is final
  std::exception_ptr error_;             // the first failure (or operation_aborted, timed_out)
  std::optional<boost::asio::any_completion_handler<void()>> waiter_; // collect: the awaiting coroutine
  parked_handlers_service* parked_service_ = nullptr;                 // where a parked waiter is registered

private:
  struct worker_done_handler;
  void worker_done(std::exception_ptr e, worker_slot* place);
};

} // namespace fanout::detail
