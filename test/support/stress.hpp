// The stress suites' machinery (stress_maps, stress_cancellation,
// stress_streams): many items with random delays, failures and cancellations,
// fail-fast and collect-all, on one thread and on a 4-thread pool, checking
// every result, every failure and that nothing is left running.
//
// The randomness is a pure function of a seed and the item's index, so any
// failure can be replayed: the seed is printed (--log_level=message) and
// shown in every failed assertion. Environment:
//   FANOUT_STRESS_SEED   the seed (default below)
//   FANOUT_STRESS_ITEMS  items per map (default 100,000, fewer under
//                        sanitizers); streams and bounded maps use a fifth.
#pragma once

#include "co_test.hpp"
#include "outcomes.hpp"
#include "ranges.hpp"
#include "tracker.hpp"

#include <fanout/async_map.hpp>
#include <fanout/map_options.hpp>
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
#include <boost/test/unit_test.hpp>

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
#include <type_traits>
#include <utility>
#include <vector>

#if defined(__SANITIZE_THREAD__) || defined(__SANITIZE_ADDRESS__)
#define FANOUT_STRESS_SANITIZED 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer) || __has_feature(address_sanitizer)
#define FANOUT_STRESS_SANITIZED 1
#endif
#endif

namespace fanout::test::stress {

namespace asio = boost::asio;
using namespace std::chrono_literals;
using fanout::test::code_of;
using fanout::test::in_flight;
using fanout::test::seconds_since;
using fanout::test::timed_out;
using fanout::test::tracker;

inline constexpr std::uint64_t default_seed = 20240611;
#if defined(FANOUT_STRESS_SANITIZED)
inline constexpr int default_items = 20000; // sanitizers run 5-15 times slower
#else
inline constexpr int default_items = 100000;
#endif

struct stress_config
{
  std::uint64_t seed = default_seed;
  int items = default_items;
};

inline std::uint64_t env_number(const char* name, std::uint64_t fallback)
{
  const char* text = std::getenv(name);
  if (text == nullptr || *text == '\0')
    return fallback;
  char* end = nullptr;
  const unsigned long long value = std::strtoull(text, &end, 10);
  return *end == '\0' ? static_cast<std::uint64_t>(value) : fallback;
}

inline const stress_config& config()
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
inline std::uint64_t mix(std::uint64_t x)
{
  x += 0x9e3779b97f4a7c15ULL;
  x = (x ^ (x >> 30U)) * 0xbf58476d1ce4e5b9ULL;
  x = (x ^ (x >> 27U)) * 0x94d049bb133111ebULL;
  return x ^ (x >> 31U);
}

// A random number in [0, bound) drawn from the seed, for a named purpose.
inline int draw(std::uint64_t seed, std::uint64_t purpose, int bound)
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

inline std::int64_t value_of(int i)
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

  tracker live;
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
inline asio::awaitable<std::int64_t> stress_item(const plan_table& plans, item_log& log, int i)
{
  const in_flight scope(log.live);
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
inline std::int64_t blocking_item(const plan_table& plans, item_log& log, int i)
{
  const in_flight scope(log.live);
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
inline T run_in(threads mode, asio::awaitable<T> body)
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

inline const char* name_of(threads mode)
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

inline int failure_index_of(const std::exception_ptr& e)
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
inline int wrong_values(const std::vector<std::int64_t>& values)
{
  int wrong = 0;
  for (std::size_t i = 0; i < values.size(); ++i)
    wrong += values[i] == value_of(static_cast<int>(i)) ? 0 : 1;
  return wrong;
}

// Every item that started has ended, one way or another.
inline void check_every_started_item_ended(const item_log& log)
{
  BOOST_TEST(log.count(running) == 0);
  BOOST_TEST(log.live.now.load() == 0);
  BOOST_TEST(log.live.started.load() == log.live.ended.load());
  BOOST_TEST(log.count(other_error) == 0);
}

// One map of n stress items, fail-fast (async_map) or settled
// (async_map_settled), with what it left behind.
template <bool Settled>
inline auto map_run(const plan_table& plans, item_log& log, int n, fanout::map_options options) -> asio::awaitable<
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

inline auto fail_fast_run(const plan_table& plans, item_log& log, int n, fanout::map_options options = {})
{
  return map_run<false>(plans, log, n, options);
}

inline auto settled_run(const plan_table& plans, item_log& log, int n, fanout::map_options options = {})
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
inline void check_outcomes(const plan_table& plans, const std::vector<fanout::outcome<std::int64_t>>& outcomes, int n,
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

} // namespace fanout::test::stress

// Declares a stress test run twice: on io_context{1} and on a 4-thread pool.
#define STRESS_TEST_CASE(name)                                                                                         \
  static void name##_body(::fanout::test::stress::threads mode);                                                       \
  BOOST_AUTO_TEST_CASE(name##_on_one_thread, *boost::unit_test::timeout(300))                                          \
  {                                                                                                                    \
    name##_body(::fanout::test::stress::threads::one);                                                                 \
  }                                                                                                                    \
  BOOST_AUTO_TEST_CASE(name##_on_a_4_thread_pool, *boost::unit_test::timeout(300))                                     \
  {                                                                                                                    \
    name##_body(::fanout::test::stress::threads::pool);                                                                \
  }                                                                                                                    \
  static void name##_body(::fanout::test::stress::threads mode)

#define STRESS_CONTEXT(n)                                                                                              \
  BOOST_TEST_CONTEXT("seed " << ::fanout::test::stress::config().seed << ", " << (n) << " items, "                     \
                             << ::fanout::test::stress::name_of(mode))
