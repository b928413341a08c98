#include <fanout/detail/cancellation_room.hpp>

#include <boost/test/unit_test.hpp>

#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/cancellation_signal.hpp>
#include <boost/asio/cancellation_type.hpp>
#include <boost/asio/error.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/system/error_code.hpp>

#include <chrono>
#include <optional>

// The room a map worker reserves in its cancellation slot before each item:
// what it leaves in the slot, and that the item's operation still gets the
// slot.
//
// Every suite sits in its own top-level suite (and namespace): the suites are
// compiled together in unity batches (test/CMakeLists.txt).
BOOST_AUTO_TEST_SUITE(cancellation_room_tests)

namespace asio = boost::asio;
using namespace std::chrono_literals;
using fanout::detail::reserve_cancellation_room;

BOOST_AUTO_TEST_CASE(an_empty_slot_gets_a_handler_that_ignores_emits)
{
  asio::cancellation_signal signal;
  reserve_cancellation_room(signal.slot());
  BOOST_TEST(signal.slot().has_handler());
  signal.emit(asio::cancellation_type::terminal);
  BOOST_TEST(signal.slot().has_handler());
}

BOOST_AUTO_TEST_CASE(a_handler_already_in_the_slot_is_kept)
{
  asio::cancellation_signal signal;
  int calls = 0;
  signal.slot().assign([&calls](asio::cancellation_type_t) { ++calls; });
  reserve_cancellation_room(signal.slot());
  signal.emit(asio::cancellation_type::terminal);
  BOOST_TEST(calls == 1);
}

BOOST_AUTO_TEST_CASE(an_unconnected_slot_is_left_alone)
{
  const asio::cancellation_slot none;
  reserve_cancellation_room(none);
  BOOST_TEST(!none.is_connected());
}

BOOST_AUTO_TEST_CASE(an_operation_started_after_the_room_is_reserved_is_cancelled_through_the_slot,
                     *boost::unit_test::timeout(60))
{
  asio::io_context ctx;
  asio::cancellation_signal signal;
  reserve_cancellation_room(signal.slot());
  asio::steady_timer timer(ctx, 10s);
  std::optional<boost::system::error_code> outcome;
  timer.async_wait(asio::bind_cancellation_slot(signal.slot(), [&](boost::system::error_code ec) { outcome = ec; }));
  signal.emit(asio::cancellation_type::terminal);
  ctx.run_for(5s);
  BOOST_TEST_REQUIRE(outcome.has_value());
  BOOST_TEST(*outcome == asio::error::operation_aborted);
}

BOOST_AUTO_TEST_SUITE_END()
