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

// Stress (support/stress.hpp): maps cancelled at a random item, and deadlines at
// a random moment, on one thread and on a 4-thread pool.
//
// Every suite sits in its own top-level suite (and namespace): the suites are
// compiled together in unity batches (test/CMakeLists.txt).
BOOST_AUTO_TEST_SUITE(stress_cancellation_tests)

namespace asio = boost::asio;
using namespace std::chrono_literals;
using namespace fanout::test::stress;

BOOST_AUTO_TEST_CASE(cancelling_a_fail_fast_map_at_a_random_item_aborts_it_and_starts_nothing_after,
                     *boost::unit_test::timeout(300))
{
  const threads mode = threads::one;
  const int n = config().items;
  plan_table plans(config().seed + 2, 0);
  plans.make_slow(n - 1, 1ms); // the map cannot finish before the emission runs
  item_log log(n);
  log.cancel_at = draw(config().seed, 2, n - 1);
  const auto out =
      run_in(mode, cancelled_run(log, fanout::async_map(
                                          {.max_concurrency = 64}, [&](int i) { return stress_item(plans, log, i); },
                                          fanout::test::iota(0, n))));
  BOOST_TEST_MESSAGE("fail-fast cancelled at item " << log.cancel_at << ": seed " << config().seed << ", " << n
                                                    << " items: " << log.live.started.load() << " started, "
                                                    << log.count(aborted) << " aborted, " << out.seconds << " s");
  STRESS_CONTEXT(n)
  {
    BOOST_TEST(code_of(out.error) == asio::error::operation_aborted);
    BOOST_TEST(out.result.empty());
    BOOST_TEST(out.live_at_completion == 0);
    BOOST_TEST(log.started_after_cancel.load() == 0);
    BOOST_TEST(log.live.started.load() > log.cancel_at);
    BOOST_TEST(log.live.most.load() <= 64);
    BOOST_TEST(log.count(not_started) == n - log.live.started.load());
    BOOST_TEST(log.count(returned) + log.count(aborted) == log.live.started.load());
    check_every_started_item_ended(log);
  }
}

BOOST_AUTO_TEST_CASE(cancelling_a_settled_map_at_a_random_item_fails_it_with_operation_aborted,
                     *boost::unit_test::timeout(300))
{
  const threads mode = threads::one;
  const int n = config().items;
  plan_table plans(config().seed + 3, 50000);
  plans.make_slow(n - 1, 1ms);
  item_log log(n);
  log.cancel_at = draw(config().seed, 3, n - 1);
  const auto out =
      run_in(mode, cancelled_run(log, fanout::async_map_settled([&](int i) { return stress_item(plans, log, i); },
                                                                fanout::test::iota(0, n))));
  BOOST_TEST_MESSAGE("collect-all cancelled at item " << log.cancel_at << ": seed " << config().seed << ", " << n
                                                      << " items: " << log.count(aborted) << " aborted, " << out.seconds
                                                      << " s");
  STRESS_CONTEXT(n)
  {
    BOOST_TEST(code_of(out.error) == asio::error::operation_aborted);
    BOOST_TEST(out.result.empty());
    BOOST_TEST(out.live_at_completion == 0);
    BOOST_TEST(log.started_after_cancel.load() == 0);
    // Unlimited concurrency: every item started before the emission ran.
    BOOST_TEST(log.live.started.load() == n);
    BOOST_TEST(log.count(returned) + log.count(threw) + log.count(aborted) == n);
    BOOST_TEST(log.count(aborted) >= 1); // the slow last item at least
    check_every_started_item_ended(log);
  }
}

STRESS_TEST_CASE(a_deadline_at_a_random_moment_fails_both_kinds_of_map_with_timed_out_and_leaves_nothing_running)
{
  const int n = config().items;
  plan_table plans(config().seed + 4, 0);
  plans.make_slow(n - 1, 60ms); // far past any deadline drawn below
  const auto delay = std::chrono::microseconds(1000 + draw(config().seed, 4, 19000));
  {
    item_log log(n);
    const auto out = run_in(mode, [&]() -> asio::awaitable<run_summary<std::vector<std::int64_t>>> {
      co_return co_await fail_fast_run(plans, log, n, {.deadline = fanout::clock::now() + delay});
    }());
    BOOST_TEST_MESSAGE("fail-fast, deadline after " << delay.count() << " us: seed " << config().seed << ", " << n
                                                    << " items on " << name_of(mode) << ": " << log.live.started.load()
                                                    << " started, " << log.count(aborted) << " aborted, " << out.seconds
                                                    << " s");
    STRESS_CONTEXT(n)
    {
      BOOST_TEST(code_of(out.error) == timed_out());
      BOOST_TEST(out.live_at_completion == 0);
      BOOST_TEST(log.count(returned) + log.count(aborted) == log.live.started.load());
      check_every_started_item_ended(log);
    }
  }
  {
    item_log log(n);
    const auto out = run_in(mode, [&]() -> asio::awaitable<run_summary<std::vector<fanout::outcome<std::int64_t>>>> {
      co_return co_await settled_run(plans, log, n, {.max_concurrency = 100, .deadline = fanout::clock::now() + delay});
    }());
    BOOST_TEST_MESSAGE("collect-all, window 100, deadline after " << delay.count() << " us: " << log.live.started.load()
                                                                  << " started, " << out.seconds << " s");
    STRESS_CONTEXT(n)
    {
      BOOST_TEST(code_of(out.error) == timed_out());
      BOOST_TEST(out.live_at_completion == 0);
      BOOST_TEST(log.live.most.load() <= 100);
      check_every_started_item_ended(log);
    }
  }
}

BOOST_AUTO_TEST_SUITE_END() // stress_cancellation_tests
