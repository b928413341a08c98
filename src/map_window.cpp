#include "fanout/detail/map_window.hpp"

#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/deferred.hpp>
#include <boost/asio/dispatch.hpp>
#include <boost/asio/strand.hpp>

#include "fanout/detail/completion.hpp"
#include "fanout/detail/errors.hpp"

#include <limits>
#include <mutex>

namespace fanout::detail {

map_window::map_window(boost::asio::any_io_executor executor, std::size_t limit, bool collect)
    : executor_(std::move(executor)), limit_(limit == 0 ? std::numeric_limits<std::size_t>::max() : limit)
{
  // A collect map on an executor that runs one thing at a time is only ever
  // touched from that executor's thread. (A stream's executor is not known
  // until its first next().)
  if (collect && runs_serially(executor_)) {
    mutex_.skip_locking();
    serial_collect_ = true;
  }
}

map_window::~map_window() = default;

map_window::place* map_window::take_place_locked()
{
  if (workers_++ == 0)
    work_.emplace(boost::asio::prefer(executor_, boost::asio::execution::outstanding_work.tracked));
  if (!free_places_.empty()) {
    place* p = free_places_.back();
    free_places_.pop_back();
    return p;
  }
  // Enough strands for every thread of a pool to run a worker, without a
  // strand per worker; none on an executor that runs serially already.
  if (strands_.empty()) {
    if (runs_serially(executor_)) {
      strands_.push_back(executor_);
      strands_wanted_ = 1;
    } else {
      strands_.reserve(strand_count);
      strands_.push_back(boost::asio::make_strand(executor_));
      strands_wanted_ = strand_count;
    }
  } else if (strands_.size() < strands_wanted_) {
    strands_.push_back(boost::asio::make_strand(executor_));
  }
  return &places_.emplace_back(strands_[places_.size() % strands_.size()]);
}

bool map_window::finish_locked() noexcept
{
  if (finished_ || workers_ != 0 || spawning_ != 0 || !(exhausted_ || stopping_))
    return false;
  finished_ = true;
  return true;
}

void map_window::begin_spawning()
{
  std::lock_guard lock(mutex_);
  ++spawning_;
}

bool map_window::end_spawning(bool exhausted)
{
  std::lock_guard lock(mutex_);
  exhausted_ = exhausted_ || exhausted;
  --spawning_;
  return finish_locked();
}

bool map_window::leave()
{
  std::optional<boost::asio::any_io_executor> work; // released after unlocking
  std::lock_guard lock(mutex_);
  if (--workers_ == 0)
    work.swap(work_);
  return finish_locked();
}

bool map_window::stop(std::exception_ptr e, const std::shared_ptr<void>& keep)
{
  bool first = false;
  bool finished = false;
  {
    std::lock_guard lock(mutex_);
    if (finished_)
      return false; // the outcome is final already
    if (!error_)
      error_ = std::move(e);
    first = !stopping_;
    stopping_ = true;
    stop_flag_.store(true, std::memory_order_release);
    finished = finish_locked();
  }
  if (!first)
    return finished;
  // Unlocked: no place is added once stopping_ is set. Each emit runs on its
  // place's strand (inline when already there), never beside its worker.
  for (place& p : places_)
    boost::asio::dispatch(*p.strand, [keep, pp = &p] { pp->cancel.request(); });
  return finished;
}

// co_spawn's completion handler for every worker of every map: one type, so
// that co_spawn is instantiated here, once. Runs on the place's strand.
struct map_window::worker_done
{
  std::shared_ptr<void> keep;
  map_window* window;
  place* p;
  void operator()(const std::exception_ptr& e) const { window->worker_exited(p, e); }
};

void map_window::spawn(place* p, boost::asio::awaitable<void> worker, std::shared_ptr<void> keep)
{
  // co_spawn connects the place's slot here, off the strand: safe, since the
  // place's signal is only emitted while a worker body is live on it, and
  // this worker's body has not begun (the previous one's has ended).
  boost::asio::co_spawn(
      *p->strand, std::move(worker),
      boost::asio::bind_cancellation_slot(p->cancel.signal.slot(), worker_done{std::move(keep), this, p}));
}

#if FANOUT_DIRECT_WORKERS_AVAILABLE
void map_window::launch(place* p, direct_worker worker)
{
  // The thread's cancellation state is connected to the place's slot here,
  // off the strand: safe for the reason given in spawn(). A serial collect
  // map spawns from its executor, the place's strand: the worker starts
  // inline, as dispatch would start it.
  start_direct_worker(std::move(worker), *p->strand, p->cancel.signal.slot(), p->cancel.parent.slot(), serial_collect_);
}

bool map_window::leave(place* p)
{
  bool reusable = false;
  bool finished = false;
  std::optional<boost::asio::any_io_executor> work; // released after unlocking
  {
    std::lock_guard lock(mutex_);
    if (--workers_ == 0)
      work.swap(work_);
    finished = finish_locked();
    reusable = !exhausted_ && !stopping_;
    if (reusable)
      free_places_.push_back(p);
  }
  // The body's frame still holds the slot's cancellation state, but makes no
  // further use of it.
  if (!p->cancel.emitting) {
    if (!reusable)
      p->cancel.signal.slot().clear();
    p->cancel.parent.slot().clear(); // a state the body re-created, if any
  }
  return finished;
}
#endif

void map_window::worker_exited(place* p, const std::exception_ptr& e)
{
  bool reusable = false;
  {
    std::lock_guard lock(mutex_);
    if (e && !finished_ && !error_)
      error_ = e; // a worker body lets nothing escape; kept rather than lost
    reusable = !exhausted_ && !stopping_;
    if (reusable)
      free_places_.push_back(p);
  }
  // No later worker takes this place: free the cancellation handler co_spawn
  // left in its signal now, while its memory is still in cache (not from
  // inside that handler's own emit).
  if (!reusable && !p->cancel.emitting)
    p->cancel.signal.slot().clear();
}

void map_window::stop_collect(std::exception_ptr e, const std::shared_ptr<handler_parker>& owner)
{
  if (stop(std::move(e), owner))
    finish_collect();
}

void map_window::arm_collect_deadline(clock::time_point deadline, const std::shared_ptr<handler_parker>& owner)
{
  arm_deadline(deadline, [this, owner](boost::system::error_code ec) {
    if (!ec)
      stop_collect(timed_out_error(), owner);
  });
}

void map_window::wait(boost::asio::any_completion_handler<void()> handler, const std::shared_ptr<handler_parker>& owner)
{
  std::unique_lock lock(mutex_);
  if (finished_) {
    lock.unlock();
    post_completion(std::move(handler), executor_);
    return;
  }
  // Cancelled on the map's executor: the emitter may be on any thread.
  waiter_.park(std::move(handler), owner, executor_,
               [this, weak = std::weak_ptr<handler_parker>(owner)](boost::asio::cancellation_type_t) {
                 if (auto alive = weak.lock())
                   boost::asio::dispatch(executor_,
                                         [this, alive] { stop_collect(aborted_error("fanout::async_map"), alive); });
               });
}

boost::asio::awaitable<void> map_window::await_finished(std::shared_ptr<handler_parker> owner)
{
  // Awaited as a deferred operation: no coroutine frame for the wait itself.
  co_await boost::asio::async_initiate<const boost::asio::deferred_t&, void()>(
      [this, &owner](auto handler) { wait(boost::asio::any_completion_handler<void()>(std::move(handler)), owner); },
      boost::asio::deferred);
}

void map_window::finish_collect()
{
  cancel_deadline();
  parked_waiters<void()> waiter;
  {
    std::lock_guard lock(mutex_);
    waiter = waiter_.take();
  }
  waiter.complete_all(executor_);
}

void map_window::drop_waiter() noexcept
{
  parked_waiters<void()> waiter;
  std::lock_guard lock(mutex_);
  waiter = waiter_.take();
} // unlocked before the handler is destroyed

} // namespace fanout::detail
