// fanout/version.hpp — the version of fanout these headers belong to.
// SPDX-License-Identifier: BSL-1.0
#pragma once

// The three numbers below are the project's one version: the top-level
// CMakeLists.txt reads them from this file for `project(fanout VERSION ...)`,
// so the CMake package (fanoutConfigVersion.cmake), fanout.pc and the
// packages carry the same version as the headers. Keep each on one line of the
// form `#define FANOUT_VERSION_<PART> <digits>`: that is what CMake looks for.
#define FANOUT_VERSION_MAJOR 0
#define FANOUT_VERSION_MINOR 1
#define FANOUT_VERSION_PATCH 0

/// The version as one number, as BOOST_VERSION does: major * 100000 +
/// minor * 100 + patch (0.1.0 is 100, 1.2.3 would be 100203). Usable in `#if`:
/// @code
/// #if FANOUT_VERSION >= 100 // fanout 0.1.0 or later
/// @endcode
#define FANOUT_VERSION (FANOUT_VERSION_MAJOR * 100000 + FANOUT_VERSION_MINOR * 100 + FANOUT_VERSION_PATCH)
