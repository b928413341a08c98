#include <fanout/error.hpp>

#include <boost/test/unit_test.hpp>

#include "support/co_test.hpp"
#include "support/outcomes.hpp"

#include <fanout/async_map.hpp>
#include <fanout/outcome.hpp>
#include <fanout/race.hpp>
#include <fanout/run.hpp>
#include <fanout/sleep.hpp>

#include <boost/asio/awaitable.hpp>

#include <cstddef>
#include <exception>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

// fanout::aggregate_error: every failure kept with its index, in index order,
// with a message that names them; thrown by race when every entrant failed and
// by rethrow_failures over an async_map_settled result.
//
// Every suite sits in its own top-level suite (and namespace): the suites are
// compiled together in unity batches (test/CMakeLists.txt).
BOOST_AUTO_TEST_SUITE(aggregate_error_tests)

namespace asio = boost::asio;
using namespace std::chrono_literals;
using fanout::test::message_of;
using fanout::test::tag_of;
using fanout::test::tagged_error;
using fanout::test::unit;

namespace {

std::exception_ptr tagged(int tag)
{
  return std::make_exception_ptr(tagged_error(tag));
}

// The (index, tag) pairs of @p e's failures, in errors() order.
std::vector<std::pair<std::size_t, int>> tags_of(const fanout::aggregate_error& e)
{
  std::vector<std::pair<std::size_t, int>> out;
  for (const auto& [index, failure] : e.errors())
    out.emplace_back(index, tag_of(failure));
  return out;
}

// Sleeps @p delay, then fails with tagged_error(@p tag); or gives @p tag when
// @p tag is negative.
asio::awaitable<int> item(int tag, fanout::clock::duration delay)
{
  co_await fanout::sleep(delay);
  if (tag >= 0)
    throw tagged_error(tag);
  co_return tag;
}

using pairs = std::vector<std::pair<std::size_t, int>>;

} // namespace

BOOST_AUTO_TEST_SUITE(the_exception)

BOOST_AUTO_TEST_CASE(errors_are_listed_in_index_order_whatever_order_they_were_given)
{
  const fanout::aggregate_error e({{5, tagged(50)}, {0, tagged(0)}, {3, tagged(30)}});
  BOOST_TEST((tags_of(e) == pairs{{0, 0}, {3, 30}, {5, 50}}));
}

BOOST_AUTO_TEST_CASE(what_gives_the_count_and_each_failures_index_and_message)
{
  const fanout::aggregate_error two({{4, std::make_exception_ptr(std::runtime_error("refused"))}, {1, tagged(7)}});
  BOOST_TEST(std::string(two.what()) == "2 operations failed: [1] tagged 7; [4] refused");
  const fanout::aggregate_error one({{0, std::make_exception_ptr(42)}});
  BOOST_TEST(std::string(one.what()) == "1 operation failed: [0] unknown exception");
}

BOOST_AUTO_TEST_CASE(what_spells_out_the_first_eight_failures_and_counts_the_rest)
{
  std::vector<fanout::aggregate_error::failure> failures;
  for (std::size_t i = 0; i < 20; ++i)
    failures.emplace_back(i, tagged(static_cast<int>(i)));
  const fanout::aggregate_error e(std::move(failures));
  const std::string what = e.what();
  BOOST_TEST(what.rfind("20 operations failed: [0] tagged 0; [1] tagged 1;", 0) == 0u);
  BOOST_TEST(what.find("[7] tagged 7; and 12 more") != std::string::npos);
  BOOST_TEST(what.find("[8]") == std::string::npos);
  BOOST_TEST(e.errors().size() == 20u); // every one is kept
}

BOOST_AUTO_TEST_CASE(copies_share_the_failures_and_copying_never_throws)
{
  static_assert(std::is_nothrow_copy_constructible_v<fanout::aggregate_error>);
  static_assert(std::is_base_of_v<std::exception, fanout::aggregate_error>);
  const fanout::aggregate_error e({{2, tagged(2)}});
  const fanout::aggregate_error copy = e; // NOLINT(performance-unnecessary-copy-initialization)
  BOOST_TEST(&copy.errors() == &e.errors());
  BOOST_TEST(std::string(copy.what()) == e.what());
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(rethrow_failures)

FANOUT_CO_TEST_CASE(rethrow_failures_throws_every_failed_outcome_of_a_settled_map_with_its_index)
{
  // Items 1 and 3 fail; 3 fails first.
  const std::vector<std::pair<int, int>> plan{{-1, 1}, {10, 3}, {-1, 1}, {30, 1}, {-1, 2}};
  auto results =
      co_await fanout::async_map_settled([](std::pair<int, int> p) { return item(p.first, p.second * 10ms); }, plan);
  try {
    fanout::rethrow_failures(results);
    BOOST_FAIL("rethrow_failures did not throw");
  } catch (const fanout::aggregate_error& e) {
    BOOST_TEST((tags_of(e) == pairs{{1, 10}, {3, 30}}));
  }
  BOOST_TEST(results[0].value() == -1); // the values stay readable
}

BOOST_AUTO_TEST_CASE(rethrow_failures_does_nothing_when_no_outcome_failed)
{
  const std::vector<fanout::outcome<int>> results{1, 2, 3};
  BOOST_CHECK_NO_THROW(fanout::rethrow_failures(results));
  BOOST_CHECK_NO_THROW(fanout::rethrow_failures(std::vector<fanout::outcome<int>>{}));
}

BOOST_AUTO_TEST_CASE(rethrow_failures_takes_outcomes_of_void_items_too)
{
  const std::vector<fanout::outcome<void>> results{fanout::outcome<void>(), tagged(1), fanout::outcome<void>(),
                                                   tagged(3)};
  try {
    fanout::rethrow_failures(results);
    BOOST_FAIL("rethrow_failures did not throw");
  } catch (const fanout::aggregate_error& e) {
    BOOST_TEST((tags_of(e) == pairs{{1, 1}, {3, 3}}));
  }
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(race)

FANOUT_CO_TEST_CASE(race_of_entrants_that_all_fail_throws_every_failure_with_its_index)
{
  std::vector<asio::awaitable<int>> ops;
  ops.push_back(item(0, 3 * unit));
  ops.push_back(item(1, unit));
  ops.push_back(item(2, 2 * unit));
  try {
    co_await fanout::race(std::move(ops));
    BOOST_FAIL("race did not throw");
  } catch (const fanout::aggregate_error& e) {
    BOOST_TEST((tags_of(e) == pairs{{0, 0}, {1, 1}, {2, 2}})); // index order, not failure order
    BOOST_TEST(message_of(std::make_exception_ptr(e)).rfind("3 operations failed", 0) == 0u);
  }
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE_END() // aggregate_error_tests
