// Must not compile: f returns `asio::deferred(function)`, a deferred
// continuation that is no operation to start. async_map rejects it with a
// static_assert that names it (test/CMakeLists.txt checks the message).
#include <fanout/async_map.hpp>

#include <boost/asio/deferred.hpp>

#include <vector>

boost::asio::awaitable<void> maps_a_continuation(const std::vector<int>& xs)
{
  co_await fanout::async_map(
      [](int x) { return boost::asio::deferred([x] { return boost::asio::deferred.values(x); }); }, xs);
}
