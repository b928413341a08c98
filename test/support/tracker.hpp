// Counting items in flight: how many run now, the most at once, and how they
// ended; and the small tracked items the suites share. Safe from any thread.
// The only in-flight tracker of the suites: use it rather than a local one.
#pragma once

#include "outcomes.hpp"

#include <fanout/sleep.hpp>

#include <boost/asio/awaitable.hpp>
#include <boost/asio/error.hpp>
#include <boost/system/system_error.hpp>

#include <atomic>
#include <stdexcept>
#include <string>
#include <utility>

namespace fanout::test {

/// Items in flight (from any thread), the most at once, and how they ended.
struct tracker
{
  std::atomic<int> now{0};      // in flight now
  std::atomic<int> most{0};     // the most ever in flight at once
  std::atomic<int> started{0};  // entered
  std::atomic<int> ended{0};    // left, however they ended
  std::atomic<int> finished{0}; // ran to their end (counted by the items themselves)
  std::atomic<int> aborted{0};  // saw operation_aborted (counted by the items themselves)

  void enter()
  {
    ++started;
    const int current = ++now;
    int seen = most.load();
    while (current > seen && !most.compare_exchange_weak(seen, current)) {
    }
  }
  void leave()
  {
    ++ended;
    --now;
  }
  /// Back to zero, for a tracker shared by several tests.
  void reset()
  {
    now = 0;
    most = 0;
    started = 0;
    ended = 0;
    finished = 0;
    aborted = 0;
  }
};

/// An item of @p t, in flight for this object's lifetime (however its scope
/// ends: it returns, throws, or its frame is destroyed while suspended).
class in_flight
{
public:
  explicit in_flight(tracker& t) : tracker_(t) { tracker_.enter(); }
  in_flight(const in_flight&) = delete;
  in_flight& operator=(const in_flight&) = delete;
  ~in_flight() { tracker_.leave(); }

private:
  tracker& tracker_;
};

/// An item that sleeps @p delay, then gives @p value; counted by @p t
/// (finished, or aborted when cancelled).
inline boost::asio::awaitable<int> tracked_value(tracker& t, fanout::clock::duration delay, int value)
{
  in_flight guard(t);
  try {
    co_await fanout::sleep(delay);
  } catch (const boost::system::system_error& e) {
    if (e.code() == boost::asio::error::operation_aborted)
      ++t.aborted;
    throw;
  }
  ++t.finished;
  co_return value;
}

/// tracked_value without a value.
inline boost::asio::awaitable<void> tracked_sleep(tracker& t, fanout::clock::duration delay)
{
  (void)co_await tracked_value(t, delay, 0);
}

/// An item that sleeps @p delay, then throws std::runtime_error("boom");
/// in flight in @p t meanwhile.
inline boost::asio::awaitable<int> throws_after(tracker& t, fanout::clock::duration delay)
{
  in_flight guard(t);
  co_await fanout::sleep(delay);
  throw std::runtime_error("boom");
}

/// The same, throwing std::runtime_error(@p what).
inline boost::asio::awaitable<int> throws_after(tracker& t, fanout::clock::duration delay, std::string what)
{
  in_flight guard(t);
  co_await fanout::sleep(delay);
  throw std::runtime_error(what);
}

/// The same, throwing tagged_error(@p tag).
inline boost::asio::awaitable<int> throws_after(tracker& t, fanout::clock::duration delay, int tag)
{
  in_flight guard(t);
  co_await fanout::sleep(delay);
  throw tagged_error(tag);
}

} // namespace fanout::test
