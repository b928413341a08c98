// The completion signature of an operation that gives a T or fails with an
// exception: the one trait every fanout operation of that kind uses.
#pragma once

#include <exception>
#include <type_traits>

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

/// True if an operation with value_signature_t<T> can report a failure: void,
/// or a T to pass beside the exception (a default-constructed one, as
/// `asio::co_spawn` requires). Other value types go through an awaitable form
/// that carries the value in a `std::optional`, and need only be
/// move-constructible.
template <typename T>
inline constexpr bool failure_carries_value_v = std::is_void_v<T> || std::is_default_constructible_v<T>;

} // namespace fanout::detail
