// fanout/timer.hpp — the post's `timer` context manager as an RAII guard.
#pragma once

#include <chrono>
#include <functional>
#include <iosfwd>
#include <string>
#include <string_view>

namespace fanout {

/// RAII guard that measures the time between its construction and its
/// destruction, like the post's `with timer("..."):` block.
///
/// By default it prints its label when made and the elapsed seconds (as a
/// plain number, the way Python prints `time.time() - T`) when destroyed. It
/// can print to any `std::ostream`, or record into a sink instead of printing.
///
/// @par Thread safety
/// `elapsed()` may be called from any thread; the guard itself is not shared.
///
/// @code
/// {
///   fanout::timer t("Normal synchronous code");
///   for (int i = 0; i < 5; ++i) std::cout << a() << '\n';
/// } // prints 5.00...
/// @endcode
class timer
{
public:
  /// The clock the guard measures with.
  using clock = std::chrono::steady_clock;
  /// Receives the label and the elapsed time when the guard is destroyed.
  using sink = std::function<void(std::string_view label, std::chrono::duration<double> elapsed)>;

  /// Prints @p label to `std::cout` now and the elapsed seconds on destruction.
  explicit timer(std::string label);
  /// Prints @p label to @p out now and the elapsed seconds on destruction.
  timer(std::string label, std::ostream& out);
  /// Prints nothing; calls @p record with the label and the elapsed time on
  /// destruction (a null sink records nothing). The sink runs in the
  /// destructor, which is `noexcept`: a sink that throws terminates.
  timer(std::string label, sink record);

  timer(const timer&) = delete;
  timer& operator=(const timer&) = delete;
  /// Prints the elapsed seconds, or gives them to the sink.
  ~timer();

  /// Time since construction.
  [[nodiscard]] clock::duration elapsed() const noexcept { return clock::now() - start_; }
  /// Time since construction in seconds.
  [[nodiscard]] double elapsed_seconds() const noexcept { return std::chrono::duration<double>(elapsed()).count(); }
  /// The label given at construction.
  [[nodiscard]] const std::string& label() const noexcept { return label_; }

private:
  std::string label_;
  std::ostream* out_ = nullptr;
  sink record_;
  clock::time_point start_;
};

} // namespace fanout
