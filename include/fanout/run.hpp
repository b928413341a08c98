// fanout/run.hpp — run a coroutine to completion from synchronous code.
#pragma once

#include "fanout/task.hpp"

#include "fanout/detail/executor_traits.hpp"

#include <boost/asio/awaitable.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>

#include <atomic>
#include <exception>
#include <memory>
#include <optional>
#include <stdexcept>
#include <type_traits>
#include <utility>

namespace fanout {

namespace detail {

// Where the spawned coroutine leaves its outcome. Shared, so that a
// coroutine that finishes after run() gave up (the io_context was stopped)
// never writes into a dead stack frame.
template <typename T>
struct run_outcome
{
  std::atomic<bool> done{false};
  std::exception_ptr error;
  std::conditional_t<std::is_void_v<T>, no_value, std::optional<T>> value;
};

template <typename T, typename Executor>
boost::asio::awaitable<void, Executor> run_body(std::shared_ptr<run_outcome<T>> out,
                                                boost::asio::awaitable<T, Executor> body)
{
  if constexpr (std::is_void_v<T>)
    co_await std::move(body);
  else
    out->value.emplace(co_await std::move(body));
}

template <typename T>
boost::asio::awaitable<T> await_task(task<T> t)
{
  co_return co_await t.async_wait();
}

} // namespace detail

/// Declares that @p ctx is run by one thread at a time (an `io_context
/// ctx{1}` driven from one thread): maps and tasks on its executor then need
/// no strands or locks of their own. Asio offers no public way to learn an
/// io_context's concurrency hint, hence the declaration. fanout::run(body)'s
/// own context and sync_map's are declared already. Running a declared
/// context from several threads at once is undefined behaviour.
///
/// @code
/// asio::io_context ctx{1};
/// fanout::declare_single_threaded(ctx);
/// @endcode
inline void declare_single_threaded(boost::asio::io_context& ctx)
{
  detail::mark_serial(ctx);
}

/// Runs @p body on @p ctx until it completes and returns its value, or
/// rethrows its exception (asyncio's `loop.run_until_complete`).
///
/// Drives @p ctx from the calling thread with `run_one()` until @p body is
/// done, so other handlers and tasks on @p ctx make progress meanwhile; work
/// still pending on @p ctx afterwards stays there for the next run. A stopped
/// @p ctx is restarted first.
///
/// @throws whatever @p body throws; `std::runtime_error` if @p ctx is stopped
///         (by `ctx.stop()`) before @p body completes, in which case @p body
///         stays suspended on @p ctx.
///
/// @par Thread safety
/// Other threads may run @p ctx at the same time; the calling thread returns
/// as soon as it observes completion.
///
/// @code
/// asio::io_context ctx;
/// std::string s = fanout::run(ctx, b());
/// @endcode
template <typename T, typename Executor>
T run(boost::asio::io_context& ctx, boost::asio::awaitable<T, Executor> body)
{
  auto out = std::make_shared<detail::run_outcome<T>>();
  boost::asio::co_spawn(ctx, detail::run_body<T, Executor>(out, std::move(body)), [out](std::exception_ptr e) {
    out->error = std::move(e);
    out->done.store(true, std::memory_order_release);
  });
  if (ctx.stopped())
    ctx.restart();
  while (!out->done.load(std::memory_order_acquire)) {
    if (ctx.run_one() == 0 && !out->done.load(std::memory_order_acquire))
      throw std::runtime_error("fanout::run: the io_context stopped before the coroutine completed");
  }
  if (out->error)
    std::rethrow_exception(out->error);
  if constexpr (!std::is_void_v<T>)
    return std::move(*out->value);
}

/// Runs @p body on a fresh `io_context` until it completes and returns its
/// value or rethrows (asyncio's `asyncio.run`). Tasks it spawned on that
/// context and left running are destroyed, unrun, with the context.
///
/// @code
/// int main() { return fanout::run(async_main()); }
/// @endcode
template <typename T, typename Executor>
T run(boost::asio::awaitable<T, Executor> body)
{
  boost::asio::io_context ctx{1}; // one thread runs it: fanout's maps can skip their strands and locks
  detail::mark_serial(ctx);
  return run(ctx, std::move(body));
}

/// Runs @p ctx until task @p t has finished and returns its value or
/// rethrows its exception (the post's `loop.run_until_complete(task)`). The
/// task may run on another executor; @p ctx is driven meanwhile.
template <typename T>
T run(boost::asio::io_context& ctx, task<T> t)
{
  return run(ctx, detail::await_task(std::move(t)));
}

} // namespace fanout
