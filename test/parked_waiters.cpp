#include <fanout/task.hpp>

#include <boost/test/unit_test.hpp>

#include "support/outcomes.hpp"
#include "support/run_until.hpp"
#include "support/tracker.hpp"

#include <fanout/async_map.hpp>
#include <fanout/map_options.hpp>
#include <fanout/map_stream.hpp>
#include <fanout/run.hpp>
#include <fanout/sleep.hpp>
#include <fanout/task_group.hpp>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/bind_executor.hpp>
#include <boost/asio/cancellation_signal.hpp>
#include <boost/asio/cancellation_type.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/mpl/list.hpp>
#include <boost/system/system_error.hpp>

#include <chrono>
#include <cstddef>
#include <exception>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

// The parked-waiter contract, tested once over a table. Several operations
// park a completion handler in fanout's own state until something finishes:
// task<T>::async_wait, task_group::join, the collect wait of async_map (token
// form and awaited), and map_stream::next (async_map_stream and
// async_map_as_completed). Each row of the table is a small adaptor that
// starts such an operation over work parked behind a gate, and each test case
// is one clause of the contract, run over every row:
//   - destroying the io_context while the handler is parked frees the awaiting
//     frame and runs no handler;
//   - stopping the io_context while it is parked and running it again
//     completes the operation;
//   - an exception thrown by the completion handler comes out of run(), and the
//     context runs again;
//   - cancellation through the handler's slot before start, while queued for
//     the window (maps and streams), while running, and after completion.
//
// Every suite sits in its own top-level suite (and namespace): the suites are
// compiled together in unity batches (test/CMakeLists.txt).
BOOST_AUTO_TEST_SUITE(parked_waiters_tests)

namespace asio = boost::asio;
using namespace std::chrono_literals;
using fanout::test::code_of;
using fanout::test::in_flight;
using fanout::test::run_until;
using fanout::test::tracker;
using fanout::test::value_after;

namespace {

// Work parks behind a gate until the test opens it.
class gate
{
public:
  explicit gate(const asio::any_io_executor& ex) : timer_(ex, fanout::clock::time_point::max()) {}

  void open()
  {
    open_ = true;
    timer_.cancel();
  }

  // An item that waits until the gate opens, then gives @p value; in flight in
  // @p t meanwhile. Cancelled before the gate opens, it fails with
  // operation_aborted (counted in t.aborted).
  asio::awaitable<int> pass(tracker& t, int value)
  {
    const in_flight guard(t);
    if (!open_)
      (void)co_await timer_.async_wait(asio::as_tuple(asio::use_awaitable));
    if (!open_) {
      ++t.aborted;
      throw boost::system::system_error(asio::error::operation_aborted, "gate");
    }
    ++t.finished;
    co_return value;
  }

private:
  asio::steady_timer timer_;
  bool open_ = false;
};

// The item function of the map rows: item i passes the gate with value i.
struct gated_item
{
  gate* g;
  tracker* t;
  asio::awaitable<int> operator()(int i) const { return g->pass(*t, i); }
};

// The maps' input, and their window: unbounded, or one item at a time (the
// others wait for the window).
const std::vector<int> three_items{0, 1, 2};
fanout::map_options window(bool queued)
{
  return {.max_concurrency = queued ? std::size_t{1} : std::size_t{0}};
}

// The rows. Each has an `op` that is made with (executor, gate, tracker,
// queued), starts the work at once or when parked, and parks a completion
// handler with park(token); `expected(values...)` tells whether a successful
// completion gave the values expected once the gate opened; `items` is how many
// items run when nothing waits for the window; `has_queue` whether the row can
// hold items waiting for a window.

struct task_async_wait
{
  static constexpr int items = 1;
  static constexpr bool has_queue = false;
  struct op
  {
    fanout::task<int> task;
    op(const asio::any_io_executor& ex, gate& g, tracker& t, bool /*queued*/) : task(fanout::spawn(ex, g.pass(t, 7))) {}
    template <typename Token>
    auto park(Token&& token)
    {
      return task.async_wait(std::forward<Token>(token));
    }
    static bool expected(int v) { return v == 7; }
  };
};

struct task_group_join
{
  static constexpr int items = 3;
  static constexpr bool has_queue = false;
  struct op
  {
    fanout::task_group group;
    op(const asio::any_io_executor& ex, gate& g, tracker& t, bool /*queued*/) : group(ex)
    {
      for (int i = 0; i < items; ++i)
        (void)group.spawn(g.pass(t, i));
    }
    template <typename Token>
    auto park(Token&& token)
    {
      return group.async_join(std::forward<Token>(token));
    }
    static bool expected() { return true; }
  };
};

struct async_map_token_form
{
  static constexpr int items = 3;
  static constexpr bool has_queue = true;
  struct op
  {
    asio::any_io_executor ex;
    gated_item item;
    fanout::map_options options;
    op(asio::any_io_executor e, gate& g, tracker& t, bool queued)
        : ex(std::move(e)), item{&g, &t}, options(window(queued))
    {}
    template <typename Token>
    auto park(Token&& token)
    {
      return fanout::async_map(ex, options, item, three_items, std::forward<Token>(token));
    }
    static bool expected(const std::vector<int>& r) { return r == three_items; }
  };
};

struct async_map_awaited
{
  static constexpr int items = 3;
  static constexpr bool has_queue = true;
  struct op
  {
    asio::any_io_executor ex;
    gated_item item;
    fanout::map_options options;
    op(asio::any_io_executor e, gate& g, tracker& t, bool queued)
        : ex(std::move(e)), item{&g, &t}, options(window(queued))
    {}
    // The coroutine that awaits the map is what parks here.
    template <typename Token>
    auto park(Token&& token)
    {
      return asio::co_spawn(ex, fanout::async_map(options, item, three_items), std::forward<Token>(token));
    }
    static bool expected(const std::vector<int>& r) { return r == three_items; }
  };
};

struct map_stream_next
{
  static constexpr int items = 3;
  static constexpr bool has_queue = true;
  struct op
  {
    decltype(fanout::async_map_stream(fanout::map_options{}, gated_item{}, three_items)) stream;
    op(const asio::any_io_executor& /*ex*/, gate& g, tracker& t, bool queued)
        : stream(fanout::async_map_stream(window(queued), gated_item{&g, &t}, three_items))
    {}
    template <typename Token>
    auto park(Token&& token)
    {
      return stream.async_next(std::forward<Token>(token));
    }
    static bool expected(const std::optional<int>& v) { return v == 0; }
  };
};

struct as_completed_next
{
  static constexpr int items = 3;
  static constexpr bool has_queue = true;
  struct op
  {
    decltype(fanout::async_map_as_completed(fanout::map_options{}, gated_item{}, three_items)) stream;
    op(const asio::any_io_executor& /*ex*/, gate& g, tracker& t, bool queued)
        : stream(fanout::async_map_as_completed(window(queued), gated_item{&g, &t}, three_items))
    {}
    template <typename Token>
    auto park(Token&& token)
    {
      return stream.async_next(std::forward<Token>(token));
    }
    template <typename Element>
    static bool expected(const std::optional<Element>& v)
    {
      return v.has_value() && v->first < three_items.size() && static_cast<std::size_t>(v->second) == v->first;
    }
  };
};

using every_parking_operation = boost::mpl::list<task_async_wait, task_group_join, async_map_token_form,
                                                 async_map_awaited, map_stream_next, as_completed_next>;
using every_parking_operation_with_a_queue =
    boost::mpl::list<async_map_token_form, async_map_awaited, map_stream_next, as_completed_next>;

// Thrown by completion handlers.
struct handler_error : std::runtime_error
{
  handler_error() : std::runtime_error("handler") {}
};

// One row's operation on its own io_context, with a callback handler (bound
// to the context's executor, and to `signal`'s slot if asked) that records how
// it completed. Members are destroyed in reverse: the operation, the gate and
// the context go before the counts that the items and the handler write.
template <typename Row>
struct parked
{
  tracker t;
  int calls = 0;
  std::exception_ptr error;
  bool expected_values = false;
  int in_flight_at_completion = -1;
  bool throw_from_handler = false;
  asio::cancellation_signal signal;
  asio::io_context ctx{1};
  gate g{ctx.get_executor()};
  typename Row::op op;

  explicit parked(bool queued = false) : op(ctx.get_executor(), g, t, queued) {}

  auto handler()
  {
    return asio::bind_executor(ctx.get_executor(), [this](std::exception_ptr e, const auto&... values) {
      ++calls;
      error = e;
      expected_values = !e && Row::op::expected(values...);
      in_flight_at_completion = t.now.load();
      if (throw_from_handler)
        throw handler_error();
    });
  }
  void park() { op.park(handler()); }
  void park_with_slot() { op.park(asio::bind_cancellation_slot(signal.slot(), handler())); }

  // Runs the context until @p n items have started and nothing more happens
  // at once.
  bool run_until_started(int n)
  {
    const bool started = run_until(ctx, [&] { return t.started.load() >= n; });
    ctx.poll();
    return started;
  }
  bool run_until_completed()
  {
    return run_until(
        ctx, [&] { return calls > 0; }, 5s);
  }

  // Opens the gate and lets every item end, whatever the test left parked.
  void finish()
  {
    g.open();
    (void)run_until(
        ctx, [&] { return t.now.load() == 0; }, 5s);
  }
};

} // namespace

BOOST_AUTO_TEST_CASE_TEMPLATE(
    destroying_the_context_while_an_operation_is_parked_frees_the_awaiting_frame_and_runs_no_handler, Row,
    every_parking_operation)
{
  tracker t;
  int calls = 0;
  auto owned = std::make_shared<int>(0);
  const std::weak_ptr<int> frame_alive = owned;
  {
    asio::io_context ctx{1};
    gate g(ctx.get_executor());
    asio::co_spawn(
        ctx,
        [](asio::any_io_executor ex, gate& gated, tracker& tracked, std::shared_ptr<int>) -> asio::awaitable<void> {
          typename Row::op op(ex, gated, tracked, false);
          (void)co_await op.park(asio::use_awaitable);
        }(ctx.get_executor(), g, t, std::move(owned)),
        [&calls](std::exception_ptr) { ++calls; });
    BOOST_TEST(run_until(ctx, [&] { return t.started.load() == Row::items; }));
    ctx.poll();
    BOOST_TEST(t.now.load() == Row::items);
    BOOST_TEST(!frame_alive.expired());
  } // destroyed with the awaiting coroutine parked
  BOOST_TEST(calls == 0);
  BOOST_TEST(t.now.load() == 0);      // every item's frame is gone...
  BOOST_TEST(frame_alive.expired());  // ...and the awaiting frame with it
  BOOST_TEST(t.finished.load() == 0); // none ran to its end
}

BOOST_AUTO_TEST_CASE_TEMPLATE(stopping_the_context_while_an_operation_is_parked_and_running_it_again_completes_it, Row,
                              every_parking_operation)
{
  parked<Row> p;
  p.park();
  BOOST_TEST(p.run_until_started(Row::items));
  p.ctx.stop();
  p.g.open();
  p.ctx.run(); // stopped: runs nothing
  BOOST_TEST(p.calls == 0);
  BOOST_TEST(p.t.now.load() == Row::items);
  p.ctx.restart();
  BOOST_TEST(p.run_until_completed());
  BOOST_TEST(p.calls == 1);
  BOOST_TEST(!p.error);
  BOOST_TEST(p.expected_values);
  p.finish();
  BOOST_TEST(p.t.now.load() == 0);
}

BOOST_AUTO_TEST_CASE_TEMPLATE(an_exception_from_the_completion_handler_propagates_out_of_run_and_the_context_runs_again,
                              Row, every_parking_operation)
{
  parked<Row> p;
  p.throw_from_handler = true;
  p.park();
  BOOST_TEST(p.run_until_started(Row::items));
  p.g.open();
  bool caught = false;
  try {
    (void)p.run_until_completed();
  } catch (const handler_error&) {
    caught = true;
  }
  BOOST_TEST(caught);
  BOOST_TEST(p.calls == 1);
  BOOST_TEST(p.expected_values);
  p.ctx.restart();
  BOOST_TEST(fanout::run(p.ctx, value_after(1ms, 5)) == 5); // the context is still good for more work
  p.finish();
  BOOST_TEST(p.calls == 1);
  BOOST_TEST(p.t.now.load() == 0);
}

// Before start: emitted right after the call, before the context ran. Tasks
// and groups then never start their work; maps and streams may start their
// items, which see the cancellation at once: none finishes.
BOOST_AUTO_TEST_CASE_TEMPLATE(
    cancellation_through_the_handlers_slot_before_start_completes_with_operation_aborted_and_lets_no_item_finish, Row,
    every_parking_operation)
{
  parked<Row> p;
  p.park_with_slot();
  p.signal.emit(asio::cancellation_type::terminal); // the context has not run yet
  BOOST_TEST(p.run_until_completed());
  BOOST_TEST(p.calls == 1);
  BOOST_TEST(code_of(p.error) == asio::error::operation_aborted);
  BOOST_TEST(p.in_flight_at_completion == 0);
  BOOST_TEST(p.t.finished.load() == 0);
  BOOST_TEST(p.t.aborted.load() == p.t.started.load());
  if constexpr (!Row::has_queue)
    BOOST_TEST(p.t.started.load() == 0); // a task cancelled before it started never runs
  p.finish();
  BOOST_TEST(p.calls == 1);
}

BOOST_AUTO_TEST_CASE_TEMPLATE(
    cancellation_through_the_handlers_slot_while_items_wait_for_the_window_completes_with_operation_aborted_and_never_starts_them,
    Row, every_parking_operation_with_a_queue)
{
  parked<Row> p(true); // a window of one: item 0 runs, the others wait
  p.park_with_slot();
  BOOST_TEST(p.run_until_started(1));
  BOOST_TEST(p.t.started.load() == 1);
  p.signal.emit(asio::cancellation_type::terminal);
  BOOST_TEST(p.run_until_completed());
  BOOST_TEST(p.calls == 1);
  BOOST_TEST(code_of(p.error) == asio::error::operation_aborted);
  BOOST_TEST(p.in_flight_at_completion == 0);
  BOOST_TEST(p.t.started.load() == 1);
  BOOST_TEST(p.t.aborted.load() == 1);
  p.finish();
  BOOST_TEST(p.t.started.load() == 1);
}

BOOST_AUTO_TEST_CASE_TEMPLATE(
    cancellation_through_the_handlers_slot_while_running_aborts_the_work_and_completes_with_operation_aborted_once_it_ended,
    Row, every_parking_operation)
{
  parked<Row> p;
  p.park_with_slot();
  BOOST_TEST(p.run_until_started(Row::items));
  p.signal.emit(asio::cancellation_type::terminal);
  BOOST_TEST(p.run_until_completed());
  BOOST_TEST(p.calls == 1);
  BOOST_TEST(code_of(p.error) == asio::error::operation_aborted);
  BOOST_TEST(p.in_flight_at_completion == 0); // the handler ran only once every item had ended
  BOOST_TEST(p.t.aborted.load() == Row::items);
  BOOST_TEST(p.t.finished.load() == 0);
  p.finish();
}

BOOST_AUTO_TEST_CASE_TEMPLATE(cancellation_through_the_handlers_slot_after_completion_has_no_effect, Row,
                              every_parking_operation)
{
  parked<Row> p;
  p.park_with_slot();
  BOOST_TEST(p.run_until_started(Row::items));
  p.g.open();
  BOOST_TEST(p.run_until_completed());
  for (const auto type :
       {asio::cancellation_type::terminal, asio::cancellation_type::partial, asio::cancellation_type::total})
    p.signal.emit(type);
  p.finish();
  p.ctx.poll();
  BOOST_TEST(p.calls == 1);
  BOOST_TEST(!p.error);
  BOOST_TEST(p.expected_values);
  BOOST_TEST(p.t.aborted.load() == 0);
  BOOST_TEST(p.t.finished.load() == Row::items);
}

BOOST_AUTO_TEST_SUITE_END() // parked_waiters_tests
