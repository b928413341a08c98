// Precompiled for fanout_tests: the Boost headers every suite parses
// (about a fifth of each test's compile time). fanout's own headers stay out,
// so that each suite still includes what it uses.
#pragma once

#include <boost/asio.hpp>
#include <boost/test/unit_test.hpp>
