// A map's asynchronous input: one source read an element at a time (another
// fanout stream, an Asio channel, or anything with an awaitable next()).
#pragma once

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/experimental/channel_error.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/system/system_error.hpp>

#include <cstddef>
#include <optional>
#include <tuple>
#include <type_traits>
#include <utility>

namespace fanout::detail {

template <typename T>
struct optional_awaitable : std::false_type
{
};
template <typename T>
struct optional_awaitable<boost::asio::awaitable<std::optional<T>>> : std::true_type
{
  using element_type = T;
};

// How a source is read, best first: async_next(use_awaitable) (a fanout
// stream, or any source whose async_next takes a token); an awaitable
// async_next(); an awaitable next(); an Asio channel's async_receive. (A
// call that does not compile makes its concept false.)
template <typename S>
concept next_with_token_source =
    optional_awaitable<decltype(std::declval<S&>().async_next(boost::asio::use_awaitable))>::value;
template <typename S>
concept async_next_source = optional_awaitable<decltype(std::declval<S&>().async_next())>::value;
template <typename S>
concept next_source = optional_awaitable<decltype(std::declval<S&>().next())>::value;

// What an Asio channel's receive gives: a tuple (error_code, T) for a
// channel of one signature void(error_code, T).
template <typename S>
using receive_tuple_t =
    typename decltype(std::declval<S&>().async_receive(boost::asio::as_tuple(boost::asio::use_awaitable)))::value_type;
template <typename T>
struct pair_tuple : std::false_type
{
};
template <typename A, typename B>
struct pair_tuple<std::tuple<A, B>> : std::true_type
{
};
template <typename S>
concept channel_source = pair_tuple<receive_tuple_t<S>>::value;

/// Something a map reads its items from asynchronously, one at a time.
template <typename S>
concept async_source_type = next_with_token_source<S> || async_next_source<S> || next_source<S> || channel_source<S>;

// The element type of source S, read the way read() reads it.
template <typename S>
auto source_element_of(S& s)
{
  if constexpr (next_with_token_source<S>)
    return std::type_identity<
        typename optional_awaitable<decltype(s.async_next(boost::asio::use_awaitable))>::element_type>{};
  else if constexpr (async_next_source<S>)
    return std::type_identity<typename optional_awaitable<decltype(s.async_next())>::element_type>{};
  else if constexpr (next_source<S>)
    return std::type_identity<typename optional_awaitable<decltype(s.next())>::element_type>{};
  else
    return std::type_identity<std::tuple_element_t<1, receive_tuple_t<S>>>{};
}

/// The element type of source S.
template <typename S>
using source_element_t = std::remove_cvref_t<typename decltype(source_element_of(std::declval<S&>()))::type>;

/// A source is cancelled as a whole (a fanout stream) when the map reading
/// it stops.
template <typename S>
concept cancellable_source = !channel_source<S> && std::is_void_v<decltype(std::declval<S&>().cancel())>;

/// The one source of a map, held for as long as the map runs (an lvalue by
/// reference, an rvalue moved in), and the element read ahead of the item
/// that takes it.
///
/// Invariant: read() is called by one reader at a time (the engine's reader
/// flag); the other members are guarded by the engine's lock.
template <typename R>
class source_input
{
public:
  using source_type = std::remove_cvref_t<R>;
  using element_type = source_element_t<source_type>;
  /// One item's arguments: the element, passed as an lvalue.
  using args_type = std::tuple<element_type>;
  static constexpr bool sized = false;
  static constexpr bool asynchronous = true;

  explicit source_input(R&& r) : source_(hold(std::forward<R>(r))) {}

  /// Reads the next element; empty at the end of the source. Throws what
  /// the source reports (a channel's error as `system_error`).
  boost::asio::awaitable<std::optional<element_type>> read()
  {
    source_type& s = get();
    if constexpr (next_with_token_source<source_type>) {
      co_return co_await s.async_next(boost::asio::use_awaitable);
    } else if constexpr (async_next_source<source_type>) {
      co_return co_await s.async_next();
    } else if constexpr (next_source<source_type>) {
      co_return co_await s.next();
    } else {
      auto [ec, value] = co_await s.async_receive(boost::asio::as_tuple(boost::asio::use_awaitable));
      if (ec == boost::asio::experimental::error::channel_closed)
        co_return std::nullopt;
      if (ec)
        throw boost::system::system_error(ec, "fanout: reading a channel");
      co_return std::optional<element_type>(std::move(value));
    }
  }

  /// The map stopped: a source that can be cancelled as a whole is.
  void cancel_source()
  {
    if constexpr (cancellable_source<source_type>)
      get().cancel();
  }

  // --- With the engine's lock held. ---

  /// An element was read, or (empty) the source ended.
  void put(std::optional<element_type> e)
  {
    if (e)
      buffered_.emplace(std::move(*e));
    else
      ended_ = true;
  }
  [[nodiscard]] bool has_buffered() const noexcept { return buffered_.has_value(); }
  [[nodiscard]] bool ended() const noexcept { return ended_; }
  /// The buffered element's arguments (has_buffered()).
  args_type take()
  {
    args_type args(std::move(*buffered_));
    buffered_.reset();
    return args;
  }
  /// A read is in progress, or about to start: no second one starts.
  bool reading = false;

private:
  source_type& get() noexcept
  {
    if constexpr (std::is_lvalue_reference_v<R>)
      return *source_;
    else
      return source_;
  }
  static auto hold(R&& r)
  {
    if constexpr (std::is_lvalue_reference_v<R>)
      return &r;
    else
      return source_type(std::move(r));
  }

  std::conditional_t<std::is_lvalue_reference_v<R>, source_type*, source_type> source_;
  std::optional<element_type> buffered_; // read, not yet taken by an item
  bool ended_ = false;                   // the source has no more elements
};

} // namespace fanout::detail
