#include "gateways/kafka_publisher.hpp"

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <mutex>
#include <string_view>
#include <unordered_set>

#include <librdkafka/rdkafka.h>
#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>

namespace recur {

namespace {

using steady = std::chrono::steady_clock;

// How long one rd_kafka_poll waits while publish() collects reports, and how
// long it backs off when librdkafka's local queue is full.
constexpr int poll_slice_ms = 50;
constexpr std::size_t batch_max_limit = 100'000;
constexpr std::size_t message_bytes_limit = 100'000'000;
// Room for the record's key, headers and framing on top of the envelope.
constexpr std::size_t message_overhead_bytes = std::size_t{64} * 1024;

/// Settings that carry the ordering and durability guarantees.
constexpr std::string_view pinned_properties[]
  = {"enable.idempotence",
     "acks",
     "request.required.acks",
     "enable.gapless.guarantee",
     "max.in.flight.requests.per.connection",
     "max.in.flight"};

int to_ms(std::chrono::milliseconds d) {
  return static_cast<int>(
    std::clamp<std::int64_t>(d.count(), 0, std::int64_t{INT32_MAX}));
}

publish_error publish_error_of(rd_kafka_resp_err_t err,
                               rd_kafka_msg_status_t persisted) {
  std::string detail = rd_kafka_err2str(err);
  switch (err) {
    case RD_KAFKA_RESP_ERR__MSG_TIMED_OUT:
    case RD_KAFKA_RESP_ERR__TIMED_OUT:
    case RD_KAFKA_RESP_ERR_REQUEST_TIMED_OUT:
      // Never sent means never written: a plain outage, not an unknown.
      if (persisted == RD_KAFKA_MSG_STATUS_NOT_PERSISTED)
        return {publish_errc::unavailable, detail + " (not persisted)"};
      return {publish_errc::timed_out, detail + " (possibly persisted)"};
    case RD_KAFKA_RESP_ERR__FATAL:
      return {publish_errc::fatal, detail};
    case RD_KAFKA_RESP_ERR_MSG_SIZE_TOO_LARGE:
    case RD_KAFKA_RESP_ERR_RECORD_LIST_TOO_LARGE:
    case RD_KAFKA_RESP_ERR_INVALID_RECORD:
    case RD_KAFKA_RESP_ERR_INVALID_REQUIRED_ACKS:
    case RD_KAFKA_RESP_ERR_TOPIC_AUTHORIZATION_FAILED:
    case RD_KAFKA_RESP_ERR_CLUSTER_AUTHORIZATION_FAILED:
    case RD_KAFKA_RESP_ERR_TOPIC_EXCEPTION:
    case RD_KAFKA_RESP_ERR__UNKNOWN_TOPIC:
    case RD_KAFKA_RESP_ERR__INVALID_ARG:
      return {publish_errc::rejected, detail};
    default:
      return {publish_errc::unavailable, detail};
  }
}

status set_property(rd_kafka_conf_t* conf, const std::string& name,
                    const std::string& value) {
  char errstr[512];
  if (rd_kafka_conf_set(conf, name.c_str(), value.c_str(), errstr,
                        sizeof errstr)
      != RD_KAFKA_CONF_OK)
    return make_error(errc::invalid_argument,
                      "kafka property " + name + ": " + errstr);
  return {};
}

status validate(const kafka_publisher_config& c) {
  auto bad = [](std::string what) {
    return make_error(errc::invalid_argument, std::move(what));
  };
  if (c.bootstrap_servers.empty())
    return bad("kafka bootstrap_servers is empty");
  if (c.topic.empty() || c.topic.size() > 249)
    return bad("kafka topic must have 1..249 characters");
  if (c.batch_max == 0 || c.batch_max > batch_max_limit)
    return bad("kafka batch_max must be 1.." + std::to_string(batch_max_limit));
  if (c.message_bytes_max == 0 || c.message_bytes_max > message_bytes_limit)
    return bad("kafka message_bytes_max must be 1.."
               + std::to_string(message_bytes_limit));
  if (c.message_timeout.count() < 1 || c.linger.count() < 0
      || c.linger >= c.message_timeout || c.request_timeout.count() < 1
      || c.socket_timeout.count() < 10 || c.report_grace.count() < 0)
    return bad("kafka timeouts: need message_timeout > linger >= 0, "
               "request_timeout >= 1 ms, socket_timeout >= 10 ms");
  for (const auto& [name, value] : c.properties)
    if (std::find(std::begin(pinned_properties), std::end(pinned_properties),
                  name)
        != std::end(pinned_properties))
      return bad("kafka property " + name + " cannot be overridden");
  return {};
}

} // namespace

// -- envelope -----------------------------------------------------------------

result<std::string> event_envelope_json(const outgoing_event& e) {
  auto data = nlohmann::ordered_json::parse(e.data_json, nullptr, false);
  if (data.is_discarded())
    return make_error(errc::invalid_argument,
                      "event " + e.id + ": data is not JSON");
  // ordered_json keeps the documented field order for human readers.
  nlohmann::ordered_json env;
  env["id"] = e.id;
  env["type"] = e.type;
  env["tenant_id"] = e.tenant;
  env["subject"] = e.subject;
  env["time"] = format_iso8601(e.time);
  env["data"] = std::move(data);
  return env.dump(-1, ' ', false,
                  nlohmann::ordered_json::error_handler_t::replace);
}

// -- impl ---------------------------------------------------------------------

struct kafka_publisher::impl {
  using key_set = std::unordered_set<std::string>;

  kafka_publisher_config cfg;
  rd_kafka_t* rk = nullptr;
  rd_kafka_topic_t* rkt = nullptr;
  bool topic_known = false; // the producer has the topic's metadata
  std::mutex mutex;         // one publish()/probe() at a time
  std::atomic<bool> fatal{false};

  // The slice being published. Messages are numbered globally; a report whose
  // number is outside [base, base + reports.size()) belongs to a slice that
  // gave up waiting and is ignored.
  std::uint64_t next_seq = 1;
  std::uint64_t base = 0;
  std::span<delivery_report> reports;
  std::vector<bool> reported;
  std::size_t outstanding = 0;

  ~impl() { close(cfg.message_timeout); }

  static void on_delivery(rd_kafka_t*, const rd_kafka_message_t* m,
                          void* opaque) {
    static_cast<impl*>(opaque)->delivered(m);
  }

  static void on_error(rd_kafka_t* rk, int err, const char* reason,
                       void* opaque) {
    auto* self = static_cast<impl*>(opaque);
    if (err == RD_KAFKA_RESP_ERR__FATAL) {
      char why[512];
      rd_kafka_fatal_error(rk, why, sizeof why);
      self->fatal = true;
      spdlog::error("event=kafka_fatal_error topic={} reason=\"{}\"",
                    self->cfg.topic, why);
      return;
    }
    spdlog::warn("event=kafka_error topic={} code={} reason=\"{}\"",
                 self->cfg.topic,
                 rd_kafka_err2name(static_cast<rd_kafka_resp_err_t>(err)),
                 reason);
  }

  static void on_log(const rd_kafka_t*, int level, const char* facility,
                     const char* message) {
    // syslog levels: 0..3 errors, 4 warnings, the rest is chatter. The
    // warning that enable.gapless.guarantee is experimental comes with
    // every producer: we chose it knowingly.
    const bool known_warning
      = std::string_view{facility} == "CONFWARN"
        && std::string_view{message}.find("enable.gapless.guarantee")
             != std::string_view::npos;
    const auto lvl = known_warning ? spdlog::level::debug
                     : level <= 3  ? spdlog::level::err
                     : level == 4  ? spdlog::level::warn
                                   : spdlog::level::debug;
    spdlog::log(lvl, "event=kafka_log facility={} message=\"{}\"", facility,
                message);
  }

  void delivered(const rd_kafka_message_t* m) {
    const auto seq = reinterpret_cast<std::uintptr_t>(m->_private);
    if (seq < base || seq - base >= reports.size() || reported[seq - base])
      return;
    const std::size_t i = seq - base;
    reported[i] = true;
    --outstanding;
    if (m->err == RD_KAFKA_RESP_ERR_NO_ERROR) {
      reports[i] = delivery_report{std::nullopt, m->partition, m->offset};
      return;
    }
    if (m->err == RD_KAFKA_RESP_ERR__FATAL)
      fatal = true;
    reports[i].error = publish_error_of(m->err, rd_kafka_message_status(m));
  }

  result<rd_kafka_t*> make_producer() {
    rd_kafka_conf_t* conf = rd_kafka_conf_new();
    const std::pair<std::string, std::string> settings[] = {
      {"bootstrap.servers", cfg.bootstrap_servers},
      {"client.id", cfg.client_id},
      {"enable.idempotence", "true"},
      {"acks", "all"},
      {"enable.gapless.guarantee", "true"},
      {"message.timeout.ms", std::to_string(to_ms(cfg.message_timeout))},
      {"linger.ms", std::to_string(to_ms(cfg.linger))},
      {"request.timeout.ms", std::to_string(to_ms(cfg.request_timeout))},
      {"socket.timeout.ms", std::to_string(to_ms(cfg.socket_timeout))},
      {"message.max.bytes",
       std::to_string(std::max<std::size_t>(
         1'000'000, cfg.message_bytes_max + message_overhead_bytes))},
      {"queue.buffering.max.messages",
       std::to_string(std::max<std::size_t>(10'000, 2 * cfg.batch_max))},
    };
    for (const auto& [name, value] : settings)
      if (auto s = set_property(conf, name, value); !s) {
        rd_kafka_conf_destroy(conf);
        return s.error();
      }
    for (const auto& [name, value] : cfg.properties)
      if (auto s = set_property(conf, name, value); !s) {
        rd_kafka_conf_destroy(conf);
        return s.error();
      }
    rd_kafka_conf_set_opaque(conf, this);
    rd_kafka_conf_set_dr_msg_cb(conf, &impl::on_delivery);
    rd_kafka_conf_set_error_cb(conf, &impl::on_error);
    rd_kafka_conf_set_log_cb(conf, &impl::on_log);
    char errstr[512];
    rd_kafka_t* made = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr,
                                    sizeof errstr);
    if (made == nullptr) { // rd_kafka_new frees conf only on success
      rd_kafka_conf_destroy(conf);
      return make_error(errc::invalid_argument,
                        std::string{"kafka producer: "} + errstr);
    }
    return made;
  }

  /// Flushes for at most `wait` and destroys the producer.
  void close(std::chrono::milliseconds wait) {
    if (rk == nullptr)
      return;
    reports = {};
    reported.clear();
    if (!fatal && rd_kafka_flush(rk, to_ms(wait)) != RD_KAFKA_RESP_ERR_NO_ERROR)
      spdlog::warn("event=kafka_close_unflushed topic={} queued={}", cfg.topic,
                   rd_kafka_outq_len(rk));
    if (rkt != nullptr)
      rd_kafka_topic_destroy(rkt);
    rkt = nullptr;
    topic_known = false;
    rd_kafka_destroy(rk);
    rk = nullptr;
  }

  /// A producer to use: replaces one that hit a fatal error.
  status ensure_producer() {
    if (rk != nullptr && !fatal)
      return {};
    if (rk != nullptr) {
      spdlog::warn("event=kafka_producer_replaced topic={}", cfg.topic);
      close(std::chrono::milliseconds{0});
    }
    fatal = false;
    auto made = make_producer();
    if (!made)
      return made.error();
    rk = *made;
    rkt = rd_kafka_topic_new(rk, cfg.topic.c_str(), nullptr);
    if (rkt == nullptr) {
      rd_kafka_destroy(rk);
      rk = nullptr;
      return make_error(errc::invalid_argument, "kafka topic " + cfg.topic);
    }
    return {};
  }

  /// Asks for the topic's metadata once per producer, briefly: without it,
  /// the first message waits for librdkafka's one-second topic scan.
  void learn_topic() {
    if (topic_known)
      return;
    const rd_kafka_metadata_t* md = nullptr;
    const auto wait = std::min(cfg.request_timeout,
                               std::chrono::milliseconds{500});
    if (rd_kafka_metadata(rk, 0, rkt, &md, to_ms(wait))
        != RD_KAFKA_RESP_ERR_NO_ERROR)
      return; // the messages will wait for the scan instead
    topic_known = md->topic_cnt == 1
                  && md->topics[0].err == RD_KAFKA_RESP_ERR_NO_ERROR
                  && md->topics[0].partition_cnt > 0;
    rd_kafka_metadata_destroy(md);
  }

  rd_kafka_resp_err_t produce(const outgoing_event& e, std::string& value,
                              std::uint64_t seq, steady::time_point deadline) {
    static constexpr std::string_view content_type = "application/json";
    // rd_kafka_produceva rather than the RD_KAFKA_V_* macros: those are GNU
    // statement expressions, which -Wpedantic refuses.
    rd_kafka_vu_t vu[8] = {};
    vu[0].vtype = RD_KAFKA_VTYPE_RKT;
    vu[0].u.rkt = rkt;
    vu[1].vtype = RD_KAFKA_VTYPE_KEY;
    vu[1].u.mem = {const_cast<char*>(e.key.data()), e.key.size()};
    vu[2].vtype = RD_KAFKA_VTYPE_VALUE;
    vu[2].u.mem = {value.data(), value.size()};
    vu[3].vtype = RD_KAFKA_VTYPE_MSGFLAGS;
    vu[3].u.i = RD_KAFKA_MSG_F_COPY;
    const std::pair<const char*, std::string_view> headers[]
      = {{"content-type", content_type},
         {"recur-event-id", e.id},
         {"recur-event-type", e.type}};
    for (std::size_t h = 0; h < 3; ++h) {
      vu[4 + h].vtype = RD_KAFKA_VTYPE_HEADER;
      vu[4 + h].u.header = {headers[h].first, headers[h].second.data(),
                            static_cast<ssize_t>(headers[h].second.size())};
    }
    vu[7].vtype = RD_KAFKA_VTYPE_OPAQUE;
    // A message number, never dereferenced (see delivered()).
    vu[7].u.ptr = reinterpret_cast<void*>( // NOLINT(performance-no-int-to-ptr)
      static_cast<std::uintptr_t>(seq));
    for (;;) {
      rd_kafka_error_t* error = rd_kafka_produceva(rk, vu, std::size(vu));
      if (error == nullptr)
        return RD_KAFKA_RESP_ERR_NO_ERROR;
      const rd_kafka_resp_err_t err = rd_kafka_error_code(error);
      rd_kafka_error_destroy(error);
      if (err != RD_KAFKA_RESP_ERR__QUEUE_FULL || steady::now() >= deadline)
        return err;
      rd_kafka_poll(rk, poll_slice_ms); // serve reports to make room
    }
  }

  void publish_slice(std::span<const outgoing_event> batch,
                     std::span<delivery_report> out, key_set& failed_keys) {
    if (auto s = ensure_producer(); !s) {
      for (auto& r : out)
        r.error = publish_error{publish_errc::unavailable, s.error().detail};
      return;
    }
    learn_topic();
    base = next_seq;
    next_seq += batch.size();
    reports = out;
    reported.assign(batch.size(), false);
    outstanding = 0;
    const auto enqueue_deadline = steady::now() + cfg.message_timeout;
    for (std::size_t i = 0; i < batch.size(); ++i) {
      if (auto e = enqueue(batch[i], base + i, enqueue_deadline, failed_keys);
          e) {
        reported[i] = true;
        out[i].error = std::move(*e);
        failed_keys.insert(batch[i].key);
      } else {
        ++outstanding;
      }
    }
    await_reports();
    for (std::size_t i = 0; i < batch.size(); ++i)
      if (!out[i].ok())
        failed_keys.insert(batch[i].key);
    reports = {};
    reported.clear();
  }

  /// Queues one event; the error that kept it from being queued, if any.
  std::optional<publish_error>
  enqueue(const outgoing_event& e, std::uint64_t seq,
          steady::time_point deadline, const key_set& failed_keys) {
    if (failed_keys.contains(e.key))
      return publish_error{publish_errc::skipped,
                           "an earlier event with key " + e.key + " failed"};
    auto value = event_envelope_json(e);
    if (!value)
      return publish_error{publish_errc::invalid_event, value.error().detail};
    if (value->size() > cfg.message_bytes_max)
      return publish_error{publish_errc::invalid_event,
                           "envelope of " + std::to_string(value->size())
                             + " bytes exceeds message_bytes_max"};
    const auto err = produce(e, *value, seq, deadline);
    if (err == RD_KAFKA_RESP_ERR_NO_ERROR)
      return std::nullopt;
    if (err == RD_KAFKA_RESP_ERR__FATAL)
      fatal = true;
    return publish_error_of(err, RD_KAFKA_MSG_STATUS_NOT_PERSISTED);
  }

  void await_reports() {
    const auto deadline = steady::now() + cfg.message_timeout
                          + cfg.report_grace;
    while (outstanding > 0 && steady::now() < deadline)
      rd_kafka_poll(rk, poll_slice_ms);
    if (outstanding == 0)
      return;
    spdlog::warn("event=kafka_reports_missing topic={} missing={}", cfg.topic,
                 outstanding);
    for (std::size_t i = 0; i < reports.size(); ++i)
      if (!reported[i])
        reports[i].error = publish_error{
          publish_errc::timed_out, "no delivery report within the deadline"};
    outstanding = 0;
  }
};

// -- kafka_publisher ----------------------------------------------------------

kafka_publisher::kafka_publisher(std::unique_ptr<impl> p)
  : impl_(std::move(p)) {}

kafka_publisher::~kafka_publisher() = default;

result<std::unique_ptr<kafka_publisher>>
kafka_publisher::create(kafka_publisher_config config) {
  if (auto s = validate(config); !s)
    return s.error();
  auto p = std::make_unique<impl>();
  p->cfg = std::move(config);
  if (auto s = p->ensure_producer(); !s)
    return s.error();
  spdlog::info("event=kafka_publisher_created bootstrap={} topic={}",
               p->cfg.bootstrap_servers, p->cfg.topic);
  return std::unique_ptr<kafka_publisher>{new kafka_publisher(std::move(p))};
}

std::vector<delivery_report>
kafka_publisher::publish(std::span<const outgoing_event> batch) {
  std::lock_guard lock{impl_->mutex};
  std::vector<delivery_report> out(batch.size());
  impl::key_set failed_keys; // keys that failed: later events skip
  for (std::size_t from = 0; from < batch.size();
       from += impl_->cfg.batch_max) {
    const std::size_t n = std::min(impl_->cfg.batch_max, batch.size() - from);
    impl_->publish_slice(batch.subspan(from, n),
                         std::span{out}.subspan(from, n), failed_keys);
  }
  return out;
}

status kafka_publisher::probe(std::chrono::milliseconds timeout) {
  std::lock_guard lock{impl_->mutex};
  if (auto s = impl_->ensure_producer(); !s)
    return make_error(errc::unavailable, s.error().detail);
  const rd_kafka_metadata_t* md = nullptr;
  const auto err = rd_kafka_metadata(impl_->rk, 0, nullptr, &md,
                                     std::max(1, to_ms(timeout)));
  if (err != RD_KAFKA_RESP_ERR_NO_ERROR)
    return make_error(errc::unavailable,
                      std::string{"kafka metadata: "} + rd_kafka_err2str(err));
  const int brokers = md->broker_cnt;
  rd_kafka_metadata_destroy(md);
  if (brokers == 0)
    return make_error(errc::unavailable, "kafka metadata lists no broker");
  return {};
}

const kafka_publisher_config& kafka_publisher::config() const noexcept {
  return impl_->cfg;
}

} // namespace recur
