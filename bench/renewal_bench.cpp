// Renewal benchmark (issue 4): N subscriptions reach the end of a period at
// the same instant; measures invoice sagas completed per second from the
// timer firing to `paid`, through the real actors (timer service → registry →
// subscription actors → store writer → gateway actor → back), with the
// in-memory store or the durable PostgreSQL store.
//
//   renewal_bench --store memory --n 100000 --writer actor
//   renewal_bench --store pg --db "<conninfo>" --n 100000
//
// --writer: group (commits through the group-commit writer; the durable
// setting), inline (through the writer actor, committed in its handler) or
// actor (each subscription actor commits itself; in-memory store only).
// --window: how many delivered timers may be unanswered at once (the timer
// service's flow control; 0 = all at once).
// --pool: PostgreSQL connections; --lanes: group-commit writer lanes (each a
// transaction on its own connection at the same time; a subscription's units
// always take the same lane).
// --after-setup: a shell command run once the set-up committed, before the
// clock starts; e.g. psql -c ANALYZE, so that the planner knows the tables
// as a live database's statistics would (the set-up loads N subscriptions
// faster than autovacuum's first pass).
// --poll-ms: the timer service's poll interval; between polls it claims again
// when half its window was answered.
// --pretouch-mb: a diagnostic, not a setting for target figures: before the
// clock starts, maps and writes that much heap and frees it to tcmalloc
// (actors/allocator.hpp, pretouch_heap), so that the run shows its cost
// without first-touch page faults.
// --policy: CAF scheduler, stealing (work stealing; idle workers poll) or
// sharing (one queue; idle workers block). Activations read PostgreSQL on
// the worker threads, so the durable runs want more threads than cores, and
// with many threads idle stealing workers burn the cores the database needs.
//
// Set-up (not measured): N subscriptions created directly through the engine
// with a 30-day trial, so that all N trial_end timers fall due together; the
// trial end runs the same invoice saga as a renewal (issue invoice, post the
// receivable, charge, settle) after the same lifecycle step (a transition
// plus the next period timer). Prints one JSON object.

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <thread>

#include <sys/resource.h>

#include <caf/all.hpp>

#include "actors/allocator.hpp"
#include "actors/gateway_actor_impl.hpp"
#include "actors/store_writer_impl.hpp"
#include "actors/subscription_actor_impl.hpp"
#include "actors/timer_service_impl.hpp"
#include "bench/host_calibration.hpp"
#include "gateways/sandbox_gateway.hpp"
#include "persistence/memory_store.hpp"
#include "persistence/pg_store.hpp"

using namespace recur;

namespace {

struct options {
  std::string store = "memory";
  std::string db;
  std::int64_t n = 100'000;
  std::string writer = "group";
  int threads = 2;
  std::size_t window = 4000; // timer service max_in_flight; 0: unbounded
  std::size_t pool = 4;      // PostgreSQL connections
  std::size_t lanes = 1;     // group-commit writer lanes
  std::string policy = "stealing";
  std::int64_t poll_ms = 1; // timer service poll interval
  std::string after_setup;  // shell command; empty: none
  std::int64_t timeout_s = 600;
  std::int64_t pretouch_mb = 0; // diagnostic: see allocator.hpp
};

[[noreturn]] void usage(const char* why) {
  std::fprintf(
    stderr,
    "renewal_bench: %s\nusage: renewal_bench [--store memory|pg] "
    "[--db conninfo] [--n N] [--writer group|inline|actor] [--window W]\n"
    "  [--pool P] [--lanes L] [--threads T] [--policy stealing|sharing]\n"
    "  [--poll-ms MS] [--after-setup CMD] [--timeout-s S] [--pretouch-mb MB]\n",
    why);
  std::exit(2);
}

options parse(int argc, char** argv) {
  options o;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    auto next = [&]() -> std::string {
      if (i + 1 >= argc)
        usage(("missing value for " + a).c_str());
      return argv[++i];
    };
    if (a == "--store")
      o.store = next();
    else if (a == "--db")
      o.db = next();
    else if (a == "--n")
      o.n = std::stoll(next());
    else if (a == "--writer")
      o.writer = next();
    else if (a == "--pool")
      o.pool = std::stoul(next());
    else if (a == "--window")
      o.window = std::stoul(next());
    else if (a == "--lanes")
      o.lanes = std::stoul(next());
    else if (a == "--policy")
      o.policy = next();
    else if (a == "--poll-ms")
      o.poll_ms = std::stoll(next());
    else if (a == "--after-setup")
      o.after_setup = next();
    else if (a == "--threads")
      o.threads = std::stoi(next());
    else if (a == "--timeout-s")
      o.timeout_s = std::stoll(next());
    else if (a == "--pretouch-mb")
      o.pretouch_mb = std::stoll(next());
    else
      usage(("unknown option " + a).c_str());
  }
  if (o.store != "memory" && o.store != "pg")
    usage("--store must be memory or pg");
  if (o.store == "pg" && o.db.empty()) {
    if (const char* env = std::getenv("RECUR_TEST_DB"))
      o.db = env;
    else
      usage("--store pg needs --db or RECUR_TEST_DB");
  }
  if (o.n < 1)
    usage("--n must be >= 1");
  if (o.writer != "group" && o.writer != "inline" && o.writer != "actor")
    usage("--writer must be group, inline or actor");
  if (o.writer == "actor" && o.store != "memory")
    usage("--writer actor needs --store memory (commits would block actors)");
  if (o.lanes < 1 || o.lanes > group_commit_lanes_max)
    usage("--lanes must be 1..64");
  if (o.policy != "stealing" && o.policy != "sharing")
    usage("--policy must be stealing or sharing");
  if (o.poll_ms < 1)
    usage("--poll-ms must be >= 1");
  return o;
}

/// CPU seconds (user + system) this process has used so far.
double cpu_seconds() {
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  auto s = [](const timeval& t) {
    return static_cast<double>(t.tv_sec) + static_cast<double>(t.tv_usec) / 1e6;
  };
  return s(u.ru_utime) + s(u.ru_stime);
}

double seconds_since(std::chrono::steady_clock::time_point t) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t)
    .count();
}

} // namespace

int main(int argc, char** argv) {
  auto o = parse(argc, argv);
  const tenant_id tenant{"t_bench"};
  const instant t0 = utc(2026, 4, 1);

  std::unique_ptr<store> st;
  if (o.store == "memory") {
    st = std::make_unique<memory_store>();
  } else {
    pg_store_config cfg;
    cfg.conninfo = o.db;
    cfg.pool_size = o.pool;
    auto opened = open_pg_store(cfg);
    if (!opened) {
      std::fprintf(stderr, "renewal_bench: %s\n", opened.error().detail.c_str());
      return 1;
    }
    st = std::move(*opened);
  }
  (void)st->create_tenant(tenant_record{tenant, "bench", "bench-key-hash", true, t0});

  memory_plan_catalog plans;
  plan_version basic{1, instant{0}, currency::of("USD"),
                     billing_interval{interval_unit::month, 1}, 30,
                     pricing::flat(3000), {}};
  if (!plans.add(plan_id{"basic"}, basic))
    return 1;
  billing_env env;
  env.plans = &plans;

  // -- set-up: N trialing subscriptions ------------------------------------
  auto setup_start = std::chrono::steady_clock::now();
  {
    rng gen(1);
    std::vector<unit_of_work> batch;
    auto flush = [&] {
      for (auto& r : st->commit_many(batch))
        if (!r) {
          std::fprintf(stderr, "renewal_bench: setup: %s\n",
                       r.error().detail.c_str());
          std::exit(1);
        }
      batch.clear();
    };
    for (std::int64_t i = 0; i < o.n; ++i) {
      auto d = handle(subscription_aggregate{}, tenant,
                      subscription_id{"sub_" + std::to_string(i)},
                      sub_in::create{customer_id{"cus_" + std::to_string(i)},
                                     plan_id{"basic"}, 1, "pm_card_visa",
                                     std::nullopt},
                      env, t0, gen);
      if (!d)
        return 1;
      batch.push_back(std::move(d->work));
      if (batch.size() == 500)
        flush();
    }
    flush();
  }
  double setup_s = seconds_since(setup_start);
  if (!o.after_setup.empty() && std::system(o.after_setup.c_str()) != 0) {
    std::fprintf(stderr, "renewal_bench: --after-setup command failed\n");
    return 1;
  }

  // The host's random-load cost, read before the clock starts (see
  // host_calibration.hpp): figures from different hosts differ by it.
  const double load_ns = bench::random_load_ns().value_or(-1.0);

  // -- the run ----------------------------------------------------------------
  manual_clock clk{t0.plus_seconds(30 * seconds_per_day)};
  sandbox_config sc;
  // No webhook pump runs here: events the sandbox would queue for the
  // synchronous outcomes it already answered would only pile up unread.
  sc.events_for_sync_outcomes = false;
  sandbox_gateway gw{clk, 3, sc};
  runtime_counters counters;
  runtime_context ctx;
  ctx.db = st.get();
  ctx.clk = &clk;
  ctx.env_for = [&](const tenant_id& t) -> const billing_env* {
    return t == tenant ? &env : nullptr;
  };
  ctx.idle_passivation_ms = 0;
  ctx.commit_in_actor = o.writer == "actor";
  ctx.counters = &counters;

  caf::actor_system_config cfg;
  cfg.set("scheduler.max-threads", o.threads);
  cfg.set("scheduler.policy", caf::atom_from_string(o.policy));
  cfg.set("logger.file-verbosity", caf::atom("quiet"));
  caf::actor_system sys{cfg};
  store_writer_config wc;
  wc.mode = o.writer != "group" ? store_writer_mode::inline_commit
                                 : store_writer_mode::group_commit;
  wc.group.queue_limit_units = 1u << 20; // room for every renewal at once
  wc.group.lanes = o.lanes;
  auto writer = spawn_store_writer(sys, *st, wc);
  gateway_actor_config gc;
  gc.inline_calls = true;
  auto gateway = spawn_gateway_actor(sys, gw, clk, gc);
  auto registry = spawn_registry(sys, &ctx, writer, gateway);

  // Diagnostic: the run without first-touch faults (not a target figure;
  // the JSON says pretouch_mb).
  if (o.pretouch_mb > 0)
    pretouch_heap(static_cast<std::size_t>(o.pretouch_mb) << 20);
  const auto heap_start = heap_allocated_bytes().value_or(0);
  auto start = std::chrono::steady_clock::now();
  const double cpu_start = cpu_seconds();
  timer_service_config tc;
  tc.poll_interval_ms = o.poll_ms;
  tc.claim_batch_limit = 1000;
  tc.lease_s = 600;
  tc.claimer = "bench";
  tc.max_in_flight = o.window;
  auto timers = spawn_timer_service(sys, *st, clk, registry, tc);

  bool done = false;
  const bool progress = std::getenv("RENEWAL_PROGRESS") != nullptr;
  double next_report = 1.0;
  while (seconds_since(start) < static_cast<double>(o.timeout_s)) {
    if (progress && seconds_since(start) >= next_report) {
      std::fprintf(stderr, "t=%.0fs completed=%llu commits=%llu calls=%llu inputs=%llu live=%lld\n",
                   next_report,
                   static_cast<unsigned long long>(counters.sagas_completed.load()),
                   static_cast<unsigned long long>(counters.commits.load()),
                   static_cast<unsigned long long>(counters.gateway_calls.load()),
                   static_cast<unsigned long long>(counters.inputs.load()),
                   static_cast<long long>(counters.live_actors.load()));
      caf::scoped_actor probe{sys};
      probe->request(timers, std::chrono::seconds(5), stats_atom::value)
        .receive([](const timer_service_stats& ts) {
                   std::fprintf(stderr, "  timers delivered=%llu polls=%llu\n",
                                static_cast<unsigned long long>(ts.delivered),
                                static_cast<unsigned long long>(ts.polls));
                 },
                 [](caf::error&) {});
      probe->request(registry, std::chrono::seconds(5), stats_atom::value)
        .receive([](const registry_stats& rs) {
                   std::fprintf(stderr, "  registry forwarded=%llu actors=%lld\n",
                                static_cast<unsigned long long>(rs.forwarded),
                                static_cast<long long>(rs.actors));
                 },
                 [](caf::error&) {});
      next_report += 1.0;
    }
    if (counters.sagas_completed.load() >= static_cast<std::uint64_t>(o.n)) {
      done = true;
      break;
    }
    std::this_thread::sleep_for(std::chrono::microseconds(500));
  }
  double run_s = seconds_since(start);
  double run_cpu_s = cpu_seconds() - cpu_start;
  // What the run kept (store rows, live actors): each new byte is memory
  // the process touches for the first time.
  const auto heap_end = heap_allocated_bytes().value_or(0);
  const double heap_per_saga
    = (static_cast<double>(heap_end) - static_cast<double>(heap_start))
      / static_cast<double>(o.n);

  for (auto* h : {&timers, &registry, &gateway, &writer})
    caf::anon_send_exit(*h, caf::exit_reason::user_shutdown);

  auto collected = gw.total_collected(currency::of("USD")).amount_minor();
  std::printf(
    "{\"bench\":\"renewal\",\"store\":\"%s\",\"writer\":\"%s\",\"n\":%lld,"
    "\"window\":%zu,\"threads\":%d,\"policy\":\"%s\",\"pool\":%zu,"
    "\"lanes\":%zu,\"poll_ms\":%lld,\"after_setup\":%s,"
    "\"setup_s\":%.2f,\"run_s\":%.3f,\"sagas_completed\":%llu,"
    "\"sagas_per_s\":%.0f,\"cpu_s\":%.2f,\"cpu_us_per_saga\":%.1f,\"heap_bytes_per_saga\":%.0f,\"commits\":%llu,\"commit_failures\":%llu,"
    "\"gateway_calls\":%llu,\"collected_minor\":%lld,\"expected_minor\":%lld,"
    "\"host_random_load_ns\":%.0f,\"pretouch_mb\":%lld,\"huge_pages\":\"%s\",\"small_fault_ns\":%lld,\"huge_fault_ns\":%lld,"
    "\"done\":%s}\n",
    o.store.c_str(), o.writer.c_str(), static_cast<long long>(o.n), o.window,
    o.threads, o.policy.c_str(), o.pool, o.lanes,
    static_cast<long long>(o.poll_ms), o.after_setup.empty() ? "false" : "true",
    setup_s, run_s,
    static_cast<unsigned long long>(counters.sagas_completed.load()),
    static_cast<double>(counters.sagas_completed.load()) / run_s, run_cpu_s,
    run_cpu_s * 1e6
      / static_cast<double>(std::max<std::uint64_t>(counters.sagas_completed.load(), 1)),
    heap_per_saga,
    static_cast<unsigned long long>(counters.commits.load()),
    static_cast<unsigned long long>(counters.commit_failures.load()),
    static_cast<unsigned long long>(counters.gateway_calls.load()),
    static_cast<long long>(collected), static_cast<long long>(o.n) * 3000,
    load_ns, static_cast<long long>(o.pretouch_mb), to_string(huge_pages()),
    static_cast<long long>(huge_pages_probe().small_fault_ns),
    static_cast<long long>(huge_pages_probe().huge_fault_ns),
    done ? "true" : "false");
  // A run that did not finish, or collected other than once per invoice,
  // is a failure, not a figure.
  return done && collected == o.n * 3000 ? 0 : 1;
}
