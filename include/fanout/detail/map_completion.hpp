// The completion-token form of a collect map: the engine's own wait
// (signature void()) completing the caller's handler with the result.
#pragma once

#include <boost/asio/associator.hpp>
#include <boost/asio/post.hpp>

#include <exception>
#include <memory>
#include <optional>
#include <type_traits>
#include <utility>

namespace fanout::detail {

/// Wraps the caller's @p Handler as the engine's waiter: when the map has
/// finished, takes its result and completes the handler with
/// `(exception_ptr[, result])`. Every associated characteristic (executor,
/// cancellation slot, allocator) is the caller's handler's (see the
/// associator below), so the wait is cancelled through the caller's slot and
/// completes on the caller's executor.
template <typename Handler, typename Engine>
struct map_result_handler
{
  Handler handler;
  std::shared_ptr<Engine> engine;

  void operator()()
  {
    using result_type = typename Engine::result_type;
    std::exception_ptr e;
    if constexpr (std::is_void_v<result_type>) {
      try {
        engine->take_result();
      } catch (...) {
        e = std::current_exception();
      }
      engine.reset();
      std::move(handler)(e);
    } else {
      std::optional<result_type> result;
      try {
        result.emplace(engine->take_result());
      } catch (...) {
        e = std::current_exception();
      }
      engine.reset();
      std::move(handler)(e, result ? std::move(*result) : result_type{});
    }
  }
};

/// Parks @p handler on the map @p engine, then starts the map on its
/// executor (posted: no item runs inside the initiating function).
struct initiate_map
{
  template <typename Handler, typename Engine>
  void operator()(Handler&& handler, std::shared_ptr<Engine> engine) const
  {
    engine->wait_with(map_result_handler<std::decay_t<Handler>, Engine>{std::forward<Handler>(handler), engine});
    const auto executor = engine->get_executor();
    boost::asio::post(executor, [engine = std::move(engine)] { engine->start(); });
  }
};

} // namespace fanout::detail

template <template <typename, typename> class Associator, typename Handler, typename Engine, typename DefaultCandidate>
struct boost::asio::associator<Associator, fanout::detail::map_result_handler<Handler, Engine>, DefaultCandidate>
    : Associator<Handler, DefaultCandidate>
{
  static typename Associator<Handler, DefaultCandidate>::type
  get(const fanout::detail::map_result_handler<Handler, Engine>& h) noexcept
  {
    return Associator<Handler, DefaultCandidate>::get(h.handler);
  }

  static auto get(const fanout::detail::map_result_handler<Handler, Engine>& h, const DefaultCandidate& c) noexcept
      -> decltype(Associator<Handler, DefaultCandidate>::get(h.handler, c))
  {
    return Associator<Handler, DefaultCandidate>::get(h.handler, c);
  }
};
