// A completion handler that completes another one differently (other
// arguments), keeping every associated characteristic of the one it wraps.
#pragma once

#include <boost/asio/associator.hpp>

#include <type_traits>
#include <utility>

namespace fanout::detail {

/// Invoked with `args...`, calls `fn(std::move(handler), args...)`. Its
/// associated executor, cancellation slot and allocator are @p Handler's
/// (see the associator below), as with Asio's own handler wrappers.
template <typename Handler, typename Fn>
struct adapted_handler
{
  Handler handler;
  Fn fn;

  template <typename... Args>
  void operator()(Args&&... args)
  {
    std::move(fn)(std::move(handler), std::forward<Args>(args)...);
  }
};

template <typename Handler, typename Fn>
adapted_handler<std::decay_t<Handler>, std::decay_t<Fn>> adapt_handler(Handler&& handler, Fn&& fn)
{
  return {std::forward<Handler>(handler), std::forward<Fn>(fn)};
}

} // namespace fanout::detail

template <template <typename, typename> class Associator, typename Handler, typename Fn, typename DefaultCandidate>
struct boost::asio::associator<Associator, fanout::detail::adapted_handler<Handler, Fn>, DefaultCandidate>
    : Associator<Handler, DefaultCandidate>
{
  static typename Associator<Handler, DefaultCandidate>::type
  get(const fanout::detail::adapted_handler<Handler, Fn>& h) noexcept
  {
    return Associator<Handler, DefaultCandidate>::get(h.handler);
  }

  static auto get(const fanout::detail::adapted_handler<Handler, Fn>& h, const DefaultCandidate& c) noexcept
      -> decltype(Associator<Handler, DefaultCandidate>::get(h.handler, c))
  {
    return Associator<Handler, DefaultCandidate>::get(h.handler, c);
  }
};
