#include <fanout/async_map.hpp>

#include <boost/test/unit_test.hpp>

#include "support/co_test.hpp"
#include "support/outcomes.hpp"

#include <fanout/callable.hpp>
#include <fanout/error.hpp>
#include <fanout/map_stream.hpp>
#include <fanout/offload.hpp>
#include <fanout/outcome.hpp>
#include <fanout/sleep.hpp>
#include <fanout/sync_map.hpp>
#include <fanout/timeout.hpp>

#include <boost/asio/awaitable.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/use_future.hpp>
#include <boost/system/system_error.hpp>

#include <chrono>
#include <exception>
#include <future>
#include <optional>
#include <stdexcept>
#include <type_traits>
#include <utility>
#include <vector>

// Result types that are only move-constructible (no default constructor, no
// copy) through every entry point of async_map, with and without item_timeout
// and deadline.
//
// Every suite sits in its own top-level suite (and namespace): the suites are
// compiled together in unity batches (test/CMakeLists.txt).
BOOST_AUTO_TEST_SUITE(result_types_tests)

namespace asio = boost::asio;
using namespace std::chrono_literals;
using fanout::test::code_of;
using fanout::test::unit;

namespace {

// A result with no default constructor and no copy.
struct price
{
  explicit price(int c) : cents(c) {}
  price(price&&) = default;
  price& operator=(price&&) = default;
  price(const price&) = delete;
  price& operator=(const price&) = delete;
  int cents;
};
static_assert(!std::is_default_constructible_v<price> && !std::is_copy_constructible_v<price>);

std::vector<int> cents_of(const std::vector<price>& prices)
{
  std::vector<int> out;
  for (const auto& p : prices)
    out.push_back(p.cents);
  return out;
}

// Items finish in reverse input order, so that order is really kept.
asio::awaitable<price> quote(int x)
{
  co_await fanout::sleep((4 - x) * 2ms);
  co_return price(100 * x);
}

price blocking_quote(int x)
{
  return price(100 * x);
}

asio::awaitable<price> failing_quote(int x)
{
  co_await fanout::sleep(1ms);
  if (x == 2)
    throw std::runtime_error("no quote for 2");
  co_return price(100 * x);
}

asio::awaitable<price> slow_quote(int x)
{
  co_await fanout::sleep(x == 2 ? 20 * unit : 1ms);
  co_return price(100 * x);
}

const std::vector<int> inputs{1, 2, 3};
const std::vector<int> expected{100, 200, 300};

fanout::map_options with_item_timeout()
{
  return {.item_timeout = 20 * unit};
}
fanout::map_options with_deadline()
{
  return {.deadline = std::chrono::steady_clock::now() + 20 * unit};
}

} // namespace

// The coroutine form.

FANOUT_CO_TEST_CASE(async_map_of_coroutines_gives_move_only_results_in_input_order)
{
  BOOST_TEST(cents_of(co_await fanout::async_map(quote, inputs)) == expected);
}

FANOUT_CO_TEST_CASE(async_map_with_an_item_timeout_gives_move_only_results_in_input_order)
{
  BOOST_TEST(cents_of(co_await fanout::async_map(with_item_timeout(), quote, inputs)) == expected);
}

FANOUT_CO_TEST_CASE(async_map_with_a_deadline_gives_move_only_results_in_input_order)
{
  BOOST_TEST(cents_of(co_await fanout::async_map(with_deadline(), quote, inputs)) == expected);
}

FANOUT_CO_TEST_CASE(async_map_of_inline_blocking_calls_gives_move_only_results)
{
  BOOST_TEST(cents_of(co_await fanout::async_map(blocking_quote, inputs)) == expected);
}

FANOUT_CO_TEST_CASE(async_map_of_offloaded_calls_with_an_item_timeout_gives_move_only_results)
{
  fanout::map_options options = with_item_timeout();
  options.blocking = fanout::blocking_policy::offload;
  BOOST_TEST(cents_of(co_await fanout::async_map(options, blocking_quote, inputs)) == expected);
}

FANOUT_CO_TEST_CASE(async_map_of_mixed_callables_with_a_deadline_gives_move_only_results)
{
  std::vector<fanout::callable<price(int)>> fs{quote, blocking_quote, quote};
  auto prices = co_await fanout::async_map(
      with_deadline(), [](const fanout::callable<price(int)>& f, int x) { return f(x); }, fs, inputs);
  BOOST_TEST(cents_of(prices) == expected);
}

FANOUT_CO_TEST_CASE(an_item_timeout_fails_a_map_of_move_only_results_with_timed_out)
{
  try {
    co_await fanout::async_map({.item_timeout = unit}, slow_quote, inputs);
    BOOST_FAIL("expected timed_out");
  } catch (const boost::system::system_error& e) {
    BOOST_TEST((e.code() == fanout::error::timed_out));
  }
}

// The settled form.

FANOUT_CO_TEST_CASE(async_map_settled_gives_each_move_only_value_or_its_exception)
{
  auto outcomes = co_await fanout::async_map_settled(failing_quote, inputs);
  BOOST_TEST_REQUIRE(outcomes.size() == 3u);
  BOOST_TEST(outcomes[0].value().cents == 100);
  BOOST_TEST(!outcomes[1].has_value());
  BOOST_TEST(outcomes[2].value().cents == 300);
}

FANOUT_CO_TEST_CASE(async_map_settled_with_an_item_timeout_times_out_only_the_slow_move_only_item)
{
  auto outcomes = co_await fanout::async_map_settled({.item_timeout = unit}, slow_quote, inputs);
  BOOST_TEST_REQUIRE(outcomes.size() == 3u);
  BOOST_TEST(outcomes[0].value().cents == 100);
  BOOST_TEST((code_of(outcomes[1].error()) == fanout::error::timed_out));
  BOOST_TEST(outcomes[2].value().cents == 300);
}

FANOUT_CO_TEST_CASE(async_map_settled_with_a_deadline_gives_move_only_values_in_input_order)
{
  auto outcomes = co_await fanout::async_map_settled(with_deadline(), quote, inputs);
  BOOST_TEST_REQUIRE(outcomes.size() == 3u);
  BOOST_TEST(outcomes[0].value().cents == 100);
  BOOST_TEST(outcomes[1].value().cents == 200);
  BOOST_TEST(outcomes[2].value().cents == 300);
}

// The completion-token form.

BOOST_AUTO_TEST_CASE(the_token_form_with_an_item_timeout_hands_move_only_results_to_a_callback)
{
  asio::io_context ctx;
  std::optional<std::vector<price>> got;
  fanout::async_map(ctx.get_executor(), with_item_timeout(), quote, inputs,
                    [&](std::exception_ptr e, std::vector<price> prices) {
                      BOOST_TEST(!e);
                      got = std::move(prices);
                    });
  ctx.run();
  BOOST_TEST_REQUIRE(got.has_value());
  BOOST_TEST(cents_of(*got) == expected);
}

BOOST_AUTO_TEST_CASE(the_token_form_with_a_deadline_gives_move_only_results_to_a_future)
{
  asio::io_context ctx;
  auto future = fanout::async_map(ctx.get_executor(), with_deadline(), quote, inputs, asio::use_future);
  ctx.run();
  BOOST_TEST(cents_of(future.get()) == expected);
}

BOOST_AUTO_TEST_CASE(the_settled_token_form_with_an_item_timeout_gives_move_only_outcomes)
{
  asio::io_context ctx;
  auto future = fanout::async_map_settled(ctx.get_executor(), with_item_timeout(), quote, inputs, asio::use_future);
  ctx.run();
  auto outcomes = future.get();
  BOOST_TEST_REQUIRE(outcomes.size() == 3u);
  BOOST_TEST(outcomes[2].value().cents == 300);
}

// Streams.

FANOUT_CO_TEST_CASE(an_ordered_stream_with_an_item_timeout_yields_move_only_results_in_input_order)
{
  auto stream = fanout::async_map_stream(with_item_timeout(), quote, inputs);
  std::vector<int> got;
  while (auto p = co_await stream.next())
    got.push_back(p->cents);
  BOOST_TEST(got == expected);
}

FANOUT_CO_TEST_CASE(an_as_completed_stream_with_a_deadline_yields_move_only_results_as_they_finish)
{
  // A unit apart, so that the completion order is certain.
  auto spaced_quote = [](int x) -> asio::awaitable<price> {
    co_await fanout::sleep((4 - x) * unit);
    co_return price(100 * x);
  };
  auto stream = fanout::async_map_as_completed(with_deadline(), spaced_quote, inputs);
  std::vector<std::size_t> order;
  std::vector<int> got;
  while (auto r = co_await stream.next()) {
    order.push_back(r->first);
    got.push_back(r->second.cents);
  }
  BOOST_TEST(order == (std::vector<std::size_t>{2, 1, 0}));
  BOOST_TEST(got == (std::vector<int>{300, 200, 100}));
}

// sync_map.

BOOST_AUTO_TEST_CASE(sync_map_with_an_item_timeout_yields_move_only_results_in_input_order)
{
  std::vector<int> got;
  for (auto& p : fanout::sync_map(with_item_timeout(), quote, inputs))
    got.push_back(p.cents);
  BOOST_TEST(got == expected);
}

BOOST_AUTO_TEST_CASE(sync_map_with_a_deadline_yields_move_only_results_in_input_order)
{
  std::vector<int> got;
  for (auto& p : fanout::sync_map(with_deadline(), quote, inputs))
    got.push_back(p.cents);
  BOOST_TEST(got == expected);
}

// with_timeout itself.

FANOUT_CO_TEST_CASE(with_timeout_gives_a_move_only_value)
{
  price p = co_await fanout::with_timeout(quote(3), 20 * unit);
  BOOST_TEST(p.cents == 300);
}

FANOUT_CO_TEST_CASE(with_timeout_fails_a_late_move_only_value_with_timed_out)
{
  try {
    co_await fanout::with_timeout(slow_quote(2), unit);
    BOOST_FAIL("expected timed_out");
  } catch (const boost::system::system_error& e) {
    BOOST_TEST((e.code() == fanout::error::timed_out));
  }
}

FANOUT_CO_TEST_CASE(with_timeout_of_zero_fails_at_once_without_making_a_move_only_value)
{
  try {
    co_await fanout::with_timeout(quote(3), 0ms);
    BOOST_FAIL("expected timed_out");
  } catch (const boost::system::system_error& e) {
    BOOST_TEST((e.code() == fanout::error::timed_out));
  }
}

// to_thread itself.

FANOUT_CO_TEST_CASE(to_thread_gives_a_move_only_value)
{
  price p = co_await fanout::to_thread(blocking_quote, 4);
  BOOST_TEST(p.cents == 400);
}

BOOST_AUTO_TEST_SUITE_END()
