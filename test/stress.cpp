#include <fanout/async_map.hpp>

#include <boost/test/unit_test.hpp>

#include "support/co_test.hpp"
#include "support/lifetime.hpp"
#include "support/outcomes.hpp"
#include "support/ranges.hpp"

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

// Every suite sits in its own top-level suite (and namespace): the suites are
// compiled together in unity batches (test/CMakeLists.txt).
BOOST_AUTO_TEST_SUITE(stress_tests)

// Stress tests: many items with random delays, failures and cancellations,
// fail-fast and collect-all, on one thread and on a 4-thread pool, checking
// every result, every failure and that nothing is left running.
//
// The randomness is a pure function of a seed and the item's index, so any
// failure can be replayed: the seed is printed (--log_level=message) and
// shown in every failed assertion. Environment:
//   FANOUT_STRESS_SEED   the seed (default below)
//   FANOUT_STRESS_ITEMS  items per map (default 100,000, fewer under
//                        sanitizers); streams and bounded maps use a fifth.

#if defined(__SANITIZE_THREAD__) || defined(__SANITIZE_ADDRESS__)
#define FANOUT_STRESS_SANITIZED 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer) || __has_feature(address_sanitizer)
#define FANOUT_STRESS_SANITIZED 1
#endif
#endif

namespace asio = boost::asio;
using namespace std::chrono_literals;
using fanout::test::code_of;
using fanout::test::item_scope;
using fanout::test::live_items;
using fanout::test::seconds_since;
using fanout::test::timed_out;

namespace {

constexpr std::uint64_t default_seed = 20240611;
#if defined(FANOUT_STRESS_SANITIZED)
constexpr int default_items = 20000; // sanitizers run 5-15 times slower
#else
constexpr int default_items = 100000;
#endif

struct stress_config
{
  std::uint64_t seed = default_seed;
  int items = default_items;
};

std::uint64_t env_number(const char* name, std::uint64_t fallback)
{
  const char* text = std::getenv(name);
  if (text == nullptr || *text == '\0')
    return fallback;
  char* end = nullptr;
  const unsigned long long value = std::strtoull(text, &end, 10);
  return *end == '\0' ? static_cast<std::uint64_t>(value) : fallback;
}

const stress_config& config()
{
  static const stress_config c = [] {
    stress_config out;
    out.seed = env_number("FANOUT_STRESS_SEED", default_seed);
    const auto items = env_number("FANOUT_STRESS_ITEMS", static_cast<std::uint64_t>(default_items));
    out.items = static_cast<int>(std::clamp<std::uint64_t>(items, 1000, 50000000));
    return out;
  }();
  return c;
}

// splitmix64: a good 64-bit mix, so that seed and index give independent bits.
std::uint64_t mix(std::uint64_t x)
{
  x += 0x9e3779b97f4a7c15ULL;
  x = (x ^ (x >> 30U)) * 0xbf58476d1ce4e5b9ULL;
  x = (x ^ (x >> 27U)) * 0x94d049bb133111ebULL;
  return x ^ (x >> 31U);
}

// A random number in [0, bound) drawn from the seed, for a named purpose.
int draw(std::uint64_t seed, std::uint64_t purpose, int bound)
{
  return static_cast<int>(mix(seed ^ mix(purpose)) % static_cast<std::uint64_t>(bound));
}

enum class delay_kind : std::uint8_t {
  none,  // completes without suspending
  yield, // suspends once (a post to its executor)
  timer, // sleeps 0-1000 us
};

struct item_plan
{
  delay_kind delay = delay_kind::none;
  std::chrono::microseconds sleep{0};
  bool fails = false;
};

// What each item does, drawn from the seed and the index: 80% complete at
// once, 15% yield, 5% sleep up to 1 ms; a given share fail.
class plan_table
{
public:
  plan_table(std::uint64_t seed, int failures_per_million) : seed_(seed), failures_per_million_(failures_per_million) {}

  item_plan operator()(int i) const
  {
    if (i == slow_index_)
      return {delay_kind::timer, slow_delay_, false};
    const std::uint64_t h = mix(seed_ ^ mix(static_cast<std::uint64_t>(i) + 1));
    item_plan p;
    const auto roll = h % 100U;
    p.delay = roll < 80 ? delay_kind::none : roll < 95 ? delay_kind::yield : delay_kind::timer;
    p.sleep = std::chrono::microseconds(static_cast<std::int64_t>((h >> 8U) % 1001U));
    p.fails = static_cast<int>((h >> 24U) % 1000000U) < failures_per_million_ || i == forced_failure_;
    return p;
  }

  // Item @p i sleeps @p delay and never fails.
  void make_slow(int i, std::chrono::microseconds delay)
  {
    slow_index_ = i;
    slow_delay_ = delay;
  }
  // Item @p i fails, whatever the draw.
  void force_failure(int i) { forced_failure_ = i; }

  [[nodiscard]] int failures_below(int n) const
  {
    int count = 0;
    for (int i = 0; i < n; ++i)
      count += (*this)(i).fails ? 1 : 0;
    return count;
  }

private:
  std::uint64_t seed_;
  int failures_per_million_;
  int slow_index_ = -1;
  std::chrono::microseconds slow_delay_{0};
  int forced_failure_ = -1;
};

std::int64_t value_of(int i)
{
  return std::int64_t{i} * 7 - 3;
}

struct item_failure : std::runtime_error
{
  explicit item_failure(int i) : std::runtime_error("item " + std::to_string(i) + " failed"), index(i) {}
  int index;
};

enum item_status : std::uint8_t { not_started, running, returned, threw, aborted, other_error };

// What happened to every item, written from any thread.
class item_log
{
public:
  explicit item_log(int n)
      : size_(n), status_(std::make_unique<std::atomic<std::uint8_t>[]>(static_cast<std::size_t>(n)))
  {}

  void mark(int i, item_status s) { status_[static_cast<std::size_t>(i)].store(s); }
  [[nodiscard]] item_status status(int i) const
  {
    return static_cast<item_status>(status_[static_cast<std::size_t>(i)].load());
  }
  [[nodiscard]] int count(item_status s) const
  {
    int c = 0;
    for (int i = 0; i < size_; ++i)
      c += status(i) == s ? 1 : 0;
    return c;
  }
  [[nodiscard]] int size() const { return size_; }

  live_items live;
  // Set when an item threw its planned failure, and when the cancellation was
  // emitted; items starting after each are counted.
  std::atomic<bool> failed{false};
  std::atomic<int> started_after_failure{0};
  std::atomic<bool> cancelled{false};
  std::atomic<int> started_after_cancel{0};
  // The first item to throw its planned failure.
  std::atomic<int> first_failure{-1};
  // One thread only: item cancel_at posts the emission of *signal.
  int cancel_at = -1;
  asio::cancellation_signal* signal = nullptr;

private:
  int size_;
  std::unique_ptr<std::atomic<std::uint8_t>[]> status_;
};

// One item: marks itself live for its whole life, waits as planned, then
// fails or gives value_of(i). Records how it ended.
asio::awaitable<std::int64_t> stress_item(const plan_table& plans, item_log& log, int i)
{
  const item_scope scope(log.live);
  log.mark(i, running);
  if (log.failed.load())
    ++log.started_after_failure;
  if (log.cancelled.load())
    ++log.started_after_cancel;
  const item_plan p = plans(i);
  if (i == log.cancel_at) {
    asio::post(co_await asio::this_coro::executor, [&log] {
      log.cancelled = true;
      log.signal->emit(asio::cancellation_type::terminal);
    });
  }
  try {
    if (p.delay == delay_kind::yield)
      co_await asio::post(co_await asio::this_coro::executor, asio::use_awaitable);
    else if (p.delay == delay_kind::timer)
      co_await fanout::sleep(p.sleep);
  } catch (const boost::system::system_error& e) {
    log.mark(i, e.code() == asio::error::operation_aborted ? aborted : other_error);
    throw;
  }
  if (p.fails) {
    log.mark(i, threw);
    int none = -1;
    log.first_failure.compare_exchange_strong(none, i);
    log.failed = true;
    throw item_failure(i);
  }
  log.mark(i, returned);
  co_return value_of(i);
}

// The same item as a blocking call (for offloaded plain callables).
std::int64_t blocking_item(const plan_table& plans, item_log& log, int i)
{
  const item_scope scope(log.live);
  log.mark(i, running);
  const item_plan p = plans(i);
  if (p.delay == delay_kind::timer)
    std::this_thread::sleep_for(p.sleep / 10);
  if (p.fails) {
    log.mark(i, threw);
    throw item_failure(i);
  }
  log.mark(i, returned);
  return value_of(i);
}

enum class threads { one, pool };

// Runs @p body on a fresh io_context{1} (fanout::run) or on a 4-thread pool,
// and gives its value. Assertions belong on the calling thread, after.
template <typename T>
T run_in(threads mode, asio::awaitable<T> body)
{
  if (mode == threads::one)
    return fanout::run(std::move(body));
  asio::thread_pool pool(4);
  std::future<T> done = asio::co_spawn(pool, std::move(body), asio::use_future);
  if (done.wait_for(100s) != std::future_status::ready) {
    pool.stop();
    pool.join();
    throw std::runtime_error("the stress body hung on the thread pool");
  }
  pool.join(); // nothing is left running on the pool
  return done.get();
}

const char* name_of(threads mode)
{
  return mode == threads::one ? "io_context{1}" : "thread_pool(4)";
}

// What one stress run left behind, checked on the test's thread.
template <typename Result>
struct run_summary
{
  std::exception_ptr error;
  Result result{};
  std::int64_t live_at_completion = -1; // items still running when the await completed
  double seconds = 0;
};

int failure_index_of(const std::exception_ptr& e)
{
  if (!e)
    return -1;
  try {
    std::rethrow_exception(e);
  } catch (const item_failure& f) {
    return f.index;
  } catch (...) {
    return -2;
  }
}

// Counts entries of @p values that differ from value_of(index).
int wrong_values(const std::vector<std::int64_t>& values)
{
  int wrong = 0;
  for (std::size_t i = 0; i < values.size(); ++i)
    wrong += values[i] == value_of(static_cast<int>(i)) ? 0 : 1;
  return wrong;
}

// Every item that started has ended, one way or another.
void check_every_started_item_ended(const item_log& log)
{
  BOOST_TEST(log.count(running) == 0);
  BOOST_TEST(log.live.now.load() == 0);
  BOOST_TEST(log.live.started.load() == log.live.ended.load());
  BOOST_TEST(log.count(other_error) == 0);
}

// One map of n stress items, fail-fast (async_map) or settled
// (async_map_settled), with what it left behind.
template <bool Settled>
auto map_run(const plan_table& plans, item_log& log, int n, fanout::map_options options) -> asio::awaitable<
    run_summary<std::vector<std::conditional_t<Settled, fanout::outcome<std::int64_t>, std::int64_t>>>>
{
  run_summary<std::vector<std::conditional_t<Settled, fanout::outcome<std::int64_t>, std::int64_t>>> out;
  const auto start = fanout::clock::now();
  auto item = [&](int i) { return stress_item(plans, log, i); };
  try {
    if constexpr (Settled)
      out.result = co_await fanout::async_map_settled(options, item, fanout::test::iota(0, n));
    else
      out.result = co_await fanout::async_map(options, item, fanout::test::iota(0, n));
  } catch (...) {
    out.error = std::current_exception();
  }
  out.live_at_completion = log.live.now.load();
  out.seconds = seconds_since(start);
  co_return out;
}

auto fail_fast_run(const plan_table& plans, item_log& log, int n, fanout::map_options options = {})
{
  return map_run<false>(plans, log, n, options);
}

auto settled_run(const plan_table& plans, item_log& log, int n, fanout::map_options options = {})
{
  return map_run<true>(plans, log, n, options);
}

// Runs @p body (a map) with item log.cancel_at emitting terminal
// cancellation through the slot bound to the map's co_spawn (one thread only:
// the emission is posted to the same io_context).
template <typename T>
asio::awaitable<run_summary<T>> cancelled_run(item_log& log, asio::awaitable<T> map)
{
  run_summary<T> out;
  asio::cancellation_signal signal;
  log.signal = &signal;
  const auto start = fanout::clock::now();
  auto [e, result] =
      co_await asio::co_spawn(co_await asio::this_coro::executor, std::move(map),
                              asio::bind_cancellation_slot(signal.slot(), asio::as_tuple(asio::use_awaitable)));
  out.error = e;
  out.result = std::move(result);
  out.live_at_completion = log.live.now.load();
  out.seconds = seconds_since(start);
  log.signal = nullptr;
  co_return out;
}

// Checks outcomes of a settled run against the plan: a value for every
// success, the item's own failure for every failure.
void check_outcomes(const plan_table& plans, const std::vector<fanout::outcome<std::int64_t>>& outcomes, int n,
                    int& failures_reported)
{
  BOOST_TEST_REQUIRE(outcomes.size() == static_cast<std::size_t>(n));
  int wrong = 0;
  int first_wrong = -1;
  failures_reported = 0;
  for (int i = 0; i < n; ++i) {
    const auto& r = outcomes[static_cast<std::size_t>(i)];
    bool ok = false;
    if (plans(i).fails) {
      const int index = failure_index_of(r.error());
      ok = !r.has_value() && index == i;
      failures_reported += index >= 0 ? 1 : 0;
    } else {
      ok = r.has_value() && r.value() == value_of(i);
    }
    if (!ok && wrong++ == 0)
      first_wrong = i;
  }
  BOOST_TEST(wrong == 0, "wrong outcomes: " << wrong << ", the first at item " << first_wrong);
}

} // namespace

// Declares a stress test run twice: on io_context{1} and on a 4-thread pool.
#define STRESS_TEST_CASE(name)                                                                                         \
  static void name##_body(threads mode);                                                                               \
  BOOST_AUTO_TEST_CASE(name##_on_one_thread, *boost::unit_test::timeout(300))                                          \
  {                                                                                                                    \
    name##_body(threads::one);                                                                                         \
  }                                                                                                                    \
  BOOST_AUTO_TEST_CASE(name##_on_a_4_thread_pool, *boost::unit_test::timeout(300))                                     \
  {                                                                                                                    \
    name##_body(threads::pool);                                                                                        \
  }                                                                                                                    \
  static void name##_body(threads mode)

#define STRESS_CONTEXT(n) BOOST_TEST_CONTEXT("seed " << config().seed << ", " << (n) << " items, " << name_of(mode))

BOOST_AUTO_TEST_SUITE(fail_fast)

STRESS_TEST_CASE(async_map_of_randomly_delayed_items_gives_every_result_in_input_order_and_leaves_nothing_running)
{
  const int n = config().items;
  const plan_table plans(config().seed, 0);
  item_log log(n);
  const auto out = run_in(mode, fail_fast_run(plans, log, n));
  BOOST_TEST_MESSAGE("fail-fast, no failures: seed " << config().seed << ", " << n << " items on " << name_of(mode)
                                                     << ": " << out.seconds << " s");
  STRESS_CONTEXT(n)
  {
    BOOST_TEST(!out.error);
    BOOST_TEST_REQUIRE(out.result.size() == static_cast<std::size_t>(n));
    BOOST_TEST(wrong_values(out.result) == 0);
    BOOST_TEST(out.live_at_completion == 0);
    BOOST_TEST(log.count(returned) == n);
    BOOST_TEST(log.live.started.load() == n);
    check_every_started_item_ended(log);
  }
}

STRESS_TEST_CASE(async_map_with_random_failures_reports_exactly_one_of_them_and_leaves_nothing_running)
{
  const int n = config().items;
  plan_table plans(config().seed, 20); // about 2 failures in 100,000, and one forced in the second half
  plans.force_failure(n / 2 + draw(config().seed, 1, n / 2));
  item_log log(n);
  const auto out = run_in(mode, fail_fast_run(plans, log, n));
  const int reported = failure_index_of(out.error);
  BOOST_TEST_MESSAGE("fail-fast with failures: seed " << config().seed << ", " << n << " items on " << name_of(mode)
                                                      << ": item " << reported << " reported, " << log.count(threw)
                                                      << " threw, " << log.live.started.load() << " started, "
                                                      << out.seconds << " s");
  STRESS_CONTEXT(n)
  {
    BOOST_TEST_REQUIRE(reported >= 0); // the map failed with an item's own exception, not another error
    BOOST_TEST(log.status(reported) == threw);
    BOOST_TEST(plans(reported).fails);
    BOOST_TEST(out.result.empty());
    BOOST_TEST(out.live_at_completion == 0);
    BOOST_TEST(log.count(threw) >= 1);
    check_every_started_item_ended(log);
    // Every item that ran did what it was planned to do.
    int mismatched = 0;
    for (int i = 0; i < n; ++i)
      if ((log.status(i) == threw && !plans(i).fails) || (log.status(i) == returned && plans(i).fails))
        ++mismatched;
    BOOST_TEST(mismatched == 0);
    if (mode == threads::one) {
      // One thread: the first item to throw is the one reported, and the
      // failure stops the map at once: nothing starts after it.
      BOOST_TEST(reported == log.first_failure.load());
      BOOST_TEST(log.started_after_failure.load() == 0);
    }
  }
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(collect_all)

STRESS_TEST_CASE(async_map_settled_with_random_failures_reports_every_failure_exactly_once_in_its_own_slot)
{
  const int n = config().items;
  const plan_table plans(config().seed, 50000); // 5% fail
  item_log log(n);
  const auto out = run_in(mode, settled_run(plans, log, n));
  const int planned = plans.failures_below(n);
  BOOST_TEST_MESSAGE("collect-all: seed " << config().seed << ", " << n << " items on " << name_of(mode) << ": "
                                          << planned << " failures, " << out.seconds << " s");
  STRESS_CONTEXT(n)
  {
    BOOST_TEST(!out.error);
    int reported = 0;
    check_outcomes(plans, out.result, n, reported);
    BOOST_TEST(reported == planned);
    BOOST_TEST(log.count(threw) == planned);
    BOOST_TEST(log.count(returned) == n - planned);
    BOOST_TEST(out.live_at_completion == 0);
    BOOST_TEST(log.live.started.load() == n);
    check_every_started_item_ended(log);
  }
}

STRESS_TEST_CASE(async_map_settled_with_a_window_and_random_failures_keeps_every_outcome_and_the_window)
{
  const int n = config().items / 5;
  const plan_table plans(config().seed + 1, 50000);
  item_log log(n);
  const std::size_t window = 16;
  const auto out = run_in(mode, settled_run(plans, log, n, {.max_concurrency = window}));
  const int planned = plans.failures_below(n);
  BOOST_TEST_MESSAGE("collect-all, window 16: seed " << config().seed << ", " << n << " items on " << name_of(mode)
                                                     << ": peak " << log.live.peak.load() << ", " << out.seconds
                                                     << " s");
  STRESS_CONTEXT(n)
  {
    BOOST_TEST(!out.error);
    int reported = 0;
    check_outcomes(plans, out.result, n, reported);
    BOOST_TEST(reported == planned);
    BOOST_TEST(log.live.peak.load() <= static_cast<std::int64_t>(window));
    BOOST_TEST(out.live_at_completion == 0);
    check_every_started_item_ended(log);
  }
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(cancellation)

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
    BOOST_TEST(log.live.peak.load() <= 64);
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
      BOOST_TEST(log.live.peak.load() <= 100);
      check_every_started_item_ended(log);
    }
  }
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(bounded)

STRESS_TEST_CASE(async_map_with_windows_of_1_3_64_and_1000_gives_every_result_and_never_exceeds_the_window)
{
  const int n = config().items / 5;
  for (const std::size_t window : {std::size_t{1}, std::size_t{3}, std::size_t{64}, std::size_t{1000}}) {
    const plan_table plans(config().seed + window, 0);
    const int size = window == 1 ? n / 4 : n; // one at a time pays every delay in turn
    item_log log(size);
    const auto out = run_in(mode, fail_fast_run(plans, log, size, {.max_concurrency = window}));
    BOOST_TEST_MESSAGE("window " << window << ": seed " << config().seed << ", " << size << " items on "
                                 << name_of(mode) << ": peak " << log.live.peak.load() << ", " << out.seconds << " s");
    STRESS_CONTEXT(size)
    {
      BOOST_TEST_CONTEXT("window " << window)
      {
        BOOST_TEST(!out.error);
        BOOST_TEST_REQUIRE(out.result.size() == static_cast<std::size_t>(size));
        BOOST_TEST(wrong_values(out.result) == 0);
        BOOST_TEST(log.live.peak.load() <= static_cast<std::int64_t>(window));
        BOOST_TEST(log.live.started.load() == size);
        BOOST_TEST(out.live_at_completion == 0);
        check_every_started_item_ended(log);
      }
    }
  }
}

STRESS_TEST_CASE(async_map_settled_of_mixed_coroutine_and_offloaded_blocking_callables_reports_every_outcome)
{
  const int n = std::max(config().items / 50, 10);
  const plan_table plans(config().seed + 5, 50000);
  item_log log(n);
  std::vector<fanout::callable<std::int64_t(int)>> calls;
  calls.reserve(static_cast<std::size_t>(n));
  for (int i = 0; i < n; ++i) {
    if (draw(config().seed, 1000 + static_cast<std::uint64_t>(i), 2) == 0)
      calls.emplace_back([&plans, &log](int k) { return stress_item(plans, log, k); });
    else
      calls.emplace_back([&plans, &log](int k) { return blocking_item(plans, log, k); });
  }
  const auto out = run_in(mode, [&]() -> asio::awaitable<run_summary<std::vector<fanout::outcome<std::int64_t>>>> {
    run_summary<std::vector<fanout::outcome<std::int64_t>>> s;
    s.result = co_await fanout::async_map_settled(
        {.max_concurrency = 32, .blocking = fanout::blocking_policy::offload},
        [](const fanout::callable<std::int64_t(int)>& c, int i) { return c(i); }, calls, fanout::test::iota(0, n));
    s.live_at_completion = log.live.now.load();
    co_return s;
  }());
  BOOST_TEST_MESSAGE("mixed callables, offloaded: seed " << config().seed << ", " << n << " items on " << name_of(mode)
                                                         << ": peak " << log.live.peak.load());
  STRESS_CONTEXT(n)
  {
    int reported = 0;
    check_outcomes(plans, out.result, n, reported);
    BOOST_TEST(reported == plans.failures_below(n));
    BOOST_TEST(log.live.peak.load() <= 32);
    BOOST_TEST(out.live_at_completion == 0);
    check_every_started_item_ended(log);
  }
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(streams)

struct stream_summary
{
  std::exception_ptr error;
  int delivered = 0;
  int wrong = 0;
  int duplicates = 0;
  std::int64_t live_at_end = -1;
};

// Reads an ordered stream, pausing the reader now and then; cancels it after
// @p cancel_after elements (never if negative).
asio::awaitable<stream_summary> read_ordered(const plan_table& plans, item_log& log, int n, std::size_t window,
                                             int cancel_after)
{
  stream_summary out;
  auto stream = fanout::async_map_stream(
      {.max_concurrency = window}, [&](int i) { return stress_item(plans, log, i); }, fanout::test::iota(0, n));
  try {
    while (auto v = co_await stream.next()) {
      out.wrong += *v == value_of(out.delivered) ? 0 : 1;
      ++out.delivered;
      if (out.delivered % 7 == 0) // a slow reader, sometimes
        co_await asio::post(co_await asio::this_coro::executor, asio::use_awaitable);
      if (out.delivered == cancel_after)
        stream.cancel();
    }
  } catch (...) {
    out.error = std::current_exception();
  }
  out.live_at_end = log.live.now.load();
  co_return out;
}

asio::awaitable<stream_summary> read_as_completed(const plan_table& plans, item_log& log, int n, std::size_t window,
                                                  int cancel_after)
{
  stream_summary out;
  std::vector<std::uint8_t> seen(static_cast<std::size_t>(n), 0);
  auto stream = fanout::async_map_as_completed(
      {.max_concurrency = window}, [&](int i) { return stress_item(plans, log, i); }, fanout::test::iota(0, n));
  try {
    while (auto r = co_await stream.next()) {
      const auto [index, value] = *r;
      if (index >= seen.size() || value != value_of(static_cast<int>(index)))
        ++out.wrong;
      else if (seen[index]++ != 0)
        ++out.duplicates;
      ++out.delivered;
      if (out.delivered % 7 == 0)
        co_await asio::post(co_await asio::this_coro::executor, asio::use_awaitable);
      if (out.delivered == cancel_after)
        stream.cancel();
    }
  } catch (...) {
    out.error = std::current_exception();
  }
  out.live_at_end = log.live.now.load();
  co_return out;
}

STRESS_TEST_CASE(streams_with_a_window_give_every_result_once_and_never_exceed_the_window)
{
  const int n = config().items / 5;
  const std::size_t window = 64;
  const plan_table plans(config().seed + 6, 0);
  {
    item_log log(n);
    const auto out = run_in(mode, read_ordered(plans, log, n, window, -1));
    BOOST_TEST_MESSAGE("ordered stream, window 64: seed " << config().seed << ", " << n << " items on " << name_of(mode)
                                                          << ": peak " << log.live.peak.load());
    STRESS_CONTEXT(n)
    {
      BOOST_TEST(!out.error);
      BOOST_TEST(out.delivered == n);
      BOOST_TEST(out.wrong == 0);
      BOOST_TEST(log.live.peak.load() <= static_cast<std::int64_t>(window));
      BOOST_TEST(out.live_at_end == 0);
      check_every_started_item_ended(log);
    }
  }
  {
    item_log log(n);
    const auto out = run_in(mode, read_as_completed(plans, log, n, window, -1));
    BOOST_TEST_MESSAGE("as-completed stream, window 64: peak " << log.live.peak.load());
    STRESS_CONTEXT(n)
    {
      BOOST_TEST(!out.error);
      BOOST_TEST(out.delivered == n);
      BOOST_TEST(out.wrong == 0);
      BOOST_TEST(out.duplicates == 0);
      BOOST_TEST(log.live.peak.load() <= static_cast<std::int64_t>(window));
      BOOST_TEST(out.live_at_end == 0);
      check_every_started_item_ended(log);
    }
  }
}

STRESS_TEST_CASE(streams_with_random_failures_throw_one_of_them_after_correct_elements_and_leave_nothing_running)
{
  const int n = config().items / 5;
  const std::size_t window = 64;
  plan_table plans(config().seed + 7, 100);
  plans.force_failure(n / 2 + draw(config().seed, 7, n / 2));
  for (const bool ordered : {true, false}) {
    item_log log(n);
    const auto out =
        run_in(mode, ordered ? read_ordered(plans, log, n, window, -1) : read_as_completed(plans, log, n, window, -1));
    const int reported = failure_index_of(out.error);
    BOOST_TEST_MESSAGE((ordered ? "ordered" : "as-completed")
                       << " stream with failures: seed " << config().seed << ", " << n << " items on " << name_of(mode)
                       << ": item " << reported << " reported after " << out.delivered << " elements");
    STRESS_CONTEXT(n)
    {
      BOOST_TEST_REQUIRE(reported >= 0);
      BOOST_TEST(log.status(reported) == threw);
      BOOST_TEST(out.wrong == 0);
      BOOST_TEST(out.duplicates == 0);
      if (ordered)
        BOOST_TEST(out.delivered <= reported); // elements come in order: none from past the failure
      BOOST_TEST(out.live_at_end == 0);
      check_every_started_item_ended(log);
    }
  }
}

STRESS_TEST_CASE(streams_cancelled_by_the_reader_at_a_random_element_end_with_operation_aborted)
{
  const int n = config().items / 5;
  const std::size_t window = 64;
  const plan_table plans(config().seed + 8, 0);
  const int cancel_after = 1 + draw(config().seed, 8, n - 100);
  for (const bool ordered : {true, false}) {
    item_log log(n);
    const auto out = run_in(mode, ordered ? read_ordered(plans, log, n, window, cancel_after)
                                          : read_as_completed(plans, log, n, window, cancel_after));
    BOOST_TEST_MESSAGE((ordered ? "ordered" : "as-completed")
                       << " stream cancelled after " << cancel_after << " elements: seed " << config().seed << ", " << n
                       << " items on " << name_of(mode) << ": " << log.live.started.load() << " started");
    STRESS_CONTEXT(n)
    {
      BOOST_TEST(code_of(out.error) == asio::error::operation_aborted);
      BOOST_TEST(out.delivered == cancel_after);
      BOOST_TEST(out.wrong == 0);
      BOOST_TEST(log.live.started.load() <= cancel_after + static_cast<int>(window));
      BOOST_TEST(out.live_at_end == 0);
      check_every_started_item_ended(log);
    }
  }
}

BOOST_AUTO_TEST_SUITE_END()

// This file's macros end here (the suites share unity batches).
#undef STRESS_TEST_CASE
#undef STRESS_CONTEXT
#undef FANOUT_STRESS_SANITIZED

BOOST_AUTO_TEST_SUITE_END() // stress_tests
