// http_fanout — the post promises "something more practical than waiting for
// sleep()": here async_map drives real network I/O. A small HTTP/1.1 server
// (Boost.Beast, on 127.0.0.1 only, on a port the OS picks) answers
// GET /item/<k> with "item <k>" after a fixed delay, and a client fetches N
// such URLs three ways, timing each with fanout::timer:
//
//   1. one after another                           about N x DELAY
//   2. co_await fanout::async_map(fetch, urls)     about DELAY
//   3. the same with {.max_concurrency = 3}        about ceil(N/3) x DELAY
//
//   http_fanout [N] [DELAY_MS]    N URLs (1..256, default 10); the server's
//                                 delay per request in ms (1..60000, default 200)
//
// Exits 0 when every body is right and every timing is within its bounds
// (sequential >= N x DELAY; all at once < 2 x DELAY + 0.3 s; three at a time
// >= ceil(N/3) x DELAY), 1 otherwise, 2 on bad arguments.
//
// Server and client share one io_context, run by the main thread. When the
// client is done the acceptor is closed, the last connections finish, and the
// context runs out of work: the program stops by itself.
#include <fanout/fanout.hpp>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/address_v4.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core/error.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http.hpp>

#include <charconv>
#include <chrono>
#include <cstddef>
#include <exception>
#include <iomanip>
#include <iostream>
#include <stdexcept>
#include <string>
#include <string_view>
#include <system_error>
#include <utility>
#include <vector>

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;
using namespace std::chrono_literals;

namespace {

// No connection, on either side, may stay open longer than this: a stuck
// peer fails the request instead of hanging the program.
constexpr auto connection_limit = 30s;

// Parses all of @p text as an unsigned number.
template <typename Unsigned>
bool parse_number(std::string_view text, Unsigned& value)
{
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  return !text.empty() && ec == std::errc() && end == text.data() + text.size();
}

// What the server answers for item k, and what the client expects.
std::string item_body(std::size_t k)
{
  return "item " + std::to_string(k);
}

// Reports a coroutine's failure; for co_spawn's completion handler.
auto report_failure(std::string what)
{
  return [what = std::move(what)](std::exception_ptr e) {
    if (!e)
      return;
    try {
      std::rethrow_exception(e);
    } catch (const std::exception& x) {
      std::cerr << what << ": " << x.what() << std::endl;
    }
  };
}

// ---------------------------------------------------------------------------
// The server: one coroutine per connection, each request answered after a
// steady_timer wait, so that slow requests overlap on a single thread.

// Serves one request on one connection, then closes it.
asio::awaitable<void> serve(beast::tcp_stream stream, std::chrono::milliseconds delay)
{
  stream.expires_after(connection_limit);
  beast::flat_buffer buffer;
  http::request<http::string_body> request;
  co_await http::async_read(stream, buffer, request, asio::use_awaitable);

  http::response<http::string_body> response;
  response.version(request.version());
  response.keep_alive(false); // one request per connection: simple and robust
  response.set(http::field::server, "fanout http_fanout");
  response.set(http::field::content_type, "text/plain");

  // GET /item/<k>, anything else is not found (and answered at once).
  constexpr std::string_view prefix = "/item/";
  const std::string_view target = request.target();
  std::size_t k = 0;
  if (request.method() == http::verb::get && target.starts_with(prefix) &&
      parse_number(target.substr(prefix.size()), k)) {
    // The "slow backend": every request takes `delay`, whatever else runs.
    asio::steady_timer wait(stream.get_executor(), delay);
    co_await wait.async_wait(asio::use_awaitable);
    response.result(http::status::ok);
    response.body() = item_body(k);
  } else {
    response.result(http::status::not_found);
    response.body() = "not found";
  }
  response.prepare_payload();
  co_await http::async_write(stream, response, asio::use_awaitable);

  beast::error_code ignored;
  stream.socket().shutdown(tcp::socket::shutdown_send, ignored);
}

// Accepts connections until the acceptor is closed, each served by its own
// coroutine.
asio::awaitable<void> listen(tcp::acceptor& acceptor, std::chrono::milliseconds delay)
{
  for (;;) {
    auto [ec, socket] = co_await acceptor.async_accept(asio::as_tuple(asio::use_awaitable));
    if (ec == asio::error::operation_aborted || !acceptor.is_open())
      co_return; // closed: the server is done
    if (ec) {
      std::cerr << "server: accept: " << ec.message() << std::endl;
      continue;
    }
    asio::co_spawn(acceptor.get_executor(), serve(beast::tcp_stream(std::move(socket)), delay),
                   report_failure("server: connection"));
  }
}

// ---------------------------------------------------------------------------
// The client: fetch(url) is an ordinary coroutine of Beast calls. Nothing in
// it knows about fanout; async_map runs many of them at once.

struct parsed_url
{
  tcp::endpoint endpoint;
  std::string host; // for the Host header
  std::string target;
};

// Splits "http://127.0.0.1:<port>/<target>". Only 127.0.0.1 is accepted:
// this example never talks to any other address.
parsed_url parse_url(std::string_view url)
{
  constexpr std::string_view scheme = "http://";
  const auto bad = [&](const char* why) { return std::invalid_argument(std::string(why) + ": " + std::string(url)); };
  if (!url.starts_with(scheme))
    throw bad("not an http:// URL");
  const std::string_view rest = url.substr(scheme.size());
  const auto slash = rest.find('/');
  const std::string_view authority = rest.substr(0, slash);
  const std::string_view target = slash == std::string_view::npos ? "/" : rest.substr(slash);
  const auto colon = authority.rfind(':');
  const std::string_view host = authority.substr(0, colon);
  unsigned short port = 80;
  if (colon != std::string_view::npos && !parse_number(authority.substr(colon + 1), port))
    throw bad("bad port");
  if (host != "127.0.0.1")
    throw bad("only 127.0.0.1 is allowed");
  return {tcp::endpoint(asio::ip::address_v4::loopback(), port), std::string(authority), std::string(target)};
}

// GET @p url on a connection of its own; gives the body of a 200 response,
// throws for anything else. (The URL is taken by value: a coroutine's
// parameters live in its frame, so nothing outside has to outlive it.)
asio::awaitable<std::string> fetch(std::string url)
{
  const parsed_url where = parse_url(url);
  beast::tcp_stream stream(co_await asio::this_coro::executor);
  stream.expires_after(connection_limit);
  co_await stream.async_connect(where.endpoint, asio::use_awaitable);

  http::request<http::empty_body> request(http::verb::get, where.target, 11);
  request.set(http::field::host, where.host);
  request.set(http::field::user_agent, "fanout http_fanout");
  co_await http::async_write(stream, request, asio::use_awaitable);

  beast::flat_buffer buffer;
  http::response<http::string_body> response;
  co_await http::async_read(stream, buffer, response, asio::use_awaitable);
  if (response.result() != http::status::ok)
    throw std::runtime_error("GET " + url + ": HTTP " + std::to_string(response.result_int()));

  beast::error_code ignored;
  stream.socket().shutdown(tcp::socket::shutdown_both, ignored);
  co_return std::move(response.body());
}

// Checks that @p bodies are "item 1" ... "item N", in order.
bool bodies_ok(std::string_view label, const std::vector<std::string>& bodies, std::size_t n)
{
  if (bodies.size() != n) {
    std::cerr << label << ": " << bodies.size() << " bodies, expected " << n << std::endl;
    return false;
  }
  for (std::size_t i = 0; i < n; ++i) {
    if (bodies[i] != item_body(i + 1)) {
      std::cerr << label << ": body " << i << " is \"" << bodies[i] << "\", expected \"" << item_body(i + 1) << '"'
                << std::endl;
      return false;
    }
  }
  return true;
}

// A fanout::timer sink that stores the elapsed seconds in @p seconds.
fanout::timer::sink record_into(double& seconds)
{
  return [&seconds](std::string_view, std::chrono::duration<double> elapsed) { seconds = elapsed.count(); };
}

// Prints one timing with its bound; true if it holds.
bool report(std::string_view label, double seconds, std::string_view relation, double bound, bool values_ok)
{
  const bool in_bounds = relation == ">=" ? seconds >= bound : seconds < bound;
  std::cout << std::left << std::setw(36) << label << std::right << std::fixed << std::setprecision(3) << seconds
            << " s   (expected " << relation << ' ' << bound << " s)   "
            << (values_ok ? (in_bounds ? "ok" : "OUT OF BOUNDS") : "WRONG VALUES") << std::endl;
  return values_ok && in_bounds;
}

// The three ways to fetch @p urls; true if every result and timing is right.
asio::awaitable<bool> client(std::vector<std::string> urls, std::chrono::milliseconds delay)
{
  const std::size_t n = urls.size();
  const double d = std::chrono::duration<double>(delay).count();
  bool ok = true;

  // 1. One after another: each request waits for the one before it, so the
  //    delays add up. This is the post's "normal synchronous code", only
  //    without blocking the event loop: the server keeps running meanwhile.
  {
    double seconds = 0;
    std::vector<std::string> bodies;
    {
      const fanout::timer t("sequential", record_into(seconds));
      for (const auto& url : urls)
        bodies.push_back(co_await fetch(url));
    }
    const bool values = bodies_ok("sequential", bodies, n);
    ok = report("sequentially, one after another", seconds, ">=", static_cast<double>(n) * d, values) && ok;
  }

  // 2. async_map: every request starts at once, the results come back in URL
  //    order. The delays overlap, so the whole lot takes about one delay.
  {
    double seconds = 0;
    std::vector<std::string> bodies;
    {
      const fanout::timer t("async_map", record_into(seconds));
      bodies = co_await fanout::async_map(fetch, urls);
    }
    const bool values = bodies_ok("async_map", bodies, n);
    ok = report("async_map, all at once", seconds, "<", 2 * d + 0.3, values) && ok;
  }

  // 3. async_map with a concurrency limit: at most three requests in flight
  //    (a polite client, or a server that allows only so many connections).
  //    URLs are taken up as slots free, so the N requests go in ceil(N/3)
  //    waves of one delay each.
  {
    double seconds = 0;
    std::vector<std::string> bodies;
    {
      const fanout::timer t("async_map, 3 at a time", record_into(seconds));
      bodies = co_await fanout::async_map(fanout::map_options{.max_concurrency = 3}, fetch, urls);
    }
    const bool values = bodies_ok("async_map, 3 at a time", bodies, n);
    const auto waves = static_cast<double>((n + 2) / 3);
    ok = report("async_map, max_concurrency = 3", seconds, ">=", waves * d, values) && ok;
  }

  co_return ok;
}

int usage()
{
  std::cerr << "usage: http_fanout [N] [DELAY_MS]\n"
               "  N         URLs to fetch (1..256, default 10)\n"
               "  DELAY_MS  the server's delay per request in milliseconds (1..60000, default 200)\n";
  return 2;
}

} // namespace

int main(int argc, char** argv)
{
  std::size_t n = 10;
  unsigned delay_ms = 200;
  if (argc > 3 || (argc > 1 && (!parse_number(argv[1], n) || n < 1 || n > 256)) ||
      (argc > 2 && (!parse_number(argv[2], delay_ms) || delay_ms < 1 || delay_ms > 60000)))
    return usage();
  const std::chrono::milliseconds delay(delay_ms);

  asio::io_context ctx;

  // The server: 127.0.0.1 only, on a port the OS chooses (port 0).
  tcp::acceptor acceptor(ctx, tcp::endpoint(asio::ip::address_v4::loopback(), 0));
  const auto port = acceptor.local_endpoint().port();
  asio::co_spawn(ctx, listen(acceptor, delay), report_failure("server"));

  std::vector<std::string> urls;
  for (std::size_t k = 1; k <= n; ++k)
    urls.push_back("http://127.0.0.1:" + std::to_string(port) + "/item/" + std::to_string(k));
  std::cout << "Fetching " << n << " URLs like " << urls.front() << ", " << delay_ms << " ms per request" << std::endl;

  // The client, on the same io_context: fanout::run drives the context (and
  // so the server too) until the client's coroutine is done.
  bool ok = false;
  try {
    ok = fanout::run(ctx, client(std::move(urls), delay));
  } catch (const std::exception& e) {
    std::cerr << "client: " << e.what() << std::endl;
  }

  // Stop the server: closing the acceptor ends the listener's pending accept;
  // the context then runs until the last connection is done and returns.
  acceptor.close();
  ctx.run();

  std::cout << (ok ? "all ok" : "FAILED") << std::endl;
  return ok ? 0 : 1;
}
