// The outbox relay over the PostgreSQL store (label pg) with librdkafka's mock
// cluster: rows committed through units of work reach the topic once each,
// in order per subscription, and are marked only after delivery; brokers down
// leave them unpublished; a relay that dies between delivery and marking is
// replaced by one that resumes from the store, repeating only those rows.
// Each test gets a migrated, empty database (tests/persistence/pg_testdb.hpp).

#include "actors/outbox_relay.hpp"
#include "gateways/kafka_mock_cluster.hpp"
#include "gateways/kafka_publisher.hpp"
#include "persistence/pg_store.hpp"
#include "tests/actors/outbox_relay_fixture.hpp"
#include "tests/persistence/pg_testdb.hpp"

#include <chrono>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

using namespace recur;
using namespace std::chrono_literals;

namespace {

using namespace recur::testing::relay;

/// A store over a database of its own, a mock cluster and a publisher.
struct pg_kafka_fixture {
  std::unique_ptr<pgtest::scratch_db> db;
  std::unique_ptr<store> st;
  std::unique_ptr<kafka_mock_cluster> cluster;
  std::unique_ptr<kafka_publisher> pub;
  manual_clock clk{t0};

  bool open() {
    db = pgtest::scratch_db::create();
    if (!db)
      return false;
    auto opened = open_pg_store(db->config());
    if (!opened) {
      ADD_FAILURE() << "open_pg_store: " << opened.error().detail;
      return false;
    }
    st = std::move(*opened);
    if (auto made = create_tenants(*st); !made) {
      ADD_FAILURE() << "create_tenants: " << made.error().detail;
      return false;
    }
    cluster = start_cluster();
    if (!cluster)
      return false;
    pub = make_publisher(*cluster);
    if (!pub)
      return false;
    return true;
  }

  ~pg_kafka_fixture() {
    pub.reset();
    cluster.reset();
    st.reset(); // close connections before the database goes
  }
};

std::vector<outbox_record> unpublished_rows(store& db) {
  auto rows = db.fetch_unpublished(0, 10'000);
  EXPECT_TRUE(rows) << rows.error().detail;
  return rows ? *rows : std::vector<outbox_record>{};
}

struct topic_view {
  std::set<std::string> ids;
  std::set<std::string> duplicated;
  std::map<std::string, std::vector<std::string>> by_key; // first copies
};

topic_view read_topic(const kafka_mock_cluster& c, std::size_t expected) {
  auto records = kafka_read_topic(c.bootstrap_servers(), topic, expected,
                                  read_timeout);
  EXPECT_TRUE(records) << records.error().detail;
  topic_view v;
  if (!records)
    return v;
  for (const auto& r : *records) {
    const auto env = nlohmann::json::parse(r.value);
    const std::string id = env.at("id");
    EXPECT_EQ(env.at("data").at("seq"), std::stoi(id.substr(4)));
    if (v.ids.insert(id).second)
      v.by_key[r.key].push_back(id);
    else
      v.duplicated.insert(id);
  }
  return v;
}

} // namespace

TEST(outbox_relay_pgtest,
     committed_rows_reach_the_topic_once_in_order_and_are_marked_after) {
  pg_kafka_fixture f;
  ASSERT_TRUE(f.open());
  const int subs = 5;
  const auto ids = commit_rows(*f.st, 0, 60, subs);
  ASSERT_EQ(unpublished_rows(*f.st).size(), ids.size());

  outbox_relay relay{*f.st, *f.pub, f.clk, fast_relay(16)};
  drain(relay);
  EXPECT_TRUE(unpublished_rows(*f.st).empty());
  EXPECT_EQ(relay.stats().published, ids.size());
  EXPECT_EQ(relay.stats().pending, 0U);

  const auto v = read_topic(*f.cluster, ids.size());
  EXPECT_EQ(v.ids, (std::set<std::string>{ids.begin(), ids.end()}));
  EXPECT_TRUE(v.duplicated.empty());
  EXPECT_EQ(v.by_key, expected_by_key(ids, subs));
}

TEST(outbox_relay_pgtest,
     brokers_down_leave_rows_unpublished_and_a_replacement_relay_resumes) {
  pg_kafka_fixture f;
  ASSERT_TRUE(f.open());
  const int subs = 4;
  auto ids = commit_rows(*f.st, 0, 24, subs);

  // Brokers down: nothing is marked.
  ASSERT_TRUE(f.cluster->set_all_brokers_up(false));
  {
    outbox_relay relay{*f.st, *f.pub, f.clk, fast_relay(50)};
    const auto r = relay.run_once();
    EXPECT_EQ(r.published, 0U);
    EXPECT_GT(r.failed, 0U);
    EXPECT_EQ(unpublished_rows(*f.st).size(), ids.size());
  }
  ASSERT_TRUE(f.cluster->set_all_brokers_up(true));

  // A relay publishes and marks a first slice and is gone. Then a crash
  // between delivery and marking: the next slice is delivered (through the
  // same publisher, as a relay does) and never marked.
  {
    outbox_relay relay{*f.st, *f.pub, f.clk, fast_relay(6)};
    relay.run_once();
  }
  auto left = unpublished_rows(*f.st);
  ASSERT_EQ(left.size(), ids.size() - 6);
  std::set<std::string> delivered_unmarked;
  std::vector<outgoing_event> slice;
  for (std::size_t i = 0; i < 6; ++i) {
    const auto& row = left[i];
    slice.push_back(outgoing_event{
      row.message.id, row.message.key, row.message.type, row.tenant.value,
      row.message.subject, row.message.time, row.message.data_json});
    delivered_unmarked.insert(row.message.id);
  }
  for (const auto& r : f.pub->publish(slice))
    ASSERT_TRUE(r.ok());

  // More rows arrive; a new relay, running on its thread, resumes from the
  // store.
  const auto more = commit_rows(*f.st, 24, 18, subs);
  ids.insert(ids.end(), more.begin(), more.end());
  outbox_relay relay{*f.st, *f.pub, f.clk, fast_relay(7)};
  relay.start();
  const auto deadline = std::chrono::steady_clock::now() + 20s;
  while (!unpublished_rows(*f.st).empty()
         && std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(5ms); // bounded polling wait
  relay.stop();
  EXPECT_TRUE(unpublished_rows(*f.st).empty());

  const auto v = read_topic(*f.cluster, ids.size() + delivered_unmarked.size());
  EXPECT_EQ(v.ids, (std::set<std::string>{ids.begin(), ids.end()}));
  EXPECT_EQ(v.duplicated, delivered_unmarked);
  EXPECT_EQ(v.by_key, expected_by_key(ids, subs));
}
