#include <fanout/fanout.hpp>

#include <boost/test/unit_test.hpp>

#include "support/co_test.hpp"
#include "support/outcomes.hpp"
#include "support/tracker.hpp"

#include <boost/asio/awaitable.hpp>
#include <boost/asio/io_context.hpp>

#include <atomic>
#include <charconv>
#include <chrono>
#include <optional>
#include <sstream>
#include <string>
#include <string_view>
#include <system_error>
#include <thread>
#include <utility>
#include <vector>

// Every suite sits in its own top-level suite (and namespace): the suites are
// compiled together in unity batches (test/CMakeLists.txt).
BOOST_AUTO_TEST_SUITE(post_rows_tests)

// The seven timed examples of "Asynchronous part 1" (Python 3.4 asyncio),
// written with fanout the way the post writes them, one second scaled down to
// fanout::test::unit. Each row prints what the post prints (into a string
// instead of stdout) and checks the values printed and the elapsed time the
// post reports: 5, 5, 5, 1, 1, 5 and 3 seconds.

namespace asio = boost::asio;
using namespace std::chrono_literals;
using fanout::test::joined;
using fanout::test::unit;

namespace {

// How many calls of a() and b() are in flight, and the most at once.
fanout::test::tracker tracker;

// #notacoroutine
// def a(A="a"):
//     time.sleep(1)
//     return A
std::string a()
{
  const fanout::test::in_flight guard(tracker);
  std::this_thread::sleep_for(unit);
  return "a";
}

// @asyncio.coroutine
// def b(B="b"):
//     yield from asyncio.sleep(1)
//     return B
asio::awaitable<std::string> b()
{
  const fanout::test::in_flight guard(tracker);
  co_await fanout::sleep(unit);
  co_return "b";
}

// What a row printed: the timer's label, the lines in between, and the
// elapsed seconds the timer printed last.
struct printed_row
{
  std::string label;
  std::vector<std::string> values;
  std::optional<double> seconds;
};

printed_row parse(const std::string& text)
{
  std::vector<std::string> lines;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);)
    lines.push_back(line);
  printed_row row;
  if (lines.size() < 2)
    return row;
  row.label = lines.front();
  row.values.assign(lines.begin() + 1, lines.end() - 1);
  const std::string& last = lines.back();
  double value = 0.0;
  const auto [end, ec] = std::from_chars(last.data(), last.data() + last.size(), value);
  if (ec == std::errc() && end == last.data() + last.size())
    row.seconds = value;
  return row;
}

void check_seconds(const printed_row& row, std::chrono::milliseconds expected)
{
  BOOST_TEST_REQUIRE(row.seconds.has_value());
  FANOUT_CHECK_ELAPSED(*row.seconds, expected);
}

} // namespace

BOOST_AUTO_TEST_CASE(row_1_normal_synchronous_code_takes_five_units, *boost::unit_test::timeout(60))
{
  tracker.reset();
  std::ostringstream out;
  {
    fanout::timer t("Normal synchronous code", out);
    for (int x = 0; x < 5; ++x)
      out << a() << '\n';
  }
  const auto row = parse(out.str());
  BOOST_TEST(row.label == "Normal synchronous code");
  BOOST_TEST((row.values == std::vector<std::string>(5, "a")));
  BOOST_TEST(tracker.most.load() == 1);
  check_seconds(row, 5 * unit);
}

BOOST_AUTO_TEST_CASE(row_2_using_asynchronous_code_synchronously_takes_five_units, *boost::unit_test::timeout(60))
{
  tracker.reset();
  asio::io_context loop;
  std::ostringstream out;
  {
    fanout::timer t("Using asynchronous code synchronously", out);
    for (int x = 0; x < 5; ++x) {
      std::string retval = fanout::run(loop, b());
      out << retval << '\n';
    }
  }
  const auto row = parse(out.str());
  BOOST_TEST(row.label == "Using asynchronous code synchronously");
  BOOST_TEST((row.values == std::vector<std::string>(5, "b")));
  BOOST_TEST(tracker.most.load() == 1);
  check_seconds(row, 5 * unit);
}

BOOST_AUTO_TEST_CASE(row_3_separate_function_call_and_code_running_takes_five_units, *boost::unit_test::timeout(60))
{
  tracker.reset();
  asio::io_context loop;
  std::ostringstream out;
  {
    fanout::timer t("Separate function call, and code running", out);
    std::vector<asio::awaitable<std::string>> tasks;
    for (int x = 0; x < 5; ++x) {
      auto task = b();
      tasks.push_back(std::move(task));
    }
    BOOST_TEST(tracker.started.load() == 0); // defined, not running: coroutines are lazy
    for (auto& task : tasks) {
      std::string retval = fanout::run(loop, std::move(task));
      out << retval << '\n';
    }
  }
  const auto row = parse(out.str());
  BOOST_TEST(row.label == "Separate function call, and code running");
  BOOST_TEST((row.values == std::vector<std::string>(5, "b")));
  BOOST_TEST(tracker.most.load() == 1);
  check_seconds(row, 5 * unit);
}

BOOST_AUTO_TEST_CASE(row_4_briefer_concurrency_with_spawned_tasks_takes_one_unit, *boost::unit_test::timeout(60))
{
  tracker.reset();
  asio::io_context loop;
  std::ostringstream out;
  {
    fanout::timer t("Briefer concurrency with map", out);
    std::vector<fanout::task<std::string>> tasks;
    for (int x = 0; x < 5; ++x)
      tasks.push_back(fanout::spawn(loop, b()));
    std::vector<std::string> retvals;
    for (auto& task : tasks)
      retvals.push_back(fanout::run(loop, task));
    out << joined(retvals) << '\n';
  }
  const auto row = parse(out.str());
  BOOST_TEST(row.label == "Briefer concurrency with map");
  BOOST_TEST((row.values == std::vector<std::string>{"b b b b b"}));
  BOOST_TEST(tracker.most.load() == 5);
  check_seconds(row, unit);
}

BOOST_AUTO_TEST_CASE(row_5_async_map_not_using_the_event_loop_directly_takes_one_unit, *boost::unit_test::timeout(60))
{
  tracker.reset();
  std::ostringstream out;
  {
    fanout::timer t("Async map, not using the event loop directly", out);
    std::vector<asio::awaitable<std::string> (*)()> tasks(5, &b);
    auto retvals = fanout::run(fanout::async_map([](auto& x) { return x(); }, tasks));
    out << joined(retvals) << '\n';
  }
  const auto row = parse(out.str());
  BOOST_TEST(row.label == "Async map, not using the event loop directly");
  BOOST_TEST((row.values == std::vector<std::string>{"b b b b b"}));
  BOOST_TEST(tracker.most.load() == 5);
  check_seconds(row, unit);
}

BOOST_AUTO_TEST_CASE(row_6_it_still_works_with_synchronous_functions_takes_five_units, *boost::unit_test::timeout(60))
{
  tracker.reset();
  std::ostringstream out;
  {
    fanout::timer t("It still works with synchronous functions", out);
    std::vector<std::string (*)()> tasks(5, &a);
    auto retvals = fanout::run(fanout::async_map([](auto& x) { return x(); }, tasks));
    out << joined(retvals) << '\n';
  }
  const auto row = parse(out.str());
  BOOST_TEST(row.label == "It still works with synchronous functions");
  BOOST_TEST((row.values == std::vector<std::string>{"a a a a a"}));
  BOOST_TEST(tracker.most.load() == 1);
  check_seconds(row, 5 * unit);
}

BOOST_AUTO_TEST_CASE(row_7_mixin_it_up_takes_three_units, *boost::unit_test::timeout(60))
{
  tracker.reset();
  std::ostringstream out;
  {
    auto apply = [](auto& x) { return x(); };
    fanout::timer t("Mixin' it up", out);
    std::vector<fanout::callable<std::string()>> tasks{b, a, b, a, b};
    auto retvals = fanout::run(fanout::async_map(apply, tasks));
    out << joined(retvals) << '\n';
  }
  const auto row = parse(out.str());
  BOOST_TEST(row.label == "Mixin' it up");
  BOOST_TEST((row.values == std::vector<std::string>{"b a b a b"}));
  BOOST_TEST(tracker.most.load() == 3); // two b()s asleep while an a() blocks
  check_seconds(row, 3 * unit);
}

BOOST_AUTO_TEST_CASE(row_7_mixin_it_up_with_blocking_calls_offloaded_takes_one_unit, *boost::unit_test::timeout(60))
{
  tracker.reset();
  std::string label;
  std::chrono::duration<double> elapsed{-1.0};
  std::vector<std::string> retvals;
  (void)fanout::blocking_executor(); // start the pool's threads before the clock (slow under TSan)
  {
    auto apply = [](auto& x) { return x(); };
    fanout::timer t("Mixin' it up, offloaded", [&](std::string_view l, std::chrono::duration<double> d) {
      label = std::string(l);
      elapsed = d;
    });
    std::vector<fanout::callable<std::string()>> tasks{b, a, b, a, b};
    retvals =
        fanout::run(fanout::async_map(fanout::map_options{.blocking = fanout::blocking_policy::offload}, apply, tasks));
  }
  BOOST_TEST(label == "Mixin' it up, offloaded");
  BOOST_TEST(joined(retvals) == "b a b a b");
  BOOST_TEST(tracker.most.load() == 5);
  FANOUT_CHECK_ELAPSED(elapsed.count(), unit);
}

BOOST_AUTO_TEST_SUITE_END() // post_rows_tests
