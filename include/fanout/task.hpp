// fanout/task.hpp — eager scheduling: asyncio.create_task for Asio.
#pragma once

#include "fanout/error.hpp"

#include "fanout/detail/completion.hpp"
#include "fanout/detail/errors.hpp"
#include "fanout/detail/executor_traits.hpp"
#include "fanout/detail/io_executor.hpp"
#include "fanout/detail/parked_waiters.hpp"
#include "fanout/detail/signature.hpp"
#include "fanout/detail/spawned_cancel.hpp"

#include <boost/asio/any_completion_handler.hpp>
#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/async_result.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/cancellation_signal.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/deferred.hpp>
#include <boost/asio/dispatch.hpp>
#include <boost/asio/execution/executor.hpp>
#include <boost/asio/execution_context.hpp>
#include <boost/asio/is_executor.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <concepts>
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
  spawned_cancel cancel;

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
        return {std::make_exception_ptr(
                    boost::system::system_error(make_error_code(fanout::error::already_awaited), "fanout::task")),
                {}};
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

/// A handle to a coroutine that fanout::spawn started (asyncio's Task).
///
/// - `co_await t.async_wait()` (or `t.async_wait(token)` with any completion
///   token) completes when the coroutine has
///   finished, with its value, or rethrows its exception. The value is moved
///   out to the first waiter; a later await of a non-void task fails with
///   `fanout::error::already_awaited`. Exceptions are rethrown to every waiter.
/// - `cancel()` requests terminal cancellation: the coroutine sees
///   `asio::error::operation_aborted` at its next suspension point (or before
///   it starts, if it has not started yet), and awaiting the task then throws
///   `boost::system::system_error(operation_aborted)` unless the coroutine
///   handled the cancellation and returned normally.
/// - Cancelling a coroutine that is awaiting the task cancels the task too (as
///   in asyncio) and still waits for it to finish: the waiter never resumes
///   while the task runs.
/// - Handles are cheap to copy; copies refer to the same task. Destroying every
///   handle of an unfinished task detaches it (like `co_spawn(..., detached)`):
///   it runs to completion and its state is freed then. Use a task_group for
///   tasks that must not outlive a scope.
///
/// @par Thread safety
/// Distinct handles may be used concurrently from any thread, including
/// `cancel()` from a thread other than the task's executor.
///
/// @tparam T the coroutine's result type; as with `asio::co_spawn`, a non-void
///         T must be default-constructible (it fills the completion signature
///         when the task fails).
template <typename T>
class task
{
  static_assert(std::is_void_v<T> || std::is_default_constructible_v<T>,
                "fanout::task<T> needs a default-constructible T, as asio::co_spawn does");

public:
  /// The coroutine's result type.
  using value_type = T;
  /// The completion signature of `async_wait`: `void(std::exception_ptr, T)`,
  /// or `void(std::exception_ptr)` for `task<void>`.
  using signature = detail::value_signature_t<T>;

  /// An empty handle; `valid()` is false.
  task() = default;

  /// For fanout's own use (spawn, task_group): a handle to @p state.
  explicit task(std::shared_ptr<detail::task_state<T>> state) : state_(std::move(state)) {}

  /// True if this handle refers to a task.
  [[nodiscard]] bool valid() const noexcept { return state_ != nullptr; }

  /// True once the coroutine has finished (normally, with an exception, or
  /// cancelled). False for an empty handle.
  [[nodiscard]] bool done() const
  {
    if (!state_)
      return false;
    std::lock_guard lock(state_->mutex);
    return state_->done;
  }

  /// Requests terminal cancellation of the coroutine. Does nothing if it has
  /// finished already or was cancelled before. Returns at once; await the task
  /// to wait for the coroutine to end.
  void cancel() const
  {
    if (state_)
      state_->request_cancel();
  }

  /// The shared state (for fanout's own use).
  [[nodiscard]] const std::shared_ptr<detail::task_state<T>>& state() const noexcept { return state_; }

  /// The executor the task was spawned on (the coroutine runs on it, or on a
  /// strand of it: see fanout::spawn).
  [[nodiscard]] boost::asio::any_io_executor get_executor() const
  {
    if (!state_)
      throw_error(error::no_task, "fanout::task::get_executor");
    return state_->executor;
  }

  /// Waits for the coroutine to finish.
  ///
  /// @param token any completion token; by default the executor's default
  ///        completion token (see detail::default_token_t: asio::deferred, or
  ///        asio::use_awaitable before Boost 1.83; `co_await t.async_wait()` either way).
  ///
  /// @par Completion signature
  /// `void(std::exception_ptr, T)` (`void(std::exception_ptr)` for void).
  /// The handler runs on its associated executor, or on the task's executor if
  /// it has none; never inside this call. Its executor keeps outstanding work
  /// until then.
  ///
  /// @par Per-operation cancellation
  /// Any cancellation type through the handler's slot cancels the task; the
  /// wait still completes only when the task has finished.
  ///
  /// @throws `system_error(fanout::error::no_task)` from this call for an
  ///         empty handle and a handler with no associated executor: there is
  ///         no executor to complete it on. (A handler with an executor gets
  ///         the same error as its completion.)
  ///
  /// @par Thread safety
  /// May be called from any thread; several waits may be pending at once (the
  /// value goes to the first, see the class).
  template <boost::asio::completion_token_for<signature> Token = detail::default_token_t<boost::asio::any_io_executor>>
  auto async_wait(Token&& token = Token()) const
  {
    return boost::asio::async_initiate<Token, signature>(initiate_wait{}, token, state_);
  }

private:
  struct initiate_wait
  {
    template <typename Handler>
    void operator()(Handler&& handler, std::shared_ptr<detail::task_state<T>> state) const // by value: the
    // completion posted below may end the awaiting frame that holds the caller's copy before we unlock
    {
      if (!state) {
        if constexpr (!detail::has_associated_executor_v<Handler>) {
          throw_error(error::no_task, "fanout::task::async_wait");
        } else {
          auto ex = boost::asio::get_associated_executor(handler);
          auto e =
              std::make_exception_ptr(boost::system::system_error(make_error_code(error::no_task), "fanout::task"));
          if constexpr (std::is_void_v<T>)
            detail::post_completion(std::forward<Handler>(handler), ex, e);
          else
            detail::post_completion(std::forward<Handler>(handler), ex, e, T{});
          return;
        }
      }
      std::unique_lock lock(state->mutex);
      if (state->done) {
        auto outcome = state->take_outcome_locked();
        lock.unlock();
        state->deliver(std::forward<Handler>(handler), std::move(outcome));
        return;
      }
      state->waiters.park(std::forward<Handler>(handler), state, state->executor,
                          [weak = std::weak_ptr<detail::task_state<T>>(state)](boost::asio::cancellation_type_t) {
                            if (auto s = weak.lock())
                              s->request_cancel();
                          });
    }
  };

  std::shared_ptr<detail::task_state<T>> state_;
};

/// Starts @p body on @p executor now and returns a handle to it (asyncio's
/// `create_task` / the post's `asyncio.async`).
///
/// The coroutine is scheduled at once (posted to @p executor: it starts when
/// the executor runs it, never inside this call) and runs whether or not the
/// handle is ever awaited.
///
/// @param executor any Asio executor convertible to the awaitable's executor
///        type: an `io_context`'s, a `thread_pool`'s, a strand.
/// @param body the coroutine to run.
///
/// @par Thread safety
/// May be called from any thread. On an executor that may run several
/// handlers at once (a `thread_pool`, an `io_context` run by several threads)
/// the coroutine runs on a new strand of @p executor, so that `cancel()` from
/// any thread reaches it without a data race; on an `io_context` constructed
/// with concurrency hint 1, or a strand, it runs on @p executor itself.
///
/// @code
/// auto t = fanout::spawn(ctx.get_executor(), b());
/// std::string s = co_await t.async_wait(); // in a coroutine
/// std::string s = fanout::run(ctx, t); // or from synchronous code
/// @endcode
template <typename T, detail::io_executor Executor, typename AwaitableExecutor>
[[nodiscard]] task<T> spawn(const Executor& executor, boost::asio::awaitable<T, AwaitableExecutor> body)
{
  return detail::spawn_task(executor, std::move(body), [](const std::exception_ptr&) {});
}

/// As above, on @p ctx's executor.
template <typename T, typename ExecutionContext, typename AwaitableExecutor>
requires std::is_convertible_v<ExecutionContext&, boost::asio::execution_context&>
[[nodiscard]] task<T> spawn(ExecutionContext& ctx, boost::asio::awaitable<T, AwaitableExecutor> body)
{
  return spawn(ctx.get_executor(), std::move(body));
}

} // namespace fanout
