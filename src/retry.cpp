#include "fanout/retry.hpp"

#include "fanout/error.hpp"
#include "fanout/sleep.hpp"

#include "fanout/detail/errors.hpp"

#include <boost/asio/cancellation_type.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/system/system_error.hpp>

#include <atomic>
#include <cmath>
#include <random>
#include <string>

namespace fanout::detail {
namespace {

[[noreturn]] void reject(const char* where, const char* what)
{
  throw boost::system::system_error(make_error_code(error::invalid_argument), std::string(where) + ": " + what);
}

// splitmix64's output function: a good 64-bit mix of its argument.
std::uint64_t mix(std::uint64_t x) noexcept
{
  x = (x ^ (x >> 30U)) * 0xbf58476d1ce4e5b9ULL;
  x = (x ^ (x >> 27U)) * 0x94d049bb133111ebULL;
  return x ^ (x >> 31U);
}

constexpr std::uint64_t golden_gamma = 0x9e3779b97f4a7c15ULL;

} // namespace

void check_backoff(const backoff& policy, const char* where)
{
  if (policy.max_attempts == 0)
    reject(where, "backoff.max_attempts must be at least 1");
  // Written so that NaN fails each test too.
  if (!(policy.factor >= 1) || !std::isfinite(policy.factor))
    reject(where, "backoff.factor must be finite and at least 1");
  if (!(policy.jitter >= 0 && policy.jitter <= 1))
    reject(where, "backoff.jitter must lie in [0, 1]");
  if (policy.initial < clock::duration::zero())
    reject(where, "backoff.initial must not be negative");
  if (policy.max_delay < clock::duration::zero())
    reject(where, "backoff.max_delay must not be negative");
}

clock::duration backoff_delay(const backoff& policy, unsigned attempt, double u) noexcept
{
  using ticks = std::chrono::duration<long double, clock::period>;
  const long double cap = ticks(policy.max_delay).count();
  long double base = ticks(policy.initial).count();
  if (base > 0 && attempt > 1)
    base *= std::pow(static_cast<long double>(policy.factor), static_cast<long double>(attempt - 1));
  if (!(base <= cap)) // also an infinite power
    base = cap;
  return clamp_duration(ticks(base * (1.0L - static_cast<long double>(policy.jitter) * static_cast<long double>(u))));
}

double jitter_source::next() noexcept
{
  state_ += golden_gamma;
  // The top 53 bits, as a double in [0, 1).
  return static_cast<double>(mix(state_) >> 11U) * 0x1.0p-53;
}

std::uint64_t fresh_jitter_seed() noexcept
{
  static const std::uint64_t base = [] {
    try {
      std::random_device device;
      return (std::uint64_t{device()} << 32U) ^ std::uint64_t{device()};
    } catch (...) {
      return static_cast<std::uint64_t>(clock::now().time_since_epoch().count());
    }
  }();
  static std::atomic<std::uint64_t> calls{0};
  return mix(base + golden_gamma * calls.fetch_add(1, std::memory_order_relaxed));
}

retry_schedule::retry_schedule(backoff policy, const retry_limits& limits, const char* where)
    : policy_(std::move(policy)), deadline_(limits.deadline),
      jitter_(limits.jitter_seed ? *limits.jitter_seed : fresh_jitter_seed())
{
  check_backoff(policy_, where);
}

boost::asio::awaitable<void> retry_schedule::after_failure(std::exception_ptr failure)
{
  // A cancelled caller gets operation_aborted, whatever the attempt did with
  // the cancellation (the coroutine's own co_await check says the same when
  // throw_if_cancelled is on, as it is by default).
  const auto cancelled = (co_await boost::asio::this_coro::cancellation_state).cancelled();
  if (cancelled != boost::asio::cancellation_type::none && !is_operation_aborted(failure))
    std::rethrow_exception(aborted_error("fanout::retry"));
  if (cancelled != boost::asio::cancellation_type::none || is_operation_aborted(failure) ||
      attempt_ >= policy_.max_attempts)
    std::rethrow_exception(failure);
  if (policy_.retry_if && !policy_.retry_if(failure))
    std::rethrow_exception(failure);
  const auto delay = backoff_delay(policy_, attempt_, policy_.jitter > 0 ? jitter_.next() : 0.0);
  const auto due = later_by(clock::now(), delay);
  if (deadline_ && due > *deadline_)
    std::rethrow_exception(failure);
  co_await sleep_until(due);
  ++attempt_;
}

} // namespace fanout::detail
