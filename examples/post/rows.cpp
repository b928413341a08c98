#include "post/rows.hpp"

#include <fanout/async_map.hpp>
#include <fanout/callable.hpp>
#include <fanout/run.hpp>
#include <fanout/sleep.hpp>
#include <fanout/task.hpp>

#include <ostream>
#include <thread>
#include <utility>

namespace post {

namespace {

// A call of a() or b() in flight, for the observer (if any).
class in_flight
{
public:
  explicit in_flight(call_observer* observer) : observer_(observer)
  {
    if (observer_ != nullptr)
      observer_->enter();
  }
  in_flight(const in_flight&) = delete;
  in_flight& operator=(const in_flight&) = delete;
  ~in_flight()
  {
    if (observer_ != nullptr)
      observer_->leave();
  }

private:
  call_observer* observer_;
};

// with timer(label): prints to s.out, or records into s.record.
fanout::timer timer(const setting& s, std::string_view label)
{
  return s.record ? fanout::timer(std::string(label), s.record) : fanout::timer(std::string(label), s.out);
}

// print(*values)
void print(std::ostream& out, const values& printed)
{
  const char* sep = "";
  for (const auto& v : printed) {
    out << sep << v;
    sep = " ";
  }
  out << std::endl;
}

} // namespace

std::string function_a::operator()() const
{
  const in_flight call(observer_);
  std::this_thread::sleep_for(unit_);
  return "a";
}

// b's body, its arguments copied into the coroutine frame: the awaitable is
// lazy and may run after the function object that made it is gone.
asio::awaitable<std::string> sleep_then_b(std::chrono::nanoseconds unit, call_observer* observer)
{
  const in_flight call(observer);
  co_await fanout::sleep(unit);
  co_return "b";
}

asio::awaitable<std::string> function_b::operator()() const
{
  return sleep_then_b(unit_, observer_);
}

asio::io_context& get_event_loop()
{
  static asio::io_context loop{1};
  [[maybe_unused]] static const bool single_threaded = (fanout::declare_single_threaded(loop), true);
  return loop;
}

// def main():
//     with timer("Normal synchronous code"):
//         for x in range(5):
//             print(a())
// ## 5.005340099334717
values normal_synchronous_code(const setting& s)
{
  const function_a a(s);
  values printed;
  const auto t = timer(s, "Normal synchronous code");
  for (int x = 0; x < 5; ++x) {
    printed.push_back(a());
    s.out << printed.back() << std::endl;
  }
  return printed;
}

// def main():
//     loop = asyncio.get_event_loop()
//     with timer("Using asynchronous code synchronously"):
//         for x in range(5):
//             retval = loop.run_until_complete(b())
//             print(retval)
// ## 5.007107496261597
values asynchronous_code_synchronously(const setting& s)
{
  const function_b b(s);
  auto& loop = s.loop;
  values printed;
  const auto t = timer(s, "Using asynchronous code synchronously");
  for (int x = 0; x < 5; ++x) {
    auto retval = fanout::run(loop, b());
    s.out << retval << std::endl;
    printed.push_back(std::move(retval));
  }
  return printed;
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
values separate_call_and_running(const setting& s)
{
  const function_b b(s);
  auto& loop = s.loop;
  values printed;
  const auto t = timer(s, "Separate function call, and code running");
  std::vector<asio::awaitable<std::string>> tasks;
  for (int x = 0; x < 5; ++x) {
    auto task = b(); // like a generator, an awaitable runs nothing until it is run
    tasks.push_back(std::move(task));
  }
  for (auto& task : tasks) {
    auto retval = fanout::run(loop, std::move(task));
    s.out << retval << std::endl;
    printed.push_back(std::move(retval));
  }
  return printed;
}

// def main():
//     loop = asyncio.get_event_loop()
//     with timer("Briefer concurrency with map"):
//         tasks = [asyncio.async(b()) for x in range(5)]
//         print(*map(loop.run_until_complete, tasks))
// ## 1.002532958984375
values briefer_concurrency_with_map(const setting& s)
{
  const function_b b(s);
  auto& loop = s.loop;
  values retvals;
  const auto t = timer(s, "Briefer concurrency with map");
  std::vector<fanout::task<std::string>> tasks;
  for (int x = 0; x < 5; ++x)
    tasks.push_back(fanout::spawn(loop, b())); // asyncio.async: scheduled now, running from the next run
  for (auto& task : tasks)
    retvals.push_back(fanout::run(loop, task));
  print(s.out, retvals);
  return retvals;
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
values async_map_coroutines(const setting& s)
{
  const function_b b(s);
  const auto t = timer(s, "Async map, not using the event loop directly");
  std::vector<function_b> tasks(5, b);
  auto retvals = fanout::run(fanout::async_map([](auto& x) { return x(); }, tasks));
  print(s.out, retvals);
  return retvals;
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
values async_map_blocking(const setting& s)
{
  const function_a a(s);
  const auto t = timer(s, "It still works with synchronous functions");
  std::vector<function_a> tasks(5, a);
  auto retvals = fanout::run(fanout::async_map([](auto& x) { return x(); }, tasks));
  print(s.out, retvals);
  return retvals;
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
values mixin_it_up(const setting& s)
{
  const function_a a(s);
  const function_b b(s);
  const auto t = timer(s, "Mixin' it up");
  std::vector<fanout::callable<std::string()>> tasks{b, a, b, a, b};
  auto retvals = fanout::run(fanout::async_map(apply, tasks));
  print(s.out, retvals);
  return retvals;
}

// "But there are potential speed-ups to be had in IO-bound code."
//
// Beyond the post: the same list, its blocking calls made on fanout's
// blocking-work pool (asyncio's run_in_executor / to_thread), so that they
// overlap each other and the coroutines: one unit instead of three. (Run on
// the loop, which outlives the pool: see get_event_loop.)
values mixin_it_up_offloaded(const setting& s)
{
  const function_a a(s);
  const function_b b(s);
  const auto t = timer(s, "Mixin' it up, blocking calls offloaded");
  std::vector<fanout::callable<std::string()>> tasks{b, a, b, a, b};
  auto retvals = fanout::run(s.loop, fanout::async_map({.blocking = fanout::blocking_policy::offload}, apply, tasks));
  print(s.out, retvals);
  return retvals;
}

const std::vector<row>& rows()
{
  static const std::vector<row> all{
      {.name = "Normal synchronous code",
       .ideal_units = 5,
       .post_seconds = 5.005340099334717,
       .run = normal_synchronous_code,
       .expected = values(5, "a")},
      {.name = "Using asynchronous code synchronously",
       .ideal_units = 5,
       .post_seconds = 5.007107496261597,
       .run = asynchronous_code_synchronously,
       .expected = values(5, "b")},
      {.name = "Separate function call, and code running",
       .ideal_units = 5,
       .post_seconds = 5.006737232208252,
       .run = separate_call_and_running,
       .expected = values(5, "b")},
      {.name = "Briefer concurrency with map",
       .ideal_units = 1,
       .post_seconds = 1.002532958984375,
       .run = briefer_concurrency_with_map,
       .expected = values(5, "b")},
      {.name = "Async map, not using the event loop directly",
       .ideal_units = 1,
       .post_seconds = 1.0016822814941406,
       .run = async_map_coroutines,
       .expected = values(5, "b")},
      {.name = "It still works with synchronous functions",
       .ideal_units = 5,
       .post_seconds = 5.006326913833618,
       .run = async_map_blocking,
       .expected = values(5, "a")},
      {.name = "Mixin' it up",
       .ideal_units = 3,
       .post_seconds = 3.004204511642456,
       .run = mixin_it_up,
       .expected = {"b", "a", "b", "a", "b"}},
      {.name = "Mixin' it up, blocking calls offloaded",
       .ideal_units = 1,
       .run = mixin_it_up_offloaded,
       .expected = {"b", "a", "b", "a", "b"},
       .offloads = true},
  };
  return all;
}

} // namespace post
