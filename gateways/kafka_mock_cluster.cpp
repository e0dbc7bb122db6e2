#include "gateways/kafka_mock_cluster.hpp"

#include <algorithm>
#include <atomic>
#include <thread>

#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>
#include <spdlog/spdlog.h>

namespace recur {

namespace {

using steady = std::chrono::steady_clock;

constexpr std::int16_t produce_api_key = 0; // Kafka protocol ApiKey "Produce"
constexpr std::size_t produce_errors_max = 10'000;
constexpr int partitions_max = 1000;
constexpr int poll_slice_ms = 100;

using log_fn = void (*)(const rd_kafka_t*, int, const char*, const char*);

// A reader's errors are worth seeing; the rest is chatter.
void reader_log(const rd_kafka_t*, int level, const char* facility,
                const char* message) {
  spdlog::log(level <= 3 ? spdlog::level::info : spdlog::level::debug,
              "event=kafka_log facility={} message=\"{}\"", facility, message);
}

// The mock's host handle is a client of its own brokers too: it complains
// whenever a test takes them down, which is the point of taking them down.
void host_log(const rd_kafka_t*, int, const char* facility,
              const char* message) {
  spdlog::debug("event=kafka_mock_log facility={} message=\"{}\"", facility,
                message);
}

int to_ms(std::chrono::milliseconds d) {
  return static_cast<int>(
    std::clamp<std::int64_t>(d.count(), 1, std::int64_t{INT32_MAX}));
}

/// A handle of `type` with `settings`; the error message on failure.
result<rd_kafka_t*>
make_handle(rd_kafka_type_t type,
            std::initializer_list<std::pair<const char*, std::string>> settings,
            log_fn log) {
  rd_kafka_conf_t* conf = rd_kafka_conf_new();
  char errstr[512];
  for (const auto& [name, value] : settings)
    if (rd_kafka_conf_set(conf, name, value.c_str(), errstr, sizeof errstr)
        != RD_KAFKA_CONF_OK) {
      rd_kafka_conf_destroy(conf);
      return make_error(errc::invalid_argument,
                        std::string{"kafka property "} + name + ": " + errstr);
    }
  rd_kafka_conf_set_log_cb(conf, log);
  rd_kafka_t* rk = rd_kafka_new(type, conf, errstr, sizeof errstr);
  if (rk == nullptr) {
    rd_kafka_conf_destroy(conf);
    return make_error(errc::unavailable, std::string{"kafka: "} + errstr);
  }
  return rk;
}

} // namespace

// -- kafka_mock_cluster -------------------------------------------------------

struct kafka_mock_cluster::impl {
  rd_kafka_t* host = nullptr; // owns the mock cluster
  rd_kafka_mock_cluster_t* cluster = nullptr;
  int brokers = 0;
  std::string bootstrap;

  ~impl() {
    if (host != nullptr)
      rd_kafka_destroy(host);
  }
};

kafka_mock_cluster::kafka_mock_cluster(std::unique_ptr<impl> p)
  : impl_(std::move(p)) {}

kafka_mock_cluster::~kafka_mock_cluster() = default;

result<std::unique_ptr<kafka_mock_cluster>>
kafka_mock_cluster::start(int brokers) {
  if (brokers < 1 || brokers > brokers_max)
    return make_error(errc::invalid_argument, "kafka mock brokers must be 1.."
                                                + std::to_string(brokers_max));
  // The cluster lives in a handle made with test.mock.num.brokers rather than
  // rd_kafka_mock_cluster_new(): destroying that one takes a full second
  // (its I/O thread's poll interval), this one milliseconds.
  auto host = make_handle(RD_KAFKA_PRODUCER,
                          {{"test.mock.num.brokers", std::to_string(brokers)}},
                          &host_log);
  if (!host)
    return host.error();
  auto p = std::make_unique<impl>();
  p->host = *host;
  p->cluster = rd_kafka_handle_mock_cluster(p->host);
  if (p->cluster == nullptr)
    return make_error(errc::unavailable, "kafka mock cluster did not start");
  p->brokers = brokers;
  p->bootstrap = rd_kafka_mock_cluster_bootstraps(p->cluster);
  spdlog::info("event=kafka_mock_started brokers={} bootstrap={}", brokers,
               p->bootstrap);
  return std::unique_ptr<kafka_mock_cluster>{
    new kafka_mock_cluster(std::move(p))};
}

const std::string& kafka_mock_cluster::bootstrap_servers() const noexcept {
  return impl_->bootstrap;
}

int kafka_mock_cluster::broker_count() const noexcept {
  return impl_->brokers;
}

status kafka_mock_cluster::create_topic(const std::string& topic,
                                        int partitions,
                                        int replication_factor) {
  if (topic.empty() || partitions < 1 || partitions > partitions_max
      || replication_factor < 1 || replication_factor > impl_->brokers)
    return make_error(errc::invalid_argument,
                      "kafka mock topic: need a name, 1.."
                        + std::to_string(partitions_max)
                        + " partitions and 1..brokers replicas");
  const auto err = rd_kafka_mock_topic_create(impl_->cluster, topic.c_str(),
                                              partitions, replication_factor);
  if (err != RD_KAFKA_RESP_ERR_NO_ERROR)
    return make_error(errc::unavailable, std::string{"kafka mock topic "}
                                           + topic + ": "
                                           + rd_kafka_err2str(err));
  return {};
}

status kafka_mock_cluster::set_broker_up(int broker_id, bool up) {
  if (broker_id < 1 || broker_id > impl_->brokers)
    return make_error(errc::invalid_argument, "kafka mock broker "
                                                + std::to_string(broker_id)
                                                + " does not exist");
  const auto err = up
                     ? rd_kafka_mock_broker_set_up(impl_->cluster, broker_id)
                     : rd_kafka_mock_broker_set_down(impl_->cluster, broker_id);
  if (err != RD_KAFKA_RESP_ERR_NO_ERROR)
    return make_error(errc::unavailable, rd_kafka_err2str(err));
  spdlog::info("event=kafka_mock_broker broker={} up={}", broker_id, up);
  return {};
}

status kafka_mock_cluster::set_all_brokers_up(bool up) {
  for (int id = 1; id <= impl_->brokers; ++id)
    if (auto s = set_broker_up(id, up); !s)
      return s;
  return {};
}

void kafka_mock_cluster::push_produce_errors(
  std::span<const std::int16_t> kafka_error_codes) {
  RECUR_ASSERT(kafka_error_codes.size() <= produce_errors_max);
  std::vector<rd_kafka_resp_err_t> errors;
  errors.reserve(kafka_error_codes.size());
  for (const auto code : kafka_error_codes)
    errors.push_back(static_cast<rd_kafka_resp_err_t>(code));
  rd_kafka_mock_push_request_errors_array(impl_->cluster, produce_api_key,
                                          errors.size(), errors.data());
}

void kafka_mock_cluster::clear_produce_errors() {
  rd_kafka_mock_clear_request_errors(impl_->cluster, produce_api_key);
}

// -- kafka_read_topic ---------------------------------------------------------

namespace {

/// The topic's partition count, asked until `deadline`.
result<int> partition_count(rd_kafka_t* rk, const std::string& topic,
                            steady::time_point deadline) {
  rd_kafka_topic_t* rkt = rd_kafka_topic_new(rk, topic.c_str(), nullptr);
  if (rkt == nullptr)
    return make_error(errc::invalid_argument, "kafka topic " + topic);
  std::string last = "no answer";
  int count = 0;
  while (count == 0 && steady::now() < deadline) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
      deadline - steady::now());
    const rd_kafka_metadata_t* md = nullptr;
    const auto err = rd_kafka_metadata(rk, 0, rkt, &md, to_ms(left));
    if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
      last = rd_kafka_err2str(err);
      continue;
    }
    if (md->topic_cnt == 1 && md->topics[0].err == RD_KAFKA_RESP_ERR_NO_ERROR)
      count = md->topics[0].partition_cnt;
    else if (md->topic_cnt == 1)
      last = rd_kafka_err2str(md->topics[0].err);
    rd_kafka_metadata_destroy(md);
    if (count == 0)
      std::this_thread::sleep_for(std::chrono::milliseconds{poll_slice_ms});
  }
  rd_kafka_topic_destroy(rkt);
  if (count == 0)
    return make_error(errc::unavailable,
                      "kafka topic " + topic + " partitions: " + last);
  return count;
}

consumed_record record_of(const rd_kafka_message_t* m) {
  consumed_record r;
  r.partition = m->partition;
  r.offset = m->offset;
  if (m->key != nullptr)
    r.key.assign(static_cast<const char*>(m->key), m->key_len);
  if (m->payload != nullptr)
    r.value.assign(static_cast<const char*>(m->payload), m->len);
  rd_kafka_headers_t* hdrs = nullptr;
  if (rd_kafka_message_headers(m, &hdrs) == RD_KAFKA_RESP_ERR_NO_ERROR) {
    const char* name = nullptr;
    const void* value = nullptr;
    std::size_t size = 0;
    for (std::size_t i = 0;
         rd_kafka_header_get_all(hdrs, i, &name, &value, &size)
         == RD_KAFKA_RESP_ERR_NO_ERROR;
         ++i)
      r.headers.emplace_back(
        name, value == nullptr
                ? std::string{}
                : std::string{static_cast<const char*>(value), size});
  }
  return r;
}

/// Consumes the assigned partitions into `out` until the goal or `deadline`.
void consume(rd_kafka_t* rk, int partitions, std::size_t expected,
             std::size_t records_max, steady::time_point deadline,
             std::vector<consumed_record>& out) {
  std::vector<bool> at_end(static_cast<std::size_t>(partitions), false);
  auto done = [&] {
    return out.size() >= records_max
           || (out.size() >= expected
               && std::all_of(at_end.begin(), at_end.end(),
                              [](bool b) { return b; }));
  };
  while (!done() && steady::now() < deadline) {
    rd_kafka_message_t* m = rd_kafka_consumer_poll(rk, poll_slice_ms);
    if (m == nullptr)
      continue;
    const auto p = static_cast<std::size_t>(m->partition);
    if (m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
      if (p < at_end.size())
        at_end[p] = true;
    } else if (m->err != RD_KAFKA_RESP_ERR_NO_ERROR) {
      spdlog::debug("event=kafka_read_error error=\"{}\"",
                    rd_kafka_message_errstr(m));
    } else {
      if (p < at_end.size())
        at_end[p] = false;
      out.push_back(record_of(m));
    }
    rd_kafka_message_destroy(m);
  }
}

} // namespace

result<std::vector<consumed_record>>
kafka_read_topic(const std::string& bootstrap_servers, const std::string& topic,
                 std::size_t expected, std::chrono::milliseconds timeout,
                 std::size_t records_max) {
  static std::atomic<std::uint64_t> readers{0};
  const auto deadline = steady::now() + timeout;
  auto made = make_handle(
    RD_KAFKA_CONSUMER,
    {{"bootstrap.servers", bootstrap_servers},
     {"group.id", "recur-read-topic-" + std::to_string(++readers)},
     {"enable.auto.commit", "false"},
     {"enable.partition.eof", "true"},
     {"auto.offset.reset", "earliest"},
     // A reader wants the end of the log soon, not big fetches.
     {"fetch.wait.max.ms", "20"},
     {"fetch.error.backoff.ms", "20"},
     {"reconnect.backoff.ms", "10"},
     {"socket.timeout.ms", std::to_string(std::min(to_ms(timeout), 10'000))}},
    &reader_log);
  if (!made)
    return made.error();
  rd_kafka_t* rk = *made;
  std::vector<consumed_record> out;
  auto partitions = partition_count(rk, topic, deadline);
  if (partitions) {
    rd_kafka_topic_partition_list_t* list
      = rd_kafka_topic_partition_list_new(*partitions);
    for (int p = 0; p < *partitions; ++p)
      rd_kafka_topic_partition_list_add(list, topic.c_str(), p)->offset
        = RD_KAFKA_OFFSET_BEGINNING;
    const auto err = rd_kafka_assign(rk, list);
    rd_kafka_topic_partition_list_destroy(list);
    if (err == RD_KAFKA_RESP_ERR_NO_ERROR)
      consume(rk, *partitions, expected, records_max, deadline, out);
    else
      partitions = make_error(errc::unavailable, std::string{"kafka assign: "}
                                                   + rd_kafka_err2str(err));
  }
  rd_kafka_consumer_close(rk);
  rd_kafka_destroy(rk);
  if (!partitions)
    return partitions.error();
  std::sort(out.begin(), out.end(), [](const auto& a, const auto& b) {
    return std::pair{a.partition, a.offset} < std::pair{b.partition, b.offset};
  });
  return out;
}

} // namespace recur
