#include <fanout/async_map.hpp>

#include <boost/test/unit_test.hpp>

#include "support/co_test.hpp"
#include "support/outcomes.hpp"

#include <fanout/error.hpp>
#include <fanout/outcome.hpp>

#include <boost/asio/async_result.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/cancellation_signal.hpp>
#include <boost/asio/deferred.hpp>
#include <boost/asio/error.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/system/error_code.hpp>
#include <boost/system/system_error.hpp>

#include <chrono>
#include <exception>
#include <list>
#include <memory>
#include <optional>
#include <stdexcept>
#include <vector>

// Items that return an Asio asynchronous operation not yet started (a
// deferred operation): the map starts it, awaits it, and cancels it like any
// item; an error_code failure is an item failure.
//
// Every suite sits in its own top-level suite (and namespace): the suites are
// compiled together in unity batches (test/CMakeLists.txt).
BOOST_AUTO_TEST_SUITE(async_operation_items_tests)

namespace asio = boost::asio;
using boost::system::error_code;
using namespace std::chrono_literals;
using fanout::test::code_of;
using fanout::test::emit_after;
using fanout::test::seconds_since;
using fanout::test::unit;

namespace {

// An operation with completion signature @p Signature that completes with
// @p values after @p delay (it ignores cancellation).
template <typename Signature, typename... Values>
auto completes_after(asio::any_io_executor ex, std::chrono::milliseconds delay, Values... values)
{
  return asio::async_initiate<const asio::deferred_t&, Signature>(
      [ex, delay](auto handler, Values... vs) {
        auto timer = std::make_shared<asio::steady_timer>(ex, delay);
        timer->async_wait([timer, h = std::move(handler), vs...](error_code) mutable { std::move(h)(vs...); });
      },
      asio::deferred, values...);
}

// Timers that stay alive (at stable addresses) while the map waits on them.
struct timers
{
  explicit timers(asio::any_io_executor e) : ex(std::move(e)) {}
  asio::steady_timer& add(std::chrono::milliseconds d) { return all.emplace_back(ex, d); }
  asio::any_io_executor ex;
  std::list<asio::steady_timer> all;
};

const std::vector<int> inputs{1, 2, 3, 4};

} // namespace

// What an item gives, for each completion signature.

FANOUT_CO_TEST_CASE(deferred_timer_waits_are_started_concurrently_and_awaited)
{
  timers ts(co_await asio::this_coro::executor);
  const auto start = std::chrono::steady_clock::now();
  co_await fanout::async_map([&](int) { return ts.add(2 * unit).async_wait(asio::deferred); }, inputs);
  FANOUT_CHECK_ELAPSED(seconds_since(start), 2 * unit);
  for (auto& t : ts.all)
    BOOST_TEST((t.expiry() <= std::chrono::steady_clock::now()));
}

FANOUT_CO_TEST_CASE(items_completing_with_an_error_code_and_a_value_give_the_values_in_input_order)
{
  auto ex = co_await asio::this_coro::executor;
  auto values = co_await fanout::async_map(
      [&](int x) { return completes_after<void(error_code, int)>(ex, (5 - x) * 2ms, error_code(), 10 * x); }, inputs);
  BOOST_TEST(values == (std::vector<int>{10, 20, 30, 40}));
}

FANOUT_CO_TEST_CASE(items_completing_with_a_value_alone_give_the_values_in_input_order)
{
  auto ex = co_await asio::this_coro::executor;
  auto values =
      co_await fanout::async_map([&](int x) { return completes_after<void(int)>(ex, (5 - x) * 2ms, 10 * x); }, inputs);
  BOOST_TEST(values == (std::vector<int>{10, 20, 30, 40}));
}

FANOUT_CO_TEST_CASE(items_completing_with_an_exception_ptr_and_a_value_give_the_values)
{
  auto ex = co_await asio::this_coro::executor;
  auto values = co_await fanout::async_map(
      [&](int x) { return completes_after<void(std::exception_ptr, int)>(ex, 1ms, std::exception_ptr(), 10 * x); },
      inputs);
  BOOST_TEST(values == (std::vector<int>{10, 20, 30, 40}));
}

FANOUT_CO_TEST_CASE(items_completing_with_nothing_are_each_run_once)
{
  auto ex = co_await asio::this_coro::executor;
  int runs = 0;
  co_await fanout::async_map(
      [&](int) {
        return asio::post(ex, asio::deferred([&runs] {
                            ++runs;
                            return asio::deferred.values();
                          }));
      },
      inputs);
  BOOST_TEST(runs == 4);
}

FANOUT_CO_TEST_CASE(a_deferred_continuation_that_maps_the_wait_to_a_value_gives_that_value)
{
  timers ts(co_await asio::this_coro::executor);
  auto values = co_await fanout::async_map(
      [&](int x) {
        return ts.add(std::chrono::milliseconds(5 - x)).async_wait(asio::deferred([x](error_code ec) {
          return asio::deferred.values(ec, x * x);
        }));
      },
      inputs);
  BOOST_TEST(values == (std::vector<int>{1, 4, 9, 16}));
}

// Failures.

FANOUT_CO_TEST_CASE(an_error_code_failure_is_thrown_as_a_system_error_with_that_code)
{
  auto ex = co_await asio::this_coro::executor;
  auto f = [&](int x) {
    const error_code ec = x == 3 ? error_code(asio::error::connection_refused) : error_code();
    return completes_after<void(error_code, int)>(ex, 1ms, ec, x);
  };
  try {
    co_await fanout::async_map(f, inputs);
    BOOST_FAIL("expected connection_refused");
  } catch (const boost::system::system_error& e) {
    BOOST_TEST((e.code() == asio::error::connection_refused));
  }
}

FANOUT_CO_TEST_CASE(an_exception_ptr_failure_is_rethrown_as_is)
{
  auto ex = co_await asio::this_coro::executor;
  auto f = [&](int x) {
    auto e = x == 2 ? std::make_exception_ptr(std::runtime_error("no 2")) : std::exception_ptr();
    return completes_after<void(std::exception_ptr, int)>(ex, 1ms, e, x);
  };
  BOOST_CHECK_EXCEPTION(co_await fanout::async_map(f, inputs), std::runtime_error,
                        [](const std::runtime_error& e) { return std::string(e.what()) == "no 2"; });
}

FANOUT_CO_TEST_CASE(async_map_settled_gives_each_operations_value_or_its_error)
{
  auto ex = co_await asio::this_coro::executor;
  auto f = [&](int x) {
    const error_code ec = x == 2 ? error_code(asio::error::host_not_found) : error_code();
    return completes_after<void(error_code, int)>(ex, 1ms, ec, 10 * x);
  };
  auto outcomes = co_await fanout::async_map_settled(f, inputs);
  BOOST_TEST_REQUIRE(outcomes.size() == 4u);
  BOOST_TEST(outcomes[0].value() == 10);
  BOOST_TEST((code_of(outcomes[1].error()) == asio::error::host_not_found));
  BOOST_TEST(outcomes[2].value() == 30);
  BOOST_TEST(outcomes[3].value() == 40);
}

// Cancellation.

FANOUT_CO_TEST_CASE(a_failing_item_cancels_the_pending_operations_of_the_others)
{
  timers ts(co_await asio::this_coro::executor);
  std::vector<error_code> waits; // how the other items' waits ended
  auto f = [&](int x) {
    const bool fails = x == 4;
    return ts.add(fails ? std::chrono::milliseconds(1) : 40 * unit)
        .async_wait(asio::deferred([&waits, fails](error_code ec) {
          if (!fails)
            waits.push_back(ec);
          return asio::deferred.values(fails ? error_code(asio::error::broken_pipe) : ec);
        }));
  };
  const auto start = std::chrono::steady_clock::now();
  try {
    co_await fanout::async_map(f, inputs);
    BOOST_FAIL("expected broken_pipe");
  } catch (const boost::system::system_error& e) {
    BOOST_TEST((e.code() == asio::error::broken_pipe));
  }
  BOOST_TEST(seconds_since(start) < std::chrono::duration<double>(20 * unit).count());
  BOOST_TEST_REQUIRE(waits.size() == 3u);
  for (const auto& ec : waits)
    BOOST_TEST((ec == asio::error::operation_aborted));
}

BOOST_AUTO_TEST_CASE(cancelling_the_caller_cancels_every_pending_operation)
{
  asio::io_context ctx;
  timers ts(ctx.get_executor());
  std::vector<error_code> waits;
  auto f = [&](int) {
    return ts.add(40 * unit).async_wait(asio::deferred([&waits](error_code ec) {
      waits.push_back(ec);
      return asio::deferred.values(ec);
    }));
  };
  asio::cancellation_signal cancel;
  std::optional<std::exception_ptr> result;
  fanout::async_map(ctx.get_executor(), f, inputs,
                    asio::bind_cancellation_slot(cancel.slot(), [&](std::exception_ptr e) { result = e; }));
  asio::steady_timer canceller(ctx);
  emit_after(canceller, cancel, unit);
  const auto start = std::chrono::steady_clock::now();
  ctx.run();
  BOOST_TEST(seconds_since(start) < std::chrono::duration<double>(20 * unit).count());
  BOOST_TEST_REQUIRE(result.has_value());
  BOOST_TEST((code_of(*result) == asio::error::operation_aborted));
  BOOST_TEST_REQUIRE(waits.size() == 4u);
  for (const auto& ec : waits)
    BOOST_TEST((ec == asio::error::operation_aborted));
}

FANOUT_CO_TEST_CASE(an_item_timeout_cancels_a_slow_operation_and_fails_it_with_timed_out)
{
  timers ts(co_await asio::this_coro::executor);
  const auto start = std::chrono::steady_clock::now();
  try {
    co_await fanout::async_map(
        {.item_timeout = unit}, [&](int) { return ts.add(40 * unit).async_wait(asio::deferred); }, inputs);
    BOOST_FAIL("expected timed_out");
  } catch (const boost::system::system_error& e) {
    BOOST_TEST((e.code() == fanout::error::timed_out));
  }
  BOOST_TEST(seconds_since(start) < std::chrono::duration<double>(20 * unit).count());
}

BOOST_AUTO_TEST_SUITE_END()
