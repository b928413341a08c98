#include <fanout/fanout.hpp>

#include <boost/test/unit_test.hpp>

#include "support/co_test.hpp"

#include <boost/asio/bind_allocator.hpp>
#include <boost/asio/bind_executor.hpp>
#include <boost/asio/deferred.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/thread_pool.hpp>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstddef>
#include <exception>
#include <future>
#include <memory>
#include <optional>
#include <thread>
#include <type_traits>
#include <vector>

// Asio's rules for every initiating function and parked wait: a handler with
// no associated executor runs on the operation's I/O executor; a handler bound
// to another context runs there, and that context keeps outstanding work
// until it did.
BOOST_AUTO_TEST_SUITE(asio_rules_tests)

namespace asio = boost::asio;
using namespace std::chrono_literals;
using fanout::test::unit;

asio::awaitable<int> doubled_later(int x)
{
  co_await fanout::sleep(unit);
  co_return 2 * x;
}

asio::awaitable<void> nothing_later()
{
  co_await fanout::sleep(unit);
}

// What a plain callback (no associated executor) saw.
struct plain_outcome
{
  bool ran = false;
  bool on_io_thread = false; // io was running in the handler's thread
};

// Starts @p start with a plain callback, then runs @p io on this thread.
template <typename Start>
plain_outcome with_plain_callback(asio::io_context& io, Start start)
{
  plain_outcome out;
  start([&io, &out](auto&&...) {
    out.ran = true;
    out.on_io_thread = io.get_executor().running_in_this_thread();
  });
  io.run();
  return out;
}

// What a handler bound to a strand of another context saw.
struct bound_outcome
{
  bool ran = false;
  bool on_strand = false;
};

// Starts @p start on @p io with a handler bound to a strand of a second
// context, which a second thread runs (started after the operation): that
// context must keep outstanding work until the handler ran there.
template <typename Start>
bound_outcome with_handler_on_another_context(asio::io_context& io, Start start)
{
  asio::io_context other;
  auto strand = asio::make_strand(other);
  bound_outcome out;
  std::atomic<bool> ran{false};
  start(asio::bind_executor(strand, [&](auto&&...) {
    out.on_strand = strand.running_in_this_thread();
    ran = true;
  }));
  std::thread runner([&] { other.run(); }); // returns once the handler ran, not before
  io.run();
  runner.join();
  out.ran = ran;
  return out;
}

std::vector<int> inputs()
{
  return {1, 2, 3};
}

// ---- a map's token form --------------------------------------------------

BOOST_AUTO_TEST_CASE(a_plain_callback_for_a_token_form_map_runs_on_the_maps_io_executor, *boost::unit_test::timeout(60))
{
  asio::io_context io;
  const auto xs = inputs();
  auto out = with_plain_callback(
      io, [&](auto handler) { fanout::async_map(io.get_executor(), doubled_later, xs, std::move(handler)); });
  BOOST_TEST(out.ran);
  BOOST_TEST(out.on_io_thread);
}

BOOST_AUTO_TEST_CASE(a_token_form_maps_handler_bound_to_another_context_runs_on_its_strand_and_keeps_it_running,
                     *boost::unit_test::timeout(60))
{
  asio::io_context io;
  const auto xs = inputs();
  auto out = with_handler_on_another_context(
      io, [&](auto handler) { fanout::async_map(io.get_executor(), doubled_later, xs, std::move(handler)); });
  BOOST_TEST(out.ran);
  BOOST_TEST(out.on_strand);
}

// ---- a stream's next ------------------------------------------------------

BOOST_AUTO_TEST_CASE(a_plain_callback_for_a_streams_next_runs_items_and_handler_on_the_streams_executor,
                     *boost::unit_test::timeout(60))
{
  asio::io_context io;
  const auto xs = inputs();
  std::atomic<int> items_on_io{0};
  auto stream = fanout::async_map_stream(
      io.get_executor(),
      [&](int x) {
        items_on_io += io.get_executor().running_in_this_thread() ? 1 : 0;
        return doubled_later(x);
      },
      xs);
  auto out = with_plain_callback(io, [&](auto handler) { stream.async_next(std::move(handler)); });
  BOOST_TEST(out.ran);
  BOOST_TEST(out.on_io_thread);
  BOOST_TEST(items_on_io == 3);
}

BOOST_AUTO_TEST_CASE(a_plain_callback_for_next_on_a_stream_made_without_an_executor_is_rejected_in_the_call,
                     *boost::unit_test::timeout(60))
{
  const auto xs = inputs();
  std::atomic<int> items{0};
  std::atomic<bool> ran{false};
  auto stream = fanout::async_map_stream(
      [&](int x) {
        ++items;
        return doubled_later(x);
      },
      xs);
  bool threw = false;
  try {
    stream.async_next([&](std::exception_ptr, std::optional<int>) { ran = true; });
  } catch (const boost::system::system_error& e) {
    threw = e.code() == fanout::error::invalid_argument;
  }
  std::this_thread::sleep_for(2 * unit); // the system executor's threads would have run the map by now
  BOOST_TEST(threw);
  BOOST_TEST(items == 0);
  BOOST_TEST(!ran);
}

BOOST_AUTO_TEST_CASE(a_streams_next_handler_bound_to_another_context_runs_on_its_strand_and_keeps_it_running,
                     *boost::unit_test::timeout(60))
{
  asio::io_context io;
  const auto xs = inputs();
  std::atomic<int> items_on_io{0};
  auto stream = fanout::async_map_stream(
      io,
      [&](int x) {
        items_on_io += io.get_executor().running_in_this_thread() ? 1 : 0;
        return doubled_later(x);
      },
      xs);
  auto out = with_handler_on_another_context(io, [&](auto handler) { stream.async_next(std::move(handler)); });
  BOOST_TEST(out.ran);
  BOOST_TEST(out.on_strand);
  BOOST_TEST(items_on_io == 3); // the stream's executor runs the map, not the handler's
}

// ---- a task's wait ----------------------------------------------------------

BOOST_AUTO_TEST_CASE(a_plain_callback_waiting_on_a_task_runs_on_the_tasks_executor, *boost::unit_test::timeout(60))
{
  asio::io_context io;
  auto t = fanout::spawn(io, doubled_later(1));
  auto out = with_plain_callback(io, [&](auto handler) { t.async_wait(std::move(handler)); });
  BOOST_TEST(out.ran);
  BOOST_TEST(out.on_io_thread);
}

BOOST_AUTO_TEST_CASE(a_task_waits_handler_bound_to_another_context_runs_on_its_strand_and_keeps_it_running,
                     *boost::unit_test::timeout(60))
{
  asio::io_context io;
  auto t = fanout::spawn(io, doubled_later(1));
  auto out = with_handler_on_another_context(io, [&](auto handler) { t.async_wait(std::move(handler)); });
  BOOST_TEST(out.ran);
  BOOST_TEST(out.on_strand);
}

BOOST_AUTO_TEST_CASE(waiting_on_an_empty_task_with_a_plain_callback_never_completes_on_the_system_executor,
                     *boost::unit_test::timeout(60))
{
  fanout::task<int> empty;
  std::atomic<bool> ran{false};
  bool threw = false;
  try {
    empty.async_wait([&](std::exception_ptr, int) { ran = true; });
  } catch (const boost::system::system_error& e) {
    threw = e.code() == fanout::error::no_task;
  }
  std::this_thread::sleep_for(unit); // the system executor's threads would have run it by now
  BOOST_TEST(threw);
  BOOST_TEST(!ran);
}

// ---- a group's join -----------------------------------------------------------

BOOST_AUTO_TEST_CASE(a_plain_callback_joining_a_group_runs_on_the_groups_executor, *boost::unit_test::timeout(60))
{
  asio::io_context io;
  fanout::task_group g(io.get_executor());
  g.spawn(nothing_later());
  auto out = with_plain_callback(io, [&](auto handler) { g.async_join(std::move(handler)); });
  BOOST_TEST(out.ran);
  BOOST_TEST(out.on_io_thread);
}

BOOST_AUTO_TEST_CASE(a_group_joins_handler_bound_to_another_context_runs_on_its_strand_and_keeps_it_running,
                     *boost::unit_test::timeout(60))
{
  asio::io_context io;
  fanout::task_group g(io.get_executor());
  g.spawn(nothing_later());
  auto out = with_handler_on_another_context(io, [&](auto handler) { g.async_join(std::move(handler)); });
  BOOST_TEST(out.ran);
  BOOST_TEST(out.on_strand);
}

// ---- async_sleep ----------------------------------------------------------------

BOOST_AUTO_TEST_CASE(a_plain_callback_for_async_sleep_runs_on_the_timers_executor, *boost::unit_test::timeout(60))
{
  asio::io_context io;
  auto out =
      with_plain_callback(io, [&](auto handler) { fanout::async_sleep(io.get_executor(), unit, std::move(handler)); });
  BOOST_TEST(out.ran);
  BOOST_TEST(out.on_io_thread);
}

BOOST_AUTO_TEST_CASE(an_async_sleeps_handler_bound_to_another_context_runs_on_its_strand_and_keeps_it_running,
                     *boost::unit_test::timeout(60))
{
  asio::io_context io;
  auto out = with_handler_on_another_context(
      io, [&](auto handler) { fanout::async_sleep(io.get_executor(), unit, std::move(handler)); });
  BOOST_TEST(out.ran);
  BOOST_TEST(out.on_strand);
}

// ---- async_to_thread ----------------------------------------------------------

BOOST_AUTO_TEST_CASE(a_plain_callback_for_async_to_thread_runs_on_the_pool, *boost::unit_test::timeout(60))
{
  asio::thread_pool pool(1);
  std::atomic<bool> on_pool{false};
  std::promise<void> done;
  fanout::async_to_thread(
      pool, [] { return 1; },
      [&](std::exception_ptr, int) {
        on_pool = pool.get_executor().running_in_this_thread();
        done.set_value();
      });
  done.get_future().wait();
  BOOST_TEST(on_pool);
  pool.join();
}

BOOST_AUTO_TEST_CASE(an_async_to_thread_handler_bound_to_another_context_runs_on_its_strand_and_keeps_it_running,
                     *boost::unit_test::timeout(60))
{
  asio::io_context io; // nothing runs on it: the call runs on the pool
  auto out = with_handler_on_another_context(io, [&](auto handler) {
    fanout::async_to_thread(
        fanout::blocking_executor(),
        [] {
          std::this_thread::sleep_for(unit);
          return 1;
        },
        std::move(handler));
  });
  BOOST_TEST(out.ran);
  BOOST_TEST(out.on_strand);
}

// ---- an execution context where an executor is accepted ----------------------

BOOST_AUTO_TEST_CASE(every_token_form_accepts_an_io_context_for_its_executor, *boost::unit_test::timeout(60))
{
  asio::io_context io;
  const auto xs = inputs();
  int completions = 0;
  std::vector<int> mapped;
  std::size_t settled = 0;
  fanout::async_map(io, doubled_later, xs, [&](std::exception_ptr, std::vector<int> v) {
    mapped = std::move(v);
    ++completions;
  });
  fanout::async_map(io, {.max_concurrency = 1}, doubled_later, xs,
                    [&](std::exception_ptr, std::vector<int>) { ++completions; });
  fanout::async_map_settled(io, doubled_later, xs, [&](std::exception_ptr, auto v) {
    settled = v.size();
    ++completions;
  });
  fanout::async_map_settled(io, {.max_concurrency = 1}, doubled_later, xs,
                            [&](std::exception_ptr, auto) { ++completions; });
  fanout::async_sleep(io, unit, [&](boost::system::error_code) { ++completions; });
  auto stream = fanout::async_map_stream(io, doubled_later, xs);
  stream.async_next([&](std::exception_ptr, std::optional<int>) { ++completions; });
  auto as_completed = fanout::async_map_as_completed(io, {.max_concurrency = 1}, doubled_later, xs);
  as_completed.async_next([&](std::exception_ptr, auto) { ++completions; });
  fanout::task_group g(io);
  g.spawn(nothing_later());
  g.async_join([&](std::exception_ptr) { ++completions; });
  io.run();
  BOOST_TEST(completions == 8);
  BOOST_TEST(mapped == (std::vector<int>{2, 4, 6}));
  BOOST_TEST(settled == 3u);

  asio::thread_pool pool(1);
  std::promise<int> value;
  fanout::async_to_thread(
      pool, [] { return 7; }, [&](std::exception_ptr, int v) { value.set_value(v); });
  BOOST_TEST(value.get_future().get() == 7);
  pool.join();
}

// ---- braced options in the token form -------------------------------------

BOOST_AUTO_TEST_CASE(a_token_form_map_takes_braced_options_and_honours_them, *boost::unit_test::timeout(60))
{
  asio::io_context io;
  const std::vector<int> xs{1, 2, 3, 4, 5, 6};
  int running = 0;
  int most = 0;
  std::vector<int> out;
  fanout::async_map(
      io.get_executor(), {.max_concurrency = 2},
      [&](int x) -> asio::awaitable<int> {
        most = std::max(most, ++running);
        co_await fanout::sleep(unit / 5);
        --running;
        co_return x;
      },
      xs, [&](std::exception_ptr, std::vector<int> v) { out = std::move(v); });
  io.run();
  BOOST_TEST(most == 2);
  BOOST_TEST(out == xs);
}

// ---- default completion tokens -------------------------------------------------

// Asio's default token for the operation's executor where Asio names one
// (asio::deferred from Boost 1.86), else fanout's fallback.
using default_token = fanout::detail::default_token_t<asio::any_io_executor>;
static_assert(std::is_same_v<default_token, asio::default_completion_token_t<asio::any_io_executor>> ||
              (std::is_void_v<asio::default_completion_token_t<asio::any_io_executor>> &&
               std::is_same_v<default_token, fanout::detail::fallback_token_t<asio::any_io_executor>>));

FANOUT_CO_TEST_CASE(awaiting_with_the_default_token_works_in_a_coroutine)
{
  auto ex = co_await asio::this_coro::executor;
  const auto xs = inputs();
  auto t = fanout::spawn(ex, doubled_later(2));
  BOOST_TEST(co_await t.async_wait() == 4);
  fanout::task_group g(ex);
  g.spawn(nothing_later());
  co_await g.async_join();
  auto stream = fanout::async_map_stream(doubled_later, xs);
  BOOST_TEST(*co_await stream.async_next() == 2);
  co_await fanout::async_sleep(ex, 1ms);
  BOOST_TEST(co_await fanout::async_to_thread(fanout::blocking_executor(), [] { return 3; }) == 3);
}

// ---- the handler's associated allocator -------------------------------------

// Counts the allocations made through it (and its rebound copies).
template <typename T>
struct counting_allocator
{
  using value_type = T;
  std::atomic<int>* count;

  explicit counting_allocator(std::atomic<int>* c) noexcept : count(c) {}
  template <typename U>
  counting_allocator(const counting_allocator<U>& other) noexcept : count(other.count) // NOLINT: rebinding
  {}
  T* allocate(std::size_t n)
  {
    ++*count;
    return std::allocator<T>().allocate(n);
  }
  void deallocate(T* p, std::size_t n) noexcept { std::allocator<T>().deallocate(p, n); }
  template <typename U>
  bool operator==(const counting_allocator<U>& other) const noexcept
  {
    return count == other.count;
  }
};

BOOST_AUTO_TEST_CASE(async_sleep_allocates_its_state_with_the_handlers_allocator, *boost::unit_test::timeout(60))
{
  asio::io_context io;
  std::atomic<int> allocations{0};
  bool ran = false;
  fanout::async_sleep(
      io, 1ms,
      asio::bind_allocator(counting_allocator<void>(&allocations), [&](boost::system::error_code) { ran = true; }));
  BOOST_TEST(allocations == 1); // the operation's state, made in the call
  io.run();
  BOOST_TEST(ran);
}

BOOST_AUTO_TEST_CASE(async_to_thread_allocates_its_state_with_the_handlers_allocator, *boost::unit_test::timeout(60))
{
  asio::io_context io;
  std::atomic<int> allocations{0};
  int value = 0;
  fanout::async_to_thread(
      fanout::blocking_executor(), [] { return 5; },
      asio::bind_executor(io, asio::bind_allocator(counting_allocator<void>(&allocations),
                                                   [&](std::exception_ptr, int v) { value = v; })));
  BOOST_TEST(allocations >= 1);
  io.run();
  BOOST_TEST(value == 5);
}

BOOST_AUTO_TEST_CASE(a_parked_task_wait_keeps_its_handler_in_memory_from_the_handlers_allocator,
                     *boost::unit_test::timeout(60))
{
  asio::io_context io;
  auto t = fanout::spawn(io, doubled_later(1));
  std::atomic<int> allocations{0};
  int value = 0;
  t.async_wait(
      asio::bind_allocator(counting_allocator<void>(&allocations), [&](std::exception_ptr, int v) { value = v; }));
  BOOST_TEST(allocations >= 1); // the type-erased parked handler
  io.run();
  BOOST_TEST(value == 2);
}

BOOST_AUTO_TEST_SUITE_END()
