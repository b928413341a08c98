// The exceptions fanout's operations complete with, made in one place
// (src/error.cpp) so that no detail header needs the public error header.
#pragma once

#include <boost/system/error_code.hpp>

#include <exception>

namespace fanout::detail {

/// `boost::system::system_error(asio::error::operation_aborted, where)`.
std::exception_ptr aborted_error(const char* where);

/// `boost::system::system_error(fanout::error::timed_out)`.
std::exception_ptr timed_out_error();

/// `boost::system::system_error(fanout::error::already_awaited, where)`.
std::exception_ptr already_awaited_error(const char* where);

/// `fanout::error::closed`, as an error code.
boost::system::error_code closed_error() noexcept;

/// True if @p e holds a `system_error` with `operation_aborted`.
bool is_operation_aborted(const std::exception_ptr& e) noexcept;

} // namespace fanout::detail
