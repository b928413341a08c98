// The state a task shares between its handles and its coroutine, and how a
// task's coroutine is started (fanout::spawn, task_group::spawn).
#pragma once

#include "fanout/detail/completion.hpp"
#include "fanout/detail/errors.hpp"
#include "fanout/detail/executor_traits.hpp"
#include "fanout/detail/parked_waiters.hpp"
#include "fanout/detail/signature.hpp"
#include "fanout/detail/spawned_cancel.hpp"

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/deferred.hpp>
#include <boost/asio/dispatch.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/this_coro.hpp>

#include <exception>
#include <memory>
#include <mutex>
#include <optional>
#include <type_traits>
#include <utility>
#include <vector>

namespace fanout {

namespace detail {

// The part of a task's state that does not depend on its value type: what a
// task_group needs to cancel a child and to know when it has finished.
struct task_state_base : std::enable_shared_from_this<task_state_base>, handler_parker
{
  task_state_base(boost::asio::any_io_executor ex, boost::asio::any_io_executor run_on)
      : executor(std::move(ex)), run_executor(std::move(run_on))
  {}

  // The executor the task was spawned on; also the executor that completes
  // waiters whose handlers have none of their own.
  const boost::asio::any_io_executor executor;

  // The coroutine's cancellation. Touched only on run_executor, so emitting
  // never races with the coroutine and needs no lock.
  spawned_cancel<> cancel;

  // Guards every member below (and the derived state's). Never held while a
  // waiter runs or a cancellation is emitted.
  std::mutex mutex;
  // Where the coroutine runs (`executor` itself when it runs one thing at a
  // time, else a strand of it), until it has finished or its context shut
  // down: a handle may outlive the context, a strand must not.
  std::optional<boost::asio::any_io_executor> run_executor;
  // Set once, when the coroutine has finished and its outcome is stored.
  bool done = false;
  // The value has been handed to a waiter (it is moved out, once).
  bool taken = false;
  // The coroutine's exception (including operation_aborted after cancel()).
  std::exception_ptr error;

  // Emits terminal cancellation on run_executor (inline when called there
  // already), if the coroutine has not finished; at most once.
  void request_cancel()
  {
    std::optional<boost::asio::any_io_executor> run_on;
    {
      std::lock_guard lock(mutex);
      if (done || !run_executor)
        return;
      run_on = run_executor;
    }
    boost::asio::dispatch(*run_on, [self = shared_from_this()] {
      if (!self->cancel.requested)
        self->cancel.request();
    });
  }

  bool is_done()
  {
    std::lock_guard lock(mutex);
    return done;
  }
};

// Shared by every handle of one task and by the spawned coroutine's
// completion handler; lives until the last of them is gone.
template <typename T>
struct task_state : task_state_base
{
  using signature = value_signature_t<T>;

  using task_state_base::task_state_base;

  std::conditional_t<std::is_void_v<T>, no_value, std::optional<T>> value;
  // Waiters parked before `done`.
  parked_waiters<signature> waiters;

  // What the next waiter gets (mutex held, done): the error, or the value,
  // moved to the first waiter; later ones get already_awaited.
  struct outcome_type
  {
    std::exception_ptr error;
    std::conditional_t<std::is_void_v<T>, no_value, std::optional<T>> value;
  };
  outcome_type take_outcome_locked()
  {
    if constexpr (std::is_void_v<T>) {
      return {error, {}};
    } else {
      if (error)
        return {error, {}};
      if (taken)
        return {already_awaited_error("fanout::task"), {}};
      taken = true;
      return {nullptr, std::move(value)};
    }
  }

  // Posts @p handler's completion with @p o. Mutex not held.
  template <typename Handler>
  void deliver(Handler&& handler, outcome_type o)
  {
    if constexpr (std::is_void_v<T>)
      post_completion(std::forward<Handler>(handler), executor, o.error);
    else if (o.value)
      post_completion(std::forward<Handler>(handler), executor, o.error, std::move(*o.value));
    else
      post_completion(std::forward<Handler>(handler), executor, o.error, T{});
  }

  // Runs in the co_spawn's completion handler, on run_executor.
  void finish(std::exception_ptr e)
  {
    // co_spawn's cancellation handler holds the strand: free it now (not
    // from inside that handler's own emit).
    if (!cancel.emitting)
      cancel.signal.slot().clear();
    parked_waiters<signature> ready;
    std::vector<outcome_type> outcomes;
    std::optional<boost::asio::any_io_executor> run_on;
    {
      std::lock_guard lock(mutex);
      error = std::move(e);
      done = true;
      run_on.swap(run_executor);
      ready = waiters.take();
      ready.for_each([&](auto&&) { outcomes.push_back(take_outcome_locked()); });
    }
    parked_handlers_of(executor).unpark(this);
    std::size_t i = 0;
    ready.for_each([&](auto&& h) { deliver(std::move(h), std::move(outcomes[i++])); });
  }

  // The executor's context is shutting down: destroy the parked waiters
  // without invoking them (they own coroutines that own this state), and let
  // go of the strand.
  void drop_parked_handlers() noexcept override
  {
    parked_waiters<signature> dropped;
    std::optional<boost::asio::any_io_executor> run_on;
    {
      std::lock_guard lock(mutex);
      dropped = waiters.take();
      run_on.swap(run_executor);
    }
    // Nothing runs on the context any more: co_spawn's cancellation handler,
    // which holds the strand too, can go.
    cancel.signal.slot().clear();
  }
};

template <typename T, typename Executor>
boost::asio::awaitable<void, Executor> task_body(std::shared_ptr<task_state<T>> state,
                                                 boost::asio::awaitable<T, Executor> body)
{
  // Scheduled, never run inside spawn(): co_spawn dispatches, so yield once
  // first. A cancel() that arrives before the body starts means the body
  // never runs, and the task fails with operation_aborted.
  co_await boost::asio::post(co_await boost::asio::this_coro::executor, boost::asio::deferred);
  std::exception_ptr failure;
  if (!state->cancel.begin()) {
    failure = aborted_error("fanout::task");
  } else {
    try {
      if constexpr (std::is_void_v<T>)
        co_await std::move(body);
      else
        state->value.emplace(co_await std::move(body));
    } catch (...) {
      failure = std::current_exception();
    }
  }
  state->cancel.end();
  co_await boost::asio::this_coro::throw_if_cancelled(false);
  if (failure)
    std::rethrow_exception(failure);
}

} // namespace detail

template <typename T>
class task;

namespace detail {

// Starts @p body as a task on @p run_on (@p executor or a strand of it).
template <typename T, typename Executor, typename RunExecutor, typename AwaitableExecutor, typename OnFinish>
task<T> start_task(const Executor& executor, const RunExecutor& run_on,
                   boost::asio::awaitable<T, AwaitableExecutor> body, OnFinish on_finish)
{
  auto state = std::make_shared<task_state<T>>(executor, run_on);
  // Registered until it finishes: a context that shuts down first makes it
  // let go of its strand (drop_parked_handlers).
  parked_handlers_of(state->executor).park(state);
  auto& signal = state->cancel.signal;
  auto body_coro = task_body<T, AwaitableExecutor>(state, std::move(body));
  boost::asio::co_spawn(run_on, std::move(body_coro),
                        boost::asio::bind_cancellation_slot(
                            signal.slot(), [state, on_finish = std::move(on_finish)](std::exception_ptr e) mutable {
                              state->finish(e);
                              on_finish(e);
                            }));
  return task<T>(std::move(state));
}

// Starts @p body on @p executor as a task; @p on_finish(exception) runs after
// the task's outcome is stored, in the co_spawn completion handler. The task
// runs on @p executor if that runs one thing at a time, else on a new strand
// of it (when the coroutine's executor type can hold one; otherwise on
// @p executor, and cancel() must come from the thread running it).
template <typename T, typename Executor, typename AwaitableExecutor, typename OnFinish>
task<T> spawn_task(const Executor& executor, boost::asio::awaitable<T, AwaitableExecutor> body, OnFinish on_finish)
{
  if constexpr (std::is_convertible_v<boost::asio::strand<Executor>, AwaitableExecutor>) {
    if (!runs_serially(boost::asio::any_io_executor(executor)))
      return start_task(executor, boost::asio::make_strand(executor), std::move(body), std::move(on_finish));
  }
  return start_task(executor, executor, std::move(body), std::move(on_finish));
}

} // namespace detail

} // namespace fanout
