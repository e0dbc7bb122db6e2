#pragma once
/// /metrics families read from the store (every tenant's rows):
/// recur_sagas{type,status} (gauge: sagas of that type in that status),
/// recur_timers_pending and recur_timers_due (gauges: pending timers, and
/// those of them due by the clock's now and not yet completed). One store
/// call serves every family of a scrape: its figures are kept for
/// `max_age` and a failed call leaves the families out of that scrape
/// (recur_store_stats_errors_total counts the failures).

#include <chrono>

#include "api/metrics.hpp"
#include "domain/clock.hpp"
#include "sagas/store.hpp"

namespace recur::api {

struct store_metrics_options {
  std::chrono::milliseconds max_age{1'000};
};

/// `db` and `clk` must outlive the registry's scrapes.
void add_store_metrics(metrics_registry& m, store& db, const clock& clk,
                       store_metrics_options options = {});

} // namespace recur::api
