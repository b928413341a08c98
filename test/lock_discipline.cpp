// No fanout mutex is held while a cancellation is emitted: user code that
// runs inside an emit (an operation's cancellation handler) may call back
// into the very map, task or group that emitted it. Were a lock held there,
// these cases would deadlock (a watchdog fails them instead of hanging).
#include <fanout/async_map.hpp>

#include <boost/test/unit_test.hpp>

#include "support/co_test.hpp"
#include "support/outcomes.hpp"

#include <fanout/map_stream.hpp>
#include <fanout/run.hpp>
#include <fanout/sleep.hpp>
#include <fanout/task.hpp>
#include <fanout/task_group.hpp>

#include <boost/asio/append.hpp>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/associated_cancellation_slot.hpp>
#include <boost/asio/associated_executor.hpp>
#include <boost/asio/async_result.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/dispatch.hpp>
#include <boost/asio/error.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/thread_pool.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/use_future.hpp>
#include <boost/system/error_code.hpp>

#include <atomic>
#include <chrono>
#include <functional>
#include <future>
#include <memory>
#include <optional>
#include <stdexcept>
#include <utility>
#include <vector>

BOOST_AUTO_TEST_SUITE(lock_discipline_tests)

namespace asio = boost::asio;
using namespace std::chrono_literals;
using fanout::test::code_of;

namespace {

constexpr int rounds = 20;
constexpr auto hang_limit = 60s;

// An operation that ends only when cancelled. Its cancellation handler runs
// @p inside_emit first (user code inside the emit), then completes the wait
// with operation_aborted, posted through @p ex and run on the handler's executor.
template <typename Token>
auto wait_for_cancellation(asio::any_io_executor ex, std::function<void()> inside_emit, Token&& token)
{
  return asio::async_initiate<Token, void(boost::system::error_code)>(
      [ex, inside_emit](auto handler) {
        using handler_type = std::decay_t<decltype(handler)>;
        auto slot = asio::get_associated_cancellation_slot(handler);
        auto held = std::make_shared<std::optional<handler_type>>(std::move(handler));
        slot.assign([ex, inside_emit, held](asio::cancellation_type_t) {
          inside_emit();
          asio::post(ex, [ex, held] {
            auto h = std::move(**held);
            held->reset();
            asio::get_associated_cancellation_slot(h).clear();
            // Completed on the handler's own executor, as every Asio
            // operation does (an awaitable's is its coroutine's strand).
            const auto handler_ex = asio::get_associated_executor(h, ex);
            asio::dispatch(handler_ex,
                           asio::append(std::move(h), boost::system::error_code(asio::error::operation_aborted)));
          });
        });
      },
      token);
}

// Runs @p round on @p pool and waits for it, failing (not hanging) if it
// does not finish within hang_limit.
template <typename Round>
bool finishes(asio::thread_pool& pool, Round round)
{
  auto done = asio::co_spawn(pool, round(), asio::use_future);
  if (done.wait_for(hang_limit) != std::future_status::ready)
    return false;
  done.get();
  return true;
}

} // namespace

BOOST_AUTO_TEST_CASE(an_item_whose_cancellation_handler_cancels_its_own_stream_does_not_deadlock,
                     *boost::unit_test::timeout(300))
{
  asio::thread_pool pool(4);
  for (int round = 0; round < rounds; ++round) {
    std::atomic<int> called_back{0};
    const bool ok = finishes(pool, [&]() -> asio::awaitable<void> {
      const auto ex = co_await asio::this_coro::executor;
      std::function<void()> cancel_stream;
      std::atomic<int> waiting{0};
      auto item = [&](int i) -> asio::awaitable<int> {
        if (i == 0) {
          while (waiting.load() != 39) // every other item waits first: each one's wait is cancelled
            co_await fanout::sleep(1ms);
          throw std::runtime_error("boom");
        }
        ++waiting; // the wait below starts before anything else runs on the item's strand
        co_await wait_for_cancellation(
            ex,
            [&] {
              ++called_back;
              cancel_stream(); // back into the map, from inside its own emit
            },
            asio::use_awaitable);
        co_return i;
      };
      // More items than the map has strands (16): some share item 0's strand,
      // where its failure emits their cancellation inline.
      auto stream = fanout::async_map_stream(item, fanout::test::iota_vector(40));
      cancel_stream = [&] { stream.cancel(); };
      std::exception_ptr failure;
      try {
        while (co_await stream.async_next()) {
        }
      } catch (...) {
        failure = std::current_exception();
      }
      BOOST_TEST(fanout::test::message_of(failure) == "boom");
    });
    BOOST_TEST_REQUIRE(ok, "round " << round << " hung");
    BOOST_TEST(called_back.load() == 39);
  }
}

BOOST_AUTO_TEST_CASE(a_task_whose_cancellation_handler_queries_and_cancels_the_task_does_not_deadlock,
                     *boost::unit_test::timeout(300))
{
  asio::thread_pool pool(4);
  for (int round = 0; round < rounds; ++round) {
    std::atomic<int> called_back{0};
    const bool ok = finishes(pool, [&]() -> asio::awaitable<void> {
      const auto ex = co_await asio::this_coro::executor;
      std::optional<fanout::task<void>> t;
      std::atomic<bool> waiting{false};
      auto body = [&]() -> asio::awaitable<void> {
        waiting = true; // the wait below starts before anything else runs on the task's strand
        co_await wait_for_cancellation(
            ex,
            [&] {
              ++called_back;
              BOOST_TEST(!t->done()); // takes the task's lock, inside its emit
              t->cancel();
            },
            asio::use_awaitable);
      };
      t.emplace(fanout::spawn(ex, body()));
      while (!waiting)
        co_await fanout::sleep(1ms);
      t->cancel();
      auto [e] = co_await t->async_wait(asio::as_tuple(asio::use_awaitable));
      BOOST_TEST(code_of(e) == asio::error::operation_aborted);
    });
    BOOST_TEST_REQUIRE(ok, "round " << round << " hung");
    BOOST_TEST(called_back.load() == 1);
  }
}

BOOST_AUTO_TEST_CASE(a_group_task_whose_cancellation_handler_asks_its_group_does_not_deadlock,
                     *boost::unit_test::timeout(300))
{
  asio::thread_pool pool(4);
  for (int round = 0; round < rounds; ++round) {
    std::atomic<int> called_back{0};
    const bool ok = finishes(pool, [&]() -> asio::awaitable<void> {
      const auto ex = co_await asio::this_coro::executor;
      fanout::task_group group(ex);
      std::atomic<int> waiting{0};
      // Named: a coroutine lambda's captures live in the lambda, which must
      // outlive the coroutines it starts.
      auto waiter = [&]() -> asio::awaitable<void> {
        ++waiting; // the wait below starts before anything else runs on the task's strand
        co_await wait_for_cancellation(
            ex,
            [&] {
              ++called_back;
              BOOST_TEST(group.size() <= 5u); // takes the group's lock, inside its emit
              group.cancel();
            },
            asio::use_awaitable);
      };
      auto failing = [&]() -> asio::awaitable<void> {
        while (waiting.load() != 4)
          co_await fanout::sleep(1ms);
        throw std::runtime_error("boom");
      };
      for (int i = 0; i < 4; ++i)
        group.spawn(waiter());
      group.spawn(failing());
      auto [e] = co_await group.async_join(asio::as_tuple(asio::use_awaitable));
      BOOST_TEST(fanout::test::message_of(e) == "boom");
    });
    BOOST_TEST_REQUIRE(ok, "round " << round << " hung");
    BOOST_TEST(called_back.load() == 4);
  }
}

BOOST_AUTO_TEST_SUITE_END() // lock_discipline_tests
