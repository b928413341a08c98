// fanout-memory — memory of a long bounded map and the precision of sleep,
// printed as one JSON object.
//
//   fanout-memory [--smoke] [--n N] [--window W] [--sleep-ms MS] [--samples K]
//
// 1. Lazy window: fanout::async_map over N = 10^7 inputs drawn from a lazy
//    range (a counting input iterator: nothing is materialised), window
//    W = 1,000, items returning void. Each case runs in a child process of its
//    own, which reports its peak resident set (getrusage ru_maxrss) along with
//    the resident set it started with. Two cases:
//      - "trivial":  the item completes without suspending, so one worker
//                    goes through the inputs;
//      - "yielding": the item yields to the executor once (co_await
//                    asio::post), so the window fills up: W workers in flight.
//    And a pipeline: the same N inputs through three chained stages (two
//    async_map_stream stages, the second reading the first, and an
//    async_map reading the second), each with a window of 100; the last
//    stage checks that the values arrive in input order.
// 2. Sleep overshoot: K = 20 sequential fanout::sleep(50 ms) on an io_context;
//    the median and maximum of (measured - requested).
//
// --smoke: N = 10^4 and 3 sleeps of 5 ms (for CI; nothing is judged).
// Exit status: 1 if a map did not see every input exactly once, or failed.

#include <fanout/async_map.hpp>
#include <fanout/map_options.hpp>
#include <fanout/map_stream.hpp>
#include <fanout/run.hpp>
#include <fanout/sleep.hpp>

#include <boost/asio/awaitable.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <iterator>
#include <ranges>
#include <stdexcept>
#include <string>
#include <vector>

namespace {

namespace asio = boost::asio;

// The integers [0, n), one at a time: a single-pass input range whose
// iterator computes each value on dereference.
class counting_range
{
public:
  class iterator
  {
  public:
    using iterator_concept = std::input_iterator_tag;
    using iterator_category = std::input_iterator_tag;
    using value_type = std::int64_t;
    using difference_type = std::ptrdiff_t;

    iterator() = default;
    explicit iterator(std::int64_t i) : i_(i) {}
    value_type operator*() const { return i_; }
    iterator& operator++()
    {
      ++i_;
      return *this;
    }
    void operator++(int) { ++i_; }
    friend bool operator==(const iterator&, const iterator&) = default;

  private:
    std::int64_t i_ = 0;
  };

  explicit counting_range(std::int64_t n) : n_(n) {}
  iterator begin() const { return iterator(0); }
  iterator end() const { return iterator(n_); }

private:
  std::int64_t n_;
};

static_assert(std::ranges::input_range<counting_range>);
static_assert(!std::ranges::forward_range<counting_range>);

// What each item does with its input: counted and summed, so that the run
// proves every input was seen exactly once. One thread runs the io_context.
struct tally
{
  std::int64_t items = 0;
  std::int64_t sum = 0;
};
tally seen;

long max_rss_kib()
{
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  return usage.ru_maxrss; // KiB on Linux
}

// What a child reports to its parent.
struct window_report
{
  long start_rss_kib = 0;
  long peak_rss_kib = 0;
  double seconds = 0;
  std::int64_t items = 0;
  std::int64_t sum = 0;
  int failed = 0;
};

template <typename F>
window_report run_window_case(std::int64_t n, std::size_t window, F item)
{
  window_report r;
  r.start_rss_kib = max_rss_kib();
  asio::io_context ctx(1);
  fanout::declare_single_threaded(ctx);
  const auto t0 = std::chrono::steady_clock::now();
  asio::co_spawn(ctx, fanout::async_map({.max_concurrency = window}, item, counting_range(n)),
                 [&](std::exception_ptr e) { r.failed = e ? 1 : 0; });
  ctx.run();
  r.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  r.peak_rss_kib = max_rss_kib();
  r.items = seen.items;
  r.sum = seen.sum;
  return r;
}

// Three chained stages of window @p window over the N inputs; @p item is
// the last stage's.
template <typename F>
window_report run_pipeline_case(std::int64_t n, std::size_t window, F item)
{
  window_report r;
  r.start_rss_kib = max_rss_kib();
  asio::io_context ctx(1);
  fanout::declare_single_threaded(ctx);
  const auto t0 = std::chrono::steady_clock::now();
  auto pipeline = [](std::int64_t count, std::size_t w, F last) -> asio::awaitable<void> {
    auto first = fanout::async_map_stream(
        {.max_concurrency = w}, [](std::int64_t i) -> asio::awaitable<std::int64_t> { co_return i; },
        counting_range(count));
    auto second = fanout::async_map_stream(
        {.max_concurrency = w}, [](std::int64_t i) -> asio::awaitable<std::int64_t> { co_return i; }, first);
    co_await fanout::async_map({.max_concurrency = w}, last, second);
  };
  asio::co_spawn(ctx, pipeline(n, window, item), [&](std::exception_ptr e) { r.failed = e ? 1 : 0; });
  ctx.run();
  r.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  r.peak_rss_kib = max_rss_kib();
  r.items = seen.items;
  r.sum = seen.sum;
  return r;
}

// Runs @p run(n, window, item) in a forked child (so that each peak is its
// own) and reads its report from a pipe. Forked before any thread exists.
template <typename Run, typename F>
window_report in_child(Run run, std::int64_t n, std::size_t window, F item)
{
  int fds[2];
  if (pipe(fds) != 0) {
    std::perror("pipe");
    std::exit(1);
  }
  const pid_t pid = fork();
  if (pid < 0) {
    std::perror("fork");
    std::exit(1);
  }
  if (pid == 0) {
    close(fds[0]);
    window_report r;
    try {
      r = run(n, window, item);
    } catch (...) {
      r.failed = 1;
    }
    const auto written = write(fds[1], &r, sizeof r);
    _exit(written == static_cast<ssize_t>(sizeof r) ? 0 : 1);
  }
  close(fds[1]);
  window_report r;
  r.failed = 1;
  window_report got;
  if (read(fds[0], &got, sizeof got) == static_cast<ssize_t>(sizeof got))
    r = got;
  close(fds[0]);
  int status = 0;
  waitpid(pid, &status, 0);
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
    r.failed = 1;
  return r;
}

struct sleep_report
{
  double median_ms = 0;
  double max_ms = 0;
  double min_ms = 0;
};

sleep_report measure_sleep(std::chrono::milliseconds duration, int samples)
{
  std::vector<double> overshoot_ms;
  asio::io_context ctx(1);
  fanout::declare_single_threaded(ctx);
  asio::co_spawn(
      ctx,
      [&]() -> asio::awaitable<void> {
        for (int k = 0; k < samples; ++k) {
          const auto t0 = fanout::clock::now();
          co_await fanout::sleep(duration);
          const auto late = fanout::clock::now() - t0 - duration;
          overshoot_ms.push_back(std::chrono::duration<double, std::milli>(late).count());
        }
      },
      asio::detached);
  ctx.run();
  std::sort(overshoot_ms.begin(), overshoot_ms.end());
  sleep_report r;
  if (overshoot_ms.empty())
    return r;
  const std::size_t m = overshoot_ms.size();
  r.median_ms = m % 2 == 1 ? overshoot_ms[m / 2] : (overshoot_ms[m / 2 - 1] + overshoot_ms[m / 2]) / 2;
  r.min_ms = overshoot_ms.front();
  r.max_ms = overshoot_ms.back();
  return r;
}

bool window_ok(const window_report& r, std::int64_t n)
{
  return r.failed == 0 && r.items == n && r.sum == n * (n - 1) / 2;
}

void print_case(const char* name, const window_report& r, std::int64_t n, std::size_t window, bool last)
{
  std::printf("    {\"case\": \"%s\", \"n\": %lld, \"window\": %zu, \"ok\": %s, \"seconds\": %.3f, "
              "\"ns_per_item\": %.1f, \"start_rss_kib\": %ld, \"peak_rss_kib\": %ld, \"peak_rss_mib\": %.1f}%s\n",
              name, static_cast<long long>(n), window, window_ok(r, n) ? "true" : "false", r.seconds,
              n > 0 ? r.seconds * 1e9 / static_cast<double>(n) : 0.0, r.start_rss_kib, r.peak_rss_kib,
              static_cast<double>(r.peak_rss_kib) / 1024.0, last ? "" : ",");
}

} // namespace

int main(int argc, char** argv)
{
  std::int64_t n = 10'000'000;
  std::size_t window = 1000;
  long sleep_ms = 50;
  int samples = 20;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    const bool has_value = i + 1 < argc;
    if (arg == "--smoke") {
      n = 10'000;
      sleep_ms = 5;
      samples = 3;
    } else if (arg == "--n" && has_value) {
      n = std::atoll(argv[++i]);
    } else if (arg == "--window" && has_value) {
      window = static_cast<std::size_t>(std::atoll(argv[++i]));
    } else if (arg == "--sleep-ms" && has_value) {
      sleep_ms = std::atol(argv[++i]);
    } else if (arg == "--samples" && has_value) {
      samples = std::atoi(argv[++i]);
    } else {
      std::fprintf(stderr, "usage: fanout-memory [--smoke] [--n N] [--window W] [--sleep-ms MS] [--samples K]\n");
      return 2;
    }
  }

  const auto trivial = [](std::int64_t i) -> asio::awaitable<void> {
    ++seen.items;
    seen.sum += i;
    co_return;
  };
  const auto yielding = [](std::int64_t i) -> asio::awaitable<void> {
    co_await asio::post(asio::use_awaitable);
    ++seen.items;
    seen.sum += i;
  };
  // The last stage of the pipeline: counts, sums, and sees the inputs in order.
  const auto in_order = [](std::int64_t i) {
    if (i != seen.items)
      throw std::runtime_error("out of order");
    ++seen.items;
    seen.sum += i;
  };
  constexpr std::size_t stage_window = 100;
  const auto window_case = [](std::int64_t count, std::size_t w, auto f) { return run_window_case(count, w, f); };
  const auto pipeline_case = [](std::int64_t count, std::size_t w, auto f) { return run_pipeline_case(count, w, f); };
  const window_report t = in_child(window_case, n, window, trivial);
  const window_report y = in_child(window_case, n, window, yielding);
  const window_report p = in_child(pipeline_case, n, stage_window, in_order);
  const sleep_report s = measure_sleep(std::chrono::milliseconds(sleep_ms), samples);

  const long peak = std::max({t.peak_rss_kib, y.peak_rss_kib, p.peak_rss_kib});
  std::printf("{\n  \"lazy_window\": [\n");
  print_case("trivial", t, n, window, false);
  print_case("yielding", y, n, window, false);
  print_case("pipeline_3_stages", p, n, stage_window, true);
  std::printf("  ],\n");
  std::printf("  \"sleep\": {\"requested_ms\": %ld, \"samples\": %d, \"median_overshoot_ms\": %.3f, "
              "\"min_overshoot_ms\": %.3f, \"max_overshoot_ms\": %.3f},\n",
              sleep_ms, samples, s.median_ms, s.min_ms, s.max_ms);
  std::printf("  \"targets\": {\"peak_rss_mib\": %.1f, \"peak_rss_below_64_mib\": %s, "
              "\"median_overshoot_below_0_5_ms\": %s}\n}\n",
              static_cast<double>(peak) / 1024.0, peak < 64 * 1024 ? "true" : "false",
              s.median_ms < 0.5 ? "true" : "false");
  return window_ok(t, n) && window_ok(y, n) && window_ok(p, n) ? 0 : 1;
}
