#pragma once
/// An in-process Kafka cluster (librdkafka's mock cluster) that speaks the
/// Kafka protocol on loopback sockets: `recurd --kafka embedded` and the tests
/// publish to it and read from it like from a real cluster. Faults can be
/// injected: brokers going down, produce requests answered with errors.
///
/// Also here: `kafka_read_topic`, a small consumer that reads a topic back
/// from the beginning, for tests and operators' checks.

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "domain/error.hpp"

namespace recur {

/// Kafka protocol error codes (stable, from the protocol specification) for
/// `push_produce_errors`.
namespace kafka_error {
inline constexpr std::int16_t not_leader_for_partition = 6;
inline constexpr std::int16_t request_timed_out = 7;
inline constexpr std::int16_t message_too_large = 10;
inline constexpr std::int16_t not_enough_replicas = 19;
inline constexpr std::int16_t topic_authorization_failed = 29;
} // namespace kafka_error

class kafka_mock_cluster {
public:
  static constexpr int brokers_max = 16;

  /// Starts `brokers` (1..brokers_max) brokers, ids 1..brokers, each
  /// listening on its own 127.0.0.1 port. `unavailable` if it cannot start.
  static result<std::unique_ptr<kafka_mock_cluster>> start(int brokers = 1);

  ~kafka_mock_cluster();
  kafka_mock_cluster(const kafka_mock_cluster&) = delete;
  kafka_mock_cluster& operator=(const kafka_mock_cluster&) = delete;

  /// "127.0.0.1:port,…": what clients put in bootstrap.servers.
  const std::string& bootstrap_servers() const noexcept;
  int broker_count() const noexcept;

  /// Creates `topic` with `partitions` (1..1000) partitions. Topics a client
  /// uses without creating them are made with the mock's defaults.
  status create_topic(const std::string& topic, int partitions,
                      int replication_factor = 1);

  /// Takes one broker (1..broker_count) down or brings it back: its
  /// connections are closed and new ones refused while it is down.
  status set_broker_up(int broker_id, bool up);
  /// Every broker at once.
  status set_all_brokers_up(bool up);

  /// The next produce requests (one per code, in order, on any broker) are
  /// answered with these Kafka error codes (see `kafka_error`).
  void push_produce_errors(std::span<const std::int16_t> kafka_error_codes);
  void clear_produce_errors();

  struct impl;

private:
  explicit kafka_mock_cluster(std::unique_ptr<impl> p);

  std::unique_ptr<impl> impl_;
};

/// One record read back from a topic.
struct consumed_record {
  std::int32_t partition = -1;
  std::int64_t offset = -1;
  std::string key;
  std::string value;
  std::vector<std::pair<std::string, std::string>> headers;
};

/// Reads `topic` from the beginning of every partition until at least
/// `expected` records have arrived and every partition is at its end, or
/// `timeout` passes (then it returns what it has: compare the count).
/// Records are in partition order, then offset order. At most `records_max`
/// are read. `unavailable` when the topic's partitions cannot be learnt.
result<std::vector<consumed_record>>
kafka_read_topic(const std::string& bootstrap_servers, const std::string& topic,
                 std::size_t expected, std::chrono::milliseconds timeout,
                 std::size_t records_max = 1'000'000);

} // namespace recur
