// Domain events reach Kafka from a running recurd (issue 5): recurd is
// spawned on a fresh PostgreSQL database with `--kafka <host:port>` of a
// librdkafka mock cluster this test owns (so it outlives recurd's restarts).
// After a journey over HTTP with several subscriptions, recur.events is read
// back from the beginning and compared with the outbox table: every outbox
// row is there exactly once, under its subscription's key, in outbox order
// per key. Then recurd is SIGKILLed in the middle of a burst of commands and
// restarted on the same database and cluster: still nothing lost and the
// order per key holds; duplicates are allowed only from the crash (the
// relay is at least once: a row acknowledged by Kafka but not yet marked
// published when the process died goes out again), and are counted.

#include <atomic>
#include <cstdint>
#include <iostream>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>
#include <pqxx/pqxx>

#include "gateways/kafka_mock_cluster.hpp"
#include "tests/api/recurd_process.hpp"
#include "tests/persistence/pg_testdb.hpp"

#ifndef RECURD_PATH
#  error "RECURD_PATH must name the recurd binary"
#endif

namespace {

using namespace recur;
using namespace recur::apitest;
using nlohmann::json;

constexpr const char* admin_key = "kafka-journey-admin-key-0123456789";
constexpr const char* topic = "recur.events";
constexpr std::int64_t day_s = 86'400;

const char* plan_body = R"({"id":"pro","currency":"USD",
  "interval":{"unit":"month","count":1},"trial_days":14,
  "base":{"kind":"flat","flat_amount":5000}})";

struct outbox_row {
  std::string id;
  std::string key;
};

/// What the topic holds, compared with the outbox.
struct comparison {
  std::size_t outbox_rows = 0;
  std::size_t consumed = 0;
  std::size_t duplicates = 0;          // records whose id was consumed before
  std::vector<std::string> missing;    // in the outbox, not in the topic
  std::vector<std::string> unexpected; // in the topic, not in the outbox
  std::vector<std::string> wrong_key;
  std::vector<std::string> out_of_order; // keys whose order differs
};

class kafka_journey_pg : public testing::Test {
protected:
  void SetUp() override {
    db_ = pgtest::scratch_db::create();
    ASSERT_NE(db_, nullptr) << pgtest::missing_db_message();
    auto cluster = kafka_mock_cluster::start(1);
    ASSERT_TRUE(cluster.has_value()) << cluster.error().detail;
    cluster_ = std::move(*cluster);
    // Three partitions: keys share them, order must still hold per key.
    ASSERT_TRUE(cluster_->create_topic(topic, 3).has_value());
    ASSERT_TRUE(start());
  }

  void TearDown() override {
    if (server_) {
      if (HasFailure())
        std::cerr << "recurd log:\n" << server_->log() << "\n";
      server_->terminate();
    }
  }

  testing::AssertionResult start() {
    std::uint16_t p = 0;
    auto started = spawn_listening(
      RECURD_PATH,
      [this](std::uint16_t port) {
        return std::vector<std::string>{
          "--db",     db_->conninfo(),
          "--kafka",  cluster_->bootstrap_servers(),
          "--listen", "127.0.0.1:" + std::to_string(port),
          "--rate-limit", "0"};
      },
      {{"RECUR_ADMIN_KEY", admin_key}}, server_, p);
    port_ = p;
    return started;
  }

  /// SIGKILL: no drain, no relay stop, no goodbye.
  void kill_server() {
    port_ = 0;
    server_.reset();
  }

  std::optional<http_reply> try_call(const std::string& method,
                                     const std::string& target,
                                     const std::string& body = {}) {
    return try_request(port_, method, target, key_.empty() ? admin_key : key_,
                       body);
  }

  json ok(const std::string& method, const std::string& target,
          const std::string& body = {}, int status = 200) {
    auto r = try_call(method, target, body);
    EXPECT_TRUE(r) << method << " " << target << " got no reply";
    if (!r)
      return json{};
    EXPECT_EQ(r->status, status) << method << " " << target << ": " << r->body;
    return r->json();
  }

  json advance(std::int64_t seconds) {
    return ok("POST", "/v1/test-clock/advance",
              R"({"seconds":)" + std::to_string(seconds) + "}");
  }

  std::vector<outbox_row> outbox() {
    pqxx::connection c{db_->conninfo()};
    pqxx::read_transaction tx{c};
    std::vector<outbox_row> out;
    for (const auto& row : tx.exec("SELECT message_id, partition_key FROM "
                                   "outbox ORDER BY position"))
      out.push_back({row[0].c_str(), row[1].c_str()});
    return out;
  }

  std::int64_t unpublished() {
    pqxx::connection c{db_->conninfo()};
    pqxx::read_transaction tx{c};
    return tx.exec1("SELECT count(*) FROM outbox WHERE published_at IS NULL")[0]
      .as<std::int64_t>();
  }

  /// Bounded polling until the relay has marked every outbox row.
  testing::AssertionResult drained() {
    const auto deadline = steady::now() + 30s;
    std::int64_t left = unpublished();
    while (left > 0 && steady::now() < deadline) {
      std::this_thread::sleep_for(50ms);
      left = unpublished();
    }
    if (left == 0)
      return testing::AssertionSuccess();
    return testing::AssertionFailure() << left << " outbox rows unpublished";
  }

  comparison compare_topic_with_outbox() {
    comparison out;
    const auto rows = outbox();
    out.outbox_rows = rows.size();
    auto records = kafka_read_topic(cluster_->bootstrap_servers(), topic,
                                    rows.size(), 15s);
    EXPECT_TRUE(records.has_value()) << records.error().detail;
    if (!records)
      return out;
    out.consumed = records->size();
    std::map<std::string, std::string> key_of;
    std::map<std::string, std::vector<std::string>> expected; // key → ids
    for (const auto& r : rows) {
      key_of[r.id] = r.key;
      expected[r.key].push_back(r.id);
    }
    // Records come in partition, then offset order; a key lives on one
    // partition, so the records of a key are in the order Kafka holds them.
    std::set<std::string> seen;
    std::map<std::string, std::vector<std::string>> got; // first sightings
    for (const auto& r : *records) {
      const auto env = json::parse(r.value, nullptr, false);
      const std::string id = env.is_object() && env.contains("id")
                               ? env["id"].get<std::string>()
                               : std::string{"(unreadable)"};
      if (!seen.insert(id).second) {
        ++out.duplicates;
        continue;
      }
      const auto k = key_of.find(id);
      if (k == key_of.end()) {
        out.unexpected.push_back(id);
        continue;
      }
      if (k->second != r.key)
        out.wrong_key.push_back(id);
      got[r.key].push_back(id);
    }
    for (const auto& r : rows)
      if (!seen.contains(r.id))
        out.missing.push_back(r.id);
    for (const auto& [key, ids] : expected)
      if (got[key] != ids && out.missing.empty())
        out.out_of_order.push_back(key);
    return out;
  }

  // The journey: a test-mode tenant, a plan with a trial, good and bad
  // cards, subscriptions through trial, a pause/resume, a cancellation,
  // dunning and a renewal.
  void run_journey() {
    auto tenant = ok("POST", "/v1/tenants",
                     R"({"name":"Kafka","test_mode":true})", 201);
    key_ = tenant["api_key"].get<std::string>();
    ok("POST", "/v1/plans", plan_body, 201);
    ok("POST", "/v1/customers",
       R"({"id":"cus_good","email":"g@x.io","name":"Good",
           "payment_method":"pm_card_visa","currency":"USD"})",
       201);
    ok("POST", "/v1/customers",
       R"({"id":"cus_bad","email":"b@x.io","name":"Bad",
           "payment_method":"pm_card_chargeDeclinedExpiredCard"})",
       201);
    for (const auto& id : good_subs)
      ok("POST", "/v1/subscriptions",
         R"({"id":")" + id + R"(","customer":"cus_good","plan":"pro"})", 201);
    ok("POST", "/v1/subscriptions",
       R"({"id":"sub_bad","customer":"cus_bad","plan":"pro"})", 201);
    advance(14 * day_s + 3600); // trial ends: invoices, one past_due
    ok("POST", "/v1/subscriptions/sub_g0/pause", "{}");
    ok("POST", "/v1/subscriptions/sub_g0/resume", "{}");
    ok("POST", "/v1/subscriptions/sub_g1/cancel", "{}");
    advance(31 * day_s); // renewals and dunning steps
  }

  // Toggles `sub` between active and paused until `stop`, reading its state
  // first each time so that a command lost in a crash does not desynchronise
  // it. Connection failures (recurd down) are retried.
  void toggle_until(const std::string& sub, const std::atomic<bool>& stop,
                    std::atomic<int>& done) {
    while (!stop) {
      auto s = try_call("GET", "/v1/subscriptions/" + sub);
      if (!s || s->status != 200) {
        std::this_thread::sleep_for(10ms);
        continue;
      }
      const auto status = s->json().value("status", "");
      const char* command = status == "paused" ? "resume" : "pause";
      auto r = try_call("POST", "/v1/subscriptions/" + sub + "/" + command,
                        "{}");
      if (r && r->status == 200)
        ++done;
    }
  }

  const std::vector<std::string> good_subs{"sub_g0", "sub_g1", "sub_g2",
                                           "sub_g3", "sub_g4", "sub_g5"};
  std::unique_ptr<pgtest::scratch_db> db_;
  std::unique_ptr<kafka_mock_cluster> cluster_;
  std::unique_ptr<child_process> server_;
  std::atomic<std::uint16_t> port_{0};
  std::string key_;
};

void expect_complete_and_ordered(const comparison& c) {
  EXPECT_TRUE(c.missing.empty())
    << c.missing.size() << " missing, first " << c.missing.front();
  EXPECT_TRUE(c.unexpected.empty()) << c.unexpected.size() << " unexpected";
  EXPECT_TRUE(c.wrong_key.empty())
    << c.wrong_key.size() << " under a wrong key";
  EXPECT_TRUE(c.out_of_order.empty())
    << "order differs for " << c.out_of_order.size() << " keys, first "
    << c.out_of_order.front();
}

} // namespace

TEST_F(kafka_journey_pg,
       every_outbox_row_is_on_the_topic_once_in_order_and_again_after_a_crash) {
  run_journey();
  ASSERT_FALSE(HasFailure());
  ASSERT_TRUE(drained());
  const auto first = compare_topic_with_outbox();
  // Several subscriptions, each with several state changes.
  EXPECT_GE(first.outbox_rows, 30U);
  expect_complete_and_ordered(first);
  // No crash yet: exactly once.
  EXPECT_EQ(first.duplicates, 0U);
  EXPECT_EQ(first.consumed, first.outbox_rows);

  // A burst of commands on four subscriptions; SIGKILL in the middle of it.
  std::atomic<bool> stop{false};
  std::atomic<int> done{0};
  std::vector<std::thread> clients;
  for (const auto& sub : {"sub_g2", "sub_g3", "sub_g4", "sub_g5"})
    clients.emplace_back([&, sub] { toggle_until(sub, stop, done); });
  auto wait_for = [&done](int n) {
    const auto deadline = steady::now() + 30s;
    while (done < n && steady::now() < deadline)
      std::this_thread::sleep_for(5ms);
    return done >= n;
  };
  const bool burst_started = wait_for(60);
  kill_server();
  const int before_kill = done;
  const bool restarted = static_cast<bool>(start());
  const bool burst_resumed = restarted && wait_for(before_kill + 60);
  stop = true;
  for (auto& t : clients)
    t.join();
  ASSERT_TRUE(burst_started);
  ASSERT_TRUE(restarted);
  ASSERT_TRUE(burst_resumed);

  ASSERT_TRUE(drained());
  const auto second = compare_topic_with_outbox();
  EXPECT_GE(second.outbox_rows, first.outbox_rows + 100);
  expect_complete_and_ordered(second);
  // At least once across a crash: only rows the dead relay had published
  // but not yet marked can come twice, at most one relay batch of them.
  EXPECT_LE(second.duplicates, 500U);
  EXPECT_EQ(second.consumed, second.outbox_rows + second.duplicates);
  RecordProperty("outbox_rows", static_cast<int>(second.outbox_rows));
  RecordProperty("duplicates_after_sigkill",
                 static_cast<int>(second.duplicates));
  std::cout << "outbox rows " << second.outbox_rows << ", commands "
            << done.load() << " (" << before_kill
            << " before SIGKILL), duplicates after the crash "
            << second.duplicates << "\n";
}
