// Must not compile: a plain callback, with no associated executor, for an
// operation of a primitive that has no executor of its own. The error says
// to bind one (test/CMakeLists.txt checks the message).
#include <fanout/limiter.hpp>

#include <boost/system/error_code.hpp>

void acquire_with_a_bare_callback(fanout::limiter& lim)
{
  lim.async_acquire([](boost::system::error_code, fanout::limiter::permit) {});
}
