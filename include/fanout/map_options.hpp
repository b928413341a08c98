// fanout/map_options.hpp — how fanout::async_map runs its items.
#pragma once

#include <cstddef>

namespace fanout {

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
};

} // namespace fanout
