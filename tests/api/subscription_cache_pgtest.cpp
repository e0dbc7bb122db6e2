// GET /v1/subscriptions/{id} is answered from recurd's read-model cache
// (api/subscription_cache.hpp): over real HTTP against a spawned recurd on a
// fresh PostgreSQL database, a GET right after each lifecycle command shows
// that command's result and version, and versions never go backwards.

#include <memory>
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>
#include <pqxx/pqxx>

#include "tests/api/recurd_process.hpp"
#include "tests/persistence/pg_testdb.hpp"

#ifndef RECURD_PATH
#  error "RECURD_PATH must name the recurd binary"
#endif

namespace {

using namespace recur;
using namespace recur::apitest;
using nlohmann::json;

constexpr const char* admin_key = "cache-pgtest-admin-key-0123456789";

class subscription_cache_pg : public testing::Test {
protected:
  void SetUp() override {
    db_ = pgtest::scratch_db::create();
    ASSERT_NE(db_, nullptr) << pgtest::missing_db_message();
  }

  void start(std::vector<std::string> extra = {}) {
    ASSERT_TRUE(spawn_listening(
      RECURD_PATH,
      [this, &extra](std::uint16_t p) {
        std::vector<std::string> args{"--db", db_->conninfo(), "--kafka",
                                      "none", "--listen",
                                      "127.0.0.1:" + std::to_string(p)};
        args.insert(args.end(), extra.begin(), extra.end());
        return args;
      },
      {{"RECUR_ADMIN_KEY", admin_key}}, server_, port_));
  }

  // A tenant (its key in key_) with plan basic and customer cus_1.
  void tenant_plan_customer() {
    key_ = ok("POST", "/v1/tenants", R"({"name":"Cache"})", 201)["api_key"]
             .get<std::string>();
    ok("POST", "/v1/plans",
       R"({"id":"basic","currency":"USD","interval":{"unit":"month","count":1},
           "trial_days":0,"base":{"kind":"flat","flat_amount":1000}})",
       201);
    ok("POST", "/v1/customers",
       R"({"id":"cus_1","email":"a@b.io","name":"A","payment_method":"pm_card_visa","currency":"USD"})",
       201);
  }

  // A tenant with one active subscription sub_1 (its first invoice paid).
  void active_subscription() {
    tenant_plan_customer();
    ok("POST", "/v1/subscriptions",
       R"({"id":"sub_1","customer":"cus_1","plan":"basic"})", 201);
    const auto deadline = steady::now() + 10s;
    while (steady::now() < deadline) {
      auto s = ok("GET", "/v1/subscriptions/sub_1");
      if (s["status"] == "active" && s["live_sagas"].empty())
        return;
      std::this_thread::sleep_for(10ms);
    }
    ADD_FAILURE() << "sub_1 did not become active";
  }

  // Another writer of the database (a superuser session, not recurd)
  // changes sub_1's read-model row to paused.
  void pause_behind_recurds_back() {
    pqxx::connection c{db_->conninfo()};
    pqxx::work w{c};
    const auto r = w.exec(
      "UPDATE subscriptions SET status = 'paused', data_json = "
      "replace(data_json, '\"status\":\"active\"', '\"status\":\"paused\"') "
      "WHERE subscription_id = 'sub_1'");
    w.commit();
    ASSERT_EQ(r.affected_rows(), 1u);
  }

  void TearDown() override {
    if (server_) {
      if (HasFailure())
        std::cerr << "recurd log:\n" << server_->log() << "\n";
      server_->terminate();
    }
  }

  json ok(const std::string& method, const std::string& target,
          const std::string& body = {}, int status = 200) {
    auto r = request(port_, method, target, key_.empty() ? admin_key : key_,
                     body);
    EXPECT_EQ(r.status, status) << method << " " << target << ": " << r.body;
    return r.json();
  }

  std::unique_ptr<pgtest::scratch_db> db_;
  std::unique_ptr<child_process> server_;
  std::uint16_t port_ = 0;
  std::string key_;
};

TEST_F(subscription_cache_pg,
       a_get_after_each_command_shows_that_commands_result) {
  start();
  tenant_plan_customer();
  EXPECT_EQ(request(port_, "GET", "/v1/subscriptions/sub_1", key_).status,
            404u);
  ok("POST", "/v1/subscriptions",
     R"({"id":"sub_1","customer":"cus_1","plan":"basic"})", 201);
  // The first invoice is paid by the sandbox after the reply, by a saga's
  // commit: the cached row must follow it (bounded polling).
  std::int64_t last_version = 0;
  std::string status;
  const auto deadline = steady::now() + 10s;
  while (steady::now() < deadline) {
    auto s = ok("GET", "/v1/subscriptions/sub_1");
    ASSERT_GE(s["version"].get<std::int64_t>(), last_version);
    last_version = s["version"].get<std::int64_t>();
    status = s["status"].get<std::string>();
    if (status == "active" && s["live_sagas"].empty())
      break;
    std::this_thread::sleep_for(10ms);
  }
  ASSERT_EQ(status, "active");
  for (int round = 0; round < 5; ++round) {
    for (const char* command : {"pause", "resume"}) {
      auto reply = ok("POST", std::string{"/v1/subscriptions/sub_1/"} + command);
      const auto version = reply["version"].get<std::int64_t>();
      EXPECT_GT(version, last_version) << command;
      auto got = ok("GET", "/v1/subscriptions/sub_1");
      EXPECT_EQ(got["status"], reply["status"]) << command;
      EXPECT_EQ(got["version"].get<std::int64_t>(), version) << command;
      EXPECT_EQ(got, reply) << command;
      last_version = version;
    }
  }
  EXPECT_EQ(ok("GET", "/v1/subscriptions/sub_1")["status"], "active");
  // An invalid transition changes nothing, in the store or the cache.
  EXPECT_EQ(request(port_, "POST", "/v1/subscriptions/sub_1/resume", key_)
              .status,
            409u);
  auto after = ok("GET", "/v1/subscriptions/sub_1");
  EXPECT_EQ(after["status"], "active");
  EXPECT_EQ(after["version"].get<std::int64_t>(), last_version);
  // A cancellation starts a saga that commits again after the reply: the
  // GET shows the reply's version or a newer one, never an older one.
  auto canceled = ok("POST", "/v1/subscriptions/sub_1/cancel");
  auto got = ok("GET", "/v1/subscriptions/sub_1");
  EXPECT_EQ(got["status"], "canceled");
  EXPECT_GE(got["version"].get<std::int64_t>(),
            canceled["version"].get<std::int64_t>());
  const auto settle_by = steady::now() + 10s;
  while (!got["live_sagas"].empty() && steady::now() < settle_by) {
    std::this_thread::sleep_for(10ms);
    got = ok("GET", "/v1/subscriptions/sub_1");
  }
  ASSERT_TRUE(got["live_sagas"].empty()) << got.dump();
  // Settled: the list (read from PostgreSQL) agrees with the cached GET.
  auto list = ok("GET", "/v1/subscriptions");
  ASSERT_EQ(list["data"].size(), 1u);
  EXPECT_EQ(list["data"][0], got);
  // Other tenants never see it.
  auto other = request(port_, "POST", "/v1/tenants", admin_key,
                       R"({"name":"Other"})");
  ASSERT_EQ(other.status, 201u) << other.body;
  EXPECT_EQ(request(port_, "GET", "/v1/subscriptions/sub_1",
                    other.json()["api_key"].get<std::string>())
              .status,
            404u);
}

TEST_F(subscription_cache_pg,
       with_the_read_cache_off_a_change_by_another_writer_is_seen_at_once) {
  start({"--read-cache", "0"});
  active_subscription();
  pause_behind_recurds_back();
  EXPECT_EQ(ok("GET", "/v1/subscriptions/sub_1")["status"], "paused");
}

// The documented limit of the cache (README, "Serving path"): it is right
// only while recurd is the database's only writer.
TEST_F(subscription_cache_pg,
       with_the_read_cache_on_a_change_by_another_writer_is_not_seen) {
  start();
  active_subscription();
  pause_behind_recurds_back();
  EXPECT_EQ(ok("GET", "/v1/subscriptions/sub_1")["status"], "active");
}

} // namespace
