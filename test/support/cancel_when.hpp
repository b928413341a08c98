// Cancelling an operation once it has started, from its own strand: for cases
// that cancel at every moment of an operation's life, down to "at once".
#pragma once

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/cancellation_signal.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/dispatch.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/system/error_code.hpp>

#include <chrono>
#include <exception>
#include <memory>
#include <tuple>
#include <utility>

namespace fanout::test {

namespace detail {

// The signal and the timer that emits it; shared with the timer's handlers,
// which may run after the operation has completed (queued before the timer
// was cancelled).
template <typename Started>
struct canceller : std::enable_shared_from_this<canceller<Started>>
{
  template <typename Executor>
  canceller(const Executor& ex, const Started& s, std::chrono::microseconds e) : timer(ex), started(s), extra(e)
  {}

  boost::asio::cancellation_signal signal;
  boost::asio::steady_timer timer;
  Started started;
  std::chrono::microseconds extra;
  bool stopped = false; // the operation has completed: emit nothing more

  // Every 100 us until started() holds; then emits after `extra`.
  void poll()
  {
    timer.expires_after(std::chrono::microseconds(100));
    timer.async_wait([self = this->shared_from_this()](boost::system::error_code ec) {
      if (ec || self->stopped)
        return;
      if (!self->started()) {
        self->poll();
        return;
      }
      self->timer.expires_after(self->extra);
      self->timer.async_wait([self](boost::system::error_code ec2) {
        if (!ec2 && !self->stopped)
          self->signal.emit(boost::asio::cancellation_type::terminal);
      });
    });
  }
};

} // namespace detail

/// Runs @p op as its own coroutine on a strand of the current executor and
/// cancels it (terminal) from that strand @p extra after @p started() first
/// holds (checked every 100 us there); gives what @p op failed with, and its
/// value. @p started is copied; the caller keeps it in a variable (g++ 12
/// destroys some by-value closure arguments of a co_await expression twice).
/// @p started() must hold only once the coroutine's body runs: Asio
/// 1.81's co_spawn does not survive, on a thread pool, a cancellation that
/// comes before its body starts when the body then ends without suspending.
template <typename T, typename Started>
boost::asio::awaitable<std::tuple<std::exception_ptr, T>>
cancel_once_started(boost::asio::awaitable<T> op, const Started& started, std::chrono::microseconds extra)
{
  auto c = std::make_shared<detail::canceller<Started>>(
      boost::asio::make_strand(co_await boost::asio::this_coro::executor), started, extra);
  auto strand = c->timer.get_executor();
  c->poll();
  auto result = co_await boost::asio::co_spawn(
      strand, std::move(op),
      boost::asio::bind_cancellation_slot(c->signal.slot(), boost::asio::as_tuple(boost::asio::use_awaitable)));
  // The timer and its handlers belong to the strand.
  boost::asio::dispatch(strand, [c] {
    c->stopped = true;
    c->timer.cancel();
  });
  co_return result;
}

} // namespace fanout::test
