// fanout-bench's rows: the post's (examples/post/rows.hpp), then the rows
// only fanout can do, each with its ideal time and the values it must give.
#pragma once

#include "post/rows.hpp"

#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace bench {

using post::values;

/// Runs a row at s.unit, its timer recording into s.record; gives its values.
using row_function = std::function<values(const post::setting& s)>;

/// A run timed right after its row, printed under it, that puts the row's
/// figure in context.
struct follow_up
{
  std::string_view label; // in the table's row column
  std::string_view key;   // in json and csv
  std::string_view note;  // in the table's last column
  row_function run;       // gives the row's values
};

/// A row of the table. Made with designated initialisers.
struct row_spec
{
  std::string_view name;                             // the timer's label
  double ideal_units;                                // at the one-second unit
  std::optional<double> post_seconds = std::nullopt; // the post's figure, unscaled
  row_function run;
  values expected;
  bool offloads = false;                  // uses fanout's blocking pool
  std::vector<follow_up> follow_ups = {}; // runs that follow the row (row 10)
};

/// Every row, in the table's order. @p self_command starts this program
/// again (with its --scale), for the follow-up that runs in a fresh process.
std::vector<row_spec> all_rows(std::string self_command);

/// The hidden --by-hand-cold mode: the child's side of row 10's cold
/// follow-up. Prints its seconds, then its values, one per line; returns the
/// exit status.
int run_by_hand_cold(std::chrono::nanoseconds unit);

} // namespace bench
