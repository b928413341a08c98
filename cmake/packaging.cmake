# Release packages, made by CPack from a build tree (README, "Packages"):
#
#   cmake -S . -B build/pkg -DCMAKE_BUILD_TYPE=Release -DFANOUT_BUILD_TESTS=OFF \
#         -DFANOUT_BUILD_BENCH=OFF -DFANOUT_BUILD_EXAMPLES=OFF
#   cmake --build build/pkg && (cd build/pkg && cpack)
#     -> build/pkg/packages/libfanout-dev_<version>-1_<arch>.deb
#        build/pkg/packages/fanout-<version>-Linux-<processor>.tar.gz
#
# Both hold what `cmake --install` installs: the headers, libfanout.a, the CMake
# package (lib/cmake/fanout), fanout.pc, and LICENSE and CHANGELOG.md under
# share/doc/fanout. The .deb installs under /usr; the .tar.gz unpacks to one
# directory that works as a prefix anywhere (the CMake package and fanout.pc
# locate themselves). cpack first builds the tree's default targets, as
# `make install` does: hence a tree of the library alone. CTest package.cpack
# checks both packages (test/package/consume.cmake).
install(FILES ${PROJECT_SOURCE_DIR}/LICENSE ${PROJECT_SOURCE_DIR}/CHANGELOG.md DESTINATION ${CMAKE_INSTALL_DOCDIR})

set(FANOUT_PACKAGE_MAINTAINER "fanout maintainers <maintainers@users.noreply.r-seed-48845cb1.example>"
    CACHE STRING "The Maintainer field of the .deb (Name <email>)")

set(CPACK_PACKAGE_NAME fanout)
set(CPACK_PACKAGE_VENDOR fanout)
set(CPACK_PACKAGE_VERSION ${PROJECT_VERSION})
set(CPACK_PACKAGE_DESCRIPTION_SUMMARY "${PROJECT_DESCRIPTION}")
set(CPACK_PACKAGE_CONTACT "${FANOUT_PACKAGE_MAINTAINER}")
set(CPACK_RESOURCE_FILE_LICENSE ${PROJECT_SOURCE_DIR}/LICENSE)
set(CPACK_GENERATOR DEB TGZ)
set(CPACK_PACKAGE_DIRECTORY ${PROJECT_BINARY_DIR}/packages)
set(CPACK_SYSTEM_NAME ${CMAKE_SYSTEM_NAME}-${CMAKE_SYSTEM_PROCESSOR})

# The .deb: a -dev package, as Debian names a static library with its headers.
# Architecture: the build machine's (CPack asks `dpkg --print-architecture`;
# amd64 on CI), since it holds compiled code.
set(CPACK_DEBIAN_PACKAGE_NAME libfanout-dev)
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)
set(CPACK_DEBIAN_PACKAGE_RELEASE 1)
set(CPACK_DEBIAN_PACKAGE_MAINTAINER "${FANOUT_PACKAGE_MAINTAINER}")
set(CPACK_DEBIAN_PACKAGE_SECTION libdevel)
set(CPACK_DEBIAN_PACKAGE_PRIORITY optional)
# Boost is used header-only (Asio); the versioned -dev package, as Debian 12 has
# no unversioned one of 1.81 or later.
set(CPACK_DEBIAN_PACKAGE_DEPENDS "libboost1.81-dev")
set(CPACK_DEBIAN_PACKAGE_DESCRIPTION
    "Python's asyncio conveniences for C++20 on Boost.Asio: sleep, tasks, task
groups, race, call_later and call_every, timeouts, to_thread, and async_map,
which applies coroutine or blocking functions over ranges concurrently, in
input order, with concurrency limits, deadlines, cancellation, streams and
pipelines; plus limiters, rate limiters, retry with backoff, an async mutex,
events and queues.
This package holds the headers, the static library libfanout.a, the CMake
package (find_package(fanout)) and the pkg-config file fanout.pc.")

# `cpack --config CPackSourceConfig.cmake`: the source tree, without build trees.
set(CPACK_SOURCE_GENERATOR TGZ)
set(CPACK_SOURCE_IGNORE_FILES "/\\\\.git/" "/\\\\.git$" "/build/" "/out/")

include(CPack)
