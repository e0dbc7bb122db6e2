// The Kafka publisher against librdkafka's mock cluster over real loopback
// sockets: what lands in the topic (key, envelope, headers), per-key order,
// failures while brokers are down or refuse produce requests, configuration
// checks and the readiness probe.

#include "gateways/kafka_mock_cluster.hpp"
#include "gateways/kafka_publisher.hpp"

#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

using namespace recur;
using namespace std::chrono_literals;

namespace {

constexpr auto read_timeout = 10s;
const std::string topic = "recur.events";

std::unique_ptr<kafka_mock_cluster> start_cluster(int brokers = 1,
                                                  int partitions = 3) {
  auto c = kafka_mock_cluster::start(brokers);
  if (!c) {
    ADD_FAILURE() << "mock cluster: " << c.error().detail;
    return nullptr;
  }
  if (auto s = (*c)->create_topic(topic, partitions); !s) {
    ADD_FAILURE() << "create_topic: " << s.error().detail;
    return nullptr;
  }
  return std::move(*c);
}

/// Short timeouts, so that failure paths finish in well under a second.
kafka_publisher_config fast_config(const std::string& bootstrap) {
  kafka_publisher_config c;
  c.bootstrap_servers = bootstrap;
  c.topic = topic;
  c.message_timeout = 1500ms;
  c.report_grace = 1000ms;
  c.linger = 1ms;
  c.request_timeout = 1000ms;
  c.socket_timeout = 1000ms;
  c.properties = {{"reconnect.backoff.ms", "10"},
                  {"reconnect.backoff.max.ms", "100"},
                  {"retry.backoff.ms", "10"}};
  return c;
}

std::unique_ptr<kafka_publisher> make_publisher(kafka_publisher_config c) {
  auto p = kafka_publisher::create(std::move(c));
  if (!p) {
    ADD_FAILURE() << "create: " << p.error().detail;
    return nullptr;
  }
  return std::move(*p);
}

outgoing_event event(const std::string& id, const std::string& key,
                     std::string data = R"({"n": 1})") {
  return outgoing_event{id,
                        key,
                        "subscription.activated",
                        "ten_a",
                        "sub/" + key,
                        utc(2024, 2, 29, 12, 30, 5),
                        std::move(data)};
}

std::string header(const consumed_record& r, const std::string& name) {
  for (const auto& [n, v] : r.headers)
    if (n == name)
      return v;
  return "<missing>";
}

/// The ids of each key's records, in log order.
std::map<std::string, std::vector<std::string>>
ids_by_key(const std::vector<consumed_record>& records) {
  std::map<std::string, std::vector<std::string>> out;
  for (const auto& r : records)
    out[r.key].push_back(nlohmann::json::parse(r.value).at("id"));
  return out;
}

std::size_t delivered(const std::vector<delivery_report>& reports) {
  std::size_t n = 0;
  for (const auto& r : reports)
    n += r.ok() ? 1 : 0;
  return n;
}

} // namespace

// -- envelope -----------------------------------------------------------------

TEST(kafka_envelope, data_is_embedded_as_json_and_time_is_rfc3339_utc) {
  auto env = event_envelope_json(
    event("evt_1", "sub_1", R"({"amount_minor": 1200, "tags": ["a"]})"));
  ASSERT_TRUE(env) << env.error().detail;
  const auto j = nlohmann::json::parse(*env);
  EXPECT_EQ(j.at("id"), "evt_1");
  EXPECT_EQ(j.at("type"), "subscription.activated");
  EXPECT_EQ(j.at("tenant_id"), "ten_a");
  EXPECT_EQ(j.at("subject"), "sub/sub_1");
  EXPECT_EQ(j.at("time"), "2024-02-29T12:30:05Z");
  ASSERT_TRUE(j.at("data").is_object());
  EXPECT_EQ(j.at("data").at("amount_minor"), 1200);
  EXPECT_EQ(j.at("data").at("tags"), nlohmann::json::array({"a"}));
  EXPECT_EQ(j.size(), 6U);
  EXPECT_EQ(env->rfind(R"({"id":"evt_1","type")", 0), 0U) << *env;
}

TEST(kafka_envelope, data_that_is_not_json_is_invalid_argument) {
  auto env = event_envelope_json(event("evt_1", "sub_1", "{not json"));
  ASSERT_FALSE(env);
  EXPECT_EQ(env.code(), errc::invalid_argument);
}

// -- configuration ------------------------------------------------------------

TEST(kafka_publisher_config_check, bad_settings_are_rejected_by_name) {
  auto empty = kafka_publisher::create(kafka_publisher_config{});
  ASSERT_FALSE(empty);
  EXPECT_EQ(empty.code(), errc::invalid_argument);
  EXPECT_NE(empty.error().detail.find("bootstrap_servers"), std::string::npos);

  auto c = fast_config("127.0.0.1:1");
  c.properties = {{"enable.idempotence", "false"}};
  auto pinned = kafka_publisher::create(c);
  ASSERT_FALSE(pinned);
  EXPECT_NE(pinned.error().detail.find("enable.idempotence"),
            std::string::npos);

  c.properties = {{"no.such.property", "1"}};
  auto unknown = kafka_publisher::create(c);
  ASSERT_FALSE(unknown);
  EXPECT_EQ(unknown.code(), errc::invalid_argument);
  EXPECT_NE(unknown.error().detail.find("no.such.property"), std::string::npos);

  c = fast_config("127.0.0.1:1");
  c.batch_max = 0;
  EXPECT_FALSE(kafka_publisher::create(c));
}

// -- publishing ---------------------------------------------------------------

TEST(kafka_publisher_test,
     a_batch_is_read_back_with_keys_envelopes_and_headers) {
  auto cluster = start_cluster(3, 4);
  ASSERT_NE(cluster, nullptr);
  auto pub = make_publisher(fast_config(cluster->bootstrap_servers()));
  ASSERT_NE(pub, nullptr);

  std::vector<outgoing_event> batch;
  batch.reserve(12);
  for (int i = 0; i < 12; ++i)
    batch.push_back(event("evt_" + std::to_string(i),
                          "sub_" + std::to_string(i % 3),
                          R"({"i": )" + std::to_string(i) + "}"));
  const auto reports = pub->publish(batch);
  ASSERT_EQ(reports.size(), batch.size());
  for (std::size_t i = 0; i < reports.size(); ++i) {
    ASSERT_TRUE(reports[i].ok()) << i << ": " << reports[i].error->detail;
    EXPECT_GE(reports[i].partition, 0);
    EXPECT_GE(reports[i].offset, 0);
  }

  auto records = kafka_read_topic(cluster->bootstrap_servers(), topic,
                                  batch.size(), read_timeout);
  ASSERT_TRUE(records) << records.error().detail;
  ASSERT_EQ(records->size(), batch.size());
  for (const auto& r : *records) {
    const auto j = nlohmann::json::parse(r.value);
    const int i = std::stoi(j.at("id").get<std::string>().substr(4));
    EXPECT_EQ(r.key, "sub_" + std::to_string(i % 3));
    EXPECT_EQ(j.at("tenant_id"), "ten_a");
    EXPECT_EQ(j.at("subject"), "sub/" + r.key);
    EXPECT_EQ(j.at("time"), "2024-02-29T12:30:05Z");
    EXPECT_EQ(j.at("data").at("i"), i);
    EXPECT_EQ(header(r, "content-type"), "application/json");
    EXPECT_EQ(header(r, "recur-event-id"), j.at("id"));
    EXPECT_EQ(header(r, "recur-event-type"), "subscription.activated");
  }
  // One key, one partition, batch order.
  const auto by_key = ids_by_key(*records);
  EXPECT_EQ(by_key.at("sub_0"),
            (std::vector<std::string>{"evt_0", "evt_3", "evt_6", "evt_9"}));
  EXPECT_EQ(by_key.at("sub_1"),
            (std::vector<std::string>{"evt_1", "evt_4", "evt_7", "evt_10"}));
}

TEST(kafka_publisher_test, a_batch_longer_than_batch_max_goes_out_in_order) {
  auto cluster = start_cluster(1, 2);
  ASSERT_NE(cluster, nullptr);
  auto c = fast_config(cluster->bootstrap_servers());
  c.batch_max = 7;
  auto pub = make_publisher(c);
  ASSERT_NE(pub, nullptr);
  std::vector<outgoing_event> batch;
  std::vector<std::string> ids;
  for (int i = 0; i < 30; ++i) {
    ids.push_back("evt_" + std::to_string(100 + i));
    batch.push_back(event(ids.back(), "sub_x"));
  }
  EXPECT_EQ(delivered(pub->publish(batch)), batch.size());
  auto records = kafka_read_topic(cluster->bootstrap_servers(), topic,
                                  batch.size(), read_timeout);
  ASSERT_TRUE(records);
  EXPECT_EQ(ids_by_key(*records)["sub_x"], ids);
}

TEST(kafka_publisher_test,
     an_event_that_is_not_json_fails_and_later_events_of_its_key_are_skipped) {
  auto cluster = start_cluster();
  ASSERT_NE(cluster, nullptr);
  auto pub = make_publisher(fast_config(cluster->bootstrap_servers()));
  ASSERT_NE(pub, nullptr);
  const std::vector<outgoing_event> batch{event("evt_1", "sub_a"),
                                          event("evt_2", "sub_a", "not json"),
                                          event("evt_3", "sub_b"),
                                          event("evt_4", "sub_a")};
  const auto reports = pub->publish(batch);
  ASSERT_EQ(reports.size(), 4U);
  EXPECT_TRUE(reports[0].ok());
  ASSERT_FALSE(reports[1].ok());
  EXPECT_EQ(reports[1].error->code, publish_errc::invalid_event);
  EXPECT_FALSE(is_retriable(reports[1].error->code));
  EXPECT_TRUE(reports[2].ok());
  ASSERT_FALSE(reports[3].ok());
  EXPECT_EQ(reports[3].error->code, publish_errc::skipped);

  auto records = kafka_read_topic(cluster->bootstrap_servers(), topic, 2,
                                  read_timeout);
  ASSERT_TRUE(records);
  const auto by_key = ids_by_key(*records);
  EXPECT_EQ(by_key.at("sub_a"), std::vector<std::string>{"evt_1"});
  EXPECT_EQ(by_key.at("sub_b"), std::vector<std::string>{"evt_3"});
}

TEST(kafka_publisher_test,
     events_fail_retriably_while_every_broker_is_down_and_go_through_after) {
  auto cluster = start_cluster(1, 1);
  ASSERT_NE(cluster, nullptr);
  auto pub = make_publisher(fast_config(cluster->bootstrap_servers()));
  ASSERT_NE(pub, nullptr);
  ASSERT_EQ(delivered(pub->publish(std::vector{event("evt_0", "sub_a")})), 1U);

  ASSERT_TRUE(cluster->set_all_brokers_up(false));
  const std::vector<outgoing_event> batch{event("evt_1", "sub_a"),
                                          event("evt_2", "sub_b")};
  const auto started = std::chrono::steady_clock::now();
  const auto down = pub->publish(batch);
  const auto took = std::chrono::steady_clock::now() - started;
  ASSERT_EQ(down.size(), 2U);
  for (const auto& r : down) {
    ASSERT_FALSE(r.ok());
    EXPECT_TRUE(is_retriable(r.error->code)) << to_string(r.error->code);
  }
  EXPECT_LT(took, 5s); // bounded by message_timeout + report_grace

  ASSERT_TRUE(cluster->set_all_brokers_up(true));
  const auto up = pub->publish(batch);
  for (const auto& r : up)
    EXPECT_TRUE(r.ok()) << to_string(r.error->code) << " " << r.error->detail;
  auto records = kafka_read_topic(cluster->bootstrap_servers(), topic, 3,
                                  read_timeout);
  ASSERT_TRUE(records);
  const auto by_key = ids_by_key(*records);
  EXPECT_EQ(by_key.at("sub_a"), (std::vector<std::string>{"evt_0", "evt_1"}));
  EXPECT_EQ(by_key.at("sub_b"), std::vector<std::string>{"evt_2"});
}

TEST(kafka_publisher_test,
     retriable_produce_errors_are_retried_inside_the_producer) {
  auto cluster = start_cluster(1, 1);
  ASSERT_NE(cluster, nullptr);
  auto pub = make_publisher(fast_config(cluster->bootstrap_servers()));
  ASSERT_NE(pub, nullptr);
  const std::int16_t errors[] = {kafka_error::not_enough_replicas,
                                 kafka_error::not_enough_replicas};
  cluster->push_produce_errors(errors);
  const std::vector<outgoing_event> batch{event("evt_1", "sub_a"),
                                          event("evt_2", "sub_a")};
  EXPECT_EQ(delivered(pub->publish(batch)), 2U);
  auto records = kafka_read_topic(cluster->bootstrap_servers(), topic, 2,
                                  read_timeout);
  ASSERT_TRUE(records);
  // Idempotence: the retries wrote each event once, in order.
  EXPECT_EQ(ids_by_key(*records)["sub_a"],
            (std::vector<std::string>{"evt_1", "evt_2"}));
}

TEST(kafka_publisher_test, a_produce_request_the_broker_refuses_is_rejected) {
  auto cluster = start_cluster(1, 1);
  ASSERT_NE(cluster, nullptr);
  auto pub = make_publisher(fast_config(cluster->bootstrap_servers()));
  ASSERT_NE(pub, nullptr);
  const std::int16_t errors[] = {kafka_error::topic_authorization_failed};
  cluster->push_produce_errors(errors);
  const auto refused = pub->publish(std::vector{event("evt_1", "sub_a")});
  ASSERT_FALSE(refused[0].ok());
  EXPECT_EQ(refused[0].error->code, publish_errc::rejected)
    << to_string(refused[0].error->code) << " " << refused[0].error->detail;

  // The producer carries on (or is replaced) and the next batch goes out.
  const auto later = pub->publish(std::vector{event("evt_2", "sub_a")});
  EXPECT_TRUE(later[0].ok()) << later[0].error->detail;
  auto records = kafka_read_topic(cluster->bootstrap_servers(), topic, 1,
                                  read_timeout);
  ASSERT_TRUE(records);
  EXPECT_EQ(ids_by_key(*records)["sub_a"], std::vector<std::string>{"evt_2"});
}

TEST(kafka_publisher_test, probe_answers_when_the_cluster_is_up_only) {
  auto cluster = start_cluster();
  ASSERT_NE(cluster, nullptr);
  auto pub = make_publisher(fast_config(cluster->bootstrap_servers()));
  ASSERT_NE(pub, nullptr);
  EXPECT_TRUE(pub->probe(2s));

  // Port 1 on loopback: nothing listens there.
  auto nowhere = make_publisher(fast_config("127.0.0.1:1"));
  ASSERT_NE(nowhere, nullptr);
  const auto started = std::chrono::steady_clock::now();
  auto s = nowhere->probe(300ms);
  ASSERT_FALSE(s);
  EXPECT_EQ(s.code(), errc::unavailable);
  EXPECT_LT(std::chrono::steady_clock::now() - started, 3s);
}

TEST(kafka_mock_cluster_test, bad_arguments_are_refused) {
  EXPECT_FALSE(kafka_mock_cluster::start(0));
  auto cluster = start_cluster();
  ASSERT_NE(cluster, nullptr);
  EXPECT_FALSE(cluster->create_topic("", 1));
  EXPECT_FALSE(cluster->create_topic("t", 0));
  EXPECT_FALSE(cluster->create_topic("t", 1, 2)); // only one broker
  EXPECT_FALSE(cluster->set_broker_up(2, false));
  EXPECT_NE(cluster->bootstrap_servers().find("127.0.0.1:"), std::string::npos);
}
