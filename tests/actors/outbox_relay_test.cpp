// The outbox relay over the in-memory store: with librdkafka's mock cluster on
// loopback sockets (every row once, in order per subscription, marked only
// after delivery; brokers down and back; a restart mid-stream; a crash between
// delivery and marking) and with a scripted publisher for the exact ordering
// rules when one row fails.

#include "actors/outbox_relay.hpp"
#include "gateways/kafka_mock_cluster.hpp"
#include "gateways/kafka_publisher.hpp"
#include "persistence/memory_store.hpp"
#include "tests/actors/forwarding_store.hpp"
#include "tests/actors/outbox_relay_fixture.hpp"

#include <algorithm>
#include <atomic>
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

void create_both_tenants(store& db) { ASSERT_TRUE(create_tenants(db)); }

std::size_t unpublished(store& db) {
  auto rows = db.fetch_unpublished(0, 10'000);
  EXPECT_TRUE(rows);
  return rows ? rows->size() : 0;
}

// -- what the topic holds -----------------------------------------------------

struct topic_view {
  std::vector<std::string> ids;                           // log order
  std::map<std::string, std::vector<std::string>> by_key; // first occurrences
  std::map<std::string, int> copies;                      // id → count
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
    EXPECT_EQ(env.at("subject"), r.key);
    v.ids.push_back(id);
    if (++v.copies[id] == 1) // consumers de-duplicate by id
      v.by_key[r.key].push_back(id);
  }
  return v;
}

std::set<std::string> duplicated(const topic_view& v) {
  std::set<std::string> out;
  for (const auto& [id, n] : v.copies)
    if (n > 1)
      out.insert(id);
  return out;
}

std::set<std::string> as_set(const std::vector<std::string>& v) {
  return {v.begin(), v.end()};
}

// -- a publisher that fails on demand -----------------------------------------

/// Delivers everything except the ids in `failing`, keeping the port's
/// contract: after a failure, later events of that key are skipped.
class scripted_publisher final : public event_publisher {
public:
  std::set<std::string> failing;
  std::vector<std::vector<std::string>> calls; // ids per publish()
  std::vector<outgoing_event> log;             // what was "delivered"

  std::vector<delivery_report>
  publish(std::span<const outgoing_event> batch) override {
    std::vector<delivery_report> out(batch.size());
    std::set<std::string> failed_keys;
    calls.emplace_back();
    for (std::size_t i = 0; i < batch.size(); ++i) {
      calls.back().push_back(batch[i].id);
      if (failed_keys.contains(batch[i].key)) {
        out[i].error = publish_error{publish_errc::skipped, "earlier failed"};
      } else if (failing.contains(batch[i].id)) {
        out[i].error = publish_error{publish_errc::unavailable, "scripted"};
        failed_keys.insert(batch[i].key);
      } else {
        log.push_back(batch[i]);
      }
    }
    return out;
  }

  status probe(std::chrono::milliseconds) override { return {}; }

  std::vector<std::string> log_ids(const std::string& key) const {
    std::vector<std::string> out;
    for (const auto& e : log)
      if (e.key == key)
        out.push_back(e.id);
    return out;
  }
};

/// A store whose mark_published fails while `fail_marks` > 0.
class flaky_mark_store final : public recur::testing::forwarding_store {
public:
  std::atomic<int> fail_marks{0};
  std::vector<std::int64_t> unmarked; // positions whose mark failed

  status mark_published(std::span<const std::int64_t> p, instant at) override {
    if (fail_marks > 0) {
      --fail_marks;
      unmarked.insert(unmarked.end(), p.begin(), p.end());
      return make_error(errc::unavailable, "scripted mark failure");
    }
    return inner.mark_published(p, at);
  }
};

} // namespace

// -- configuration ------------------------------------------------------------

TEST(outbox_relay_config_check, bad_settings_are_named) {
  auto c = fast_relay();
  EXPECT_TRUE(outbox_relay::validate(c));
  c.batch_max = 0;
  auto s = outbox_relay::validate(c);
  ASSERT_FALSE(s);
  EXPECT_NE(s.error().detail.find("batch_max"), std::string::npos);
  c = fast_relay();
  c.batch_max = 10'001;
  EXPECT_FALSE(outbox_relay::validate(c));
  c = fast_relay();
  c.backoff_max = 1ms;
  EXPECT_FALSE(outbox_relay::validate(c));
}

// -- ordering rules, with a scripted publisher --------------------------------

TEST(outbox_relay_test,
     a_failed_row_holds_back_later_rows_of_its_key_but_not_other_keys) {
  memory_store db;
  create_both_tenants(db);
  manual_clock clk{t0};
  // One unit of work per 3 rows, each unit on one key: evt_0..2 → sub_0,
  // evt_3..5 → sub_3, evt_6..8 → sub_2, evt_9..11 → sub_1, evt_12..14 → sub_0.
  commit_rows(db, 0, 15, 4);
  scripted_publisher pub;
  pub.failing = {"evt_1"};
  outbox_relay relay{db, pub, clk, fast_relay(100)};

  const auto r = relay.run_once();
  EXPECT_EQ(r.fetched, 15U);
  EXPECT_EQ(r.failed, 1U);
  EXPECT_EQ(r.published, 10U); // evt_0 and every row of sub_1..3
  EXPECT_EQ(r.held, 4U);       // evt_2 and evt_12..14
  EXPECT_FALSE(r.pass_ended);
  EXPECT_EQ(pub.log_ids("sub_0"), std::vector<std::string>{"evt_0"});
  EXPECT_EQ(pub.log_ids("sub_3"),
            (std::vector<std::string>{"evt_3", "evt_4", "evt_5"}));
  EXPECT_EQ(unpublished(db), 5U); // evt_1, evt_2, evt_12..14
  const auto end = relay.run_once();
  EXPECT_EQ(end.fetched, 0U);
  EXPECT_TRUE(end.pass_ended);
  EXPECT_EQ(relay.stats().pending, 5U);

  // The next pass starts again from the failed row; while it still fails,
  // its key waits and other keys' new rows go out.
  commit_rows(db, 15, 3, 4); // evt_15..17 → sub_3
  const auto r2 = relay.run_once();
  EXPECT_EQ(r2.failed, 1U);
  EXPECT_EQ(r2.published, 3U);
  EXPECT_EQ(unpublished(db), 5U);
  EXPECT_EQ(pub.log_ids("sub_0"), std::vector<std::string>{"evt_0"});

  pub.failing.clear();
  drain(relay);
  EXPECT_EQ(unpublished(db), 0U);
  EXPECT_EQ(pub.log_ids("sub_0"),
            (std::vector<std::string>{"evt_0", "evt_1", "evt_2", "evt_12",
                                      "evt_13", "evt_14"}));
  const auto st = relay.stats();
  EXPECT_EQ(st.published, 18U);
  EXPECT_EQ(st.failures, 2U);
  EXPECT_EQ(st.pending, 0U);
  EXPECT_EQ(pub.log.size(), 18U); // nothing went out twice
}

TEST(outbox_relay_test,
     a_pass_with_a_blocked_key_restarts_after_pass_rounds_max) {
  memory_store db;
  create_both_tenants(db);
  manual_clock clk{t0};
  commit_rows(db, 0, 30, 5);
  scripted_publisher pub;
  pub.failing = {"evt_0"};
  auto cfg = fast_relay(3);
  cfg.pass_rounds_max = 2;
  outbox_relay relay{db, pub, clk, cfg};
  relay.run_once(); // evt_0 fails; sub_0 blocked
  relay.run_once();
  pub.failing.clear();
  relay.run_once(); // third round: a new pass from position 0 retries evt_0
  const auto sub_0 = pub.log_ids("sub_0");
  ASSERT_FALSE(sub_0.empty());
  EXPECT_EQ(sub_0.front(), "evt_0");
}

// -- with librdkafka's mock cluster -------------------------------------------

TEST(outbox_relay_test, every_row_reaches_the_topic_once_in_order_per_key) {
  auto cluster = start_cluster();
  ASSERT_NE(cluster, nullptr);
  auto pub = make_publisher(*cluster);
  ASSERT_NE(pub, nullptr);
  memory_store db;
  create_both_tenants(db);
  manual_clock clk{t0};
  const int subs = 5;
  const auto ids = commit_rows(db, 0, 60, subs);
  outbox_relay relay{db, *pub, clk, fast_relay(16)};

  drain(relay);
  EXPECT_EQ(unpublished(db), 0U);
  const auto st = relay.stats();
  EXPECT_EQ(st.published, ids.size());
  EXPECT_EQ(st.failures, 0U);
  EXPECT_EQ(st.pending, 0U);
  EXPECT_GT(st.last_published_position, 0);

  const auto v = read_topic(*cluster, ids.size());
  EXPECT_EQ(v.ids.size(), ids.size());
  EXPECT_TRUE(duplicated(v).empty());
  EXPECT_EQ(v.by_key, expected_by_key(ids, subs));
}

TEST(outbox_relay_test,
     rows_stay_unpublished_while_brokers_are_down_and_all_arrive_after) {
  auto cluster = start_cluster();
  ASSERT_NE(cluster, nullptr);
  auto pub = make_publisher(*cluster);
  ASSERT_NE(pub, nullptr);
  memory_store db;
  create_both_tenants(db);
  manual_clock clk{t0};
  const int subs = 4;
  auto ids = commit_rows(db, 0, 12, subs);
  outbox_relay relay{db, *pub, clk, fast_relay(50)};
  drain(relay);
  ASSERT_EQ(unpublished(db), 0U);

  ASSERT_TRUE(cluster->set_all_brokers_up(false));
  const auto more = commit_rows(db, 12, 24, subs);
  ids.insert(ids.end(), more.begin(), more.end());
  const auto down = relay.run_once();
  EXPECT_EQ(down.fetched, more.size());
  EXPECT_EQ(down.published, 0U);
  EXPECT_GT(down.failed, 0U);
  EXPECT_EQ(down.failed + down.held, more.size());
  EXPECT_EQ(unpublished(db), more.size()); // nothing marked without a report
  EXPECT_TRUE(relay.run_once().pass_ended);
  EXPECT_EQ(relay.stats().pending, more.size());

  ASSERT_TRUE(cluster->set_all_brokers_up(true));
  drain(relay);
  EXPECT_EQ(unpublished(db), 0U);
  const auto v = read_topic(*cluster, ids.size());
  EXPECT_EQ(as_set(v.ids), as_set(ids));
  EXPECT_EQ(v.by_key, expected_by_key(ids, subs));
  // Never sent while down, so never written twice.
  EXPECT_TRUE(duplicated(v).empty());
  EXPECT_EQ(relay.stats().pending, 0U);
}

TEST(outbox_relay_test,
     rows_delivered_but_not_marked_repeat_after_a_restart_and_only_they) {
  auto cluster = start_cluster();
  ASSERT_NE(cluster, nullptr);
  auto pub = make_publisher(*cluster);
  ASSERT_NE(pub, nullptr);
  flaky_mark_store db;
  create_both_tenants(db);
  manual_clock clk{t0};
  const int subs = 3;
  const auto ids = commit_rows(db, 0, 45, subs);

  std::set<std::string> unmarked_ids;
  {
    outbox_relay first{db, *pub, clk, fast_relay(10)};
    first.run_once();  // marked
    db.fail_marks = 1; // "crash" between delivery and marking
    const auto r = first.run_once();
    EXPECT_TRUE(r.store_error);
    EXPECT_EQ(first.stats().unmarked, 10U);
  } // the relay is gone; its memory with it
  auto rows = db.inner.fetch_unpublished(0, 1000);
  ASSERT_TRUE(rows);
  for (const auto& row : *rows)
    if (std::find(db.unmarked.begin(), db.unmarked.end(), row.position)
        != db.unmarked.end())
      unmarked_ids.insert(row.message.id);
  ASSERT_EQ(unmarked_ids.size(), 10U);

  outbox_relay second{db, *pub, clk, fast_relay(10)};
  drain(second);
  EXPECT_EQ(unpublished(db), 0U);
  const auto v = read_topic(*cluster, ids.size() + unmarked_ids.size());
  EXPECT_EQ(as_set(v.ids), as_set(ids));           // nothing lost
  EXPECT_EQ(duplicated(v), unmarked_ids);          // only those repeat
  EXPECT_EQ(v.by_key, expected_by_key(ids, subs)); // order of first copies
}

TEST(
  outbox_relay_test,
  a_running_relay_stopped_mid_stream_and_replaced_loses_and_reorders_nothing) {
  auto cluster = start_cluster();
  ASSERT_NE(cluster, nullptr);
  auto pub = make_publisher(*cluster);
  ASSERT_NE(pub, nullptr);
  memory_store db;
  create_both_tenants(db);
  manual_clock clk{t0};
  const int subs = 6;
  auto ids = commit_rows(db, 0, 90, subs);

  auto first = std::make_unique<outbox_relay>(db, *pub, clk, fast_relay(5));
  first->start();
  EXPECT_TRUE(first->stats().running);
  const auto deadline = std::chrono::steady_clock::now() + 10s;
  while (first->stats().published < 20
         && std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(1ms); // bounded polling wait
  first->stop();
  const auto published_by_first = first->stats().published;
  EXPECT_GE(published_by_first, 20U);
  EXPECT_FALSE(first->stats().running);
  first.reset();

  // Rows keep coming while no relay runs; a new relay picks up everything.
  const auto more = commit_rows(db, 90, 30, subs);
  ids.insert(ids.end(), more.begin(), more.end());
  outbox_relay second{db, *pub, clk, fast_relay(5)};
  second.start();
  second.wake();
  while (unpublished(db) > 0 && std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(1ms);
  second.stop();
  EXPECT_EQ(unpublished(db), 0U);
  EXPECT_EQ(published_by_first + second.stats().published, ids.size());

  const auto v = read_topic(*cluster, ids.size());
  EXPECT_EQ(as_set(v.ids), as_set(ids));
  EXPECT_TRUE(duplicated(v).empty()); // a clean stop marks what it sent
  EXPECT_EQ(v.by_key, expected_by_key(ids, subs));
}
