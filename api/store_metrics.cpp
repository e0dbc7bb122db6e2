#include "api/store_metrics.hpp"

#include <atomic>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

namespace recur::api {

namespace {

/// The last figures and when they were read, shared by the families.
class figures_cache {
public:
  figures_cache(store& db, const clock& clk, std::chrono::milliseconds max_age)
    : db_(db), clk_(clk), max_age_(max_age) {}

  /// The figures of the last read, or nullopt when it failed; a read (and
  /// so a failure) counts for every family of the scrape, not one each.
  std::optional<store::operational_figures> get() {
    std::lock_guard lock{mutex_};
    const auto now = std::chrono::steady_clock::now();
    if (!read_ || now - read_at_ >= max_age_) {
      auto r = db_.operational_stats(clk_.now());
      if (r) {
        last_ = std::move(*r);
      } else {
        errors_.fetch_add(1, std::memory_order_relaxed);
        last_.reset();
      }
      read_ = true;
      read_at_ = now;
    }
    return last_;
  }

  double errors() const {
    return static_cast<double>(errors_.load(std::memory_order_relaxed));
  }

private:
  store& db_;
  const clock& clk_;
  const std::chrono::milliseconds max_age_;
  std::mutex mutex_;
  bool read_ = false;
  std::optional<store::operational_figures> last_;
  std::chrono::steady_clock::time_point read_at_;
  std::atomic<std::uint64_t> errors_{0};
};

} // namespace

void add_store_metrics(metrics_registry& m, store& db, const clock& clk,
                       store_metrics_options options) {
  auto cache = std::make_shared<figures_cache>(db, clk, options.max_age);
  m.add_collector(
    "recur_sagas", "Sagas by type and status (every tenant's, from the store)",
    metric_type::gauge, [cache] {
      std::vector<metric_sample> out;
      if (auto f = cache->get())
        for (const auto& c : f->sagas)
          out.push_back(
            {{{"type", c.type}, {"status", std::string{to_string(c.status)}}},
             static_cast<double>(c.count)});
      return out;
    });
  auto one = [cache](std::int64_t store::operational_figures::*field) {
    return [cache, field] {
      std::vector<metric_sample> out;
      if (auto f = cache->get())
        out.push_back({{}, static_cast<double>((*f).*field)});
      return out;
    };
  };
  m.add_collector("recur_timers_pending", "Durable timers not yet completed",
                  metric_type::gauge,
                  one(&store::operational_figures::timers_pending));
  m.add_collector("recur_timers_due",
                  "Pending durable timers whose due time has passed",
                  metric_type::gauge,
                  one(&store::operational_figures::timers_due));
  m.add_collector("recur_store_stats_errors_total",
                  "Reads of the store's figures for /metrics that failed",
                  metric_type::counter, [cache] {
                    return std::vector<metric_sample>{{{}, cache->errors()}};
                  });
}

} // namespace recur::api
