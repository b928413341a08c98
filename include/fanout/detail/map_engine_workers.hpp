// How a map's items run: the spawning loop, the worker coroutines, the
// reader of an asynchronous input, and the inline loop of plain calls.
// Definitions of map_engine members, included at the end of map_engine.hpp.
#pragma once

#include "fanout/detail/cancellation_room.hpp"
#include "fanout/detail/map_engine.hpp"

#include <boost/asio/this_coro.hpp>

namespace fanout::detail {

template <map_delivery Delivery, bool Settled, typename Stored, typename F, typename Input>
void map_engine<Delivery, Settled, Stored, F, Input>::spawn_workers()
{
  std::exception_ptr failure;
  window_.begin_spawning();
  for (;;) {
    std::optional<item> first;
    place* p = nullptr;
    place* reader = nullptr;
    {
      std::lock_guard lock(window_.mutex());
      try {
        if (auto pulled = pull_locked())
          first.emplace(std::move(*pulled)); // emplace: items of const ranges hold references
      } catch (...) {
        failure = std::current_exception();
      }
      reader = std::exchange(reader_to_start_, nullptr);
      if (first)
        p = window_.take_place_locked();
    }
    if (reader)
      start_reader(reader);
    if (!first)
      break;
#if FANOUT_DIRECT_WORKERS
    window_.launch(p, worker(this, p, std::move(*first), keep()));
#else
    window_.spawn(p, worker(this, p, std::move(*first), nullptr), keep());
#endif
  }
  if (failure)
    stop(std::move(failure)); // spawning still counts: the map finishes below
  if (window_.end_spawning())
    finish();
}

template <map_delivery Delivery, bool Settled, typename Stored, typename F, typename Input>
auto map_engine<Delivery, Settled, Stored, F, Input>::worker(map_engine* self, place* p, item first,
                                                             std::shared_ptr<void> keep) -> worker_coroutine
{
  std::optional<item> next(std::move(first));
  const bool started = p->cancel.begin();
  while (next) {
    // A stop whose emit ran before this point is seen here, on the strand.
    if (started && !p->cancel.requested && !self->window_.stopping()) {
      try {
        const boost::asio::cancellation_state state = co_await boost::asio::this_coro::cancellation_state;
        reserve_cancellation_room(state.slot());
        // Awaited right here, in the worker's frame: no frame of its own.
        if constexpr (std::is_void_v<value_type>) {
          co_await run_item<value_type>(self->function_, next->args, self->settings_.item);
          self->store(*next);
        } else {
          self->store(*next, co_await run_item<value_type>(self->function_, next->args, self->settings_.item));
        }
      } catch (...) {
        if constexpr (Settled)
          self->store(*next, std::current_exception());
        else
          self->stop(std::current_exception());
      }
    }
    auto pulled = self->advance(*next);
    next.reset(); // the finished item's arguments go first
    if (pulled)
      next.emplace(std::move(*pulled));
  }
  p->cancel.end();
#if FANOUT_DIRECT_WORKERS
  // The body's last step: nothing after it may throw or suspend.
  if (self->window_.leave(p))
    self->finish();
  keep.reset();
#else
  (void)keep;
  if (self->window_.leave())
    self->finish();
  // An emit made while this body ran (from its own strand) left the
  // coroutine cancelled: co_spawn's own last await must not throw it.
  co_await boost::asio::this_coro::throw_if_cancelled(false);
#endif
}

template <map_delivery Delivery, bool Settled, typename Stored, typename F, typename Input>
void map_engine<Delivery, Settled, Stored, F, Input>::start_reader(place* p)
{
  if constexpr (Input::asynchronous)
    window_.spawn(p, reader(this, p), keep());
}

template <map_delivery Delivery, bool Settled, typename Stored, typename F, typename Input>
boost::asio::awaitable<void> map_engine<Delivery, Settled, Stored, F, Input>::reader(map_engine* self, place* p)
{
  const bool started = p->cancel.begin();
  if constexpr (Input::asynchronous) {
    for (;;) {
      std::exception_ptr failure;
      std::optional<typename Input::element_type> element;
      // A stop whose emit ran before this point is seen here, on the strand.
      if (started && !p->cancel.requested && !self->window_.stopping()) {
        try {
          element = co_await self->input_.read();
        } catch (...) {
          failure = std::current_exception();
        }
      } else {
        failure = aborted_error("fanout::async_map");
      }
      if (failure) {
        {
          std::lock_guard lock(self->window_.mutex());
          self->input_.reading = false;
        }
        self->stop(std::move(failure));
        break;
      }
      {
        std::lock_guard lock(self->window_.mutex());
        self->input_.put(std::move(element));
      }
      self->spawn_workers(); // takes the element (input_.reading stays set: no second reader)
      bool again = false;
      {
        std::lock_guard lock(self->window_.mutex());
        again = !self->input_.has_buffered() && !self->input_.ended() && self->window_.can_start_locked();
        if (!again) {
          self->input_.reading = false;
          if (self->input_.ended())
            self->window_.set_exhausted_locked();
        }
      }
      if (!again)
        break;
    }
  }
  p->cancel.end();
  if (self->window_.leave())
    self->finish();
  co_await boost::asio::this_coro::throw_if_cancelled(false);
}

template <map_delivery Delivery, bool Settled, typename Stored, typename F, typename Input>
auto map_engine<Delivery, Settled, Stored, F, Input>::advance(item& done) -> std::optional<item>
{
  std::optional<item> next;
  std::exception_ptr failure;
  place* reader = nullptr;
  {
    std::lock_guard lock(window_.mutex());
    if constexpr (streaming) {
      if (done.own) {
        if constexpr (as_completed)
          sink_.push(done.index, std::move(*done.own));
        else
          done.cell->emplace(std::move(*done.own));
      }
    } else {
      window_.release_locked();
    }
    try {
      if (auto pulled = pull_locked())
        next.emplace(std::move(*pulled));
    } catch (...) {
      failure = std::current_exception();
    }
    reader = std::exchange(reader_to_start_, nullptr);
  }
  if (reader)
    start_reader(reader);
  if constexpr (streaming)
    notify();
  if (failure)
    stop(std::move(failure));
  return next;
}

template <map_delivery Delivery, bool Settled, typename Stored, typename F, typename Input>
void map_engine<Delivery, Settled, Stored, F, Input>::run_inline()
{
  std::conditional_t<std::is_void_v<Stored>, no_value, std::vector<storable_type>> out;
  if constexpr (!std::is_void_v<Stored> && Input::sized)
    out.reserve(input_.size());
  window_.begin_spawning();
  std::exception_ptr failure;
  const bool exhausted =
      run_inline_calls<Stored, Settled>(function_, input_, out, failure, [this] { return window_.stopping(); });
  if constexpr (!std::is_void_v<Stored>)
    inline_results_.emplace(std::move(out));
  if (failure)
    stop(std::move(failure));
  if (window_.end_spawning(exhausted))
    finish();
}

} // namespace fanout::detail
