// The engine behind fanout::async_map: a window of worker coroutines that
// pull items from the zipped input ranges and store results in input order.
#pragma once

#include "fanout/callable.hpp"
#include "fanout/map_options.hpp"
#include "fanout/offload.hpp"
#include "fanout/outcome.hpp"
#include "fanout/timeout.hpp"

#include "fanout/detail/completion.hpp"

#include <boost/asio/any_completion_handler.hpp>
#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/async_result.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/cancellation_signal.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/error.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/system/system_error.hpp>

#include <cstddef>
#include <deque>
#include <exception>
#include <functional>
#include <limits>
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

  result_type take()
  {
    result_type out;
    out.reserve(slots.size());
    for (auto& s : slots)
      out.push_back(std::move(*s));
    slots.clear();
    return out;
  }

  std::deque<std::optional<R>> slots;
};

template <>
struct map_results<void>
{
  using slot_type = no_value*;
  using result_type = void;
  slot_type add() { return nullptr; }
};

template <error_policy Policy, typename F, typename... Views>
class map_engine : public std::enable_shared_from_this<map_engine<Policy, F, Views...>>
{
public:
  static constexpr bool settled = Policy == error_policy::collect_all;
  using value_type = map_value_t<F, Views...>;
  using call_result = std::remove_cvref_t<map_call_result_t<F, Views...>>;
  using results_type = map_results<std::conditional_t<settled, outcome<value_type>, value_type>>;
  using result_type = typename results_type::result_type;

  // A plain callable run inline cannot overlap with anything: one worker.
  static constexpr bool plain_calls = !is_awaitable_v<call_result> && !is_invocation_v<call_result>;

  map_engine(const map_options& options, boost::asio::any_io_executor executor, F f, Views... views)
      : options_(options), executor_(std::move(executor)), function_(std::move(f)), views_(std::move(views)...),
        iterators_(std::apply([](auto&... v) { return std::make_tuple(std::ranges::begin(v.get())...); }, views_))
  {
    limit_ = options_.max_concurrency == 0 ? std::numeric_limits<std::size_t>::max() : options_.max_concurrency;
    inline_calls = plain_calls && options_.blocking == blocking_policy::run_inline;
    if (inline_calls)
      limit_ = 1;
  }

  // Spawns the workers: one per item up to the limit, each with its first
  // item. asio::co_spawn dispatches, so a worker may run inline here until
  // its item first suspends; a worker whose items complete without
  // suspending goes on pulling, so trivial items cost no spawn each.
  void start()
  {
    auto self = this->shared_from_this();
    if (options_.deadline && *options_.deadline <= clock::now()) {
      std::lock_guard lock(mutex_);
      stop_locked(timed_out_error()); // already past: nothing starts
    } else if (options_.deadline) {
      deadline_timer_.emplace(executor_, *options_.deadline);
      deadline_timer_->async_wait([self](boost::system::error_code ec) {
        if (ec)
          return; // cancelled: the map finished first
        std::lock_guard lock(self->mutex_);
        if (!self->finished_)
          self->stop_locked(timed_out_error());
      });
    }
    for (;;) {
      std::optional<item> first;
      boost::asio::cancellation_signal* signal = nullptr;
      {
        std::lock_guard lock(mutex_);
        if (stopping_ || workers_ >= limit_)
          break;
        try {
          first = pull_locked();
        } catch (...) {
          stop_locked(std::current_exception());
          break;
        }
        if (!first)
          break;
        ++workers_;
        signal = &signals_.emplace_back();
      }
      // Each worker runs on a strand of the map's executor, so that the
      // cancellation signal (forwarded by co_spawn through that strand) never
      // races with the worker on a multi-threaded executor.
      boost::asio::co_spawn(boost::asio::make_strand(executor_), worker(self, std::move(*first)),
                            boost::asio::bind_cancellation_slot(
                                signal->slot(), [self](std::exception_ptr e) { self->worker_done(std::move(e)); }));
    }
    {
      std::lock_guard lock(mutex_);
      starting_ = false;
      if (workers_ != 0)
        return;
    }
    finish();
  }

  // Completes (signature void()) once every worker has finished.
  template <typename Token>
  auto async_wait(Token&& token)
  {
    return boost::asio::async_initiate<Token, void()>(
        [](auto handler, std::shared_ptr<map_engine> self) {
          std::unique_lock lock(self->mutex_);
          if (self->finished_) {
            lock.unlock();
            post_completion(std::move(handler), self->executor_);
            return;
          }
          auto slot = boost::asio::get_associated_cancellation_slot(handler);
          if (slot.is_connected())
            slot.assign([self](boost::asio::cancellation_type_t) { self->cancel(); });
          self->waiter_.emplace(std::move(handler));
        },
        token, this->shared_from_this());
  }

  // The results in input order, or the first failure rethrown.
  result_type take_result()
  {
    if (error_)
      std::rethrow_exception(error_);
    if constexpr (!std::is_void_v<value_type>)
      return results_.take();
  }

  // Cancels every running item and starts no more (the awaiting coroutine
  // was cancelled). Does nothing once the map has finished.
  void cancel()
  {
    std::lock_guard lock(mutex_);
    if (finished_)
      return;
    stop_locked(std::make_exception_ptr(
        boost::system::system_error(boost::asio::error::operation_aborted, "fanout::async_map")));
  }

private:
  struct item
  {
    std::tuple<map_arg_t<Views>...> args;
    typename results_type::slot_type slot;
  };

  std::optional<item> pull_locked()
  {
    if (exhausted_)
      return std::nullopt;
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
          out.emplace(item{std::tuple<map_arg_t<Views>...>(*it...), nullptr});
          (++it, ...);
        },
        iterators_);
    out->slot = results_.add();
    return out;
  }

  // Records the first failure, starts no more items and cancels the running
  // ones. Called with the mutex held.
  void stop_locked(std::exception_ptr e)
  {
    if (!error_)
      error_ = std::move(e);
    if (stopping_)
      return;
    stopping_ = true;
    for (auto& s : signals_)
      s.emit(boost::asio::cancellation_type::terminal);
  }

  void fail(std::exception_ptr e)
  {
    std::lock_guard lock(mutex_);
    stop_locked(std::move(e));
  }

  void worker_done(std::exception_ptr e)
  {
    {
      std::lock_guard lock(mutex_);
      if (e) // the worker failed outside an item: pulling threw, or it was cancelled before starting
        stop_locked(std::move(e));
      if (--workers_ != 0 || starting_)
        return;
    }
    finish();
  }

  // Every worker has finished: the result is final. Wakes the waiter.
  void finish()
  {
    std::optional<boost::asio::any_completion_handler<void()>> waiter;
    {
      std::lock_guard lock(mutex_);
      finished_ = true;
      waiter.swap(waiter_);
    }
    if (deadline_timer_)
      deadline_timer_->cancel();
    if (waiter)
      post_completion(std::move(*waiter), executor_);
  }

  // Runs its first item, then pulls the next until the input is exhausted or
  // the map stops. An exception from pulling ends the worker and reaches
  // worker_done through co_spawn.
  static boost::asio::awaitable<void> worker(std::shared_ptr<map_engine> self, item first)
  {
    std::optional<item> next(std::move(first));
    while (next) {
      try {
        co_await self->run_item(*next);
      } catch (...) {
        if constexpr (settled)
          next->slot->emplace(std::current_exception());
        else
          self->fail(std::current_exception());
      }
      next.reset();
      std::lock_guard lock(self->mutex_);
      if (!self->stopping_)
        if (auto pulled = self->pull_locked())
          next.emplace(std::move(*pulled));
    }
  }

  // Stores an item's value in its slot (as an outcome when settled).
  template <typename... V>
  static void store(item& it, V&&... value)
  {
    if constexpr (settled || !std::is_void_v<value_type>)
      it.slot->emplace(std::forward<V>(value)...);
  }

  // Runs one item; throws what it throws.
  boost::asio::awaitable<void> run_item(item& it)
  {
    if (options_.item_timeout > clock::duration::zero() && !inline_calls) {
      if constexpr (std::is_void_v<value_type>) {
        co_await with_deadline(call_item(it), clock::now() + options_.item_timeout);
        store(it);
      } else {
        store(it, co_await with_deadline(call_item(it), clock::now() + options_.item_timeout));
      }
      co_return;
    }
    // The common path, without an extra coroutine frame per item.
    if constexpr (is_awaitable_v<call_result>) {
      if constexpr (std::is_void_v<value_type>) {
        co_await std::apply(function_, it.args);
        store(it);
      } else {
        store(it, co_await std::apply(function_, it.args));
      }
    } else {
      if constexpr (std::is_void_v<value_type>) {
        co_await call_item(it);
        store(it);
      } else {
        store(it, co_await call_item(it));
      }
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

  const map_options options_;
  const boost::asio::any_io_executor executor_;
  // The mapped function: shared by every worker (and pool thread, when
  // offloading), so calls to it may overlap.
  F function_;
  std::tuple<Views...> views_;
  std::tuple<std::ranges::iterator_t<typename Views::range_type&>...> iterators_;
  std::size_t limit_ = 0;
  bool inline_calls = false; // plain calls made inline: one worker, no timeouts
  // Fires at options_.deadline; cancelled when the map finishes.
  std::optional<boost::asio::steady_timer> deadline_timer_;

  // Guards everything below: pulling from the iterators, appending result
  // slots and signals, and the worker/failure bookkeeping. Held only for
  // those short steps, never while an item runs.
  std::mutex mutex_;
  results_type results_;
  // One per worker ever spawned, at stable addresses (co_spawn keeps a
  // pointer into each); emitted once, together,
  // when the map stops (first failure or outside cancellation).
  std::deque<boost::asio::cancellation_signal> signals_;
  std::size_t workers_ = 0;  // workers spawned and not yet finished
  bool exhausted_ = false;   // a range reached its end
  bool stopping_ = false;    // no more items start
  bool starting_ = true;     // start() is still spawning workers
  bool finished_ = false;    // every worker finished; the result is final
  std::exception_ptr error_; // the first failure (or operation_aborted)
  std::optional<boost::asio::any_completion_handler<void()>> waiter_;
};

} // namespace fanout::detail
