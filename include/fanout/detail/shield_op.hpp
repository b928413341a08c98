// An operation its caller's cancellation does not reach: the mechanism behind
// fanout::shield.
#pragma once

#include "fanout/detail/completion.hpp"
#include "fanout/detail/handler_adapter.hpp"

#include <boost/asio/associated_cancellation_slot.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/cancellation_signal.hpp>
#include <boost/asio/cancellation_type.hpp>
#include <boost/asio/co_spawn.hpp>

#include <atomic>
#include <exception>
#include <memory>
#include <utility>

namespace fanout::detail {

/// The initiation of a shielded operation, whose completion signature is
/// `void(std::exception_ptr, bool)`: the operation's exception (null if it
/// returned), and whether the handler's cancellation slot was emitted while
/// it ran.
///
/// The operation runs as a coroutine of its own (co_spawn on @p executor)
/// whose completion handler has no cancellation slot, so that nothing the
/// caller emits reaches it: the handler's slot only records that an emit came.
struct initiate_shielded
{
  template <typename Handler, typename Executor, typename AwaitableExecutor>
  void operator()(Handler&& handler, const Executor& executor, boost::asio::awaitable<void, AwaitableExecutor> op) const
  {
    // Set by the slot's handler, from whichever thread emits; read by the
    // completion, on the handler's executor.
    auto reached = allocate_operation<std::atomic<bool>>(handler, false);
    auto slot = boost::asio::get_associated_cancellation_slot(handler);
    if (slot.is_connected())
      slot.assign([reached](boost::asio::cancellation_type_t) { reached->store(true); });
    boost::asio::co_spawn(
        executor, std::move(op),
        boost::asio::bind_cancellation_slot(
            boost::asio::cancellation_slot(), // none: the caller's cancellation stops at the slot above
            adapt_handler(std::forward<Handler>(handler), [reached](auto&& h, std::exception_ptr e) {
              // On the handler's executor (co_spawn dispatches there), as its
              // slot's emits are: clearing never races with one.
              boost::asio::get_associated_cancellation_slot(h).clear();
              std::move(h)(std::move(e), reached->load());
            })));
  }
};

} // namespace fanout::detail
