// The --kafka wiring: mock cluster (embedded), publisher and outbox relay.

#include "api/events_wiring.hpp"

#include <mutex>
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
    const bool embedded = cluster != nullptr;
    cluster.reset();
    if (!bootstrap.empty())
      spdlog::info("event=event_pipeline_stopped bootstrap={} embedded={} "
                   "published={}",
                   bootstrap, embedded, published);
  }
};

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

result<std::unique_ptr<event_pipeline>>
start_event_pipeline(const kafka_setting& kafka, store& db, const clock& clk,
                     event_pipeline_options options) {
  auto p = std::make_shared<event_pipeline::impl>();
  p->topic = options.topic;
  p->probe_timeout = options.probe_timeout;
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
