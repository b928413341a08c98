// fanout/queue.hpp — a bounded FIFO queue between coroutines (asyncio.Queue
// with a maxsize, plus close()).
#pragma once

#include "fanout/detail/completion.hpp"
#include "fanout/detail/io_executor.hpp"
#include "fanout/detail/queue_state.hpp"

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/async_result.hpp>
#include <boost/system/error_code.hpp>

#include <cstddef>
#include <memory>
#include <optional>
#include <stdexcept>
#include <type_traits>
#include <utility>

namespace fanout {

/// A bounded queue of T: `async_push` waits while it holds `capacity()`
/// values, `async_pop` waits while it is empty; both are served in the
/// order they asked (FIFO). `close()` ends it: pushes then fail, pops drain
/// what is left and then give an empty optional.
///
/// A waiter resumes on its own executor (the awaiting coroutine's, or the
/// one bound to its handler). Destroying the queue completes its parked
/// operations with `asio::error::operation_aborted` and destroys the values
/// left in it.
///
/// When to use `asio::experimental::channel` / `concurrent_channel` instead:
/// a channel belongs to one executor and carries completion signatures
/// (errors included), can be unbuffered (a rendezvous), and lets a sender
/// complete a parked receiver directly. This queue has no executor of its
/// own, so producers and consumers may run on different executors and
/// contexts; it carries plain values, has a close() after which consumers
/// drain what is left, and counts its contents (size()). Within one
/// executor, for error-carrying messages or a rendezvous, take the channel.
///
/// @tparam T a move-constructible value type. Its move constructor runs
///         under the queue's lock, and must not use the queue.
///
/// @par Thread safety
/// Every member may be called concurrently from any thread.
///
/// @code
/// fanout::queue<std::string> lines(100);
/// // producer:
/// co_await lines.async_push(std::move(line));
/// lines.close();
/// // consumer:
/// while (auto line = co_await lines.async_pop())
///   handle(*line);
/// @endcode
template <typename T>
class queue
{
  static_assert(std::is_move_constructible_v<T> && !std::is_reference_v<T>,
                "fanout::queue<T> holds move-constructible values");

public:
  /// The type of the values queued.
  using value_type = T;
  /// The completion signature of async_push.
  using push_signature = void(boost::system::error_code);
  /// The completion signature of async_pop.
  using pop_signature = void(boost::system::error_code, std::optional<T>);

  /// A queue that holds at most @p capacity values.
  /// @throws std::invalid_argument if @p capacity is 0.
  explicit queue(std::size_t capacity) : state_(make_state(capacity)) {}

  queue(const queue&) = delete;
  queue& operator=(const queue&) = delete;

  /// Completes every parked push and pop with operation_aborted.
  ~queue() { state_->abort_waiters(); }

  /// Adds @p value at the back, waiting while the queue is full.
  ///
  /// @param value the value; held by the operation while it waits, and
  ///        destroyed (never enqueued) if the push fails or is cancelled.
  /// @param token any completion token whose handler has an associated
  ///        executor (a coroutine's, asio::use_future's, or a callback bound with
  ///        `asio::bind_executor`). By default detail::default_token_t
  ///        (asio::deferred, or asio::use_awaitable before Boost 1.83):
  ///        `co_await q.async_push(v)` either way.
  ///
  /// @par Completion signature
  /// `void(boost::system::error_code)`: success once the value is in the
  /// queue (or handed to a waiting pop), `fanout::error::closed` if the queue
  /// is closed (at the call, or while the push waited), or
  /// `asio::error::operation_aborted` (cancelled, or the queue destroyed). The
  /// handler runs on its associated executor, never inside this call.
  ///
  /// @par Per-operation cancellation
  /// `terminal`, `partial` and `total`: a push cancelled while it waits
  /// leaves, its value not enqueued, and completes with operation_aborted.
  /// Once its value is enqueued, cancellation has no effect.
  ///
  /// @par Thread safety
  /// May be called from any thread.
  ///
  /// @code
  /// co_await q.async_push(42); // throws system_error(fanout::error::closed) once closed
  /// @endcode
  template <
      boost::asio::completion_token_for<push_signature> Token = detail::default_token_t<boost::asio::any_io_executor>>
  auto async_push(T value, Token&& token = Token())
  {
    return boost::asio::async_initiate<Token, push_signature>(initiate_push{}, token, state_, std::move(value));
  }

  /// Takes the value at the front, waiting while the queue is empty.
  ///
  /// @param token as for async_push.
  ///
  /// @par Completion signature
  /// `void(boost::system::error_code, std::optional<T>)`: success and the
  /// value; success and an empty optional once the queue is closed and
  /// drained; or `asio::error::operation_aborted` and an empty optional
  /// (cancelled, or the queue destroyed). The handler runs on its associated
  /// executor, never inside this call.
  ///
  /// @par Per-operation cancellation
  /// `terminal`, `partial` and `total`: a pop cancelled while it waits
  /// leaves, takes no value and completes with operation_aborted. Once a
  /// value is given to it, cancellation has no effect: the pop gets the
  /// value, so none is lost.
  ///
  /// @par Thread safety
  /// May be called from any thread.
  ///
  /// @code
  /// while (std::optional<int> v = co_await q.async_pop())
  ///   sum += *v;
  /// @endcode
  template <
      boost::asio::completion_token_for<pop_signature> Token = detail::default_token_t<boost::asio::any_io_executor>>
  auto async_pop(Token&& token = Token())
  {
    return boost::asio::async_initiate<Token, pop_signature>(initiate_pop{}, token, state_);
  }

  /// The front value at once, if the queue holds one (a parked push then
  /// moves its value in). Never waits.
  [[nodiscard]] std::optional<T> try_pop() { return state_->try_pop(); }

  /// Adds @p value at once if there is room (or a pop waiting) and the queue
  /// is open; otherwise @p value is left untouched and false is returned.
  [[nodiscard]] bool try_push(T&& value) { return state_->try_push(value); }

  /// Closes the queue: later pushes fail with fanout::error::closed, and so
  /// do pushes waiting now (their values are not enqueued); pops take the
  /// values left, then complete with an empty optional (pops waiting now do
  /// at once: the queue is empty when a pop waits). Closing twice does
  /// nothing more.
  void close() { state_->close(); }

  /// True once close() was called.
  [[nodiscard]] bool is_closed() const { return state_->is_closed(); }

  /// Values in the queue now (not counting those of waiting pushes).
  [[nodiscard]] std::size_t size() const { return state_->size(); }

  /// The most values the queue holds.
  [[nodiscard]] std::size_t capacity() const noexcept { return state_->capacity(); }

private:
  static std::shared_ptr<detail::queue_state<T>> make_state(std::size_t capacity)
  {
    if (capacity < 1)
      throw std::invalid_argument("fanout::queue: the capacity must be at least 1");
    return std::make_shared<detail::queue_state<T>>(capacity);
  }

  struct initiate_push
  {
    template <typename Handler>
    void operator()(Handler&& handler, std::shared_ptr<detail::queue_state<T>> state, T value) const
    {
      static_assert(detail::has_associated_executor_v<Handler>,
                    "fanout::queue::async_push: the completion handler needs an associated executor "
                    "(bind one with asio::bind_executor)");
      state->async_push(std::forward<Handler>(handler), std::move(value));
    }
  };

  struct initiate_pop
  {
    template <typename Handler>
    void operator()(Handler&& handler, std::shared_ptr<detail::queue_state<T>> state) const
    {
      static_assert(detail::has_associated_executor_v<Handler>,
                    "fanout::queue::async_pop: the completion handler needs an associated executor "
                    "(bind one with asio::bind_executor)");
      state->async_pop(std::forward<Handler>(handler));
    }
  };

  std::shared_ptr<detail::queue_state<T>> state_;
};

} // namespace fanout
