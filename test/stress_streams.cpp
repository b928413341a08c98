#include <fanout/map_stream.hpp>

#include <boost/test/unit_test.hpp>

#include "support/co_test.hpp"
#include "support/outcomes.hpp"
#include "support/ranges.hpp"
#include "support/stress.hpp"
#include "support/tracker.hpp"

#include <fanout/async_map.hpp>
#include <fanout/callable.hpp>
#include <fanout/error.hpp>
#include <fanout/map_options.hpp>
#include <fanout/outcome.hpp>
#include <fanout/run.hpp>
#include <fanout/sleep.hpp>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/cancellation_signal.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/post.hpp>
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
#include <cstdlib>
#include <exception>
#include <future>
#include <memory>
#include <stdexcept>
#include <string>
#include <thread>
#include <utility>
#include <vector>

// Stress (support/stress.hpp): ordered and as-completed streams of randomly
// delayed items, with windows, failures and readers that cancel.
//
// Every suite sits in its own top-level suite (and namespace): the suites are
// compiled together in unity batches (test/CMakeLists.txt).
BOOST_AUTO_TEST_SUITE(stress_streams_tests)

namespace asio = boost::asio;
using namespace std::chrono_literals;
using namespace fanout::test::stress;

struct stream_summary
{
  std::exception_ptr error;
  int delivered = 0;
  int wrong = 0;
  int duplicates = 0;
  std::int64_t live_at_end = -1;
};

// Reads an ordered stream, pausing the reader now and then; cancels it after
// @p cancel_after elements (never if negative).
asio::awaitable<stream_summary> read_ordered(const plan_table& plans, item_log& log, int n, std::size_t window,
                                             int cancel_after)
{
  stream_summary out;
  auto stream = fanout::async_map_stream(
      {.max_concurrency = window}, [&](int i) { return stress_item(plans, log, i); }, fanout::test::iota(0, n));
  try {
    while (auto v = co_await stream.async_next()) {
      out.wrong += *v == value_of(out.delivered) ? 0 : 1;
      ++out.delivered;
      if (out.delivered % 7 == 0) // a slow reader, sometimes
        co_await asio::post(co_await asio::this_coro::executor, asio::use_awaitable);
      if (out.delivered == cancel_after)
        stream.cancel();
    }
  } catch (...) {
    out.error = std::current_exception();
  }
  out.live_at_end = log.live.now.load();
  co_return out;
}

asio::awaitable<stream_summary> read_as_completed(const plan_table& plans, item_log& log, int n, std::size_t window,
                                                  int cancel_after)
{
  stream_summary out;
  std::vector<std::uint8_t> seen(static_cast<std::size_t>(n), 0);
  auto stream = fanout::async_map_as_completed(
      {.max_concurrency = window}, [&](int i) { return stress_item(plans, log, i); }, fanout::test::iota(0, n));
  try {
    while (auto r = co_await stream.async_next()) {
      const auto [index, value] = *r;
      if (index >= seen.size() || value != value_of(static_cast<int>(index)))
        ++out.wrong;
      else if (seen[index]++ != 0)
        ++out.duplicates;
      ++out.delivered;
      if (out.delivered % 7 == 0)
        co_await asio::post(co_await asio::this_coro::executor, asio::use_awaitable);
      if (out.delivered == cancel_after)
        stream.cancel();
    }
  } catch (...) {
    out.error = std::current_exception();
  }
  out.live_at_end = log.live.now.load();
  co_return out;
}

STRESS_TEST_CASE(streams_with_a_window_give_every_result_once_and_never_exceed_the_window)
{
  const int n = config().items / 5;
  const std::size_t window = 64;
  const plan_table plans(config().seed + 6, 0);
  {
    item_log log(n);
    const auto out = run_in(mode, read_ordered(plans, log, n, window, -1));
    BOOST_TEST_MESSAGE("ordered stream, window 64: seed " << config().seed << ", " << n << " items on " << name_of(mode)
                                                          << ": peak " << log.live.most.load());
    STRESS_CONTEXT(n)
    {
      BOOST_TEST(!out.error);
      BOOST_TEST(out.delivered == n);
      BOOST_TEST(out.wrong == 0);
      BOOST_TEST(log.live.most.load() <= static_cast<std::int64_t>(window));
      BOOST_TEST(out.live_at_end == 0);
      check_every_started_item_ended(log);
    }
  }
  {
    item_log log(n);
    const auto out = run_in(mode, read_as_completed(plans, log, n, window, -1));
    BOOST_TEST_MESSAGE("as-completed stream, window 64: peak " << log.live.most.load());
    STRESS_CONTEXT(n)
    {
      BOOST_TEST(!out.error);
      BOOST_TEST(out.delivered == n);
      BOOST_TEST(out.wrong == 0);
      BOOST_TEST(out.duplicates == 0);
      BOOST_TEST(log.live.most.load() <= static_cast<std::int64_t>(window));
      BOOST_TEST(out.live_at_end == 0);
      check_every_started_item_ended(log);
    }
  }
}

STRESS_TEST_CASE(streams_with_random_failures_throw_one_of_them_after_correct_elements_and_leave_nothing_running)
{
  const int n = config().items / 5;
  const std::size_t window = 64;
  plan_table plans(config().seed + 7, 100);
  plans.force_failure(n / 2 + draw(config().seed, 7, n / 2));
  for (const bool ordered : {true, false}) {
    item_log log(n);
    const auto out =
        run_in(mode, ordered ? read_ordered(plans, log, n, window, -1) : read_as_completed(plans, log, n, window, -1));
    const int reported = failure_index_of(out.error);
    BOOST_TEST_MESSAGE((ordered ? "ordered" : "as-completed")
                       << " stream with failures: seed " << config().seed << ", " << n << " items on " << name_of(mode)
                       << ": item " << reported << " reported after " << out.delivered << " elements");
    STRESS_CONTEXT(n)
    {
      BOOST_TEST_REQUIRE(reported >= 0);
      BOOST_TEST(log.status(reported) == threw);
      BOOST_TEST(out.wrong == 0);
      BOOST_TEST(out.duplicates == 0);
      if (ordered)
        BOOST_TEST(out.delivered <= reported); // elements come in order: none from past the failure
      BOOST_TEST(out.live_at_end == 0);
      check_every_started_item_ended(log);
    }
  }
}

STRESS_TEST_CASE(streams_cancelled_by_the_reader_at_a_random_element_end_with_operation_aborted)
{
  const int n = config().items / 5;
  const std::size_t window = 64;
  const plan_table plans(config().seed + 8, 0);
  const int cancel_after = 1 + draw(config().seed, 8, n - 100);
  for (const bool ordered : {true, false}) {
    item_log log(n);
    const auto out = run_in(mode, ordered ? read_ordered(plans, log, n, window, cancel_after)
                                          : read_as_completed(plans, log, n, window, cancel_after));
    BOOST_TEST_MESSAGE((ordered ? "ordered" : "as-completed")
                       << " stream cancelled after " << cancel_after << " elements: seed " << config().seed << ", " << n
                       << " items on " << name_of(mode) << ": " << log.live.started.load() << " started");
    STRESS_CONTEXT(n)
    {
      BOOST_TEST(code_of(out.error) == asio::error::operation_aborted);
      BOOST_TEST(out.delivered == cancel_after);
      BOOST_TEST(out.wrong == 0);
      BOOST_TEST(log.live.started.load() <= cancel_after + static_cast<int>(window));
      BOOST_TEST(out.live_at_end == 0);
      check_every_started_item_ended(log);
    }
  }
}

BOOST_AUTO_TEST_SUITE_END() // stress_streams_tests
