// The clock fanout measures every duration and deadline on, and the few
// conversions every facility shares.
#pragma once

#include <chrono>

namespace fanout {

/// The clock every fanout duration and deadline is measured on.
using clock = std::chrono::steady_clock;

namespace detail {

/// @p d as a clock::duration, clamped to its range as Asio's timers clamp:
/// `hours::max()` means "never", not an overflow.
template <typename Rep, typename Period>
constexpr clock::duration clamp_duration(std::chrono::duration<Rep, Period> d)
{
  using wide = std::chrono::duration<long double, clock::period>;
  const wide w(d);
  if (w >= wide(clock::duration::max()))
    return clock::duration::max();
  if (w <= wide(clock::duration::min()))
    return clock::duration::min();
  return std::chrono::duration_cast<clock::duration>(d);
}

/// @p t + @p d for d >= 0, clamped at the clock's last time point.
inline clock::time_point later_by(clock::time_point t, clock::duration d)
{
  return d > clock::time_point::max() - t ? clock::time_point::max() : t + d;
}

/// now + @p d, clamped: a huge duration is a deadline that never comes.
inline clock::time_point deadline_after(clock::duration d)
{
  const auto now = clock::now();
  return d > clock::duration::zero() ? later_by(now, d) : now + d;
}

} // namespace detail
} // namespace fanout
