// One operation under a deadline: the mechanism behind fanout::with_deadline,
// with_timeout, move_on_at, move_on_after and async_map's item timeout. Its
// state does not depend on the operation's value type (the value goes straight
// to its reader), so the common case, awaitables of asio::any_io_executor, is
// compiled once in src/deadline_op.cpp.
#pragma once

#include "fanout/detail/clock.hpp"
#include "fanout/detail/completion.hpp"
#include "fanout/detail/errors.hpp"
#include "fanout/detail/handler_adapter.hpp"
#include "fanout/detail/signature.hpp"
#include "fanout/detail/spawned_cancel.hpp"

#include <boost/asio/any_completion_handler.hpp>
#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/associated_cancellation_slot.hpp>
#include <boost/asio/async_result.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/bind_executor.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/dispatch.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <exception>
#include <memory>
#include <optional>
#include <type_traits>
#include <utility>

namespace fanout::detail {

/// Completes a deadline operation: null, the operation's exception, or
/// timed_out.
using deadline_handler = boost::asio::any_completion_handler<void(std::exception_ptr)>;

/// What a deadline that passed while the operation ran does to its outcome.
/// In every case the operation is cancelled (terminal) and waited for first.
enum class deadline_expiry {
  /// with_deadline: an operation that then ended with operation_aborted fails
  /// with timed_out; a value it still returned stands.
  lenient,
  /// async_map's item timeout: the operation fails with timed_out whatever it
  /// then returned.
  strict,
  /// move_on_at: an operation that then ended with operation_aborted ends
  /// without failure (its reader finds no value), unless the caller's own
  /// cancellation reached it too (then operation_aborted stands); a value it
  /// still returned stands.
  quiet,
};

// One operation under a deadline. Invariant: every member is touched only on
// `strand` (the child's start, end and completion, the timer's completion,
// the forwarded outside cancellation), so no lock is needed. Owned by the
// timer's and the child's pending handlers; the outside cancellation slot
// refers to it weakly, so that a context destroyed mid-operation frees it
// with those handlers.
template <typename Executor>
struct deadline_state
{
  deadline_state(deadline_handler h, Executor s, clock::time_point deadline, deadline_expiry m)
      : handler(std::move(h)), strand(std::move(s)), timer(strand, deadline), mode(m)
  {}

  deadline_handler handler;
  Executor strand;
  boost::asio::steady_timer timer;
  spawned_cancel<> child; // the operation, run as a co_spawn'ed coroutine
  std::exception_ptr error;
  bool child_done = false;
  bool timer_done = false;
  bool expired = false;           // the deadline passed while the child still ran
  bool cancelled_outside = false; // the caller's cancellation was forwarded to the child
  deadline_expiry mode;

  void maybe_complete()
  {
    if (!child_done || !timer_done)
      return;
    if (expired) {
      const bool aborted = error && is_operation_aborted(error);
      if (mode == deadline_expiry::strict || (mode == deadline_expiry::lenient && aborted))
        error = timed_out_error();
      else if (mode == deadline_expiry::quiet && aborted && !cancelled_outside)
        error = nullptr;
    }
    post_completion(std::move(handler), strand, error);
  }
};

template <typename Executor>
boost::asio::awaitable<void, Executor> run_deadline_child(deadline_state<Executor>* state,
                                                          boost::asio::awaitable<void, Executor> op)
{
  std::exception_ptr failure;
  if (!state->child.begin()) {
    failure = aborted_error("fanout::timeout"); // expired or cancelled before it started: never runs
  } else {
    try {
      co_await std::move(op);
    } catch (...) {
      failure = std::current_exception();
    }
  }
  state->child.end();
  co_await boost::asio::this_coro::throw_if_cancelled(false);
  if (failure)
    std::rethrow_exception(failure);
}

/// Runs @p op on @p strand (a strand: the operation's state lives there)
/// until it finishes, cancelling it (terminal) when @p deadline passes; @p mode
/// says what the expiry then makes of its outcome. The handler's cancellation
/// (any type) is forwarded to @p op.
template <typename Executor>
void start_deadline_op(Executor strand, boost::asio::awaitable<void, Executor> op, clock::time_point deadline,
                       deadline_expiry mode, deadline_handler handler)
{
  using state_type = deadline_state<Executor>;
  auto state = std::make_shared<state_type>(std::move(handler), std::move(strand), deadline, mode);

  auto slot = boost::asio::get_associated_cancellation_slot(state->handler);
  if (slot.is_connected()) {
    slot.assign([weak = std::weak_ptr<state_type>(state)](boost::asio::cancellation_type_t type) {
      if (auto s = weak.lock())
        boost::asio::dispatch(s->strand, [s, type] {
          if (!s->child_done) {
            s->cancelled_outside = true;
            s->child.request(type);
          }
        });
    });
  }

  state->timer.async_wait(boost::asio::bind_executor(state->strand, [state](boost::system::error_code ec) {
    state->timer_done = true;
    if (!ec && !state->child_done) {
      state->expired = true;
      state->child.request();
    }
    state->maybe_complete();
  }));

  boost::asio::co_spawn(state->strand, run_deadline_child<Executor>(state.get(), std::move(op)),
                        boost::asio::bind_cancellation_slot(state->child.signal.slot(), [state](std::exception_ptr e) {
                          state->child_done = true;
                          state->error = std::move(e);
                          state->timer.cancel();
                          state->maybe_complete();
                        }));
}

extern template void start_deadline_op<boost::asio::any_io_executor>(boost::asio::any_io_executor,
                                                                     boost::asio::awaitable<void>, clock::time_point,
                                                                     deadline_expiry, deadline_handler);

/// Awaits @p op; its value goes to @p out.
template <typename T, typename Executor>
boost::asio::awaitable<void, Executor> store_value(std::optional<T>* out, boost::asio::awaitable<T, Executor> op)
{
  out->emplace(co_await std::move(op));
}

/// Awaits @p op; then sets @p done.
template <typename Executor>
boost::asio::awaitable<void, Executor> mark_done(bool* done, boost::asio::awaitable<void, Executor> op)
{
  co_await std::move(op);
  *done = true;
}

/// The initiation of with_deadline and async_with_deadline (not strict).
struct initiate_with_deadline
{
  template <typename Handler, typename Executor, typename T, typename AwaitableExecutor>
  void operator()(Handler&& handler, const Executor& executor, boost::asio::awaitable<T, AwaitableExecutor> op,
                  clock::time_point deadline) const
  {
    if (deadline <= clock::now()) {
      // Already past: fail without starting the operation.
      if constexpr (std::is_void_v<T>)
        post_completion(std::forward<Handler>(handler), executor, timed_out_error());
      else
        post_completion(std::forward<Handler>(handler), executor, timed_out_error(), T{});
      return;
    }
    AwaitableExecutor strand = boost::asio::make_strand(executor);
    if constexpr (std::is_void_v<T>) {
      start_deadline_op<AwaitableExecutor>(std::move(strand), std::move(op), deadline, deadline_expiry::lenient,
                                           deadline_handler(std::forward<Handler>(handler)));
    } else {
      // The value waits here, owned by the handler, until the handler runs.
      auto value = std::make_shared<std::optional<T>>();
      auto* out = value.get();
      start_deadline_op<AwaitableExecutor>(
          std::move(strand), store_value<T, AwaitableExecutor>(out, std::move(op)), deadline, deadline_expiry::lenient,
          deadline_handler(
              adapt_handler(std::forward<Handler>(handler), [value = std::move(value)](auto&& h, std::exception_ptr e) {
                if (e || !*value)
                  std::move(h)(e, T{});
                else
                  std::move(h)(std::exception_ptr(), std::move(**value));
              })));
    }
  }
};

/// Awaits @p op on a strand of the awaiting coroutine's executor under
/// @p deadline, with @p mode. A deadline already past never starts @p op: it
/// fails with timed_out (quiet: ends at once without failure).
template <typename Executor>
boost::asio::awaitable<void, Executor> await_deadline(boost::asio::awaitable<void, Executor> op,
                                                      clock::time_point deadline, deadline_expiry mode)
{
  if (deadline <= clock::now()) {
    if (mode == deadline_expiry::quiet)
      co_return;
    std::rethrow_exception(timed_out_error());
  }
  const auto executor = co_await boost::asio::this_coro::executor;
  boost::asio::use_awaitable_t<Executor> token;
  co_await boost::asio::async_initiate<boost::asio::use_awaitable_t<Executor>, void(std::exception_ptr)>(
      [&](auto handler) {
        start_deadline_op<Executor>(boost::asio::make_strand(executor), std::move(op), deadline, mode,
                                    deadline_handler(std::move(handler)));
      },
      token);
}

extern template boost::asio::awaitable<void>
    await_deadline<boost::asio::any_io_executor>(boost::asio::awaitable<void>, clock::time_point, deadline_expiry);

/// Awaits @p op under @p deadline, strictly: a deadline that passed while
/// @p op ran fails it with timed_out whatever @p op then returned.
inline boost::asio::awaitable<void> await_strict_deadline(boost::asio::awaitable<void> op, clock::time_point deadline)
{
  return await_deadline(std::move(op), deadline, deadline_expiry::strict);
}

} // namespace fanout::detail
