// recurd's --kafka embedded wiring over the PostgreSQL store (label pg):
// outbox rows committed in units of work reach recur.events once each, in
// order per subscription, and are marked published; a second pipeline
// started after the first stopped publishes only what was committed since.
// Also /readyz's Kafka check against a mock cluster the test takes down
// (in process, memory store: it needs no database).

#include <chrono>
#include <map>
#include <optional>
#include <thread>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "api/events_wiring.hpp"
#include "api/health.hpp"
#include "gateways/kafka_mock_cluster.hpp"
#include "persistence/memory_store.hpp"
#include "persistence/pg_store.hpp"
#include "tests/persistence/pg_testdb.hpp"

using namespace recur;
using namespace recur::api;
using nlohmann::json;

namespace {

const tenant_id tenant{"ten_k"};

status commit_rows(store& st, const std::string& sub, int from, int to,
                   instant at) {
  unit_of_work w;
  w.tenant = tenant;
  for (int i = from; i < to; ++i)
    w.outbox.push_back(outbox_message{sub + "/" + std::to_string(i), sub,
                                      "subscription.updated", sub,
                                      json{{"n", i}}.dump(), at});
  auto done = st.commit(w);
  if (!done)
    return done.error();
  return {};
}

bool wait_published(event_pipeline& p, std::uint64_t n) {
  const auto deadline = std::chrono::steady_clock::now()
                        + std::chrono::seconds{15};
  while (p.stats().published < n && std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(std::chrono::milliseconds{10});
  return p.stats().published >= n;
}

} // namespace

TEST(kafka_pg,
     embedded_pipeline_publishes_committed_rows_in_order_and_marks_them) {
  auto db = pgtest::scratch_db::create();
  ASSERT_NE(db, nullptr);
  auto st = open_pg_store(db->config());
  ASSERT_TRUE(st.has_value()) << st.error().detail;
  manual_clock clk{utc(2024, 3, 1)};
  ASSERT_TRUE((*st)
                ->create_tenant(tenant_record{tenant, "k", std::string(64, 'k'),
                                              false, clk.now()})
                .has_value());
  event_pipeline_options opts;
  opts.relay.poll_interval = std::chrono::milliseconds{20};
  auto p = start_event_pipeline("embedded", **st, clk, opts);
  ASSERT_TRUE(p.has_value()) << p.error().detail;
  for (int batch = 0; batch < 5; ++batch) {
    ASSERT_TRUE(commit_rows(**st, "sub_a", batch * 4, batch * 4 + 4, clk.now())
                  .has_value());
    ASSERT_TRUE(commit_rows(**st, "sub_b", batch * 4, batch * 4 + 4, clk.now())
                  .has_value());
    (*p)->wake();
  }
  ASSERT_TRUE(wait_published(**p, 40)) << (*p)->stats().published;
  auto records = kafka_read_topic((*p)->bootstrap_servers(), "recur.events", 40,
                                  std::chrono::seconds{10});
  ASSERT_TRUE(records.has_value()) << records.error().detail;
  ASSERT_EQ(records->size(), 40U);
  std::map<std::string, int> next;
  for (const auto& r : *records) {
    const auto env = json::parse(r.value);
    EXPECT_EQ(env["tenant_id"], tenant.value);
    EXPECT_EQ(env["data"]["n"].get<int>(), next[r.key]++) << r.key;
  }
  EXPECT_EQ(next["sub_a"], 20);
  EXPECT_EQ(next["sub_b"], 20);
  auto left = (*st)->fetch_unpublished(0, 100);
  ASSERT_TRUE(left.has_value());
  EXPECT_TRUE(left->empty());
  (*p)->stop();
}

// -- /readyz's Kafka check
// ------------------------------------------------------

namespace {

struct database_up final : readiness_probe {
  bool database_ok() override { return true; }
};

http_response readyz(readiness_probe& probe) {
  return route_health(http_request{"GET", "/readyz", {}, {}}, probe);
}

} // namespace

TEST(kafka_readiness,
     readyz_is_200_with_the_cluster_up_and_503_naming_kafka_when_it_is_down) {
  auto cluster = kafka_mock_cluster::start(1);
  ASSERT_TRUE(cluster.has_value()) << cluster.error().detail;
  ASSERT_TRUE((*cluster)->create_topic("recur.events", 1).has_value());
  memory_store st;
  manual_clock clk{utc(2024, 3, 1)};
  event_pipeline_options opts;
  opts.ready_timeout = std::chrono::milliseconds{300};
  opts.ready_cache = std::chrono::milliseconds{100};
  auto p = start_event_pipeline((*cluster)->bootstrap_servers(), st, clk, opts);
  ASSERT_TRUE(p.has_value()) << p.error().detail;
  database_up db;
  const auto probe = with_kafka_check(db, **p);

  const auto up = readyz(*probe);
  EXPECT_EQ(up.status, 200u) << up.body;
  EXPECT_EQ(json::parse(up.body).at("kafka"), "ok");

  ASSERT_TRUE((*cluster)->set_all_brokers_up(false).has_value());
  // Bounded polling: the answer is cached for ready_cache.
  http_response down;
  const auto deadline = std::chrono::steady_clock::now()
                        + std::chrono::seconds{5};
  do {
    down = readyz(*probe);
    if (down.status == 503u)
      break;
    std::this_thread::sleep_for(std::chrono::milliseconds{50});
  } while (std::chrono::steady_clock::now() < deadline);
  ASSERT_EQ(down.status, 503u) << down.body;
  const auto doc = json::parse(down.body);
  EXPECT_EQ(doc.at("kafka"), "unavailable");
  EXPECT_EQ(doc.at("database"), "ok");
  EXPECT_EQ(doc.at("failing"), json::parse(R"(["kafka"])"));
  // /healthz (liveness) does not depend on Kafka.
  EXPECT_EQ(
    route_health(http_request{"GET", "/healthz", {}, {}}, *probe).status, 200u);
  EXPECT_TRUE((*cluster)->set_all_brokers_up(true).has_value());
  (*p)->stop();
  EXPECT_EQ((*p)->kafka_ready(), std::optional<bool>{false});
}

TEST(kafka_readiness, answers_are_cached_so_readyz_cannot_hammer_the_brokers) {
  auto cluster = kafka_mock_cluster::start(1);
  ASSERT_TRUE(cluster.has_value()) << cluster.error().detail;
  memory_store st;
  manual_clock clk{utc(2024, 3, 1)};
  event_pipeline_options opts;
  opts.ready_timeout = std::chrono::milliseconds{300};
  opts.ready_cache = std::chrono::seconds{30};
  auto p = start_event_pipeline((*cluster)->bootstrap_servers(), st, clk, opts);
  ASSERT_TRUE(p.has_value()) << p.error().detail;
  EXPECT_EQ((*p)->kafka_ready(), std::optional<bool>{true});
  ASSERT_TRUE((*cluster)->set_all_brokers_up(false).has_value());
  // Within the cache window the brokers are not asked again: still true.
  for (int i = 0; i < 100; ++i)
    ASSERT_EQ((*p)->kafka_ready(), std::optional<bool>{true});
  EXPECT_TRUE((*cluster)->set_all_brokers_up(true).has_value());
}

TEST(kafka_readiness, kafka_none_is_not_checked) {
  memory_store st;
  manual_clock clk{utc(2024, 3, 1)};
  auto p = start_event_pipeline("none", st, clk);
  ASSERT_TRUE(p.has_value()) << p.error().detail;
  EXPECT_EQ((*p)->kafka_ready(), std::nullopt);
  database_up db;
  const auto probe = with_kafka_check(db, **p);
  const auto res = readyz(*probe);
  EXPECT_EQ(res.status, 200u);
  EXPECT_EQ(json::parse(res.body).at("kafka"), "not_configured");
}
