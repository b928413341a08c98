# cmake -DINCLUDE_DIR=<repo>/include -P layering.cmake
# The headers depend downward only: public headers (include/fanout/*.hpp) may
# include detail headers, a detail header (include/fanout/detail/*.hpp) only
# other detail headers. Fails naming each detail header that includes a
# public one.
file(GLOB details "${INCLUDE_DIR}/fanout/detail/*.hpp")
if(NOT details)
  message(FATAL_ERROR "no detail headers under ${INCLUDE_DIR}/fanout/detail")
endif()
set(upward "")
foreach(header IN LISTS details)
  file(STRINGS "${header}" public_includes REGEX "^[ \t]*#[ \t]*include[ \t]*[\"<]fanout/[A-Za-z0-9_]+\\.hpp[\">]")
  foreach(line IN LISTS public_includes)
    get_filename_component(name "${header}" NAME)
    string(STRIP "${line}" line)
    list(APPEND upward "detail/${name}: ${line}")
  endforeach()
endforeach()
if(upward)
  list(JOIN upward "\n  " upward)
  message(FATAL_ERROR "detail headers that include a public header:\n  ${upward}")
endif()
list(LENGTH details count)
message(STATUS "${count} detail headers include only detail headers")
