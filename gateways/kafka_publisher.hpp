#pragma once
/// The Kafka adapter of the event publisher port: an idempotent librdkafka
/// producer (enable.idempotence=true, acks=all) that writes each event's JSON
/// envelope to one topic, keyed by subscription, and waits for every
/// delivery report before it answers.
///
/// librdkafka stays behind this header (pimpl). The producer keeps per-
/// partition order across its own retries (idempotence); with
/// enable.gapless.guarantee a failure that would leave a gap becomes a fatal
/// error, which fails the later messages too, and the next publish() replaces
/// the producer.

#include <chrono>
#include <cstddef>
#include <memory>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "domain/error.hpp"
#include "domain/event_publisher.hpp"

namespace recur {

inline constexpr std::string_view default_events_topic = "recur.events";

struct kafka_publisher_config {
  /// librdkafka `bootstrap.servers`: "host:port[,host:port…]". Required.
  std::string bootstrap_servers;
  std::string topic{default_events_topic};
  std::string client_id = "recurd";

  /// How long librdkafka keeps trying to deliver one message (its
  /// `message.timeout.ms`); publish() returns at most this long plus
  /// `report_grace` after its last message was queued.
  std::chrono::milliseconds message_timeout{30'000};
  std::chrono::milliseconds report_grace{2'000};
  std::chrono::milliseconds linger{5};              // `linger.ms`
  std::chrono::milliseconds request_timeout{5'000}; // `request.timeout.ms`
  std::chrono::milliseconds socket_timeout{10'000}; // `socket.timeout.ms`

  /// Events queued at once; a longer batch is published in slices.
  std::size_t batch_max = 1000;
  /// Largest envelope accepted (`message.max.bytes` is set to match).
  std::size_t message_bytes_max = 1'000'000;

  /// Further librdkafka properties, applied last (security.protocol,
  /// sasl.*, …). The ones above that guarantee order and durability
  /// (enable.idempotence, acks) cannot be overridden.
  std::vector<std::pair<std::string, std::string>> properties;
};

/// The envelope `{id, type, tenant_id, subject, time, data}` (time in RFC 3339
/// UTC, data = `data_json` parsed), compact. `invalid_argument` when
/// `data_json` is not JSON.
result<std::string> event_envelope_json(const outgoing_event& e);

class kafka_publisher final : public event_publisher {
public:
  /// Checks the configuration and creates the producer (no connection is
  /// made yet). `invalid_argument` names a bad setting.
  static result<std::unique_ptr<kafka_publisher>>
  create(kafka_publisher_config config);

  /// Waits up to `message_timeout` for queued messages, then closes.
  ~kafka_publisher() override;
  kafka_publisher(const kafka_publisher&) = delete;
  kafka_publisher& operator=(const kafka_publisher&) = delete;

  std::vector<delivery_report>
  publish(std::span<const outgoing_event> batch) override;

  /// Asks the cluster for metadata within `timeout`.
  status probe(std::chrono::milliseconds timeout) override;

  const kafka_publisher_config& config() const noexcept;

  struct impl;

private:
  explicit kafka_publisher(std::unique_ptr<impl> p);

  std::unique_ptr<impl> impl_;
};

} // namespace recur
