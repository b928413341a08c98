// Cancelling a coroutine started with asio::co_spawn (or as a map's direct
// worker), safely.
#pragma once

#include "fanout/detail/inline_cancellation_signal.hpp"

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/cancellation_signal.hpp>
#include <boost/asio/cancellation_type.hpp>

#include <cstddef>

namespace fanout::detail {

/// The cancellation signal bound to one co_spawn'ed coroutine (its "body"),
/// and when it may be emitted.
///
/// co_spawn's entry point awaits its executor before the body starts, and
/// again after a body that never suspended; both awaits are outside any
/// handler, so a cancellation emitted into the slot at those points is
/// thrown out of the Asio handler that runs the coroutine (std::terminate on
/// a thread pool). Hence: the signal is emitted only while the body runs
/// (`live`); a request that comes before the body starts is remembered, and
/// the body, which calls begin() first, then does not run; and the body ends
/// with `co_await this_coro::throw_if_cancelled(false)` (an emit made while
/// it ran, from its own strand, leaves its state cancelled).
///
/// Invariant: every member is touched only on the coroutine's executor (a
/// strand, or an executor that runs one thing at a time). So an emit never
/// races with the body, and the caller needs no lock, nor holds one.
///
/// @p Room: bytes of the handler kept inside the signal. The default holds
/// what co_spawn emplaces (a signal and an any_io_executor); a bigger handler
/// goes to the heap.
template <std::size_t Room = sizeof(boost::asio::cancellation_signal) + sizeof(boost::asio::any_io_executor)>
struct spawned_cancel
{
  // The coroutine's own slot: co_spawn's cancellation handler, or a direct
  // worker's cancellation state, is kept inside it.
  inline_cancellation_signal<Room> signal;
  // A direct worker's parent slot: where its coroutine's cancellation state
  // is re-created by this_coro::reset_cancellation_state (an Asio slot is
  // required there). Emitted with signal; holds nothing unless reset.
  boost::asio::cancellation_signal parent;
  bool live = false;      // the body has begun and has not ended
  bool requested = false; // cancellation was asked for
  bool emitting = false;  // inside the emits: neither slot's handler may be cleared now

  /// Asks for cancellation: emitted now if the body runs, else remembered.
  void request(boost::asio::cancellation_type_t type = boost::asio::cancellation_type::terminal)
  {
    requested = true;
    if (!live)
      return;
    emitting = true;
    signal.emit(type);
    parent.emit(type);
    emitting = false;
  }

  /// The body starts; false if it was cancelled already (it must not run).
  bool begin() noexcept
  {
    live = true;
    return !requested;
  }

  /// The body returns.
  void end() noexcept { live = false; }
};

} // namespace fanout::detail
