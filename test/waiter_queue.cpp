#include <fanout/detail/waiter_queue.hpp>

#include <boost/test/unit_test.hpp>

#include "support/recorded.hpp"
#include "support/run_until.hpp"

#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/bind_executor.hpp>
#include <boost/asio/cancellation_signal.hpp>
#include <boost/asio/cancellation_type.hpp>
#include <boost/asio/error.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/thread_pool.hpp>
#include <boost/system/error_code.hpp>

#include <atomic>
#include <chrono>
#include <cstddef>
#include <future>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <utility>
#include <vector>

// The waiter queue on its own, under a small owner that hands out numbered
// tokens: FIFO grants, cancellation while queued and after the grant, the
// race of a grant with a cancellation, payloads of waiters that leave,
// completion through the handler's executor, and context shutdown.
//
// Every suite sits in its own top-level suite (and namespace): the suites are
// compiled together in unity batches (test/CMakeLists.txt).
BOOST_AUTO_TEST_SUITE(waiter_queue_tests)

namespace asio = boost::asio;
using namespace std::chrono_literals;
using boost::system::error_code;
using fanout::test::record_into;
using fanout::test::recorded;
using fanout::test::run_until;
using fanout::test::wait_until;

namespace {

using signature = void(error_code, int);

// Counts live payloads, to prove that a waiter that leaves destroys its own.
struct payload
{
  static inline std::atomic<int> alive{0};
  std::string text;
  payload() { ++alive; }
  explicit payload(std::string t) : text(std::move(t)) { ++alive; }
  payload(const payload& other) : text(other.text) { ++alive; }
  payload(payload&& other) noexcept : text(std::move(other.text)) { ++alive; }
  payload& operator=(const payload&) = default;
  payload& operator=(payload&&) noexcept = default;
  ~payload() { --alive; }
};

// An owner: a pool of tokens, given to waiters in order. Invariant (mutex
// held): tokens wait in `free` only while nobody waits.
struct token_pool : std::enable_shared_from_this<token_pool>
{
  std::mutex mutex;
  fanout::detail::waiter_queue<signature, payload> waiters{mutex};
  std::vector<int> free;
  int leaves = 0;
  std::vector<std::string> taken_payloads;

  explicit token_pool(int tokens = 0)
  {
    for (int i = 0; i < tokens; ++i)
      free.push_back(i);
    waiters.on_leave([this](auto&) { ++leaves; });
  }

  template <typename Handler>
  void wait(Handler&& handler, std::string text = {})
  {
    fanout::detail::waiter_queue<signature, payload>::completions done;
    {
      const std::lock_guard lock(mutex);
      if (waiters.empty() && !free.empty()) {
        auto executor = asio::get_associated_executor(handler);
        const int token = free.back();
        free.pop_back();
        fanout::detail::post_completion(std::forward<Handler>(handler), executor, error_code(), token);
        return;
      }
      auto executor = asio::get_associated_executor(handler);
      waiters.park(shared_from_this(), std::forward<Handler>(handler), executor, payload(std::move(text)));
    }
  }

  // A token comes back: the front waiter gets it, else it is kept.
  void give(int token)
  {
    fanout::detail::waiter_queue<signature, payload>::completions done;
    {
      const std::lock_guard lock(mutex);
      if (waiters.empty()) {
        free.push_back(token);
      } else {
        taken_payloads.push_back(waiters.front_payload().text);
        waiters.grant_front(done, token);
      }
    }
    done.post();
  }

  std::size_t waiting()
  {
    const std::lock_guard lock(mutex);
    return waiters.size();
  }
  std::size_t free_tokens()
  {
    const std::lock_guard lock(mutex);
    return free.size();
  }
  void fail_all()
  {
    fanout::detail::waiter_queue<signature, payload>::completions done;
    {
      const std::lock_guard lock(mutex);
      waiters.fail_all(done, asio::error::operation_aborted);
    }
    done.post();
  }
};

} // namespace

BOOST_AUTO_TEST_CASE(waiters_are_granted_in_fifo_order)
{
  asio::io_context ctx{1};
  auto pool = std::make_shared<token_pool>();
  std::vector<int> order;
  for (int i = 0; i < 5; ++i)
    pool->wait(asio::bind_executor(ctx.get_executor(), [&order, i](error_code, int) { order.push_back(i); }),
               std::to_string(i));
  BOOST_TEST(pool->waiting() == 5U);
  for (int t = 0; t < 5; ++t)
    pool->give(t);
  ctx.run();
  BOOST_TEST(order == (std::vector<int>{0, 1, 2, 3, 4}));
  BOOST_TEST(pool->taken_payloads == (std::vector<std::string>{"0", "1", "2", "3", "4"}));
  BOOST_TEST(pool->waiting() == 0U);
}

BOOST_AUTO_TEST_CASE(a_grant_is_posted_never_invoked_inside_the_granting_call)
{
  asio::io_context ctx{1};
  auto pool = std::make_shared<token_pool>();
  recorded<int> out;
  pool->wait(record_into(ctx, out));
  pool->give(7);
  BOOST_TEST(out.calls == 0);
  ctx.run();
  BOOST_TEST(out.calls == 1);
  BOOST_TEST(!out.ec);
  BOOST_TEST(out.value == 7);
}

BOOST_AUTO_TEST_CASE(a_waiter_completes_on_its_own_associated_executor)
{
  asio::io_context other{1};
  asio::io_context ctx{1};
  auto pool = std::make_shared<token_pool>();
  recorded<int> out;
  pool->wait(record_into(other, out));
  pool->give(1);
  ctx.poll();
  BOOST_TEST(out.calls == 0);
  other.run();
  BOOST_TEST(out.calls == 1);
  BOOST_TEST(out.value == 1);
}

BOOST_AUTO_TEST_CASE(a_waiter_cancelled_while_queued_completes_with_operation_aborted_and_the_next_one_gets_the_grant)
{
  asio::io_context ctx{1};
  auto pool = std::make_shared<token_pool>();
  asio::cancellation_signal signal;
  recorded<int> first;
  recorded<int> second;
  pool->wait(asio::bind_cancellation_slot(signal.slot(), record_into(ctx, first)), "first");
  pool->wait(record_into(ctx, second), "second");
  signal.emit(asio::cancellation_type::terminal);
  BOOST_TEST(pool->waiting() == 1U);
  BOOST_TEST(pool->leaves == 1);
  pool->give(3);
  ctx.run();
  BOOST_TEST(first.calls == 1);
  BOOST_TEST(first.ec == asio::error::operation_aborted);
  BOOST_TEST(second.calls == 1);
  BOOST_TEST(!second.ec);
  BOOST_TEST(second.value == 3);
  BOOST_TEST(pool->taken_payloads == (std::vector<std::string>{"second"}));
}

BOOST_AUTO_TEST_CASE(partial_and_total_cancellation_take_a_queued_waiter_out_too)
{
  for (const auto type : {asio::cancellation_type::partial, asio::cancellation_type::total}) {
    asio::io_context ctx{1};
    auto pool = std::make_shared<token_pool>();
    asio::cancellation_signal signal;
    recorded<int> out;
    pool->wait(asio::bind_cancellation_slot(signal.slot(), record_into(ctx, out)));
    signal.emit(type);
    BOOST_TEST(pool->waiting() == 0U);
    ctx.run();
    BOOST_TEST(out.ec == asio::error::operation_aborted);
  }
}

BOOST_AUTO_TEST_CASE(a_cancelled_waiter_destroys_its_payload_and_takes_no_token)
{
  asio::io_context ctx{1};
  auto pool = std::make_shared<token_pool>();
  asio::cancellation_signal signal;
  recorded<int> out;
  out.value = -1; // not 0: the 0 checked below must come from the completion
  const int before = payload::alive.load();
  pool->wait(asio::bind_cancellation_slot(signal.slot(), record_into(ctx, out)), "value");
  BOOST_TEST(payload::alive.load() == before + 1);
  signal.emit(asio::cancellation_type::terminal);
  ctx.run();
  BOOST_TEST(payload::alive.load() == before);
  pool->give(4);
  BOOST_TEST(pool->free_tokens() == 1U); // nobody waits: the token is kept
  BOOST_TEST(out.ec == asio::error::operation_aborted);
  BOOST_TEST(out.value == 0); // a default value, no token
  BOOST_TEST(pool->taken_payloads.empty());
}

BOOST_AUTO_TEST_CASE(a_cancellation_after_the_grant_has_no_effect_and_the_waiter_gets_its_token)
{
  asio::io_context ctx{1};
  auto pool = std::make_shared<token_pool>();
  asio::cancellation_signal signal;
  recorded<int> out;
  pool->wait(asio::bind_cancellation_slot(signal.slot(), record_into(ctx, out)));
  pool->give(5);
  signal.emit(asio::cancellation_type::terminal); // granted, not yet run
  ctx.run();
  signal.emit(asio::cancellation_type::terminal); // completed
  BOOST_TEST(out.calls == 1);
  BOOST_TEST(!out.ec);
  BOOST_TEST(out.value == 5);
  BOOST_TEST(pool->leaves == 0);
}

BOOST_AUTO_TEST_CASE(failing_every_waiter_completes_each_with_the_error_in_order)
{
  asio::io_context ctx{1};
  auto pool = std::make_shared<token_pool>();
  std::vector<int> order;
  for (int i = 0; i < 3; ++i)
    pool->wait(asio::bind_executor(ctx.get_executor(), [&order, i](error_code ec, int) {
      if (ec == asio::error::operation_aborted)
        order.push_back(i);
    }));
  pool->fail_all();
  BOOST_TEST(pool->waiting() == 0U);
  ctx.run();
  BOOST_TEST(order == (std::vector<int>{0, 1, 2}));
}

BOOST_AUTO_TEST_CASE(destroying_the_context_with_a_waiter_parked_drops_it_from_the_queue_and_runs_no_handler)
{
  auto pool = std::make_shared<token_pool>();
  auto owned = std::make_shared<int>(0);
  const std::weak_ptr<int> handler_alive = owned;
  const int before = payload::alive.load();
  int calls = 0;
  {
    asio::io_context ctx{1};
    pool->wait(
        asio::bind_executor(ctx.get_executor(), [&calls, owned = std::move(owned)](error_code, int) { ++calls; }),
        "dropped");
    BOOST_TEST(pool->waiting() == 1U);
  }
  BOOST_TEST(calls == 0);
  BOOST_TEST(handler_alive.expired());
  BOOST_TEST(pool->waiting() == 0U);
  BOOST_TEST(pool->leaves == 1);
  BOOST_TEST(payload::alive.load() == before);
  pool->give(1);
  BOOST_TEST(pool->free_tokens() == 1U);
}

BOOST_AUTO_TEST_CASE(destroying_one_context_drops_only_its_own_waiters)
{
  asio::io_context kept{1};
  auto pool = std::make_shared<token_pool>();
  recorded<int> survivor;
  int dropped_calls = 0;
  {
    asio::io_context gone{1};
    pool->wait(asio::bind_executor(gone.get_executor(), [&dropped_calls](error_code, int) { ++dropped_calls; }));
    pool->wait(record_into(kept, survivor));
  }
  BOOST_TEST(pool->waiting() == 1U);
  pool->give(9);
  kept.run();
  BOOST_TEST(dropped_calls == 0);
  BOOST_TEST(survivor.calls == 1);
  BOOST_TEST(survivor.value == 9);
}

BOOST_AUTO_TEST_CASE(an_owner_destroyed_with_waiters_parked_frees_their_handlers_without_running_them)
{
  asio::io_context ctx{1};
  auto owned = std::make_shared<int>(0);
  const std::weak_ptr<int> handler_alive = owned;
  int calls = 0;
  {
    auto pool = std::make_shared<token_pool>();
    pool->wait(
        asio::bind_executor(ctx.get_executor(), [&calls, owned = std::move(owned)](error_code, int) { ++calls; }));
  }
  BOOST_TEST(handler_alive.expired());
  ctx.run();
  BOOST_TEST(calls == 0);
}

// A grant and a cancellation race on two threads of a pool, many times: each
// round ends with exactly one outcome for the waiter, and the token is never
// lost: either the waiter has it, or it is back in the pool.
BOOST_AUTO_TEST_CASE(a_grant_racing_a_cancellation_gives_exactly_one_outcome_and_never_loses_the_token,
                     *boost::unit_test::timeout(60))
{
  constexpr int rounds = 1000;
  constexpr int round_token = 42;
  asio::thread_pool threads(4);
  int granted = 0;
  int aborted = 0;
  int wrong = 0;
  for (int round = 0; round < rounds; ++round) {
    auto pool = std::make_shared<token_pool>();
    asio::cancellation_signal signal;
    std::atomic<int> calls{0};
    std::atomic<int> token{-1};
    std::atomic<bool> was_aborted{false};
    auto strand = asio::make_strand(threads);
    pool->wait(asio::bind_cancellation_slot(signal.slot(), asio::bind_executor(strand, [&](error_code ec, int t) {
                                              was_aborted = ec == asio::error::operation_aborted;
                                              token = t;
                                              ++calls;
                                            })));
    std::promise<void> go;
    auto ready = go.get_future().share();
    // Emitting from the strand keeps the slot's single-threaded contract:
    // the completion clears the slot on the same strand.
    asio::post(strand, [&signal, ready] {
      ready.wait();
      signal.emit(asio::cancellation_type::terminal);
    });
    asio::post(threads, [pool, ready] {
      ready.wait();
      pool->give(round_token);
    });
    go.set_value();
    if (!wait_until([&] { return calls.load() == 1; }, 10s)) {
      ++wrong;
      break;
    }
    // Both sides have run once calls is 1 and the pool settled.
    BOOST_REQUIRE(wait_until([&] { return pool->free_tokens() + (was_aborted ? 0U : 1U) == 1U; }, 10s));
    if (was_aborted.load()) {
      ++aborted;
      wrong += token.load() == 0 ? 0 : 1; // a default value, no token
    } else {
      ++granted;
      wrong += token.load() == round_token ? 0 : 1;
    }
    wrong += pool->waiting() == 0U ? 0 : 1;
  }
  threads.join();
  BOOST_TEST(wrong == 0);
  BOOST_TEST(granted + aborted == rounds);
  BOOST_TEST_MESSAGE("granted " << granted << ", cancelled first " << aborted);
}

BOOST_AUTO_TEST_SUITE_END() // waiter_queue_tests
