// A collect map of plain calls made inline: a plain loop, no worker at all.
#pragma once

#include <exception>
#include <tuple>
#include <type_traits>
#include <utility>

namespace fanout::detail {

/// Calls @p f on each remaining item of @p input, one after another, right
/// here (as one worker would, without a frame, a lock or a cell per item),
/// and appends what each gives to @p out (a vector of Stored, unless Stored
/// is void). Stops early when @p stopping() says so, or at a failure
/// (fail-fast: left in @p failure; settled: stored as the item's outcome). A
/// failure of the input itself is left in @p failure too. Returns true if
/// the input reached its end.
template <typename Stored, bool Settled, typename F, typename Input, typename Out, typename Stopping>
bool run_inline_calls(F& f, Input& input, Out& out, std::exception_ptr& failure, Stopping stopping)
{
  using value_type = decltype(std::apply(f, std::declval<typename Input::args_type&>()));
  try {
    return input.drain([&](typename Input::args_type& args) {
      if (stopping())
        return false;
      try {
        if constexpr (std::is_void_v<Stored>) {
          std::apply(f, args);
        } else if constexpr (std::is_void_v<value_type>) {
          std::apply(f, args);
          out.emplace_back();
        } else {
          out.emplace_back(std::apply(f, args));
        }
      } catch (...) {
        if constexpr (Settled) {
          out.emplace_back(std::current_exception());
        } else {
          failure = std::current_exception();
          return false;
        }
      }
      return true;
    });
  } catch (...) {
    failure = std::current_exception(); // pulling the input threw
    return false;
  }
}

} // namespace fanout::detail
