#include "fanout/error.hpp"

#include "fanout/detail/errors.hpp"

#include <boost/asio/error.hpp>

#include <algorithm>
#include <string>

namespace fanout {
namespace {

// boost::system::error_category's destructor is protected and non-virtual by
// design (categories are never deleted through it).
#if defined(__GNUC__)
#pragma GCC diagnostic ignored "-Wnon-virtual-dtor"
#endif
class category final : public boost::system::error_category
{
public:
  const char* name() const noexcept override { return "fanout"; }

  std::string message(int value) const override
  {
    switch (static_cast<error>(value)) {
    case error::timed_out:
      return "operation timed out";
    case error::already_awaited:
      return "the task's result was already taken by an earlier await";
    case error::no_task:
      return "the task handle is empty";
    case error::invalid_argument:
      return "invalid argument";
    case error::group_closed:
      return "the task group was joined already and takes no new tasks";
    case error::closed:
      return "the queue was closed and takes no new values";
    }
    return "unknown fanout error";
  }
};

} // namespace

const boost::system::error_category& error_category() noexcept
{
  static const category instance;
  return instance;
}

void throw_error(error e, const char* what)
{
  throw boost::system::system_error(make_error_code(e), what);
}

struct aggregate_error::contents
{
  std::vector<failure> errors;
  std::string what;
};

namespace {

// The message of one failure: what() for a std::exception.
std::string message_of(const std::exception_ptr& e)
{
  if (!e)
    return "no exception";
  try {
    std::rethrow_exception(e);
  } catch (const std::exception& error) {
    return error.what();
  } catch (...) {
    return "unknown exception";
  }
}

// At most this many failures are spelled out in what().
constexpr std::size_t failures_in_what = 8;

} // namespace

aggregate_error::aggregate_error(std::vector<failure> errors)
{
  auto made = std::make_shared<contents>();
  made->errors = std::move(errors);
  std::stable_sort(made->errors.begin(), made->errors.end(),
                   [](const failure& a, const failure& b) { return a.first < b.first; });
  const std::size_t n = made->errors.size();
  std::string& text = made->what;
  text = std::to_string(n) + (n == 1 ? " operation failed" : " operations failed");
  for (std::size_t i = 0; i < n && i < failures_in_what; ++i) {
    text += i == 0 ? ": [" : "; [";
    text += std::to_string(made->errors[i].first);
    text += "] ";
    text += message_of(made->errors[i].second);
  }
  if (n > failures_in_what)
    text += "; and " + std::to_string(n - failures_in_what) + " more";
  contents_ = std::move(made);
}

const std::vector<aggregate_error::failure>& aggregate_error::errors() const noexcept
{
  return contents_->errors;
}

const char* aggregate_error::what() const noexcept
{
  return contents_->what.c_str();
}

namespace detail {

std::exception_ptr aborted_error(const char* where)
{
  return std::make_exception_ptr(boost::system::system_error(boost::asio::error::operation_aborted, where));
}

std::exception_ptr timed_out_error()
{
  return std::make_exception_ptr(boost::system::system_error(make_error_code(error::timed_out), "fanout::timeout"));
}

std::exception_ptr already_awaited_error(const char* where)
{
  return std::make_exception_ptr(boost::system::system_error(make_error_code(error::already_awaited), where));
}

boost::system::error_code closed_error() noexcept
{
  return make_error_code(error::closed);
}

bool is_operation_aborted(const std::exception_ptr& e) noexcept
{
  try {
    std::rethrow_exception(e);
  } catch (const boost::system::system_error& error) {
    return error.code() == boost::asio::error::operation_aborted;
  } catch (...) {
    return false;
  }
}

} // namespace detail

} // namespace fanout
