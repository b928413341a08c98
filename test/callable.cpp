#include <fanout/callable.hpp>

#include <boost/test/unit_test.hpp>

#include "support/co_test.hpp"

#include <fanout/run.hpp>
#include <fanout/sleep.hpp>

#include <boost/asio/awaitable.hpp>

#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <type_traits>
#include <utility>
#include <vector>

// Every suite sits in its own top-level suite (and namespace): the suites are
// compiled together in unity batches (test/CMakeLists.txt).
BOOST_AUTO_TEST_SUITE(callable_tests)

namespace asio = boost::asio;
using namespace std::chrono_literals;
using fanout::test::seconds_since;
using fanout::test::unit;

namespace {

int a_calls = 0;
int b_calls = 0;

// The post's a() and b(), scaled: a() blocks, b() is a coroutine.
std::string a()
{
  ++a_calls;
  std::this_thread::sleep_for(unit);
  return "a";
}

asio::awaitable<std::string> b()
{
  ++b_calls;
  co_await fanout::sleep(unit);
  co_return "b";
}

} // namespace

BOOST_AUTO_TEST_CASE(a_callable_built_from_a_coroutine_lambda_is_a_coroutine, *boost::unit_test::timeout(60))
{
  int started = 0;
  fanout::callable<std::string()> c = [&started]() -> asio::awaitable<std::string> {
    ++started;
    co_return "b";
  };
  BOOST_TEST(c.is_coroutine());
  auto call = c();
  BOOST_TEST(!call.is_blocking());
  BOOST_TEST(started == 0); // the coroutine is lazy: nothing ran yet
  BOOST_TEST(fanout::run(call.take_coroutine()) == "b");
  BOOST_TEST(started == 1);
}

BOOST_AUTO_TEST_CASE(a_callable_built_from_a_blocking_lambda_is_not_a_coroutine_and_calling_it_runs_nothing,
                     *boost::unit_test::timeout(60))
{
  int counter = 0;
  fanout::callable<std::string()> c = [&counter] {
    ++counter;
    return std::string("a");
  };
  BOOST_TEST(!c.is_coroutine());
  auto call = c();
  BOOST_TEST(call.is_blocking());
  BOOST_TEST(counter == 0);
  std::function<std::string()> blocking = call.take_blocking();
  BOOST_TEST(counter == 0);
  BOOST_TEST(blocking() == "a");
  BOOST_TEST(counter == 1);
}

BOOST_AUTO_TEST_CASE(a_blocking_callable_returns_at_once_and_blocks_only_when_made, *boost::unit_test::timeout(60))
{
  a_calls = 0;
  fanout::callable<std::string()> c = a;
  const auto start = fanout::clock::now();
  auto call = c();
  FANOUT_CHECK_ELAPSED(seconds_since(start), 0ms);
  BOOST_TEST(a_calls == 0);
  const auto made = fanout::clock::now();
  BOOST_TEST(call.take_blocking()() == "a");
  FANOUT_CHECK_ELAPSED(seconds_since(made), unit);
  BOOST_TEST(a_calls == 1);
}

BOOST_AUTO_TEST_CASE(callables_from_plain_functions_keep_their_kind_in_a_mixed_vector, *boost::unit_test::timeout(60))
{
  std::vector<fanout::callable<std::string()>> tasks{b, a, b, a, b};
  std::vector<bool> kinds;
  for (const auto& t : tasks)
    kinds.push_back(t.is_coroutine());
  BOOST_TEST((kinds == std::vector<bool>{true, false, true, false, true}));
}

BOOST_AUTO_TEST_CASE(calling_each_callable_in_a_mixed_vector_gives_the_matching_invocations,
                     *boost::unit_test::timeout(60))
{
  a_calls = 0;
  b_calls = 0;
  std::vector<fanout::callable<std::string()>> tasks{b, a, b, a, b};
  std::string results;
  for (const auto& t : tasks) {
    auto call = t();
    BOOST_TEST(call.is_blocking() == !t.is_coroutine());
    results += call.is_blocking() ? call.take_blocking()() : fanout::run(call.take_coroutine());
  }
  BOOST_TEST(results == "babab");
  BOOST_TEST(a_calls == 2);
  BOOST_TEST(b_calls == 3);
}

BOOST_AUTO_TEST_CASE(a_blocking_callable_binds_copies_of_its_arguments, *boost::unit_test::timeout(60))
{
  fanout::callable<std::string(std::string, int)> repeat = [](std::string s, int n) {
    std::string out;
    for (int i = 0; i < n; ++i)
      out += s;
    return out;
  };
  std::string text = "ab";
  auto call = repeat(text, 3);
  text = "changed";
  BOOST_TEST(call.take_blocking()() == "ababab");
}

BOOST_AUTO_TEST_CASE(a_coroutine_callable_passes_its_arguments_to_the_coroutine, *boost::unit_test::timeout(60))
{
  fanout::callable<int(int, int)> add = [](int x, int y) -> asio::awaitable<int> {
    co_await fanout::sleep(1ms);
    co_return x + y;
  };
  BOOST_TEST(add.is_coroutine());
  auto call = add(2, 3);
  BOOST_TEST(!call.is_blocking());
  BOOST_TEST(fanout::run(call.take_coroutine()) == 5);
}

BOOST_AUTO_TEST_CASE(a_blocking_callable_may_return_a_type_that_converts_to_the_result, *boost::unit_test::timeout(60))
{
  fanout::callable<std::string()> c = [] { return "converted"; };
  BOOST_TEST(!c.is_coroutine());
  BOOST_TEST(c().take_blocking()() == "converted");
}

BOOST_AUTO_TEST_CASE(a_blocking_callable_bound_twice_runs_independently, *boost::unit_test::timeout(60))
{
  int counter = 0;
  fanout::callable<int(int)> c = [&counter](int x) {
    ++counter;
    return x * 10;
  };
  auto first = c(1);
  auto second = c(2);
  BOOST_TEST(counter == 0);
  BOOST_TEST(second.take_blocking()() == 20);
  BOOST_TEST(first.take_blocking()() == 10);
  BOOST_TEST(counter == 2);
}

BOOST_AUTO_TEST_CASE(copies_of_a_callable_call_the_same_function, *boost::unit_test::timeout(60))
{
  auto shared = std::make_shared<int>(0);
  fanout::callable<int()> original = [shared] { return ++*shared; };
  const fanout::callable<int()> copy = original; // NOLINT(performance-unnecessary-copy-initialization)
  BOOST_TEST(!copy.is_coroutine());
  BOOST_TEST(original().take_blocking()() == 1);
  BOOST_TEST(copy().take_blocking()() == 2);
  BOOST_TEST(*shared == 2);
}

BOOST_AUTO_TEST_CASE(void_callables_of_both_kinds_work, *boost::unit_test::timeout(60))
{
  int effects = 0;
  fanout::callable<void()> blocking = [&effects] { effects += 1; };
  fanout::callable<void()> coroutine = [&effects]() -> asio::awaitable<void> {
    effects += 10;
    co_return;
  };
  BOOST_TEST(!blocking.is_coroutine());
  BOOST_TEST(coroutine.is_coroutine());
  blocking().take_blocking()();
  fanout::run(coroutine().take_coroutine());
  BOOST_TEST(effects == 11);
}

BOOST_AUTO_TEST_CASE(type_traits_classify_awaitables_and_invocations)
{
  BOOST_TEST(fanout::is_awaitable_v<asio::awaitable<int>>);
  BOOST_TEST(fanout::is_awaitable_v<const asio::awaitable<void>&>);
  BOOST_TEST(!fanout::is_awaitable_v<int>);
  BOOST_TEST(!fanout::is_awaitable_v<fanout::invocation<int>>);
  BOOST_TEST(fanout::is_invocation_v<fanout::invocation<std::string>>);
  BOOST_TEST(fanout::is_invocation_v<fanout::invocation<int>&&>);
  BOOST_TEST(!fanout::is_invocation_v<asio::awaitable<int>>);
  BOOST_TEST((std::is_same_v<fanout::invocation<std::string>::value_type, std::string>));
  BOOST_TEST((std::is_same_v<decltype(std::declval<const fanout::callable<std::string()>&>()()),
                             fanout::invocation<std::string>>));
}

BOOST_AUTO_TEST_CASE(invocations_can_be_made_directly, *boost::unit_test::timeout(60))
{
  fanout::invocation<int> blocking(std::function<int()>([] { return 3; }));
  BOOST_TEST(blocking.is_blocking());
  BOOST_TEST(blocking.take_blocking()() == 3);

  fanout::invocation<int> coroutine([]() -> asio::awaitable<int> { co_return 4; }());
  BOOST_TEST(!coroutine.is_blocking());
  BOOST_TEST(fanout::run(coroutine.take_coroutine()) == 4);
}

BOOST_AUTO_TEST_SUITE_END() // callable_tests
