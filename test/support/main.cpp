// The Boost.Test main of fanout_tests. It defines BOOST_TEST_MODULE before
// Boost.Test is included, so it is compiled on its own, without the
// precompiled header and outside the unity batches.
#define BOOST_TEST_MODULE fanout
#include <boost/test/unit_test.hpp>
