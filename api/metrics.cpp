#include "api/metrics.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>

#include "domain/error.hpp"

namespace recur::api {

namespace {

bool valid_metric_name(std::string_view name) {
  if (name.empty())
    return false;
  for (std::size_t i = 0; i < name.size(); ++i) {
    const char c = name[i];
    const bool alpha = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')
                       || c == '_' || c == ':';
    if (!alpha && !(i > 0 && c >= '0' && c <= '9'))
      return false;
  }
  return true;
}

std::string labels_text(const label_list& labels) {
  if (labels.empty())
    return {};
  std::string out = "{";
  for (std::size_t i = 0; i < labels.size(); ++i) {
    if (i > 0)
      out += ',';
    out += labels[i].first + "=\"" + escape_label_value(labels[i].second) + '"';
  }
  return out + '}';
}

// Microseconds as decimal seconds, exactly ("0.0025"), no floating point.
std::string seconds_text(std::int64_t us) {
  std::string frac = std::to_string(us % 1'000'000);
  frac.insert(0, 6 - frac.size(), '0');
  while (!frac.empty() && frac.back() == '0')
    frac.pop_back();
  return std::to_string(us / 1'000'000) + (frac.empty() ? "" : "." + frac);
}

void header(std::string& out, std::string_view name, std::string_view help,
            std::string_view type) {
  out.append("# HELP ").append(name).append(" ").append(help).append("\n");
  out.append("# TYPE ").append(name).append(" ").append(type).append("\n");
}

} // namespace

std::string escape_label_value(std::string_view v) {
  std::string out;
  out.reserve(v.size());
  for (const char c : v) {
    if (c == '\\')
      out += "\\\\";
    else if (c == '"')
      out += "\\\"";
    else if (c == '\n')
      out += "\\n";
    else
      out += c;
  }
  return out;
}

std::string format_metric_value(double v) {
  if (std::isnan(v))
    return "NaN";
  if (std::isinf(v))
    return v > 0 ? "+Inf" : "-Inf";
  if (v == std::floor(v) && std::fabs(v) < 9.0e15)
    return std::to_string(static_cast<std::int64_t>(v));
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.9g", v);
  return buf;
}

// -- requests -----------------------------------------------------------------

void metrics_registry::observe_request(std::string_view route,
                                       std::string_view method, unsigned status,
                                       std::chrono::nanoseconds elapsed) {
  const std::int64_t us = std::max<std::int64_t>(
    0, std::chrono::duration_cast<std::chrono::microseconds>(elapsed).count());
  std::lock_guard lock{mutex_};
  auto key = std::tuple{std::string{route}, std::string{method}, status};
  auto it = requests_.find(key);
  if (it == requests_.end()) {
    if (requests_.size() >= max_request_series)
      key = std::tuple{std::string{"other"}, std::string{"other"}, status};
    it = requests_.try_emplace(std::move(key), 0).first;
  }
  ++it->second;
  std::string histogram_route{route};
  if (!durations_.contains(histogram_route)
      && durations_.size() >= max_histogram_routes)
    histogram_route = "other";
  auto& h = durations_[histogram_route];
  const auto* bound = std::lower_bound(std::begin(bucket_bounds_us),
                                       std::end(bucket_bounds_us), us);
  if (bound != std::end(bucket_bounds_us))
    ++h.buckets[bound - std::begin(bucket_bounds_us)];
  ++h.count;
  h.sum_us += us;
}

// -- other parts' metrics -----------------------------------------------------

void metrics_registry::check_new_name(const std::string& name) const {
  RECUR_ASSERT(valid_metric_name(name));
  RECUR_ASSERT(name != "http_requests_total"
               && name != "http_request_duration_seconds");
  for (const auto& f : families_)
    RECUR_ASSERT(f.name != name);
}

void metrics_registry::add_collector(
  std::string name, std::string help, metric_type type,
  std::function<std::vector<metric_sample>()> collect) {
  RECUR_ASSERT(collect != nullptr);
  std::lock_guard lock{mutex_};
  check_new_name(name);
  families_.push_back(
    family{std::move(name), std::move(help), type, std::move(collect)});
}

void metrics_registry::counter_family::inc(const label_list& labels,
                                           std::int64_t n) {
  std::lock_guard lock{mutex_};
  auto it = values_.find(labels);
  if (it == values_.end()) {
    if (values_.size() >= max_series)
      return;
    it = values_.emplace(labels, 0).first;
  }
  it->second += n;
}

metrics_registry::counter_family&
metrics_registry::add_counter(std::string name, std::string help) {
  auto owned = std::make_unique<counter_family>();
  counter_family* c = owned.get();
  {
    std::lock_guard lock{mutex_};
    check_new_name(name);
    counters_.push_back(std::move(owned));
  }
  add_collector(std::move(name), std::move(help), metric_type::counter, [c] {
    std::lock_guard lock{c->mutex_};
    std::vector<metric_sample> out;
    for (const auto& [labels, v] : c->values_)
      out.push_back({labels, static_cast<double>(v)});
    return out;
  });
  return *c;
}

// -- output -------------------------------------------------------------------

std::string metrics_registry::render() const {
  std::string out;
  std::vector<const family*> families;
  {
    std::lock_guard lock{mutex_};
    header(out, "http_requests_total",
           "HTTP requests by route, method and status", "counter");
    for (const auto& [key, n] : requests_) {
      const auto& [route, method, status] = key;
      out += "http_requests_total"
             + labels_text({{"route", route},
                            {"method", method},
                            {"status", std::to_string(status)}})
             + " " + std::to_string(n) + "\n";
    }
    header(out, "http_request_duration_seconds",
           "HTTP request latency by route", "histogram");
    for (const auto& [route, h] : durations_) {
      std::int64_t cumulative = 0;
      for (std::size_t i = 0; i < bucket_count; ++i) {
        cumulative += h.buckets[i];
        out += "http_request_duration_seconds_bucket"
               + labels_text(
                 {{"route", route}, {"le", seconds_text(bucket_bounds_us[i])}})
               + " " + std::to_string(cumulative) + "\n";
      }
      const auto route_label = labels_text({{"route", route}});
      out += "http_request_duration_seconds_bucket"
             + labels_text({{"route", route}, {"le", "+Inf"}}) + " "
             + std::to_string(h.count) + "\n";
      out += "http_request_duration_seconds_sum" + route_label + " "
             + seconds_text(h.sum_us) + "\n";
      out += "http_request_duration_seconds_count" + route_label + " "
             + std::to_string(h.count) + "\n";
    }
    for (const auto& f : families_)
      families.push_back(&f);
  }
  // Collectors run outside the lock: they may be slow-ish (a store query).
  // Families are never removed, so the pointers stay valid.
  for (const auto* f : families) {
    header(out, f->name, f->help,
           f->type == metric_type::counter ? "counter" : "gauge");
    for (const auto& s : f->collect())
      out += f->name + labels_text(s.labels) + " "
             + format_metric_value(s.value) + "\n";
  }
  return out;
}

} // namespace recur::api
