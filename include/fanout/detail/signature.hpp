// The completion signature of an operation that gives a T or fails with an
// exception: the one trait every fanout operation of that kind uses.
#pragma once

#include <exception>

namespace fanout::detail {

/// `void(std::exception_ptr, T)`, or `void(std::exception_ptr)` for void.
template <typename T>
struct value_signature
{
  using type = void(std::exception_ptr, T);
};
template <>
struct value_signature<void>
{
  using type = void(std::exception_ptr);
};

template <typename T>
using value_signature_t = typename value_signature<T>::type;

} // namespace fanout::detail
