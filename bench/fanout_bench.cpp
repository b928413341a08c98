// fanout-bench — the post's table ("Asynchronous part 1", seed/asynchronous-part-1.txt),
// one row per experiment, each written the way the post writes it, with fanout;
// then the rows only fanout can do.
//
//   fanout-bench [--scale S] [--format table|json|csv] [--filter SUBSTRING]
//
// Every duration is the post's one-second unit times S. Each row is timed with
// the fanout::timer guard around exactly what the post's `with timer(...)`
// block holds (the event loop, asyncio's default loop in the post, is made
// before the first row), and its values are checked: the exit status is 1 if
// any row gives wrong values, 2 for a bad command line. Row 10 (10,000
// concurrent sleeps) is followed by three runs that put it in context: the row
// again, its memory already touched, and the same sleeps written by hand in
// plain Asio, in this process and in a fresh one.
//
// The rows are in rows.cpp (the post's own in examples/post/rows.cpp), the
// output formats in report.cpp; this file reads the command line and runs the
// rows.

#include "report.hpp"
#include "rows.hpp"

#include <fanout/offload.hpp>

#include <algorithm>
#include <charconv>
#include <chrono>
#include <cmath>
#include <cstddef>
#include <cstdio>
#include <exception>
#include <filesystem>
#include <iostream>
#include <optional>
#include <string>
#include <string_view>
#include <system_error>
#include <variant>
#include <vector>

#include <unistd.h>

namespace {

using bench::format;
using bench::result;
using bench::row_spec;
using bench::values;

struct options
{
  double scale = 1.0;
  format fmt = format::table;
  std::optional<std::string> filter;
  bool help = false;
  bool by_hand_cold = false; // hidden: the child of row 10's cold by-hand line
};

void usage(std::ostream& out, const std::vector<row_spec>& rows)
{
  out << "usage: fanout-bench [--scale S] [--format table|json|csv] [--filter SUBSTRING] [--help]\n"
         "\n"
         "Reproduces the table of the post \"Asynchronous part 1\" with fanout, then\n"
         "the rows only fanout can do.\n"
         "\n"
         "  --scale S            multiply every duration by S (a number > 0; default 1,\n"
         "                       the post's one-second unit: about half a minute)\n"
         "  --format F           table (default), json or csv\n"
         "  --filter SUBSTRING   run only the rows whose name contains SUBSTRING\n"
         "  --help               print this and exit\n"
         "\n"
         "Row 10 is followed by three lines that put it in context: the row run again\n"
         "(its memory already touched), and the same sleeps written by hand in plain\n"
         "Asio, then again in a fresh process, cold like row 10 (json and csv:\n"
         "again_seconds, by_hand_seconds, by_hand_cold_seconds).\n"
         "\n"
         "Exit status: 0 if every row gave the right values, 1 if not, 2 for a bad\n"
         "command line.\n"
         "\n"
         "Rows:\n";
  for (std::size_t i = 0; i < rows.size(); ++i)
    out << bench::pad_left(std::to_string(i + 1), 4) << "  " << rows[i].name << '\n';
}

std::optional<double> parse_scale(std::string_view text)
{
  double value = 0;
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc() || end != text.data() + text.size() || text.empty())
    return std::nullopt;
  // Positive and small enough that a unit fits in nanoseconds comfortably.
  if (!std::isfinite(value) || value <= 0 || value > 1e6)
    return std::nullopt;
  return value;
}

// Returns the options, or an error message.
std::variant<options, std::string> parse(int argc, char** argv)
{
  options o;
  const std::vector<std::string_view> args(argv + 1, argv + argc);
  for (std::size_t i = 0; i < args.size(); ++i) {
    std::string_view flag = args[i];
    std::optional<std::string_view> value;
    if (const auto eq = flag.find('='); flag.starts_with("--") && eq != std::string_view::npos) {
      value = flag.substr(eq + 1);
      flag = flag.substr(0, eq);
    }
    if (flag == "--help" || flag == "-h") {
      if (value)
        return "--help takes no value";
      o.help = true;
      continue;
    }
    if (flag == "--by-hand-cold" && !value) {
      o.by_hand_cold = true;
      continue;
    }
    if (flag != "--scale" && flag != "--format" && flag != "--filter")
      return "unknown argument '" + std::string(args[i]) + "'";
    if (!value) {
      if (i + 1 == args.size())
        return std::string(flag) + " needs a value";
      value = args[++i];
    }
    if (flag == "--scale") {
      const auto s = parse_scale(*value);
      if (!s)
        return "--scale needs a number greater than 0 (at most 1e6), not '" + std::string(*value) + "'";
      o.scale = *s;
    } else if (flag == "--format") {
      if (*value == "table")
        o.fmt = format::table;
      else if (*value == "json")
        o.fmt = format::json;
      else if (*value == "csv")
        o.fmt = format::csv;
      else
        return "--format must be table, json or csv, not '" + std::string(*value) + "'";
    } else {
      o.filter = std::string(*value);
    }
  }
  return o;
}

// Up to ten values and the count, for error messages.
std::string describe(const values& v)
{
  std::string out = "[";
  for (std::size_t k = 0; k < v.size() && k < 10; ++k)
    out += (k == 0 ? "" : ", ") + bench::json_string(v[k]);
  out += v.size() > 10 ? ", ...] (" : "] (";
  return out + std::to_string(v.size()) + (v.size() == 1 ? " value)" : " values)");
}

// The post's one-second unit at --scale S.
std::chrono::nanoseconds unit_at(double scale)
{
  return std::chrono::round<std::chrono::nanoseconds>(std::chrono::duration<double>(scale));
}

// Runs @p run at the unit, its timer recording into @p seconds; its printing
// (the post's rows print what the post prints) goes nowhere.
values run_timed(const bench::row_function& run, std::chrono::nanoseconds unit, double& seconds)
{
  std::ostream discard(nullptr);
  return run(
      {.unit = unit,
       .loop = post::get_event_loop(),
       .out = discard,
       .record = [&seconds](std::string_view, std::chrono::duration<double> elapsed) { seconds = elapsed.count(); }});
}

int run_bench(const options& o, const std::vector<row_spec>& rows)
{
  const auto unit = unit_at(o.scale);

  std::vector<result> results;
  for (std::size_t i = 0; i < rows.size(); ++i)
    if (!o.filter || rows[i].name.find(*o.filter) != std::string_view::npos)
      results.push_back({.number = i + 1, .spec = &rows[i], .ideal_seconds = rows[i].ideal_units * o.scale});
  if (results.empty()) {
    std::cerr << "fanout-bench: no row matches --filter '" << *o.filter << "'\n\n";
    usage(std::cerr, rows);
    return 2;
  }

  // The default event loop, then the blocking pool (in that order: see
  // post::get_event_loop), made before any row is timed, so that no row times
  // the creation of a loop or of the pool's threads.
  (void)post::get_event_loop();
  if (std::any_of(results.begin(), results.end(), [](const result& r) { return r.spec->offloads; }))
    (void)fanout::blocking_executor();

  std::size_t name_width = 3;
  for (const auto& r : results) {
    name_width = std::max(name_width, r.spec->name.size());
    for (const auto& f : r.spec->follow_ups)
      name_width = std::max(name_width, f.label.size());
  }
  const bench::table_printer table(std::cout, o.scale, name_width);
  if (o.fmt == format::table)
    table.header();
  // Where the cursor is when a row starts, for the progress line: after the
  // row's beginning when the table is on the same terminal, else at the start
  // of a line.
  const bool table_on_terminal = o.fmt == format::table && ::isatty(STDOUT_FILENO) == 1;
  bench::progress progress;

  bool all_correct = true;
  for (auto& r : results) {
    const std::size_t column = o.fmt == format::table ? table.begin(r) : 0;
    std::string failure;
    progress.start("row " + std::to_string(r.number), r.ideal_seconds, table_on_terminal ? column : 0);
    try {
      const values got = run_timed(r.spec->run, unit, r.measured_seconds);
      r.correct = got == r.spec->expected;
      if (!r.correct)
        failure = "got " + describe(got) + ", expected " + describe(r.spec->expected);
    } catch (const std::exception& e) {
      r.correct = false;
      failure = std::string("threw: ") + e.what();
    }
    progress.stop();
    if (o.fmt == format::table)
      table.end(r);
    if (!r.correct) {
      all_correct = false;
      std::cerr << "fanout-bench: row " << r.number << " \"" << r.spec->name << "\": wrong values: " << failure << '\n';
    }
    for (const auto& f : r.spec->follow_ups) {
      const std::size_t follow_up_column = o.fmt == format::table ? table.begin_follow_up(r, f) : 0;
      double seconds = 0;
      std::optional<double> measured;
      progress.start("row " + std::to_string(r.number) + "," + std::string(f.label), r.ideal_seconds,
                     table_on_terminal ? follow_up_column : 0);
      try {
        const values got = run_timed(f.run, unit, seconds);
        if (got == r.spec->expected)
          measured = seconds;
        else
          failure = "got " + describe(got);
      } catch (const std::exception& e) {
        failure = std::string("threw: ") + e.what();
      }
      progress.stop();
      if (!measured) {
        all_correct = false;
        std::cerr << "fanout-bench: row " << r.number << "," << f.label << ": wrong values: " << failure << '\n';
      }
      r.follow_up_seconds.push_back(measured);
      if (o.fmt == format::table)
        table.end_follow_up(r, f, measured);
    }
  }

  switch (o.fmt) {
  case format::table:
    table.footer(results);
    break;
  case format::json:
    bench::print_json(std::cout, o.scale, results);
    break;
  case format::csv:
    bench::print_csv(std::cout, results);
    break;
  }
  std::cout.flush();
  return all_correct ? 0 : 1;
}

// How to start this program again at --scale @p scale: for row 10's
// follow-up that runs in a fresh process.
std::string self_command(const char* argv0, double scale)
{
  char text[64];
  std::snprintf(text, sizeof text, "%.17g", scale);
  // Resolved here: in the shell popen starts, /proc/self is the shell.
  std::error_code ec;
  const auto self = std::filesystem::read_symlink("/proc/self/exe", ec);
  return "'" + (ec ? std::string(argv0) : self.string()) + "' --scale " + text;
}

} // namespace

int main(int argc, char** argv)
{
  const auto parsed = parse(argc, argv);
  const auto* o = std::get_if<options>(&parsed);
  const std::vector<row_spec> rows = bench::all_rows(self_command(argv[0], o ? o->scale : 1.0));
  if (o == nullptr) {
    std::cerr << "fanout-bench: " << std::get<std::string>(parsed) << "\n\n";
    usage(std::cerr, rows);
    return 2;
  }
  if (o->help) {
    usage(std::cout, rows);
    return 0;
  }
  if (o->by_hand_cold)
    return bench::run_by_hand_cold(unit_at(o->scale));
  return run_bench(*o, rows);
}
