// How test operations end, and the small helpers the suites share around that:
// the error code or message an exception carries, the exception an awaitable
// failed with, predicates for BOOST_CHECK_EXCEPTION, items that end after a
// delay, inputs, and cancellation after a delay.
#pragma once

#include <fanout/error.hpp>
#include <fanout/sleep.hpp>

#include <boost/asio/awaitable.hpp>
#include <boost/asio/cancellation_signal.hpp>
#include <boost/asio/cancellation_type.hpp>
#include <boost/asio/error.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/system/error_code.hpp>
#include <boost/system/system_error.hpp>

#include <exception>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

namespace fanout::test {

/// The error code an exception_ptr carries, if it is a system_error; else a
/// code that no test expects (asio::error::fault); success for null.
inline boost::system::error_code code_of(const std::exception_ptr& e)
{
  if (!e)
    return {};
  try {
    std::rethrow_exception(e);
  } catch (const boost::system::system_error& error) {
    return error.code();
  } catch (...) {
    return boost::asio::error::fault;
  }
}

/// The what() of the exception @p e holds; "?" if it is no std::exception,
/// empty for null.
inline std::string message_of(const std::exception_ptr& e)
{
  if (!e)
    return {};
  try {
    std::rethrow_exception(e);
  } catch (const std::exception& error) {
    return error.what();
  } catch (...) {
    return "?";
  }
}

/// Awaits @p op (an awaitable, or an async operation such as one made with a
/// default token) and gives the exception it failed with (null on success).
template <typename Op>
boost::asio::awaitable<std::exception_ptr> exception_of(Op op)
{
  try {
    (void)co_await std::move(op);
  } catch (...) {
    co_return std::current_exception();
  }
  co_return nullptr;
}

/// An exception that can be told apart from any other.
struct tagged_error : std::runtime_error
{
  explicit tagged_error(int t) : std::runtime_error("tagged " + std::to_string(t)), tag(t) {}
  int tag;
};

/// The tag of the tagged_error (or the int) @p e holds: -1 if null, -2 if
/// something else.
inline int tag_of(const std::exception_ptr& e)
{
  if (!e)
    return -1;
  try {
    std::rethrow_exception(e);
  } catch (const tagged_error& error) {
    return error.tag;
  } catch (int tag) {
    return tag;
  } catch (...) {
    return -2;
  }
}

/// fanout::error::timed_out as an error code, to compare with code_of().
inline boost::system::error_code timed_out()
{
  return fanout::make_error_code(fanout::error::timed_out);
}

/// Whether @p e is the tests' std::runtime_error("boom").
inline bool is_boom(const std::runtime_error& e)
{
  return std::string(e.what()) == "boom";
}

/// Whether @p e is a cancellation (asio::error::operation_aborted).
inline bool is_aborted(const boost::system::system_error& e)
{
  return e.code() == boost::asio::error::operation_aborted;
}

/// Whether @p e is fanout::error::timed_out.
inline bool is_timed_out(const boost::system::system_error& e)
{
  return e.code() == fanout::error::timed_out;
}

/// Sleeps @p delay, then gives @p value.
inline boost::asio::awaitable<int> value_after(fanout::clock::duration delay, int value)
{
  co_await fanout::sleep(delay);
  co_return value;
}

/// Sleeps @p delay, then throws std::runtime_error("boom") (tracker.hpp has the
/// same item counted in a tracker).
inline boost::asio::awaitable<int> throws_after(fanout::clock::duration delay)
{
  co_await fanout::sleep(delay);
  throw std::runtime_error("boom");
}

/// The integers 0, 1, ..., n-1.
inline std::vector<int> iota_vector(int n)
{
  std::vector<int> out;
  for (int i = 0; i < n; ++i)
    out.push_back(i);
  return out;
}

/// @p words separated by single spaces.
inline std::string joined(const std::vector<std::string>& words)
{
  std::string out;
  for (const auto& w : words)
    out += (out.empty() ? "" : " ") + w;
  return out;
}

/// Every cancellation type an operation must honour through its slot.
inline constexpr boost::asio::cancellation_type all_cancellation_types[] = {boost::asio::cancellation_type::terminal,
                                                                            boost::asio::cancellation_type::partial,
                                                                            boost::asio::cancellation_type::total};

/// Emits terminal (or @p type) cancellation on @p signal after @p delay, from
/// the executor's own thread.
inline void emit_after(boost::asio::steady_timer& timer, boost::asio::cancellation_signal& signal,
                       fanout::clock::duration delay,
                       boost::asio::cancellation_type type = boost::asio::cancellation_type::terminal)
{
  timer.expires_after(delay);
  timer.async_wait([&signal, type](boost::system::error_code ec) {
    if (!ec)
      signal.emit(type);
  });
}

/// Emits terminal cancellation on @p signal, from the executor's own thread,
/// as soon as @p ready() holds (checked every millisecond): for cases that
/// must cancel once work has started, whatever the machine's speed.
template <typename Ready>
void emit_when(boost::asio::steady_timer& timer, boost::asio::cancellation_signal& signal, Ready ready)
{
  timer.expires_after(std::chrono::milliseconds(1));
  timer.async_wait([&timer, &signal, ready](boost::system::error_code ec) mutable {
    if (ec)
      return;
    if (ready())
      signal.emit(boost::asio::cancellation_type::terminal);
    else
      emit_when(timer, signal, std::move(ready));
  });
}

} // namespace fanout::test
