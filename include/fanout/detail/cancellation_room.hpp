// Room for the cancellation handler of a coroutine's next operation.
#pragma once

#include <boost/asio/cancellation_signal.hpp>
#include <boost/asio/cancellation_type.hpp>

namespace fanout::detail {

/// A cancellation handler that does nothing, for its memory: Asio reuses a
/// slot's memory for the next handler emplaced there when it is big enough
/// (cancellation_slot::prepare_memory). Its size puts that memory in the
/// same size class as coroutine frames and operations, instead of the small
/// one of a bare operation handler (48 bytes for a timer wait), whose blocks
/// glibc keeps in fast bins and later consolidates one by one.
struct cancellation_room
{
  unsigned char bytes[112];
  void operator()(boost::asio::cancellation_type_t) noexcept {}
};

/// Before a coroutine starts an item: makes @p slot (its cancellation
/// state's) hold a cancellation_room unless it holds a handler already (what
/// the previous item left unused). An operation emplacing its handler there
/// replaces it without allocating.
inline void reserve_cancellation_room(boost::asio::cancellation_slot slot)
{
  if (slot.is_connected() && !slot.has_handler())
    slot.emplace<cancellation_room>();
}

} // namespace fanout::detail
