#pragma once
/// The event publisher port: delivers a batch of keyed domain events to an
/// event log (Kafka in production) and reports what became of each one.
///
/// Header-only on purpose: the port needs no code, and adapters (the Kafka
/// publisher in gateways/) and fakes in tests implement it.
///
/// Delivery is at least once. An event reported `ok` is durably in the log;
/// one reported with an error may or may not be (a timed-out message may have
/// been written), so a caller that publishes it again can create a duplicate.
/// Consumers therefore de-duplicate by the event's `id`.

#include <chrono>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "domain/error.hpp"
#include "domain/time.hpp"

namespace recur {

/// One domain event as the log carries it: the envelope
/// `{id, type, tenant_id, subject, time, data}` under a partition key.
struct outgoing_event {
  std::string id;     // globally unique; consumers de-duplicate on it
  std::string key;    // partition key: the subscription id
  std::string type;   // "subscription.activated", …
  std::string tenant; // tenant id
  std::string subject;
  instant time;
  std::string data_json; // a JSON document, embedded in the envelope as JSON
};

/// Why one event was not delivered. Stable names: they appear in logs.
enum class publish_errc : std::uint8_t {
  invalid_event, // the event itself is unusable (data is not JSON, too big)
  rejected,      // the log refused it for good (authorization, size, topic)
  timed_out,     // no acknowledgement in time: it may or may not be written
  unavailable,   // the log cannot be reached now; it was not written
  skipped,       // not sent: an earlier event with the same key failed
  fatal,         // the producer is broken; the adapter replaces it
};

constexpr std::string_view to_string(publish_errc code) noexcept {
  switch (code) {
    case publish_errc::invalid_event:
      return "invalid_event";
    case publish_errc::rejected:
      return "rejected";
    case publish_errc::timed_out:
      return "timed_out";
    case publish_errc::unavailable:
      return "unavailable";
    case publish_errc::skipped:
      return "skipped";
    case publish_errc::fatal:
      return "fatal";
  }
  return "unknown";
}

/// Whether publishing the same event again later may succeed without anyone
/// changing it or the log's configuration.
constexpr bool is_retriable(publish_errc code) noexcept {
  return code != publish_errc::invalid_event && code != publish_errc::rejected;
}

struct publish_error {
  publish_errc code = publish_errc::unavailable;
  std::string detail;
};

/// The fate of one event of a batch.
struct delivery_report {
  std::optional<publish_error> error; // empty: delivered
  std::int32_t partition = -1;        // where it landed, when delivered
  std::int64_t offset = -1;

  bool ok() const noexcept { return !error.has_value(); }
};

class event_publisher {
public:
  virtual ~event_publisher() = default;

  /// Publishes `batch` and waits (bounded by the adapter's delivery timeout)
  /// for every acknowledgement; returns one report per event, in batch order.
  /// Events with the same key are written in batch order, and once one of
  /// them fails to be sent, the later ones with that key are not sent
  /// (`skipped`), so that a key's order in the log is its order in the batch.
  /// Not to be called concurrently from several threads.
  virtual std::vector<delivery_report>
  publish(std::span<const outgoing_event> batch) = 0;

  /// Whether the log answers within `timeout` (for readiness checks):
  /// `unavailable` when it does not.
  virtual status probe(std::chrono::milliseconds timeout) = 0;
};

} // namespace recur
