// fanout/task.hpp — eager scheduling: asyncio.create_task for Asio.
#pragma once

#include "fanout/error.hpp"

#include "fanout/detail/completion.hpp"
#include "fanout/detail/io_executor.hpp"
#include "fanout/detail/signature.hpp"
#include "fanout/detail/task_state.hpp"

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/async_result.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/cancellation_type.hpp>
#include <boost/asio/execution_context.hpp>

#include <exception>
#include <memory>
#include <mutex>
#include <type_traits>
#include <utility>

namespace fanout {

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
