// The engine behind fanout::async_map, its streams and sync_map: worker
// coroutines that pull items from the input, run them and store their
// results, within the worker window. Made of the parts beside it: the input
// (map_input.hpp), the item (map_item.hpp), the results (map_sink.hpp), the
// window (map_window.hpp, compiled) and the parked waiters.
#pragma once

#include "fanout/detail/completion.hpp"
#include "fanout/detail/errors.hpp"
#include "fanout/detail/map_consumer.hpp"
#include "fanout/detail/map_inline.hpp"
#include "fanout/detail/map_input.hpp"
#include "fanout/detail/map_item.hpp"
#include "fanout/detail/map_settings.hpp"
#include "fanout/detail/map_sink.hpp"
#include "fanout/detail/map_window.hpp"
#include "fanout/detail/parked_waiters.hpp"

#include <boost/asio/any_completion_handler.hpp>
#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/associated_executor.hpp>
#include <boost/asio/async_result.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/dispatch.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/this_coro.hpp>

#include <cstddef>
#include <exception>
#include <memory>
#include <mutex>
#include <optional>
#include <type_traits>
#include <utility>
#include <vector>

namespace fanout::detail {

/// @tparam Stored what one item leaves behind: its value (fail-fast; void
///         for void items), or its outcome (settled: constructible from the
///         value and from an exception_ptr).
template <map_delivery Delivery, bool Settled, typename Stored, typename F, typename Input>
class map_engine final : public std::enable_shared_from_this<map_engine<Delivery, Settled, Stored, F, Input>>,
                         public handler_parker
{
public:
  static constexpr bool streaming = Delivery != map_delivery::collect;
  static constexpr bool as_completed = Delivery == map_delivery::as_completed;
  using input_type = Input;
  using args_type = typename Input::args_type;
  using value_type = item_value_t<F, args_type>;
  // Plain calls made inline cannot overlap anything: one at a time.
  static constexpr bool plain_calls = plain_call_type<item_call_t<F, args_type>>;
  using storable_type = std::conditional_t<std::is_void_v<Stored>, no_value, Stored>;
  using sink_type = std::conditional_t<as_completed, completion_queue<storable_type>, ordered_cells<storable_type>>;
  using result_type = std::conditional_t<std::is_void_v<Stored>, void, std::vector<storable_type>>;
  using element_type = std::conditional_t<as_completed, std::pair<std::size_t, storable_type>, storable_type>;
  using next_signature = typename map_consumer<element_type, sink_type>::signature;

  map_engine(const map_settings& settings, boost::asio::any_io_executor executor, F f, Input input)
      : settings_(settings),
        inline_calls_(plain_calls && !settings.item.offload && !Input::asynchronous && !settings.item.gated()),
        window_(std::move(executor), inline_calls_ ? 1 : settings.max_concurrency, !streaming), function_(std::move(f)),
        input_(std::move(input))
  {
    if (inline_calls_)
      settings_.item.timeout = {}; // an inline call cannot be interrupted: no timeout
  }

  /// Arms the deadline and starts the first items (nothing if the map was
  /// cancelled first).
  void start()
  {
    if (finished())
      return;
    if (settings_.item.retry) {
      try {
        check_backoff(*settings_.item.retry, "fanout::async_map: map_options.retry");
      } catch (...) {
        stop(std::current_exception()); // nothing started: the map completes with it
        return;
      }
    }
    if (settings_.deadline && !arm_deadline())
      return;
    if constexpr (!streaming && plain_calls && !Input::asynchronous) {
      if (inline_calls_) {
        run_inline();
        return;
      }
    }
    if constexpr (Input::sized) {
      std::lock_guard lock(window_.mutex());
      window_.expect_items_locked(input_.size());
      if constexpr (!streaming && !std::is_void_v<Stored>)
        sink_.reserve(input_.size());
    }
    spawn_workers();
  }

  /// Where the items run.
  const boost::asio::any_io_executor& get_executor() const noexcept { return window_.executor(); }

  /// Every item has finished and the outcome is final.
  bool finished()
  {
    std::lock_guard lock(window_.mutex());
    return window_.finished_locked();
  }

  /// Cancels every running item and starts no more (the consumer was
  /// cancelled or went away). Does nothing once the map has finished.
  void cancel() { stop(aborted_error("fanout::async_map")); }

  /// Collect maps, once finished: the results in input order, or the first
  /// failure rethrown.
  result_type take_result()
  {
    if (auto e = window_.error_locked()) // final: no lock needed
      std::rethrow_exception(e);
    if constexpr (!std::is_void_v<Stored>) {
      if (inline_results_)
        return std::move(*inline_results_);
      return sink_.take_all();
    }
  }

  /// Streams: the next element (signature next_signature): a value, an empty
  /// optional at the end, or the failure once every item has finished. The
  /// first call starts the map on the handler's executor.
  template <typename Token>
  auto async_next(Token&& token)
  {
    return boost::asio::async_initiate<Token, next_signature>(
        [](auto handler, std::shared_ptr<map_engine> self) { self->next(std::move(handler)); }, token,
        this->shared_from_this());
  }

  /// The context is shutting down: destroys parked handlers without invoking
  /// them (they own the awaiting coroutines, which own this engine).
  void drop_parked_handlers() noexcept override
  {
    if constexpr (streaming) {
      parked_waiters<next_signature> waiter;
      std::lock_guard lock(window_.mutex());
      waiter = waiter_.take();
    } else {
      window_.drop_waiter();
    }
  } // the lock is released before the handlers are destroyed

  /// Collect maps: parks @p handler (signature void()) until the map has
  /// finished, or posts it if it has.
  void wait_with(boost::asio::any_completion_handler<void()> handler) { window_.wait(std::move(handler), owner()); }

  /// Collect maps: waits until the map has finished (compiled once).
  boost::asio::awaitable<void> await_finished() { return window_.await_finished(owner()); }

private:
  using place = map_window::place;
  using cell_ptr = std::conditional_t<as_completed, no_value, typename ordered_cells<storable_type>::cell*>;

  struct item
  {
    args_type args;
    std::size_t index = 0;
    cell_ptr cell{};
    // Streams: the result, until it is published under the lock.
    std::conditional_t<streaming, std::optional<storable_type>, no_value> own{};
  };

  std::shared_ptr<void> keep() { return this->shared_from_this(); }
  std::shared_ptr<handler_parker> owner() { return this->shared_from_this(); }

  // Records the failure and cancels; completes the map if nothing runs.
  void stop(std::exception_ptr e)
  {
    const bool finished = window_.stop(std::move(e), keep());
    if constexpr (Input::asynchronous)
      input_.cancel_source(); // unlocked: an upstream stream stops too
    if (finished)
      finish();
  }

  bool arm_deadline()
  {
    if (*settings_.deadline <= clock::now()) {
      stop(timed_out_error()); // already past: nothing starts
      return false;
    }
    if constexpr (streaming) {
      window_.arm_deadline(*settings_.deadline, [self = this->shared_from_this()](boost::system::error_code ec) {
        if (!ec)
          self->stop(timed_out_error());
      });
    } else {
      window_.arm_collect_deadline(*settings_.deadline, owner());
    }
    return true;
  }

  // The next item, if one may start (mutex held). Throws what the input throws.
  std::optional<item> pull_locked()
  {
    if (!window_.can_start_locked())
      return std::nullopt;
    if constexpr (Input::asynchronous) {
      if (!input_.has_buffered()) {
        if (input_.ended()) {
          window_.set_exhausted_locked();
        } else if (!input_.reading) {
          // Room for an item and nothing read ahead: read one. The reader
          // holds a place (stop() cancels its read) and counts as running.
          input_.reading = true;
          reader_to_start_ = window_.take_place_locked();
        }
        return std::nullopt;
      }
    } else if (input_.at_end()) {
      window_.set_exhausted_locked();
      return std::nullopt;
    }
    std::optional<item> out;
    out.emplace(item{input_.take(), pulled_++});
    if constexpr (!as_completed && !std::is_void_v<Stored>)
      out->cell = sink_.add(); // void items leave nothing: no cell
    window_.occupy_locked();
    return out;
  }

  // Starts workers while items may start: one per item, each with its first
  // item. A worker whose items finish without suspending goes on pulling, so
  // trivial items cost no spawn each.
  void spawn_workers();

  // Runs its first item, then pulls the next while items may start. On its
  // place's strand. Started directly, it holds @p keep (the engine) itself;
  // through co_spawn, its completion handler does, and @p keep is null.
  static worker_coroutine worker(map_engine* self, place* p, item first, std::shared_ptr<void> keep);

  // An asynchronous input's reader, on place @p p: reads elements while an
  // item may start and nothing is read ahead, handing each to a worker.
  // One reader at a time (input_.reading); through co_spawn, whose
  // completion handler keeps the engine alive and frees the place.
  void start_reader(place* p);

  static boost::asio::awaitable<void> reader(map_engine* self, place* p);

  template <typename... V>
  void store(item& it, V&&... value)
  {
    if constexpr (streaming)
      it.own.emplace(std::forward<V>(value)...);
    else if constexpr (!std::is_void_v<Stored>)
      it.cell->emplace(std::forward<V>(value)...); // this item's own cell: no lock
  }

  // @p done has finished: publishes its result, frees its room (collect) and
  // pulls the next item, if one may start.
  std::optional<item> advance(item& done);

  // Plain calls made inline, collected: no worker at all, on the awaiting
  // coroutine's executor.
  void run_inline();

  // All work is over (once): hand the outcome to whoever waits.
  void finish()
  {
    if constexpr (streaming) {
      window_.cancel_deadline();
      notify();
    } else {
      window_.finish_collect();
    }
  }

  // Streams: what a parked next()'s cancellation does: cancel the map, on
  // its executor (the emitter may be on any thread).
  auto on_cancel()
  {
    return [weak = this->weak_from_this()](boost::asio::cancellation_type_t) {
      if (auto self = weak.lock())
        boost::asio::dispatch(self->window_.executor(), [self] { self->cancel(); });
    };
  }

  template <typename Handler>
  void next(Handler&& handler)
  {
    bool first_call = false;
    {
      std::lock_guard lock(window_.mutex());
      first_call = !started_;
      started_ = true;
    }
    if (first_call) {
      if (!window_.executor()) // a stream made without an executor runs where its first handler completes
        window_.set_executor(boost::asio::any_io_executor(boost::asio::get_associated_executor(handler)));
      start();
    } else if (settings_.deadline && *settings_.deadline <= clock::now()) {
      // Past the deadline, whether or not its timer's handler has run yet:
      // this next() fails with timed_out, as the handler would have made it.
      stop(timed_out_error());
    }
    // Room in the window again: spawn from the executor, not inside this initiation.
    if (waiter_.next(std::forward<Handler>(handler), window_, sink_, this->shared_from_this(), on_cancel()))
      boost::asio::post(window_.executor(), [self = this->shared_from_this()] {
        {
          std::lock_guard lock(self->window_.mutex());
          self->window_.posted_spawn_ran_locked();
        }
        self->spawn_workers();
      });
  }

  void notify()
  {
    if (waiter_.notify(window_, sink_))
      spawn_workers();
  }

  map_settings settings_;
  const bool inline_calls_; // plain calls made inline: one at a time, no workers when collected
  map_window window_;       // its mutex guards the input, the sink and the waiters below
  // The mapped function: shared by every worker (and pool thread, when
  // offloading), so calls to it may overlap.
  F function_;
  Input input_;
  sink_type sink_;
  std::size_t pulled_ = 0; // items taken from the input
  // An asynchronous input's reader that pull_locked() decided to start;
  // taken by the same caller before it unlocks.
  place* reader_to_start_ = nullptr;
  bool started_ = false; // streams: the first next() started the map
  std::optional<std::conditional_t<std::is_void_v<Stored>, no_value, std::vector<storable_type>>>
      inline_results_; // run_inline's results, in order
  // Streams: the consumer (a collect map's waiter is the window's).
  std::conditional_t<streaming, map_consumer<element_type, sink_type>, no_value> waiter_;
};

} // namespace fanout::detail

#include "fanout/detail/map_engine_workers.hpp"
