#include <fanout/sync_map.hpp>

#include <boost/test/unit_test.hpp>

#include "support/co_test.hpp"

#include <fanout/callable.hpp>
#include <fanout/sleep.hpp>

#include <boost/asio/awaitable.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>

#include <atomic>
#include <chrono>
#include <memory>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

// Every suite sits in its own top-level suite (and namespace): the suites are
// compiled together in unity batches (test/CMakeLists.txt).
BOOST_AUTO_TEST_SUITE(sync_map_tests)

namespace asio = boost::asio;
using fanout::test::seconds_since;
using fanout::test::unit;

namespace {

// Counts the items running now, and how many ever started.
struct counters
{
  std::atomic<int> running{0};
  std::atomic<int> started{0};
};

asio::awaitable<int> sleepy(std::shared_ptr<counters> c, int units, int value)
{
  ++c->started;
  ++c->running;
  struct leave
  {
    counters* c;
    ~leave() { --c->running; }
  } guard{c.get()};
  co_await fanout::sleep(unit * units);
  co_return value;
}

std::string a()
{
  std::this_thread::sleep_for(unit);
  return "a";
}

asio::awaitable<std::string> b()
{
  co_await fanout::sleep(unit);
  co_return "b";
}

} // namespace

BOOST_AUTO_TEST_CASE(sync_map_yields_every_result_in_input_order)
{
  auto c = std::make_shared<counters>();
  const std::vector<int> units{3, 1, 2};
  std::vector<int> seen;
  for (int v : fanout::sync_map([c](int u) { return sleepy(c, u, u * 10); }, units))
    seen.push_back(v);
  BOOST_TEST((seen == std::vector<int>{30, 10, 20}));
  BOOST_TEST(c->running.load() == 0);
}

BOOST_AUTO_TEST_CASE(sync_map_hands_out_the_first_result_before_the_last_item_finishes)
{
  auto c = std::make_shared<counters>();
  const std::vector<int> units{1, 6};
  const auto start = fanout::clock::now();
  double first_at = -1;
  std::vector<int> seen;
  for (int v : fanout::sync_map([c](int u) { return sleepy(c, u, u); }, units)) {
    if (first_at < 0)
      first_at = seconds_since(start);
    seen.push_back(v);
  }
  BOOST_TEST((seen == std::vector<int>{1, 6}));
  FANOUT_CHECK_ELAPSED(first_at, unit);
  FANOUT_CHECK_ELAPSED(seconds_since(start), unit * 6);
}

BOOST_AUTO_TEST_CASE(sync_map_of_the_posts_mixed_list_takes_three_units_inline_and_one_offloaded)
{
  std::vector<fanout::callable<std::string()>> tasks{b, a, b, a, b};
  auto apply = [](auto& x) { return x(); };
  {
    const auto start = fanout::clock::now();
    std::vector<std::string> seen;
    for (auto& s : fanout::sync_map(apply, tasks))
      seen.push_back(s);
    BOOST_TEST((seen == std::vector<std::string>{"b", "a", "b", "a", "b"}));
    FANOUT_CHECK_ELAPSED(seconds_since(start), unit * 3);
  }
  {
    fanout::map_options offload;
    offload.blocking = fanout::blocking_policy::offload;
    (void)fanout::blocking_executor(); // the pool's threads start before the clock does
    const auto start = fanout::clock::now();
    std::vector<std::string> seen;
    for (auto& s : fanout::sync_map(offload, apply, tasks))
      seen.push_back(s);
    BOOST_TEST((seen == std::vector<std::string>{"b", "a", "b", "a", "b"}));
    FANOUT_CHECK_ELAPSED(seconds_since(start), unit);
  }
}

BOOST_AUTO_TEST_CASE(breaking_out_of_a_sync_map_early_cancels_and_waits_for_the_rest)
{
  auto c = std::make_shared<counters>();
  const std::vector<int> units{1, 200, 200, 200};
  const auto start = fanout::clock::now();
  {
    for (int v : fanout::sync_map([c](int u) { return sleepy(c, u, u); }, units)) {
      BOOST_TEST(v == 1);
      break;
    }
    // The range is gone: everything it started has finished.
    BOOST_TEST(c->running.load() == 0);
  }
  BOOST_TEST(c->started.load() == 4);
  BOOST_TEST(seconds_since(start) < 2.0); // not the 200-unit (10 s) sleeps
}

BOOST_AUTO_TEST_CASE(a_sync_map_that_is_never_iterated_starts_nothing)
{
  auto c = std::make_shared<counters>();
  const std::vector<int> units{1, 1};
  {
    auto results = fanout::sync_map([c](int u) { return sleepy(c, u, u); }, units);
  }
  BOOST_TEST(c->started.load() == 0);
}

BOOST_AUTO_TEST_CASE(a_range_moved_before_it_started_yields_every_result_from_the_new_one)
{
  auto c = std::make_shared<counters>();
  const std::vector<int> values{3, 1, 2};
  std::vector<int> got;
  {
    auto r = fanout::sync_map([c](int v) { return sleepy(c, v, v); }, values);
    auto r2 = std::move(r);
    BOOST_TEST(r.ended()); // NOLINT(bugprone-use-after-move): the moved-from state is specified
    BOOST_TEST((r.begin() == std::default_sentinel));
    for (int v : r2)
      got.push_back(v);
  } // both destroyed
  BOOST_TEST(got == values);
  BOOST_TEST(c->started.load() == 3);
  BOOST_TEST(c->running.load() == 0);
}

BOOST_AUTO_TEST_CASE(a_range_moved_after_it_started_goes_on_from_its_current_result)
{
  auto c = std::make_shared<counters>();
  const std::vector<int> values{1, 2, 3};
  std::vector<int> got;
  {
    auto r = fanout::sync_map([c](int v) { return sleepy(c, v, v); }, values);
    auto it = r.begin();
    BOOST_TEST(*it == 1);
    auto r2 = std::move(r); // `it` is now invalid
    BOOST_TEST(r.ended());  // NOLINT(bugprone-use-after-move): the moved-from state is specified
    for (auto it2 = r2.begin(); it2 != r2.end(); ++it2)
      got.push_back(*it2);
  }
  BOOST_TEST(got == values);
  BOOST_TEST(c->running.load() == 0);
}

BOOST_AUTO_TEST_CASE(a_started_range_moved_and_dropped_early_cancels_and_waits_for_the_rest)
{
  auto c = std::make_shared<counters>();
  const std::vector<int> units{1, 200, 200};
  const auto start = fanout::clock::now();
  {
    auto r = fanout::sync_map([c](int u) { return sleepy(c, u, u); }, units);
    BOOST_TEST(*r.begin() == 1);
    auto r2 = std::move(r);
    // r2 is destroyed first, mid-map, then the moved-from r.
  }
  BOOST_TEST(c->started.load() == 3);
  BOOST_TEST(c->running.load() == 0);
  BOOST_TEST(seconds_since(start) < 2.0); // not the 200-unit (10 s) sleeps
}

BOOST_AUTO_TEST_CASE(a_failing_item_is_rethrown_from_the_loop_after_the_others_were_cancelled)
{
  auto c = std::make_shared<counters>();
  const std::vector<int> units{1, 2, 200};
  std::vector<int> seen;
  bool caught = false;
  const auto start = fanout::clock::now();
  try {
    for (int v : fanout::sync_map(
             [c](int u) -> asio::awaitable<int> {
               if (u == 2) {
                 co_await fanout::sleep(unit * 2);
                 throw std::runtime_error("two");
               }
               co_return co_await sleepy(c, u, u);
             },
             units))
      seen.push_back(v);
  } catch (const std::runtime_error& e) {
    caught = std::string(e.what()) == "two";
  }
  BOOST_TEST(caught);
  BOOST_TEST((seen == std::vector<int>{1}));
  BOOST_TEST(c->running.load() == 0);
  BOOST_TEST(seconds_since(start) < 2.0);
}

BOOST_AUTO_TEST_CASE(sync_map_on_a_given_io_context_lets_its_other_work_progress)
{
  asio::io_context ctx{1};
  int ticks = 0;
  asio::steady_timer tick(ctx, unit / 2);
  tick.async_wait([&](boost::system::error_code) { ++ticks; });
  auto c = std::make_shared<counters>();
  const std::vector<int> units{2};
  std::vector<int> seen;
  for (int v : fanout::sync_map(
           ctx, [c](int u) { return sleepy(c, u, u); }, units))
    seen.push_back(v);
  BOOST_TEST((seen == std::vector<int>{2}));
  BOOST_TEST(ticks == 1);
}

BOOST_AUTO_TEST_SUITE_END() // sync_map_tests
