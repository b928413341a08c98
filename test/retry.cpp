#include <fanout/retry.hpp>

#include <boost/test/unit_test.hpp>

#include "support/co_test.hpp"
#include "support/outcomes.hpp"

#include <fanout/error.hpp>
#include <fanout/run.hpp>
#include <fanout/sleep.hpp>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/cancellation_signal.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/error.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/thread_pool.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/use_future.hpp>
#include <boost/system/system_error.hpp>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <exception>
#include <future>
#include <limits>
#include <memory>
#include <stdexcept>
#include <utility>
#include <vector>

// fanout::retry and fanout::backoff: attempt counts, the delays between
// attempts (jitter 0 for exact timings), retry_if, the max_delay cap, seeded
// jitter, cancellation, the deadline form the map engine uses, bad policies,
// and many retries at once on a thread pool.
//
// Every suite sits in its own top-level suite (and namespace): the suites are
// compiled together in unity batches (test/CMakeLists.txt).
BOOST_AUTO_TEST_SUITE(retry_tests)

namespace asio = boost::asio;
using namespace std::chrono_literals;
using fanout::test::code_of;
using fanout::test::emit_after;
using fanout::test::exception_of;
using fanout::test::seconds_since;
using fanout::test::tag_of;
using fanout::test::tagged_error;

namespace {

// The base delay of the timed cases: short, yet long against timer noise.
constexpr auto step = 20ms;

// An operation that fails (throwing tagged_error(attempt number)) until its
// attempt number succeed_on, which gives attempt * 10. Records when each
// attempt started. For one thread (the timed cases).
struct flaky
{
  int succeed_on = 0; // 0: never succeeds
  int attempts = 0;
  std::vector<fanout::clock::time_point> starts{};

  asio::awaitable<int> attempt()
  {
    const int n = ++attempts;
    starts.push_back(fanout::clock::now());
    co_await asio::post(co_await asio::this_coro::executor, asio::use_awaitable);
    if (n != succeed_on)
      throw tagged_error(n);
    co_return n * 10;
  }

  // The factory retry is given.
  auto factory()
  {
    return [this] { return attempt(); };
  }

  // Seconds between the start of attempt i and attempt i + 1 (from 0).
  [[nodiscard]] double gap(std::size_t i) const
  {
    return std::chrono::duration<double>(starts.at(i + 1) - starts.at(i)).count();
  }
};

// Checks that attempt gaps follow @p expected (each within the usual
// tolerance).
void check_gaps(const flaky& op, const std::vector<fanout::clock::duration>& expected)
{
  BOOST_TEST_REQUIRE(op.starts.size() == expected.size() + 1);
  for (std::size_t i = 0; i < expected.size(); ++i)
    BOOST_TEST_CONTEXT("gap after attempt " << i + 1)
    {
      FANOUT_CHECK_ELAPSED(op.gap(i), expected[i]);
    }
}

fanout::backoff exact(int attempts, fanout::clock::duration initial = step, double factor = 2)
{
  return {.initial = initial,
          .factor = factor,
          .max_delay = 10s,
          .jitter = 0,
          .max_attempts = static_cast<unsigned>(attempts)};
}

} // namespace

BOOST_AUTO_TEST_SUITE(attempts_and_delays)

BOOST_AUTO_TEST_CASE(backoff_defaults_are_the_documented_ones)
{
  const fanout::backoff b;
  BOOST_TEST((b.initial == 100ms));
  BOOST_TEST(b.factor == 2.0);
  BOOST_TEST((b.max_delay == 10s));
  BOOST_TEST(b.jitter == 1.0);
  BOOST_TEST(b.max_attempts == 3U);
  BOOST_TEST(!b.retry_if);
}

FANOUT_CO_TEST_CASE(an_operation_that_succeeds_on_attempt_k_is_made_exactly_k_times_with_exponential_delays)
{
  for (const int k : {1, 2, 4}) {
    BOOST_TEST_CONTEXT("succeeds on attempt " << k)
    {
      flaky op{.succeed_on = k};
      const auto start = fanout::clock::now();
      const int value = co_await fanout::retry(op.factory(), exact(5));
      BOOST_TEST(value == k * 10);
      BOOST_TEST(op.attempts == k);
      // step, 2 step, 4 step: the first delay is `initial`, each next one
      // `factor` times the last.
      std::vector<fanout::clock::duration> gaps;
      for (int i = 1; i < k; ++i)
        gaps.push_back(step * (1 << (i - 1)));
      check_gaps(op, gaps);
      FANOUT_CHECK_ELAPSED(seconds_since(start), step * ((1 << (k - 1)) - 1));
    }
  }
}

FANOUT_CO_TEST_CASE(void_operations_are_retried_until_one_succeeds)
{
  int attempts = 0;
  co_await fanout::retry(
      [&attempts]() -> asio::awaitable<void> {
        if (++attempts < 3)
          throw tagged_error(attempts);
        co_return;
      },
      exact(3, 1ms));
  BOOST_TEST(attempts == 3);
}

FANOUT_CO_TEST_CASE(move_only_values_come_out_of_the_successful_attempt)
{
  int attempts = 0;
  auto value = co_await fanout::retry(
      [&attempts]() -> asio::awaitable<std::unique_ptr<int>> {
        if (++attempts < 2)
          throw tagged_error(attempts);
        co_return std::make_unique<int>(42);
      },
      exact(2, 1ms));
  BOOST_TEST_REQUIRE(value != nullptr);
  BOOST_TEST(*value == 42);
}

FANOUT_CO_TEST_CASE(the_last_failure_comes_out_when_the_attempts_run_out)
{
  flaky op; // never succeeds
  const auto start = fanout::clock::now();
  const auto e = co_await exception_of(fanout::retry(op.factory(), exact(3)));
  BOOST_TEST(tag_of(e) == 3);
  BOOST_TEST(op.attempts == 3);
  check_gaps(op, {step, 2 * step});
  // No sleep after the last attempt.
  FANOUT_CHECK_ELAPSED(seconds_since(start), 3 * step);
}

FANOUT_CO_TEST_CASE(max_attempts_1_makes_one_attempt_and_never_sleeps)
{
  flaky op;
  const auto start = fanout::clock::now();
  const auto e = co_await exception_of(fanout::retry(op.factory(), exact(1, 10s)));
  BOOST_TEST(tag_of(e) == 1);
  BOOST_TEST(op.attempts == 1);
  BOOST_TEST(seconds_since(start) < 1.0);
}

FANOUT_CO_TEST_CASE(a_make_op_that_throws_is_a_failed_attempt_and_is_retried)
{
  int calls = 0;
  const int value = co_await fanout::retry(
      [&calls]() -> asio::awaitable<int> {
        if (++calls < 3)
          throw tagged_error(calls); // before making the awaitable
        return fanout::test::value_after(0ms, 7);
      },
      exact(3, 1ms));
  BOOST_TEST(value == 7);
  BOOST_TEST(calls == 3);
}

FANOUT_CO_TEST_CASE(max_delay_caps_every_delay)
{
  flaky op{.succeed_on = 4};
  auto policy = exact(4, step, 10);
  policy.max_delay = 2 * step; // 10 step and 100 step capped
  co_await fanout::retry(op.factory(), policy);
  check_gaps(op, {step, 2 * step, 2 * step});
}

BOOST_AUTO_TEST_CASE(delays_follow_the_documented_formula)
{
  const fanout::backoff b{.initial = 100ms, .factor = 2, .max_delay = 10s, .jitter = 0};
  using fanout::detail::backoff_delay;
  BOOST_TEST((backoff_delay(b, 1, 0.7) == 100ms)); // jitter 0: U has no effect
  BOOST_TEST((backoff_delay(b, 2, 0) == 200ms));
  BOOST_TEST((backoff_delay(b, 4, 0) == 800ms));
  BOOST_TEST((backoff_delay(b, 8, 0) == 10s)); // 12.8 s capped
  // A power far beyond any duration is the cap, not an overflow.
  BOOST_TEST((backoff_delay(b, std::numeric_limits<unsigned>::max(), 0) == 10s));
  fanout::backoff huge = b;
  huge.factor = 1e300;
  BOOST_TEST((backoff_delay(huge, 5, 0) == 10s));
  fanout::backoff zero = huge;
  zero.initial = 0ms;
  BOOST_TEST((backoff_delay(zero, 5, 0) == 0ms));
  // Jitter takes the fraction jitter * U off.
  fanout::backoff full = b;
  full.jitter = 1;
  BOOST_TEST((backoff_delay(full, 2, 0.5) == 100ms));
  BOOST_TEST((backoff_delay(full, 2, 1) == 0ms));
  fanout::backoff quarter = b;
  quarter.jitter = 0.25;
  BOOST_TEST((backoff_delay(quarter, 1, 1) == 75ms));
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(retry_if)

FANOUT_CO_TEST_CASE(retry_if_decides_which_failures_are_retried_and_the_declined_one_comes_out)
{
  flaky op; // never succeeds
  std::vector<int> seen;
  auto policy = exact(10, 1ms);
  policy.retry_if = [&seen](const std::exception_ptr& e) {
    seen.push_back(tag_of(e));
    return tag_of(e) < 3; // transient until attempt 3
  };
  const auto e = co_await exception_of(fanout::retry(op.factory(), policy));
  BOOST_TEST(tag_of(e) == 3);
  BOOST_TEST(op.attempts == 3);
  BOOST_TEST((seen == std::vector<int>{1, 2, 3}));
}

FANOUT_CO_TEST_CASE(retry_if_is_not_asked_about_the_last_attempt)
{
  flaky op;
  int asked = 0;
  auto policy = exact(2, 1ms);
  policy.retry_if = [&asked](const std::exception_ptr&) {
    ++asked;
    return true;
  };
  const auto e = co_await exception_of(fanout::retry(op.factory(), policy));
  BOOST_TEST(tag_of(e) == 2);
  BOOST_TEST(asked == 1);
}

FANOUT_CO_TEST_CASE(an_exception_from_retry_if_comes_out_instead_of_the_failure)
{
  flaky op;
  auto policy = exact(3, 1ms);
  policy.retry_if = [](const std::exception_ptr&) -> bool { throw tagged_error(99); };
  const auto e = co_await exception_of(fanout::retry(op.factory(), policy));
  BOOST_TEST(tag_of(e) == 99);
  BOOST_TEST(op.attempts == 1);
}

FANOUT_CO_TEST_CASE(an_operation_aborted_failure_is_never_retried_nor_shown_to_retry_if)
{
  int attempts = 0;
  int asked = 0;
  auto policy = exact(5, 1ms);
  policy.retry_if = [&asked](const std::exception_ptr&) { return ++asked > 0; };
  const auto e = co_await exception_of(fanout::retry(
      [&attempts]() -> asio::awaitable<int> {
        ++attempts;
        throw boost::system::system_error(asio::error::operation_aborted);
        co_return 0;
      },
      policy));
  BOOST_TEST(code_of(e) == asio::error::operation_aborted);
  BOOST_TEST(attempts == 1);
  BOOST_TEST(asked == 0);
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(jitter)

BOOST_AUTO_TEST_CASE(a_seeded_jitter_source_repeats_its_draws_which_spread_over_0_to_1)
{
  fanout::detail::jitter_source a(12345);
  fanout::detail::jitter_source b(12345);
  fanout::detail::jitter_source other(54321);
  constexpr int n = 20000;
  double sum = 0;
  double low = 1;
  double high = 0;
  int same_as_other = 0;
  int mismatches = 0;
  for (int i = 0; i < n; ++i) {
    const double u = a.next();
    mismatches += u == b.next() ? 0 : 1;
    same_as_other += u == other.next() ? 1 : 0;
    sum += u;
    low = std::min(low, u);
    high = std::max(high, u);
  }
  BOOST_TEST(mismatches == 0);
  BOOST_TEST(same_as_other == 0);
  BOOST_TEST(low >= 0.0);
  BOOST_TEST(high < 1.0);
  BOOST_TEST(low < 0.001);
  BOOST_TEST(high > 0.999);
  BOOST_TEST(std::abs(sum / n - 0.5) < 0.01);
}

BOOST_AUTO_TEST_CASE(unseeded_retries_get_different_seeds)
{
  const auto a = fanout::detail::fresh_jitter_seed();
  const auto b = fanout::detail::fresh_jitter_seed();
  BOOST_TEST(a != b);
}

FANOUT_CO_TEST_CASE(with_a_fixed_seed_the_delays_are_the_seeded_draws_within_the_jitter_bounds)
{
  constexpr std::uint64_t seed = 20240611;
  const fanout::backoff policy{.initial = 3 * step, .factor = 1, .max_delay = 10s, .jitter = 1, .max_attempts = 6};
  // The delays this seed gives: each within [0, initial] (full jitter).
  fanout::detail::jitter_source draws(seed);
  std::vector<fanout::clock::duration> expected;
  for (unsigned k = 1; k < policy.max_attempts; ++k) {
    expected.push_back(fanout::detail::backoff_delay(policy, k, draws.next()));
    BOOST_TEST((expected.back() >= 0ms && expected.back() <= policy.initial));
  }
  flaky op;
  const auto e = co_await exception_of(
      fanout::detail::retry_with(op.factory(), policy, {.deadline = std::nullopt, .jitter_seed = seed}));
  BOOST_TEST(tag_of(e) == 6);
  check_gaps(op, expected);
}

FANOUT_CO_TEST_CASE(partial_jitter_keeps_each_delay_between_its_floor_and_the_exponential_delay)
{
  // jitter 0.5: each delay in [initial / 2, initial], unseeded.
  flaky op;
  const fanout::backoff policy{.initial = 2 * step, .factor = 1, .max_delay = 10s, .jitter = 0.5, .max_attempts = 5};
  (void)co_await exception_of(fanout::retry(op.factory(), policy));
  BOOST_TEST_REQUIRE(op.starts.size() == 5U);
  const double initial = std::chrono::duration<double>(policy.initial).count();
  for (std::size_t i = 0; i + 1 < op.starts.size(); ++i) {
    BOOST_TEST(op.gap(i) >= initial * 0.5 * 0.98);
    BOOST_TEST(op.gap(i) <= initial * 1.5 + fanout::test::late_slack_seconds);
  }
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(cancellation_and_deadline)

FANOUT_CO_TEST_CASE(cancellation_during_a_backoff_sleep_stops_at_once_with_operation_aborted)
{
  auto ex = co_await asio::this_coro::executor;
  flaky op;
  int asked = 0;
  auto policy = exact(5, 10s);
  policy.retry_if = [&asked](const std::exception_ptr&) { return ++asked > 0; };
  asio::cancellation_signal signal;
  asio::steady_timer canceller(ex);
  const auto start = fanout::clock::now();
  emit_after(canceller, signal, step);
  auto [e, value] =
      co_await asio::co_spawn(ex, fanout::retry(op.factory(), policy),
                              asio::bind_cancellation_slot(signal.slot(), asio::as_tuple(asio::use_awaitable)));
  BOOST_TEST(code_of(e) == asio::error::operation_aborted);
  BOOST_TEST(value == 0);
  BOOST_TEST(op.attempts == 1); // no attempt after the cancelled sleep
  BOOST_TEST(asked == 1);       // asked about attempt 1's failure, before the sleep
  FANOUT_CHECK_ELAPSED(seconds_since(start), step);
}

FANOUT_CO_TEST_CASE(cancellation_during_an_attempt_is_never_retried_nor_shown_to_retry_if)
{
  auto ex = co_await asio::this_coro::executor;
  int attempts = 0;
  int asked = 0;
  auto policy = exact(5, 1ms);
  policy.retry_if = [&asked](const std::exception_ptr&) { return ++asked > 0; };
  asio::cancellation_signal signal;
  asio::steady_timer canceller(ex);
  const auto start = fanout::clock::now();
  emit_after(canceller, signal, step);
  auto [e, value] =
      co_await asio::co_spawn(ex,
                              fanout::retry(
                                  [&attempts] {
                                    ++attempts;
                                    return fanout::test::value_after(10s, 1);
                                  },
                                  policy),
                              asio::bind_cancellation_slot(signal.slot(), asio::as_tuple(asio::use_awaitable)));
  BOOST_TEST(code_of(e) == asio::error::operation_aborted);
  BOOST_TEST(attempts == 1);
  BOOST_TEST(asked == 0);
  FANOUT_CHECK_ELAPSED(seconds_since(start), step);
}

FANOUT_CO_TEST_CASE(an_attempt_that_fails_otherwise_after_cancellation_is_not_retried)
{
  // The attempt swallows the cancellation and throws its own error: retry
  // still stops, with operation_aborted.
  auto ex = co_await asio::this_coro::executor;
  int attempts = 0;
  asio::cancellation_signal signal;
  asio::steady_timer canceller(ex);
  emit_after(canceller, signal, step);
  auto [e, value] =
      co_await asio::co_spawn(ex,
                              fanout::retry(
                                  [&attempts]() -> asio::awaitable<int> {
                                    ++attempts;
                                    try {
                                      co_await fanout::sleep(10s);
                                    } catch (const boost::system::system_error&) {
                                    }
                                    throw tagged_error(attempts);
                                  },
                                  exact(5, 1ms)),
                              asio::bind_cancellation_slot(signal.slot(), asio::as_tuple(asio::use_awaitable)));
  BOOST_TEST(code_of(e) == asio::error::operation_aborted);
  BOOST_TEST(attempts == 1);
}

FANOUT_CO_TEST_CASE(the_deadline_form_gives_up_rather_than_start_a_sleep_that_ends_past_the_deadline)
{
  // Delays 2, 4, 8 steps; deadline 3 steps away: attempt 1 fails at 0, the
  // 2-step sleep ends before the deadline; attempt 2 fails at 2 steps, and
  // a 4-step sleep would end at 6: retry rethrows attempt 2's failure then.
  flaky op;
  const auto start = fanout::clock::now();
  const auto e = co_await exception_of(
      fanout::detail::retry_with(op.factory(), exact(10, 2 * step), {.deadline = start + 3 * step}));
  BOOST_TEST(tag_of(e) == 2);
  BOOST_TEST(op.attempts == 2);
  FANOUT_CHECK_ELAPSED(seconds_since(start), 2 * step);
  BOOST_TEST(seconds_since(start) < std::chrono::duration<double>(3 * step).count() + fanout::test::late_slack_seconds);
}

FANOUT_CO_TEST_CASE(the_deadline_form_without_a_deadline_retries_like_retry)
{
  flaky op{.succeed_on = 3};
  const int value = co_await fanout::detail::retry_with(op.factory(), exact(3, 1ms), {});
  BOOST_TEST(value == 30);
  BOOST_TEST(op.attempts == 3);
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(bad_policies)

FANOUT_CO_TEST_CASE(bad_backoff_values_fail_with_invalid_argument_before_any_attempt)
{
  const double nan = std::numeric_limits<double>::quiet_NaN();
  const double inf = std::numeric_limits<double>::infinity();
  const std::vector<fanout::backoff> bad{
      {.max_attempts = 0}, {.factor = 0.5}, {.factor = nan},   {.factor = inf},     {.jitter = -0.1},
      {.jitter = 1.5},     {.jitter = nan}, {.initial = -1ms}, {.max_delay = -1ms},
  };
  for (std::size_t i = 0; i < bad.size(); ++i) {
    BOOST_TEST_CONTEXT("bad policy " << i)
    {
      int calls = 0;
      const auto e = co_await exception_of(fanout::retry(
          [&calls] {
            ++calls;
            return fanout::test::value_after(0ms, 1);
          },
          bad[i]));
      BOOST_TEST(code_of(e) == fanout::make_error_code(fanout::error::invalid_argument));
      BOOST_TEST(calls == 0);
    }
  }
}

FANOUT_CO_TEST_CASE(edge_values_of_the_ranges_are_accepted)
{
  const std::vector<fanout::backoff> edges{
      {.initial = 0ms, .factor = 1, .max_delay = 0ms, .jitter = 0, .max_attempts = 2},
      {.initial = 0ms, .factor = 1, .max_delay = 0ms, .jitter = 1, .max_attempts = 2},
  };
  for (const auto& policy : edges) {
    flaky op{.succeed_on = 2};
    BOOST_TEST(co_await fanout::retry(op.factory(), policy) == 20);
  }
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(threads)

BOOST_AUTO_TEST_CASE(many_retries_run_concurrently_on_a_4_thread_pool_each_with_its_own_attempt_count,
                     *boost::unit_test::timeout(60))
{
  constexpr int rounds = 10;
  constexpr int n = 200;
  for (int round = 0; round < rounds; ++round) {
    asio::thread_pool pool(4);
    // Item i succeeds on attempt i % 3 + 1 (of at most 3).
    auto attempts = std::make_unique<std::atomic<int>[]>(n);
    std::vector<std::future<int>> results;
    results.reserve(n);
    for (int i = 0; i < n; ++i) {
      auto* count = &attempts[static_cast<std::size_t>(i)];
      auto make_op = [count, i]() -> asio::awaitable<int> {
        const int attempt = ++*count;
        co_await fanout::sleep(std::chrono::microseconds(100 * (i % 5)));
        if (attempt < i % 3 + 1)
          throw tagged_error(attempt);
        co_return i;
      };
      results.push_back(
          asio::co_spawn(pool, fanout::retry(make_op, {.initial = 1ms, .factor = 2, .jitter = 1, .max_attempts = 3}),
                         asio::use_future));
    }
    int wrong = 0;
    int hung = 0;
    for (int i = 0; i < n; ++i) {
      auto& f = results[static_cast<std::size_t>(i)];
      if (f.wait_for(20s) != std::future_status::ready) {
        ++hung;
        continue;
      }
      const bool ok = f.get() == i && attempts[static_cast<std::size_t>(i)].load() == i % 3 + 1;
      wrong += ok ? 0 : 1;
    }
    BOOST_TEST_REQUIRE(hung == 0, "round " << round << ": " << hung << " retries hung");
    BOOST_TEST(wrong == 0, "round " << round << ": " << wrong << " wrong values or attempt counts");
    pool.join();
  }
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE_END() // retry_tests
