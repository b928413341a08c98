// A std::deque that allocates nothing until it holds an element.
#pragma once

#include <cstddef>
#include <deque>
#include <optional>
#include <utility>

namespace fanout::detail {

/// The few std::deque operations the map engine uses, on a deque made on
/// first insertion. libstdc++'s std::deque allocates its map and a first
/// chunk when constructed (two allocations each), which a map of plain
/// inline calls, and every map without an as-completed stream, never uses.
/// Element addresses are stable while elements are added at the back.
template <typename T>
class lazy_deque
{
public:
  using iterator = typename std::deque<T>::iterator;

  template <typename... Args>
  T& emplace_back(Args&&... args)
  {
    if (!deque_)
      deque_.emplace();
    return deque_->emplace_back(std::forward<Args>(args)...);
  }

  [[nodiscard]] bool empty() const noexcept { return !deque_ || deque_->empty(); }
  [[nodiscard]] std::size_t size() const noexcept { return deque_ ? deque_->size() : 0; }
  /// Not empty().
  T& front() { return deque_->front(); }
  /// Not empty().
  void pop_front() { deque_->pop_front(); }
  /// Removes every element and frees the deque's memory.
  void clear() noexcept { deque_.reset(); }

  // Value-initialised iterators compare equal: an empty range.
  iterator begin() noexcept { return deque_ ? deque_->begin() : iterator(); }
  iterator end() noexcept { return deque_ ? deque_->end() : iterator(); }

private:
  std::optional<std::deque<T>> deque_;
};

} // namespace fanout::detail
