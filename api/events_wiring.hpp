#pragma once
/// recurd's domain-event pipeline: where committed outbox rows go (`--kafka`):
/// librdkafka's mock cluster inside the process, a real cluster, or nowhere,
/// with the outbox relay thread that moves them there.
///
/// Wiring in main.cpp (after the store, before the HTTP server):
///
///   auto events = api::start_event_pipeline(opts.kafka, *store, clock);
///   if (!events) return fail(exit_startup_failed, events.error().detail);
///   auto readiness = api::with_kafka_check(**db, **events); // /readyz
///   app_config.readiness = readiness.get();
///   (*events)->add_metrics(app.metrics());
///   ... serve ...
///   (*events)->stop(); // after the server and the orchestrator stopped
///
/// `embedded` logs `event=kafka_embedded bootstrap=<addr>` so that consumers
/// (tests, operators) can find the cluster; it creates the topic. With a
/// real cluster the topic must exist or be auto-created by the brokers.

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "actors/outbox_relay.hpp"
#include "api/health.hpp"
#include "api/metrics.hpp"
#include "api/options.hpp"
#include "domain/clock.hpp"
#include "domain/error.hpp"
#include "sagas/store.hpp"

namespace recur::api {

struct event_pipeline_options {
  std::string topic = "recur.events";
  /// Partitions of the topic the embedded cluster creates (1..1000); keys
  /// (subscription ids) spread over them, order holds per key.
  int embedded_partitions = 6;
  outbox_relay_config relay;
  /// librdkafka's delivery timeout per message (see kafka_publisher_config).
  std::chrono::milliseconds message_timeout{30'000};
  /// How long probe() waits for the cluster's metadata.
  std::chrono::milliseconds probe_timeout{2'000};
  /// /readyz's check (kafka_ready()): how long it waits for metadata, and
  /// how long an answer is reused, so that /readyz cannot hammer the brokers.
  std::chrono::milliseconds ready_timeout{500};
  std::chrono::milliseconds ready_cache{1'000};
};

class event_pipeline {
public:
  /// stop().
  ~event_pipeline();
  event_pipeline(const event_pipeline&) = delete;
  event_pipeline& operator=(const event_pipeline&) = delete;

  /// false for `--kafka none`: nothing is published, probe() is ok.
  bool enabled() const noexcept;
  /// The brokers the publisher talks to ("" when disabled).
  const std::string& bootstrap_servers() const noexcept;
  const std::string& topic() const noexcept;

  /// For /readyz: whether the cluster answers within probe_timeout
  /// (`unavailable` when not). Always ok when disabled.
  status probe();

  /// For /readyz: probe() through a client of its own (a relay stuck on a
  /// down cluster cannot delay it), at most once per `ready_cache`; callers
  /// meanwhile get the last answer. nullopt when disabled; false once
  /// stopped. Thread-safe.
  std::optional<bool> kafka_ready();

  /// The relay's counters (all zero when disabled).
  outbox_relay_stats stats() const;

  /// Cuts the relay's idle wait short (after a commit with outbox rows).
  void wake();

  /// Stops the relay thread (its round in flight finishes), then the
  /// publisher (waiting for queued deliveries), then the embedded cluster.
  /// Idempotent. Rows not published stay in the outbox for the next start.
  void stop();

  /// Registers recur_outbox_pending (gauge: lag, rows seen and not yet
  /// published), recur_outbox_published_total, recur_outbox_failures_total,
  /// recur_outbox_store_errors_total and recur_outbox_relay_running. Safe to
  /// scrape after the pipeline is gone (the families then read empty).
  void add_metrics(metrics_registry& m) const;

  struct impl;
  /// For start_event_pipeline.
  explicit event_pipeline(std::shared_ptr<impl> p);

private:
  std::shared_ptr<impl> impl_;
};

/// `database` with the pipeline's kafka_ready() as its Kafka check: what
/// recurd gives the app as its readiness probe. Both must outlive it.
std::unique_ptr<readiness_probe> with_kafka_check(readiness_probe& database,
                                                  event_pipeline& events);

/// Starts the pipeline `kafka` asks for: embedded → a one-broker mock
/// cluster with the topic created, a publisher and the relay thread; external
/// → a publisher for those brokers and the relay thread (no connection is
/// needed to start: the relay retries with backoff); none → nothing.
/// `db` and `clk` must outlive the pipeline. Errors: `invalid_argument` (a
/// bad option), `unavailable` (the embedded cluster could not start).
result<std::unique_ptr<event_pipeline>>
start_event_pipeline(const kafka_setting& kafka, store& db, const clock& clk,
                     event_pipeline_options options = {});

/// The same from the option's text: "embedded", "none" or "host:port[,…]".
result<std::unique_ptr<event_pipeline>>
start_event_pipeline(std::string_view kafka, store& db, const clock& clk,
                     event_pipeline_options options = {});

} // namespace recur::api
