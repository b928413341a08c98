// A queue with stable element addresses that allocates nothing until it
// holds an element, and then few times.
#pragma once

#include <algorithm>
#include <cstddef>
#include <iterator>
#include <memory>
#include <new>
#include <utility>
#include <vector>

namespace fanout::detail {

/// The few std::deque operations the map engine uses (emplace_back, front,
/// pop_front, iteration), on chunks whose capacity doubles up to a bound.
/// libstdc++'s std::deque allocates when constructed, and then one 512-byte
/// chunk per few elements: for a map's places and result cells that is a
/// few hundredths of an allocation per item; here it is about log2(n) for n
/// elements. Element addresses are stable: elements are never moved.
///
/// Invariant: every chunk but the front one holds at least one element, and
/// the elements are, in order, chunks_[0][begin, end), chunks_[1][begin, end)...
template <typename T>
class lazy_deque
{
  struct chunk
  {
    T* data;
    std::size_t capacity;
    std::size_t begin;
    std::size_t end;
  };

public:
  class iterator
  {
  public:
    using iterator_category = std::forward_iterator_tag;
    using value_type = T;
    using difference_type = std::ptrdiff_t;
    using pointer = T*;
    using reference = T&;

    iterator() = default;
    iterator(std::vector<chunk>* chunks, std::size_t c, std::size_t i) : chunks_(chunks), c_(c), i_(i) {}

    T& operator*() const { return (*chunks_)[c_].data[i_]; }
    T* operator->() const { return &**this; }
    iterator& operator++()
    {
      if (++i_ == (*chunks_)[c_].end) {
        ++c_;
        i_ = c_ < chunks_->size() ? (*chunks_)[c_].begin : 0;
      }
      return *this;
    }
    iterator operator++(int)
    {
      iterator old = *this;
      ++*this;
      return old;
    }
    // Value-initialised iterators compare equal: an empty range.
    friend bool operator==(const iterator& a, const iterator& b) noexcept { return a.c_ == b.c_ && a.i_ == b.i_; }

  private:
    std::vector<chunk>* chunks_ = nullptr;
    std::size_t c_ = 0;
    std::size_t i_ = 0;
  };

  lazy_deque() = default;
  lazy_deque(lazy_deque&& other) noexcept : chunks_(std::move(other.chunks_)), size_(std::exchange(other.size_, 0))
  {
    other.chunks_.clear();
  }
  lazy_deque& operator=(lazy_deque&& other) noexcept
  {
    if (this != &other) {
      clear();
      chunks_ = std::move(other.chunks_);
      other.chunks_.clear();
      size_ = std::exchange(other.size_, 0);
    }
    return *this;
  }
  ~lazy_deque() { clear(); }

  template <typename... Args>
  T& emplace_back(Args&&... args)
  {
    if (chunks_.empty() || chunks_.back().end == chunks_.back().capacity)
      grow();
    chunk& c = chunks_.back();
    T* p = ::new (static_cast<void*>(c.data + c.end)) T(std::forward<Args>(args)...);
    ++c.end;
    ++size_;
    return *p;
  }

  /// About @p n elements are expected: the first chunk is made for them
  /// (up to a bound). Does nothing once an element was added.
  void reserve(std::size_t n) noexcept
  {
    if (chunks_.empty())
      first_capacity_ = std::clamp(n, min_capacity, max_capacity);
  }

  [[nodiscard]] bool empty() const noexcept { return size_ == 0; }
  [[nodiscard]] std::size_t size() const noexcept { return size_; }
  /// Not empty().
  T& front() { return chunks_.front().data[chunks_.front().begin]; }
  /// Not empty().
  void pop_front()
  {
    chunk& c = chunks_.front();
    std::destroy_at(c.data + c.begin);
    ++c.begin;
    --size_;
    if (c.begin != c.end)
      return;
    if (chunks_.size() == 1) {
      c.begin = c.end = 0; // the only chunk: kept for the next elements
      return;
    }
    release(c);
    chunks_.erase(chunks_.begin());
  }
  /// Removes every element and frees the memory.
  void clear() noexcept
  {
    for (chunk& c : chunks_) {
      std::destroy(c.data + c.begin, c.data + c.end);
      release(c);
    }
    std::vector<chunk>().swap(chunks_);
    size_ = 0;
  }

  iterator begin() noexcept { return size_ == 0 ? end() : iterator(&chunks_, 0, chunks_.front().begin); }
  iterator end() noexcept { return size_ == 0 ? iterator() : iterator(&chunks_, chunks_.size(), 0); }

private:
  static constexpr std::size_t min_capacity = 8;
  // Chunks stay at or under 64 KiB (and 4,096 elements): below glibc's
  // mmap threshold, so that a map's chunks come from the heap and go back to
  // it, not to and from the kernel page by page.
  static constexpr std::size_t max_capacity =
      std::clamp<std::size_t>((std::size_t{64} << 10) / sizeof(T), min_capacity, 4096);

  void grow()
  {
    const std::size_t capacity =
        chunks_.empty() ? first_capacity_ : std::min(chunks_.back().capacity * 2, max_capacity);
    if (chunks_.size() == chunks_.capacity()) // may throw: before anything is allocated
      chunks_.reserve(std::max<std::size_t>(16, 2 * chunks_.size()));
    T* data = std::allocator<T>().allocate(capacity);
    chunks_.push_back(chunk{data, capacity, 0, 0});
  }

  static void release(chunk& c) noexcept { std::allocator<T>().deallocate(c.data, c.capacity); }

  std::vector<chunk> chunks_;
  std::size_t size_ = 0;
  std::size_t first_capacity_ = min_capacity;
};

} // namespace fanout::detail
