// fanout::backoff, the retry policy, and the arithmetic of its delays. The
// type sits here, beside fanout::clock, so that both fanout::retry and
// map_options (through the map engine) can name it.
#pragma once

#include "fanout/detail/clock.hpp"

#include <chrono>
#include <cstdint>
#include <exception>
#include <functional>

namespace fanout {

/// How fanout::retry spaces and bounds its attempts: exponential backoff
/// with jitter.
///
/// The delay before attempt k + 1 (after attempt k failed, k from 1) is
/// `min(initial * factor^(k-1), max_delay) * (1 - jitter * U)`, U uniform in
/// [0, 1) and drawn afresh for each delay. `jitter` 1 is "full jitter" (any
/// delay from zero up to the exponential one), 0 none (exact delays).
///
/// Valid values: `max_attempts >= 1`, `factor >= 1` (and finite), `jitter`
/// in [0, 1], `initial` and `max_delay` not negative. fanout::retry fails
/// with `system_error(fanout::error::invalid_argument)` otherwise, before the
/// first attempt.
///
/// @code
/// fanout::backoff policy{.initial = 50ms, .factor = 3, .max_delay = 2s, .jitter = 0.5, .max_attempts = 5};
/// @endcode
/// @headerfile retry.hpp <fanout/retry.hpp>
struct backoff
{
  /// The delay after the first failure (before jitter).
  clock::duration initial = std::chrono::milliseconds(100);
  /// Each delay is the previous one times this (before the cap and jitter).
  double factor = 2;
  /// The cap on any delay (before jitter).
  clock::duration max_delay = std::chrono::seconds(10);
  /// The random fraction taken off each delay: 1 = full jitter, 0 = none.
  double jitter = 1;
  /// Attempts in all, the first included; 1 means no retry.
  unsigned max_attempts = 3;
  /// Whether a failure is worth another attempt; empty: every failure is.
  /// Never called with a cancellation (which is never retried).
  std::function<bool(const std::exception_ptr&)> retry_if{};
};

namespace detail {

/// Throws `system_error(fanout::error::invalid_argument)`, naming @p where
/// and the offending field, if @p policy has a value out of its range (see
/// fanout::backoff).
void check_backoff(const backoff& policy, const char* where);

/// The delay after attempt @p attempt (from 1) failed, for a valid
/// @p policy and a draw @p u in [0, 1]: the formula of fanout::backoff,
/// clamped to clock::duration (a huge exponential is max_delay, never an
/// overflow).
clock::duration backoff_delay(const backoff& policy, unsigned attempt, double u) noexcept;

/// The uniform draws of one retry's jitter: splitmix64 from a seed, so that a
/// given seed always gives the same delays.
class jitter_source
{
public:
  explicit jitter_source(std::uint64_t seed) noexcept : state_(seed) {}

  /// The next draw, uniform in [0, 1).
  double next() noexcept;

private:
  std::uint64_t state_;
};

/// A seed for a retry that was given none: different for each call (a
/// process-wide counter mixed with a value from std::random_device taken
/// once), so that concurrent retries of one failing service spread out.
std::uint64_t fresh_jitter_seed() noexcept;

} // namespace detail
} // namespace fanout
