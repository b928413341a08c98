// A user's program: links fanout::fanout and maps a coroutine over a range.
#include <fanout/fanout.hpp>

#include <chrono>
#include <iostream>
#include <vector>

#ifdef FANOUT_CONSUMER_EXPECTS_CXX23
// fanout's flags must leave the consumer's language standard alone.
static_assert(__cplusplus > 202002L, "the consumer's -std was overridden");
#endif

#ifdef FANOUT_CONSUMER_EXPECTS_VERSION_MAJOR
// fanout/fanout.hpp brings fanout/version.hpp, whose numbers are those of
// fanout's CMake project (passed by the package tests).
static_assert(FANOUT_VERSION_MAJOR == FANOUT_CONSUMER_EXPECTS_VERSION_MAJOR, "FANOUT_VERSION_MAJOR");
static_assert(FANOUT_VERSION_MINOR == FANOUT_CONSUMER_EXPECTS_VERSION_MINOR, "FANOUT_VERSION_MINOR");
static_assert(FANOUT_VERSION_PATCH == FANOUT_CONSUMER_EXPECTS_VERSION_PATCH, "FANOUT_VERSION_PATCH");
// FANOUT_VERSION is one number, usable in #if.
#if FANOUT_VERSION != FANOUT_CONSUMER_EXPECTS_VERSION_MAJOR * 100000 + FANOUT_CONSUMER_EXPECTS_VERSION_MINOR * 100 +   \
                          FANOUT_CONSUMER_EXPECTS_VERSION_PATCH
#error "FANOUT_VERSION is not major * 100000 + minor * 100 + patch"
#endif
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
