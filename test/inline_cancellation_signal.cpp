#include <fanout/detail/inline_cancellation_signal.hpp>

#include <boost/test/unit_test.hpp>

#include "support/co_test.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/cancellation_state.hpp>
#include <boost/asio/cancellation_type.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/error.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/system/error_code.hpp>
#include <boost/system/system_error.hpp>

#include <array>
#include <chrono>
#include <cstddef>
#include <exception>
#include <optional>
#include <vector>

// The cancellation signal that keeps its handler inside itself: what its slot
// does with handlers that fit and that do not, and that Asio's cancellation
// state and co_spawn accept its slot.
//
// Every suite sits in its own top-level suite (and namespace): the suites are
// compiled together in unity batches (test/CMakeLists.txt).
BOOST_AUTO_TEST_SUITE(inline_cancellation_signal_tests)

namespace asio = boost::asio;
using namespace std::chrono_literals;
using fanout::detail::inline_cancellation_signal;
using fanout::test::seconds_since;

namespace {

struct counts
{
  int constructed = 0;
  int destroyed = 0;
  std::vector<asio::cancellation_type_t> calls;
};

// A cancellation handler of Size bytes that counts its lifetime and calls.
template <std::size_t Size>
struct counted_handler
{
  explicit counted_handler(counts& into) : c(&into) { ++into.constructed; }
  counted_handler(const counted_handler&) = delete;
  ~counted_handler() { ++c->destroyed; }
  void operator()(asio::cancellation_type_t type) { c->calls.push_back(type); }
  counts* c;
  std::array<char, Size - sizeof(counts*)> padding{};
};

using small_handler = counted_handler<16>;
using big_handler = counted_handler<256>;
using signal_16 = inline_cancellation_signal<16>;

} // namespace

BOOST_AUTO_TEST_CASE(a_default_slot_is_not_connected_and_a_signal_s_slot_is)
{
  signal_16 signal;
  BOOST_TEST(!signal_16::slot_type().is_connected());
  BOOST_TEST(signal.slot().is_connected());
  BOOST_TEST(!signal.slot().has_handler());
  BOOST_TEST((signal.slot() == signal.slot()));
}

BOOST_AUTO_TEST_CASE(emit_without_a_handler_does_nothing)
{
  signal_16 signal;
  signal.emit(asio::cancellation_type::terminal);
  BOOST_TEST(!signal.slot().has_handler());
}

BOOST_AUTO_TEST_CASE(a_handler_that_fits_is_called_with_each_emitted_type)
{
  counts c;
  signal_16 signal;
  signal.slot().emplace<small_handler>(c);
  signal.emit(asio::cancellation_type::partial);
  signal.emit(asio::cancellation_type::terminal);
  BOOST_TEST(c.constructed == 1);
  BOOST_TEST((c.calls == std::vector{asio::cancellation_type::partial, asio::cancellation_type::terminal}));
}

BOOST_AUTO_TEST_CASE(a_handler_too_big_for_the_room_is_kept_on_the_heap_and_called_the_same_way)
{
  counts c;
  {
    signal_16 signal;
    signal.slot().emplace<big_handler>(c);
    BOOST_TEST(signal.slot().has_handler());
    signal.emit(asio::cancellation_type::total);
    BOOST_TEST((c.calls == std::vector{asio::cancellation_type::total}));
    BOOST_TEST(c.destroyed == 0);
  }
  BOOST_TEST(c.constructed == 1);
  BOOST_TEST(c.destroyed == 1);
}

BOOST_AUTO_TEST_CASE(emplacing_again_destroys_the_previous_handler_before_constructing_the_next)
{
  counts first;
  counts second;
  signal_16 signal;
  signal.slot().emplace<small_handler>(first);
  signal.slot().emplace<big_handler>(second);
  BOOST_TEST(first.destroyed == 1);
  signal.slot().emplace<small_handler>(first);
  BOOST_TEST(second.destroyed == 1);
  signal.emit(asio::cancellation_type::terminal);
  BOOST_TEST(first.calls.size() == 1u);
  BOOST_TEST(second.calls.empty());
}

BOOST_AUTO_TEST_CASE(clear_destroys_the_handler_once_and_later_emits_reach_nothing)
{
  counts c;
  signal_16 signal;
  signal.slot().emplace<small_handler>(c);
  signal.slot().clear();
  signal.slot().clear();
  signal.emit(asio::cancellation_type::terminal);
  BOOST_TEST(c.destroyed == 1);
  BOOST_TEST(c.calls.empty());
  BOOST_TEST(!signal.slot().has_handler());
}

BOOST_AUTO_TEST_CASE(the_signal_s_destructor_destroys_its_handler)
{
  counts c;
  {
    signal_16 signal;
    signal.slot().emplace<small_handler>(c);
  }
  BOOST_TEST(c.constructed == 1);
  BOOST_TEST(c.destroyed == 1);
}

BOOST_AUTO_TEST_CASE(a_cancellation_state_attached_to_the_slot_filters_and_forwards_emits)
{
  signal_16 signal;
  const asio::cancellation_state state(signal.slot());
  BOOST_TEST(signal.slot().has_handler()); // the state lives inside the signal
  bool child_called = false;
  state.slot().assign([&](asio::cancellation_type_t) { child_called = true; });
  signal.emit(asio::cancellation_type::partial); // terminal only, by default
  BOOST_TEST(!child_called);
  BOOST_TEST((state.cancelled() == asio::cancellation_type::none));
  signal.emit(asio::cancellation_type::terminal);
  BOOST_TEST(child_called);
  BOOST_TEST((state.cancelled() == asio::cancellation_type::terminal));
}

BOOST_AUTO_TEST_CASE(a_coroutine_co_spawned_with_the_slot_is_cancelled_by_an_emit, *boost::unit_test::timeout(60))
{
  asio::io_context ctx;
  inline_cancellation_signal<64> signal;
  std::optional<std::exception_ptr> outcome;
  asio::co_spawn(
      ctx,
      []() -> asio::awaitable<void> {
        asio::steady_timer timer(co_await asio::this_coro::executor, 10s);
        co_await timer.async_wait(asio::use_awaitable);
      },
      asio::bind_cancellation_slot(signal.slot(), [&](std::exception_ptr e) { outcome = e; }));
  asio::steady_timer canceller(ctx, 10ms);
  canceller.async_wait([&](boost::system::error_code) { signal.emit(asio::cancellation_type::terminal); });
  const auto start = std::chrono::steady_clock::now();
  ctx.run();
  BOOST_TEST(seconds_since(start) < 5.0);
  BOOST_TEST_REQUIRE(outcome.has_value());
  BOOST_TEST_REQUIRE(static_cast<bool>(*outcome));
  try {
    std::rethrow_exception(*outcome);
  } catch (const boost::system::system_error& e) {
    BOOST_TEST(e.code() == asio::error::operation_aborted);
  }
}

BOOST_AUTO_TEST_SUITE_END()
