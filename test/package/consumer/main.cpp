// A user's program: links fanout::fanout and maps a coroutine over a range.
#include <fanout/fanout.hpp>

#include <chrono>
#include <iostream>
#include <vector>

#ifdef FANOUT_CONSUMER_EXPECTS_CXX23
// fanout's flags must leave the consumer's language standard alone.
static_assert(__cplusplus > 202002L, "the consumer's -std was overridden");
#endif

namespace asio = boost::asio;
using namespace std::chrono_literals;

static asio::awaitable<int> twice(int x)
{
  co_await fanout::sleep(1ms);
  co_return 2 * x;
}

int main()
{
  const std::vector<int> xs{1, 2, 3};
  const auto ys = fanout::run(fanout::async_map(twice, xs));
  if (ys != std::vector<int>{2, 4, 6})
    return 1;
  std::cout << "consumer ok\n";
  return 0;
}
