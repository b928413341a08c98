// What an item passes before it runs, from map_options: a place of a shared
// capacity limiter (held while the item runs) and a token of a rate limiter
// (per attempt). Compiled once, in src/map_gates.cpp.
#pragma once

#include <boost/asio/awaitable.hpp>

namespace fanout {
class limiter;
class rate_limiter;
} // namespace fanout

namespace fanout::detail {

/// Runs @p item holding one place of @p lim: waits for the place (FIFO,
/// cancellable: a cancelled wait takes nothing), awaits @p item, gives the
/// place back however it ends.
boost::asio::awaitable<void> run_holding_place(fanout::limiter& lim, boost::asio::awaitable<void> item);

/// Waits for one token of @p rate (cancellable: a cancelled wait takes none).
boost::asio::awaitable<void> take_token(fanout::rate_limiter& rate);

} // namespace fanout::detail
