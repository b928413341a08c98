// A cancellation signal whose one handler lives inside the signal: no
// allocation per connection.
#pragma once

#include <boost/asio/cancellation_type.hpp>

#include <cstddef>
#include <new>
#include <type_traits>
#include <utility>

namespace fanout::detail {

/// Like asio::cancellation_signal, but the handler emplaced into its slot is
/// constructed inside the signal when it fits in @p Capacity bytes (the
/// handlers that cancellation_state and co_spawn emplace do, given room), and
/// on the heap otherwise. Its slot models what Asio asks of a cancellation
/// slot (is_connected, has_handler, emplace, assign, clear), so it can be
/// bound with bind_cancellation_slot or given to a cancellation_state.
///
/// Invariant: ops_ is null, or the signal holds a live handler of the type
/// ops_ was made for: in storage_, or on the heap with its address in
/// storage_. Not thread-safe: connecting, emitting and clearing happen on one
/// executor at a time, as with Asio's own signal.
template <std::size_t Capacity>
class inline_cancellation_signal
{
  static_assert(Capacity >= sizeof(void*));

public:
  class slot_type
  {
  public:
    slot_type() noexcept = default;

    [[nodiscard]] bool is_connected() const noexcept { return signal_ != nullptr; }
    [[nodiscard]] bool has_handler() const noexcept { return signal_ != nullptr && signal_->ops_ != nullptr; }

    /// Destroys the present handler, if any, and constructs an H in its place.
    template <typename H, typename... Args>
    H& emplace(Args&&... args)
    {
      return signal_->template emplace<H>(std::forward<Args>(args)...);
    }

    template <typename H>
    std::decay_t<H>& assign(H&& handler)
    {
      return emplace<std::decay_t<H>>(std::forward<H>(handler));
    }

    /// Destroys the present handler, if any.
    void clear() noexcept
    {
      if (signal_ != nullptr)
        signal_->clear();
    }

    friend bool operator==(const slot_type&, const slot_type&) noexcept = default;

  private:
    friend class inline_cancellation_signal;
    explicit slot_type(inline_cancellation_signal* signal) noexcept : signal_(signal) {}
    inline_cancellation_signal* signal_ = nullptr;
  };

  inline_cancellation_signal() noexcept = default;
  ~inline_cancellation_signal() { clear(); }
  inline_cancellation_signal(const inline_cancellation_signal&) = delete;
  inline_cancellation_signal& operator=(const inline_cancellation_signal&) = delete;

  /// Calls the handler, if any, with @p type.
  void emit(boost::asio::cancellation_type_t type)
  {
    if (ops_ != nullptr)
      ops_->call(storage_, type);
  }

  [[nodiscard]] slot_type slot() noexcept { return slot_type(this); }

private:
  struct ops
  {
    void (*call)(void* storage, boost::asio::cancellation_type_t);
    void (*destroy)(void* storage) noexcept;
  };

  template <typename H>
  static constexpr bool fits = sizeof(H) <= Capacity && alignof(H) <= alignof(void*);

  template <typename H>
  static H* handler_in(void* storage) noexcept
  {
    if constexpr (fits<H>)
      return std::launder(static_cast<H*>(storage));
    else
      return *std::launder(static_cast<H**>(storage));
  }

  template <typename H>
  static void call(void* storage, boost::asio::cancellation_type_t type)
  {
    (*handler_in<H>(storage))(type);
  }

  template <typename H>
  static void destroy(void* storage) noexcept
  {
    if constexpr (fits<H>)
      handler_in<H>(storage)->~H();
    else
      delete handler_in<H>(storage);
  }

  template <typename H>
  static constexpr ops ops_for{&call<H>, &destroy<H>};

  template <typename H, typename... Args>
  H& emplace(Args&&... args)
  {
    clear();
    H* h = nullptr;
    if constexpr (fits<H>)
      h = ::new (static_cast<void*>(storage_)) H(std::forward<Args>(args)...);
    else
      ::new (static_cast<void*>(storage_)) H*(h = new H(std::forward<Args>(args)...));
    ops_ = &ops_for<H>;
    return *h;
  }

  void clear() noexcept
  {
    if (ops_ != nullptr)
      std::exchange(ops_, nullptr)->destroy(storage_);
  }

  const ops* ops_ = nullptr;
  alignas(void*) unsigned char storage_[Capacity];
};

} // namespace fanout::detail
