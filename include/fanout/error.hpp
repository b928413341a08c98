// fanout/error.hpp — the error codes fanout reports, as a boost::system category.
#pragma once

#include <boost/system/error_code.hpp>
#include <boost/system/system_error.hpp>

#include <string>
#include <type_traits>

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

} // namespace fanout

template <>
struct boost::system::is_error_code_enum<fanout::error> : std::true_type
{
};
