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

const std::string topic = "recur.events";
const tenant_id tenant_a{"ten_a"};
const tenant_id tenant_b{"ten_b"};
const instant t0 = utc(2024, 3, 1);
constexpr auto read_timeout = 10s;
constexpr int rounds_max = 1000;

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
    for (const auto* t : {&tenant_a, &tenant_b})
      if (auto made = st->create_tenant(tenant_record{
            *t, t->value, std::string(64, t->value.back()), false, t0});
          !made) {
        ADD_FAILURE() << "create_tenant: " << made.error().detail;
        return false;
      }
    auto c = kafka_mock_cluster::start(1);
    if (!c || !(*c)->create_topic(topic, 4)) {
      ADD_FAILURE() << "mock cluster did not start";
      return false;
    }
    cluster = std::move(*c);
    kafka_publisher_config cfg;
    cfg.bootstrap_servers = cluster->bootstrap_servers();
    cfg.topic = topic;
    cfg.message_timeout = 1000ms;
    cfg.report_grace = 1000ms;
    cfg.linger = 1ms;
    cfg.request_timeout = 800ms;
    cfg.socket_timeout = 800ms;
    cfg.properties = {{"reconnect.backoff.ms", "10"},
                      {"reconnect.backoff.max.ms", "100"},
                      {"retry.backoff.ms", "10"}};
    auto p = kafka_publisher::create(cfg);
    if (!p) {
      ADD_FAILURE() << p.error().detail;
      return false;
    }
    pub = std::move(*p);
    return true;
  }

  ~pg_kafka_fixture() {
    pub.reset();
    cluster.reset();
    st.reset(); // close connections before the database goes
  }
};

/// Commits `count` rows in units of 3 rows of one subscription each, the
/// subscription chosen round-robin over `subs` (tenant by parity). Returns the
/// ids in commit order. `first` must be a multiple of 3.
std::vector<std::string> commit_rows(store& db, int first, int count,
                                     int subs) {
  std::vector<std::string> ids;
  for (int i = first; i < first + count;) {
    unit_of_work w;
    const int sub = i % subs;
    w.tenant = sub % 2 == 0 ? tenant_a : tenant_b;
    for (int k = 0; k < 3 && i < first + count; ++k, ++i) {
      const std::string id = "evt_" + std::to_string(i);
      const std::string key = "sub_" + std::to_string(sub);
      w.outbox.push_back(outbox_message{id, key, "subscription.renewed", key,
                                        R"({"seq": )" + std::to_string(i) + "}",
                                        t0.plus_seconds(i)});
      ids.push_back(id);
    }
    auto done = db.commit(w);
    EXPECT_TRUE(done) << done.error().detail;
  }
  return ids;
}

std::string key_of(const std::string& id, int subs) {
  return "sub_" + std::to_string(std::stoi(id.substr(4)) / 3 * 3 % subs);
}

std::map<std::string, std::vector<std::string>>
expected_by_key(const std::vector<std::string>& ids, int subs) {
  std::map<std::string, std::vector<std::string>> out;
  for (const auto& id : ids)
    out[key_of(id, subs)].push_back(id);
  return out;
}

std::vector<outbox_record> unpublished_rows(store& db) {
  auto rows = db.fetch_unpublished(0, 10'000);
  EXPECT_TRUE(rows) << rows.error().detail;
  return rows ? *rows : std::vector<outbox_record>{};
}

void drain(outbox_relay& relay) {
  // Done when a whole pass, started from position 0, fetched nothing.
  bool at_pass_start = false;
  for (int i = 0; i < rounds_max; ++i) {
    const auto r = relay.run_once();
    if (r.fetched == 0 && at_pass_start)
      return;
    at_pass_start = r.pass_ended;
  }
  ADD_FAILURE() << "the outbox did not drain in " << rounds_max << " rounds";
}

outbox_relay_config fast_relay(std::size_t batch_max) {
  outbox_relay_config c;
  c.batch_max = batch_max;
  c.poll_interval = 10ms;
  c.backoff_min = 5ms;
  c.backoff_max = 50ms;
  return c;
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
