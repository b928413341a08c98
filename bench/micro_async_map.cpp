// fanout-micro — per-item cost of fanout::async_map beside hand-written Asio
// on the same executor, in the same binary (Google Benchmark).
//
//   fanout-micro [--smoke] [--max-n=N] [--offload-max-n=N] [Google Benchmark flags]
//
// Every item is the same trivial work, i -> i * 2, with the results collected
// in input order; each benchmark runs one map of N items (N = 10^3 ... 10^6)
// per iteration on a single-threaded io_context:
//
//   coro/...     a trivial coroutine: fanout::async_map unbounded and with
//                windows 1, 64 and 1,024; a hand-written co_spawn loop; a
//                ranged make_parallel_group of co_spawn(..., deferred).
//   inline/...   a trivial plain callable: async_map (run inline, the default),
//                a plain loop, and the same loop in a coroutine run on the
//                io_context the way each map is (the same harness cost).
//   sleep/...    a coroutine that first waits 5 ms on a steady_timer (items
//                that really suspend, each for the whole map): async_map
//                unbounded, the co_spawn loop (also with a cancellation slot
//                bound to each item, as fanout's are) and the parallel group. Timed
//                as the overshoot: the map's wall time minus the 5 ms, per
//                item (Google Benchmark's manual time), i.e. the cost of
//                starting, waking and collecting N suspended coroutines.
//   offload/...  the plain callable as a blocking call on fanout's pool:
//                async_map with blocking_policy::offload, and a co_spawn loop
//                and a parallel group whose coroutines co_await the same
//                fanout::async_to_thread (so the difference is the map).
//
// Counters: s/item (wall time per item), allocs/item and B/item (heap
// allocations and bytes allocated per item, counted by the operator new and
// aligned_alloc replacements below: Asio's recycling allocator gets its
// memory from aligned_alloc, not operator new).
//
// --smoke runs each benchmark once with N = 1 and 100 (for CI; never timed
// against anything); FANOUT_MICRO_SMOKE=1 in the environment does the same.
// --max-n=N drops the sizes above N (e.g. for valgrind). The offload/...
// benchmarks stop at N = 10^5 unless --offload-max-n=1000000: a million
// blocking calls through a 64-thread pool take about a minute per benchmark
// on two cores, which would triple the suite's run time. The exit status is
// 1 if any map gave wrong results.

#include <fanout/async_map.hpp>
#include <fanout/map_options.hpp>
#include <fanout/offload.hpp>
#include <fanout/run.hpp>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/cancellation_signal.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/deferred.hpp>
#include <boost/asio/experimental/parallel_group.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <benchmark/benchmark.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <functional>
#include <new>
#include <numeric>
#include <optional>
#include <string>
#include <utility>
#include <vector>

// ---------------------------------------------------------------------------
// Heap counting: every allocation the process makes, from any thread.

namespace heap {

std::atomic<std::uint64_t> allocations{0};
std::atomic<std::uint64_t> bytes{0};

inline void note(std::size_t size) noexcept
{
  allocations.fetch_add(1, std::memory_order_relaxed);
  bytes.fetch_add(size, std::memory_order_relaxed);
}

struct snapshot
{
  std::uint64_t allocations;
  std::uint64_t bytes;
};

inline snapshot now() noexcept
{
  return {allocations.load(std::memory_order_relaxed), bytes.load(std::memory_order_relaxed)};
}

} // namespace heap

// Asio's aligned_new (its recycling allocator, handlers, coroutine frames)
// calls std::aligned_alloc; this definition takes the place of the C
// library's in this executable. posix_memalign is a separate entry point of
// the C library, so forwarding to it does not recurse.
extern "C" void* aligned_alloc(std::size_t alignment, std::size_t size) noexcept
{
  heap::note(size);
  void* p = nullptr;
  if (alignment < sizeof(void*))
    alignment = sizeof(void*);
  if (posix_memalign(&p, alignment, size == 0 ? 1 : size) != 0)
    return nullptr;
  return p;
}

namespace {

void* counted_new(std::size_t size)
{
  heap::note(size);
  if (void* p = std::malloc(size == 0 ? 1 : size))
    return p;
  throw std::bad_alloc();
}

void* counted_new_aligned(std::size_t size, std::align_val_t alignment)
{
  const auto a = static_cast<std::size_t>(alignment);
  const std::size_t rounded = (size + a - 1) / a * a;
  if (void* p = aligned_alloc(a, rounded == 0 ? a : rounded))
    return p;
  throw std::bad_alloc();
}

} // namespace

void* operator new(std::size_t size)
{
  return counted_new(size);
}
void* operator new[](std::size_t size)
{
  return counted_new(size);
}
void* operator new(std::size_t size, const std::nothrow_t&) noexcept
{
  try {
    return counted_new(size);
  } catch (...) {
    return nullptr;
  }
}
void* operator new[](std::size_t size, const std::nothrow_t& tag) noexcept
{
  return ::operator new(size, tag);
}
void* operator new(std::size_t size, std::align_val_t alignment)
{
  return counted_new_aligned(size, alignment);
}
void* operator new[](std::size_t size, std::align_val_t alignment)
{
  return counted_new_aligned(size, alignment);
}
void* operator new(std::size_t size, std::align_val_t alignment, const std::nothrow_t&) noexcept
{
  try {
    return counted_new_aligned(size, alignment);
  } catch (...) {
    return nullptr;
  }
}
void* operator new[](std::size_t size, std::align_val_t alignment, const std::nothrow_t& tag) noexcept
{
  return ::operator new(size, alignment, tag);
}
void operator delete(void* p) noexcept
{
  std::free(p);
}
void operator delete[](void* p) noexcept
{
  std::free(p);
}
void operator delete(void* p, std::size_t) noexcept
{
  std::free(p);
}
void operator delete[](void* p, std::size_t) noexcept
{
  std::free(p);
}
void operator delete(void* p, const std::nothrow_t&) noexcept
{
  std::free(p);
}
void operator delete[](void* p, const std::nothrow_t&) noexcept
{
  std::free(p);
}
void operator delete(void* p, std::align_val_t) noexcept
{
  std::free(p);
}
void operator delete[](void* p, std::align_val_t) noexcept
{
  std::free(p);
}
void operator delete(void* p, std::size_t, std::align_val_t) noexcept
{
  std::free(p);
}
void operator delete[](void* p, std::size_t, std::align_val_t) noexcept
{
  std::free(p);
}
void operator delete(void* p, std::align_val_t, const std::nothrow_t&) noexcept
{
  std::free(p);
}
void operator delete[](void* p, std::align_val_t, const std::nothrow_t&) noexcept
{
  std::free(p);
}

namespace {

namespace asio = boost::asio;
using results = std::vector<int>;

// Set when any map gives wrong results: the exit status is then 1.
bool any_failure = false;

// ---------------------------------------------------------------------------
// The work: i -> i * 2, as a coroutine and as a plain (blocking) callable.

const auto twice_coroutine = [](int i) -> asio::awaitable<int> { co_return i * 2; };
const auto twice_plain = [](int i) { return i * 2; };

// An item that suspends: a timer wait of `sleep_wait` first.
constexpr std::chrono::milliseconds sleep_wait{5};
const auto twice_after_sleep = [](int i) -> asio::awaitable<int> {
  asio::steady_timer timer(co_await asio::this_coro::executor, sleep_wait);
  co_await timer.async_wait(asio::use_awaitable);
  co_return i * 2;
};

// The offloaded item of the baselines: the same primitive async_map uses.
asio::awaitable<int> twice_offloaded(int i)
{
  co_return co_await fanout::async_to_thread(
      fanout::blocking_executor(), [i] { return twice_plain(i); }, asio::use_awaitable);
}

// Runs body on ctx (single thread, this one) until it completes.
results run_on(asio::io_context& ctx, asio::awaitable<results> body)
{
  std::optional<results> value;
  std::exception_ptr error;
  asio::co_spawn(ctx, std::move(body), [&](std::exception_ptr e, results v) {
    error = std::move(e);
    value.emplace(std::move(v));
  });
  ctx.restart();
  ctx.run();
  if (error)
    std::rethrow_exception(error);
  return std::move(*value);
}

// ---------------------------------------------------------------------------
// The baselines, written as an Asio user would without fanout.

// The same loop with every item cancellable on its own, as fanout's items
// are (fail-fast, the caller's cancellation): one cancellation signal per
// item, bound to its co_spawn (never emitted here). What per-item
// cancellation costs in plain Asio: the portable floor for a map.
template <typename Item>
asio::awaitable<results> co_spawn_loop_cancellable(const std::vector<int>& inputs, Item item)
{
  auto ex = co_await asio::this_coro::executor;
  results out(inputs.size());
  std::vector<asio::cancellation_signal> signals(inputs.size());
  std::size_t remaining = inputs.size();
  std::exception_ptr first_error;
  asio::steady_timer all_done(ex, asio::steady_timer::time_point::max());
  for (std::size_t i = 0; i < inputs.size(); ++i)
    asio::co_spawn(ex, item(inputs[i]),
                   asio::bind_cancellation_slot(signals[i].slot(), [&, i](std::exception_ptr e, int value) {
                     if (e && !first_error)
                       first_error = e;
                     out[i] = value;
                     if (--remaining == 0)
                       all_done.cancel();
                   }));
  if (remaining != 0)
    co_await all_done.async_wait(asio::as_tuple(asio::use_awaitable));
  if (first_error)
    std::rethrow_exception(first_error);
  co_return out;
}

// co_spawn every item with a completion handler that stores its result in
// place and wakes the awaiting coroutine (through a timer) after the last one.
template <typename Item>
asio::awaitable<results> co_spawn_loop(const std::vector<int>& inputs, Item item)
{
  auto ex = co_await asio::this_coro::executor;
  results out(inputs.size());
  std::size_t remaining = inputs.size();
  std::exception_ptr first_error;
  asio::steady_timer all_done(ex, asio::steady_timer::time_point::max());
  for (std::size_t i = 0; i < inputs.size(); ++i)
    asio::co_spawn(ex, item(inputs[i]), [&, i](std::exception_ptr e, int value) {
      if (e && !first_error)
        first_error = e;
      out[i] = value;
      if (--remaining == 0)
        all_done.cancel();
    });
  if (remaining != 0)
    co_await all_done.async_wait(asio::as_tuple(asio::use_awaitable));
  if (first_error)
    std::rethrow_exception(first_error);
  co_return out;
}

// The ranged parallel group: a vector of deferred co_spawns, wait_for_all.
template <typename Item>
asio::awaitable<results> parallel_group_map(const std::vector<int>& inputs, Item item)
{
  if (inputs.empty()) // a ranged group over no operations never completes on Boost 1.81
    co_return results{};
  auto ex = co_await asio::this_coro::executor;
  using operation = decltype(asio::co_spawn(ex, item(0), asio::deferred));
  std::vector<operation> operations;
  operations.reserve(inputs.size());
  for (const int x : inputs)
    operations.push_back(asio::co_spawn(ex, item(x), asio::deferred));
  auto [order, errors, values] = co_await asio::experimental::make_parallel_group(std::move(operations))
                                     .async_wait(asio::experimental::wait_for_all(), asio::use_awaitable);
  for (const auto& e : errors)
    if (e)
      std::rethrow_exception(e);
  co_return std::move(values);
}

results plain_loop(const std::vector<int>& inputs)
{
  results out;
  out.reserve(inputs.size());
  for (const int x : inputs)
    out.push_back(twice_plain(x));
  return out;
}

// The same loop inside a coroutine on the benchmark's io_context: the
// baseline that pays the same harness (co_spawn, run, completion) as a map.
asio::awaitable<results> plain_loop_on_executor(const std::vector<int>& inputs)
{
  co_return plain_loop(inputs);
}

// ---------------------------------------------------------------------------
// Measuring.

std::vector<int> make_inputs(std::size_t n)
{
  std::vector<int> inputs(n);
  std::iota(inputs.begin(), inputs.end(), 0);
  return inputs;
}

bool correct(const std::vector<int>& inputs, const results& out)
{
  if (out.size() != inputs.size())
    return false;
  for (std::size_t i = 0; i < inputs.size(); ++i)
    if (out[i] != inputs[i] * 2)
      return false;
  return true;
}

// Times one map of state.range(0) items per iteration; `run(ctx, inputs)`
// returns the results. Checks the last iteration's results.
// For the sleep/... family (`waited` > 0), each iteration's time is its
// overshoot: wall time minus `waited` (manual time).
template <typename Run>
void measure(benchmark::State& state, Run run, std::chrono::nanoseconds waited = {})
{
  const auto n = static_cast<std::size_t>(state.range(0));
  const std::vector<int> inputs = make_inputs(n);
  asio::io_context ctx(1);
  fanout::declare_single_threaded(ctx);
  results last;
  const heap::snapshot before = heap::now();
  for (auto _ : state) {
    const auto start = std::chrono::steady_clock::now();
    results out = run(ctx, inputs);
    if (waited.count() > 0)
      state.SetIterationTime(
          std::max(0.0, std::chrono::duration<double>(std::chrono::steady_clock::now() - start - waited).count()));
    benchmark::DoNotOptimize(out.data());
    last.swap(out);
  }
  const heap::snapshot after = heap::now();
  if (!correct(inputs, last)) {
    any_failure = true;
    state.SkipWithError("wrong results");
    return;
  }
  const double items = static_cast<double>(state.iterations()) * static_cast<double>(n);
  state.counters["s/item"] = benchmark::Counter(static_cast<double>(n), benchmark::Counter::kIsIterationInvariantRate |
                                                                            benchmark::Counter::kInvert);
  state.counters["allocs/item"] = static_cast<double>(after.allocations - before.allocations) / items;
  state.counters["B/item"] = static_cast<double>(after.bytes - before.bytes) / items;
  state.SetItemsProcessed(static_cast<std::int64_t>(items));
}

struct case_t
{
  std::string name;
  std::function<results(asio::io_context&, const std::vector<int>&)> run;
};

std::vector<case_t> cases()
{
  using ctx_t = asio::io_context;
  using in_t = const std::vector<int>&;
  std::vector<case_t> all;
  all.push_back({"coro/fanout/unbounded",
                 [](ctx_t& ctx, in_t in) { return run_on(ctx, fanout::async_map(twice_coroutine, in)); }});
  for (const std::size_t window : {std::size_t{1}, std::size_t{64}, std::size_t{1024}})
    all.push_back({"coro/fanout/window:" + std::to_string(window), [window](ctx_t& ctx, in_t in) {
                     return run_on(ctx, fanout::async_map({.max_concurrency = window}, twice_coroutine, in));
                   }});
  all.push_back(
      {"coro/asio/co_spawn_loop", [](ctx_t& ctx, in_t in) { return run_on(ctx, co_spawn_loop(in, twice_coroutine)); }});
  all.push_back({"coro/asio/parallel_group",
                 [](ctx_t& ctx, in_t in) { return run_on(ctx, parallel_group_map(in, twice_coroutine)); }});

  all.push_back(
      {"inline/fanout/async_map", [](ctx_t& ctx, in_t in) { return run_on(ctx, fanout::async_map(twice_plain, in)); }});
  all.push_back({"inline/plain/loop", [](ctx_t&, in_t in) { return plain_loop(in); }});
  all.push_back(
      {"inline/plain/loop_on_executor", [](ctx_t& ctx, in_t in) { return run_on(ctx, plain_loop_on_executor(in)); }});

  all.push_back({"sleep/fanout/unbounded",
                 [](ctx_t& ctx, in_t in) { return run_on(ctx, fanout::async_map(twice_after_sleep, in)); }});
  all.push_back({"sleep/asio/co_spawn_loop",
                 [](ctx_t& ctx, in_t in) { return run_on(ctx, co_spawn_loop(in, twice_after_sleep)); }});
  all.push_back({"sleep/asio/co_spawn_loop_cancellable",
                 [](ctx_t& ctx, in_t in) { return run_on(ctx, co_spawn_loop_cancellable(in, twice_after_sleep)); }});
  all.push_back({"sleep/asio/parallel_group",
                 [](ctx_t& ctx, in_t in) { return run_on(ctx, parallel_group_map(in, twice_after_sleep)); }});

  all.push_back({"offload/fanout/unbounded", [](ctx_t& ctx, in_t in) {
                   return run_on(ctx,
                                 fanout::async_map({.blocking = fanout::blocking_policy::offload}, twice_plain, in));
                 }});
  all.push_back({"offload/asio/co_spawn_loop",
                 [](ctx_t& ctx, in_t in) { return run_on(ctx, co_spawn_loop(in, twice_offloaded)); }});
  all.push_back({"offload/asio/parallel_group",
                 [](ctx_t& ctx, in_t in) { return run_on(ctx, parallel_group_map(in, twice_offloaded)); }});
  return all;
}

bool starts_with(const char* s, const char* prefix)
{
  return std::strncmp(s, prefix, std::strlen(prefix)) == 0;
}

} // namespace

int main(int argc, char** argv)
{
  // Our own flags come out of argv before Google Benchmark sees it.
  const char* env_smoke = std::getenv("FANOUT_MICRO_SMOKE");
  bool smoke = env_smoke != nullptr && std::strcmp(env_smoke, "") != 0 && std::strcmp(env_smoke, "0") != 0;
  std::int64_t max_n = 1'000'000;
  std::int64_t offload_max_n = 100'000;
  int kept = 1;
  for (int i = 1; i < argc; ++i) {
    if (std::strcmp(argv[i], "--smoke") == 0)
      smoke = true;
    else if (starts_with(argv[i], "--max-n="))
      max_n = std::atoll(argv[i] + std::strlen("--max-n="));
    else if (starts_with(argv[i], "--offload-max-n="))
      offload_max_n = std::atoll(argv[i] + std::strlen("--offload-max-n="));
    else
      argv[kept++] = argv[i];
  }
  argc = kept;

  const std::vector<std::int64_t> sizes =
      smoke ? std::vector<std::int64_t>{1, 100} : std::vector<std::int64_t>{1'000, 10'000, 100'000, 1'000'000};
  for (auto& c : cases()) {
    const bool offload = c.name.starts_with("offload/");
    const bool sleeping = c.name.starts_with("sleep/");
    std::vector<std::int64_t> args;
    for (const std::int64_t n : sizes)
      if (n <= max_n && (!offload || n <= offload_max_n) && (!sleeping || n <= 100'000))
        args.push_back(n);
    if (args.empty())
      continue;
    const std::chrono::nanoseconds waited = sleeping ? sleep_wait : std::chrono::nanoseconds{};
    auto* b = benchmark::RegisterBenchmark(
        c.name.c_str(), [run = c.run, waited](benchmark::State& state) { measure(state, run, waited); });
    if (sleeping)
      b->UseManualTime()->Unit(benchmark::kMicrosecond);
    else
      b->UseRealTime()->Unit(benchmark::kMicrosecond);
    for (const std::int64_t n : args)
      b->Arg(n);
    if (smoke)
      b->Iterations(1);
    else
      b->MinTime(0.2);
  }

  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv))
    return 2;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return any_failure ? 1 : 0;
}
