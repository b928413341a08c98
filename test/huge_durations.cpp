#include <fanout/sleep.hpp>

#include <boost/test/unit_test.hpp>

#include "support/co_test.hpp"
#include "support/outcomes.hpp"
#include "support/ranges.hpp"
#include "support/tracker.hpp"

#include <fanout/async_map.hpp>
#include <fanout/callable.hpp>
#include <fanout/error.hpp>
#include <fanout/map_options.hpp>
#include <fanout/map_stream.hpp>
#include <fanout/offload.hpp>
#include <fanout/outcome.hpp>
#include <fanout/run.hpp>
#include <fanout/schedule.hpp>
#include <fanout/sync_map.hpp>
#include <fanout/task.hpp>
#include <fanout/task_group.hpp>
#include <fanout/timeout.hpp>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/bind_executor.hpp>
#include <boost/asio/cancellation_signal.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/thread_pool.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/use_future.hpp>
#include <boost/system/system_error.hpp>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <exception>
#include <functional>
#include <future>
#include <limits>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <thread>
#include <type_traits>
#include <utility>
#include <vector>

// Durations so large that `now + duration` overflows the clock. fanout adds
// them to clock::now() itself; Asio's own timers saturate instead.
//
// Every suite sits in its own top-level suite (and namespace): the suites are
// compiled together in unity batches (test/CMakeLists.txt).
BOOST_AUTO_TEST_SUITE(huge_durations_tests)

namespace asio = boost::asio;
using namespace std::chrono_literals;
using fanout::test::code_of;
using fanout::test::exception_of;
using fanout::test::iota_vector;
using fanout::test::timed_out;
using fanout::test::tracked_value;
using fanout::test::tracker;

FANOUT_CO_TEST_CASE(the_largest_clock_duration_means_never_for_sleep_timeouts_and_schedules)
{
  auto ex = co_await asio::this_coro::executor;
  constexpr auto forever = fanout::clock::duration::max();
  tracker items;
  // A sleep that should outlast a 20 ms timeout.
  BOOST_TEST(code_of(co_await exception_of(fanout::with_timeout(fanout::sleep(forever), 20ms))) == timed_out());
  // A timeout that should never expire.
  BOOST_TEST(!co_await exception_of(fanout::with_timeout(tracked_value(items, 1ms, 1), forever)));
  // An item timeout that should never expire.
  BOOST_TEST(!co_await exception_of(fanout::async_map(
      {.item_timeout = forever}, [&items](int i) { return tracked_value(items, 1ms, i); }, iota_vector(3))));
  // Calls that should not come within 20 ms.
  int calls = 0;
  auto later = fanout::call_later(ex, forever, [&calls] { ++calls; });
  auto every = fanout::call_every(ex, forever, [&calls] { ++calls; });
  co_await fanout::sleep(20ms);
  BOOST_TEST(calls == 0);
  later.cancel();
  every.cancel();
  (void)co_await exception_of(later.async_wait());
  (void)co_await exception_of(every.async_wait());
}

BOOST_AUTO_TEST_SUITE_END() // huge_durations_tests
