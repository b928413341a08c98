# Warning flags live on an interface target that fanout's own targets link
# privately, so they never leak to consumers. -Werror comes from
# CMAKE_COMPILE_WARNING_AS_ERROR (set by the CI presets), not from here.
add_library(fanout_warnings INTERFACE)
target_compile_options(fanout_warnings INTERFACE
  $<$<CXX_COMPILER_ID:GNU,Clang>:-Wall -Wextra -Wpedantic -Wshadow -Wconversion -Wsign-conversion
    -Wnon-virtual-dtor -Wold-style-cast -Wcast-align -Woverloaded-virtual>
  # Not -Wnull-dereference: at -O2 g++ 12 reports false positives inside Asio.
  # g++ 12's TSan warns about std::atomic_thread_fence in Asio.
  $<$<AND:$<CXX_COMPILER_ID:GNU>,$<BOOL:${FANOUT_TSAN}>>:-Wno-tsan>)
