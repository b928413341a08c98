// fanout-bench's output: the table (printed as the rows run, like the timer's
// lines), JSON and CSV (printed at the end), and a progress line on stderr
// while a long row runs.
#pragma once

#include "rows.hpp"

#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <iosfwd>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

namespace bench {

enum class format { table, json, csv };

/// A row's outcome.
struct result
{
  std::size_t number; // 1-based, in the full table
  const row_spec* spec;
  double ideal_seconds; // scaled
  double measured_seconds = 0;
  bool correct = false;
  std::vector<std::optional<double>> follow_up_seconds = {}; // one per spec->follow_ups
};

/// The table, a line per row, written to @p out as the rows run.
class table_printer
{
public:
  /// @p scale is the command line's; @p name_width fits every row's name.
  table_printer(std::ostream& out, double scale, std::size_t name_width)
      : out_(out), scale_(scale), name_width_(name_width)
  {}

  void header() const;
  /// Like the timer's label line: printed before the row runs. Returns its
  /// width, where the cursor is left.
  std::size_t begin(const result& r) const;
  /// Like the timer's elapsed line: printed when the row is done.
  void end(const result& r) const;
  /// A follow-up run, on a line of its own under its row.
  std::size_t begin_follow_up(const result& r, const follow_up& f) const;
  void end_follow_up(const result& r, const follow_up& f, std::optional<double> seconds) const;
  void footer(const std::vector<result>& results) const;

private:
  std::ostream& out_;
  double scale_;
  std::size_t name_width_;
};

/// `{"scale": S, "rows": [{"name": ..., "ideal_seconds": ..., "post_seconds":
/// ... or null, "measured_seconds": ..., <follow-up keys>...}, ...]}`
void print_json(std::ostream& out, double scale, const std::vector<result>& results);

/// A header line, then a line per row: name, ideal_seconds, post_seconds
/// (empty if none), measured_seconds, then a column per follow-up key.
void print_csv(std::ostream& out, const std::vector<result>& results);

/// @p s, quoted and escaped as a JSON string.
std::string json_string(std::string_view s);

/// @p s, padded with spaces on the left to @p width.
std::string pad_left(std::string s, std::size_t width);

/// While a row runs for longer than a second, a line on stderr that counts
/// the seconds, erased when the row ends; nothing unless stderr is a
/// terminal. It is drawn from the cursor on, cut to the terminal's width, and
/// the cursor put back, so that a table line being written to the same
/// terminal is left as it is.
class progress
{
public:
  progress();
  progress(const progress&) = delete;
  progress& operator=(const progress&) = delete;
  ~progress();

  /// A row (or follow-up) named @p what, ideally @p ideal_seconds long,
  /// starts, the cursor at @p column (0 unless stdout is the same terminal).
  void start(std::string what, double ideal_seconds, std::size_t column);
  /// It ended: the line, if drawn, is erased.
  void stop();

private:
  void draw_until_stopped(std::string what, double ideal_seconds, std::size_t room);

  bool enabled_;
  std::mutex mutex_;
  std::condition_variable stopped_;
  bool stopping_ = false;
  std::thread drawer_;
};

} // namespace bench
