# cmake -DMODE=... -DCONSUMER=... -DSCRATCH=... [-DFANOUT_BUILD_DIR=...] -DFANOUT_SOURCE_DIR=... -DARGS=... -P consume.cmake
file(REMOVE_RECURSE ${SCRATCH})
file(MAKE_DIRECTORY ${SCRATCH})

function(run)
  execute_process(COMMAND ${ARGN} RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "failed (${rc}): ${ARGN}\n${out}\n${err}")
  endif()
  message(STATUS "${out}")
endfunction()

set(configure_args ${ARGS} -DFANOUT_CONSUMER_MODE=${MODE} -DFANOUT_SOURCE_DIR=${FANOUT_SOURCE_DIR})
if(MODE STREQUAL "find_package")
  # Install the already-built library into a scratch prefix, as a user would.
  run(${CMAKE_COMMAND} --install ${FANOUT_BUILD_DIR} --prefix ${SCRATCH}/prefix)
  list(APPEND configure_args -DCMAKE_PREFIX_PATH=${SCRATCH}/prefix)
  if(NOT EXISTS ${SCRATCH}/prefix/lib/pkgconfig/fanout.pc)
    message(FATAL_ERROR "fanout.pc was not installed")
  endif()
endif()
run(${CMAKE_COMMAND} -S ${CONSUMER} -B ${SCRATCH}/build ${configure_args})
run(${CMAKE_COMMAND} --build ${SCRATCH}/build -j2)
run(${SCRATCH}/build/consumer)
