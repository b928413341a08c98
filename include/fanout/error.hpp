// fanout/error.hpp — the error codes fanout reports, as a boost::system category.
#pragma once

#include <boost/system/error_code.hpp>
#include <boost/system/system_error.hpp>

#include <cstddef>
#include <exception>
#include <memory>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

namespace fanout {

/// Errors fanout itself reports (cancellation is reported with Asio's own
/// `boost::asio::error::operation_aborted`).
enum class error {
  /// A deadline or timeout expired before the operation completed.
  timed_out = 1,
  /// The task's value was already taken by an earlier `co_await`.
  already_awaited,
  /// The task handle is empty (default-constructed or moved from).
  no_task,
  /// An argument is out of its documented range.
  invalid_argument,
  /// The task group was joined already: it takes no new tasks.
  group_closed,
  /// The queue was closed: it takes no new values.
  closed,
};

/// The category of fanout::error values; its name is "fanout".
const boost::system::error_category& error_category() noexcept;

/// @p e as a `boost::system::error_code` of error_category(). Found by
/// argument-dependent lookup, so `boost::system::error_code ec =
/// fanout::error::timed_out;` works (fanout::error is registered as an error
/// code enum).
inline boost::system::error_code make_error_code(error e) noexcept
{
  return {static_cast<int>(e), error_category()};
}

/// Throws `boost::system::system_error` carrying @p e.
[[noreturn]] void throw_error(error e, const char* what);

/// An exception that keeps every failure of several operations, each with the
/// index of the operation that failed (Python's `ExceptionGroup`, JavaScript's
/// `AggregateError`). fanout::race throws it when every entrant failed, and
/// fanout::rethrow_failures for the failed outcomes of an `async_map_settled`
/// result.
///
/// - errors() lists the failures in index order (the constructor sorts them;
///   failures with equal indices keep their given order).
/// - what() says how many operations failed and gives each failure's index and
///   message (the `what()` of a std::exception, "unknown exception" otherwise),
///   the first 8 of them in full.
/// - Copies share the failures: copying never throws, as a std::exception's
///   copy must not.
///
/// @par Thread safety
/// Immutable once made: may be read from any thread.
///
/// @code
/// try {
///   co_await fanout::race(fetch(a), fetch(b));
/// } catch (const fanout::aggregate_error& e) {
///   for (const auto& [index, failure] : e.errors())
///     log(index, failure);
/// }
/// @endcode
class aggregate_error : public std::exception
{
public:
  /// One failure: the index of the operation and its exception.
  using failure = std::pair<std::size_t, std::exception_ptr>;

  /// Keeps @p errors (each exception non-null), sorted by index.
  explicit aggregate_error(std::vector<failure> errors);

  /// Every failure, in index order.
  [[nodiscard]] const std::vector<failure>& errors() const noexcept;

  /// "2 operations failed: [0] connection refused; [3] timed out".
  [[nodiscard]] const char* what() const noexcept override;

private:
  struct contents;
  std::shared_ptr<const contents> contents_;
};

} // namespace fanout

template <>
struct boost::system::is_error_code_enum<fanout::error> : std::true_type
{
};
