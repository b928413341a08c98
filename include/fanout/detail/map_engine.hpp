// The engine behind fanout::async_map: a window of worker coroutines that
// pull items from the zipped input ranges and store results in input order.
#pragma once

#include "fanout/callable.hpp"
#include "fanout/map_options.hpp"
#include "fanout/offload.hpp"
#include "fanout/outcome.hpp"
#include "fanout/timeout.hpp"

#include "fanout/detail/completion.hpp"
#include "fanout/detail/lazy_deque.hpp"
#include "fanout/detail/map_engine_core.hpp"

#include <boost/asio/any_completion_handler.hpp>
#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/async_result.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <algorithm>
#include <cstddef>
#include <exception>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <ranges>
#include <tuple>
#include <type_traits>
#include <utility>
#include <vector>

namespace fanout::detail {

// Holds one input range of a map for as long as the map runs: an lvalue by
// reference (the caller's container), an rvalue moved in. (Not
// std::views::all: clang 14 cannot compile libstdc++ 12's views.)
template <typename R>
class range_holder
{
public:
  using range_type =
      std::conditional_t<std::is_lvalue_reference_v<R>, std::remove_reference_t<R>, std::remove_cvref_t<R>>;

  explicit range_holder(R&& r) : range_(hold(std::forward<R>(r))) {}

  range_type& get() noexcept
  {
    if constexpr (std::is_lvalue_reference_v<R>)
      return *range_;
    else
      return range_;
  }

private:
  static auto hold(R&& r)
  {
    if constexpr (std::is_lvalue_reference_v<R>)
      return &r;
    else
      return range_type(std::move(r));
  }

  std::conditional_t<std::is_lvalue_reference_v<R>, range_type*, range_type> range_;
};

// The argument an element of held range H is passed as. Elements of forward
// ranges stay valid after the iterator moves on, so they are passed by
// reference; single-pass ranges (istream views, generators) are copied out.
template <typename H>
using map_arg_t = std::conditional_t<std::ranges::forward_range<typename H::range_type&>,
                                     std::ranges::range_reference_t<typename H::range_type&>,
                                     std::ranges::range_value_t<typename H::range_type&>>;

template <typename F, typename... Views>
using map_call_result_t = std::invoke_result_t<F&, map_arg_t<Views>&...>;

template <typename T>
struct map_item_value
{
  using type = T; // a plain (blocking) call's result
};
template <typename T>
struct map_item_value<boost::asio::awaitable<T>>
{
  using type = T;
};
template <typename T>
struct map_item_value<invocation<T>>
{
  using type = T;
};

template <typename F, typename... Views>
using map_value_t = typename map_item_value<std::remove_cvref_t<map_call_result_t<F, Views...>>>::type;

// Where results wait, in input order, until the map completes. A deque keeps
// every slot at a stable address while later items are appended, so a worker
// writes its result through a pointer without touching the container.
template <typename R>
struct map_results
{
  using slot_type = std::optional<R>*;
  using result_type = std::vector<R>;

  slot_type add() { return &slots.emplace_back(); }

  // Allocates the result vector now, for @p n items, while the heap is
  // tidy: one large allocation at the end of a map, just after its items
  // freed their frames, costs the allocator a sweep over all of those
  // blocks (3 ms for 10,000 suspended items).
  void reserve(std::size_t n) { out.reserve(n); }

  result_type take()
  {
    out.reserve(slots.size()); // nothing to do if reserved
    for (auto& s : slots)
      out.push_back(std::move(*s));
    slots.clear();
    return std::move(out);
  }

  lazy_deque<std::optional<R>> slots;
  result_type out; // filled by take()
};

template <>
struct map_results<void>
{
  using slot_type = no_value*;
  using result_type = void;
  slot_type add() { return nullptr; }
  void reserve(std::size_t) {}
};

// How a map hands out its results.
enum class map_delivery {
  collect,      // all at the end, in input order (async_map, async_map_settled)
  ordered,      // one at a time, in input order, while later items run (async_map_stream)
  as_completed, // one at a time, as items finish, with their index (async_map_as_completed)
};

// Everything that does not depend on these types (workers' places, stopping,
// the deadline, the waiter) is in map_engine_core, compiled once.
template <error_policy Policy, map_delivery Delivery, typename F, typename... Views>
class map_engine final : public map_engine_core
{
public:
  static constexpr bool settled = Policy == error_policy::collect_all;
  static constexpr bool streaming = Delivery != map_delivery::collect;
  static constexpr bool as_completed = Delivery == map_delivery::as_completed;

  using value_type = map_value_t<F, Views...>;
  using call_result = std::remove_cvref_t<map_call_result_t<F, Views...>>;
  // What one item leaves behind: its value, or its outcome when settled
  // (void for a fail-fast map of void items).
  using stored_type = std::conditional_t<settled, outcome<value_type>, value_type>;
  // Collect and ordered maps keep results in input-order slots; an
  // as-completed map keeps each result in its worker until it is queued.
  using results_type = map_results<std::conditional_t<as_completed, void, stored_type>>;
  using result_type = typename results_type::result_type;
  // What a stream hands out per item.
  using storable_type = std::conditional_t<std::is_void_v<stored_type>, no_value, stored_type>;
  using element_type = std::conditional_t<as_completed, std::pair<std::size_t, storable_type>, storable_type>;
  using next_signature = void(std::exception_ptr, std::optional<element_type>);

  // A plain callable run inline cannot overlap with anything: one worker.
  static constexpr bool plain_calls = !is_awaitable_v<call_result> && !is_invocation_v<call_result>;

  map_engine(const map_options& options, boost::asio::any_io_executor executor, F f, Views... views)
      : map_engine_core(options, std::move(executor), plain_calls && options.blocking == blocking_policy::run_inline,
                        Delivery == map_delivery::collect),
        function_(std::move(f)), views_(std::move(views)...),
        iterators_(std::apply([](auto&... v) { return std::make_tuple(std::ranges::begin(v.get())...); }, views_))
  {}

  // Arms the deadline and spawns the first workers.
  void start()
  {
    if constexpr (Delivery == map_delivery::collect && input_size_known) {
      if (!inline_calls_) // run_inline collects into a vector of its own
        results_.reserve(input_size());
    }
    arm_deadline();
    if constexpr (plain_calls && Delivery == map_delivery::collect) {
      if (inline_calls_) {
        run_inline();
        return;
      }
    }
    spawn_workers();
  }

  // Collect maps: completes (signature void()) once every worker has finished.
  template <typename Token>
  auto async_wait(Token&& token)
  {
    return boost::asio::async_initiate<Token, void()>(
        [](auto handler, std::shared_ptr<map_engine> self) {
          self->wait(boost::asio::any_completion_handler<void()>(std::move(handler)));
        },
        token, self());
  }

  // Collect maps: the results in input order, or the first failure rethrown.
  result_type take_result()
  {
    if (error_)
      std::rethrow_exception(error_);
    if constexpr (!std::is_void_v<result_type>) {
      if (direct_used_)
        return std::move(direct_);
      return results_.take();
    }
  }

  // Streams: the next element (signature next_signature): a value, an empty
  // optional at the end, or the failure once every worker has finished. The
  // first call starts the map on the handler's executor.
  template <typename Token>
  auto async_next(Token&& token)
  {
    return boost::asio::async_initiate<Token, next_signature>(
        [](auto handler, std::shared_ptr<map_engine> self) {
          bool first_call = false;
          {
            std::lock_guard lock(self->mutex_);
            first_call = !self->started_;
            self->started_ = true;
          }
          if (first_call) {
            self->executor_ = boost::asio::any_io_executor(boost::asio::get_associated_executor(handler));
            self->start();
          }
          self->deliver_or_park(std::move(handler));
        },
        token, self());
  }

private:
  std::shared_ptr<map_engine> self() { return std::static_pointer_cast<map_engine>(shared_from_this()); }

  // Every range knows its size: the map has the shortest one's items.
  static constexpr bool input_size_known = (std::ranges::sized_range<typename Views::range_type&> && ...);
  std::size_t input_size()
  {
    return std::apply([](auto&... v) { return std::min({static_cast<std::size_t>(std::ranges::size(v.get()))...}); },
                      views_);
  }

  void drop_stream_waiter() noexcept override
  {
    if constexpr (streaming) {
      std::optional<stream_waiter> waiter;
      {
        std::lock_guard lock(mutex_);
        waiter.swap(stream_waiter_);
      }
    }
  }
  void on_finished() override
  {
    if constexpr (streaming)
      notify();
  }
  void on_worker_left() override
  {
    if constexpr (streaming)
      spawn_workers(); // a worker that left for want of room may have room again
  }

  using stream_waiter = boost::asio::any_completion_handler<next_signature>;

  struct item
  {
    std::tuple<map_arg_t<Views>...> args;
    std::size_t index = 0;
    typename results_type::slot_type slot = nullptr;
    // Streams: the result, until it is published under the lock (queued for
    // an as-completed consumer, or moved into its slot for an ordered one,
    // whose reader checks slots under the lock too).
    std::conditional_t<streaming, std::optional<storable_type>, no_value> own{};
  };

  bool can_pull_locked() const { return !stopping_ && !exhausted_ && (!streaming || pulled_ - consumed_ < limit_); }

  std::optional<item> pull_locked()
  {
    const bool at_end = std::apply(
        [this](auto&... it) {
          return std::apply([&](auto&... v) { return ((it == std::ranges::end(v.get())) || ...); }, views_);
        },
        iterators_);
    if (at_end) {
      exhausted_ = true;
      return std::nullopt;
    }
    std::optional<item> out;
    std::apply(
        [&](auto&... it) {
          out.emplace(item{std::tuple<map_arg_t<Views>...>(*it...)});
          (++it, ...);
        },
        iterators_);
    out->index = pulled_++;
    out->slot = results_.add();
    return out;
  }

  // Plain calls made inline, with results collected: no worker at all. The
  // calls run right here, one after another, on the awaiting coroutine's
  // executor (as a single worker would, but without a coroutine frame, a lock
  // or a result slot per item). Only this thread touches the iterators. The
  // loop works on locals (iterators, results, count) that the compiler can
  // keep in registers, and hands them back to the engine at the end.
  void run_inline()
  {
    std::conditional_t<std::is_void_v<stored_type>, no_value, std::vector<stored_type>> out;
    if constexpr (!std::is_void_v<stored_type> && input_size_known)
      out.reserve(input_size());
    begin_spawning();
    auto its = std::move(iterators_);
    const auto ends = std::apply([](auto&... v) { return std::make_tuple(std::ranges::end(v.get())...); }, views_);
    std::size_t count = 0;
    bool exhausted = false;
    std::exception_ptr failure;
    try {
      for (;;) {
        if (stop_flag_.load(std::memory_order_relaxed))
          break;
        const bool at_end = std::apply(
            [&](auto&... it) { return std::apply([&](auto&... e) { return ((it == e) || ...); }, ends); }, its);
        if (at_end) {
          exhausted = true;
          break;
        }
        // Pulling may throw: that ends the map (below), as in a worker.
        std::tuple<map_arg_t<Views>...> args =
            std::apply([](auto&... it) { return std::tuple<map_arg_t<Views>...>(*it...); }, its);
        std::apply([](auto&... it) { (++it, ...); }, its);
        ++count;
        try {
          if constexpr (std::is_void_v<stored_type>)
            std::apply(function_, args);
          else if constexpr (std::is_void_v<value_type>) {
            std::apply(function_, args);
            out.emplace_back();
          } else
            out.emplace_back(std::apply(function_, args));
        } catch (...) {
          if constexpr (settled)
            out.emplace_back(std::current_exception());
          else {
            failure = std::current_exception();
            break;
          }
        }
      }
    } catch (...) {
      failure = std::current_exception(); // pulling the input threw
    }
    iterators_ = std::move(its);
    if constexpr (!std::is_void_v<stored_type>) {
      direct_ = std::move(out);
      direct_used_ = true;
    }
    end_spawning(count, exhausted, std::move(failure));
  }

  // Spawns workers while there is room and input: one per item, each with its
  // first item. asio::co_spawn dispatches, so a worker may run inline here
  // until its item first suspends; a worker whose items complete without
  // suspending goes on pulling, so trivial items cost no spawn each.
  void spawn_workers()
  {
    begin_spawning();
    for (;;) {
      std::optional<item> first;
      worker_slot* place = nullptr;
      {
        std::lock_guard lock(mutex_);
        if (workers_ >= limit_ || !can_pull_locked())
          break;
        try {
          if (auto pulled = pull_locked())
            first.emplace(std::move(*pulled)); // emplace: items of const ranges hold const references
        } catch (...) {
          stop_locked(std::current_exception());
          break;
        }
        if (!first)
          break;
        place = acquire_place_locked();
      }
      spawn(place, worker(this, std::move(*first)));
    }
    end_spawning();
  }

  // Streams: the next element, if one is ready and no failure is pending.
  std::optional<element_type> take_element_locked()
  {
    if (error_)
      return std::nullopt;
    std::optional<element_type> out;
    if constexpr (as_completed) {
      if (!ready_.empty()) {
        out.emplace(std::move(ready_.front()));
        ready_.pop_front();
      }
    } else if constexpr (!std::is_void_v<stored_type>) {
      if (!results_.slots.empty() && results_.slots.front().has_value()) {
        out.emplace(std::move(*results_.slots.front()));
        results_.slots.pop_front();
      }
    }
    if (out)
      ++consumed_;
    return out;
  }

  template <typename Handler>
  void deliver_or_park(Handler&& handler)
  {
    std::unique_lock lock(mutex_);
    if (auto element = take_element_locked()) {
      lock.unlock();
      post_completion(std::forward<Handler>(handler), executor_, std::exception_ptr(), std::move(element));
      // Room in the window: spawn from the executor, not inside this initiation.
      boost::asio::post(executor_, [self = self()] { self->spawn_workers(); });
      return;
    }
    if (finished_) {
      auto e = error_;
      lock.unlock();
      post_completion(std::forward<Handler>(handler), executor_, e, std::optional<element_type>());
      return;
    }
    stream_waiter_.emplace(std::forward<Handler>(handler));
    park_locked();
    // Assigned after type erasure: any_completion_handler takes over the
    // handler's slot and offers its own, which is where ours must go.
    auto slot = boost::asio::get_associated_cancellation_slot(*stream_waiter_);
    if (slot.is_connected())
      slot.assign([self = self()](boost::asio::cancellation_type_t) { self->cancel(); });
  }

  // Streams: hands a parked consumer its element, or the end.
  void notify()
  {
    std::optional<stream_waiter> waiter;
    std::optional<element_type> element;
    std::exception_ptr e;
    {
      std::lock_guard lock(mutex_);
      if (!stream_waiter_)
        return;
      element = take_element_locked();
      if (!element && !finished_)
        return;
      if (!element)
        e = error_;
      waiter.swap(stream_waiter_);
      unpark_locked();
    }
    const bool delivered = element.has_value();
    post_completion(std::move(*waiter), executor_, e, std::move(element));
    if (delivered)
      spawn_workers();
  }

  // Runs its first item, then pulls the next while there is input and room.
  // An exception from pulling ends the worker and reaches worker_done through
  // co_spawn. spawn() keeps the engine alive while the worker runs, so @p self
  // is a plain pointer: no reference count per worker.
  static boost::asio::awaitable<void> worker(map_engine* self, item first)
  {
    // A worker that is told to stop while it runs (it failed itself, say)
    // just leaves; cancellation reaches its items through the operations they
    // await. Without this, a worker that never suspended would be thrown
    // operation_aborted by co_spawn's own final co_await, outside any handler.
    co_await boost::asio::this_coro::throw_if_cancelled(false);
    std::optional<item> next(std::move(first));
    while (next) {
      try {
        if constexpr (is_awaitable_v<call_result>) {
          // The common path: the item's coroutine awaited right here, in the
          // worker's frame, without a frame of our own around it.
          if (self->options_.item_timeout <= clock::duration::zero()) {
            if constexpr (std::is_void_v<value_type>) {
              co_await std::apply(self->function_, next->args);
              store(*next);
            } else {
              store(*next, co_await std::apply(self->function_, next->args));
            }
          } else {
            co_await self->run_item(*next);
          }
        } else {
          co_await self->run_item(*next);
        }
      } catch (...) {
        if constexpr (settled)
          store(*next, std::current_exception());
        else
          self->fail(std::current_exception());
      }
      if constexpr (streaming) {
        if (next->own) {
          std::lock_guard lock(self->mutex_);
          if constexpr (as_completed)
            self->ready_.emplace_back(next->index, std::move(*next->own));
          else if constexpr (!std::is_void_v<stored_type>)
            next->slot->emplace(std::move(*next->own));
        }
        self->notify();
      }
      next.reset();
      std::lock_guard lock(self->mutex_);
      if (self->can_pull_locked())
        if (auto pulled = self->pull_locked())
          next.emplace(std::move(*pulled));
    }
  }

  // Stores an item's value (as an outcome when settled).
  template <typename... V>
  static void store(item& it, V&&... value)
  {
    if constexpr (streaming)
      it.own.emplace(std::forward<V>(value)...);
    else if constexpr (!std::is_void_v<stored_type>)
      it.slot->emplace(std::forward<V>(value)...);
  }

  // Runs one item; throws what it throws.
  boost::asio::awaitable<void> run_item(item& it)
  {
    if (options_.item_timeout > clock::duration::zero() && !inline_calls_) {
      if constexpr (std::is_void_v<value_type>) {
        co_await with_strict_deadline(call_item(it), deadline_after(options_.item_timeout));
        store(it);
      } else {
        store(it, co_await with_strict_deadline(call_item(it), deadline_after(options_.item_timeout)));
      }
      co_return;
    }
    if constexpr (std::is_void_v<value_type>) {
      co_await call_item(it);
      store(it);
    } else {
      store(it, co_await call_item(it));
    }
  }

  // The item as an awaitable: the coroutine f returned, the blocking call on
  // the pool, or the blocking call made inline.
  boost::asio::awaitable<value_type> call_item(item& it)
  {
    if constexpr (is_awaitable_v<call_result>) {
      co_return co_await std::apply(function_, it.args);
    } else if constexpr (is_invocation_v<call_result>) {
      auto call = std::apply(function_, it.args);
      if (!call.is_blocking())
        co_return co_await call.take_coroutine();
      else if (options_.blocking == blocking_policy::offload)
        co_return co_await async_to_thread(blocking_executor(), call.take_blocking(), boost::asio::use_awaitable);
      else
        co_return call.take_blocking()();
    } else if (options_.blocking == blocking_policy::offload) {
      co_return co_await async_to_thread(
          blocking_executor(), [this, &it] { return std::apply(function_, it.args); }, boost::asio::use_awaitable);
    } else {
      co_return std::apply(function_, it.args);
    }
  }

  // The mapped function: shared by every worker (and pool thread, when
  // offloading), so calls to it may overlap.
  F function_;
  std::tuple<Views...> views_;
  std::tuple<std::ranges::iterator_t<typename Views::range_type&>...> iterators_;
  // run_inline's results, in order (collect maps of plain inline calls).
  std::conditional_t<std::is_void_v<stored_type>, no_value, std::vector<stored_type>> direct_;
  bool direct_used_ = false;
  // Guarded by the core's mutex_, like the iterators.
  results_type results_;
  lazy_deque<std::pair<std::size_t, storable_type>> ready_; // as-completed results not yet consumed
  std::optional<stream_waiter> stream_waiter_;              // streams: a parked next()
};

} // namespace fanout::detail
