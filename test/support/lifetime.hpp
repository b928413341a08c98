// Test helpers: a value type that counts its constructions, copies, moves and
// destructions (safe to use from any thread), and items that make or hold such
// values.
#pragma once

#include "tracker.hpp"

#include <fanout/sleep.hpp>

#include <boost/asio/awaitable.hpp>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <utility>

namespace fanout::test {

/// What happened to the counted values of one test, from any thread.
struct lifetime_counts
{
  std::atomic<std::int64_t> constructed{0}; // made from a value (or default-made)
  std::atomic<std::int64_t> copied{0};      // copy-constructed or copy-assigned
  std::atomic<std::int64_t> moved{0};       // move-constructed or move-assigned
  std::atomic<std::int64_t> copy_constructed{0};
  std::atomic<std::int64_t> move_constructed{0};
  std::atomic<std::int64_t> destroyed{0};

  /// Objects alive now (assignments make no new object).
  [[nodiscard]] std::int64_t live() const
  {
    return constructed.load() + copy_constructed.load() + move_constructed.load() - destroyed.load();
  }
};

/// A value that reports its whole life to a lifetime_counts. The counts must
/// outlive every object. Default-constructible (fanout::task<T> and the
/// completion signatures need it) with the counts of default_counts().
class counted
{
public:
  /// The counts default-constructed objects report to.
  static lifetime_counts& default_counts()
  {
    static lifetime_counts counts;
    return counts;
  }

  counted() : counted(default_counts(), -1) {}
  counted(lifetime_counts& counts, int value) : counts_(&counts), value_(value) { ++counts_->constructed; }
  counted(const counted& other) : counts_(other.counts_), value_(other.value_)
  {
    ++counts_->copied;
    ++counts_->copy_constructed;
  }
  counted(counted&& other) noexcept : counts_(other.counts_), value_(other.value_)
  {
    ++counts_->moved;
    ++counts_->move_constructed;
  }
  counted& operator=(const counted& other)
  {
    if (this != &other) {
      value_ = other.value_;
      ++other.counts_->copied;
    }
    return *this;
  }
  counted& operator=(counted&& other) noexcept
  {
    if (this != &other) {
      value_ = other.value_;
      ++other.counts_->moved;
    }
    return *this;
  }
  ~counted() { ++counts_->destroyed; }

  [[nodiscard]] int value() const noexcept { return value_; }

private:
  lifetime_counts* counts_;
  int value_;
};

/// A counted value made by a coroutine, after suspending once if asked.
inline boost::asio::awaitable<counted> make_counted(lifetime_counts& counts, int i, bool suspend)
{
  if (suspend)
    co_await fanout::sleep(std::chrono::milliseconds(0));
  co_return counted(counts, i);
}

/// An item that holds a counted value in its frame while it sleeps, then
/// returns it; in flight in @p items for its whole life, however it ends.
inline boost::asio::awaitable<counted> held_value(tracker& items, lifetime_counts& counts, int i,
                                                  fanout::clock::duration delay)
{
  const in_flight scope(items);
  counted held(counts, i);
  co_await fanout::sleep(delay);
  co_return std::move(held);
}

} // namespace fanout::test
