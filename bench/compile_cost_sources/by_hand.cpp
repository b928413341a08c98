// The same program as with_async_map.cpp, for bench/compile_cost, with the
// map written by hand in plain Asio: the same item, co_spawned once per
// element on the awaiting coroutine's executor, results stored by index, the
// first failure rethrown, and the awaiting coroutine woken (a timer used as
// an event) once every item has finished.
#include <fanout/run.hpp>
#include <fanout/sleep.hpp>

#include <boost/asio/awaitable.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/system/error_code.hpp>

#include <chrono>
#include <cstddef>
#include <cstdio>
#include <exception>
#include <vector>

namespace asio = boost::asio;
using namespace std::chrono_literals;

namespace {

asio::awaitable<int> sum_of_doubles(const std::vector<int>& xs)
{
  const auto item = [](int x) -> asio::awaitable<int> {
    co_await fanout::sleep(1ms);
    co_return 2 * x;
  };
  const auto executor = co_await asio::this_coro::executor;
  std::vector<int> results(xs.size());
  std::size_t left = xs.size();
  std::exception_ptr failure;
  asio::steady_timer all_done(executor, asio::steady_timer::time_point::max());
  for (std::size_t i = 0; i < xs.size(); ++i)
    asio::co_spawn(executor, item(xs[i]), [&, i](std::exception_ptr e, int r) {
      if (e && !failure)
        failure = e;
      else if (!e)
        results[i] = r;
      if (--left == 0)
        all_done.cancel();
    });
  if (left != 0) {
    boost::system::error_code ec;
    co_await all_done.async_wait(asio::redirect_error(asio::use_awaitable, ec));
  }
  if (failure)
    std::rethrow_exception(failure);
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
