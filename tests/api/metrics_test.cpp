#include "api/metrics.hpp"

#include <gtest/gtest.h>

#include "api/store_metrics.hpp"
#include "domain/clock.hpp"
#include "persistence/forwarding_store.hpp"
#include "persistence/memory_store.hpp"

using namespace recur::api;
using namespace std::chrono_literals;

namespace {

bool has_line(const std::string& text, const std::string& line) {
  return text.find("\n" + line + "\n") != std::string::npos
         || text.rfind(line + "\n", 0) == 0;
}

} // namespace

TEST(metrics, requests_are_counted_by_route_method_and_status) {
  metrics_registry m;
  m.observe_request("/v1/customers/{id}", "GET", 200, 3ms);
  m.observe_request("/v1/customers/{id}", "GET", 200, 3ms);
  m.observe_request("/v1/customers/{id}", "GET", 404, 1ms);
  const auto text = m.render();
  EXPECT_TRUE(has_line(text, "# TYPE http_requests_total counter"));
  EXPECT_TRUE(has_line(
    text,
    R"(http_requests_total{route="/v1/customers/{id}",method="GET",status="200"} 2)"));
  EXPECT_TRUE(has_line(
    text,
    R"(http_requests_total{route="/v1/customers/{id}",method="GET",status="404"} 1)"));
}

TEST(metrics, the_latency_histogram_is_cumulative_with_sum_and_count) {
  metrics_registry m;
  m.observe_request("/r", "GET", 200, 300us); // <= 0.0005
  m.observe_request("/r", "GET", 200, 3ms);   // <= 0.005
  m.observe_request("/r", "GET", 200, 20s);   // over every bound
  const auto text = m.render();
  EXPECT_TRUE(has_line(text, "# TYPE http_request_duration_seconds histogram"));
  EXPECT_TRUE(has_line(
    text, R"(http_request_duration_seconds_bucket{route="/r",le="0.0005"} 1)"));
  EXPECT_TRUE(has_line(
    text, R"(http_request_duration_seconds_bucket{route="/r",le="0.0025"} 1)"));
  EXPECT_TRUE(has_line(
    text, R"(http_request_duration_seconds_bucket{route="/r",le="0.005"} 2)"));
  EXPECT_TRUE(has_line(
    text, R"(http_request_duration_seconds_bucket{route="/r",le="5"} 2)"));
  EXPECT_TRUE(has_line(
    text, R"(http_request_duration_seconds_bucket{route="/r",le="+Inf"} 3)"));
  EXPECT_TRUE(
    has_line(text, R"(http_request_duration_seconds_sum{route="/r"} 20.0033)"));
  EXPECT_TRUE(
    has_line(text, R"(http_request_duration_seconds_count{route="/r"} 3)"));
}

TEST(metrics, collectors_of_other_parts_are_rendered_at_each_scrape) {
  metrics_registry m;
  int due = 3;
  m.add_collector(
    "recur_timers_due", "timers due now", metric_type::gauge, [&due] {
      return std::vector<metric_sample>{{{}, static_cast<double>(due)}};
    });
  m.add_collector("recur_sagas", "sagas by type and status", metric_type::gauge,
                  [] {
                    return std::vector<metric_sample>{
                      {{{"type", "invoice"}, {"status", "running"}}, 2},
                      {{{"type", "dunning"}, {"status", "waiting"}}, 0.5}};
                  });
  auto text = m.render();
  EXPECT_TRUE(has_line(text, "# HELP recur_timers_due timers due now"));
  EXPECT_TRUE(has_line(text, "# TYPE recur_timers_due gauge"));
  EXPECT_TRUE(has_line(text, "recur_timers_due 3"));
  EXPECT_TRUE(
    has_line(text, R"(recur_sagas{type="invoice",status="running"} 2)"));
  EXPECT_TRUE(
    has_line(text, R"(recur_sagas{type="dunning",status="waiting"} 0.5)"));
  due = 7;
  EXPECT_TRUE(has_line(m.render(), "recur_timers_due 7"));
}

TEST(metrics, counter_families_add_up_per_label_set) {
  metrics_registry m;
  auto& outcomes = m.add_counter("recur_gateway_outcomes_total",
                                 "gateway call outcomes");
  outcomes.inc({{"gateway", "sandbox"}, {"outcome", "succeeded"}});
  outcomes.inc({{"gateway", "sandbox"}, {"outcome", "succeeded"}}, 2);
  outcomes.inc({{"gateway", "sandbox"}, {"outcome", "declined"}});
  const auto text = m.render();
  EXPECT_TRUE(has_line(text, "# TYPE recur_gateway_outcomes_total counter"));
  EXPECT_TRUE(has_line(
    text,
    R"(recur_gateway_outcomes_total{gateway="sandbox",outcome="succeeded"} 3)"));
  EXPECT_TRUE(has_line(
    text,
    R"(recur_gateway_outcomes_total{gateway="sandbox",outcome="declined"} 1)"));
}

TEST(metrics, label_values_are_escaped) {
  EXPECT_EQ(escape_label_value("a\"b\\c\nd"), "a\\\"b\\\\c\\nd");
  metrics_registry m;
  m.observe_request("unmatched", "GET\"", 404, 1ms);
  EXPECT_NE(m.render().find(R"(method="GET\"")"), std::string::npos);
}

TEST(metrics, bad_or_duplicate_names_are_programmer_errors) {
  metrics_registry m;
  auto none = [] { return std::vector<metric_sample>{}; };
  m.add_collector("ok_name", "h", metric_type::gauge, none);
  EXPECT_DEATH(m.add_collector("ok_name", "h", metric_type::gauge, none),
               "assertion failed");
  EXPECT_DEATH(m.add_collector("9bad", "h", metric_type::gauge, none),
               "assertion failed");
  EXPECT_DEATH(m.add_collector("http_requests_total", "h", metric_type::gauge,
                               none),
               "assertion failed");
}

TEST(metrics, request_series_are_bounded) {
  metrics_registry m;
  for (std::size_t i = 0; i < metrics_registry::max_request_series + 10; ++i)
    m.observe_request("/r" + std::to_string(i), "GET", 200, 1ms);
  const auto text = m.render();
  EXPECT_NE(
    text.find(
      R"(http_requests_total{route="other",method="other",status="200"} 10)"),
    std::string::npos);
  EXPECT_NE(text.find(R"(http_request_duration_seconds_count{route="other"})"),
            std::string::npos);
}

// -- families read from the store (api/store_metrics.hpp) --------------------

namespace {

/// A memory store whose figures can be made to fail, counting the reads.
class countable_store final : public recur::forwarding_store {
public:
  explicit countable_store(recur::store& inner) : forwarding_store(inner) {}
  recur::result<operational_figures> operational_stats(recur::instant now) override {
    ++reads;
    if (failing)
      return recur::make_error(recur::errc::unavailable, "down");
    return forwarding_store::operational_stats(now);
  }
  int reads = 0;
  bool failing = false;
};

} // namespace

TEST(store_metrics, one_store_read_serves_every_family_of_a_scrape_and_failures_count_once) {
  recur::memory_store inner;
  countable_store db{inner};
  recur::manual_clock clk{recur::utc(2026, 1, 1)};
  metrics_registry m;
  add_store_metrics(m, db, clk, {std::chrono::milliseconds{60'000}});
  auto text = m.render();
  EXPECT_EQ(db.reads, 1);
  EXPECT_TRUE(has_line(text, "recur_timers_pending 0"));
  EXPECT_TRUE(has_line(text, "recur_timers_due 0"));
  EXPECT_TRUE(has_line(text, "recur_store_stats_errors_total 0"));
  m.render(); // within max_age: the same figures
  EXPECT_EQ(db.reads, 1);

  countable_store down{inner};
  down.failing = true;
  metrics_registry m2;
  add_store_metrics(m2, down, clk, {std::chrono::milliseconds{60'000}});
  text = m2.render();
  EXPECT_EQ(down.reads, 1);
  EXPECT_FALSE(has_line(text, "recur_timers_pending 0"));
  EXPECT_TRUE(has_line(text, "recur_store_stats_errors_total 1"));
  m2.render(); // the failure is not retried until max_age has passed
  EXPECT_EQ(down.reads, 1);
}
