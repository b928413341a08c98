#include <fanout/queue.hpp>

#include <boost/test/unit_test.hpp>

#include "support/co_test.hpp"
#include "support/outcomes.hpp"
#include "support/ranges.hpp"
#include "support/recorded.hpp"
#include "support/run_until.hpp"
#include "support/stress.hpp"

#include <fanout/async_map.hpp>
#include <fanout/error.hpp>
#include <fanout/run.hpp>
#include <fanout/task.hpp>

#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/bind_executor.hpp>
#include <boost/asio/cancellation_signal.hpp>
#include <boost/asio/cancellation_type.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/system/error_code.hpp>

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <exception>
#include <memory>
#include <optional>
#include <stdexcept>
#include <utility>
#include <vector>

// fanout::queue<T>: FIFO values, pushes that wait while full and pops that
// wait while empty (each in FIFO order), close and draining, cancellation of
// a push or a pop at every stage, destruction of the queue and of the
// context, and producers and consumers on a thread pool.
//
// Every suite sits in its own top-level suite (and namespace): the suites are
// compiled together in unity batches (test/CMakeLists.txt).
BOOST_AUTO_TEST_SUITE(queue_tests)

namespace asio = boost::asio;
using boost::system::error_code;
using fanout::test::code_of;
using fanout::test::record_into;
using fanout::test::recorded;
using fanout::test::run_until;

namespace {

// A value that counts live instances, to prove that values are not leaked
// or kept by operations that failed.
struct counted
{
  static inline std::atomic<int> alive{0};
  int v = 0;
  counted() { ++alive; }
  explicit counted(int value) : v(value) { ++alive; }
  counted(const counted& other) : v(other.v) { ++alive; }
  counted(counted&& other) noexcept : v(other.v) { ++alive; }
  counted& operator=(const counted&) = default;
  counted& operator=(counted&&) noexcept = default;
  ~counted() { --alive; }
};

using int_queue = fanout::queue<int>;

} // namespace

BOOST_AUTO_TEST_CASE(a_capacity_of_zero_throws_invalid_argument)
{
  BOOST_CHECK_THROW(int_queue(0), std::invalid_argument);
}

FANOUT_CO_TEST_CASE(values_come_out_in_the_order_they_were_pushed)
{
  int_queue q(3);
  for (int i = 1; i <= 3; ++i)
    co_await q.async_push(i);
  BOOST_TEST(q.size() == 3U);
  std::vector<int> out;
  for (int i = 0; i < 3; ++i)
    out.push_back(*co_await q.async_pop());
  BOOST_TEST(out == (std::vector<int>{1, 2, 3}));
}

FANOUT_CO_TEST_CASE(a_move_only_value_type_goes_through)
{
  fanout::queue<std::unique_ptr<int>> q(1);
  co_await q.async_push(std::make_unique<int>(5));
  auto v = co_await q.async_pop();
  BOOST_TEST(**v == 5);
}

BOOST_AUTO_TEST_CASE(pushes_wait_while_the_queue_is_full_and_enter_in_fifo_order_as_pops_make_room)
{
  asio::io_context ctx{1};
  int_queue q(1);
  std::vector<recorded<>> pushes(3);
  for (int i = 0; i < 3; ++i)
    q.async_push(i, record_into(ctx, pushes[static_cast<std::size_t>(i)]));
  ctx.poll();
  BOOST_TEST(pushes[0].calls == 1); // room for one
  BOOST_TEST(pushes[1].calls == 0);
  BOOST_TEST(pushes[2].calls == 0);
  std::vector<int> values;
  for (int i = 0; i < 3; ++i) {
    recorded<std::optional<int>> p;
    q.async_pop(record_into(ctx, p));
    ctx.restart(); // stopped once it ran out of work
    ctx.poll();
    BOOST_TEST_REQUIRE(p.value.has_value());
    values.push_back(*p.value);
  }
  BOOST_TEST(values == (std::vector<int>{0, 1, 2}));
  for (const auto& p : pushes) {
    BOOST_TEST(p.calls == 1);
    BOOST_TEST(!p.ec);
  }
  BOOST_TEST(q.size() == 0U);
}

BOOST_AUTO_TEST_CASE(pops_wait_while_the_queue_is_empty_and_get_the_values_pushed_in_fifo_order)
{
  asio::io_context ctx{1};
  int_queue q(2);
  std::vector<recorded<std::optional<int>>> pops(3);
  for (auto& p : pops)
    q.async_pop(record_into(ctx, p));
  ctx.poll();
  BOOST_TEST(pops[0].calls == 0);
  for (int i = 10; i < 13; ++i)
    BOOST_TEST(q.try_push(int(i)));
  ctx.run();
  BOOST_TEST((pops[0].value == 10));
  BOOST_TEST((pops[1].value == 11));
  BOOST_TEST((pops[2].value == 12));
  BOOST_TEST(q.size() == 0U); // handed to the pops directly
}

BOOST_AUTO_TEST_CASE(completions_ready_at_the_call_are_posted_never_run_inside_it)
{
  asio::io_context ctx{1};
  int_queue q(1);
  recorded<> push;
  recorded<std::optional<int>> pop;
  q.async_push(1, record_into(ctx, push));
  q.async_pop(record_into(ctx, pop));
  BOOST_TEST(push.calls == 0);
  BOOST_TEST(pop.calls == 0);
  ctx.run();
  BOOST_TEST(push.calls == 1);
  BOOST_TEST((pop.value == 1));
}

BOOST_AUTO_TEST_CASE(try_push_and_try_pop_never_wait)
{
  int_queue q(1);
  BOOST_TEST(!q.try_pop().has_value());
  int v = 4;
  BOOST_TEST(q.try_push(std::move(v)));
  int w = 5;
  BOOST_TEST(!q.try_push(std::move(w)));
  BOOST_TEST(w == 5); // left with the caller
  BOOST_TEST((q.try_pop() == 4));
  q.close();
  int x = 6;
  BOOST_TEST(!q.try_push(std::move(x)));
}

FANOUT_CO_TEST_CASE(a_closed_queue_gives_the_values_left_and_then_empty_optionals)
{
  int_queue q(3);
  co_await q.async_push(1);
  co_await q.async_push(2);
  q.close();
  BOOST_TEST(q.is_closed());
  std::vector<int> drained;
  while (auto v = co_await q.async_pop())
    drained.push_back(*v);
  BOOST_TEST(drained == (std::vector<int>{1, 2}));
  BOOST_TEST(!(co_await q.async_pop()).has_value()); // and again
}

FANOUT_CO_TEST_CASE(a_push_on_a_closed_queue_fails_with_closed_and_enqueues_nothing)
{
  int_queue q(3);
  q.close();
  const auto error = co_await fanout::test::exception_of(q.async_push(1));
  BOOST_TEST(code_of(error) == make_error_code(fanout::error::closed));
  BOOST_TEST(q.size() == 0U);
}

BOOST_AUTO_TEST_CASE(close_gives_parked_pops_an_empty_optional)
{
  asio::io_context ctx{1};
  int_queue q(1);
  std::vector<recorded<std::optional<int>>> pops(2);
  for (auto& p : pops)
    q.async_pop(record_into(ctx, p));
  q.close();
  ctx.run();
  for (const auto& p : pops) {
    BOOST_TEST(p.calls == 1);
    BOOST_TEST(!p.ec);
    BOOST_TEST(!p.value.has_value());
  }
}

BOOST_AUTO_TEST_CASE(close_fails_parked_pushes_with_closed_and_their_values_are_not_enqueued)
{
  asio::io_context ctx{1};
  fanout::queue<counted> q(1);
  const int before = counted::alive.load();
  std::vector<recorded<>> pushes(3);
  for (int i = 0; i < 3; ++i)
    q.async_push(counted(i), record_into(ctx, pushes[static_cast<std::size_t>(i)]));
  q.close();
  ctx.run();
  BOOST_TEST(!pushes[0].ec);
  BOOST_TEST(pushes[1].ec == make_error_code(fanout::error::closed));
  BOOST_TEST(pushes[2].ec == make_error_code(fanout::error::closed));
  BOOST_TEST(q.size() == 1U);
  BOOST_TEST(counted::alive.load() == before + 1); // only the value in the queue
  BOOST_TEST(q.try_pop()->v == 0);
}

BOOST_AUTO_TEST_CASE(a_push_cancelled_while_it_waits_completes_with_operation_aborted_and_its_value_is_destroyed)
{
  asio::io_context ctx{1};
  fanout::queue<counted> q(1);
  const int before = counted::alive.load();
  BOOST_TEST(q.try_push(counted(1)));
  asio::cancellation_signal signal;
  error_code result;
  q.async_push(counted(2),
               asio::bind_cancellation_slot(
                   signal.slot(), asio::bind_executor(ctx.get_executor(), [&](error_code ec) { result = ec; })));
  BOOST_TEST(counted::alive.load() == before + 2);
  signal.emit(asio::cancellation_type::terminal);
  ctx.run();
  BOOST_TEST(result == asio::error::operation_aborted);
  BOOST_TEST(counted::alive.load() == before + 1);
  BOOST_TEST(q.try_pop()->v == 1);
  BOOST_TEST(!q.try_pop().has_value()); // the cancelled value never entered
}

BOOST_AUTO_TEST_CASE(a_pop_cancelled_while_it_waits_takes_no_value)
{
  asio::io_context ctx{1};
  int_queue q(2);
  asio::cancellation_signal signal;
  recorded<std::optional<int>> cancelled;
  q.async_pop(asio::bind_cancellation_slot(signal.slot(), record_into(ctx, cancelled)));
  signal.emit(asio::cancellation_type::terminal);
  BOOST_TEST(q.try_push(7));
  ctx.run();
  BOOST_TEST(cancelled.ec == asio::error::operation_aborted);
  BOOST_TEST(!cancelled.value.has_value());
  BOOST_TEST((q.try_pop() == 7)); // still in the queue
}

BOOST_AUTO_TEST_CASE(a_pop_cancelled_after_a_value_was_handed_to_it_still_gets_the_value)
{
  asio::io_context ctx{1};
  int_queue q(2);
  asio::cancellation_signal signal;
  recorded<std::optional<int>> p;
  q.async_pop(asio::bind_cancellation_slot(signal.slot(), record_into(ctx, p)));
  BOOST_TEST(q.try_push(8)); // handed to the parked pop
  signal.emit(asio::cancellation_type::terminal);
  ctx.run();
  BOOST_TEST(!p.ec);
  BOOST_TEST((p.value == 8));
}

namespace {

// A value whose destructor reads its queue's size: were a value destroyed
// under the queue's lock, that would deadlock (the case's timeout fails it).
struct calls_back
{
  fanout::queue<calls_back>* q = nullptr;
  std::atomic<int>* destroyed = nullptr;
  calls_back(fanout::queue<calls_back>* queue, std::atomic<int>* count) : q(queue), destroyed(count) {}
  calls_back(calls_back&& other) noexcept : q(std::exchange(other.q, nullptr)), destroyed(other.destroyed) {}
  calls_back& operator=(calls_back&&) = delete;
  ~calls_back()
  {
    if (q != nullptr) {
      (void)q->size();
      ++*destroyed;
    }
  }
};

} // namespace

BOOST_AUTO_TEST_CASE(values_of_cancelled_and_closed_pushes_are_destroyed_outside_the_queues_lock,
                     *boost::unit_test::timeout(20))
{
  asio::io_context ctx{1};
  std::atomic<int> destroyed{0};
  fanout::queue<calls_back> q(1);
  BOOST_TEST(q.try_push(calls_back(&q, &destroyed)));
  asio::cancellation_signal signal;
  auto ignore = asio::bind_executor(ctx.get_executor(), [](error_code) {});
  q.async_push(calls_back(&q, &destroyed), asio::bind_cancellation_slot(signal.slot(), ignore));
  q.async_push(calls_back(&q, &destroyed), ignore);
  signal.emit(asio::cancellation_type::terminal); // the first parked value goes
  BOOST_TEST(destroyed.load() == 1);
  q.close(); // the second parked value goes
  BOOST_TEST(destroyed.load() == 2);
  ctx.run();
  BOOST_TEST(q.try_pop().has_value()); // the enqueued one, destroyed here
  BOOST_TEST(destroyed.load() == 3);
}

BOOST_AUTO_TEST_CASE(destroying_the_queue_completes_parked_operations_with_operation_aborted)
{
  asio::io_context ctx{1};
  recorded<std::optional<int>> pop;
  recorded<> push;
  {
    int_queue empty(1);
    empty.async_pop(record_into(ctx, pop));
    int_queue full(1);
    BOOST_TEST(full.try_push(1));
    full.async_push(2, record_into(ctx, push));
  }
  ctx.run();
  BOOST_TEST(pop.ec == asio::error::operation_aborted);
  BOOST_TEST(push.ec == asio::error::operation_aborted);
}

BOOST_AUTO_TEST_CASE(destroying_the_context_with_a_parked_push_frees_its_frame_and_value_and_runs_no_handler)
{
  fanout::queue<counted> q(1);
  BOOST_TEST(q.try_push(counted(0)));
  const int before = counted::alive.load();
  auto owned = std::make_shared<int>(0);
  const std::weak_ptr<int> frame_alive = owned;
  int calls = 0;
  {
    asio::io_context ctx{1};
    asio::co_spawn(
        ctx,
        [](fanout::queue<counted>& queue, std::shared_ptr<int>) -> asio::awaitable<void> {
          co_await queue.async_push(counted(1));
        }(q, std::move(owned)),
        [&calls](std::exception_ptr) { ++calls; });
    BOOST_TEST(run_until(ctx, [&] { return counted::alive.load() > before; }));
    ctx.poll();
  }
  BOOST_TEST(calls == 0);
  BOOST_TEST(frame_alive.expired());
  BOOST_TEST(counted::alive.load() == before);
  BOOST_TEST(q.size() == 1U);
  BOOST_TEST(q.try_pop()->v == 0);
  BOOST_TEST(!q.try_pop().has_value());
}

// Four producers push 0..999 each (tagged by producer) through a queue of 8
// to four consumers on a 4-thread pool, many rounds: every value arrives
// exactly once, each producer's values in order.
BOOST_AUTO_TEST_CASE(producers_and_consumers_on_a_thread_pool_pass_every_value_once_in_order,
                     *boost::unit_test::timeout(120))
{
  constexpr int rounds = 5;
  constexpr int producers = 4;
  constexpr int consumers = 4;
  constexpr int per_producer = 1000;
  for (int round = 0; round < rounds; ++round) {
    fanout::queue<std::int64_t> q(8);
    // Per consumer: the values it received, in order.
    std::vector<std::vector<std::int64_t>> received(consumers);
    fanout::test::stress::run_in(fanout::test::stress::threads::pool, [&]() -> asio::awaitable<int> {
      auto produce = [&](int p) -> asio::awaitable<void> {
        for (int i = 0; i < per_producer; ++i)
          co_await q.async_push(std::int64_t{p} * per_producer + i);
      };
      auto consume = [&](int c) -> asio::awaitable<void> {
        while (auto v = co_await q.async_pop())
          received[static_cast<std::size_t>(c)].push_back(*v);
      };
      auto ex = co_await asio::this_coro::executor;
      auto consuming = fanout::spawn(ex, fanout::async_map(consume, fanout::test::iota(0, consumers)));
      co_await fanout::async_map(produce, fanout::test::iota(0, producers));
      q.close();
      co_await consuming.async_wait();
      co_return 0;
    }());
    std::vector<int> seen(producers * per_producer, 0);
    int out_of_order = 0;
    for (const auto& values : received) {
      std::vector<std::int64_t> last(producers, -1);
      for (const auto v : values) {
        ++seen[static_cast<std::size_t>(v)];
        auto& l = last[static_cast<std::size_t>(v / per_producer)];
        out_of_order += v > l ? 0 : 1;
        l = v;
      }
    }
    BOOST_TEST(std::count(seen.begin(), seen.end(), 1) == producers * per_producer);
    BOOST_TEST(out_of_order == 0);
    BOOST_TEST(q.size() == 0U);
  }
}

BOOST_AUTO_TEST_SUITE_END() // queue_tests
