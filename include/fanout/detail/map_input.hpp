// A map's input: the zipped ranges, pulled one tuple of arguments at a time.
#pragma once

#include <algorithm>
#include <cstddef>
#include <ranges>
#include <tuple>
#include <type_traits>
#include <utility>

namespace fanout::detail {

/// Holds one input range of a map for as long as the map runs: an lvalue by
/// reference (the caller's container), an rvalue moved in. (Not
/// std::views::all: clang 14 cannot compile libstdc++ 12's views.)
template <typename R>
class range_holder
{
public:
  using range_type =
      std::conditional_t<std::is_lvalue_reference_v<R>, std::remove_reference_t<R>, std::remove_cvref_t<R>>;

  explicit range_holder(R&& r) : range_(hold(std::forward<R>(r))) {}

  range_type& get() noexcept
  {
    if constexpr (std::is_lvalue_reference_v<R>)
      return *range_;
    else
      return range_;
  }

private:
  static auto hold(R&& r)
  {
    if constexpr (std::is_lvalue_reference_v<R>)
      return &r;
    else
      return range_type(std::move(r));
  }

  std::conditional_t<std::is_lvalue_reference_v<R>, range_type*, range_type> range_;
};

/// The argument an element of held range H is passed as. Elements of forward
/// ranges stay valid after the iterator moves on, so they are passed by
/// reference; single-pass ranges (istream views, generators) are copied out.
template <typename H>
using map_arg_t = std::conditional_t<std::ranges::forward_range<typename H::range_type&>,
                                     std::ranges::range_reference_t<typename H::range_type&>,
                                     std::ranges::range_value_t<typename H::range_type&>>;

/// The zipped ranges of a map and where it has got to in them: the shortest
/// range decides, as Python's map. Not thread-safe: the engine pulls under
/// its lock.
template <typename... Holders>
class zip_input
{
public:
  /// One item's arguments.
  using args_type = std::tuple<map_arg_t<Holders>...>;

  /// Every range knows its size, so the number of items is known up front.
  static constexpr bool sized = (std::ranges::sized_range<typename Holders::range_type&> && ...);
  /// Ranges are read synchronously (see source_input for the other kind).
  static constexpr bool asynchronous = false;

  explicit zip_input(Holders... holders)
      : holders_(std::move(holders)...),
        its_(std::apply([](auto&... h) { return std::make_tuple(std::ranges::begin(h.get())...); }, holders_))
  {}

  /// The number of items (sized inputs only).
  std::size_t size() requires sized
  {
    return std::apply([](auto&... h) { return std::min({static_cast<std::size_t>(std::ranges::size(h.get()))...}); },
                      holders_);
  }

  /// A range has reached its end.
  bool at_end()
  {
    return std::apply(
        [this](auto&... it) {
          return std::apply([&](auto&... h) { return ((it == std::ranges::end(h.get())) || ...); }, holders_);
        },
        its_);
  }

  /// The next item's arguments (not at_end()). Throws what the ranges throw.
  args_type take()
  {
    return std::apply(
        [](auto&... it) {
          args_type args(*it...);
          (++it, ...);
          return args;
        },
        its_);
  }

  /// Calls @p body(args) for each remaining item while it returns true, on
  /// local copies of the iterators (kept in registers, for the inline loop).
  /// Returns true if the input reached its end. Throws what the ranges throw.
  template <typename Body>
  bool drain(Body&& body)
  {
    auto its = std::move(its_);
    const auto ends = std::apply([](auto&... h) { return std::make_tuple(std::ranges::end(h.get())...); }, holders_);
    bool at_end = false;
    try {
      for (;;) {
        at_end = std::apply(
            [&](auto&... it) { return std::apply([&](auto&... e) { return ((it == e) || ...); }, ends); }, its);
        if (at_end)
          break;
        args_type args = std::apply([](auto&... it) { return args_type(*it...); }, its);
        std::apply([](auto&... it) { (++it, ...); }, its);
        if (!body(args))
          break;
      }
    } catch (...) {
      its_ = std::move(its);
      throw;
    }
    its_ = std::move(its);
    return at_end;
  }

private:
  std::tuple<Holders...> holders_;
  std::tuple<std::ranges::iterator_t<typename Holders::range_type&>...> its_;
};

} // namespace fanout::detail
