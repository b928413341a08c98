// Must not compile: a token form of async_map without its completion token.
// The error names the missing token (test/CMakeLists.txt checks the message).
#include <fanout/async_map.hpp>

#include <boost/asio/io_context.hpp>

#include <vector>

void call_without_token(boost::asio::io_context& ctx, const std::vector<int>& xs)
{
  fanout::async_map(
      ctx, {.max_concurrency = 2}, [](int x) { return 2 * x; }, xs);
}
