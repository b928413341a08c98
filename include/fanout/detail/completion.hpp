// Completing a stored completion handler the way Asio's own operations do.
#pragma once

#include <boost/asio/associated_allocator.hpp>
#include <boost/asio/associated_cancellation_slot.hpp>
#include <boost/asio/associated_executor.hpp>
#include <boost/asio/bind_allocator.hpp>
#include <boost/asio/bind_executor.hpp>
#include <boost/asio/execution/outstanding_work.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/prefer.hpp>

#include <memory>
#include <tuple>
#include <type_traits>
#include <utility>

namespace fanout::detail {

/// Stands for "no value" where a result of type void has to be stored.
struct no_value
{
};

/// Where @p handler completes: its associated executor, or @p io_executor
/// (the operation's I/O executor) when it has none. Never Asio's system
/// executor unless one of the two is.
template <typename Handler, typename Executor>
auto completion_executor(const Handler& handler, const Executor& io_executor)
{
  return boost::asio::get_associated_executor(handler, io_executor);
}

/// Outstanding work on the executor @p handler completes on, held while its
/// operation is pending (Asio's handler_work): a handler bound to another
/// context keeps that context's run() from returning before the handler ran.
/// Released when the returned executor is destroyed.
template <typename Handler, typename Executor>
auto handler_work(const Handler& handler, const Executor& io_executor)
{
  return boost::asio::prefer(completion_executor(handler, io_executor),
                             boost::asio::execution::outstanding_work.tracked);
}

/// Makes the state of @p handler's operation (a T made from @p args), in
/// memory from the handler's associated allocator (rebound to T's control
/// block), as Asio allocates its own operations' state.
template <typename T, typename Handler, typename... Args>
std::shared_ptr<T> allocate_operation(const Handler& handler, Args&&... args)
{
  using allocator_type = typename std::allocator_traits<
      boost::asio::associated_allocator_t<std::decay_t<Handler>>>::template rebind_alloc<T>;
  return std::allocate_shared<T>(allocator_type(boost::asio::get_associated_allocator(handler)),
                                 std::forward<Args>(args)...);
}

/// True if @p Handler has an executor of its own (bound, or nested
/// executor_type), so that it can complete without an I/O executor.
struct no_associated_executor
{
};
template <typename Handler>
inline constexpr bool has_associated_executor_v =
    !std::is_same_v<boost::asio::associated_executor_t<std::decay_t<Handler>, no_associated_executor>,
                    no_associated_executor>;

/// Posts @p handler(args...) to the handler's associated executor (or
/// @p fallback, the operation's I/O executor, when it has none), clearing the
/// handler's cancellation slot first, on that executor, so that clearing never
/// races with an emit. Always posts, so it is safe to use from inside an
/// initiating function. asio::post keeps outstanding work on the handler's
/// executor until the handler ran there. @p keep (a work guard, say) is destroyed there too, after
/// the handler ran.
template <typename Keep, typename Handler, typename Executor, typename... Args>
void post_completion_keeping(Keep keep, Handler&& handler, const Executor& fallback, Args&&... args)
{
  // Posted through the fallback, then dispatched to the handler's own
  // executor, as Asio's operations do.
  auto handler_ex = completion_executor(handler, fallback);
  // The posted function is allocated with the handler's allocator where the
  // executor takes an allocator property (an io_context's, a thread_pool's);
  // asio::any_io_executor has none, and drops it.
  auto allocator = boost::asio::get_associated_allocator(handler);
  boost::asio::post(
      fallback,
      boost::asio::bind_allocator(
          allocator,
          boost::asio::bind_executor(handler_ex, [h = std::forward<Handler>(handler), k = std::move(keep),
                                                  values = std::make_tuple(std::forward<Args>(args)...)]() mutable {
            boost::asio::get_associated_cancellation_slot(h).clear();
            std::apply([&h](auto&&... v) { std::move(h)(std::move(v)...); }, std::move(values));
          })));
}

/// post_completion_keeping with nothing to keep.
template <typename Handler, typename Executor, typename... Args>
void post_completion(Handler&& handler, const Executor& fallback, Args&&... args)
{
  post_completion_keeping(no_value{}, std::forward<Handler>(handler), fallback, std::forward<Args>(args)...);
}

} // namespace fanout::detail
