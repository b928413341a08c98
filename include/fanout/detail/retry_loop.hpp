// The retry loop behind fanout::retry, in the form the map engine uses too:
// with an optional deadline that no backoff sleep may end past, and an
// optional jitter seed. The decisions and the sleep are compiled once
// (src/retry.cpp); only the attempt itself depends on the value type.
#pragma once

#include "fanout/detail/backoff.hpp"
#include "fanout/detail/clock.hpp"

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>

#include <concepts>
#include <cstdint>
#include <exception>
#include <functional>
#include <optional>
#include <type_traits>
#include <utility>

namespace fanout::detail {

template <typename R>
struct retry_awaitable_traits
{
  static constexpr bool value = false;
};
template <typename T>
struct retry_awaitable_traits<boost::asio::awaitable<T, boost::asio::any_io_executor>>
{
  static constexpr bool value = true;
  using value_type = T;
};

/// A callable that makes one attempt: `make_op()` returns
/// `asio::awaitable<T>` (on the default any_io_executor).
template <typename F>
concept retry_factory = std::invocable<F&> && retry_awaitable_traits<std::invoke_result_t<F&>>::value;

/// The T of the `asio::awaitable<T>` that @p F makes.
template <retry_factory F>
using retry_value_t = typename retry_awaitable_traits<std::invoke_result_t<F&>>::value_type;

/// What bounds a retry beyond its backoff policy.
struct retry_limits
{
  /// No backoff sleep ends past this time point: when the next delay would,
  /// retry rethrows the last failure instead of sleeping. It does not bound
  /// an attempt in progress (the caller's timeout does that).
  std::optional<clock::time_point> deadline{};
  /// The seed of the jitter's draws; empty: fresh_jitter_seed(). The same
  /// seed and policy give the same delays.
  std::optional<std::uint64_t> jitter_seed{};
};

/// The state of one retry between its attempts: how many were made, the
/// jitter's draws, and the decision after each failure.
///
/// Invariant: used by one coroutine only (the retry's), so it needs no lock.
class retry_schedule
{
public:
  /// Checks @p policy (check_backoff, naming @p where): throws
  /// `system_error(fanout::error::invalid_argument)` before any attempt.
  retry_schedule(backoff policy, const retry_limits& limits, const char* where);

  /// After the current attempt failed with @p failure: fails with
  /// `operation_aborted` if the awaiting coroutine was cancelled (@p failure
  /// itself if it is one); rethrows @p failure if it is `operation_aborted`
  /// (never retried nor shown to retry_if), if the attempts are spent, if
  /// retry_if declines, or if the delay would end past the deadline;
  /// else sleeps the backoff delay (fanout::sleep_until, so cancellation
  /// ends it at once with `operation_aborted`) and returns: the next attempt
  /// is due.
  [[nodiscard]] boost::asio::awaitable<void> after_failure(std::exception_ptr failure);

  /// Attempts started so far (the one in progress included).
  [[nodiscard]] unsigned attempts() const noexcept { return attempt_; }

private:
  backoff policy_;
  std::optional<clock::time_point> deadline_;
  jitter_source jitter_;
  unsigned attempt_ = 1;
};

/// Awaits `make_op()` until an attempt succeeds, with the delays and bounds
/// of @p policy and @p limits; gives the value of the attempt that
/// succeeded, or rethrows the last failure (see retry_schedule).
/// @p where names the caller in invalid_argument errors.
template <retry_factory MakeOp>
boost::asio::awaitable<retry_value_t<MakeOp>> retry_with(MakeOp make_op, backoff policy, retry_limits limits,
                                                         const char* where = "fanout::retry")
{
  retry_schedule schedule(std::move(policy), limits, where);
  for (;;) {
    std::exception_ptr failure;
    try {
      // make_op() throwing is that attempt's failure, as its awaitable's is.
      if constexpr (std::is_void_v<retry_value_t<MakeOp>>) {
        co_await std::invoke(make_op);
        co_return;
      } else {
        co_return co_await std::invoke(make_op);
      }
    } catch (...) {
      failure = std::current_exception();
    }
    co_await schedule.after_failure(std::move(failure));
  }
}

} // namespace fanout::detail
