// One blocking call on a thread pool, completed on the caller's executor: the
// mechanism behind fanout::to_thread, async_to_thread and async_map's
// offloaded items.
#pragma once

#include "fanout/detail/completion.hpp"
#include "fanout/detail/errors.hpp"
#include "fanout/detail/signature.hpp"

#include <boost/asio/associated_cancellation_slot.hpp>
#include <boost/asio/associated_executor.hpp>
#include <boost/asio/async_result.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/bind_executor.hpp>
#include <boost/asio/execution/outstanding_work.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/prefer.hpp>
#include <boost/asio/thread_pool.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <atomic>
#include <exception>
#include <functional>
#include <memory>
#include <optional>
#include <thread>
#include <tuple>
#include <type_traits>
#include <utility>

namespace fanout {

// Declared in fanout/offload.hpp too.
boost::asio::thread_pool::executor_type blocking_executor();

namespace detail {

// One offloaded call. The pool job and the cancellation handler race for
// `phase`: whoever moves it out of `queued` owns the completion handler, so
// the handler runs exactly once, and a call whose wait was cancelled while it
// was still queued never starts.
template <typename Handler, typename Function, typename WorkExecutor, typename Fallback>
struct offload_op
{
  enum phase_t : int { queued, running, abandoned };

  offload_op(Handler h, Function f, WorkExecutor w, Fallback fb)
      : handler(std::move(h)), function(std::move(f)), work(std::move(w)), fallback(std::move(fb))
  {}

  // Completes the handler on its executor. Everything that refers to the
  // handler's execution context (the handler, the work guard, the executor)
  // moves into the posted completion, which first waits until the completing
  // thread (a pool thread, usually) has let go of its last reference to that
  // context (`released`). So once the handler has run, its io_context may be
  // destroyed at once: no pool thread still holds a strand or a work count.
  template <typename... Args>
  static void complete(const std::shared_ptr<offload_op>& self, Args&&... args)
  {
    {
      auto target = std::move(self->fallback);
      auto handler_ex = boost::asio::get_associated_executor(self->handler, target);
      boost::asio::post(
          target,
          boost::asio::bind_executor(handler_ex, [self, h = std::move(self->handler), w = std::move(self->work),
                                                  values = std::make_tuple(std::forward<Args>(args)...)]() mutable {
            while (!self->released.load(std::memory_order_acquire))
              std::this_thread::yield();
            boost::asio::get_associated_cancellation_slot(h).clear();
            std::apply([&h](auto&&... v) { std::move(h)(std::move(v)...); }, std::move(values));
          }));
    }
    self->released.store(true, std::memory_order_release);
  }

  std::atomic<int> phase{queued};
  // complete() has dropped every reference to the handler's context.
  std::atomic<bool> released{false};
  Handler handler;
  Function function;
  // Keeps the handler's executor from running out of work while the call
  // runs on the pool (callback users have no coroutine holding it).
  WorkExecutor work;
  // The handler's executor (the pool's, for a handler without one).
  Fallback fallback;
};

struct initiate_offload
{
  template <typename Handler, typename PoolExecutor, typename Function>
  void operator()(Handler&& handler, const PoolExecutor& pool, Function&& function) const
  {
    using result = std::invoke_result_t<std::decay_t<Function>&>;
    auto handler_ex = completion_executor(handler, pool);
    auto work = handler_work(handler, pool);
    using op_type = offload_op<std::decay_t<Handler>, std::decay_t<Function>, decltype(work), decltype(handler_ex)>;
    auto op = allocate_operation<op_type>(handler, std::forward<Handler>(handler), std::forward<Function>(function),
                                          std::move(work), handler_ex);

    auto slot = boost::asio::get_associated_cancellation_slot(op->handler);
    if (slot.is_connected()) {
      slot.assign([op](boost::asio::cancellation_type_t) {
        int expected = op_type::queued;
        if (!op->phase.compare_exchange_strong(expected, op_type::abandoned, std::memory_order_acq_rel))
          return; // already running: it cannot be interrupted, and completes normally
        auto e = aborted_error("fanout::to_thread");
        if constexpr (std::is_void_v<result>)
          op_type::complete(op, e);
        else
          op_type::complete(op, e, result{});
      });
    }

    boost::asio::post(pool, [op] {
      int expected = op_type::queued;
      if (!op->phase.compare_exchange_strong(expected, op_type::running, std::memory_order_acq_rel))
        return; // cancelled while queued: never starts
      std::exception_ptr error;
      if constexpr (std::is_void_v<result>) {
        try {
          std::invoke(op->function);
        } catch (...) {
          error = std::current_exception();
        }
        op_type::complete(op, error);
      } else {
        std::optional<result> value;
        try {
          value.emplace(std::invoke(op->function));
        } catch (...) {
          error = std::current_exception();
        }
        op_type::complete(op, error, value ? std::move(*value) : result{});
      }
    });
  }
};

/// Makes the blocking @p call (no arguments) on @p pool and gives its result
/// to the awaiting coroutine. A result that cannot be default-constructed
/// (which a failure of `void(std::exception_ptr, V)` would need) travels in a
/// `std::optional`, so V need only be move-constructible.
template <typename V, typename PoolExecutor, typename Call>
boost::asio::awaitable<V> offload_call(PoolExecutor pool, Call call)
{
  boost::asio::use_awaitable_t<> token;
  if constexpr (failure_carries_value_v<V>) {
    return boost::asio::async_initiate<boost::asio::use_awaitable_t<>, value_signature_t<V>>(
        initiate_offload{}, token, std::move(pool), std::move(call));
  } else {
    auto optional_call = [c = std::move(call)]() mutable { return std::optional<V>(std::in_place, c()); };
    return [](auto op) -> boost::asio::awaitable<V> {
      co_return std::move(*co_await std::move(op));
    }(boost::asio::async_initiate<boost::asio::use_awaitable_t<>, void(std::exception_ptr, std::optional<V>)>(
                           initiate_offload{}, token, std::move(pool), std::move(optional_call)));
  }
}

} // namespace detail

} // namespace fanout
