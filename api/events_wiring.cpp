// The --kafka wiring: mock cluster (embedded), publisher and outbox relay.

#include "api/events_wiring.hpp"

#include <atomic>
#include <cstdint>
#include <mutex>
#include <optional>
#include <utility>
#include <vector>

#include <spdlog/spdlog.h>

#include "gateways/kafka_mock_cluster.hpp"
#include "gateways/kafka_publisher.hpp"

namespace recur::api {

// Members are destroyed in reverse order: relay, publisher, cluster — the
// order stop() follows too.
struct event_pipeline::impl {
  std::string bootstrap;
  std::string topic;
  std::chrono::milliseconds probe_timeout{};
  std::unique_ptr<kafka_mock_cluster> cluster; // embedded only
  std::unique_ptr<kafka_publisher> publisher;  // null: disabled
  std::unique_ptr<outbox_relay> relay;
  mutable std::mutex mutex; // stop() against probe() and stats()
  bool stopped = false;

  // /readyz's check: its own client, so that it never waits behind the
  // relay's publish() (which holds the publisher for up to message_timeout
  // when the brokers are down).
  std::unique_ptr<kafka_publisher> ready_client;
  std::chrono::milliseconds ready_timeout{};
  std::chrono::milliseconds ready_cache{};
  std::mutex ready_mutex; // one metadata request at a time
  std::atomic<bool> ready_known{false};
  std::atomic<bool> ready_last{false};
  std::atomic<std::int64_t> ready_at_ms{0}; // steady clock

  std::optional<bool> kafka_ready();

  void stop() {
    std::lock_guard lock{mutex};
    if (stopped)
      return;
    stopped = true;
    if (relay)
      relay->stop();
    const auto published = relay ? relay->stats().published : 0;
    relay.reset();
    publisher.reset();
    {
      std::lock_guard ready_lock{ready_mutex};
      ready_client.reset();
    }
    const bool embedded = cluster != nullptr;
    cluster.reset();
    if (!bootstrap.empty())
      spdlog::info("event=event_pipeline_stopped bootstrap={} embedded={} "
                   "published={}",
                   bootstrap, embedded, published);
  }
};

namespace {

std::int64_t steady_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
           std::chrono::steady_clock::now().time_since_epoch())
    .count();
}

} // namespace

std::optional<bool> event_pipeline::impl::kafka_ready() {
  if (bootstrap.empty())
    return std::nullopt;
  auto fresh = [this] {
    return ready_known.load()
           && steady_ms() - ready_at_ms.load() < ready_cache.count();
  };
  if (fresh())
    return ready_last.load();
  std::unique_lock lock{ready_mutex, std::try_to_lock};
  if (!lock.owns_lock()) {
    // Someone is asking the brokers right now: the last answer will do,
    // unless there is none yet.
    if (ready_known.load())
      return ready_last.load();
    lock.lock();
  }
  if (fresh())
    return ready_last.load();
  bool ok = false;
  std::string why = "the event pipeline is stopped";
  if (ready_client) {
    const auto s = ready_client->probe(ready_timeout);
    ok = s.has_value();
    if (!ok)
      why = s.error().detail;
  }
  if (ok != ready_last.load() || !ready_known.load()) {
    if (ok)
      spdlog::info("event=kafka_ready bootstrap={}", bootstrap);
    else
      spdlog::warn("event=kafka_unready bootstrap={} detail=\"{}\"", bootstrap,
                   why);
  }
  ready_last = ok;
  ready_at_ms = steady_ms();
  ready_known = true;
  return ok;
}

event_pipeline::event_pipeline(std::shared_ptr<impl> p) : impl_(std::move(p)) {}

event_pipeline::~event_pipeline() {
  stop();
}

bool event_pipeline::enabled() const noexcept {
  return !impl_->bootstrap.empty();
}

const std::string& event_pipeline::bootstrap_servers() const noexcept {
  return impl_->bootstrap;
}

const std::string& event_pipeline::topic() const noexcept {
  return impl_->topic;
}

status event_pipeline::probe() {
  std::lock_guard lock{impl_->mutex};
  if (impl_->bootstrap.empty())
    return {};
  if (!impl_->publisher)
    return make_error(errc::unavailable, "the event pipeline is stopped");
  return impl_->publisher->probe(impl_->probe_timeout);
}

std::optional<bool> event_pipeline::kafka_ready() {
  return impl_->kafka_ready();
}

outbox_relay_stats event_pipeline::stats() const {
  std::lock_guard lock{impl_->mutex};
  return impl_->relay ? impl_->relay->stats() : outbox_relay_stats{};
}

void event_pipeline::wake() {
  std::lock_guard lock{impl_->mutex};
  if (impl_->relay)
    impl_->relay->wake();
}

void event_pipeline::stop() {
  impl_->stop();
}

void event_pipeline::add_metrics(metrics_registry& m) const {
  const std::weak_ptr<impl> weak = impl_;
  auto sample = [weak](auto pick) {
    return [weak, pick]() -> std::vector<metric_sample> {
      auto p = weak.lock();
      if (!p)
        return {};
      std::lock_guard lock{p->mutex};
      if (!p->relay)
        return {};
      return {metric_sample{{}, pick(p->relay->stats())}};
    };
  };
  m.add_collector("recur_outbox_pending",
                  "Outbox rows seen by the relay and not yet published (lag)",
                  metric_type::gauge, sample([](const outbox_relay_stats& s) {
                    return static_cast<double>(s.pending);
                  }));
  m.add_collector("recur_outbox_published_total",
                  "Outbox rows published to Kafka and marked published",
                  metric_type::counter, sample([](const outbox_relay_stats& s) {
                    return static_cast<double>(s.published);
                  }));
  m.add_collector("recur_outbox_failures_total",
                  "Outbox row deliveries the event log refused or timed out",
                  metric_type::counter, sample([](const outbox_relay_stats& s) {
                    return static_cast<double>(s.failures);
                  }));
  m.add_collector("recur_outbox_store_errors_total",
                  "Outbox fetches or marks the store failed",
                  metric_type::counter, sample([](const outbox_relay_stats& s) {
                    return static_cast<double>(s.store_errors);
                  }));
  m.add_collector(
    "recur_outbox_relay_running", "1 while the outbox relay thread runs",
    metric_type::gauge,
    sample([](const outbox_relay_stats& s) { return s.running ? 1.0 : 0.0; }));
}

std::unique_ptr<readiness_probe> with_kafka_check(readiness_probe& database,
                                                  event_pipeline& events) {
  return std::make_unique<combined_readiness>(database, [&events] {
    return events.kafka_ready();
  });
}

result<std::unique_ptr<event_pipeline>>
start_event_pipeline(const kafka_setting& kafka, store& db, const clock& clk,
                     event_pipeline_options options) {
  auto p = std::make_shared<event_pipeline::impl>();
  p->topic = options.topic;
  p->probe_timeout = options.probe_timeout;
  p->ready_timeout = options.ready_timeout;
  p->ready_cache = options.ready_cache;
  if (kafka.kind == kafka_setting::mode::none) {
    spdlog::info("event=kafka_disabled detail=\"--kafka none: outbox rows "
                 "stay unpublished\"");
    return std::make_unique<event_pipeline>(std::move(p));
  }
  if (auto ok = outbox_relay::validate(options.relay); !ok)
    return ok.error();
  if (options.topic.empty())
    return make_error(errc::invalid_argument, "event topic: must not be empty");
  if (kafka.kind == kafka_setting::mode::embedded) {
    auto cluster = kafka_mock_cluster::start(1);
    if (!cluster)
      return make_error(errc::unavailable,
                        "--kafka embedded: " + cluster.error().detail);
    if (auto made = (*cluster)->create_topic(options.topic,
                                             options.embedded_partitions);
        !made)
      return make_error(made.code(), "--kafka embedded: topic " + options.topic
                                       + ": " + made.error().detail);
    p->bootstrap = (*cluster)->bootstrap_servers();
    p->cluster = std::move(*cluster);
    spdlog::info("event=kafka_embedded bootstrap={} topic={} partitions={}",
                 p->bootstrap, options.topic, options.embedded_partitions);
  } else {
    if (kafka.bootstrap_servers.empty())
      return make_error(errc::invalid_argument,
                        "--kafka: no bootstrap servers");
    p->bootstrap = kafka.bootstrap_servers;
  }
  kafka_publisher_config pc;
  pc.bootstrap_servers = p->bootstrap;
  pc.topic = options.topic;
  pc.message_timeout = options.message_timeout;
  auto publisher = kafka_publisher::create(std::move(pc));
  if (!publisher)
    return make_error(publisher.code(), "--kafka: " + publisher.error().detail);
  p->publisher = std::move(*publisher);
  kafka_publisher_config rc;
  rc.bootstrap_servers = p->bootstrap;
  rc.topic = options.topic;
  rc.client_id = "recurd-readiness";
  rc.message_timeout = options.message_timeout;
  // Notice a cluster that is back within about a second, not librdkafka's
  // default ten.
  rc.properties = {{"reconnect.backoff.max.ms", "1000"}};
  auto ready_client = kafka_publisher::create(std::move(rc));
  if (!ready_client)
    return make_error(ready_client.code(),
                      "--kafka: " + ready_client.error().detail);
  p->ready_client = std::move(*ready_client);
  p->relay = std::make_unique<outbox_relay>(db, *p->publisher, clk,
                                            options.relay);
  p->relay->start();
  spdlog::info("event=event_pipeline_started bootstrap={} topic={} "
               "embedded={} batch_max={}",
               p->bootstrap, options.topic, p->cluster != nullptr,
               options.relay.batch_max);
  return std::make_unique<event_pipeline>(std::move(p));
}

result<std::unique_ptr<event_pipeline>>
start_event_pipeline(std::string_view kafka, store& db, const clock& clk,
                     event_pipeline_options options) {
  auto setting = parse_kafka(kafka);
  if (!setting)
    return setting.error();
  return start_event_pipeline(*setting, db, clk, std::move(options));
}

} // namespace recur::api
