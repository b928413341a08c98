#include <fanout/async_map.hpp>

#include <boost/test/unit_test.hpp>

#include "support/co_test.hpp"
#include "support/outcomes.hpp"
#include "support/ranges.hpp"
#include "support/stress.hpp"
#include "support/tracker.hpp"

#include <fanout/callable.hpp>
#include <fanout/error.hpp>
#include <fanout/map_options.hpp>
#include <fanout/map_stream.hpp>
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

// Stress (support/stress.hpp): fail-fast and collect-all maps of many randomly
// delayed, randomly failing items, unbounded and through windows, on one thread
// and on a 4-thread pool.
//
// Every suite sits in its own top-level suite (and namespace): the suites are
// compiled together in unity batches (test/CMakeLists.txt).
BOOST_AUTO_TEST_SUITE(stress_maps_tests)

namespace asio = boost::asio;
using namespace std::chrono_literals;
using namespace fanout::test::stress;

BOOST_AUTO_TEST_SUITE(fail_fast)

STRESS_TEST_CASE(async_map_of_randomly_delayed_items_gives_every_result_in_input_order_and_leaves_nothing_running)
{
  const int n = config().items;
  const plan_table plans(config().seed, 0);
  item_log log(n);
  const auto out = run_in(mode, fail_fast_run(plans, log, n));
  BOOST_TEST_MESSAGE("fail-fast, no failures: seed " << config().seed << ", " << n << " items on " << name_of(mode)
                                                     << ": " << out.seconds << " s");
  STRESS_CONTEXT(n)
  {
    BOOST_TEST(!out.error);
    BOOST_TEST_REQUIRE(out.result.size() == static_cast<std::size_t>(n));
    BOOST_TEST(wrong_values(out.result) == 0);
    BOOST_TEST(out.live_at_completion == 0);
    BOOST_TEST(log.count(returned) == n);
    BOOST_TEST(log.live.started.load() == n);
    check_every_started_item_ended(log);
  }
}

STRESS_TEST_CASE(async_map_with_random_failures_reports_exactly_one_of_them_and_leaves_nothing_running)
{
  const int n = config().items;
  plan_table plans(config().seed, 20); // about 2 failures in 100,000, and one forced in the second half
  plans.force_failure(n / 2 + draw(config().seed, 1, n / 2));
  item_log log(n);
  const auto out = run_in(mode, fail_fast_run(plans, log, n));
  const int reported = failure_index_of(out.error);
  BOOST_TEST_MESSAGE("fail-fast with failures: seed " << config().seed << ", " << n << " items on " << name_of(mode)
                                                      << ": item " << reported << " reported, " << log.count(threw)
                                                      << " threw, " << log.live.started.load() << " started, "
                                                      << out.seconds << " s");
  STRESS_CONTEXT(n)
  {
    BOOST_TEST_REQUIRE(reported >= 0); // the map failed with an item's own exception, not another error
    BOOST_TEST(log.status(reported) == threw);
    BOOST_TEST(plans(reported).fails);
    BOOST_TEST(out.result.empty());
    BOOST_TEST(out.live_at_completion == 0);
    BOOST_TEST(log.count(threw) >= 1);
    check_every_started_item_ended(log);
    // Every item that ran did what it was planned to do.
    int mismatched = 0;
    for (int i = 0; i < n; ++i)
      if ((log.status(i) == threw && !plans(i).fails) || (log.status(i) == returned && plans(i).fails))
        ++mismatched;
    BOOST_TEST(mismatched == 0);
    if (mode == threads::one) {
      // One thread: the first item to throw is the one reported, and the
      // failure stops the map at once: nothing starts after it.
      BOOST_TEST(reported == log.first_failure.load());
      BOOST_TEST(log.started_after_failure.load() == 0);
    }
  }
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(collect_all)

STRESS_TEST_CASE(async_map_settled_with_random_failures_reports_every_failure_exactly_once_in_its_own_slot)
{
  const int n = config().items;
  const plan_table plans(config().seed, 50000); // 5% fail
  item_log log(n);
  const auto out = run_in(mode, settled_run(plans, log, n));
  const int planned = plans.failures_below(n);
  BOOST_TEST_MESSAGE("collect-all: seed " << config().seed << ", " << n << " items on " << name_of(mode) << ": "
                                          << planned << " failures, " << out.seconds << " s");
  STRESS_CONTEXT(n)
  {
    BOOST_TEST(!out.error);
    int reported = 0;
    check_outcomes(plans, out.result, n, reported);
    BOOST_TEST(reported == planned);
    BOOST_TEST(log.count(threw) == planned);
    BOOST_TEST(log.count(returned) == n - planned);
    BOOST_TEST(out.live_at_completion == 0);
    BOOST_TEST(log.live.started.load() == n);
    check_every_started_item_ended(log);
  }
}

STRESS_TEST_CASE(async_map_settled_with_a_window_and_random_failures_keeps_every_outcome_and_the_window)
{
  const int n = config().items / 5;
  const plan_table plans(config().seed + 1, 50000);
  item_log log(n);
  const std::size_t window = 16;
  const auto out = run_in(mode, settled_run(plans, log, n, {.max_concurrency = window}));
  const int planned = plans.failures_below(n);
  BOOST_TEST_MESSAGE("collect-all, window 16: seed " << config().seed << ", " << n << " items on " << name_of(mode)
                                                     << ": peak " << log.live.most.load() << ", " << out.seconds
                                                     << " s");
  STRESS_CONTEXT(n)
  {
    BOOST_TEST(!out.error);
    int reported = 0;
    check_outcomes(plans, out.result, n, reported);
    BOOST_TEST(reported == planned);
    BOOST_TEST(log.live.most.load() <= static_cast<std::int64_t>(window));
    BOOST_TEST(out.live_at_completion == 0);
    check_every_started_item_ended(log);
  }
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(bounded)

STRESS_TEST_CASE(async_map_with_windows_of_1_3_64_and_1000_gives_every_result_and_never_exceeds_the_window)
{
  const int n = config().items / 5;
  for (const std::size_t window : {std::size_t{1}, std::size_t{3}, std::size_t{64}, std::size_t{1000}}) {
    const plan_table plans(config().seed + window, 0);
    const int size = window == 1 ? n / 4 : n; // one at a time pays every delay in turn
    item_log log(size);
    const auto out = run_in(mode, fail_fast_run(plans, log, size, {.max_concurrency = window}));
    BOOST_TEST_MESSAGE("window " << window << ": seed " << config().seed << ", " << size << " items on "
                                 << name_of(mode) << ": peak " << log.live.most.load() << ", " << out.seconds << " s");
    STRESS_CONTEXT(size)
    {
      BOOST_TEST_CONTEXT("window " << window)
      {
        BOOST_TEST(!out.error);
        BOOST_TEST_REQUIRE(out.result.size() == static_cast<std::size_t>(size));
        BOOST_TEST(wrong_values(out.result) == 0);
        BOOST_TEST(log.live.most.load() <= static_cast<std::int64_t>(window));
        BOOST_TEST(log.live.started.load() == size);
        BOOST_TEST(out.live_at_completion == 0);
        check_every_started_item_ended(log);
      }
    }
  }
}

STRESS_TEST_CASE(async_map_settled_of_mixed_coroutine_and_offloaded_blocking_callables_reports_every_outcome)
{
  const int n = std::max(config().items / 50, 10);
  const plan_table plans(config().seed + 5, 50000);
  item_log log(n);
  std::vector<fanout::callable<std::int64_t(int)>> calls;
  calls.reserve(static_cast<std::size_t>(n));
  for (int i = 0; i < n; ++i) {
    if (draw(config().seed, 1000 + static_cast<std::uint64_t>(i), 2) == 0)
      calls.emplace_back([&plans, &log](int k) { return stress_item(plans, log, k); });
    else
      calls.emplace_back([&plans, &log](int k) { return blocking_item(plans, log, k); });
  }
  const auto out = run_in(mode, [&]() -> asio::awaitable<run_summary<std::vector<fanout::outcome<std::int64_t>>>> {
    run_summary<std::vector<fanout::outcome<std::int64_t>>> s;
    s.result = co_await fanout::async_map_settled(
        {.max_concurrency = 32, .blocking = fanout::blocking_policy::offload},
        [](const fanout::callable<std::int64_t(int)>& c, int i) { return c(i); }, calls, fanout::test::iota(0, n));
    s.live_at_completion = log.live.now.load();
    co_return s;
  }());
  BOOST_TEST_MESSAGE("mixed callables, offloaded: seed " << config().seed << ", " << n << " items on " << name_of(mode)
                                                         << ": peak " << log.live.most.load());
  STRESS_CONTEXT(n)
  {
    int reported = 0;
    check_outcomes(plans, out.result, n, reported);
    BOOST_TEST(reported == plans.failures_below(n));
    BOOST_TEST(log.live.most.load() <= 32);
    BOOST_TEST(out.live_at_completion == 0);
    check_every_started_item_ended(log);
  }
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE_END() // stress_maps_tests
