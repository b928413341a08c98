# Generates fanout.pc (see cmake/fanout.pc.in) and installs it.
#
# The prefix is computed from the .pc file's own place (${pcfiledir}), so that
# `cmake --install --prefix P` gives a fanout.pc that points into P.
if(IS_ABSOLUTE "${CMAKE_INSTALL_LIBDIR}")
  set(FANOUT_PC_PREFIX "${CMAKE_INSTALL_PREFIX}")
  set(FANOUT_PC_LIBDIR "${CMAKE_INSTALL_LIBDIR}")
else()
  file(RELATIVE_PATH pc_to_prefix "/${CMAKE_INSTALL_LIBDIR}/pkgconfig" "/")
  string(REGEX REPLACE "/$" "" pc_to_prefix "${pc_to_prefix}")
  set(FANOUT_PC_PREFIX "\${pcfiledir}/${pc_to_prefix}")
  set(FANOUT_PC_LIBDIR "\${prefix}/${CMAKE_INSTALL_LIBDIR}")
endif()
if(IS_ABSOLUTE "${CMAKE_INSTALL_INCLUDEDIR}")
  set(FANOUT_PC_INCLUDEDIR "${CMAKE_INSTALL_INCLUDEDIR}")
else()
  set(FANOUT_PC_INCLUDEDIR "\${prefix}/${CMAKE_INSTALL_INCLUDEDIR}")
endif()

# Boost's include directories, except those the compiler searches anyway.
get_target_property(boost_includes Boost::headers INTERFACE_INCLUDE_DIRECTORIES)
set(FANOUT_PC_BOOST_CFLAGS "")
foreach(dir IN LISTS boost_includes)
  if(NOT dir IN_LIST CMAKE_CXX_IMPLICIT_INCLUDE_DIRECTORIES AND NOT dir STREQUAL "/usr/include")
    string(APPEND FANOUT_PC_BOOST_CFLAGS " -I${dir}")
  endif()
endforeach()

configure_file(${PROJECT_SOURCE_DIR}/cmake/fanout.pc.in ${PROJECT_BINARY_DIR}/fanout.pc @ONLY)
install(FILES ${PROJECT_BINARY_DIR}/fanout.pc DESTINATION ${CMAKE_INSTALL_LIBDIR}/pkgconfig)
