// Durable single-event appends per second through the group-commit writer
// over the PostgreSQL store, with acknowledgement latency percentiles. Each of
// --writers threads owns one subscription and appends one event per unit of
// work, tracking its expected version, waiting for each acknowledgement before
// the next append. Prints one JSON object on stdout; bench/store_bench.sh runs
// it beside pgbench on a durable cluster.
//
//   store_bench --db CONNINFO [--writers N] [--duration-s S] [--warmup-s S]
//               [--max-batch N] [--max-wait-us US] [--lanes N] [--futures]
//               [--direct] [--min-appends N]
//
// --db defaults to $RECUR_TEST_DB. --direct skips the writer: every thread
// calls store::commit itself on its own connection (the baseline that group
// commit is for). Threads wait for their acknowledgement with the callback
// form of submit and a semaphore; --futures uses the std::future form.
// --lanes N runs N independent writers (thread i uses writer
// i mod N), so that N batches are in flight at once on N connections; the
// default is the one writer an application would run. --min-appends N exits 1
// if fewer appends were acknowledged (the ctest smoke run uses it).

#include <algorithm>
#include <atomic>
#include <charconv>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <optional>
#include <semaphore>
#include <string>
#include <string_view>
#include <thread>
#include <tuple>
#include <vector>

#include <nlohmann/json.hpp>
#include <pqxx/pqxx>

#include "persistence/group_commit.hpp"
#include "persistence/pg_store.hpp"

namespace {

using namespace recur;
using steady = std::chrono::steady_clock;

constexpr int writers_max = 1'024;
constexpr int duration_s_max = 3'600;

struct options {
  std::string db;
  int writers = 64;
  int duration_s = 10;
  int warmup_s = 1;
  // The writer's own defaults, so that the figures are those of what ships.
  std::size_t max_batch = group_commit_config{}.max_batch_units;
  std::int64_t max_wait_us = group_commit_config{}.max_wait_us;
  int lanes = 1;
  bool futures = false;
  bool direct = false;
  std::int64_t min_appends = 0;
};

// -- command line -------------------------------------------------------------

template <class T>
bool parse_number(std::string_view text, T& out) {
  const auto* end = text.data() + text.size();
  auto [ptr, ec] = std::from_chars(text.data(), end, out);
  return ec == std::errc{} && ptr == end;
}

std::optional<options> parse(int argc, char** argv) {
  options o;
  if (const char* db = std::getenv("RECUR_TEST_DB"))
    o.db = db;
  for (int i = 1; i < argc; ++i) {
    const std::string_view arg = argv[i];
    const bool has_value = i + 1 < argc;
    const std::string_view value = has_value ? argv[i + 1] : "";
    bool ok = has_value;
    if (arg == "--direct" || arg == "--futures") {
      (arg == "--direct" ? o.direct : o.futures) = true;
      continue;
    }
    if (arg == "--db")
      o.db = value;
    else if (arg == "--writers")
      ok = ok && parse_number(value, o.writers);
    else if (arg == "--duration-s")
      ok = ok && parse_number(value, o.duration_s);
    else if (arg == "--warmup-s")
      ok = ok && parse_number(value, o.warmup_s);
    else if (arg == "--max-batch")
      ok = ok && parse_number(value, o.max_batch);
    else if (arg == "--max-wait-us")
      ok = ok && parse_number(value, o.max_wait_us);
    else if (arg == "--lanes")
      ok = ok && parse_number(value, o.lanes);
    else if (arg == "--min-appends")
      ok = ok && parse_number(value, o.min_appends);
    else
      ok = false;
    if (!ok) {
      std::fprintf(stderr, "store_bench: bad option %s\n", argv[i]);
      return std::nullopt;
    }
    ++i;
  }
  if (o.db.empty() || o.writers < 1 || o.writers > writers_max
      || o.duration_s < 1 || o.duration_s > duration_s_max || o.warmup_s < 0
      || o.max_batch < 1 || o.max_wait_us < 0 || o.lanes < 1 || o.lanes > 16) {
    std::fprintf(stderr, "store_bench: need --db (or RECUR_TEST_DB), "
                         "1 <= --writers <= 1024, 1 <= --duration-s <= 3600\n");
    return std::nullopt;
  }
  return o;
}

// -- server-side counters -----------------------------------------------------

// Statements run by the store's role so far, when pg_stat_statements is
// loaded (PROFILE=1 in store_bench.sh); otherwise nothing.
std::optional<std::int64_t> statements_so_far(pqxx::connection& admin) {
  static const char* const has_extension
    = "SELECT 1 FROM pg_extension WHERE extname = 'pg_stat_statements'";
  static const char* const calls
    = "SELECT coalesce(sum(calls), 0)::bigint FROM pg_stat_statements s"
      " JOIN pg_roles r ON r.oid = s.userid WHERE r.rolname = 'recur_app'";
  pqxx::nontransaction tx{admin};
  if (tx.exec(has_extension).empty())
    return std::nullopt;
  return tx.exec(calls)[0][0].as<std::int64_t>();
}

// -- the run ------------------------------------------------------------------

// One writer thread's figures from inside the measured window.
struct thread_figures {
  std::vector<std::uint32_t> ack_us;
  std::int64_t errors = 0;
};

unit_of_work one_event(const tenant_id& t, const std::string& sub,
                       std::int64_t expected) {
  unit_of_work w;
  w.tenant = t;
  w.events.push_back(
    event_append{subscription_id{sub},
                 expected,
                 {new_event{"subscription.renewed", R"({"bench": true})",
                            instant{1'700'000'000}}}});
  return w;
}

class bench_run {
public:
  using lanes = std::vector<std::unique_ptr<group_commit_writer>>;

  // No lanes: every thread commits through the store itself.
  bench_run(const options& o, store& s, const lanes& writers)
    : opt_(o), store_(s), writers_(writers) {}

  // Runs warm-up plus window; per-thread figures of the window only.
  std::vector<thread_figures> run(const tenant_id& t, const std::string& run_id,
                                  steady::time_point window_start,
                                  steady::time_point window_end) {
    std::vector<thread_figures> figures(static_cast<std::size_t>(opt_.writers));
    std::vector<std::thread> threads;
    threads.reserve(figures.size());
    for (int i = 0; i < opt_.writers; ++i)
      threads.emplace_back([&, i] {
        const auto sub = run_id + "_" + std::to_string(i);
        group_commit_writer* lane
          = writers_.empty()
              ? nullptr
              : writers_[static_cast<std::size_t>(i) % writers_.size()].get();
        append_loop(t, sub, lane, window_start, window_end,
                    figures[static_cast<std::size_t>(i)]);
      });
    for (auto& th : threads)
      th.join();
    return figures;
  }

private:
  // The callback form of submit with a semaphore: what an event loop or an
  // actor does, and lighter than a promise and future per append.
  struct ack_slot {
    std::binary_semaphore ready{0};
    std::optional<result<commit_receipt>> r;
  };

  result<commit_receipt> commit(group_commit_writer* lane, unit_of_work w) {
    if (lane == nullptr)
      return store_.commit(w);
    if (opt_.futures)
      return lane->submit(std::move(w)).get();
    ack_slot slot;
    auto accepted = lane->submit(std::move(w),
                                 [&slot](result<commit_receipt> r) {
                                   slot.r.emplace(std::move(r));
                                   slot.ready.release();
                                 });
    if (!accepted)
      return accepted.error();
    slot.ready.acquire();
    return std::move(*slot.r);
  }

  void append_loop(const tenant_id& t, const std::string& sub,
                   group_commit_writer* lane, steady::time_point window_start,
                   steady::time_point window_end, thread_figures& out) {
    std::int64_t version = 0;
    out.ack_us.reserve(4096);
    for (;;) {
      const auto begin = steady::now();
      if (begin >= window_end)
        return;
      auto r = commit(lane, one_event(t, sub, version));
      const auto end = steady::now();
      const bool counted = begin >= window_start && end <= window_end;
      if (r) {
        version = r->event_versions.front();
        if (counted)
          out.ack_us.push_back(static_cast<std::uint32_t>(
            std::chrono::duration_cast<std::chrono::microseconds>(end - begin)
              .count()));
        continue;
      }
      if (counted)
        ++out.errors;
      if (auto h = store_.load_history(t, subscription_id{sub}))
        version = h->version;
    }
  }

  const options& opt_;
  store& store_;
  const lanes& writers_;
};

double percentile_ms(std::vector<std::uint32_t>& v, double p) {
  if (v.empty())
    return 0.0;
  const auto k
    = static_cast<std::size_t>(p * static_cast<double>(v.size() - 1));
  std::nth_element(v.begin(), v.begin() + static_cast<std::ptrdiff_t>(k),
                   v.end());
  return static_cast<double>(v[k]) / 1000.0;
}

struct window_counters {
  group_commit_stats writers;
  std::optional<std::int64_t> statements;
};

// x to `decimals` places, as the nearest double (which JSON prints short).
double rounded(double x, int decimals) {
  const double scale = std::pow(10.0, decimals);
  return std::round(x * scale) / scale;
}

// Prints the JSON line; returns the appends acknowledged in the window.
std::int64_t
print_figures(const options& o, std::vector<thread_figures>& figures,
              const window_counters& before, const window_counters& after) {
  std::vector<std::uint32_t> all;
  std::int64_t errors = 0;
  for (auto& f : figures) {
    all.insert(all.end(), f.ack_us.begin(), f.ack_us.end());
    errors += f.errors;
  }
  const auto appends = static_cast<std::int64_t>(all.size());
  nlohmann::ordered_json out;
  out["bench"] = o.direct ? "store_append_direct" : "store_append";
  out["writers"] = o.writers;
  out["seconds"] = o.duration_s;
  out["appends"] = appends;
  out["appends_per_s"] = appends / o.duration_s;
  out["p50_ack_ms"] = rounded(percentile_ms(all, 0.50), 3);
  out["p99_ack_ms"] = rounded(percentile_ms(all, 0.99), 3);
  out["errors"] = errors;
  // Direct commits are one transaction per append.
  auto transactions = static_cast<double>(appends);
  if (!o.direct) {
    const auto& [w0, w1] = std::tie(before.writers, after.writers);
    transactions = static_cast<double>(w1.batches - w0.batches);
    const auto commit_us = static_cast<double>(w1.commit_us - w0.commit_us);
    out["batch_mean"] = rounded(
      transactions > 0 ? static_cast<double>(w1.units - w0.units) / transactions
                       : 0.0,
      2);
    out["max_batch"] = o.max_batch;
    out["max_wait_us"] = o.max_wait_us;
    out["lanes"] = o.lanes;
    // The share of the time the writer spent inside commit_many, and what one
    // batch cost there: the rest is gathering and waking callers.
    out["writer_busy"] = rounded(commit_us / (1e6 * o.duration_s * o.lanes), 2);
    out["commit_ms_mean"]
      = rounded(transactions > 0 ? commit_us / transactions / 1000.0 : 0.0, 3);
  }
  out["statements_per_tx"] = nullptr;
  if (before.statements && after.statements && transactions > 0)
    out["statements_per_tx"]
      = rounded(static_cast<double>(*after.statements - *before.statements)
                  / transactions,
                2);
  std::printf("%s\n", out.dump().c_str());
  std::fflush(stdout);
  return appends;
}

std::unique_ptr<store> open_store(const options& o) {
  pg_store_config cfg;
  cfg.conninfo = o.db;
  // A writer needs one connection; direct committers one each.
  cfg.pool_size = static_cast<std::size_t>(
    std::min(o.direct ? o.writers : o.lanes + 1, 64));
  cfg.commit_batch_max = o.max_batch;
  auto s = open_pg_store(cfg);
  if (!s) {
    std::fprintf(stderr, "store_bench: %s\n", s.error().detail.c_str());
    return nullptr;
  }
  return std::move(*s);
}

int run_bench(const options& o) {
  auto s = open_store(o);
  if (!s)
    return 1;
  const tenant_id tenant{"bench"};
  (void) s->create_tenant(
    tenant_record{tenant, "bench", "", true, instant{1'700'000'000}});
  const auto run_id
    = "w" + std::to_string(o.writers) + "_"
      + std::to_string(steady::now().time_since_epoch().count());

  group_commit_config wc;
  wc.max_batch_units = o.max_batch;
  wc.max_wait_us = o.max_wait_us;
  wc.queue_limit_units = static_cast<std::size_t>(o.writers) * 2;
  bench_run::lanes writers;
  for (int i = 0; i < (o.direct ? 0 : o.lanes); ++i)
    writers.push_back(std::make_unique<group_commit_writer>(*s, wc));
  const auto writer_stats = [&] {
    group_commit_stats sum;
    for (const auto& w : writers) {
      sum.batches += w->stats().batches;
      sum.units += w->stats().units;
      sum.commit_us += w->stats().commit_us;
    }
    return sum;
  };

  pqxx::connection admin{o.db};
  const auto window_start = steady::now() + std::chrono::seconds{o.warmup_s};
  const auto window_end = window_start + std::chrono::seconds{o.duration_s};
  // The counters at the start of the window, sampled beside the writers.
  window_counters before;
  std::thread sampler{[&] {
    std::this_thread::sleep_until(window_start);
    before = {writer_stats(), statements_so_far(admin)};
  }};
  bench_run b{o, *s, writers};
  auto figures = b.run(tenant, run_id, window_start, window_end);
  sampler.join();
  const window_counters after{writer_stats(), statements_so_far(admin)};
  return print_figures(o, figures, before, after) >= o.min_appends ? 0 : 1;
}

} // namespace

int main(int argc, char** argv) {
  const auto o = parse(argc, argv);
  if (!o)
    return 2;
  try {
    return run_bench(*o);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "store_bench: %s\n", e.what());
    return 1;
  }
}
