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
// concurrent sleeps) is followed by two runs that put it in context: the row
// again, its memory already touched, and the same sleeps written by hand in
// plain Asio.

// g++ 12 at -O2 reports -Wnull-dereference inside Asio's executor comparisons
// (io_context.hpp, strand.hpp via any_executor::equal_ex): false positives in
// third-party code, silenced for those headers only.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wnull-dereference"
#include <fanout/fanout.hpp>

#include <boost/asio/awaitable.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/use_awaitable.hpp>
#pragma GCC diagnostic pop

#include <algorithm>
#include <array>
#include <charconv>
#include <chrono>
#include <cmath>
#include <cstddef>
#include <cstdio>
#include <exception>
#include <filesystem>
#include <iostream>
#include <optional>
#include <sstream>
#include <stdexcept>
#include <string>
#include <string_view>
#include <system_error>
#include <thread>
#include <variant>
#include <vector>

namespace {

namespace asio = boost::asio;
using values = std::vector<std::string>;

// ---------------------------------------------------------------------------
// The post's two functions, with its one-second unit scaled by --scale.

std::chrono::nanoseconds unit = std::chrono::seconds(1);

// #notacoroutine
// def a(A="a"):
//     time.sleep(1)
//     return A
std::string a()
{
  std::this_thread::sleep_for(unit);
  return "a";
}

// @asyncio.coroutine
// def b(B="b"):
//     yield from asyncio.sleep(1)
//     return B
asio::awaitable<std::string> b()
{
  co_await fanout::sleep(unit);
  co_return "b";
}

// loop = asyncio.get_event_loop(): the process's default event loop, made on
// first use (before any row is timed, see run_bench) and kept until exit. Like
// asyncio's loop it is run by one thread, and says so (concurrency hint 1), so
// that fanout's maps on it need no strands of their own.
asio::io_context& get_event_loop()
{
  static asio::io_context loop{1};
  [[maybe_unused]] static const bool single_threaded = (fanout::declare_single_threaded(loop), true);
  return loop;
}

using coroutine_function = asio::awaitable<std::string> (*)();
using blocking_function = std::string (*)();

// apply = lambda x: x()
constexpr auto apply = [](auto& x) { return x(); };

// The timer guard's sink: records the elapsed seconds instead of printing.
fanout::timer::sink into(double& seconds)
{
  return [&seconds](std::string_view, std::chrono::duration<double> elapsed) { seconds = elapsed.count(); };
}

// ---------------------------------------------------------------------------
// The experiments. Each returns what the post prints, in order, and stores
// the time its timer block took in `seconds`.

// with timer("Normal synchronous code"):
//     for x in range(5):
//         print(a())
values normal_synchronous_code(const std::string& label, double& seconds)
{
  values printed;
  printed.reserve(5);
  {
    const fanout::timer t(label, into(seconds));
    for (int x = 0; x < 5; ++x)
      printed.push_back(a());
  }
  return printed;
}

// loop = asyncio.get_event_loop()
// with timer("Using asynchronous code synchronously"):
//     for x in range(5):
//         retval = loop.run_until_complete(b())
//         print(retval)
values asynchronous_code_synchronously(const std::string& label, double& seconds)
{
  auto& loop = get_event_loop();
  values printed;
  printed.reserve(5);
  {
    const fanout::timer t(label, into(seconds));
    for (int x = 0; x < 5; ++x) {
      auto retval = fanout::run(loop, b());
      printed.push_back(std::move(retval));
    }
  }
  return printed;
}

// loop = asyncio.get_event_loop()
// with timer("Separate function call, and code running"):
//     tasks = []
//     for x in range(5):
//         task = b()
//         tasks.append(task)
//     for task in tasks:
//         retval = loop.run_until_complete(task)
//         print(retval)
values separate_call_and_running(const std::string& label, double& seconds)
{
  auto& loop = get_event_loop();
  values printed;
  printed.reserve(5);
  {
    const fanout::timer t(label, into(seconds));
    std::vector<asio::awaitable<std::string>> tasks;
    for (int x = 0; x < 5; ++x) {
      auto task = b(); // an awaitable is lazy, as the post's generator: nothing runs yet
      tasks.push_back(std::move(task));
    }
    for (auto& task : tasks) {
      auto retval = fanout::run(loop, std::move(task));
      printed.push_back(std::move(retval));
    }
  }
  return printed;
}

// loop = asyncio.get_event_loop()
// with timer("Briefer concurrency with map"):
//     tasks = [asyncio.async(b()) for x in range(5)]
//     print(*map(loop.run_until_complete, tasks))
values briefer_concurrency_with_map(const std::string& label, double& seconds)
{
  auto& loop = get_event_loop();
  values printed;
  printed.reserve(5);
  {
    const fanout::timer t(label, into(seconds));
    std::vector<fanout::task<std::string>> tasks;
    for (int x = 0; x < 5; ++x)
      tasks.push_back(fanout::spawn(loop, b()));
    for (auto& task : tasks)
      printed.push_back(fanout::run(loop, task));
  }
  return printed;
}

// with timer("Async map, not using the event loop directly"):
//     tasks = [b for x in range(5)]
//     retvals = [r for r in async_map(lambda x: x(), tasks)]
//     print(*retvals)
values async_map_coroutines(const std::string& label, double& seconds)
{
  values retvals;
  {
    const fanout::timer t(label, into(seconds));
    std::vector<coroutine_function> tasks(5, b);
    retvals = fanout::run(fanout::async_map(apply, tasks));
  }
  return retvals;
}

// with timer("It still works with synchronous functions"):
//     tasks = [a for x in range(5)]
//     retvals = [r for r in async_map(lambda x: x(), tasks)]
//     print(*retvals)
values async_map_blocking(const std::string& label, double& seconds)
{
  values retvals;
  {
    const fanout::timer t(label, into(seconds));
    std::vector<blocking_function> tasks(5, a);
    retvals = fanout::run(fanout::async_map(apply, tasks));
  }
  return retvals;
}

// apply = lambda x: x()
// with timer("Mixin' it up"):
//     tasks = [b, a, b ,a, b]
//     retvals = [r for r in async_map(apply, tasks)]
//     print(*retvals)
values mixin_it_up(const std::string& label, double& seconds)
{
  values retvals;
  {
    const fanout::timer t(label, into(seconds));
    std::vector<fanout::callable<std::string()>> tasks{b, a, b, a, b};
    retvals = fanout::run(fanout::async_map(apply, tasks));
  }
  return retvals;
}

// Beyond the post: the same mixed list, its blocking calls offloaded to
// fanout's blocking pool, so that they overlap each other and the coroutines.
values mixin_it_up_offloaded(const std::string& label, double& seconds)
{
  values retvals;
  {
    const fanout::timer t(label, into(seconds));
    std::vector<fanout::callable<std::string()>> tasks{b, a, b, a, b};
    retvals =
        fanout::run(get_event_loop(), fanout::async_map({.blocking = fanout::blocking_policy::offload}, apply, tasks));
  }
  return retvals;
}

// Beyond the post: five blocking calls, offloaded.
values blocking_offloaded(const std::string& label, double& seconds)
{
  values retvals;
  {
    const fanout::timer t(label, into(seconds));
    std::vector<blocking_function> tasks(5, a);
    retvals =
        fanout::run(get_event_loop(), fanout::async_map({.blocking = fanout::blocking_policy::offload}, apply, tasks));
  }
  return retvals;
}

// Beyond the post: ten thousand coroutines sleeping one unit each, at once.
values ten_thousand_sleeps(const std::string& label, double& seconds)
{
  values retvals;
  {
    const fanout::timer t(label, into(seconds));
    std::vector<coroutine_function> tasks(10'000, b);
    retvals = fanout::run(get_event_loop(), fanout::async_map(apply, tasks));
  }
  return retvals;
}

// Row 10's context (printed under it): the very same ten thousand items the
// row maps (apply over ten thousand b's, each waiting one unit in
// fanout::sleep) written by hand in plain Asio instead of through
// fanout::async_map: one asio::co_spawn each from a coroutine on the same
// loop, results stored by index; no cancellation slots, no bookkeeping. So
// the two lines differ by the map alone, item for item. Run after row 10 and
// after row 10 again, so both of these find the heap row 10 grew already
// faulted in (row 10 itself, like every row, runs once in a fresh process and
// pays for that memory's first touch).
values ten_thousand_sleeps_by_hand(const std::string& label, double& seconds)
{
  auto& loop = get_event_loop();
  values retvals;
  {
    const fanout::timer t(label, into(seconds));
    std::vector<coroutine_function> tasks(10'000, b);
    retvals.resize(tasks.size());
    std::size_t left = tasks.size();
    if (loop.stopped()) // fanout::run leaves it so once it ran out of work
      loop.restart();
    asio::co_spawn(
        loop,
        [&]() -> asio::awaitable<void> {
          for (std::size_t i = 0; i < tasks.size(); ++i)
            asio::co_spawn(loop, apply(tasks[i]), [&, i](std::exception_ptr e, std::string s) {
              if (!e)
                retvals[i] = std::move(s);
              --left;
            });
          co_return;
        },
        asio::detached);
    while (left != 0)
      loop.run_one(); // cannot run out of work before the last sleep ends
  }
  return retvals;
}

// The by-hand line again, cold: run in a fresh process of this program (its
// hidden option --by-hand-cold), so that its memory is as untouched as row
// 10's is when the row runs. The child prints its seconds, then its values,
// one per line; they are checked here like any row's.
std::string self_command; // how this program was started, with --scale

values ten_thousand_sleeps_by_hand_cold(const std::string&, double& seconds)
{
  const std::string command = self_command + " --by-hand-cold";
  FILE* child = ::popen(command.c_str(), "r");
  if (child == nullptr)
    throw std::runtime_error("cannot start '" + command + "'");
  std::string out;
  std::array<char, 4096> buffer{};
  while (const std::size_t n = std::fread(buffer.data(), 1, buffer.size(), child))
    out.append(buffer.data(), n);
  if (::pclose(child) != 0)
    throw std::runtime_error("'" + command + "' failed");
  std::istringstream lines(out);
  std::string line;
  if (!std::getline(lines, line) || (seconds = std::stod(line), !std::isfinite(seconds)))
    throw std::runtime_error("'" + command + "' printed no seconds");
  values retvals;
  while (std::getline(lines, line))
    retvals.push_back(line);
  return retvals;
}

// The child's side of ten_thousand_sleeps_by_hand_cold.
int run_by_hand_cold()
{
  (void)get_event_loop(); // made before the timer starts, as for every row
  double seconds = 0;
  const values retvals = ten_thousand_sleeps_by_hand("by hand, cold heap", seconds);
  std::printf("%.9g\n", seconds);
  for (const auto& v : retvals)
    std::printf("%s\n", v.c_str());
  return std::fflush(stdout) == 0 ? 0 : 1;
}

// Beyond the post: twenty one-unit sleeps through a window of five.
values twenty_sleeps_five_in_flight(const std::string& label, double& seconds)
{
  values retvals;
  {
    const fanout::timer t(label, into(seconds));
    std::vector<coroutine_function> tasks(20, b);
    retvals = fanout::run(get_event_loop(), fanout::async_map({.max_concurrency = 5}, apply, tasks));
  }
  return retvals;
}

// Beyond the post: streaming. Five items that take 1, 2, 3, 4 and 5 units;
// async_map_stream hands out the first result, in input order, after one
// unit while the others still run (the row times just that; the rest of the
// map is cancelled when the stream goes out of scope).
asio::awaitable<std::string> b_for(int units)
{
  co_await fanout::sleep(unit * units);
  co_return "b";
}

values first_of_a_stream(const std::string& label, double& seconds)
{
  values retvals;
  const std::vector<int> units{1, 2, 3, 4, 5};
  auto stream = fanout::async_map_stream(b_for, units);
  {
    const fanout::timer t(label, into(seconds));
    if (auto first = fanout::run(get_event_loop(), stream.next()))
      retvals.push_back(*first);
  }
  stream.cancel(); // the other four are not needed: cancel them and wait for them to end
  try {
    while (fanout::run(get_event_loop(), stream.next())) {
    }
  } catch (const boost::system::system_error&) {
    // operation_aborted, as asked
  }
  return retvals;
}

// Beyond the post: a pipeline. 10,000 inputs through three chained stages,
// each with a window of 100: stage 1 waits a tenth of a unit per item (a
// fetch), stage 2 is a plain call (a parse), stage 3 a coroutine that yields
// once (a store). The ideal keeps stage 1's window full: 10,000 / 100 waits
// of a tenth of a unit, 10 units. Values: the inputs, in input order.
values three_stage_pipeline(const std::string& label, double& seconds)
{
  std::vector<int> inputs(10'000);
  for (std::size_t i = 0; i < inputs.size(); ++i)
    inputs[i] = static_cast<int>(i);
  const auto wait = unit / 10;
  values retvals;
  {
    const fanout::timer t(label, into(seconds));
    retvals = fanout::run(get_event_loop(), [&]() -> asio::awaitable<values> {
      auto fetched = fanout::async_map_stream(
          {.max_concurrency = 100},
          [wait](int i) -> asio::awaitable<int> {
            co_await fanout::sleep(wait);
            co_return i;
          },
          inputs);
      auto parsed = fanout::async_map_stream(
          {.max_concurrency = 100}, [](int i) { return std::to_string(i); }, fetched);
      co_return co_await fanout::async_map(
          {.max_concurrency = 100},
          [](std::string& text) -> asio::awaitable<std::string> {
            co_await asio::post(asio::use_awaitable);
            co_return std::move(text);
          },
          parsed);
    }());
  }
  return retvals;
}

// An item that gives "b" at once.
asio::awaitable<std::string> instant_b()
{
  co_return "b";
}

// Beyond the post: a rate limit. 100 calls at 20 per unit with a burst of 5:
// the first five at once, then one every twentieth of a unit, 95/20 units.
values hundred_calls_at_twenty_per_unit(const std::string& label, double& seconds)
{
  values retvals;
  {
    const fanout::timer t(label, into(seconds));
    fanout::rate_limiter rate(20, unit, 5);
    std::vector<coroutine_function> tasks(100, instant_b);
    retvals = fanout::run(get_event_loop(), fanout::async_map({.rate = &rate}, apply, tasks));
  }
  return retvals;
}

// Beyond the post: retries. Five items that fail at once on their first two
// attempts and, on the third, wait a unit and give "b"; backoff of half a
// unit doubling, no jitter: 0.5 + 1 + 1 = 2.5 units.
values flaky_items(const std::string& label, double& seconds)
{
  values retvals;
  std::vector<int> attempts(5, 0);
  {
    const fanout::timer t(label, into(seconds));
    const fanout::backoff policy{.initial = unit / 2, .factor = 2, .jitter = 0, .max_attempts = 3};
    retvals = fanout::run(get_event_loop(), fanout::async_map(
                                                {.retry = policy},
                                                [](int& attempt) -> asio::awaitable<std::string> {
                                                  if (++attempt < 3)
                                                    throw std::runtime_error("flaky");
                                                  co_return co_await b();
                                                },
                                                attempts));
  }
  return retvals;
}

values numbered(std::size_t n)
{
  values out;
  out.reserve(n);
  for (std::size_t i = 0; i < n; ++i)
    out.push_back(std::to_string(i));
  return out;
}

// ---------------------------------------------------------------------------
// The table.

// A run timed right after its row, printed under it.
struct follow_up
{
  std::string_view label; // in the table's row column
  std::string_view key;   // in json and csv
  std::string_view note;  // in the table's last column
  values (*run)(const std::string& label, double& seconds);
};

struct row
{
  std::string_view name;
  double ideal_units;                 // at the one-second unit
  std::optional<double> post_seconds; // the post's figure, unscaled
  values (*run)(const std::string& label, double& seconds);
  values expected;
  bool offloads = false; // uses fanout's blocking pool
  // Runs that follow the row and put its figure in context (row 10).
  std::vector<struct follow_up> follow_ups = {};
};

values repeat(std::string_view value, std::size_t n)
{
  return values(n, std::string(value));
}

std::vector<row> all_rows()
{
  std::vector<row> rows;
  rows.push_back({"Normal synchronous code", 5, 5.005340099334717, normal_synchronous_code, repeat("a", 5)});
  rows.push_back(
      {"Using asynchronous code synchronously", 5, 5.007107496261597, asynchronous_code_synchronously, repeat("b", 5)});
  rows.push_back(
      {"Separate function call, and code running", 5, 5.006737232208252, separate_call_and_running, repeat("b", 5)});
  rows.push_back({"Briefer concurrency with map", 1, 1.002532958984375, briefer_concurrency_with_map, repeat("b", 5)});
  rows.push_back(
      {"Async map, not using the event loop directly", 1, 1.0016822814941406, async_map_coroutines, repeat("b", 5)});
  rows.push_back(
      {"It still works with synchronous functions", 5, 5.006326913833618, async_map_blocking, repeat("a", 5)});
  rows.push_back({"Mixin' it up", 3, 3.004204511642456, mixin_it_up, {"b", "a", "b", "a", "b"}});
  rows.push_back({"Mixin' it up, blocking calls offloaded",
                  1,
                  std::nullopt,
                  mixin_it_up_offloaded,
                  {"b", "a", "b", "a", "b"},
                  true});
  rows.push_back({"It still works with synchronous functions, offloaded", 1, std::nullopt, blocking_offloaded,
                  repeat("a", 5), true});
  rows.push_back(
      {"10,000 concurrent sleeps",
       1,
       std::nullopt,
       ten_thousand_sleeps,
       repeat("b", 10'000),
       false,
       {{"  again, warm heap", "again_seconds", "(row 10 rerun: its memory already touched)", ten_thousand_sleeps},
        {"  by hand, warm heap", "by_hand_seconds", "(plain Asio, one co_spawn of the same item each, no async_map)",
         ten_thousand_sleeps_by_hand},
        {"  by hand, cold heap", "by_hand_cold_seconds",
         "(the same, in a fresh process: memory as untouched as row 10's)", ten_thousand_sleeps_by_hand_cold}}});
  rows.push_back({"20 sleeps, at most 5 in flight", 4, std::nullopt, twenty_sleeps_five_in_flight, repeat("b", 20)});
  rows.push_back(
      {"Streaming: the first of 5 results (1 to 5 units) in hand", 1, std::nullopt, first_of_a_stream, repeat("b", 1)});
  rows.push_back(
      {"100 calls at 20 per unit, burst 5", 4.75, std::nullopt, hundred_calls_at_twenty_per_unit, repeat("b", 100)});
  rows.push_back({"Flaky items: each succeeds on its third try", 2.5, std::nullopt, flaky_items, repeat("b", 5)});
  rows.push_back(
      {"Three-stage pipeline, 10,000 items, windows of 100", 10, std::nullopt, three_stage_pipeline, numbered(10'000)});
  return rows;
}

struct result
{
  std::size_t number; // 1-based, in the full table
  const row* spec;
  double ideal_seconds;
  double measured_seconds = 0;
  bool correct = false;
  std::vector<std::optional<double>> follow_up_seconds; // one per spec->follow_ups; empty if wrong values
};

// ---------------------------------------------------------------------------
// Number and string formatting.

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

std::string pad_left(std::string s, std::size_t width)
{
  if (s.size() < width)
    s.insert(0, width - s.size(), ' ');
  return s;
}

// ---------------------------------------------------------------------------
// Output formats.

enum class format { table, json, csv };

// Relative distance from the ideal, in percent.
double overshoot_percent(double measured, double ideal)
{
  return (measured - ideal) / ideal * 100.0;
}

std::string signed_text(double x, int decimals)
{
  std::array<char, 64> text{};
  const int n = std::snprintf(text.data(), text.size(), "%+.*f", decimals, x);
  return {text.data(), n > 0 ? static_cast<std::size_t>(n) : 0};
}

// The post's distance from its ideal, in seconds (its figures are at the
// one-second unit).
double post_overshoot(const row& r)
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

class table_printer
{
public:
  table_printer(double scale, std::size_t name_width) : scale_(scale), name_width_(name_width) {}

  void header() const
  {
    std::cout << "fanout-bench: the post's table, unit " << rounded(scale_) << " s (--scale " << rounded(scale_)
              << ")\n\n";
    const std::string line =
        pad_left("#", number_width) + gap + pad_right("row", name_width_) + gap + pad_left("ideal (s)", seconds_width) +
        gap + pad_left("the post (s)", seconds_width) + gap + pad_left("fanout (s)", seconds_width) + gap +
        pad_left("overshoot", ms_width + 1 + percent_width) + gap + "closer to ideal than the post";
    std::cout << line << '\n' << std::string(line.size(), '-') << '\n';
    std::cout.flush();
  }

  // Like the timer's label line: printed before the row runs.
  void begin(const result& r) const
  {
    std::cout << pad_left(std::to_string(r.number), number_width) << gap
              << pad_right(std::string(r.spec->name), name_width_) << gap
              << pad_left(fixed(r.ideal_seconds, 6), seconds_width) << gap
              << pad_left(r.spec->post_seconds ? fixed(*r.spec->post_seconds, 6) : "-", seconds_width) << gap;
    std::cout.flush();
  }

  // Like the timer's elapsed line: printed when the row is done.
  void end(const result& r) const
  {
    const double over = r.measured_seconds - r.ideal_seconds;
    std::cout << pad_left(fixed(r.measured_seconds, 6), seconds_width) << gap
              << pad_left(signed_text(over * 1000.0, 3) + " ms", ms_width) << ' '
              << pad_left(signed_text(overshoot_percent(r.measured_seconds, r.ideal_seconds), 3) + "%", percent_width)
              << gap;
    if (!r.correct) {
      std::cout << "WRONG VALUES";
    } else if (r.spec->post_seconds) {
      std::cout << (closer_than_post(r) ? "yes" : "no ") << " (" << signed_text(over * 1000.0, 3) << " ms vs "
                << signed_text(post_overshoot(*r.spec) * 1000.0, 3) << " ms)";
    } else {
      std::cout << "-";
    }
    std::cout << '\n';
    std::cout.flush();
  }

  // A follow-up run, on a line of its own under its row.
  void begin_follow_up(const result& r, const follow_up& f) const
  {
    std::cout << pad_left("", number_width) << gap << pad_right(std::string(f.label), name_width_) << gap
              << pad_left(fixed(r.ideal_seconds, 6), seconds_width) << gap << pad_left("-", seconds_width) << gap;
    std::cout.flush();
  }

  void end_follow_up(const result& r, const follow_up& f, std::optional<double> seconds) const
  {
    if (!seconds) {
      std::cout << pad_left("-", seconds_width) << gap << "WRONG VALUES\n";
      return;
    }
    const double over = *seconds - r.ideal_seconds;
    std::cout << pad_left(fixed(*seconds, 6), seconds_width) << gap
              << pad_left(signed_text(over * 1000.0, 3) + " ms", ms_width) << ' '
              << pad_left(signed_text(overshoot_percent(*seconds, r.ideal_seconds), 3) + "%", percent_width) << gap
              << f.note << '\n';
    std::cout.flush();
  }

  void footer(const std::vector<result>& results) const
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
    std::cout << '\n' << results.size() << (results.size() == 1 ? " row, " : " rows, ");
    if (wrong == 0)
      std::cout << "all values correct";
    else
      std::cout << wrong << " with WRONG VALUES";
    std::cout << "; largest distance from the ideal " << fixed(worst, 3) << "%";
    if (compared != 0)
      std::cout << "; closer to the ideal than the post in " << closer << " of " << compared;
    std::cout << '\n';
    if (compared != 0 && scale_ != 1.0)
      std::cout << "(the post's figures are at its 1 s unit; \"closer\" compares the time spent beyond the ideal)\n";
  }

private:
  static constexpr std::size_t number_width = 3;
  static constexpr std::size_t seconds_width = 12;
  static constexpr std::size_t ms_width = 12;
  static constexpr std::size_t percent_width = 9;
  static constexpr const char* gap = "  ";

  double scale_;
  std::size_t name_width_;
};

void print_json(double scale, const std::vector<result>& results)
{
  std::cout << "{\"scale\": " << shortest(scale) << ", \"rows\": [";
  bool first = true;
  for (const auto& r : results) {
    std::cout << (first ? "\n  " : ",\n  ") << "{\"name\": " << json_string(r.spec->name)
              << ", \"ideal_seconds\": " << rounded(r.ideal_seconds)
              << ", \"post_seconds\": " << (r.spec->post_seconds ? shortest(*r.spec->post_seconds) : "null")
              << ", \"measured_seconds\": " << shortest(r.measured_seconds);
    for (std::size_t k = 0; k < r.spec->follow_ups.size(); ++k)
      std::cout << ", " << json_string(r.spec->follow_ups[k].key) << ": "
                << (r.follow_up_seconds[k] ? shortest(*r.follow_up_seconds[k]) : "null");
    std::cout << "}";
    first = false;
  }
  std::cout << (results.empty() ? "]}\n" : "\n]}\n");
}

void print_csv(const std::vector<result>& results)
{
  // One column per follow-up key, in order of appearance.
  std::vector<std::string_view> keys;
  for (const auto& r : results)
    for (const auto& f : r.spec->follow_ups)
      if (std::find(keys.begin(), keys.end(), f.key) == keys.end())
        keys.push_back(f.key);
  std::cout << "name,ideal_seconds,post_seconds,measured_seconds";
  for (const auto key : keys)
    std::cout << ',' << key;
  std::cout << '\n';
  for (const auto& r : results) {
    std::cout << csv_field(r.spec->name) << ',' << rounded(r.ideal_seconds) << ','
              << (r.spec->post_seconds ? shortest(*r.spec->post_seconds) : "") << ',' << shortest(r.measured_seconds);
    for (const auto key : keys) {
      std::cout << ',';
      for (std::size_t k = 0; k < r.spec->follow_ups.size(); ++k)
        if (r.spec->follow_ups[k].key == key && r.follow_up_seconds[k])
          std::cout << shortest(*r.follow_up_seconds[k]);
    }
    std::cout << '\n';
  }
}

// ---------------------------------------------------------------------------
// Command line.

struct options
{
  double scale = 1.0;
  format fmt = format::table;
  std::optional<std::string> filter;
  bool help = false;
  bool by_hand_cold = false; // hidden: the child of row 10's cold by-hand line
};

void usage(std::ostream& out, const std::vector<row>& rows)
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
    out << pad_left(std::to_string(i + 1), 4) << "  " << rows[i].name << '\n';
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
    out += (k == 0 ? "" : ", ") + json_string(v[k]);
  out += v.size() > 10 ? ", ...] (" : "] (";
  return out + std::to_string(v.size()) + (v.size() == 1 ? " value)" : " values)");
}

int run_bench(const options& o, const std::vector<row>& rows)
{
  unit = std::chrono::round<std::chrono::nanoseconds>(std::chrono::duration<double>(o.scale));

  std::vector<result> results;
  for (std::size_t i = 0; i < rows.size(); ++i)
    if (!o.filter || rows[i].name.find(*o.filter) != std::string_view::npos)
      results.push_back({i + 1, &rows[i], rows[i].ideal_units * o.scale, 0, false, {}});
  if (results.empty()) {
    std::cerr << "fanout-bench: no row matches --filter '" << *o.filter << "'\n\n";
    usage(std::cerr, rows);
    return 2;
  }

  // The default event loop, then the blocking pool (in that order: see
  // get_event_loop), made before any row is timed, so that no row times the
  // creation of a loop or of the pool's threads.
  (void)get_event_loop();
  if (std::any_of(results.begin(), results.end(), [](const result& r) { return r.spec->offloads; }))
    (void)fanout::blocking_executor();

  std::size_t name_width = 3;
  for (const auto& r : results) {
    name_width = std::max(name_width, r.spec->name.size());
    for (const auto& f : r.spec->follow_ups)
      name_width = std::max(name_width, f.label.size());
  }
  const table_printer table(o.scale, name_width);
  if (o.fmt == format::table)
    table.header();

  bool all_correct = true;
  for (auto& r : results) {
    if (o.fmt == format::table)
      table.begin(r);
    std::string failure;
    try {
      const values got = r.spec->run(std::string(r.spec->name), r.measured_seconds);
      r.correct = got == r.spec->expected;
      if (!r.correct)
        failure = "got " + describe(got) + ", expected " + describe(r.spec->expected);
    } catch (const std::exception& e) {
      r.correct = false;
      failure = std::string("threw: ") + e.what();
    }
    if (o.fmt == format::table)
      table.end(r);
    if (!r.correct) {
      all_correct = false;
      std::cerr << "fanout-bench: row " << r.number << " \"" << r.spec->name << "\": wrong values: " << failure << '\n';
    }
    for (const auto& f : r.spec->follow_ups) {
      if (o.fmt == format::table)
        table.begin_follow_up(r, f);
      double seconds = 0;
      std::optional<double> measured;
      try {
        const values got = f.run(std::string(r.spec->name) + "," + std::string(f.label), seconds);
        if (got == r.spec->expected)
          measured = seconds;
        else
          failure = "got " + describe(got);
      } catch (const std::exception& e) {
        failure = std::string("threw: ") + e.what();
      }
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
    print_json(o.scale, results);
    break;
  case format::csv:
    print_csv(results);
    break;
  }
  std::cout.flush();
  return all_correct ? 0 : 1;
}

} // namespace

int main(int argc, char** argv)
{
  const std::vector<row> rows = all_rows();
  const auto parsed = parse(argc, argv);
  if (const auto* error = std::get_if<std::string>(&parsed)) {
    std::cerr << "fanout-bench: " << *error << "\n\n";
    usage(std::cerr, rows);
    return 2;
  }
  const auto& o = std::get<options>(parsed);
  if (o.help) {
    usage(std::cout, rows);
    return 0;
  }
  unit = std::chrono::round<std::chrono::nanoseconds>(std::chrono::duration<double>(o.scale));
  if (o.by_hand_cold)
    return run_by_hand_cold();
  char scale[64];
  std::snprintf(scale, sizeof scale, "%.17g", o.scale);
  // Resolved here: in the shell popen starts, /proc/self is the shell.
  std::error_code ec;
  const auto self = std::filesystem::read_symlink("/proc/self/exe", ec);
  self_command = "'" + (ec ? std::string(argv[0]) : self.string()) + "' --scale " + scale;
  return run_bench(o, rows);
}
