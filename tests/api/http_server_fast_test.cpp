// http_server's two paths over real loopback sockets: the fast handler
// answers on an I/O thread, what it declines runs the (blocking) handler on
// the pool, and a slow pool handler does not hold up fast answers on the
// other connections of the same I/O thread.

#include <atomic>
#include <chrono>
#include <future>
#include <memory>
#include <string>
#include <thread>

#include <gtest/gtest.h>

#include "api/http_server.hpp"
#include "tests/api/recurd_process.hpp"

namespace {

using namespace recur;
using namespace recur::api;
using namespace recur::apitest;
using namespace std::chrono_literals;

struct fixture {
  std::atomic<int> fast_calls{0};
  std::atomic<int> pool_calls{0};
  std::promise<void> release;
  std::shared_future<void> released = release.get_future().share();
  std::unique_ptr<http_server> server;

  explicit fixture(std::size_t io_threads) {
    http_server_config cfg;
    cfg.port = 0;
    cfg.threads = 4;
    cfg.io_threads = io_threads;
    cfg.fast_handler
      = [this](const http_request& req) -> std::optional<http_response> {
      ++fast_calls;
      if (req.path() == "/fast")
        return http_response{200, "text/plain", "fast", {}};
      return std::nullopt;
    };
    server = std::make_unique<http_server>(cfg, [this](const http_request& req) {
      ++pool_calls;
      if (req.path() == "/slow")
        released.wait_for(5s); // blocks a pool thread, never an I/O one
      return http_response{200, "text/plain", "pool " + std::string{req.path()},
                           {}};
    });
    EXPECT_TRUE(server->start());
  }
};

TEST(http_server_fast, the_fast_handler_answers_and_what_it_declines_runs_on_the_pool) {
  fixture f{2};
  http_connection conn{f.server->port()};
  ASSERT_TRUE(conn.connected());
  for (int i = 0; i < 3; ++i) {
    ASSERT_TRUE(conn.send_all(raw_request("GET", "/fast", "", {})));
    auto r = conn.read_reply();
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status, 200u);
    EXPECT_EQ(r->body, "fast");
    ASSERT_TRUE(conn.send_all(raw_request("GET", "/other", "", {})));
    r = conn.read_reply();
    ASSERT_TRUE(r);
    EXPECT_EQ(r->body, "pool /other");
  }
  EXPECT_EQ(f.fast_calls.load(), 6);
  EXPECT_EQ(f.pool_calls.load(), 3);
  f.release.set_value();
  f.server->stop();
}

TEST(http_server_fast, a_blocked_pool_handler_does_not_hold_up_fast_answers) {
  fixture f{1}; // one I/O thread: every connection shares it
  http_connection slow{f.server->port()};
  ASSERT_TRUE(slow.connected());
  ASSERT_TRUE(slow.send_all(raw_request("GET", "/slow", "", {})));
  const auto deadline = steady::now() + 5s;
  while (f.pool_calls.load() == 0 && steady::now() < deadline)
    std::this_thread::sleep_for(1ms);
  ASSERT_EQ(f.pool_calls.load(), 1);
  http_connection fast{f.server->port()};
  ASSERT_TRUE(fast.send_all(raw_request("GET", "/fast", "", {})));
  auto r = fast.read_reply();
  ASSERT_TRUE(r);
  EXPECT_EQ(r->body, "fast");
  f.release.set_value();
  auto s = slow.read_reply();
  ASSERT_TRUE(s);
  EXPECT_EQ(s->body, "pool /slow");
  f.server->stop();
}

TEST(http_server_fast, connections_spread_over_io_threads_all_get_answers) {
  fixture f{3};
  std::vector<std::unique_ptr<http_connection>> conns;
  for (int i = 0; i < 12; ++i) {
    conns.push_back(std::make_unique<http_connection>(f.server->port()));
    ASSERT_TRUE(conns.back()->send_all(
      raw_request("GET", i % 2 ? "/fast" : "/x", "", {})));
  }
  for (int i = 0; i < 12; ++i) {
    auto r = conns[i]->read_reply();
    ASSERT_TRUE(r) << i;
    EXPECT_EQ(r->body, i % 2 ? "fast" : "pool /x") << i;
  }
  f.release.set_value();
  f.server->stop();
}

// A server whose read timeout is 1 s, answering every request with 200.
std::unique_ptr<http_server> one_second_server() {
  http_server_config cfg;
  cfg.port = 0;
  cfg.threads = 2;
  cfg.read_timeout_s = 1;
  return std::make_unique<http_server>(cfg, [](const http_request&) {
    return http_response{200, "text/plain", "ok", {}};
  });
}

TEST(http_server_timeouts, a_client_that_stops_mid_request_is_disconnected_after_the_read_timeout) {
  auto server_ptr = one_second_server();
  auto& server = *server_ptr;
  ASSERT_TRUE(server.start());
  http_connection slow{server.port()};
  ASSERT_TRUE(slow.connected());
  const auto start = std::chrono::steady_clock::now();
  ASSERT_TRUE(slow.send_all("GET /x HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: "));
  // Meanwhile another client is served at once.
  http_connection quick{server.port()};
  ASSERT_TRUE(quick.send_all(raw_request("GET", "/y", "", {})));
  auto answered = quick.read_reply();
  ASSERT_TRUE(answered);
  EXPECT_EQ(answered->status, 200u);
  // The stalled one is closed (with a 408 or without a word) once its
  // second has passed, and not long after.
  if (auto r = slow.read_reply()) {
    EXPECT_EQ(r->status, 408u);
  }
  EXPECT_TRUE(slow.closed_by_peer());
  const auto waited = std::chrono::steady_clock::now() - start;
  EXPECT_GE(waited, 900ms);
  EXPECT_LT(waited, 5s);
  server.stop();
}

TEST(http_server_timeouts, an_idle_keep_alive_connection_is_closed_after_the_read_timeout) {
  auto server_ptr = one_second_server();
  auto& server = *server_ptr;
  ASSERT_TRUE(server.start());
  http_connection conn{server.port()};
  ASSERT_TRUE(conn.send_all(raw_request("GET", "/x", "", {})));
  auto r = conn.read_reply();
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200u);
  const auto start = std::chrono::steady_clock::now();
  EXPECT_TRUE(conn.closed_by_peer());
  const auto waited = std::chrono::steady_clock::now() - start;
  EXPECT_GE(waited, 900ms);
  EXPECT_LT(waited, 5s);
  server.stop();
}

} // namespace
