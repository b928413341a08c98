// A single-pass input range that counts what is pulled from it: proves that
// maps read their input lazily, only as slots free up.
#pragma once

#include <atomic>
#include <cstddef>
#include <ranges>

namespace fanout::test {

/// The integers 0, 1, ..., size-1 as a single-pass, unsized input range;
/// `pulled` counts the elements dereferenced (from any thread).
class counting_input
{
public:
  struct sentinel
  {
  };

  class iterator
  {
  public:
    using value_type = int;
    using difference_type = std::ptrdiff_t;

    iterator() = default;
    explicit iterator(counting_input* range) : range_(range) {}

    int operator*() const
    {
      ++range_->pulled;
      return range_->next_;
    }
    iterator& operator++()
    {
      ++range_->next_;
      return *this;
    }
    void operator++(int) { ++*this; }
    friend bool operator==(const iterator& it, sentinel) { return it.range_->at_end(); }

  private:
    counting_input* range_ = nullptr;
  };

  explicit counting_input(int size) : size_(size) {}
  iterator begin() { return iterator(this); }
  [[nodiscard]] sentinel end() const { return {}; }
  [[nodiscard]] bool at_end() const { return next_ >= size_; }

  std::atomic<int> pulled{0};

private:
  int size_;
  int next_ = 0;
};

static_assert(std::ranges::input_range<counting_input&>);
static_assert(!std::ranges::forward_range<counting_input&>);
static_assert(!std::ranges::sized_range<counting_input&>);

} // namespace fanout::test
