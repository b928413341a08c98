// Must not compile: a token form of async_map_settled whose last argument is
// not a completion token for its signature. The error says so
// (test/CMakeLists.txt checks the message).
#include <fanout/async_map.hpp>

#include <boost/asio/io_context.hpp>

#include <vector>

void call_with_wrong_token(boost::asio::io_context& ctx, const std::vector<int>& xs)
{
  fanout::async_map_settled(
      ctx, [](int x) { return 2 * x; }, xs, [](std::vector<int>) {});
}
