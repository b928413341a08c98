// One operation under a deadline: the mechanism behind fanout::with_deadline,
// with_timeout and async_map's item timeout.
#pragma once

#include "fanout/detail/clock.hpp"
#include "fanout/detail/completion.hpp"
#include "fanout/detail/errors.hpp"
#include "fanout/detail/spawned_cancel.hpp"

#include <boost/asio/associated_cancellation_slot.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/bind_executor.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/dispatch.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/this_coro.hpp>

#include <exception>
#include <memory>
#include <optional>
#include <type_traits>
#include <utility>

namespace fanout::detail {

template <typename T>
struct deadline_signature
{
  using type = void(std::exception_ptr, T);
};
template <>
struct deadline_signature<void>
{
  using type = void(std::exception_ptr);
};

// One operation under a deadline. Invariant: every member is touched only on
// `strand` (the child's start, end and completion, the timer's completion,
// the forwarded outside cancellation), so no lock is needed. Owned by the
// timer's and the child's pending handlers; the outside cancellation slot
// refers to it weakly, so that a context destroyed mid-operation frees it
// with those handlers.
template <typename T, typename Handler, typename Strand>
struct deadline_state
{
  deadline_state(Handler h, Strand s, clock::time_point deadline, bool fail_late_values)
      : handler(std::move(h)), strand(std::move(s)), timer(strand, deadline), strict(fail_late_values)
  {}

  Handler handler;
  Strand strand;
  boost::asio::steady_timer timer;
  spawned_cancel child; // the operation, run as a co_spawn'ed coroutine
  std::conditional_t<std::is_void_v<T>, no_value, std::optional<T>> value;
  std::exception_ptr error;
  bool child_done = false;
  bool timer_done = false;
  bool expired = false; // the deadline passed while the child still ran
  bool strict;          // expiry fails the operation even if the child still returned

  void maybe_complete()
  {
    if (!child_done || !timer_done)
      return;
    if (expired && (strict || (error && is_operation_aborted(error))))
      error = timed_out_error();
    if constexpr (std::is_void_v<T>)
      post_completion(std::move(handler), strand, error);
    else
      post_completion(std::move(handler), strand, error, error ? T{} : std::move(*value));
  }
};

template <typename T, typename Executor, typename State>
boost::asio::awaitable<void, Executor> run_deadline_child(State* state, boost::asio::awaitable<T, Executor> op)
{
  std::exception_ptr failure;
  if (!state->child.begin()) {
    failure = aborted_error("fanout::timeout"); // expired or cancelled before it started: never runs
  } else {
    try {
      if constexpr (std::is_void_v<T>)
        co_await std::move(op);
      else
        state->value.emplace(co_await std::move(op));
    } catch (...) {
      failure = std::current_exception();
    }
  }
  state->child.end();
  co_await boost::asio::this_coro::throw_if_cancelled(false);
  if (failure)
    std::rethrow_exception(failure);
}

/// The initiation of a deadline operation. strict: a deadline that passed
/// while the operation ran fails it with timed_out even if the operation
/// still returned a value (async_map's item timeout); otherwise such a late
/// value is delivered (with_deadline, with_timeout).
struct initiate_with_deadline
{
  bool strict = false;

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
    auto strand = boost::asio::make_strand(executor);
    using state_type = deadline_state<T, std::decay_t<Handler>, decltype(strand)>;
    auto state = std::make_shared<state_type>(std::forward<Handler>(handler), strand, deadline, strict);

    auto slot = boost::asio::get_associated_cancellation_slot(state->handler);
    if (slot.is_connected()) {
      slot.assign([weak = std::weak_ptr<state_type>(state)](boost::asio::cancellation_type_t type) {
        if (auto s = weak.lock())
          boost::asio::dispatch(s->strand, [s, type] {
            if (!s->child_done)
              s->child.request(type);
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

    boost::asio::co_spawn(
        state->strand, run_deadline_child<T, AwaitableExecutor>(state.get(), std::move(op)),
        boost::asio::bind_cancellation_slot(state->child.signal.slot(), [state](std::exception_ptr e) {
          state->child_done = true;
          state->error = std::move(e);
          state->timer.cancel();
          state->maybe_complete();
        }));
  }
};

} // namespace fanout::detail
