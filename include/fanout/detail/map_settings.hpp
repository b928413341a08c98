// What a map is asked to do: how it delivers its results, and the settings
// it takes from map_options.
#pragma once

#include "fanout/detail/clock.hpp"
#include "fanout/detail/map_item.hpp"

#include <cstddef>
#include <optional>

namespace fanout::detail {

/// How a map hands out its results.
enum class map_delivery {
  collect,      // all at the end, in input order (async_map, async_map_settled)
  ordered,      // one at a time, in input order, while later items run (async_map_stream)
  as_completed, // one at a time, as items finish, with their index (async_map_as_completed)
};

/// What a map is asked to do, from map_options.
struct map_settings
{
  std::size_t max_concurrency = 0; // 0: no limit
  item_settings item;
  std::optional<clock::time_point> deadline;
};

} // namespace fanout::detail
