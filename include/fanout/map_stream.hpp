// fanout/map_stream.hpp — async_map's results one at a time, while later
// items still run: in input order, or as they complete.
#pragma once

#include "fanout/async_map.hpp"

#include "fanout/error.hpp"

#include "fanout/detail/completion.hpp"
#include "fanout/detail/io_executor.hpp"
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
/// - `co_await s.async_next()` gives the next element as a `std::optional`: a
///   value, or an empty optional once every item has been delivered. The first
///   call starts the map: on the stream's executor if it was made with one
///   (`async_map_stream(executor, ...)`), else on the executor of the first
///   call's handler (the awaiting coroutine's).
/// - With `max_concurrency` = n, at most n items are pulled and not yet
///   consumed (running or waiting to be read): memory stays bounded by the
///   window however long the input, and a slow reader slows the map down.
/// - Fail-fast: after an item fails, `async_next()` waits for the running items to
///   be cancelled and finish, then throws the failure; results not yet read
///   are dropped. Cancelling the coroutine awaiting `async_next()` cancels the map
///   the same way (`operation_aborted`).
/// - Destroying the stream before its end cancels the items still running;
///   they finish on their executor, and their results are dropped.
///
/// @par Thread safety
/// One consumer at a time: do not call async_next() again before the previous
/// call completed.
template <typename Engine>
class map_stream
{
public:
  /// What each call to async_next() yields: the item's value (async_map_stream) or
  /// `std::pair<std::size_t, value>` with its input index (as_completed).
  using value_type = typename Engine::element_type;
  /// `void(std::exception_ptr, std::optional<value_type>)`.
  using signature = typename Engine::next_signature;

  /// A stream over @p engine, the map it owns. Made by async_map_stream and
  /// async_map_as_completed.
  explicit map_stream(std::shared_ptr<Engine> engine) : engine_(std::move(engine)) {}
  /// Takes over the map; the moved-from stream must only be destroyed or
  /// assigned to.
  map_stream(map_stream&&) noexcept = default;
  /// Cancels this stream's map (as the destructor does) and takes over
  /// @p other's.
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
  /// @param token any completion token; by default the executor's default
  ///        completion token (see detail::default_token_t: asio::deferred, or
  ///        asio::use_awaitable before Boost 1.83; `co_await s.async_next()` either way).
  ///
  /// @par Completion signature
  /// `void(std::exception_ptr, std::optional<value_type>)`. The handler runs
  /// on its associated executor, or on the map's executor if it has none;
  /// never inside this call. Its executor keeps outstanding work until then.
  ///
  /// @par Per-operation cancellation
  /// Any cancellation type cancels the whole map; the call completes once the
  /// running items have finished, with `operation_aborted`.
  ///
  /// @throws `system_error(fanout::error::invalid_argument)` from this call
  ///         if the stream was made without an executor and the handler has
  ///         none (a plain callback): there is nowhere to run the map.
  ///
  /// @par Thread safety
  /// One call at a time: do not call async_next() again before the previous
  /// call completed.
  template <boost::asio::completion_token_for<signature> Token = detail::default_token_t<boost::asio::any_io_executor>>
  auto async_next(Token&& token = Token())
  {
    return boost::asio::async_initiate<Token, signature>(initiate_next{}, token, engine_);
  }

  /// async_next under its earlier name, whose default token is
  /// `asio::use_awaitable` (it gives an `asio::awaitable`).
  template <boost::asio::completion_token_for<signature> Token = boost::asio::use_awaitable_t<>>
  auto next(Token&& token = Token())
  {
    return async_next(std::forward<Token>(token));
  }

  /// Cancels the items still running and starts no more; async_next() then
  /// ends with `operation_aborted`.
  void cancel() { engine_->cancel(); }

private:
  struct initiate_next
  {
    template <typename Handler>
    void operator()(Handler&& handler, const std::shared_ptr<Engine>& engine) const
    {
      // The operation's I/O executor: the stream's own, or (first call) the
      // handler's, where the map then runs.
      if constexpr (!detail::has_associated_executor_v<Handler>) {
        if (!engine->get_executor())
          throw_error(error::invalid_argument,
                      "fanout::map_stream::async_next: a handler without an executor, on a stream without one");
      }
      engine->async_next(std::forward<Handler>(handler));
    }
  };

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

// @p executor is empty when the first async_next() decides.
template <map_delivery Delivery, typename F, typename... Ranges>
map_stream<stream_engine_t<Delivery, F, Ranges...>>
make_map_stream(boost::asio::any_io_executor executor, const map_options& options, F&& f, Ranges&&... ranges)
{
  using engine = stream_engine_t<Delivery, F, Ranges...>;
  static_assert(!std::is_void_v<typename engine::value_type>, "a stream needs items that produce values");
  return map_stream<engine>(std::make_shared<engine>(settings_of(options), std::move(executor),
                                                     std::decay_t<F>(std::forward<F>(f)),
                                                     make_map_input<Ranges...>(std::forward<Ranges>(ranges)...)));
}

} // namespace detail

/// async_map's results one at a time, in input order, while later items
/// still run (Rust's `buffered(n)`): item k is handed out as soon as items
/// 0..k are done. Items, options and errors are as for async_map (fail-fast).
///
/// @code
/// auto stream = fanout::async_map_stream({.max_concurrency = 100}, fetch, urls);
/// while (auto page = co_await stream.async_next())
///   consume(*page);
/// @endcode
template <typename F, typename... Ranges>
requires map_function<F, Ranges...>
[[nodiscard]] auto async_map_stream(const map_options& options, F&& f, Ranges&&... ranges)
{
  return detail::make_map_stream<detail::map_delivery::ordered>({}, options, std::forward<F>(f),
                                                                std::forward<Ranges>(ranges)...);
}

/// async_map_stream on @p executor (an executor or an execution context):
/// the map runs there whatever the handlers of async_next() are bound to, and
/// handlers without an executor complete there (callback code).
///
/// @code
/// auto stream = fanout::async_map_stream(ctx, {.max_concurrency = 4}, fetch, urls);
/// stream.async_next([](std::exception_ptr e, std::optional<page> p) { ... });
/// @endcode
template <detail::executor_or_context Executor, typename F, typename... Ranges>
requires map_function<F, Ranges...>
[[nodiscard]] auto async_map_stream(Executor&& executor, const map_options& options, F&& f, Ranges&&... ranges)
{
  return detail::make_map_stream<detail::map_delivery::ordered>(
      boost::asio::any_io_executor(detail::io_executor_of(executor)), options, std::forward<F>(f),
      std::forward<Ranges>(ranges)...);
}

/// async_map_stream on @p executor with default options.
template <detail::executor_or_context Executor, typename F, typename... Ranges>
requires map_function<F, Ranges...>
[[nodiscard]] auto async_map_stream(Executor&& executor, F&& f, Ranges&&... ranges)
{
  return async_map_stream(std::forward<Executor>(executor), map_options{}, std::forward<F>(f),
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
/// while (auto done = co_await stream.async_next())
///   std::cout << urls[done->first] << ": " << done->second.size() << '\n';
/// @endcode
template <typename F, typename... Ranges>
requires map_function<F, Ranges...>
[[nodiscard]] auto async_map_as_completed(const map_options& options, F&& f, Ranges&&... ranges)
{
  return detail::make_map_stream<detail::map_delivery::as_completed>({}, options, std::forward<F>(f),
                                                                     std::forward<Ranges>(ranges)...);
}

/// async_map_as_completed on @p executor (an executor or an execution
/// context); see async_map_stream(executor, ...).
template <detail::executor_or_context Executor, typename F, typename... Ranges>
requires map_function<F, Ranges...>
[[nodiscard]] auto async_map_as_completed(Executor&& executor, const map_options& options, F&& f, Ranges&&... ranges)
{
  return detail::make_map_stream<detail::map_delivery::as_completed>(
      boost::asio::any_io_executor(detail::io_executor_of(executor)), options, std::forward<F>(f),
      std::forward<Ranges>(ranges)...);
}

/// async_map_as_completed on @p executor with default options.
template <detail::executor_or_context Executor, typename F, typename... Ranges>
requires map_function<F, Ranges...>
[[nodiscard]] auto async_map_as_completed(Executor&& executor, F&& f, Ranges&&... ranges)
{
  return async_map_as_completed(std::forward<Executor>(executor), map_options{}, std::forward<F>(f),
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
