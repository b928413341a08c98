// fanout/map_stream.hpp — async_map's results one at a time, while later
// items still run: in input order, or as they complete.
#pragma once

#include "fanout/async_map.hpp"

#include "fanout/detail/map_engine.hpp"

#include <boost/asio/async_result.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <memory>
#include <optional>
#include <utility>

namespace fanout {

/// A stream of a map's results (see async_map_stream and
/// async_map_as_completed). Move-only.
///
/// - `co_await s.next()` gives the next element as a `std::optional`: a value,
///   or an empty optional once every item has been delivered. The first call
///   starts the map on the awaiting coroutine's executor.
/// - With `max_concurrency` = n, at most n items are pulled and not yet
///   consumed (running or waiting to be read): memory stays bounded by the
///   window however long the input, and a slow reader slows the map down.
/// - Fail-fast: after an item fails, `next()` waits for the running items to
///   be cancelled and finish, then throws the failure; results not yet read
///   are dropped. Cancelling the coroutine awaiting `next()` cancels the map
///   the same way (`operation_aborted`).
/// - Destroying the stream before its end cancels the items still running;
///   they finish on their executor, and their results are dropped.
///
/// @par Thread safety
/// One consumer at a time: do not call next() again before the previous
/// call completed.
template <typename Engine>
class map_stream
{
public:
  /// What each call to next() yields: the item's value (async_map_stream) or
  /// `std::pair<std::size_t, value>` with its input index (as_completed).
  using value_type = typename Engine::element_type;
  /// `void(std::exception_ptr, std::optional<value_type>)`.
  using signature = typename Engine::next_signature;

  explicit map_stream(std::shared_ptr<Engine> engine) : engine_(std::move(engine)) {}
  map_stream(map_stream&&) noexcept = default;
  map_stream& operator=(map_stream&& other) noexcept
  {
    if (this != &other) {
      stop();
      engine_ = std::move(other.engine_);
    }
    return *this;
  }
  map_stream(const map_stream&) = delete;
  map_stream& operator=(const map_stream&) = delete;
  ~map_stream() { stop(); }

  /// The next element, or an empty optional at the end.
  ///
  /// @par Completion signature
  /// `void(std::exception_ptr, std::optional<value_type>)`.
  ///
  /// @par Per-operation cancellation
  /// Any cancellation type cancels the whole map; the call completes once the
  /// running items have finished, with `operation_aborted`.
  template <boost::asio::completion_token_for<signature> Token = boost::asio::use_awaitable_t<>>
  auto next(Token&& token = {})
  {
    return engine_->async_next(std::forward<Token>(token));
  }

  /// Cancels the items still running and starts no more; next() then ends
  /// with `operation_aborted`.
  void cancel() { engine_->cancel(); }

private:
  void stop()
  {
    if (engine_)
      engine_->cancel();
  }

  std::shared_ptr<Engine> engine_;
};

namespace detail {

template <map_delivery Delivery, typename F, typename... Ranges>
using stream_engine_t = map_engine<Delivery, false, map_value_t<F, Ranges...>, std::decay_t<F>, map_input_t<Ranges...>>;

template <map_delivery Delivery, typename F, typename... Ranges>
map_stream<stream_engine_t<Delivery, F, Ranges...>> make_map_stream(const map_options& options, F&& f,
                                                                    Ranges&&... ranges)
{
  using engine = stream_engine_t<Delivery, F, Ranges...>;
  static_assert(!std::is_void_v<typename engine::value_type>, "a stream needs items that produce values");
  return map_stream<engine>(std::make_shared<engine>(
      settings_of(options), boost::asio::any_io_executor(), std::decay_t<F>(std::forward<F>(f)),
      map_input_t<Ranges...>(range_holder<Ranges>(std::forward<Ranges>(ranges))...)));
}

} // namespace detail

/// async_map's results one at a time, in input order, while later items
/// still run (Rust's `buffered(n)`): item k is handed out as soon as items
/// 0..k are done. Items, options and errors are as for async_map (fail-fast).
///
/// @code
/// auto stream = fanout::async_map_stream({.max_concurrency = 100}, fetch, urls);
/// while (auto page = co_await stream.next())
///   consume(*page);
/// @endcode
template <typename F, typename... Ranges>
requires map_function<F, Ranges...>
[[nodiscard]] auto async_map_stream(const map_options& options, F&& f, Ranges&&... ranges)
{
  return detail::make_map_stream<detail::map_delivery::ordered>(options, std::forward<F>(f),
                                                                std::forward<Ranges>(ranges)...);
}

/// async_map_stream with default options.
template <typename F, typename... Ranges>
requires map_function<F, Ranges...>
[[nodiscard]] auto async_map_stream(F&& f, Ranges&&... ranges)
{
  return async_map_stream(map_options{}, std::forward<F>(f), std::forward<Ranges>(ranges)...);
}

/// async_map's results one at a time as items complete (asyncio's
/// `as_completed`, Rust's `buffer_unordered(n)`), each as
/// `std::pair<std::size_t, R>` with its input index. Items, options and
/// errors are as for async_map (fail-fast).
///
/// @code
/// auto stream = fanout::async_map_as_completed(fetch, urls);
/// while (auto done = co_await stream.next())
///   std::cout << urls[done->first] << ": " << done->second.size() << '\n';
/// @endcode
template <typename F, typename... Ranges>
requires map_function<F, Ranges...>
[[nodiscard]] auto async_map_as_completed(const map_options& options, F&& f, Ranges&&... ranges)
{
  return detail::make_map_stream<detail::map_delivery::as_completed>(options, std::forward<F>(f),
                                                                     std::forward<Ranges>(ranges)...);
}

/// async_map_as_completed with default options.
template <typename F, typename... Ranges>
requires map_function<F, Ranges...>
[[nodiscard]] auto async_map_as_completed(F&& f, Ranges&&... ranges)
{
  return async_map_as_completed(map_options{}, std::forward<F>(f), std::forward<Ranges>(ranges)...);
}

} // namespace fanout
