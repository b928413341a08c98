// fanout/race.hpp — the first of several operations to succeed wins; the
// others are cancelled and waited for (Trio's race, Cobalt's race, Asio's
// awaitable operator || for a whole range).
#pragma once

#include "fanout/error.hpp"
#include "fanout/task_group.hpp"

#include <boost/asio/awaitable.hpp>

#include <concepts>
#include <cstddef>
#include <exception>
#include <mutex>
#include <optional>
#include <type_traits>
#include <utility>
#include <vector>

namespace fanout {

/// What fanout::race gives: the winner's index in the input and its value,
/// or only the index for void operations.
template <typename T>
using race_result = std::conditional_t<std::is_void_v<T>, std::size_t, std::pair<std::size_t, T>>;

namespace detail {

// Written by the entrants under `mutex`; read by race once every entrant has
// finished (then without it).
template <typename T>
struct race_state
{
  std::mutex mutex;
  std::optional<race_result<T>> winner;
  // Every failure, with its entrant's index, in the order they came.
  std::vector<aggregate_error::failure> failures;
};

template <typename T>
boost::asio::awaitable<void> race_entrant(race_state<T>& state, task_group& group, std::size_t index,
                                          boost::asio::awaitable<T> op)
{
  try {
    if constexpr (std::is_void_v<T>) {
      co_await std::move(op);
      std::lock_guard lock(state.mutex);
      if (!state.winner) {
        state.winner.emplace(index);
        group.cancel();
      }
    } else {
      T value = co_await std::move(op);
      std::lock_guard lock(state.mutex);
      if (!state.winner) {
        state.winner.emplace(index, std::move(value));
        group.cancel();
      }
    }
  } catch (...) {
    std::lock_guard lock(state.mutex);
    state.failures.emplace_back(index, std::current_exception());
  }
}

} // namespace detail

/// Runs every operation of @p ops at once; the first to complete
/// successfully wins, and every other is cancelled (terminal) and waited for
/// before race returns: none is left running. This is what Asio's awaitable
/// operator `||` does for two operations, for any number of them.
///
/// @return the winner's index in @p ops and its value (only the index for
///         void operations).
/// @throws fanout::aggregate_error if every operation failed (however many,
///         one included): errors() holds each operation's index and exception,
///         in index order. An operation that fails after another won is
///         ignored;
///         `system_error(fanout::error::invalid_argument)` if @p ops is empty;
///         `operation_aborted` if the awaiting coroutine is cancelled before
///         any operation succeeded (the operations are cancelled and waited
///         for first).
///
/// @par Thread safety
/// The operations run as tasks of a task_group on the awaiting coroutine's
/// executor (strands of it on a multi-threaded executor).
///
/// @code
/// auto [index, body] = co_await fanout::race(std::move(mirrors)); // the fastest mirror wins
/// @endcode
template <typename T>
boost::asio::awaitable<race_result<T>> race(std::vector<boost::asio::awaitable<T>> ops)
{
  if (ops.empty())
    throw_error(error::invalid_argument, "fanout::race: no operations");
  detail::race_state<T> state;
  std::exception_ptr joined; // operation_aborted if the awaiting coroutine was cancelled
  try {
    co_await with_task_group(
        [&](task_group& group) -> boost::asio::awaitable<void> {
          for (std::size_t i = 0; i < ops.size(); ++i)
            group.spawn(detail::race_entrant<T>(state, group, i, std::move(ops[i])));
          co_return;
        },
        group_policy::keep_going);
  } catch (...) {
    joined = std::current_exception();
  }
  // Every entrant has finished: no lock needed. A winner stands even if the
  // caller was cancelled after it won.
  if (state.winner)
    co_return std::move(*state.winner);
  if (joined)
    std::rethrow_exception(joined);
  throw aggregate_error(std::move(state.failures));
}

/// As above, for operations given one by one: `race(fetch(a), fetch(b))`.
template <typename T, std::same_as<boost::asio::awaitable<T>>... More>
boost::asio::awaitable<race_result<T>> race(boost::asio::awaitable<T> first, More... more)
{
  std::vector<boost::asio::awaitable<T>> ops;
  ops.reserve(1 + sizeof...(More));
  ops.push_back(std::move(first));
  (ops.push_back(std::move(more)), ...);
  return race(std::move(ops));
}

} // namespace fanout
