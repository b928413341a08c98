// fanout-micro-primitives — per-operation cost of fanout's coroutine
// primitives beside an asio::experimental::channel doing the same job, in the
// same binary and on the same single-threaded io_context (Google Benchmark).
//
//   fanout-micro-primitives [--smoke] [Google Benchmark flags]
//
// Each benchmark runs N = 100,000 operations per iteration in coroutines
// awaited with asio::use_awaitable; the counter s/op is wall time per
// operation.
//
//   lock/uncontended/...    one coroutine locks and unlocks N times:
//                           fanout::async_mutex; a channel of capacity 1
//                           used as a lock (send locks, try_receive unlocks).
//   lock/contended/...      four coroutines each lock, yield once (a post)
//                           and unlock, N in all, so that every lock waits:
//                           the same two locks.
//   limiter/uncontended     acquire and release a fanout::limiter N times.
//   queue/push_pop/...      a producer pushes N ints through a buffer of 64
//                           to a consumer: fanout::queue<int>; a
//                           channel<void(error_code, int)> of capacity 64.
//
// --smoke (or FANOUT_MICRO_SMOKE=1) runs each benchmark once with N = 100,
// for CI. The exit status is 1 if any run counted wrong.

#include <fanout/async_mutex.hpp>
#include <fanout/limiter.hpp>
#include <fanout/queue.hpp>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/experimental/channel.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/system/error_code.hpp>

#include <benchmark/benchmark.h>

#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <optional>
#include <string>
#include <type_traits>
#include <vector>

namespace {

namespace asio = boost::asio;
using boost::system::error_code;
using lock_channel = asio::experimental::channel<void(error_code)>;
using int_channel = asio::experimental::channel<void(error_code, int)>;

int operations = 100000;
bool wrong = false;

// Runs @p body to completion on a fresh io_context{1}.
template <typename Body>
void run(Body body)
{
  asio::io_context ctx{1};
  asio::co_spawn(ctx, body(ctx.get_executor()), [](const std::exception_ptr& e) {
    if (e)
      std::rethrow_exception(e);
  });
  ctx.run();
}

void report(benchmark::State& state, std::int64_t per_iteration)
{
  state.SetItemsProcessed(state.iterations() * per_iteration);
  state.counters["s/op"] = benchmark::Counter(
      static_cast<double>(per_iteration), benchmark::Counter::kIsIterationInvariantRate | benchmark::Counter::kInvert);
}

// --- lock ---------------------------------------------------------------

asio::awaitable<void> lock_loop(fanout::async_mutex& m, int& counter, int n, bool yield)
{
  for (int i = 0; i < n; ++i) {
    auto lock = co_await m.async_lock(asio::use_awaitable);
    if (yield)
      co_await asio::post(co_await asio::this_coro::executor, asio::use_awaitable);
    ++counter;
  }
}

asio::awaitable<void> lock_loop(lock_channel& ch, int& counter, int n, bool yield)
{
  for (int i = 0; i < n; ++i) {
    co_await ch.async_send(error_code(), asio::use_awaitable); // locks: the one slot is taken
    if (yield)
      co_await asio::post(co_await asio::this_coro::executor, asio::use_awaitable);
    ++counter;
    (void)ch.try_receive([](error_code) {}); // unlocks
  }
}

template <typename Lock>
void lock_benchmark(benchmark::State& state, int coroutines, bool yield)
{
  const int per = operations / coroutines;
  for (auto _ : state) {
    int counter = 0;
    // The lock outlives every coroutine that uses it.
    asio::io_context ctx{1};
    std::optional<Lock> l;
    if constexpr (std::is_same_v<Lock, lock_channel>)
      l.emplace(ctx.get_executor(), 1);
    else
      l.emplace();
    for (int c = 0; c < coroutines; ++c)
      asio::co_spawn(ctx, lock_loop(*l, counter, per, yield), asio::detached);
    ctx.run();
    if (counter != per * coroutines)
      wrong = true;
  }
  report(state, std::int64_t{per} * coroutines);
}

void lock_uncontended_async_mutex(benchmark::State& state)
{
  lock_benchmark<fanout::async_mutex>(state, 1, false);
}
void lock_uncontended_channel(benchmark::State& state)
{
  lock_benchmark<lock_channel>(state, 1, false);
}
void lock_contended_async_mutex(benchmark::State& state)
{
  lock_benchmark<fanout::async_mutex>(state, 4, true);
}
void lock_contended_channel(benchmark::State& state)
{
  lock_benchmark<lock_channel>(state, 4, true);
}

// --- limiter --------------------------------------------------------------

void limiter_uncontended(benchmark::State& state)
{
  for (auto _ : state) {
    fanout::limiter lim(4);
    int counter = 0;
    run([&](const asio::any_io_executor&) -> asio::awaitable<void> {
      for (int i = 0; i < operations; ++i) {
        auto permit = co_await lim.async_acquire(asio::use_awaitable);
        ++counter;
      }
    });
    if (counter != operations)
      wrong = true;
  }
  report(state, operations);
}

// --- queue ------------------------------------------------------------------

void queue_push_pop_fanout_queue(benchmark::State& state)
{
  for (auto _ : state) {
    fanout::queue<int> q(64);
    std::int64_t sum = 0;
    asio::io_context ctx{1};
    asio::co_spawn(
        ctx,
        [&]() -> asio::awaitable<void> {
          for (int i = 0; i < operations; ++i)
            co_await q.async_push(i, asio::use_awaitable);
          q.close();
        },
        asio::detached);
    asio::co_spawn(
        ctx,
        [&]() -> asio::awaitable<void> {
          while (auto v = co_await q.async_pop(asio::use_awaitable))
            sum += *v;
        },
        asio::detached);
    ctx.run();
    if (sum != std::int64_t{operations} * (operations - 1) / 2)
      wrong = true;
  }
  report(state, operations);
}

void queue_push_pop_channel(benchmark::State& state)
{
  for (auto _ : state) {
    asio::io_context ctx{1};
    int_channel ch(ctx.get_executor(), 64);
    std::int64_t sum = 0;
    asio::co_spawn(
        ctx,
        [&]() -> asio::awaitable<void> {
          for (int i = 0; i < operations; ++i)
            co_await ch.async_send(error_code(), i, asio::use_awaitable);
          ch.close();
        },
        asio::detached);
    asio::co_spawn(
        ctx,
        [&]() -> asio::awaitable<void> {
          for (;;) {
            auto [ec, v] = co_await ch.async_receive(asio::as_tuple(asio::use_awaitable));
            if (ec)
              break;
            sum += v;
          }
        },
        asio::detached);
    ctx.run();
    if (sum != std::int64_t{operations} * (operations - 1) / 2)
      wrong = true;
  }
  report(state, operations);
}

} // namespace

BENCHMARK(lock_uncontended_async_mutex)->Name("lock/uncontended/fanout::async_mutex")->Unit(benchmark::kMillisecond);
BENCHMARK(lock_uncontended_channel)->Name("lock/uncontended/asio channel(1)")->Unit(benchmark::kMillisecond);
BENCHMARK(lock_contended_async_mutex)->Name("lock/contended/fanout::async_mutex")->Unit(benchmark::kMillisecond);
BENCHMARK(lock_contended_channel)->Name("lock/contended/asio channel(1)")->Unit(benchmark::kMillisecond);
BENCHMARK(limiter_uncontended)->Name("limiter/uncontended/fanout::limiter")->Unit(benchmark::kMillisecond);
BENCHMARK(queue_push_pop_fanout_queue)->Name("queue/push_pop/fanout::queue(64)")->Unit(benchmark::kMillisecond);
BENCHMARK(queue_push_pop_channel)->Name("queue/push_pop/asio channel(64)")->Unit(benchmark::kMillisecond);

int main(int argc, char** argv)
{
  std::vector<char*> args;
  bool smoke = std::getenv("FANOUT_MICRO_SMOKE") != nullptr;
  for (int i = 0; i < argc; ++i) {
    if (std::strcmp(argv[i], "--smoke") == 0)
      smoke = true;
    else
      args.push_back(argv[i]);
  }
  static std::string once = "--benchmark_min_time=0";
  if (smoke) {
    operations = 100;
    args.push_back(once.data());
  }
  int count = static_cast<int>(args.size());
  benchmark::Initialize(&count, args.data());
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return wrong ? 1 : 0;
}
