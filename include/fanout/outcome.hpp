// fanout/outcome.hpp — a value or the exception that replaced it.
#pragma once

#include "fanout/error.hpp"

#include <concepts>
#include <cstddef>
#include <exception>
#include <ranges>
#include <utility>
#include <variant>
#include <vector>

namespace fanout {

/// The outcome of one item of fanout::async_map_settled: its value, or the
/// exception it failed with (Promise.allSettled's {status, value | reason}).
template <typename T>
class outcome
{
public:
  /// A successful outcome.
  outcome(T value) : state_(std::in_place_index<0>, std::move(value)) {} // NOLINT: implicit by design
  /// A failed outcome (@p error must not be null).
  outcome(std::exception_ptr error) : state_(std::in_place_index<1>, std::move(error)) {} // NOLINT

  /// True if the item produced a value.
  [[nodiscard]] bool has_value() const noexcept { return state_.index() == 0; }
  /// has_value().
  explicit operator bool() const noexcept { return has_value(); }

  /// The value; rethrows the item's exception if it failed.
  [[nodiscard]] T& value() &
  {
    rethrow_if_error();
    return std::get<0>(state_);
  }
  /// The value; rethrows the item's exception if it failed.
  [[nodiscard]] const T& value() const&
  {
    rethrow_if_error();
    return std::get<0>(state_);
  }
  /// The value, to move from; rethrows the item's exception if it failed.
  [[nodiscard]] T&& value() &&
  {
    rethrow_if_error();
    return std::get<0>(std::move(state_));
  }

  /// The item's exception, or null if it succeeded.
  [[nodiscard]] std::exception_ptr error() const noexcept
  {
    return has_value() ? std::exception_ptr() : std::get<1>(state_);
  }

private:
  void rethrow_if_error() const
  {
    if (!has_value())
      std::rethrow_exception(std::get<1>(state_));
  }

  std::variant<T, std::exception_ptr> state_;
};

/// The outcome of an item that produces no value: success, or its exception.
template <>
class outcome<void>
{
public:
  /// A successful outcome.
  outcome() = default;
  /// A failed outcome; a null @p error makes a successful one.
  outcome(std::exception_ptr error) : error_(std::move(error)) {} // NOLINT: implicit by design

  /// True if the item succeeded.
  [[nodiscard]] bool has_value() const noexcept { return !error_; }
  /// has_value().
  explicit operator bool() const noexcept { return has_value(); }
  /// Rethrows the item's exception if it failed.
  void value() const
  {
    if (error_)
      std::rethrow_exception(error_);
  }
  /// The item's exception, or null if it succeeded.
  [[nodiscard]] std::exception_ptr error() const noexcept { return error_; }

private:
  std::exception_ptr error_;
};

/// Throws a fanout::aggregate_error holding every failure of @p results (an
/// `async_map_settled` result: a range of fanout::outcome), each with its
/// index in @p results; returns normally if none failed. The settled map's
/// values stay where they are: read them after this call.
///
/// @param results any range whose elements have `error()` giving a
///        `std::exception_ptr` (null for success), as fanout::outcome does.
///
/// @par Thread safety
/// Reads @p results only; as safe as reading it from this thread.
///
/// @code
/// auto results = co_await fanout::async_map_settled(fetch, urls);
/// fanout::rethrow_failures(results); // every failure at once, with its index
/// @endcode
template <std::ranges::input_range Results>
requires requires(std::ranges::range_reference_t<Results> r)
{
  {
    r.error()
    } -> std::convertible_to<std::exception_ptr>;
}
void rethrow_failures(Results&& results)
{
  std::vector<aggregate_error::failure> failures;
  std::size_t index = 0;
  for (auto&& r : results) {
    if (std::exception_ptr e = r.error())
      failures.emplace_back(index, std::move(e));
    ++index;
  }
  if (!failures.empty())
    throw aggregate_error(std::move(failures));
}

} // namespace fanout
