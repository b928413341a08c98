// Test helpers: a value type that counts its constructions, copies, moves and
// destructions, and a counter of items running (with its peak), both safe to
// use from any thread.
#pragma once

#include <atomic>
#include <cstdint>

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

/// Items running now, the most ever at once, and how many started and ended.
struct live_items
{
  std::atomic<std::int64_t> now{0};
  std::atomic<std::int64_t> peak{0};
  std::atomic<std::int64_t> started{0};
  std::atomic<std::int64_t> ended{0};

  void enter()
  {
    ++started;
    const std::int64_t current = ++now;
    std::int64_t seen = peak.load();
    while (current > seen && !peak.compare_exchange_weak(seen, current)) {
    }
  }
  void leave()
  {
    ++ended;
    --now;
  }
};

/// Marks an item live for its whole scope, however it ends (returns, throws,
/// or is destroyed while suspended).
class item_scope
{
public:
  explicit item_scope(live_items& items) : items_(items) { items_.enter(); }
  item_scope(const item_scope&) = delete;
  item_scope& operator=(const item_scope&) = delete;
  ~item_scope() { items_.leave(); }

private:
  live_items& items_;
};

} // namespace fanout::test
