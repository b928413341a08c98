#include <fanout/timer.hpp>

#include <boost/test/unit_test.hpp>

#include "support/co_test.hpp"

#include <fanout/sleep.hpp>

#include <charconv>
#include <chrono>
#include <iostream>
#include <optional>
#include <sstream>
#include <streambuf>
#include <string>
#include <string_view>
#include <system_error>
#include <thread>
#include <vector>

// Every suite sits in its own top-level suite (and namespace): the suites are
// compiled together in unity batches (test/CMakeLists.txt).
BOOST_AUTO_TEST_SUITE(timer_tests)

using namespace std::chrono_literals;
using fanout::test::seconds_since;
using fanout::test::unit;

namespace {

std::vector<std::string> lines_of(const std::string& text)
{
  std::vector<std::string> lines;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);)
    lines.push_back(line);
  return lines;
}

// The whole of @p text as a double, or nothing if any of it is not part of
// the number.
std::optional<double> parse_seconds(std::string_view text)
{
  double value = 0.0;
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc() || end != text.data() + text.size())
    return std::nullopt;
  return value;
}

// Redirects std::cout into a string for its lifetime.
class capture_cout
{
public:
  capture_cout() : previous_(std::cout.rdbuf(captured_.rdbuf())) {}
  capture_cout(const capture_cout&) = delete;
  capture_cout& operator=(const capture_cout&) = delete;
  ~capture_cout() { std::cout.rdbuf(previous_); }
  [[nodiscard]] std::string text() const { return captured_.str(); }

private:
  std::ostringstream captured_;
  std::streambuf* previous_;
};

} // namespace

BOOST_AUTO_TEST_CASE(timer_prints_its_label_at_construction_and_the_elapsed_seconds_at_destruction)
{
  std::ostringstream out;
  const auto start = fanout::clock::now();
  {
    fanout::timer guard("Normal synchronous code", out);
    BOOST_TEST(out.str() == "Normal synchronous code\n");
    std::this_thread::sleep_for(unit);
    BOOST_TEST(out.str() == "Normal synchronous code\n"); // nothing more until destruction
  }
  const double outer = seconds_since(start);

  const std::string text = out.str();
  BOOST_TEST(text.back() == '\n');
  const auto lines = lines_of(text);
  BOOST_TEST_REQUIRE(lines.size() == 2U);
  BOOST_TEST(lines[0] == "Normal synchronous code");
  const auto printed = parse_seconds(lines[1]);
  BOOST_TEST_REQUIRE(printed.has_value());
  FANOUT_CHECK_ELAPSED(*printed, unit);
  BOOST_TEST(*printed <= outer);
}

BOOST_AUTO_TEST_CASE(timer_prints_a_plain_number_like_python_print_of_a_float)
{
  std::ostringstream out;
  {
    fanout::timer guard("x", out);
    std::this_thread::sleep_for(5ms);
  }
  const auto lines = lines_of(out.str());
  BOOST_TEST_REQUIRE(lines.size() == 2U);
  // No unit, no exponent for such values, no padding: digits and one dot.
  const std::string& number = lines[1];
  BOOST_TEST(number.find_first_not_of("0123456789.") == std::string::npos);
  BOOST_TEST(number.find('.') != std::string::npos);
  BOOST_TEST(number.find('.') == number.rfind('.'));
  const auto value = parse_seconds(number);
  BOOST_TEST_REQUIRE(value.has_value());
  BOOST_TEST(*value >= 0.005 * 0.98);
  BOOST_TEST(*value < 5.0);
}

BOOST_AUTO_TEST_CASE(timer_with_an_empty_label_prints_an_empty_line_first)
{
  std::ostringstream out;
  {
    fanout::timer guard("", out);
    BOOST_TEST(out.str() == "\n");
  }
  const auto lines = lines_of(out.str());
  BOOST_TEST_REQUIRE(lines.size() == 2U);
  BOOST_TEST(lines[0].empty());
  BOOST_TEST(parse_seconds(lines[1]).has_value());
}

BOOST_AUTO_TEST_CASE(timer_without_a_stream_prints_to_std_cout)
{
  std::string text;
  {
    capture_cout capture;
    {
      fanout::timer guard("to stdout");
      BOOST_TEST(capture.text() == "to stdout\n");
      std::this_thread::sleep_for(unit);
    }
    text = capture.text();
  }
  const auto lines = lines_of(text);
  BOOST_TEST_REQUIRE(lines.size() == 2U);
  BOOST_TEST(lines[0] == "to stdout");
  const auto printed = parse_seconds(lines[1]);
  BOOST_TEST_REQUIRE(printed.has_value());
  FANOUT_CHECK_ELAPSED(*printed, unit);
}

BOOST_AUTO_TEST_CASE(timer_with_a_sink_records_label_and_duration_and_prints_nothing)
{
  int calls = 0;
  std::string recorded_label;
  double recorded_seconds = -1.0;
  std::string printed;
  {
    capture_cout capture;
    {
      fanout::timer guard("sunk", [&](std::string_view label, std::chrono::duration<double> elapsed) {
        ++calls;
        recorded_label = std::string(label);
        recorded_seconds = elapsed.count();
      });
      BOOST_TEST(calls == 0); // only at destruction
      std::this_thread::sleep_for(2 * unit);
      BOOST_TEST(guard.label() == "sunk");
    }
    printed = capture.text();
  }
  BOOST_TEST(calls == 1);
  BOOST_TEST(recorded_label == "sunk");
  FANOUT_CHECK_ELAPSED(recorded_seconds, 2 * unit);
  BOOST_TEST(printed.empty());
}

BOOST_AUTO_TEST_CASE(timer_with_a_null_sink_records_nothing_and_prints_nothing)
{
  std::string printed;
  {
    capture_cout capture;
    {
      fanout::timer guard("silent", fanout::timer::sink{});
      BOOST_TEST(guard.label() == "silent");
      BOOST_TEST(guard.elapsed_seconds() >= 0.0);
    }
    printed = capture.text();
  }
  BOOST_TEST(printed.empty());
}

BOOST_AUTO_TEST_CASE(timer_elapsed_and_elapsed_seconds_grow_while_it_lives)
{
  fanout::timer guard("growing", fanout::timer::sink{});
  const auto first = guard.elapsed();
  const double first_seconds = guard.elapsed_seconds();
  BOOST_TEST(first_seconds >= 0.0);
  std::this_thread::sleep_for(unit);
  const auto second = guard.elapsed();
  const double second_seconds = guard.elapsed_seconds();
  BOOST_TEST((second > first));
  BOOST_TEST(second_seconds > first_seconds);
  FANOUT_CHECK_ELAPSED(std::chrono::duration<double>(second - first).count(), unit);
  FANOUT_CHECK_ELAPSED(second_seconds, unit);
  // elapsed_seconds() is elapsed() in seconds.
  const double third_seconds = guard.elapsed_seconds();
  const auto third = guard.elapsed();
  BOOST_TEST(third_seconds <= std::chrono::duration<double>(third).count());
  BOOST_TEST(third_seconds >= second_seconds);
}

BOOST_AUTO_TEST_CASE(timer_label_is_the_label_given_at_construction)
{
  std::ostringstream out;
  fanout::timer guard("Mixin' it up", out);
  BOOST_TEST(guard.label() == "Mixin' it up");
}

BOOST_AUTO_TEST_CASE(nested_timers_print_inner_result_before_outer_result)
{
  std::ostringstream out;
  {
    fanout::timer outer("outer", out);
    std::this_thread::sleep_for(unit);
    {
      fanout::timer inner("inner", out);
      std::this_thread::sleep_for(unit);
    }
  }
  const auto lines = lines_of(out.str());
  BOOST_TEST_REQUIRE(lines.size() == 4U);
  BOOST_TEST(lines[0] == "outer");
  BOOST_TEST(lines[1] == "inner");
  const auto inner = parse_seconds(lines[2]);
  const auto outer = parse_seconds(lines[3]);
  BOOST_TEST_REQUIRE(inner.has_value());
  BOOST_TEST_REQUIRE(outer.has_value());
  FANOUT_CHECK_ELAPSED(*inner, unit);
  FANOUT_CHECK_ELAPSED(*outer, 2 * unit);
  BOOST_TEST(*outer > *inner);
}

FANOUT_CO_TEST_CASE(timer_measures_time_across_coroutine_suspension)
{
  std::ostringstream out;
  double sunk = -1.0;
  {
    fanout::timer printed("awaiting", out);
    fanout::timer recorded("awaiting",
                           [&sunk](std::string_view, std::chrono::duration<double> d) { sunk = d.count(); });
    co_await fanout::sleep(unit);
  }
  const auto lines = lines_of(out.str());
  BOOST_TEST_REQUIRE(lines.size() == 2U);
  BOOST_TEST(lines[0] == "awaiting");
  const auto value = parse_seconds(lines[1]);
  BOOST_TEST_REQUIRE(value.has_value());
  FANOUT_CHECK_ELAPSED(*value, unit);
  FANOUT_CHECK_ELAPSED(sunk, unit);
}

BOOST_AUTO_TEST_SUITE_END() // timer_tests
