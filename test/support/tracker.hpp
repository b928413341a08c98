// Counting items in flight: how many run now, the most at once, and how they
// ended. Safe from any thread.
#pragma once

#include <fanout/sleep.hpp>

#include <boost/asio/awaitable.hpp>
#include <boost/asio/error.hpp>
#include <boost/system/system_error.hpp>

#include <atomic>
#include <stdexcept>

namespace fanout::test {

/// Items in flight (from any thread), the most at once, and how they ended.
struct tracker
{
  std::atomic<int> now{0};
  std::atomic<int> most{0};
  std::atomic<int> started{0};
  std::atomic<int> finished{0};
  std::atomic<int> aborted{0};

  void enter()
  {
    ++started;
    const int current = ++now;
    int seen = most.load();
    while (current > seen && !most.compare_exchange_weak(seen, current)) {
    }
  }
};

/// An item of @p t, in flight for this object's lifetime.
class in_flight
{
public:
  explicit in_flight(tracker& t) : tracker_(t) { tracker_.enter(); }
  in_flight(const in_flight&) = delete;
  in_flight& operator=(const in_flight&) = delete;
  ~in_flight() { --tracker_.now; }

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

/// An item that sleeps @p delay, then throws std::runtime_error("boom");
/// in flight in @p t meanwhile.
inline boost::asio::awaitable<int> throws_after(tracker& t, fanout::clock::duration delay)
{
  in_flight guard(t);
  co_await fanout::sleep(delay);
  throw std::runtime_error("boom");
}

} // namespace fanout::test
