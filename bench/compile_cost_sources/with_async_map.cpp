// A consumer translation unit with one fanout::async_map call, for
// bench/compile_cost: the map over a std::vector<int> of a coroutine item,
// awaited in a coroutine, run with fanout::run. Its twin, by_hand.cpp, is the
// same program with a hand-written asio::co_spawn loop instead of the map.
#include <fanout/async_map.hpp>
#include <fanout/run.hpp>
#include <fanout/sleep.hpp>

#include <boost/asio/awaitable.hpp>

#include <chrono>
#include <cstdio>
#include <vector>

namespace asio = boost::asio;
using namespace std::chrono_literals;

namespace {

asio::awaitable<int> sum_of_doubles(const std::vector<int>& xs)
{
  const std::vector<int> results = co_await fanout::async_map(
      [](int x) -> asio::awaitable<int> {
        co_await fanout::sleep(1ms);
        co_return 2 * x;
      },
      xs);
  int sum = 0;
  for (const int r : results)
    sum += r;
  co_return sum;
}

} // namespace

int main()
{
  const std::vector<int> xs{1, 2, 3, 4, 5, 6, 7, 8, 9, 10};
  std::printf("%d\n", fanout::run(sum_of_doubles(xs)));
}
