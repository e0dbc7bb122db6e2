// recurd as a user meets it: the built binary, a real PostgreSQL (the cluster
// scripts/test.sh starts, via RECUR_TEST_DB) and HTTP over a TCP socket.

#include <signal.h>

#include <chrono>
#include <cstdlib>
#include <optional>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>
#include <pqxx/pqxx>

#include "tests/api/recurd_process.hpp"

#ifndef RECURD_PATH
#  error "RECURD_PATH must name the recurd binary"
#endif

namespace {

using namespace std::chrono_literals;
using steady = std::chrono::steady_clock;

constexpr std::size_t mebibyte = 1'048'576;

std::string test_db() {
  const char* value = std::getenv("RECUR_TEST_DB");
  return value == nullptr ? std::string{} : std::string{value};
}

// -- recurd as a child process ---------------------------------------------

// recurd running as a child (see recurd_process.hpp): killed with the test.
class child_process : public recur::apitest::child_process {
public:
  child_process(const std::vector<std::string>& args, const env_list& env)
    : recur::apitest::child_process(RECURD_PATH, args, env) {}
};

using recur::apitest::free_port;
using recur::apitest::http_connection;
using recur::apitest::http_reply;
using recur::apitest::lower;

std::string get_request(const std::string& target,
                        const std::string& extra_headers = {}) {
  return "GET " + target + " HTTP/1.1\r\nHost: localhost\r\n" + extra_headers
         + "\r\n";
}

bool contains(const std::string& haystack, const std::string& needle) {
  return haystack.find(needle) != std::string::npos;
}

// -- fixture ----------------------------------------------------------------

class recurd : public testing::Test {
protected:
  void SetUp() override {
    ASSERT_FALSE(test_db().empty())
      << "RECUR_TEST_DB is not set. These tests need the PostgreSQL cluster "
         "that scripts/test.sh starts: run `bash scripts/test.sh` (or "
         "`bash scripts/test.sh -R recurd` for just these).";
  }

  void TearDown() override {
    if (server_)
      server_->terminate();
  }

  // Starts recurd on a free port and waits until it accepts connections.
  testing::AssertionResult start(const std::vector<std::string>& extra_args,
                                 const child_process::env_list& env = {}) {
    return recur::apitest::spawn_listening(
      RECURD_PATH,
      [&extra_args](std::uint16_t port) {
        auto args = extra_args;
        args.insert(args.end(),
                    {"--listen", "127.0.0.1:" + std::to_string(port)});
        return args;
      },
      env, server_, port_, 15s);
  }

  testing::AssertionResult start_with_db(std::string db) {
    return start({"--db", std::move(db)});
  }

  // One request on a fresh connection.
  std::optional<http_reply> request(const std::string& raw) {
    http_connection conn{port_};
    if (!conn.connected() || !conn.send_all(raw))
      return std::nullopt;
    return conn.read_reply();
  }

  // Runs recurd to completion (for start-up failures) and returns its code.
  static std::pair<std::optional<int>, std::string>
  run_to_exit(const std::vector<std::string>& args) {
    child_process child{args, {}};
    auto code = child.wait_for_exit(20s);
    return {code, child.log()};
  }

  std::unique_ptr<recur::apitest::child_process> server_;
  std::uint16_t port_ = 0;
};

} // namespace

// -- health routes ------------------------------------------------------------

TEST_F(recurd, healthz_is_200_json_with_the_database_ok) {
  ASSERT_TRUE(start_with_db(test_db()));
  auto reply = request(get_request("/healthz"));
  ASSERT_TRUE(reply);
  EXPECT_EQ(reply->status, 200);
  EXPECT_EQ(reply->header("content-type"), "application/json");
  EXPECT_EQ(reply->json(),
            nlohmann::json::parse(
              R"({"status":"ok","database":"ok","version":"0.1.0"})"));
}

TEST_F(recurd, readyz_is_200_json_with_the_database_ok) {
  ASSERT_TRUE(start_with_db(test_db()));
  auto reply = request(get_request("/readyz"));
  ASSERT_TRUE(reply);
  EXPECT_EQ(reply->status, 200);
  EXPECT_EQ(reply->json().at("database"), "ok");
}

TEST_F(recurd, an_unknown_path_is_a_404_problem) {
  ASSERT_TRUE(start_with_db(test_db()));
  auto reply = request(get_request("/v1/no-such-thing"));
  ASSERT_TRUE(reply);
  EXPECT_EQ(reply->status, 404);
  EXPECT_EQ(reply->header("content-type"), "application/problem+json");
  const auto doc = reply->json();
  EXPECT_EQ(doc.at("type"), "not_found");
  EXPECT_EQ(doc.at("title"), "Not Found");
  EXPECT_EQ(doc.at("status"), 404);
  EXPECT_TRUE(contains(doc.at("detail"), "/v1/no-such-thing"));
}

TEST_F(recurd, post_on_healthz_is_a_405_problem_that_allows_get) {
  ASSERT_TRUE(start_with_db(test_db()));
  auto reply = request("POST /healthz HTTP/1.1\r\nHost: x\r\n"
                       "Content-Length: 2\r\n\r\n{}");
  ASSERT_TRUE(reply);
  EXPECT_EQ(reply->status, 405);
  EXPECT_EQ(reply->header("content-type"), "application/problem+json");
  EXPECT_EQ(reply->header("allow"), "GET");
  EXPECT_EQ(reply->json().at("type"), "method_not_allowed");
  EXPECT_EQ(reply->json().at("status"), 405);
}

// -- HTTP/1.1 behaviour ------------------------------------------------------

TEST_F(recurd, two_requests_share_one_keep_alive_connection) {
  ASSERT_TRUE(start_with_db(test_db()));
  http_connection conn{port_};
  ASSERT_TRUE(conn.connected());
  ASSERT_TRUE(conn.send_all(get_request("/healthz")));
  auto first = conn.read_reply();
  ASSERT_TRUE(first);
  EXPECT_EQ(first->status, 200);
  EXPECT_NE(lower(first->header("connection")), "close");
  ASSERT_TRUE(conn.send_all(get_request("/nope")));
  auto second = conn.read_reply();
  ASSERT_TRUE(second);
  EXPECT_EQ(second->status, 404);
}

TEST_F(recurd, connection_close_is_honoured_after_the_response) {
  ASSERT_TRUE(start_with_db(test_db()));
  http_connection conn{port_};
  ASSERT_TRUE(conn.send_all(get_request("/healthz", "Connection: close\r\n")));
  auto reply = conn.read_reply();
  ASSERT_TRUE(reply);
  EXPECT_EQ(reply->status, 200);
  EXPECT_EQ(lower(reply->header("connection")), "close");
  EXPECT_TRUE(conn.closed_by_peer());
}

TEST_F(recurd, a_body_of_exactly_one_mebibyte_is_read_and_routed) {
  ASSERT_TRUE(start_with_db(test_db()));
  const std::string body(mebibyte, 'x');
  http_connection conn{port_};
  ASSERT_TRUE(conn.send_all("POST /healthz HTTP/1.1\r\nHost: x\r\n"
                            "Content-Length: 1048576\r\n\r\n"
                            + body));
  auto reply = conn.read_reply();
  ASSERT_TRUE(reply);
  EXPECT_EQ(reply->status, 405); // read whole, then routed
}

TEST_F(recurd, a_body_over_one_mebibyte_gets_413_and_the_connection_closes) {
  ASSERT_TRUE(start_with_db(test_db()));
  const std::string body(mebibyte + 1, 'x');
  http_connection conn{port_};
  // The server answers as soon as it sees Content-Length, then drains the
  // body, so sending all of it still succeeds.
  EXPECT_TRUE(conn.send_all("POST /healthz HTTP/1.1\r\nHost: x\r\n"
                            "Content-Length: 1048577\r\n\r\n"
                            + body));
  auto reply = conn.read_reply();
  ASSERT_TRUE(reply);
  EXPECT_EQ(reply->status, 413);
  EXPECT_EQ(reply->header("content-type"), "application/problem+json");
  EXPECT_EQ(reply->json().at("type"), "payload_too_large");
  EXPECT_EQ(lower(reply->header("connection")), "close");
  EXPECT_TRUE(conn.closed_by_peer());
}

TEST_F(recurd, headers_over_16_kib_get_431) {
  ASSERT_TRUE(start_with_db(test_db()));
  const std::string big(std::size_t{17} * 1024, 'a');
  auto reply = request(get_request("/healthz", "X-Big: " + big + "\r\n"));
  ASSERT_TRUE(reply);
  EXPECT_EQ(reply->status, 431);
  EXPECT_EQ(reply->json().at("type"), "request_header_fields_too_large");
}

TEST_F(recurd, a_malformed_request_gets_a_400_problem) {
  ASSERT_TRUE(start_with_db(test_db()));
  auto reply = request("GET /healthz HTTP/9.9\r\n\r\n");
  ASSERT_TRUE(reply);
  EXPECT_EQ(reply->status, 400);
  EXPECT_EQ(reply->json().at("type"), "bad_request");
}

// -- database -----------------------------------------------------------------

TEST_F(recurd, a_killed_database_session_gives_503_then_reconnects) {
  const auto app = "recurd_pgtest_" + std::to_string(getpid());
  ASSERT_TRUE(start_with_db(test_db() + " application_name=" + app));
  ASSERT_EQ(request(get_request("/healthz")).value().status, 200);

  pqxx::connection admin{test_db()};
  const auto count_sql = "SELECT count(*) FROM pg_stat_activity "
                         "WHERE application_name = "
                         + admin.quote(app);
  pqxx::nontransaction{admin}.exec(
    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
    "WHERE application_name = "
    + admin.quote(app));
  for (int i = 0; i < 500; ++i) {
    if (pqxx::nontransaction{admin}.exec(count_sql)[0][0].as<int>() == 0)
      break;
    std::this_thread::sleep_for(10ms);
  }

  auto down = request(get_request("/healthz"));
  ASSERT_TRUE(down);
  EXPECT_EQ(down->status, 503);
  EXPECT_EQ(down->json().at("database"), "unavailable");
  auto back = request(get_request("/healthz"));
  ASSERT_TRUE(back);
  EXPECT_EQ(back->status, 200);
  EXPECT_EQ(back->json().at("database"), "ok");
  EXPECT_TRUE(contains(server_->log(), "event=database_unavailable"));
  EXPECT_TRUE(contains(server_->log(), "event=database_recovered"));
}

TEST_F(recurd, the_log_shows_the_start_but_never_the_password) {
  // Trust auth ignores the password, so start-up succeeds with it present.
  ASSERT_TRUE(start_with_db(test_db() + " password=hunter2-must-not-leak"));
  ASSERT_EQ(request(get_request("/healthz")).value().status, 200);
  // The started line follows the listen (the port accepts a moment before
  // it is written): bounded wait for it.
  const auto deadline = steady::now() + 10s;
  auto log = server_->log();
  while (!contains(log, "event=recurd_started") && steady::now() < deadline) {
    std::this_thread::sleep_for(20ms);
    log = server_->log();
  }
  EXPECT_TRUE(contains(log, "event=recurd_started"));
  EXPECT_TRUE(contains(log, "db=ok"));
  EXPECT_TRUE(contains(log, "password=***"));
  EXPECT_FALSE(contains(log, "hunter2"));
}

TEST_F(recurd, an_unreachable_database_fails_start_up_with_exit_1) {
  const auto closed_port = std::to_string(free_port());
  const auto [code, log]
    = run_to_exit({"--db",
                   "host=127.0.0.1 port=" + closed_port
                     + " dbname=x user=x password=topsecret-value",
                   "--listen", "127.0.0.1:" + std::to_string(free_port())});
  ASSERT_TRUE(code) << "recurd did not exit";
  EXPECT_EQ(*code, 1);
  EXPECT_TRUE(contains(log, "recurd: cannot connect to the database")) << log;
  EXPECT_TRUE(contains(log, "port=" + closed_port)) << log;
  EXPECT_FALSE(contains(log, "topsecret")) << log;
  EXPECT_EQ(std::count(log.begin(), log.end(), '\n'), 1) << log;
}

// -- command line and lifecycle ----------------------------------------------

TEST_F(recurd, settings_can_come_from_the_environment) {
  port_ = free_port();
  server_ = std::make_unique<recur::apitest::child_process>(
    RECURD_PATH, std::vector<std::string>{},
    child_process::env_list{{"RECUR_DB", test_db()},
                            {"RECUR_LISTEN",
                             "127.0.0.1:" + std::to_string(port_)}});
  ASSERT_TRUE(recur::apitest::wait_listening(*server_, port_, 15s))
    << server_->log();
  EXPECT_EQ(request(get_request("/healthz")).value().status, 200);
}

TEST_F(recurd, an_unknown_option_exits_2_naming_it) {
  const auto [code, log] = run_to_exit({"--db", test_db(), "--bogus"});
  ASSERT_TRUE(code);
  EXPECT_EQ(*code, 2);
  EXPECT_TRUE(contains(log, "--bogus")) << log;
  EXPECT_EQ(std::count(log.begin(), log.end(), '\n'), 1) << log;
}

TEST_F(recurd, a_bad_listen_value_exits_2_naming_the_option) {
  const auto [code, log] = run_to_exit({"--db", test_db(), "--listen", "x"});
  ASSERT_TRUE(code);
  EXPECT_EQ(*code, 2);
  EXPECT_TRUE(contains(log, "--listen")) << log;
}

TEST_F(recurd, a_missing_db_exits_2_naming_the_option) {
  const auto [code, log] = run_to_exit({});
  ASSERT_TRUE(code);
  EXPECT_EQ(*code, 2);
  EXPECT_TRUE(contains(log, "--db")) << log;
}

TEST_F(recurd, help_lists_the_options_and_exits_0) {
  const auto [code, log] = run_to_exit({"--help"});
  ASSERT_TRUE(code);
  EXPECT_EQ(*code, 0);
  EXPECT_TRUE(contains(log, "RECUR_DB")) << log;
  EXPECT_TRUE(contains(log, "default 127.0.0.1:8080")) << log;
}

TEST_F(recurd, sigterm_stops_it_gracefully_with_exit_0) {
  ASSERT_TRUE(start_with_db(test_db()));
  http_connection idle{port_}; // an idle keep-alive client must not block it
  ASSERT_TRUE(idle.connected());
  const auto code = server_->terminate();
  ASSERT_TRUE(code) << "recurd ignored SIGTERM";
  EXPECT_EQ(*code, 0);
  EXPECT_TRUE(contains(server_->log(), "event=recurd_stopping signal=SIGTERM"));
  EXPECT_TRUE(contains(server_->log(), "event=recurd_stopped"));
}
