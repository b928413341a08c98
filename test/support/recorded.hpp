// Recording how a callback operation completed, for tests that drive an
// io_context by hand: recorded<> (or recorded<T>) counts the handler's calls
// and keeps its error code (and value); record_into() gives that handler.
#pragma once

#include <boost/asio/bind_executor.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/system/error_code.hpp>

#include <type_traits>
#include <utility>

namespace fanout::test {

/// How an operation that completes with void(error_code, Value) completed:
/// how many times its handler ran, and the code and value of the last call.
/// Before any call: no calls, success, and a value-initialized value (a
/// scoped_lock or permit that holds nothing, an empty optional, 0).
template <typename Value = void>
struct recorded
{
  int calls = 0;
  boost::system::error_code ec;
  Value value{};
};

/// recorded<> is for operations that complete with void(error_code).
template <>
struct recorded<void>
{
  int calls = 0;
  boost::system::error_code ec;
};

/// A completion handler, bound to @p ex, that records each call into @p out
/// (it keeps the value, moved in). @p out must outlive the handler's call.
template <typename Executor, typename Value>
auto record_into(const Executor& ex, recorded<Value>& out)
{
  if constexpr (std::is_void_v<Value>) {
    return boost::asio::bind_executor(ex, [&out](boost::system::error_code ec) {
      ++out.calls;
      out.ec = ec;
    });
  } else {
    return boost::asio::bind_executor(ex, [&out](boost::system::error_code ec, Value v) {
      ++out.calls;
      out.ec = ec;
      out.value = std::move(v);
    });
  }
}

/// The same, bound to @p ctx's executor.
template <typename Value>
auto record_into(boost::asio::io_context& ctx, recorded<Value>& out)
{
  return record_into(ctx.get_executor(), out);
}

} // namespace fanout::test
