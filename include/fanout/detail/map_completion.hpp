// The completion-token form of a collect map: the engine's own wait
// (signature void()) completing the caller's handler with the result.
#pragma once

#include "fanout/detail/handler_adapter.hpp"

#include <boost/asio/post.hpp>

#include <exception>
#include <memory>
#include <optional>
#include <type_traits>
#include <utility>

namespace fanout::detail {

/// Parks @p handler on the map @p engine, to be completed with
/// `(exception_ptr[, result])` once the map has finished, then starts the map
/// on its executor (posted: no item runs inside the initiating function).
/// The wait is cancelled through the handler's own slot, and completes on its
/// executor.
struct initiate_map
{
  template <typename Handler, typename Engine>
  void operator()(Handler&& handler, std::shared_ptr<Engine> engine) const
  {
    engine->wait_with(adapt_handler(std::forward<Handler>(handler), [engine](auto&& h) mutable {
      using result_type = typename Engine::result_type;
      std::exception_ptr e;
      if constexpr (std::is_void_v<result_type>) {
        try {
          engine->take_result();
        } catch (...) {
          e = std::current_exception();
        }
        engine.reset();
        std::move(h)(e);
      } else {
        std::optional<result_type> result;
        try {
          result.emplace(engine->take_result());
        } catch (...) {
          e = std::current_exception();
        }
        engine.reset();
        std::move(h)(e, result ? std::move(*result) : result_type{});
      }
    }));
    const auto executor = engine->get_executor();
    boost::asio::post(executor, [engine = std::move(engine)] { engine->start(); });
  }
};

} // namespace fanout::detail
