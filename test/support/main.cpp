// The one Boost.Test main: every test executable links this object instead of
// defining BOOST_TEST_MODULE itself (which would compile a main per suite and
// keep the suites from sharing a precompiled header).
#define BOOST_TEST_MODULE fanout
#include <boost/test/unit_test.hpp>
