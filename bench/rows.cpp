// The rows beyond the post. Each runs exactly what its timer block holds on
// the post's event loop (made, like fanout's blocking pool, before any row is
// timed) and gives its values, which the table checks.
#include "rows.hpp"

#include <fanout/async_map.hpp>
#include <fanout/callable.hpp>
#include <fanout/map_stream.hpp>
#include <fanout/rate_limiter.hpp>
#include <fanout/retry.hpp>
#include <fanout/run.hpp>
#include <fanout/sleep.hpp>

#include <boost/asio/awaitable.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/system/system_error.hpp>

#include <array>
#include <chrono>
#include <cmath>
#include <cstddef>
#include <cstdio>
#include <exception>
#include <iostream>
#include <sstream>
#include <stdexcept>
#include <utility>

namespace bench {

namespace {

namespace asio = boost::asio;
using post::apply;
using post::function_a;
using post::function_b;

// The row's timer: records into s.record.
fanout::timer timer(const post::setting& s)
{
  return fanout::timer("", s.record);
}

// Beyond the post: five blocking calls, offloaded.
values blocking_offloaded(const post::setting& s)
{
  const function_a a(s);
  const auto t = timer(s);
  std::vector<function_a> tasks(5, a);
  return fanout::run(s.loop, fanout::async_map({.blocking = fanout::blocking_policy::offload}, apply, tasks));
}

// Beyond the post: ten thousand coroutines sleeping one unit each, at once.
values ten_thousand_sleeps(const post::setting& s)
{
  const function_b b(s);
  const auto t = timer(s);
  std::vector<function_b> tasks(10'000, b);
  return fanout::run(s.loop, fanout::async_map(apply, tasks));
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
values ten_thousand_sleeps_by_hand(const post::setting& s)
{
  const function_b b(s);
  auto& loop = s.loop;
  values retvals;
  const auto t = timer(s);
  std::vector<function_b> tasks(10'000, b);
  retvals.resize(tasks.size());
  std::size_t left = tasks.size();
  if (loop.stopped()) // fanout::run leaves it so once it ran out of work
    loop.restart();
  asio::co_spawn(
      loop,
      [&]() -> asio::awaitable<void> {
        for (std::size_t i = 0; i < tasks.size(); ++i)
          asio::co_spawn(loop, apply(tasks[i]), [&, i](std::exception_ptr e, std::string v) {
            if (!e)
              retvals[i] = std::move(v);
            --left;
          });
        co_return;
      },
      asio::detached);
  while (left != 0)
    loop.run_one(); // cannot run out of work before the last sleep ends
  return retvals;
}

// The by-hand line again, cold: run in a fresh process of this program (its
// hidden option --by-hand-cold), so that its memory is as untouched as row
// 10's is when the row runs. The child prints its seconds, then its values,
// one per line; they are checked here like any row's.
values ten_thousand_sleeps_by_hand_cold(const std::string& self_command, const post::setting& s)
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
  double seconds = 0;
  if (!std::getline(lines, line) || (seconds = std::stod(line), !std::isfinite(seconds)))
    throw std::runtime_error("'" + command + "' printed no seconds");
  s.record("", std::chrono::duration<double>(seconds));
  values retvals;
  while (std::getline(lines, line))
    retvals.push_back(line);
  return retvals;
}

// Beyond the post: twenty one-unit sleeps through a window of five.
values twenty_sleeps_five_in_flight(const post::setting& s)
{
  const function_b b(s);
  const auto t = timer(s);
  std::vector<function_b> tasks(20, b);
  return fanout::run(s.loop, fanout::async_map({.max_concurrency = 5}, apply, tasks));
}

// Beyond the post: streaming. Five items that take 1, 2, 3, 4 and 5 units;
// async_map_stream hands out the first result, in input order, after one
// unit while the others still run (the row times just that; the rest of the
// map is cancelled when the stream goes out of scope).
asio::awaitable<std::string> b_after(std::chrono::nanoseconds wait)
{
  co_await fanout::sleep(wait);
  co_return "b";
}

values first_of_a_stream(const post::setting& s)
{
  values retvals;
  const std::vector<std::chrono::nanoseconds> waits{1 * s.unit, 2 * s.unit, 3 * s.unit, 4 * s.unit, 5 * s.unit};
  auto stream = fanout::async_map_stream(b_after, waits);
  {
    const auto t = timer(s);
    if (auto first = fanout::run(s.loop, stream.next()))
      retvals.push_back(*first);
  }
  stream.cancel(); // the other four are not needed: cancel them and wait for them to end
  try {
    while (fanout::run(s.loop, stream.next())) {
    }
  } catch (const boost::system::system_error&) {
    // operation_aborted, as asked
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
values hundred_calls_at_twenty_per_unit(const post::setting& s)
{
  const auto t = timer(s);
  fanout::rate_limiter rate(20, s.unit, 5);
  std::vector<asio::awaitable<std::string> (*)()> tasks(100, instant_b);
  return fanout::run(s.loop, fanout::async_map({.rate = &rate}, apply, tasks));
}

// An item that fails at once on its first two attempts and is b() on its third.
asio::awaitable<std::string> flaky_b(int& attempt, function_b b)
{
  if (++attempt < 3)
    throw std::runtime_error("flaky");
  co_return co_await b();
}

// Beyond the post: retries. Five flaky items; backoff of half a unit
// doubling, no jitter: 0.5 + 1 + 1 = 2.5 units.
values flaky_items(const post::setting& s)
{
  const function_b b(s);
  std::vector<int> attempts(5, 0);
  const auto t = timer(s);
  const fanout::backoff policy{.initial = s.unit / 2, .factor = 2, .jitter = 0, .max_attempts = 3};
  return fanout::run(s.loop, fanout::async_map(
                                 {.retry = policy}, [b](int& attempt) { return flaky_b(attempt, b); }, attempts));
}

// Beyond the post: a pipeline. 10,000 inputs through three chained stages,
// each with a window of 100: stage 1 waits a tenth of a unit per item (a
// fetch), stage 2 is a plain call (a parse), stage 3 a coroutine that yields
// once (a store). The ideal keeps stage 1's window full: 10,000 / 100 waits
// of a tenth of a unit, 10 units. Values: the inputs, in input order.
values three_stage_pipeline(const post::setting& s)
{
  std::vector<int> inputs(10'000);
  for (std::size_t i = 0; i < inputs.size(); ++i)
    inputs[i] = static_cast<int>(i);
  const auto wait = s.unit / 10;
  const auto t = timer(s);
  return fanout::run(s.loop, [&]() -> asio::awaitable<values> {
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

values repeat(std::string_view value, std::size_t n)
{
  return values(n, std::string(value));
}

values numbered(std::size_t n)
{
  values out;
  out.reserve(n);
  for (std::size_t i = 0; i < n; ++i)
    out.push_back(std::to_string(i));
  return out;
}

} // namespace

std::vector<row_spec> all_rows(std::string self_command)
{
  std::vector<row_spec> rows;
  for (const auto& r : post::rows())
    rows.push_back({.name = r.name,
                    .ideal_units = r.ideal_units,
                    .post_seconds = r.post_seconds,
                    .run = r.run,
                    .expected = r.expected,
                    .offloads = r.offloads});
  rows.push_back({.name = "It still works with synchronous functions, offloaded",
                  .ideal_units = 1,
                  .run = blocking_offloaded,
                  .expected = repeat("a", 5),
                  .offloads = true});
  rows.push_back({.name = "10,000 concurrent sleeps",
                  .ideal_units = 1,
                  .run = ten_thousand_sleeps,
                  .expected = repeat("b", 10'000),
                  .follow_ups = {{.label = "  again, warm heap",
                                  .key = "again_seconds",
                                  .note = "(row 10 rerun: its memory already touched)",
                                  .run = ten_thousand_sleeps},
                                 {.label = "  by hand, warm heap",
                                  .key = "by_hand_seconds",
                                  .note = "(plain Asio, one co_spawn of the same item each, no async_map)",
                                  .run = ten_thousand_sleeps_by_hand},
                                 {.label = "  by hand, cold heap",
                                  .key = "by_hand_cold_seconds",
                                  .note = "(the same, in a fresh process: memory as untouched as row 10's)",
                                  .run = [self_command = std::move(self_command)](const post::setting& s) {
                                    return ten_thousand_sleeps_by_hand_cold(self_command, s);
                                  }}}});
  rows.push_back({.name = "20 sleeps, at most 5 in flight",
                  .ideal_units = 4,
                  .run = twenty_sleeps_five_in_flight,
                  .expected = repeat("b", 20)});
  rows.push_back({.name = "Streaming: the first of 5 results (1 to 5 units) in hand",
                  .ideal_units = 1,
                  .run = first_of_a_stream,
                  .expected = repeat("b", 1)});
  rows.push_back({.name = "100 calls at 20 per unit, burst 5",
                  .ideal_units = 4.75,
                  .run = hundred_calls_at_twenty_per_unit,
                  .expected = repeat("b", 100)});
  rows.push_back({.name = "Flaky items: each succeeds on its third try",
                  .ideal_units = 2.5,
                  .run = flaky_items,
                  .expected = repeat("b", 5)});
  rows.push_back({.name = "Three-stage pipeline, 10,000 items, windows of 100",
                  .ideal_units = 10,
                  .run = three_stage_pipeline,
                  .expected = numbered(10'000)});
  return rows;
}

int run_by_hand_cold(std::chrono::nanoseconds unit)
{
  double seconds = 0;
  const post::setting s{
      .unit = unit,
      .loop = post::get_event_loop(), // made before the timer starts, as for every row
      .out = std::cout,
      .record = [&seconds](std::string_view, std::chrono::duration<double> elapsed) { seconds = elapsed.count(); }};
  const values retvals = ten_thousand_sleeps_by_hand(s);
  std::printf("%.9g\n", seconds);
  for (const auto& v : retvals)
    std::printf("%s\n", v.c_str());
  return std::fflush(stdout) == 0 ? 0 : 1;
}

} // namespace bench
