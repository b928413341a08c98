#include "post/rows.hpp"

#include <fanout/fanout.hpp>

#include <boost/test/unit_test.hpp>

#include "support/co_test.hpp"
#include "support/outcomes.hpp"
#include "support/tracker.hpp"

#include <boost/asio/awaitable.hpp>
#include <boost/asio/io_context.hpp>

#include <charconv>
#include <chrono>
#include <cstddef>
#include <optional>
#include <sstream>
#include <string>
#include <system_error>
#include <utility>
#include <vector>

// Every suite sits in its own top-level suite (and namespace): the suites are
// compiled together in unity batches (test/CMakeLists.txt).
BOOST_AUTO_TEST_SUITE(post_rows_tests)

// The seven timed examples of "Asynchronous part 1" (Python 3.4 asyncio), as
// the post example prints them and fanout-bench times them (post/rows.hpp),
// one second scaled down to fanout::test::unit. Each row prints what the post
// prints (into a string instead of stdout); the suite checks the values
// printed and the elapsed time the post reports (5, 5, 5, 1, 1, 5 and 3
// seconds), and how many calls of a() and b() were in flight at once.

namespace asio = boost::asio;
using namespace std::chrono_literals;
using fanout::test::joined;
using fanout::test::unit;

namespace {

// How many calls of a() and b() are in flight, and the most at once.
fanout::test::tracker tracker;

// Tells the tracker of every call of a() and b().
class tracked_calls final : public post::call_observer
{
public:
  void enter() override { tracker.enter(); }
  void leave() override { tracker.leave(); }
};

tracked_calls observer;

// The post's setting for a row: the test unit, @p loop, printing into @p out,
// every call tracked.
post::setting setting(asio::io_context& loop, std::ostream& out)
{
  return {.unit = unit, .loop = loop, .out = out, .observer = &observer};
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

// Runs row @p number (1-based) of post::rows() on @p loop, the tracker reset
// first, and returns what it printed. The values it gives are the ones the
// table expects, and its label is the table's name for it.
printed_row run_row(std::size_t number, asio::io_context& loop)
{
  const post::row& spec = post::rows().at(number - 1);
  tracker.reset();
  std::ostringstream out;
  const post::values given = spec.run(setting(loop, out));
  BOOST_TEST(given == spec.expected);
  auto row = parse(out.str());
  BOOST_TEST(row.label == spec.name);
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
  asio::io_context loop;
  const auto row = run_row(1, loop);
  BOOST_TEST(row.label == "Normal synchronous code");
  BOOST_TEST((row.values == std::vector<std::string>(5, "a")));
  BOOST_TEST(tracker.most.load() == 1);
  check_seconds(row, 5 * unit);
}

BOOST_AUTO_TEST_CASE(row_2_using_asynchronous_code_synchronously_takes_five_units, *boost::unit_test::timeout(60))
{
  asio::io_context loop;
  const auto row = run_row(2, loop);
  BOOST_TEST(row.label == "Using asynchronous code synchronously");
  BOOST_TEST((row.values == std::vector<std::string>(5, "b")));
  BOOST_TEST(tracker.most.load() == 1);
  check_seconds(row, 5 * unit);
}

BOOST_AUTO_TEST_CASE(row_3_separate_function_call_and_code_running_takes_five_units, *boost::unit_test::timeout(60))
{
  asio::io_context loop;
  {
    // What the row does first: b() makes a coroutine, which runs nothing yet.
    std::ostringstream out;
    const post::function_b b(setting(loop, out));
    tracker.reset();
    auto task = b();
    BOOST_TEST(tracker.started.load() == 0); // defined, not running: coroutines are lazy
  }
  const auto row = run_row(3, loop);
  BOOST_TEST(row.label == "Separate function call, and code running");
  BOOST_TEST((row.values == std::vector<std::string>(5, "b")));
  BOOST_TEST(tracker.most.load() == 1);
  check_seconds(row, 5 * unit);
}

BOOST_AUTO_TEST_CASE(row_4_briefer_concurrency_with_spawned_tasks_takes_one_unit, *boost::unit_test::timeout(60))
{
  asio::io_context loop;
  const auto row = run_row(4, loop);
  BOOST_TEST(row.label == "Briefer concurrency with map");
  BOOST_TEST((row.values == std::vector<std::string>{"b b b b b"}));
  BOOST_TEST(tracker.most.load() == 5);
  check_seconds(row, unit);
}

BOOST_AUTO_TEST_CASE(row_5_async_map_not_using_the_event_loop_directly_takes_one_unit, *boost::unit_test::timeout(60))
{
  asio::io_context loop;
  const auto row = run_row(5, loop);
  BOOST_TEST(row.label == "Async map, not using the event loop directly");
  BOOST_TEST((row.values == std::vector<std::string>{"b b b b b"}));
  BOOST_TEST(tracker.most.load() == 5);
  check_seconds(row, unit);
}

BOOST_AUTO_TEST_CASE(row_6_it_still_works_with_synchronous_functions_takes_five_units, *boost::unit_test::timeout(60))
{
  asio::io_context loop;
  const auto row = run_row(6, loop);
  BOOST_TEST(row.label == "It still works with synchronous functions");
  BOOST_TEST((row.values == std::vector<std::string>{"a a a a a"}));
  BOOST_TEST(tracker.most.load() == 1);
  check_seconds(row, 5 * unit);
}

BOOST_AUTO_TEST_CASE(row_7_mixin_it_up_takes_three_units, *boost::unit_test::timeout(60))
{
  asio::io_context loop;
  const auto row = run_row(7, loop);
  BOOST_TEST(row.label == "Mixin' it up");
  BOOST_TEST((row.values == std::vector<std::string>{"b a b a b"}));
  BOOST_TEST(tracker.most.load() == 3); // two b()s asleep while an a() blocks
  check_seconds(row, 3 * unit);
}

BOOST_AUTO_TEST_CASE(row_7_mixin_it_up_with_blocking_calls_offloaded_takes_one_unit, *boost::unit_test::timeout(60))
{
  (void)fanout::blocking_executor(); // start the pool's threads before the clock (slow under TSan)
  asio::io_context loop;
  const auto row = run_row(8, loop);
  BOOST_TEST(row.label == "Mixin' it up, blocking calls offloaded");
  BOOST_TEST((row.values == std::vector<std::string>{"b a b a b"}));
  BOOST_TEST(tracker.most.load() == 5);
  check_seconds(row, unit);
}

BOOST_AUTO_TEST_CASE(the_table_lists_the_posts_seven_rows_then_the_offloaded_mix, *boost::unit_test::timeout(60))
{
  const auto& rows = post::rows();
  BOOST_TEST_REQUIRE(rows.size() == 8u);
  std::vector<double> ideal;
  std::size_t with_post_figure = 0;
  for (const auto& r : rows) {
    ideal.push_back(r.ideal_units);
    if (r.post_seconds)
      ++with_post_figure;
  }
  BOOST_TEST((ideal == std::vector<double>{5, 5, 5, 1, 1, 5, 3, 1}));
  BOOST_TEST(with_post_figure == 7u);
  BOOST_TEST(!rows.back().post_seconds.has_value());
  BOOST_TEST(rows.back().offloads);
}

BOOST_AUTO_TEST_SUITE_END() // post_rows_tests
