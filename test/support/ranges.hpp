// Small ranges for tests, instead of std::views (clang 14 cannot compile
// libstdc++ 12's views, and the clang build runs these tests too).
#pragma once

#include <cstddef>
#include <functional>
#include <istream>
#include <iterator>

namespace fanout::test {

/// The integers [first, last) as a sized forward range of prvalues, like
/// std::views::iota(first, last); each element is f(i) (the identity by default).
template <typename F = std::identity>
class iota_range
{
public:
  class iterator
  {
  public:
    using iterator_concept = std::forward_iterator_tag;
    using iterator_category = std::forward_iterator_tag;
    using value_type = std::remove_cvref_t<std::invoke_result_t<const F&, int>>;
    using difference_type = std::ptrdiff_t;

    iterator() = default;
    iterator(int i, const F* f) : i_(i), f_(f) {}
    value_type operator*() const { return std::invoke(*f_, i_); }
    iterator& operator++()
    {
      ++i_;
      return *this;
    }
    iterator operator++(int)
    {
      auto copy = *this;
      ++i_;
      return copy;
    }
    friend bool operator==(const iterator& a, const iterator& b) { return a.i_ == b.i_; }

  private:
    int i_ = 0;
    const F* f_ = nullptr;
  };

  iota_range(int first, int last, F f = {}) : first_(first), last_(last < first ? first : last), f_(std::move(f)) {}
  iterator begin() const { return {first_, &f_}; }
  iterator end() const { return {last_, &f_}; }
  std::size_t size() const { return static_cast<std::size_t>(last_ - first_); }

private:
  int first_;
  int last_;
  F f_;
};

/// The integers [first, last), like std::views::iota(first, last).
inline iota_range<> iota(int first, int last)
{
  return {first, last};
}

/// f(i) for each integer i in [first, last), like iota | std::views::transform(f).
template <typename F>
iota_range<F> iota_transform(int first, int last, F f)
{
  return {first, last, std::move(f)};
}

/// The values of type T read from a stream, a single-pass input range like
/// std::views::istream<T>.
template <typename T>
class istream_range
{
public:
  class iterator
  {
  public:
    using iterator_concept = std::input_iterator_tag;
    using value_type = T;
    using difference_type = std::ptrdiff_t;

    iterator() = default;
    explicit iterator(istream_range* r) : r_(r) {}
    const T& operator*() const { return r_->value_; }
    iterator& operator++()
    {
      r_->read();
      return *this;
    }
    void operator++(int) { ++*this; }
    friend bool operator==(const iterator& it, std::default_sentinel_t) { return it.r_->at_end(); }

  private:
    istream_range* r_ = nullptr;
  };

  explicit istream_range(std::istream& in) : in_(&in) {}
  iterator begin()
  {
    read();
    return iterator(this);
  }
  std::default_sentinel_t end() const { return {}; }
  bool at_end() const { return !*in_; }

private:
  void read() { *in_ >> value_; }

  std::istream* in_;
  T value_{};
};

} // namespace fanout::test
