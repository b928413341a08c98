#include "fanout/timer.hpp"

#include <array>
#include <charconv>
#include <iostream>
#include <utility>

namespace fanout {

timer::timer(std::string label) : timer(std::move(label), std::cout) {}

timer::timer(std::string label, std::ostream& out) : label_(std::move(label)), out_(&out)
{
  *out_ << label_ << '\n';
  out_->flush();
  start_ = clock::now();
}

timer::timer(std::string label, sink record)
    : label_(std::move(label)), record_(std::move(record)), start_(clock::now())
{}

timer::~timer()
{
  const auto spent = std::chrono::duration<double>(elapsed());
  if (out_ != nullptr) {
    // Like Python's print(float): the shortest text that round-trips.
    std::array<char, 32> text{};
    const auto end = std::to_chars(text.data(), text.data() + text.size(), spent.count()).ptr;
    out_->write(text.data(), end - text.data());
    *out_ << '\n';
    out_->flush();
  } else if (record_) {
    record_(label_, spent); // noexcept destructor: a throwing sink terminates
  }
}

} // namespace fanout
