// The post "Asynchronous part 1" (seed/asynchronous-part-1.txt), line by line:
// its two functions, its event loop and its timed rows, written once with
// fanout for the three programs that run them: the post example
// (examples/post.cpp) prints them, its suite (test/post_rows.cpp) checks them
// and fanout-bench times them. Each says what unit the post's one second is,
// where the rows print and how their timers report: nothing here is global
// but the event loop, as in the post.
#pragma once

#include <fanout/timer.hpp>

#include <boost/asio/awaitable.hpp>
#include <boost/asio/io_context.hpp>

#include <chrono>
#include <iosfwd>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace post {

namespace asio = boost::asio;

/// What a row printed, in order.
using values = std::vector<std::string>;

/// Told when a call of a() or b() starts and when it ends (however it ends),
/// from the thread that makes the call: the suite counts the calls in flight.
class call_observer
{
public:
  call_observer() = default;
  call_observer(const call_observer&) = delete;
  call_observer& operator=(const call_observer&) = delete;
  virtual ~call_observer() = default;

  virtual void enter() = 0;
  virtual void leave() = 0;
};

/// How the rows run. Made with designated initialisers, e.g.
/// `{.unit = 10ms, .loop = post::get_event_loop(), .out = std::cout}`.
struct setting
{
  std::chrono::nanoseconds unit;     // the post's one second
  asio::io_context& loop;            // asyncio.get_event_loop(), for the rows that use it
  std::ostream& out;                 // where the rows print, as the post prints to stdout
  fanout::timer::sink record = {};   // if set, the timers record into it instead of printing to out
  call_observer* observer = nullptr; // if set, told of every call of a() and b()
};

// #notacoroutine
// def a(A="a"):
//     time.sleep(1)
//     return A
//
/// The post's a: a blocking call, one unit long, that gives "a". A function
/// object, so that the rows can pass it around as the post passes `a`.
class function_a
{
public:
  explicit function_a(const setting& s) : unit_(s.unit), observer_(s.observer) {}
  std::string operator()() const;

private:
  std::chrono::nanoseconds unit_;
  call_observer* observer_;
};

// @asyncio.coroutine
// def b(B="b"):
//     yield from asyncio.sleep(1)
//     return B
//
/// The post's b: a coroutine that waits one unit and gives "b".
class function_b
{
public:
  explicit function_b(const setting& s) : unit_(s.unit), observer_(s.observer) {}
  asio::awaitable<std::string> operator()() const;

private:
  std::chrono::nanoseconds unit_;
  call_observer* observer_;
};

/// apply = lambda x: x()
inline constexpr auto apply = [](auto& x) { return x(); };

/// loop = asyncio.get_event_loop(): the process's default event loop, made on
/// first use and kept until the program ends. Like asyncio's loop it is run by
/// one thread, and says so (fanout::declare_single_threaded), so that fanout's
/// maps on it need no strands of their own. Made before fanout's blocking pool
/// (call it first), it is destroyed after the pool, whose threads may still
/// hold an offloaded call's handler, and so its executor, for a moment after
/// the call has completed.
asio::io_context& get_event_loop();

// The rows. Each runs what the post's `with timer(...)` block holds, prints
// what the post prints (the timer's label, the values, the seconds) to
// s.out, and gives the values it printed.

/// Row 1, "Normal synchronous code": five a()s, one after the other (5 units).
values normal_synchronous_code(const setting& s);
/// Row 2, "Using asynchronous code synchronously": five b()s, each run to
/// completion on the loop before the next (5 units).
values asynchronous_code_synchronously(const setting& s);
/// Row 3, "Separate function call, and code running": five b()s made first,
/// then run one by one (5 units: coroutines are lazy).
values separate_call_and_running(const setting& s);
/// Row 4, "Briefer concurrency with map": five b()s spawned as tasks, then
/// awaited in order (1 unit).
values briefer_concurrency_with_map(const setting& s);
/// Row 5, "Async map, not using the event loop directly": async_map over five
/// b's (1 unit).
values async_map_coroutines(const setting& s);
/// Row 6, "It still works with synchronous functions": async_map over five
/// a's, blocking calls made on the loop one at a time (5 units).
values async_map_blocking(const setting& s);
/// Row 7, "Mixin' it up": async_map over [b, a, b, a, b] (3 units: the b's
/// wait while the a's block).
values mixin_it_up(const setting& s);
/// Beyond the post, "Mixin' it up, blocking calls offloaded": the same list on
/// the loop, the a's made on fanout's blocking pool (1 unit).
values mixin_it_up_offloaded(const setting& s);

/// A row of the post's table.
struct row
{
  std::string_view name;                             // the timer's label: the post's words
  double ideal_units;                                // how long it takes, ideally
  std::optional<double> post_seconds = std::nullopt; // the post's figure (at its 1 s unit); none beyond it
  values (*run)(const setting&);                     // one of the rows above
  values expected;                                   // what it gives
  bool offloads = false;                             // uses fanout's blocking pool
};

/// The post's seven rows, in its order, then mixin_it_up_offloaded.
const std::vector<row>& rows();

} // namespace post
