#include "fanout/detail/map_engine_core.hpp"

#include "fanout/timeout.hpp"

#include "fanout/detail/completion.hpp"

#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/dispatch.hpp>
#include <boost/asio/error.hpp>
#include <boost/asio/strand.hpp>
#include <boost/system/system_error.hpp>

#include <limits>
#include <mutex>
#include <utility>

namespace fanout::detail {

map_engine_core::map_engine_core(const map_options& options, boost::asio::any_io_executor executor, bool inline_calls,
                                 bool collect)
    : options_(options), executor_(std::move(executor)), inline_calls_(inline_calls)
{
  limit_ = options_.max_concurrency == 0 ? std::numeric_limits<std::size_t>::max() : options_.max_concurrency;
  if (inline_calls_)
    limit_ = 1;
  // A collect map on an executor that runs one thing at a time is only ever
  // touched from that executor's thread: no lock needed. (A stream's
  // executor is not known until its first next().)
  if (collect && runs_serially(executor_)) {
    mutex_.skip_locking();
    on_executor_ = true;
  }
}

map_engine_core::~map_engine_core() = default;

void map_engine_core::cancel()
{
  std::lock_guard lock(mutex_);
  if (finished_)
    return;
  stop_locked(
      std::make_exception_ptr(boost::system::system_error(boost::asio::error::operation_aborted, "fanout::async_map")));
}

void map_engine_core::drop_parked_handlers() noexcept
{
  std::optional<boost::asio::any_completion_handler<void()>> waiter;
  {
    std::lock_guard lock(mutex_);
    waiter.swap(waiter_);
  }
  waiter.reset(); // outside the lock
  drop_stream_waiter();
}

void map_engine_core::arm_deadline()
{
  if (!options_.deadline)
    return;
  if (*options_.deadline <= clock::now()) {
    std::lock_guard lock(mutex_);
    stop_locked(timed_out_error()); // already past: nothing starts
    return;
  }
  deadline_timer_.emplace(executor_, *options_.deadline);
  deadline_timer_->async_wait([self = shared_from_this()](boost::system::error_code ec) {
    if (ec)
      return; // cancelled: the map finished first
    std::lock_guard lock(self->mutex_);
    if (!self->finished_)
      self->stop_locked(timed_out_error());
  });
}

void map_engine_core::wait(boost::asio::any_completion_handler<void()> handler)
{
  std::unique_lock lock(mutex_);
  if (finished_) {
    lock.unlock();
    post_completion(std::move(handler), executor_);
    return;
  }
  waiter_.emplace(std::move(handler));
  park_locked();
  // Assigned after type erasure: any_completion_handler takes over the
  // handler's slot and offers its own, which is where ours must go.
  auto slot = boost::asio::get_associated_cancellation_slot(*waiter_);
  if (slot.is_connected())
    slot.assign([self = shared_from_this()](boost::asio::cancellation_type_t) { self->cancel(); });
}

void map_engine_core::begin_spawning()
{
  std::lock_guard lock(mutex_);
  ++spawning_;
}

void map_engine_core::end_spawning(std::size_t pulled, bool exhausted, std::exception_ptr failure)
{
  bool done = false;
  {
    std::lock_guard lock(mutex_);
    pulled_ += pulled;
    exhausted_ = exhausted_ || exhausted;
    if (failure)
      stop_locked(std::move(failure));
    --spawning_;
    done = done_locked();
  }
  if (done)
    finish();
}

map_engine_core::worker_slot* map_engine_core::acquire_place_locked()
{
  ++workers_;
  if (!free_slots_.empty()) {
    worker_slot* place = free_slots_.back();
    free_slots_.pop_back();
    return place;
  }
  // Workers share a few strands: enough for every thread of a pool to run a
  // worker, without creating a strand per worker.
  // Slots point into strands_, so it never reallocates: one element on an
  // executor that runs one thing at a time, room for strand_count otherwise.
  if (strands_.empty() && runs_serially(executor_)) {
    strands_.push_back(executor_); // one thread at a time already: no strands needed
  } else if (strands_.size() < strand_count && (strands_.empty() || strands_.front() != executor_)) {
    strands_.reserve(strand_count);
    strands_.push_back(boost::asio::make_strand(executor_));
  }
  return &slots_.emplace_back(strands_[slots_.size() % strands_.size()]);
}

// co_spawn's completion handler for every worker of every map: one type, so
// that co_spawn is instantiated here, once.
struct map_engine_core::worker_done_handler
{
  std::shared_ptr<map_engine_core> self;
  worker_slot* place;
  void operator()(std::exception_ptr e) const { self->worker_done(std::move(e), place); }
};

void map_engine_core::spawn(worker_slot* place, boost::asio::awaitable<void> worker)
{
  // The handler keeps the engine alive until the worker has finished (the
  // worker itself holds a plain pointer).
  auto handler =
      boost::asio::bind_cancellation_slot(place->signal.slot(), worker_done_handler{shared_from_this(), place});
  if (on_executor_) {
    // Already on the (serial) executor, which is every worker's place:
    // nothing can emit the signal while co_spawn connects it.
    boost::asio::co_spawn(*place->strand, std::move(worker), std::move(handler));
    return;
  }
  // Dispatched first, so that co_spawn connects the place's cancellation
  // slot on the strand that emits it.
  boost::asio::dispatch(*place->strand, [place, worker = std::move(worker), handler = std::move(handler)]() mutable {
    boost::asio::co_spawn(*place->strand, std::move(worker), std::move(handler));
  });
}

void map_engine_core::stop_locked(std::exception_ptr e)
{
  if (!error_)
    error_ = std::move(e);
  if (stopping_)
    return;
  stopping_ = true;
  stop_flag_.store(true, std::memory_order_relaxed);
  for (auto& place : slots_)
    boost::asio::dispatch(*place.strand, [self = shared_from_this(), place = &place] {
      place->emitting = true;
      place->signal.emit(boost::asio::cancellation_type::terminal);
      place->emitting = false;
    });
}

void map_engine_core::fail(std::exception_ptr e)
{
  std::lock_guard lock(mutex_);
  stop_locked(std::move(e));
}

// Runs on the worker's strand when its co_spawn completes.
void map_engine_core::worker_done(std::exception_ptr e, worker_slot* place)
{
  bool done = false;
  bool reusable = true;
  {
    std::lock_guard lock(mutex_);
    if (e) // the worker failed outside an item: pulling threw, or it was cancelled before starting
      stop_locked(std::move(e));
    --workers_;
    reusable = !exhausted_ && !stopping_;
    if (reusable)
      free_slots_.push_back(place);
    done = done_locked();
  }
  // No later worker will take this place: free the cancellation handler
  // co_spawn left in its signal now, while its memory is still in cache,
  // rather than all of them when the map ends. (On the place's strand; not
  // if an operation completed the worker from inside that very handler.)
  if (!reusable && !place->emitting)
    place->signal.slot().clear();
  if (done)
    finish();
  else
    on_worker_left(); // a stream's worker that left for want of room may have room again
}

void map_engine_core::finish()
{
  std::optional<boost::asio::any_completion_handler<void()>> waiter;
  {
    std::lock_guard lock(mutex_);
    finished_ = true;
    waiter.swap(waiter_);
    if (waiter)
      unpark_locked();
  }
  if (deadline_timer_)
    deadline_timer_->cancel();
  if (waiter)
    post_completion(std::move(*waiter), executor_);
  on_finished();
}

void map_engine_core::park_locked()
{
  if (!parked_service_)
    parked_service_ = &parked_handlers_of(executor_);
  parked_service_->park(shared_from_this());
}

void map_engine_core::unpark_locked()
{
  if (parked_service_)
    parked_service_->unpark(this);
}

} // namespace fanout::detail
