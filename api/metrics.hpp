#pragma once
/// A Prometheus registry rendered at GET /metrics (text format 0.0.4): the
/// API's own request counters and latency histograms by route, plus metrics
/// other parts register as collectors (sagas by type and status, timers due,
/// outbox lag, gateway outcomes, actor count, …).

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <tuple>
#include <utility>
#include <vector>

namespace recur::api {

using label_list = std::vector<std::pair<std::string, std::string>>;

/// One value of a metric family.
struct metric_sample {
  label_list labels;
  double value = 0;
};

enum class metric_type : std::uint8_t { counter, gauge };

/// Thread-safe. Label values are escaped when rendered; names are checked
/// when registered (programmer errors assert).
class metrics_registry {
public:
  /// Latency buckets of http_request_duration_seconds, in microseconds.
  static constexpr std::int64_t bucket_bounds_us[]
    = {500,     1'000,   2'500,   5'000,     10'000,    25'000,   50'000,
       100'000, 250'000, 500'000, 1'000'000, 2'500'000, 5'000'000};
  static constexpr std::size_t bucket_count = std::size(bucket_bounds_us);
  /// Distinct (route, method, status) series kept; more go to route="other".
  static constexpr std::size_t max_request_series = 2'000;
  /// Distinct routes with a histogram; more go to route="other".
  static constexpr std::size_t max_histogram_routes = 500;

  // -- the API's own metrics --------------------------------------------------

  /// Counts one request in http_requests_total{route,method,status} and its
  /// latency in http_request_duration_seconds{route}. `route` is the route's
  /// pattern ("/v1/customers/{id}") or "unmatched": bounded cardinality.
  void observe_request(std::string_view route, std::string_view method,
                       unsigned status, std::chrono::nanoseconds elapsed);

  // -- metrics of other parts -------------------------------------------------

  /// Registers a family whose samples `collect` returns at each scrape. The
  /// callback runs on the scraping thread, must be quick and must not call
  /// back into the registry. `name` must be a valid, not yet registered
  /// metric name ([a-zA-Z_:][a-zA-Z0-9_:]*).
  void add_collector(std::string name, std::string help, metric_type type,
                     std::function<std::vector<metric_sample>()> collect);

  /// A counter family the caller bumps, e.g. gateway outcomes:
  /// `outcomes.inc({{"gateway", "stripe"}, {"outcome", "declined"}})`. The
  /// reference stays valid for the registry's lifetime; at most
  /// `max_series` label sets are kept (others are dropped). Same naming
  /// rules as add_collector.
  class counter_family {
  public:
    static constexpr std::size_t max_series = 1'000;

    void inc(const label_list& labels, std::int64_t n = 1);

  private:
    friend class metrics_registry;
    mutable std::mutex mutex_;
    std::map<label_list, std::int64_t> values_;
  };
  counter_family& add_counter(std::string name, std::string help);

  // -- output -----------------------------------------------------------------

  /// Every family in the Prometheus text exposition format.
  std::string render() const;

  static constexpr std::string_view content_type
    = "text/plain; version=0.0.4; charset=utf-8";

private:
  struct histogram {
    std::int64_t buckets[bucket_count] = {}; // non-cumulative
    std::int64_t count = 0;
    std::int64_t sum_us = 0;
  };
  struct family {
    std::string name;
    std::string help;
    metric_type type;
    std::function<std::vector<metric_sample>()> collect;
  };

  void check_new_name(const std::string& name) const; // under mutex_

  mutable std::mutex mutex_;
  std::map<std::tuple<std::string, std::string, unsigned>, std::int64_t>
    requests_;
  std::map<std::string, histogram> durations_;
  std::deque<family> families_; // stable addresses: render reads unlocked
  std::vector<std::unique_ptr<counter_family>> counters_;
};

/// Formats a sample value as Prometheus expects (integers without a point).
std::string format_metric_value(double v);

/// Escapes a label value (\\, \", \n).
std::string escape_label_value(std::string_view v);

} // namespace recur::api
