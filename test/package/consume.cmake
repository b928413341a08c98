# cmake -DMODE=... -DCONSUMER=... -DSCRATCH=... [-DFANOUT_BUILD_DIR=...] -DFANOUT_SOURCE_DIR=... -DARGS=...
#       -DVERSION=... [-DCXX=... -DCXX_FLAGS=... -DLINKER_FLAGS=...] [-DCPACK=... -DLIBDIR=...] -P consume.cmake
# MODE: find_package, add_subdirectory, FetchContent (from a git URL),
# pkg-config (the consumer compiled by the compiler alone, with pkg-config's flags)
# or cpack (the release packages: find_package in the unpacked .deb and .tar.gz).
# VERSION: fanout's project version; the package found and the headers must
# have it (the consumer checks FANOUT_VERSION_* against it).
file(REMOVE_RECURSE ${SCRATCH})
file(MAKE_DIRECTORY ${SCRATCH})

function(run)
  execute_process(COMMAND ${ARGN} RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "failed (${rc}): ${ARGN}\n${out}\n${err}")
  endif()
  message(STATUS "${out}")
endfunction()

# Installs the already-built library into a scratch prefix, as a user would.
function(install_into prefix)
  run(${CMAKE_COMMAND} --install ${FANOUT_BUILD_DIR} --prefix ${prefix})
  if(NOT EXISTS ${prefix}/lib/pkgconfig/fanout.pc)
    message(FATAL_ERROR "fanout.pc was not installed")
  endif()
endfunction()

if(NOT VERSION MATCHES "^([0-9]+)\\.([0-9]+)\\.([0-9]+)$")
  message(FATAL_ERROR "VERSION is not MAJOR.MINOR.PATCH: ${VERSION}")
endif()
set(version_defines -DFANOUT_CONSUMER_EXPECTS_VERSION_MAJOR=${CMAKE_MATCH_1}
    -DFANOUT_CONSUMER_EXPECTS_VERSION_MINOR=${CMAKE_MATCH_2} -DFANOUT_CONSUMER_EXPECTS_VERSION_PATCH=${CMAKE_MATCH_3})

# The fanout.pc in PC_DIR has version VERSION.
function(check_pc_version pc_dir)
  find_program(PKG_CONFIG pkg-config REQUIRED)
  set(ENV{PKG_CONFIG_PATH} ${pc_dir})
  execute_process(COMMAND ${PKG_CONFIG} --modversion fanout RESULT_VARIABLE rc OUTPUT_VARIABLE v ERROR_VARIABLE err
                  OUTPUT_STRIP_TRAILING_WHITESPACE)
  if(NOT rc EQUAL 0 OR NOT v STREQUAL VERSION)
    message(FATAL_ERROR "pkg-config --modversion fanout in ${pc_dir}: '${v}' (${err}), expected ${VERSION}")
  endif()
endfunction()

# The consumer configured in BUILD_DIR took fanout's CMake package from PREFIX.
function(check_found_in build_dir prefix)
  file(STRINGS ${build_dir}/CMakeCache.txt found REGEX "^fanout_DIR:")
  string(REGEX REPLACE "^[^=]*=" "" found "${found}")
  file(REAL_PATH "${found}" found)
  file(REAL_PATH "${prefix}" prefix)
  string(FIND "${found}/" "${prefix}/" at)
  if(NOT at EQUAL 0)
    message(FATAL_ERROR "find_package(fanout) took ${found}, not the package in ${prefix}")
  endif()
endfunction()

if(MODE STREQUAL "pkg-config")
  install_into(${SCRATCH}/prefix)
  find_program(PKG_CONFIG pkg-config REQUIRED)
  check_pc_version(${SCRATCH}/prefix/lib/pkgconfig)
  set(ENV{PKG_CONFIG_PATH} ${SCRATCH}/prefix/lib/pkgconfig)
  execute_process(COMMAND ${PKG_CONFIG} --cflags --libs fanout RESULT_VARIABLE rc OUTPUT_VARIABLE flags
                  ERROR_VARIABLE err OUTPUT_STRIP_TRAILING_WHITESPACE)
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "pkg-config --cflags --libs fanout failed: ${err}")
  endif()
  message(STATUS "pkg-config --cflags --libs fanout: ${flags}")
  if(flags MATCHES "-std=")
    message(FATAL_ERROR "fanout.pc forces a language standard: ${flags}")
  endif()
  string(REGEX MATCH "-I([^ ]*)" _ "${flags}")
  file(REAL_PATH "${CMAKE_MATCH_1}" include_dir)
  if(NOT include_dir STREQUAL "${SCRATCH}/prefix/include" OR NOT flags MATCHES "-pthread")
    message(FATAL_ERROR "fanout.pc names no -I${SCRATCH}/prefix/include or no -pthread: ${flags}")
  endif()
  # The consumer's own standard, later than fanout's, must stay its own.
  separate_arguments(flags UNIX_COMMAND "${flags}")
  separate_arguments(cxx_flags UNIX_COMMAND "${CXX_FLAGS} ${LINKER_FLAGS}")
  run(${CXX} -std=c++2b -DFANOUT_CONSUMER_EXPECTS_CXX23 ${version_defines} ${cxx_flags} ${CONSUMER}/main.cpp ${flags}
      -o ${SCRATCH}/consumer)
  run(${SCRATCH}/consumer)
  return()
endif()

set(consumer_mode ${MODE})
if(MODE STREQUAL "cpack")
  set(consumer_mode find_package)
endif()
set(configure_args ${ARGS} -DFANOUT_CONSUMER_MODE=${consumer_mode} -DFANOUT_SOURCE_DIR=${FANOUT_SOURCE_DIR}
    -DFANOUT_EXPECTED_VERSION=${VERSION})
if(MODE STREQUAL "find_package")
  install_into(${SCRATCH}/prefix)
  list(APPEND configure_args -DCMAKE_PREFIX_PATH=${SCRATCH}/prefix)
  set(found_in ${SCRATCH}/prefix)
elseif(MODE STREQUAL "cpack")
  # The packages of cmake/packaging.cmake, made as a user makes them (cpack
  # first brings the build tree up to date, a no-op after a build).
  find_program(DPKG dpkg REQUIRED)
  find_program(DPKG_DEB dpkg-deb REQUIRED)
  run(${CPACK} --config ${FANOUT_BUILD_DIR}/CPackConfig.cmake -B ${SCRATCH}/packages)
  execute_process(COMMAND ${DPKG} --print-architecture OUTPUT_VARIABLE arch OUTPUT_STRIP_TRAILING_WHITESPACE)
  set(deb ${SCRATCH}/packages/libfanout-dev_${VERSION}-1_${arch}.deb)
  file(GLOB tgz ${SCRATCH}/packages/fanout-${VERSION}-*.tar.gz)
  list(LENGTH tgz tgz_count)
  if(NOT EXISTS ${deb} OR NOT tgz_count EQUAL 1)
    file(GLOB made ${SCRATCH}/packages/*)
    message(FATAL_ERROR "expected libfanout-dev_${VERSION}-1_${arch}.deb and one fanout-${VERSION}-*.tar.gz: ${made}")
  endif()

  # The .deb's control fields.
  execute_process(COMMAND ${DPKG_DEB} --field ${deb} Package Version Architecture Depends Maintainer Description
                  RESULT_VARIABLE rc OUTPUT_VARIABLE control)
  message(STATUS "${control}")
  foreach(field IN ITEMS "Package: libfanout-dev\n" "Version: ${VERSION}-1\n" "Architecture: ${arch}\n"
                         "Depends: [^\n]*libboost1\\.81-dev" "Maintainer: [^\n]+<[^\n]+@[^\n]+>\n"
                         "Description: [^\n]+\n [^\n]+")
    if(NOT rc EQUAL 0 OR NOT control MATCHES "${field}")
      message(FATAL_ERROR "the .deb's control has no field matching '${field}'")
    endif()
  endforeach()

  # Unpacked without root, as a user's tree under /usr would be; the .tar.gz
  # must hold the same files, byte for byte.
  run(${DPKG_DEB} -x ${deb} ${SCRATCH}/deb)
  set(deb_prefix ${SCRATCH}/deb/usr)
  file(MAKE_DIRECTORY ${SCRATCH}/tgz)
  run(${CMAKE_COMMAND} -E chdir ${SCRATCH}/tgz ${CMAKE_COMMAND} -E tar xzf ${tgz})
  file(GLOB tgz_prefix ${SCRATCH}/tgz/*)
  foreach(f IN ITEMS include/fanout/fanout.hpp include/fanout/version.hpp ${LIBDIR}/libfanout.a
                     ${LIBDIR}/cmake/fanout/fanoutConfig.cmake ${LIBDIR}/cmake/fanout/fanoutConfigVersion.cmake
                     ${LIBDIR}/pkgconfig/fanout.pc share/doc/fanout/LICENSE)
    if(NOT EXISTS ${deb_prefix}/${f})
      message(FATAL_ERROR "the .deb has no usr/${f}")
    endif()
  endforeach()
  file(GLOB_RECURSE deb_files LIST_DIRECTORIES false RELATIVE ${deb_prefix} ${deb_prefix}/*)
  file(GLOB_RECURSE tgz_files LIST_DIRECTORIES false RELATIVE ${tgz_prefix} ${tgz_prefix}/*)
  list(SORT deb_files)
  list(SORT tgz_files)
  if(NOT deb_files STREQUAL tgz_files)
    message(FATAL_ERROR "the .deb (usr/) and the .tar.gz hold different files:\n${deb_files}\n${tgz_files}")
  endif()
  foreach(f IN LISTS deb_files)
    file(SHA256 ${deb_prefix}/${f} a)
    file(SHA256 ${tgz_prefix}/${f} b)
    if(NOT a STREQUAL b)
      message(FATAL_ERROR "${f} differs between the .deb and the .tar.gz")
    endif()
  endforeach()
  check_pc_version(${deb_prefix}/${LIBDIR}/pkgconfig)
  check_pc_version(${tgz_prefix}/${LIBDIR}/pkgconfig)

  # find_package takes the .tar.gz's tree too. The consumer is configured
  # against it, then reconfigured (no compiler checks again) against the .deb's,
  # with which it is built and run below: the files are the same.
  run(${CMAKE_COMMAND} -S ${CONSUMER} -B ${SCRATCH}/build ${configure_args} -DCMAKE_PREFIX_PATH=${tgz_prefix})
  check_found_in(${SCRATCH}/build ${tgz_prefix})
  list(APPEND configure_args -U fanout_DIR -DCMAKE_PREFIX_PATH=${deb_prefix})
  set(found_in ${deb_prefix})
elseif(MODE STREQUAL "FetchContent")
  # A git repository holding the source tree as it is now (tracked and new
  # files, edits included), fetched by URL as from a remote.
  find_program(GIT git REQUIRED)
  execute_process(COMMAND ${GIT} -C ${FANOUT_SOURCE_DIR} ls-files --cached --others --exclude-standard
                  RESULT_VARIABLE rc OUTPUT_VARIABLE files OUTPUT_STRIP_TRAILING_WHITESPACE)
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "${FANOUT_SOURCE_DIR} is not a git checkout")
  endif()
  set(repo ${SCRATCH}/fanout.git)
  string(REPLACE "\n" ";" files "${files}")
  foreach(f IN LISTS files)
    if(EXISTS ${FANOUT_SOURCE_DIR}/${f})
      get_filename_component(dir ${repo}/${f} DIRECTORY)
      file(COPY ${FANOUT_SOURCE_DIR}/${f} DESTINATION ${dir})
    endif()
  endforeach()
  set(git ${GIT} -C ${repo} -c user.name=fanout -c user.email=fanout@localhost -c init.defaultBranch=main)
  run(${git} init -q)
  run(${git} add -A)
  run(${git} commit -q -m snapshot)
  run(${git} tag v-test)
  list(APPEND configure_args -DFANOUT_GIT_URL=file://${repo} -DFANOUT_GIT_TAG=v-test)
endif()
run(${CMAKE_COMMAND} -S ${CONSUMER} -B ${SCRATCH}/build ${configure_args})
if(found_in)
  check_found_in(${SCRATCH}/build ${found_in})
endif()
run(${CMAKE_COMMAND} --build ${SCRATCH}/build -j2)
run(${SCRATCH}/build/consumer)
