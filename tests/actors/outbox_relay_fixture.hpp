#pragma once
// What the outbox relay tests share, over any store: two tenants, outbox rows
// committed round-robin over subscriptions, a mock cluster with the events
// topic, a publisher tuned for fast failure, and a drain loop.

#include <chrono>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "actors/outbox_relay.hpp"
#include "gateways/kafka_mock_cluster.hpp"
#include "gateways/kafka_publisher.hpp"
#include "sagas/store.hpp"

namespace recur::testing::relay {

using namespace std::chrono_literals;

inline const std::string topic = "recur.events";
inline const tenant_id tenant_a{"ten_a"};
inline const tenant_id tenant_b{"ten_b"};
inline const instant t0 = utc(2024, 3, 1);
inline constexpr auto read_timeout = 10s;
inline constexpr int rounds_max = 1000; // a drain loop that never ends fails

inline status create_tenants(store& db) {
  for (const auto* t : {&tenant_a, &tenant_b})
    if (auto made = db.create_tenant(tenant_record{
          *t, t->value, std::string(64, t->value.back()), false, t0});
        !made)
      return made;
  return {};
}

/// Commits `count` outbox rows, `per_unit` per unit of work, round-robin over
/// `subs` subscriptions (tenant a for even subscriptions, b for odd ones).
/// Returns the ids in commit order. With the default `per_unit`, `first` must
/// be a multiple of 3 for `key_of`.
inline std::vector<std::string> commit_rows(store& db, int first, int count,
                                            int subs, int per_unit = 3) {
  std::vector<std::string> ids;
  for (int i = first; i < first + count;) {
    unit_of_work w;
    const int sub = i % subs;
    w.tenant = sub % 2 == 0 ? tenant_a : tenant_b;
    for (int k = 0; k < per_unit && i < first + count; ++k, ++i) {
      // One unit holds one tenant's rows; the others of this unit go to the
      // same subscription, which keeps commit order = id order per key.
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

/// The key each committed id went to (rows committed 3 per unit).
inline std::string key_of(const std::string& id, int subs) {
  return "sub_" + std::to_string(std::stoi(id.substr(4)) / 3 * 3 % subs);
}

/// Each key's ids in commit order.
inline std::map<std::string, std::vector<std::string>>
expected_by_key(const std::vector<std::string>& ids, int subs) {
  std::map<std::string, std::vector<std::string>> out;
  for (const auto& id : ids)
    out[key_of(id, subs)].push_back(id);
  return out;
}

inline void drain(outbox_relay& relay) {
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

inline std::unique_ptr<kafka_mock_cluster> start_cluster() {
  auto c = kafka_mock_cluster::start(1);
  if (!c) {
    ADD_FAILURE() << c.error().detail;
    return nullptr;
  }
  EXPECT_TRUE((*c)->create_topic(topic, 4));
  return std::move(*c);
}

/// A publisher that gives up on a down cluster within about a second.
inline std::unique_ptr<kafka_publisher>
make_publisher(const kafka_mock_cluster& c) {
  kafka_publisher_config cfg;
  cfg.bootstrap_servers = c.bootstrap_servers();
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
    return nullptr;
  }
  return std::move(*p);
}

inline outbox_relay_config fast_relay(std::size_t batch_max = 16) {
  outbox_relay_config c;
  c.batch_max = batch_max;
  c.poll_interval = 10ms;
  c.backoff_min = 5ms;
  c.backoff_max = 50ms;
  return c;
}

} // namespace recur::testing::relay
