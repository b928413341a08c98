// Where a map's results wait for their consumer: ordered cells (collect maps
// and ordered streams) or a queue in completion order (as-completed streams).
#pragma once

#include "fanout/detail/lazy_deque.hpp"

#include <cstddef>
#include <optional>
#include <utility>
#include <vector>

namespace fanout::detail {

/// One cell per item, in input order. A cell is written by its item alone
/// (through the pointer add() gave), and read by the consumer: collect maps
/// read every cell once all items have finished; ordered streams read the
/// front cell under the engine's lock once it holds a value. A deque keeps
/// cells at stable addresses while later items are added.
template <typename S>
class ordered_cells
{
public:
  using cell = std::optional<S>;

  cell* add() { return &cells_.emplace_back(); }

  /// Allocates the collected vector now, for @p n items, while the heap is
  /// tidy: one large allocation at the end of a map, just after its items
  /// freed their frames, costs the allocator a sweep over those blocks.
  void reserve(std::size_t n)
  {
    cells_.reserve(n);
    out_.reserve(n);
  }

  /// The front item's result, if it has one (ordered streams).
  std::optional<S> pop_ready()
  {
    if (cells_.empty() || !cells_.front().has_value())
      return std::nullopt;
    std::optional<S> out(std::move(cells_.front()));
    cells_.pop_front();
    return out;
  }

  /// Every result, in input order (collect maps, once every item finished).
  std::vector<S> take_all()
  {
    out_.reserve(cells_.size()); // nothing to do if reserved
    for (auto& c : cells_)
      out_.push_back(std::move(*c));
    cells_.clear();
    return std::move(out_);
  }

private:
  lazy_deque<cell> cells_;
  std::vector<S> out_;
};

/// Results in the order items finished, each with its input index.
template <typename S>
class completion_queue
{
public:
  using cell = void;

  void push(std::size_t index, S value) { ready_.emplace_back(index, std::move(value)); }

  std::optional<std::pair<std::size_t, S>> pop_ready()
  {
    if (ready_.empty())
      return std::nullopt;
    std::optional<std::pair<std::size_t, S>> out(std::move(ready_.front()));
    ready_.pop_front();
    return out;
  }

private:
  lazy_deque<std::pair<std::size_t, S>> ready_;
};

} // namespace fanout::detail
