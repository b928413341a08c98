// How a map's worker coroutine is started: the one header of fanout that
// names anything in boost::asio::detail.
#pragma once

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/cancellation_signal.hpp>
#include <boost/asio/cancellation_state.hpp>
#include <boost/asio/dispatch.hpp>
#include <boost/asio/version.hpp>

#include <utility>

// The direct start is known to match Asio's coroutine threads from Asio 1.26
// (Boost 1.81) to Asio 1.36 (Boost 1.89). Outside that range, or when
// FANOUT_PORTABLE_WORKERS is defined, workers start through asio::co_spawn.
#if BOOST_ASIO_VERSION >= 102600 && BOOST_ASIO_VERSION <= 103600
#define FANOUT_DIRECT_WORKERS_AVAILABLE 1
#else
#define FANOUT_DIRECT_WORKERS_AVAILABLE 0
#endif

#if FANOUT_DIRECT_WORKERS_AVAILABLE && !defined(FANOUT_PORTABLE_WORKERS)
#define FANOUT_DIRECT_WORKERS 1
#else
#define FANOUT_DIRECT_WORKERS 0
#endif

namespace fanout::detail {

#if FANOUT_DIRECT_WORKERS_AVAILABLE
/// A coroutine that is the bottom of its own Asio coroutine thread, as
/// co_spawn's entry point is: started by map_window::launch with its place's
/// cancellation slot as the thread's own, so it costs no co_spawn entry frame
/// and no cancellation proxy. It must let no exception escape.
using direct_worker =
    boost::asio::awaitable<boost::asio::detail::awaitable_thread_entry_point, boost::asio::any_io_executor>;

/// Starts @p worker as its own coroutine thread on @p ex, inline when already
/// there (as co_spawn does; @p on_ex: the caller knows it runs on @p ex).
/// The thread's cancellation state is attached to @p slot (kept inside its
/// signal: no allocation); @p parent is where
/// this_coro::reset_cancellation_state re-attaches it. Both are connected
/// here, by the caller's thread: the caller makes sure nothing emits on them
/// until the worker's body runs. A template only so that it is instantiated
/// where used (src/map_window.cpp), not in every includer.
template <typename Executor, typename Slot>
void start_direct_worker(direct_worker worker, const Executor& ex, Slot slot, boost::asio::cancellation_slot parent,
                         bool on_ex)
{
  boost::asio::detail::awaitable_thread<boost::asio::any_io_executor> thread(std::move(worker), ex, parent,
                                                                             boost::asio::cancellation_state(slot));
  if (on_ex)
    thread.launch();
  else
    boost::asio::dispatch(ex, [thread = std::move(thread)]() mutable { thread.launch(); });
}
#endif

/// The coroutine type of a worker on this build: a direct worker, or an
/// awaitable<void> given to co_spawn (the portable path).
#if FANOUT_DIRECT_WORKERS
using worker_coroutine = direct_worker;
#else
using worker_coroutine = boost::asio::awaitable<void>;
#endif

} // namespace fanout::detail
