#include "fanout/error.hpp"

#include "fanout/detail/errors.hpp"

#include <boost/asio/error.hpp>

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

namespace detail {

std::exception_ptr aborted_error(const char* where)
{
  return std::make_exception_ptr(boost::system::system_error(boost::asio::error::operation_aborted, where));
}

std::exception_ptr timed_out_error()
{
  return std::make_exception_ptr(boost::system::system_error(make_error_code(error::timed_out), "fanout::timeout"));
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
