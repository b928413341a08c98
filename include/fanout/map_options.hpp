// fanout/map_options.hpp — how fanout::async_map runs its items.
#pragma once

#include "fanout/detail/backoff.hpp"

#include <chrono>
#include <cstddef>
#include <optional>

namespace fanout {

class limiter;
class rate_limiter;

/// Where async_map makes plain (blocking) calls.
enum class blocking_policy {
  /// On the event loop, one after another, blocking it while each runs: the
  /// post's behaviour (five one-second calls take five seconds).
  run_inline,
  /// On fanout's blocking-work pool (fanout::blocking_executor()), so that
  /// blocking calls overlap each other and the coroutines (the post's mixed
  /// list takes one second instead of three).
  offload,
};

/// Options for fanout::async_map, passed first: `async_map(options, f, ranges...)`.
struct map_options
{
  /// Most items in flight at once; 0 (the default) means no limit. With a
  /// limit, inputs are pulled from the ranges only as slots free up.
  std::size_t max_concurrency = 0;

  /// Where plain callables run; default blocking_policy::run_inline.
  blocking_policy blocking = blocking_policy::run_inline;

  /// Time limit for each item; zero (the default) or negative means none, and
  /// a huge one (`duration::max()`) never expires. An item still
  /// running when it expires is cancelled, waited for, and fails with
  /// `fanout::error::timed_out` even if it then returns a value (async_map:
  /// that failure stops the map, as any
  /// other; async_map_settled: it is that item's outcome). Applies to
  /// coroutine items and offloaded calls (a queued call never starts; a
  /// running one cannot be interrupted and is waited for); plain calls run
  /// inline cannot be interrupted and ignore it.
  std::chrono::steady_clock::duration item_timeout{};

  /// Time point by which the whole map must be done; none by default. When it
  /// passes, running items are cancelled, no more start, and the map fails
  /// with `fanout::error::timed_out` once they have finished (for both
  /// async_map and async_map_settled).
  std::optional<std::chrono::steady_clock::time_point> deadline{};
  /// A capacity limiter shared with other maps and groups (null: none). Each
  /// item holds one of its places while it runs (all its attempts, with
  /// `retry`), beside this map's own `max_concurrency`; an item waiting for a
  /// place is in flight for the window, and leaves the limiter's queue,
  /// taking nothing, when the map is cancelled. The limiter must outlive the
  /// map.
  fanout::limiter* limiter = nullptr;
  /// A rate limiter (null: none): every attempt of an item takes one of its
  /// tokens before it starts. Cancellation while waiting takes no token. It
  /// must outlive the map.
  fanout::rate_limiter* rate = nullptr;
  /// Retries each failing item with this backoff (none by default): the
  /// item's function is called again for each attempt. No backoff sleep ends
  /// past the map's deadline or the item's timeout (which bounds all its
  /// attempts together); the last failure is the item's. Bad values fail the
  /// map with `fanout::error::invalid_argument` before any item starts.
  std::optional<fanout::backoff> retry{};
};

/// How a map treats an item's failure. Chosen by the entry point, since it
/// changes the result type: fanout::async_map is fail-fast,
/// fanout::async_map_settled collects every outcome.
enum class error_policy {
  /// The first failure cancels the running items, starts no more, and is
  /// rethrown once every started item has finished. Results: `std::vector<R>`.
  fail_fast,
  /// Every item runs; each one's value or exception is returned, and item
  /// failures never throw. Results: `std::vector<fanout::outcome<R>>`.
  collect_all,
};

} // namespace fanout
