// post — "Asynchronous part 1" (seed/asynchronous-part-1.txt), line by line,
// in C++ with fanout. Each section quotes the Python it mirrors and prints
// what the post prints: the timer's label, the values, the seconds taken.
//
//   post [SCALE]    SCALE multiplies the post's one-second unit (default 1);
//                   `post 0.05` runs the whole post in about a second and a half.

// import asyncio
// import contextlib
// import time
// (g++ 12 at -O2 reports -Wnull-dereference inside Asio's executor
// comparisons: false positives in third-party code, silenced for its headers.)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wnull-dereference"
#include <fanout/fanout.hpp>

#include <boost/asio/awaitable.hpp>
#include <boost/asio/io_context.hpp>
#pragma GCC diagnostic pop

#include <charconv>
#include <chrono>
#include <cmath>
#include <iostream>
#include <string>
#include <string_view>
#include <system_error>
#include <thread>
#include <vector>

namespace asio = boost::asio;

namespace {

// The post's one second, times SCALE.
std::chrono::nanoseconds second = std::chrono::seconds(1);

// @contextlib.contextmanager
// def timer(msg):
//     print(msg)
//     T = time.time()
//     yield
//     print(time.time() - T)
//
// is fanout::timer: `{ fanout::timer t("msg"); ... }` prints "msg" when made
// and the elapsed seconds when the block ends.

// #notacoroutine
// def a(A="a"):
//     time.sleep(1)
//     return A
std::string a()
{
  std::this_thread::sleep_for(second);
  return "a";
}

// @asyncio.coroutine
// def b(B="b"):
//     yield from asyncio.sleep(1)
//     return B
asio::awaitable<std::string> b()
{
  co_await fanout::sleep(second);
  co_return "b";
}

// asyncio.get_event_loop(): the process's default event loop, made on first
// use and kept until the program ends.
//
// (The last section runs on it because it outlives fanout's blocking pool: a
// pool thread may still hold an offloaded call's state, including the
// handler's executor on the loop, for a moment after the call has completed.
// A function-local static made before the pool is destroyed after it.)
asio::io_context& get_event_loop()
{
  static asio::io_context loop;
  return loop;
}

// print(*values)
void print(const std::vector<std::string>& values)
{
  const char* sep = "";
  for (const auto& v : values) {
    std::cout << sep << v;
    sep = " ";
  }
  std::cout << std::endl;
}

// def main():
//     with timer("Normal synchronous code"):
//         for x in range(5):
//             print(a())
// ## 5.005340099334717
void normal_synchronous_code()
{
  const fanout::timer t("Normal synchronous code");
  for (int x = 0; x < 5; ++x)
    std::cout << a() << std::endl;
}

// def main():
//     loop = asyncio.get_event_loop()
//     with timer("Using asynchronous code synchronously"):
//         for x in range(5):
//             retval = loop.run_until_complete(b())
//             print(retval)
// ## 5.007107496261597
void asynchronous_code_synchronously()
{
  auto& loop = get_event_loop();
  const fanout::timer t("Using asynchronous code synchronously");
  for (int x = 0; x < 5; ++x) {
    const auto retval = fanout::run(loop, b());
    std::cout << retval << std::endl;
  }
}

// def main():
//     loop = asyncio.get_event_loop()
//     with timer("Separate function call, and code running"):
//         tasks = []
//         for x in range(5):
//             task = b()
//             tasks.append(task)
//         for task in tasks:
//             retval = loop.run_until_complete(task)
//             print(retval)
// ## 5.006737232208252
void separate_call_and_running()
{
  auto& loop = get_event_loop();
  const fanout::timer t("Separate function call, and code running");
  std::vector<asio::awaitable<std::string>> tasks;
  for (int x = 0; x < 5; ++x) {
    auto task = b(); // like a generator, an awaitable runs nothing until it is run
    tasks.push_back(std::move(task));
  }
  for (auto& task : tasks) {
    const auto retval = fanout::run(loop, std::move(task));
    std::cout << retval << std::endl;
  }
}

// def main():
//     loop = asyncio.get_event_loop()
//     with timer("Briefer concurrency with map"):
//         tasks = [asyncio.async(b()) for x in range(5)]
//         print(*map(loop.run_until_complete, tasks))
// ## 1.002532958984375
void briefer_concurrency_with_map()
{
  auto& loop = get_event_loop();
  const fanout::timer t("Briefer concurrency with map");
  std::vector<fanout::task<std::string>> tasks;
  for (int x = 0; x < 5; ++x)
    tasks.push_back(fanout::spawn(loop, b())); // asyncio.async: scheduled now, running from the next run
  std::vector<std::string> retvals;
  for (auto& task : tasks)
    retvals.push_back(fanout::run(loop, task));
  print(retvals);
}

// The same five calls without hand-managed tasks: a task group owns them (no
// task outlives the scope, and the first failure would cancel the others),
// as asyncio's TaskGroup does in Python 3.11.
void briefer_concurrency_with_a_group()
{
  const fanout::timer t("Briefer concurrency with a task group");
  const auto retvals = fanout::run([]() -> asio::awaitable<std::vector<std::string>> {
    std::vector<fanout::task<std::string>> tasks;
    co_await fanout::with_task_group([&](fanout::task_group& g) -> asio::awaitable<void> {
      for (int x = 0; x < 5; ++x)
        tasks.push_back(g.spawn(b()));
      co_return;
    }); // joined here: every task has finished
    std::vector<std::string> values;
    for (auto& task : tasks)
      values.push_back(co_await task.async_wait());
    co_return values;
  }());
  print(retvals);
}

// def async_map(func, *iterables, event_loop=None):
//     loop = event_loop or asyncio.get_event_loop()
//     args_iter = zip(*iterables)
//     tasks = [asyncio.async(func(*args)) for args in args_iter]
//     for task in tasks:
//         yield loop.run_until_complete(task)
//
// is fanout::async_map(func, ranges...): an awaitable that starts every call
// at once and gives the results in input order. fanout::run(awaitable) drives
// it from synchronous code on an event loop of its own, as the post's
// generator drives its tasks with loop.run_until_complete.
//
// def main():
//     with timer("Async map, not using the event loop directly"):
//         tasks = [b for x in range(5)]
//         retvals = [r for r in async_map(lambda x: x(), tasks)]
//         print(*retvals)
// ## 1.0016822814941406
void async_map_coroutines()
{
  const fanout::timer t("Async map, not using the event loop directly");
  std::vector<asio::awaitable<std::string> (*)()> tasks(5, b);
  const auto retvals = fanout::run(fanout::async_map([](auto& x) { return x(); }, tasks));
  print(retvals);
}

// def async_map(func, *iterables, event_loop=None):
//     loop = event_loop or asyncio.get_event_loop()
//     args_iter = zip(*iterables)
//     if asyncio.iscoroutinefunction(func):
//         coro = func
//     else:
//         @asyncio.coroutine
//         def coro(*args):
//             return func(*args)
//     tasks = [asyncio.async(coro(*args)) for args in args_iter]
//     for task in tasks:
//         yield loop.run_until_complete(task)
//
// fanout::async_map does this already: a function returning a plain value is
// a blocking call, made on the event loop (by default), one at a time.
//
// def main():
//     with timer("It still works with synchronous functions"):
//         tasks = [a for x in range(5)]
//         retvals = [r for r in async_map(lambda x: x(), tasks)]
//         print(*retvals)
// ## 5.006326913833618
void async_map_blocking()
{
  const fanout::timer t("It still works with synchronous functions");
  std::vector<std::string (*)()> tasks(5, a);
  const auto retvals = fanout::run(fanout::async_map([](auto& x) { return x(); }, tasks));
  print(retvals);
}

// def main():
//     apply = lambda x: x()
//     with timer("Mixin' it up"):
//         tasks = [b, a, b ,a, b]
//         retvals = [r for r in async_map(apply, tasks)]
//         print(*retvals)
// ## 3.004204511642456
//
// A C++ vector holds one type: fanout::callable holds either kind of function.
void mixin_it_up()
{
  const auto apply = [](auto& x) { return x(); };
  const fanout::timer t("Mixin' it up");
  std::vector<fanout::callable<std::string()>> tasks{b, a, b, a, b};
  const auto retvals = fanout::run(fanout::async_map(apply, tasks));
  print(retvals);
}

// "But there are potential speed-ups to be had in IO-bound code."
//
// Beyond the post: the same list, its blocking calls made on fanout's
// blocking-work pool (asyncio's run_in_executor / to_thread), so that they
// overlap each other and the coroutines: one second instead of three. (Run on
// the default loop, which outlives the pool: see get_event_loop.)
void mixin_it_up_offloaded()
{
  const auto apply = [](auto& x) { return x(); };
  const fanout::timer t("Mixin' it up, blocking calls offloaded");
  std::vector<fanout::callable<std::string()>> tasks{b, a, b, a, b};
  const auto retvals =
      fanout::run(get_event_loop(), fanout::async_map({.blocking = fanout::blocking_policy::offload}, apply, tasks));
  print(retvals);
}

int usage()
{
  std::cerr << "usage: post [SCALE]\n"
               "  SCALE  multiplies the post's one-second unit (a number > 0, default 1)\n";
  return 2;
}

} // namespace

// if __name__ == '__main__':
//     main()
int main(int argc, char** argv)
{
  if (argc > 2)
    return usage();
  if (argc == 2) {
    const std::string_view text = argv[1];
    double scale = 0;
    const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), scale);
    if (text.empty() || ec != std::errc() || end != text.data() + text.size() || !std::isfinite(scale) || scale <= 0 ||
        scale > 1e6)
      return usage();
    second = std::chrono::round<std::chrono::nanoseconds>(std::chrono::duration<double>(scale));
  }

  normal_synchronous_code();
  asynchronous_code_synchronously();
  separate_call_and_running();
  briefer_concurrency_with_map();
  briefer_concurrency_with_a_group();
  async_map_coroutines();
  async_map_blocking();
  mixin_it_up();
  mixin_it_up_offloaded();
}
