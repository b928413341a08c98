// Driving an io_context (or waiting for other threads) until a condition holds,
// with a limit, for tests that stop or destroy contexts in the middle of work.
#pragma once

#include <fanout/sleep.hpp>

#include <boost/asio/io_context.hpp>

#include <chrono>
#include <thread>

namespace fanout::test {

/// Runs @p ctx until @p done() holds (at most @p limit); tells whether it does.
template <typename Predicate>
bool run_until(boost::asio::io_context& ctx, Predicate done, fanout::clock::duration limit = std::chrono::seconds(10))
{
  const auto end = fanout::clock::now() + limit;
  while (!done() && fanout::clock::now() < end)
    ctx.run_one_for(std::chrono::milliseconds(10));
  return done();
}

/// Waits (without running anything) until @p done() holds, at most @p limit.
template <typename Predicate>
bool wait_until(Predicate done, fanout::clock::duration limit = std::chrono::seconds(10))
{
  const auto end = fanout::clock::now() + limit;
  while (!done() && fanout::clock::now() < end)
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  return done();
}

} // namespace fanout::test
