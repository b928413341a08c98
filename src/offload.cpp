#include "fanout/offload.hpp"

#include <cstdlib>
#include <string>

namespace fanout {

std::size_t blocking_pool_size()
{
  static const std::size_t size = [] {
    if (const char* env = std::getenv("FANOUT_BLOCKING_THREADS")) {
      try {
        const long n = std::stol(env);
        if (n > 0)
          return static_cast<std::size_t>(n);
      } catch (const std::exception&) {
        // Not a number: fall back to the default.
      }
    }
    return std::size_t{64};
  }();
  return size;
}

boost::asio::thread_pool::executor_type blocking_executor()
{
  // A function-local static: created on first use, joined at exit.
  static boost::asio::thread_pool pool(blocking_pool_size());
  return pool.get_executor();
}

} // namespace fanout
