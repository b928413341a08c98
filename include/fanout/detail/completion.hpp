// Completing a stored completion handler the way Asio's own operations do.
#pragma once

#include <boost/asio/associated_cancellation_slot.hpp>
#include <boost/asio/associated_executor.hpp>
#include <boost/asio/bind_executor.hpp>
#include <boost/asio/post.hpp>

#include <tuple>
#include <utility>

namespace fanout::detail {

/// Stands for "no value" where a result of type void has to be stored.
struct no_value
{
};

/// Posts @p handler(args...) to the handler's associated executor (or
/// @p fallback when it has none), clearing the handler's cancellation slot
/// first, on that executor, so that clearing never races with an emit.
/// Always posts, so it is safe to use from inside an initiating function.
/// @p keep (a work guard, say) is destroyed there too, after the handler ran.
template <typename Keep, typename Handler, typename Executor, typename... Args>
void post_completion_keeping(Keep keep, Handler&& handler, const Executor& fallback, Args&&... args)
{
  // Posted through the fallback (the operation's I/O executor), then
  // dispatched to the handler's own executor, as Asio's operations do.
  auto handler_ex = boost::asio::get_associated_executor(handler, fallback);
  boost::asio::post(fallback, boost::asio::bind_executor(
                                  handler_ex, [h = std::forward<Handler>(handler), k = std::move(keep),
                                               values = std::make_tuple(std::forward<Args>(args)...)]() mutable {
                                    boost::asio::get_associated_cancellation_slot(h).clear();
                                    std::apply([&h](auto&&... v) { std::move(h)(std::move(v)...); }, std::move(values));
                                  }));
}

/// post_completion_keeping with nothing to keep.
template <typename Handler, typename Executor, typename... Args>
void post_completion(Handler&& handler, const Executor& fallback, Args&&... args)
{
  post_completion_keeping(no_value{}, std::forward<Handler>(handler), fallback, std::forward<Args>(args)...);
}

} // namespace fanout::detail
