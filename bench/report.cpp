#include "report.hpp"

#include <algorithm>
#include <array>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <ostream>
#include <utility>

#include <sys/ioctl.h>
#include <unistd.h>

namespace bench {

namespace {

// ---------------------------------------------------------------------------
// Numbers and strings.

// The shortest text that reads back as the same double (Python's repr).
std::string shortest(double x)
{
  std::array<char, 32> text{};
  const auto end = std::to_chars(text.data(), text.data() + text.size(), x).ptr;
  return {text.data(), end};
}

// At most 12 significant digits: drops binary noise such as 3 * 0.1 = 0.30000000000000004.
std::string rounded(double x)
{
  std::array<char, 32> text{};
  const auto end = std::to_chars(text.data(), text.data() + text.size(), x, std::chars_format::general, 12).ptr;
  return {text.data(), end};
}

std::string fixed(double x, int decimals)
{
  std::array<char, 64> text{};
  const int n = std::snprintf(text.data(), text.size(), "%.*f", decimals, x);
  return {text.data(), n > 0 ? static_cast<std::size_t>(n) : 0};
}

std::string signed_text(double x, int decimals)
{
  std::array<char, 64> text{};
  const int n = std::snprintf(text.data(), text.size(), "%+.*f", decimals, x);
  return {text.data(), n > 0 ? static_cast<std::size_t>(n) : 0};
}

std::string csv_field(std::string_view s)
{
  if (s.find_first_of(",\"\r\n") == std::string_view::npos)
    return std::string(s);
  std::string out = "\"";
  for (const char c : s) {
    if (c == '"')
      out += '"';
    out += c;
  }
  out += '"';
  return out;
}

std::string pad_right(std::string s, std::size_t width)
{
  if (s.size() < width)
    s.append(width - s.size(), ' ');
  return s;
}

// ---------------------------------------------------------------------------
// Distances from the ideal.

// Relative distance from the ideal, in percent.
double overshoot_percent(double measured, double ideal)
{
  return (measured - ideal) / ideal * 100.0;
}

// The post's distance from its ideal, in seconds (its figures are at the
// one-second unit).
double post_overshoot(const row_spec& r)
{
  return *r.post_seconds - r.ideal_units;
}

// Closer to the ideal than the post: compares the time spent beyond the ideal
// (timer wake-up latency, loop overhead), which is a fixed cost per call
// rather than a fraction of the unit; at --scale 1 it is the plain comparison
// of the two figures.
bool closer_than_post(const result& r)
{
  return std::abs(r.measured_seconds - r.ideal_seconds) < std::abs(post_overshoot(*r.spec));
}

// The table's column widths.
constexpr std::size_t number_width = 3;
constexpr std::size_t seconds_width = 12;
constexpr std::size_t ms_width = 12;
constexpr std::size_t percent_width = 9;
constexpr const char* gap = "  ";

} // namespace

std::string json_string(std::string_view s)
{
  std::string out = "\"";
  for (const char c : s) {
    switch (c) {
    case '"':
      out += "\\\"";
      break;
    case '\\':
      out += "\\\\";
      break;
    case '\b':
      out += "\\b";
      break;
    case '\f':
      out += "\\f";
      break;
    case '\n':
      out += "\\n";
      break;
    case '\r':
      out += "\\r";
      break;
    case '\t':
      out += "\\t";
      break;
    default:
      if (static_cast<unsigned char>(c) < 0x20) {
        std::array<char, 8> esc{};
        std::snprintf(esc.data(), esc.size(), "\\u%04x", static_cast<unsigned>(static_cast<unsigned char>(c)));
        out += esc.data();
      } else {
        out += c;
      }
    }
  }
  out += '"';
  return out;
}

std::string pad_left(std::string s, std::size_t width)
{
  if (s.size() < width)
    s.insert(0, width - s.size(), ' ');
  return s;
}

// ---------------------------------------------------------------------------
// The table.

void table_printer::header() const
{
  out_ << "fanout-bench: the post's table, unit " << rounded(scale_) << " s (--scale " << rounded(scale_) << ")\n\n";
  const std::string line = pad_left("#", number_width) + gap + pad_right("row", name_width_) + gap +
                           pad_left("ideal (s)", seconds_width) + gap + pad_left("the post (s)", seconds_width) + gap +
                           pad_left("fanout (s)", seconds_width) + gap +
                           pad_left("overshoot", ms_width + 1 + percent_width) + gap + "closer to ideal than the post";
  out_ << line << '\n' << std::string(line.size(), '-') << '\n';
  out_.flush();
}

std::size_t table_printer::begin(const result& r) const
{
  const std::string line = pad_left(std::to_string(r.number), number_width) + gap +
                           pad_right(std::string(r.spec->name), name_width_) + gap +
                           pad_left(fixed(r.ideal_seconds, 6), seconds_width) + gap +
                           pad_left(r.spec->post_seconds ? fixed(*r.spec->post_seconds, 6) : "-", seconds_width) + gap;
  out_ << line;
  out_.flush();
  return line.size();
}

void table_printer::end(const result& r) const
{
  const double over = r.measured_seconds - r.ideal_seconds;
  out_ << pad_left(fixed(r.measured_seconds, 6), seconds_width) << gap
       << pad_left(signed_text(over * 1000.0, 3) + " ms", ms_width) << ' '
       << pad_left(signed_text(overshoot_percent(r.measured_seconds, r.ideal_seconds), 3) + "%", percent_width) << gap;
  if (!r.correct) {
    out_ << "WRONG VALUES";
  } else if (r.spec->post_seconds) {
    out_ << (closer_than_post(r) ? "yes" : "no ") << " (" << signed_text(over * 1000.0, 3) << " ms vs "
         << signed_text(post_overshoot(*r.spec) * 1000.0, 3) << " ms)";
  } else {
    out_ << "-";
  }
  out_ << '\n';
  out_.flush();
}

std::size_t table_printer::begin_follow_up(const result& r, const follow_up& f) const
{
  const std::string line = pad_left("", number_width) + gap + pad_right(std::string(f.label), name_width_) + gap +
                           pad_left(fixed(r.ideal_seconds, 6), seconds_width) + gap + pad_left("-", seconds_width) +
                           gap;
  out_ << line;
  out_.flush();
  return line.size();
}

void table_printer::end_follow_up(const result& r, const follow_up& f, std::optional<double> seconds) const
{
  if (!seconds) {
    out_ << pad_left("-", seconds_width) << gap << "WRONG VALUES\n";
    return;
  }
  const double over = *seconds - r.ideal_seconds;
  out_ << pad_left(fixed(*seconds, 6), seconds_width) << gap
       << pad_left(signed_text(over * 1000.0, 3) + " ms", ms_width) << ' '
       << pad_left(signed_text(overshoot_percent(*seconds, r.ideal_seconds), 3) + "%", percent_width) << gap << f.note
       << '\n';
  out_.flush();
}

void table_printer::footer(const std::vector<result>& results) const
{
  std::size_t compared = 0;
  std::size_t closer = 0;
  std::size_t wrong = 0;
  double worst = 0;
  for (const auto& r : results) {
    if (!r.correct)
      ++wrong;
    worst = std::max(worst, std::abs(overshoot_percent(r.measured_seconds, r.ideal_seconds)));
    if (r.spec->post_seconds) {
      ++compared;
      if (r.correct && closer_than_post(r))
        ++closer;
    }
  }
  out_ << '\n' << results.size() << (results.size() == 1 ? " row, " : " rows, ");
  if (wrong == 0)
    out_ << "all values correct";
  else
    out_ << wrong << " with WRONG VALUES";
  out_ << "; largest distance from the ideal " << fixed(worst, 3) << "%";
  if (compared != 0)
    out_ << "; closer to the ideal than the post in " << closer << " of " << compared;
  out_ << '\n';
  if (compared != 0 && scale_ != 1.0)
    out_ << "(the post's figures are at its 1 s unit; \"closer\" compares the time spent beyond the ideal)\n";
}

// ---------------------------------------------------------------------------
// JSON and CSV.

void print_json(std::ostream& out, double scale, const std::vector<result>& results)
{
  out << "{\"scale\": " << shortest(scale) << ", \"rows\": [";
  bool first = true;
  for (const auto& r : results) {
    out << (first ? "\n  " : ",\n  ") << "{\"name\": " << json_string(r.spec->name)
        << ", \"ideal_seconds\": " << rounded(r.ideal_seconds)
        << ", \"post_seconds\": " << (r.spec->post_seconds ? shortest(*r.spec->post_seconds) : "null")
        << ", \"measured_seconds\": " << shortest(r.measured_seconds);
    for (std::size_t k = 0; k < r.spec->follow_ups.size(); ++k)
      out << ", " << json_string(r.spec->follow_ups[k].key) << ": "
          << (r.follow_up_seconds[k] ? shortest(*r.follow_up_seconds[k]) : "null");
    out << "}";
    first = false;
  }
  out << (results.empty() ? "]}\n" : "\n]}\n");
}

void print_csv(std::ostream& out, const std::vector<result>& results)
{
  // One column per follow-up key, in order of appearance.
  std::vector<std::string_view> keys;
  for (const auto& r : results)
    for (const auto& f : r.spec->follow_ups)
      if (std::find(keys.begin(), keys.end(), f.key) == keys.end())
        keys.push_back(f.key);
  out << "name,ideal_seconds,post_seconds,measured_seconds";
  for (const auto key : keys)
    out << ',' << key;
  out << '\n';
  for (const auto& r : results) {
    out << csv_field(r.spec->name) << ',' << rounded(r.ideal_seconds) << ','
        << (r.spec->post_seconds ? shortest(*r.spec->post_seconds) : "") << ',' << shortest(r.measured_seconds);
    for (const auto key : keys) {
      out << ',';
      for (std::size_t k = 0; k < r.spec->follow_ups.size(); ++k)
        if (r.spec->follow_ups[k].key == key && r.follow_up_seconds[k])
          out << shortest(*r.follow_up_seconds[k]);
    }
    out << '\n';
  }
}

// ---------------------------------------------------------------------------
// Progress on stderr.

namespace {

// The whole of @p text to stderr, unbuffered.
void to_stderr(std::string_view text)
{
  while (!text.empty()) {
    const auto n = ::write(STDERR_FILENO, text.data(), text.size());
    if (n <= 0)
      return;
    text.remove_prefix(static_cast<std::size_t>(n));
  }
}

// Terminal controls: save the cursor, restore it, erase to the end of the line.
constexpr std::string_view save_cursor = "\0337";
constexpr std::string_view restore_cursor = "\0338";
constexpr std::string_view erase_to_end = "\033[K";

} // namespace

progress::progress() : enabled_(::isatty(STDERR_FILENO) == 1) {}

progress::~progress()
{
  stop();
}

void progress::start(std::string what, double ideal_seconds, std::size_t column)
{
  stop();
  if (!enabled_)
    return;
  winsize size{};
  const bool sized = ::ioctl(STDERR_FILENO, TIOCGWINSZ, &size) == 0 && size.ws_col != 0;
  const std::size_t width = sized ? size.ws_col : 80;
  // What is left of the cursor's line, less a column: a line that reached the
  // last one could wrap and scroll, and the cursor would be put back wrong.
  const std::size_t room = width - column % width;
  if (room <= 1)
    return;
  stopping_ = false;
  drawer_ = std::thread([this, what = std::move(what), ideal_seconds, room]() mutable {
    draw_until_stopped(std::move(what), ideal_seconds, room - 1);
  });
}

void progress::stop()
{
  if (!drawer_.joinable())
    return;
  {
    const std::lock_guard lock(mutex_);
    stopping_ = true;
  }
  stopped_.notify_one();
  drawer_.join();
}

void progress::draw_until_stopped(std::string what, double ideal_seconds, std::size_t room)
{
  using namespace std::chrono_literals;
  const auto start = std::chrono::steady_clock::now();
  bool drawn = false;
  std::unique_lock lock(mutex_);
  // Quiet for the first second: most rows end before that.
  for (auto next = start + 1s; !stopped_.wait_until(lock, next, [this] { return stopping_; }); next += 500ms) {
    const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    std::array<char, 64> count{};
    std::snprintf(count.data(), count.size(), "%.1f s of an ideal %.6g s", seconds, ideal_seconds);
    const std::string text = ("  [" + what + ": " + count.data() + "]").substr(0, room);
    to_stderr(std::string(save_cursor) + text + std::string(erase_to_end) + std::string(restore_cursor));
    drawn = true;
  }
  if (drawn)
    to_stderr(erase_to_end);
}

} // namespace bench
