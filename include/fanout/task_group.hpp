// fanout/task_group.hpp — structured concurrency: tasks awaited together by
// their group's join (asyncio.TaskGroup, Trio's nursery).
#pragma once

#include "fanout/error.hpp"
#include "fanout/task.hpp"

#include "fanout/detail/completion.hpp"
#include "fanout/detail/errors.hpp"
#include "fanout/detail/group_state.hpp"
#include "fanout/detail/io_executor.hpp"

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/async_result.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/system/system_error.hpp>

#include <cstddef>
#include <cstdint>
#include <exception>
#include <memory>
#include <mutex>
#include <optional>
#include <utility>
#include <vector>

namespace fanout {

/// A scope for tasks: every task spawned into the group is awaited by
/// async_join(), and none outlives the group's join. A group destroyed
/// without a join cancels its tasks but does not wait for them (use
/// with_task_group for a scope that always joins).
///
/// - `g.spawn(awaitable)` starts a task on the group's executor now and
///   returns its fanout::task handle (which can be awaited or cancelled on its
///   own).
/// - `co_await g.async_join()` waits until every task has finished, including
///   tasks spawned while joining. With group_policy::fail_fast (the default)
///   the first failure cancels the other tasks and async_join() rethrows it
///   once they have finished.
/// - Cancelling the coroutine that awaits async_join() cancels every task;
///   async_join() then throws `operation_aborted` once they have finished.
/// - `g.cancel()` cancels every task (and any spawned later).
/// - `co_await g.async_next_done()` gives the spawn index of the next task to
///   finish (each once, in finish order), then an empty optional.
/// - After a join has completed the group is closed: spawn() throws
///   `system_error(fanout::error::group_closed)`, and joining again completes
///   at once with the same outcome.
/// - Destroying a group that was never joined cancels its running tasks; they
///   finish on their executor. Prefer fanout::with_task_group, which always
///   joins.
///
/// @par Thread safety
/// spawn(), cancel(), async_join() and async_next_done() may be called from
/// any thread.
///
/// @code
/// fanout::task_group g(co_await asio::this_coro::executor);
/// for (auto& url : urls) g.spawn(fetch(url));
/// co_await g.async_join();
/// @endcode
class task_group
{
public:
  /// A group whose tasks run on @p executor, failing as @p policy says.
  explicit task_group(boost::asio::any_io_executor executor, group_policy policy = group_policy::fail_fast)
      : state_(std::make_shared<detail::group_state>(std::move(executor), policy))
  {}
  /// A group on @p ctx's executor.
  template <detail::io_context_like ExecutionContext>
  explicit task_group(ExecutionContext& ctx, group_policy policy = group_policy::fail_fast)
      : task_group(boost::asio::any_io_executor(ctx.get_executor()), policy)
  {}
  task_group(const task_group&) = delete;
  task_group& operator=(const task_group&) = delete;
  /// Cancels the tasks still running, without waiting for them: they finish
  /// on their executor. Joins still waiting complete when they have.
  ~task_group()
  {
    detail::group_state::children_type to_cancel;
    {
      std::lock_guard lock(state_->mutex);
      if (state_->running != 0)
        to_cancel = state_->cancel_locked(nullptr);
    }
    detail::group_state::cancel_all(to_cancel);
  }

  /// Starts @p body as a task of this group.
  /// @throws `system_error(fanout::error::group_closed)` after a join completed.
  template <typename T, typename Executor>
  task<T> spawn(boost::asio::awaitable<T, Executor> body)
  {
    std::size_t index = 0;
    {
      std::lock_guard lock(state_->mutex);
      if (state_->closed)
        throw_error(error::group_closed, "fanout::task_group::spawn");
      ++state_->running;
      index = state_->spawned++;
    }
    auto t = detail::spawn_task(state_->executor, std::move(body),
                                [s = state_, index](const std::exception_ptr& e) { s->child_finished(e, index); });
    bool cancel_it = false;
    {
      std::lock_guard lock(state_->mutex);
      auto& children = state_->children;
      if (children.size() >= 2 * state_->running + 16)
        std::erase_if(children, [](const auto& c) { return c->is_done(); });
      children.push_back(t.state());
      cancel_it = state_->cancelling;
    }
    if (cancel_it)
      t.cancel();
    return t;
  }

  /// Cancels every task of the group, and any spawned later.
  void cancel() { state_->cancel(nullptr); }

  /// Tasks spawned and not yet finished.
  [[nodiscard]] std::size_t size() const
  {
    std::lock_guard lock(state_->mutex);
    return state_->running;
  }

  /// The executor the tasks run on.
  [[nodiscard]] const boost::asio::any_io_executor& get_executor() const noexcept { return state_->executor; }

  /// Waits for every task of the group.
  ///
  /// @param token any completion token; by default the executor's default
  ///        completion token (see detail::default_token_t: asio::deferred, or
  ///        asio::use_awaitable before Boost 1.83; `co_await g.async_join()` either way).
  ///
  /// @par Completion signature
  /// `void(std::exception_ptr)`: null, the first failure (fail_fast), or
  /// `operation_aborted` when the join was cancelled. The handler runs on its
  /// associated executor, or on the group's if it has none; never inside this
  /// call. Its executor keeps outstanding work until then.
  ///
  /// @par Per-operation cancellation
  /// Any type cancels every task; the join completes once they have finished.
  ///
  /// @par Thread safety
  /// May be called from any thread; several joins may wait at once, and all
  /// complete with the same outcome.
  template <boost::asio::completion_token_for<void(std::exception_ptr)> Token =
                detail::default_token_t<boost::asio::any_io_executor>>
  auto async_join(Token&& token = Token())
  {
    return boost::asio::async_initiate<Token, void(std::exception_ptr)>(
        [](auto handler, std::shared_ptr<detail::group_state> s) {
          std::unique_lock lock(s->mutex);
          if (s->running == 0) {
            s->closed = true;
            auto e = s->error;
            lock.unlock();
            detail::post_completion(std::move(handler), s->executor, e);
            return;
          }
          s->joins.park(std::move(handler), s, s->executor,
                        [weak = std::weak_ptr<detail::group_state>(s)](boost::asio::cancellation_type_t) {
                          if (auto g = weak.lock())
                            g->cancel(detail::aborted_error("fanout::task_group"));
                        });
        },
        token, state_);
  }

  /// The spawn index of the next task of the group to finish (tokio's
  /// `JoinSet::join_next`): tasks are numbered from 0 in the order spawn()
  /// was called, and each index is handed out once, in the order the tasks
  /// finished (however they finished: returned, failed or cancelled). The
  /// task's own handle (from spawn()) gives its value or exception.
  ///
  /// @param token any completion token; by default the executor's default
  ///        completion token (see detail::default_token_t; `co_await
  ///        g.async_next_done()` either way).
  ///
  /// @par Completion signature
  /// `void(std::exception_ptr, std::optional<std::size_t>)`: an index; or an
  /// empty optional once every task spawned so far has been handed out (a
  /// task spawned later gives the next call an index again); or
  /// `operation_aborted` (and empty) when the wait was cancelled. Several
  /// waits may be pending at once: they get indices in the order they were
  /// started. The handler runs on its associated executor, or on the group's
  /// if it has none; never inside this call. Its executor keeps outstanding
  /// work until then.
  ///
  /// The group keeps the index of each finished task until a call hands it
  /// out (one `std::size_t` per task, also in a group that never calls this).
  ///
  /// @par Per-operation cancellation
  /// Any type cancels this wait only: it completes with `operation_aborted`
  /// and takes no index (the next wait gets it); the group and its tasks are
  /// not cancelled. A cancellation that comes after the wait was handed an
  /// index changes nothing.
  ///
  /// @par Thread safety
  /// May be called from any thread, concurrently with spawn(), cancel(),
  /// async_join() and other async_next_done() calls.
  ///
  /// @code
  /// std::vector<fanout::task<reply>> tasks;
  /// for (auto& url : urls) tasks.push_back(g.spawn(fetch(url)));
  /// while (auto i = co_await g.async_next_done())
  ///   show(urls[*i], co_await tasks[*i].async_wait()); // as each one finishes
  /// @endcode
  template <boost::asio::completion_token_for<detail::group_state::next_done_signature> Token =
                detail::default_token_t<boost::asio::any_io_executor>>
  auto async_next_done(Token&& token = Token())
  {
    return boost::asio::async_initiate<Token, detail::group_state::next_done_signature>(
        [](auto handler, std::shared_ptr<detail::group_state> s) {
          std::unique_lock lock(s->mutex);
          if (s->finished_head < s->finished.size() || s->running == 0) {
            std::optional<std::size_t> index;
            if (s->finished_head < s->finished.size())
              index = s->pop_finished_locked();
            lock.unlock();
            detail::post_completion(std::move(handler), s->executor, std::exception_ptr(), index);
            return;
          }
          const std::uint64_t ticket = s->next_waiters.next_ticket();
          s->next_waiters.park(
              std::move(handler), s->next_parker_owner(), s->executor,
              [weak = std::weak_ptr<detail::group_state>(s), ticket](boost::asio::cancellation_type_t) {
                if (auto g = weak.lock())
                  g->cancel_next_done(ticket);
              });
        },
        token, state_);
  }

  /// async_join under its earlier name, whose default token is
  /// `asio::use_awaitable` (it gives an `asio::awaitable<void>`).
  template <boost::asio::completion_token_for<void(std::exception_ptr)> Token = boost::asio::use_awaitable_t<>>
  auto join(Token&& token = Token())
  {
    return async_join(std::forward<Token>(token));
  }

private:
  std::shared_ptr<detail::group_state> state_;
};

/// Runs @p body with a fresh task_group on the calling coroutine's executor
/// and joins the group before returning, whatever happens: a group scope that
/// no task outlives (`async with asyncio.TaskGroup() as g:`).
///
/// If @p body throws, the group's tasks are cancelled and joined, then the
/// body's exception is rethrown. Otherwise the join's outcome is (the first
/// task failure under fail_fast).
///
/// @par Cancellation
/// @p body sees the awaiting coroutine's cancellation as any code it awaits
/// does. A cancellation while joining cancels every task; with_task_group
/// still waits for them all before it completes.
///
/// @code
/// co_await fanout::with_task_group([&](fanout::task_group& g) -> asio::awaitable<void> {
///   g.spawn(b());
///   g.spawn(b());
///   co_return;
/// });
/// @endcode
template <typename Body>
boost::asio::awaitable<void> with_task_group(Body body, group_policy policy = group_policy::fail_fast)
{
  task_group group(co_await boost::asio::this_coro::executor, policy);
  std::exception_ptr failure;
  try {
    co_await body(group);
  } catch (...) {
    failure = std::current_exception();
    group.cancel();
  }
  // Join even if this coroutine was cancelled: no task may outlive the scope.
  const bool throw_if_cancelled = co_await boost::asio::this_coro::throw_if_cancelled();
  co_await boost::asio::this_coro::throw_if_cancelled(false);
  std::exception_ptr joined;
  try {
    co_await group.async_join();
  } catch (...) {
    joined = std::current_exception();
  }
  co_await boost::asio::this_coro::throw_if_cancelled(throw_if_cancelled);
  if (failure)
    std::rethrow_exception(failure);
  if (joined)
    std::rethrow_exception(joined);
}

} // namespace fanout
