// fanout/sync_map.hpp — the post's generator: iterate a map's results from
// plain synchronous code, driving an io_context as you go.
#pragma once

#include "fanout/map_stream.hpp"
#include "fanout/run.hpp"

#include "fanout/detail/executor_traits.hpp"

#include <boost/asio/io_context.hpp>

#include <cstddef>
#include <iterator>
#include <memory>
#include <optional>
#include <type_traits>
#include <utility>

namespace fanout {

/// The results of a map as a lazy input range for synchronous code (see
/// sync_map). Move-only; iterate it once.
///
/// - Moving the range, before or after `begin()`, moves the map: the new range
///   owns everything and goes on from where the old one was (its `begin()`
///   gives the current result again). Iterators of the moved-from range are
///   invalid; the moved-from range itself is empty (ended) and safe to
///   destroy.
///
/// - `begin()` starts the map and runs the io_context until the first result
///   is ready; each `++` runs it until the next one is. Results come in input
///   order, each as soon as it and those before it are done, while later items
///   keep running (and blocking items keep running on the pool).
/// - A failing item (fail-fast) is rethrown from `begin()` or `++`, after the
///   other items were cancelled and have finished.
/// - Leaving the loop early (break, return, an exception of yours) cancels the
///   items still running and, in the destructor, runs the io_context until
///   they have finished: nothing is left running.
///
/// @par Thread safety
/// One thread iterates. `begin()`, `++` and the destructor run the io_context
/// from the calling thread (as fanout::run does).
template <typename Stream>
class sync_results
{
public:
  /// The type of each result: the map's item value.
  using value_type = typename Stream::value_type;

  /// An input iterator over the results; compares equal to `end()` (a
  /// `std::default_sentinel_t`) once the map has ended. Only the most recent
  /// result is held: a result reached through an iterator is valid until the
  /// next `++`.
  class iterator
  {
  public:
    /// A single-pass input iterator.
    using iterator_concept = std::input_iterator_tag;
    /// The result type, sync_results::value_type.
    using value_type = typename sync_results::value_type;
    /// Required of an iterator; never used to measure the range.
    using difference_type = std::ptrdiff_t;

    /// A singular iterator: only assignable.
    iterator() = default;
    /// The current result.
    value_type& operator*() const { return *owner_->current_; }
    /// The current result's members.
    value_type* operator->() const { return &*owner_->current_; }
    /// Runs the io_context until the next result is ready (or the map has
    /// ended); rethrows a failing item's exception, after which the range has
    /// ended.
    iterator& operator++()
    {
      owner_->advance();
      return *this;
    }
    /// As `++it`; returns nothing (an input iterator keeps no old position).
    void operator++(int) { ++*this; }
    friend bool operator==(const iterator& it, std::default_sentinel_t) { return it.owner_->ended(); }

  private:
    friend class sync_results;
    explicit iterator(sync_results* owner) : owner_(owner) {}
    sync_results* owner_ = nullptr;
  };

  /// A range over @p stream's results that runs @p ctx to get them, and owns
  /// @p own (null when @p ctx is the caller's). Made by sync_map.
  sync_results(std::unique_ptr<boost::asio::io_context> own, boost::asio::io_context& ctx, Stream stream)
      : own_(std::move(own)), ctx_(&ctx), stream_(std::move(stream))
  {}
  /// Moves the map over: @p other is left empty (ended, nothing to cancel).
  sync_results(sync_results&& other) noexcept
      : own_(std::move(other.own_)), ctx_(std::exchange(other.ctx_, nullptr)), stream_(std::move(other.stream_)),
        current_(std::move(other.current_)), started_(std::exchange(other.started_, false)),
        ended_(std::exchange(other.ended_, true))
  {}
  sync_results& operator=(sync_results&&) = delete;
  sync_results(const sync_results&) = delete;
  sync_results& operator=(const sync_results&) = delete;

  ~sync_results()
  {
    if (!started_ || ended_ || !ctx_)
      return;
    // Left early: cancel what still runs and wait for it.
    stream_.cancel();
    try {
      while (fanout::run(*ctx_, stream_.next())) {
      }
    } catch (...) {
      // operation_aborted, as asked for.
    }
  }

  /// Starts the map and waits for its first result (a moved-from range
  /// gives an ended iterator).
  iterator begin()
  {
    if (!started_ && !ended_) {
      started_ = true;
      advance();
    }
    return iterator(this);
  }
  /// The end of the range: iterators compare equal to it once the map has
  /// ended.
  std::default_sentinel_t end() const noexcept { return {}; }

  /// True once every result was handed out (or the map failed).
  [[nodiscard]] bool ended() const noexcept { return ended_; }

private:
  void advance()
  {
    try {
      current_ = fanout::run(*ctx_, stream_.next());
    } catch (...) {
      ended_ = true;
      current_.reset();
      throw;
    }
    if (!current_)
      ended_ = true;
  }

  std::unique_ptr<boost::asio::io_context> own_; // destroyed last: the stream's workers referred to it
  boost::asio::io_context* ctx_;
  Stream stream_;
  std::optional<value_type> current_;
  bool started_ = false;
  bool ended_ = false;
};

/// The results of `async_map(options, f, ranges...)` for plain synchronous
/// code, on a fresh io_context of its own (the post's `for r in async_map(...)`).
///
/// @code
/// for (auto& s : fanout::sync_map([](auto& x) { return x(); }, tasks))
///   std::cout << s << ' ';
/// @endcode
template <typename F, typename... Ranges>
requires map_ranges_function<F, Ranges...>
[[nodiscard]] auto sync_map(const map_options& options, F&& f, Ranges&&... ranges)
{
  auto own = std::make_unique<boost::asio::io_context>(1); // one thread runs it
  auto& ctx = *own;
  detail::mark_serial(ctx);
  auto stream = async_map_stream(options, std::forward<F>(f), std::forward<Ranges>(ranges)...);
  return sync_results<decltype(stream)>(std::move(own), ctx, std::move(stream));
}

/// sync_map with default options.
template <typename F, typename... Ranges>
requires map_ranges_function<F, Ranges...>
[[nodiscard]] auto sync_map(F&& f, Ranges&&... ranges)
{
  return sync_map(map_options{}, std::forward<F>(f), std::forward<Ranges>(ranges)...);
}

/// sync_map on your own io_context (the post's `event_loop=` argument): other
/// work on @p ctx progresses while the loop waits for results.
template <typename F, typename... Ranges>
requires map_ranges_function<F, Ranges...>
[[nodiscard]] auto sync_map(boost::asio::io_context& ctx, const map_options& options, F&& f, Ranges&&... ranges)
{
  auto stream = async_map_stream(options, std::forward<F>(f), std::forward<Ranges>(ranges)...);
  return sync_results<decltype(stream)>(nullptr, ctx, std::move(stream));
}

/// sync_map on your own io_context with default options.
template <typename F, typename... Ranges>
requires map_ranges_function<F, Ranges...>
[[nodiscard]] auto sync_map(boost::asio::io_context& ctx, F&& f, Ranges&&... ranges)
{
  return sync_map(ctx, map_options{}, std::forward<F>(f), std::forward<Ranges>(ranges)...);
}

} // namespace fanout
