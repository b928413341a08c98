// post — "Asynchronous part 1" (seed/asynchronous-part-1.txt), line by line,
// in C++ with fanout. Each section prints what the post prints: the timer's
// label, the values, the seconds taken. The sections themselves, each beside
// the Python it mirrors, are in post/rows.cpp (fanout-bench times the same
// code and test/post_rows.cpp checks it).
//
//   post [SCALE]    SCALE multiplies the post's one-second unit (default 1);
//                   `post 0.05` runs the whole post in about a second and a half.

// import asyncio
// import contextlib
// import time
#include "post/rows.hpp"

#include <fanout/run.hpp>
#include <fanout/task_group.hpp>
#include <fanout/timer.hpp>

#include <boost/asio/awaitable.hpp>

#include <charconv>
#include <chrono>
#include <cmath>
#include <iostream>
#include <string>
#include <string_view>
#include <system_error>
#include <vector>

namespace asio = boost::asio;

namespace {

// @contextlib.contextmanager
// def timer(msg):
//     print(msg)
//     T = time.time()
//     yield
//     print(time.time() - T)
//
// is fanout::timer: `{ fanout::timer t("msg"); ... }` prints "msg" when made
// and the elapsed seconds when the block ends.

// Beyond the post: the five calls of "Briefer concurrency with map" without
// hand-managed tasks: a task group owns them (no task outlives the scope, and
// the first failure would cancel the others), as asyncio's TaskGroup does in
// Python 3.11.
void briefer_concurrency_with_a_group(const post::setting& s)
{
  const fanout::timer t("Briefer concurrency with a task group", s.out);
  const auto retvals = fanout::run([](post::function_b b) -> asio::awaitable<std::vector<std::string>> {
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
  }(post::function_b(s)));
  const char* sep = "";
  for (const auto& v : retvals) {
    s.out << sep << v;
    sep = " ";
  }
  s.out << std::endl;
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
  double scale = 1;
  if (argc == 2) {
    const std::string_view text = argv[1];
    const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), scale);
    if (text.empty() || ec != std::errc() || end != text.data() + text.size() || !std::isfinite(scale) || scale <= 0 ||
        scale > 1e6)
      return usage();
  }

  // The post's one second, times SCALE; its event loop, made before fanout's
  // blocking pool (the last section uses both); print() is to stdout.
  const post::setting s{.unit = std::chrono::round<std::chrono::nanoseconds>(std::chrono::duration<double>(scale)),
                        .loop = post::get_event_loop(),
                        .out = std::cout};
  post::normal_synchronous_code(s);
  post::asynchronous_code_synchronously(s);
  post::separate_call_and_running(s);
  post::briefer_concurrency_with_map(s);
  briefer_concurrency_with_a_group(s);
  post::async_map_coroutines(s);
  post::async_map_blocking(s);
  post::mixin_it_up(s);
  post::mixin_it_up_offloaded(s);
}
