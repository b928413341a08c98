// What a map's arguments after f make: ranges, zipped (map_input.hpp), or
// one asynchronous source (map_source.hpp); the input built from them and
// one item's tuple of arguments.
#pragma once

#include "fanout/detail/map_input.hpp"
#include "fanout/detail/map_source.hpp"

#include <concepts>
#include <ranges>
#include <tuple>
#include <type_traits>
#include <utility>

namespace fanout::detail {

// A map's inputs are either ranges (zipped) or one asynchronous source.
template <typename R>
concept range_argument = std::ranges::input_range<typename range_holder<R>::range_type&>;
template <typename R>
concept source_argument = !range_argument<R> && async_source_type<std::remove_cvref_t<R>>;

template <typename... Ranges>
struct map_input_select
{
  using type = zip_input<range_holder<Ranges>...>;
};
template <source_argument R>
struct map_input_select<R>
{
  using type = source_input<R>;
};

template <typename... Ranges>
using map_input_t = typename map_input_select<Ranges...>::type;

template <typename... Ranges>
map_input_t<Ranges...> make_map_input(Ranges&&... ranges)
{
  if constexpr (map_input_t<Ranges...>::asynchronous)
    return map_input_t<Ranges...>(std::forward<Ranges>(ranges)...);
  else
    return map_input_t<Ranges...>(range_holder<Ranges>(std::forward<Ranges>(ranges))...);
}

// One item's arguments; no member for inputs that are neither (a
// substitution failure where the overloads are chosen).
template <typename... Ranges>
struct map_args
{
  static constexpr bool valid = false;
};
template <range_argument... Ranges>
struct map_args<Ranges...>
{
  static constexpr bool valid = true;
  using type = std::tuple<map_arg_t<range_holder<Ranges>>...>;
};
template <source_argument R>
struct map_args<R>
{
  static constexpr bool valid = true;
  using type = std::tuple<source_element_t<std::remove_cvref_t<R>>>;
};
template <typename... Ranges>
using map_args_t = typename map_args<Ranges...>::type;

// A map's f (an lvalue of its decayed type) can be called with the elements
// of tuple Args, as lvalues.
template <typename F, typename Args>
struct invocable_with_args : std::false_type
{
};
template <typename F, typename... Args>
struct invocable_with_args<F, std::tuple<Args...>> : std::bool_constant<std::invocable<std::decay_t<F>&, Args&...>>
{
};

template <typename F, typename... Ranges>
concept map_invocable = invocable_with_args<F, map_args_t<Ranges...>>::value;

/// The arguments make a map's input (ranges, or one asynchronous source),
/// and f can be called with one item's arguments.
template <typename F, typename... Ranges>
concept map_callable = map_args<Ranges...>::valid && map_invocable<F, Ranges...>;

} // namespace fanout::detail
