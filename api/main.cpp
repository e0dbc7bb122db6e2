// recurd: the composition root. It reads options, connects to PostgreSQL
// (migrating it), starts the orchestrator (subscription actors, group-commit
// writer, durable timer service, start-up recovery) with each tenant's
// gateway (tenant_gateways: a Stripe-API adapter for a tenant whose stripe
// config has an api_key, else the in-process sandbox, one per test-mode
// tenant on its test clock), pumps the sandboxes' events to its own
// /v1/webhooks/sandbox/{tenant} (async settlement), serves the HTTP API until
// SIGINT/SIGTERM, stops the pump, the server, then the orchestrator, then the
// store, and maps failures to exit codes (1: start-up failed, 2: bad command
// line or configuration).

#include <unistd.h>

#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include <boost/asio/io_context.hpp>
#include <boost/asio/signal_set.hpp>
#include <nlohmann/json.hpp>
#include <spdlog/sinks/stdout_sinks.h>
#include <spdlog/spdlog.h>

#include "actors/orchestrator.hpp"
#include "api/app.hpp"
#include "api/database.hpp"
#include "api/events_wiring.hpp"
#include "api/health.hpp"
#include "api/http_server.hpp"
#include "api/options.hpp"
#include "api/routes_webhooks.hpp"
#include "api/store_metrics.hpp"
#include "api/sandbox_pump.hpp"
#include "api/subscription_cache.hpp"
#include "api/system_clock.hpp"
#include "api/tenant_env.hpp"
#include "api/test_clocks.hpp"
#include "domain/time.hpp"
#include "gateways/sandbox_gateway.hpp"
#include "gateways/tenant_gateways.hpp"
#include "persistence/pg_store.hpp"

#ifndef RECUR_VERSION
#  define RECUR_VERSION "0.0.0"
#endif

namespace {

using namespace recur;

constexpr int exit_startup_failed = 1;
constexpr int exit_usage = 2;

int fail(int code, const std::string& message) {
  std::fprintf(stderr, "recurd: %s\n", message.c_str());
  return code;
}

std::optional<std::string> read_env(std::string_view name) {
  const char* value = std::getenv(std::string{name}.c_str());
  if (value == nullptr)
    return std::nullopt;
  return std::string{value};
}

// One line per event, key=value, UTC timestamps: greppable and parseable.
void setup_logging() {
  auto logger = spdlog::stderr_logger_mt("recurd");
  logger->set_pattern("%Y-%m-%dT%H:%M:%S.%eZ level=%l %v",
                      spdlog::pattern_time_type::utc);
  spdlog::set_default_logger(std::move(logger));
}

std::string format_listen(const api::listen_address& addr) {
  const bool v6 = addr.host.find(':') != std::string::npos;
  return (v6 ? "[" + addr.host + "]" : addr.host) + ":"
         + std::to_string(addr.port);
}

// Blocks until SIGINT or SIGTERM, then stops the sandbox pump (it posts to
// the server) and the server gracefully.
void serve_until_signalled(boost::asio::io_context& signals_ioc,
                           boost::asio::signal_set& signals,
                           api::http_server& server, api::sandbox_pump& pump) {
  signals.async_wait([&server, &pump](const boost::system::error_code& ec,
                                      int sig) {
    if (ec)
      return;
    spdlog::info("event=recurd_stopping signal={}",
                 sig == SIGINT ? "SIGINT" : "SIGTERM");
    pump.stop();
    server.stop();
  });
  signals_ioc.run();
}

std::string_view kafka_text(const api::kafka_setting& k) {
  switch (k.kind) {
    case api::kafka_setting::mode::embedded:
      return "embedded";
    case api::kafka_setting::mode::none:
      return "none";
    case api::kafka_setting::mode::external:
      return k.bootstrap_servers;
  }
  return "none";
}

// The orchestrator's counters in /metrics (read at each scrape).
void add_orchestrator_metrics(api::metrics_registry& m,
                              const orchestrator& orch) {
  const auto* c = &orch.counters();
  using api::metric_sample;
  using api::metric_type;
  auto one = [](const std::atomic<std::uint64_t>& v) {
    return std::vector<metric_sample>{
      {{}, static_cast<double>(v.load(std::memory_order_relaxed))}};
  };
  m.add_collector("recur_sagas_total", "Sagas by what happened to them",
                  metric_type::counter, [c] {
                    auto at = [](const std::atomic<std::uint64_t>& v) {
                      return static_cast<double>(
                        v.load(std::memory_order_relaxed));
                    };
                    return std::vector<metric_sample>{
                      {{{"event", "started"}}, at(c->sagas_started)},
                      {{{"event", "completed"}}, at(c->sagas_completed)},
                      {{{"event", "compensated"}}, at(c->sagas_compensated)},
                      {{{"event", "failed"}}, at(c->sagas_failed)}};
                  });
  m.add_collector("recur_subscription_actors",
                  "Subscription actors in memory", metric_type::gauge, [c] {
                    return std::vector<metric_sample>{
                      {{}, static_cast<double>(c->live_actors.load(
                             std::memory_order_relaxed))}};
                  });
  m.add_collector("recur_orchestrator_in_progress",
                  "Inputs, commits and gateway calls under way",
                  metric_type::gauge, [c] {
                    return std::vector<metric_sample>{
                      {{}, static_cast<double>(c->in_progress.load(
                             std::memory_order_relaxed))}};
                  });
  m.add_collector("recur_gateway_calls_total",
                  "Gateway calls issued by sagas", metric_type::counter,
                  [c, one] { return one(c->gateway_calls); });
  m.add_collector(
    "recur_gateway_outcomes_total",
    "Answered gateway calls by call (charge, resolve, refund) and outcome",
    metric_type::counter, [c] {
      std::vector<metric_sample> out;
      for (std::size_t op = 0; op < gateway_op_count; ++op)
        for (std::size_t o = 0; o < gateway_outcome_count; ++o)
          out.push_back(
            {{{"call", std::string{to_string(
                         static_cast<gateway_call_request::op>(op))}},
              {"outcome",
               std::string{to_string(static_cast<gateway_outcome>(o))}}},
             static_cast<double>(c->gateway_outcomes[op][o].load(
               std::memory_order_relaxed))});
      return out;
    });
  m.add_collector("recur_commits_total", "Units of work committed by actors",
                  metric_type::counter, [c, one] { return one(c->commits); });
  m.add_collector("recur_commit_failures_total",
                  "Units of work whose commit failed", metric_type::counter,
                  [c, one] { return one(c->commit_failures); });
  m.add_collector("recur_subscription_inputs_rejected_total",
                  "Commands the lifecycle refused (invalid transitions, bad "
                  "arguments)",
                  metric_type::counter, [c, one] { return one(c->rejected); });
}

// -- gateways -----------------------------------------------------------------

// A tenant's config of `gateway` (JSON), nullopt when it has none.
result<std::optional<std::string>>
gateway_config_json(store& db, const tenant_id& t, const std::string& gateway) {
  auto c = db.get_gateway_config(t, gateway);
  if (c)
    return std::optional<std::string>{std::move(c->config_json)};
  if (c.code() == errc::not_found)
    return std::optional<std::string>{};
  return c.error();
}

// The webhook_secret of a tenant's sandbox config; nullopt: none (its events
// are not sent, as Stripe sends nothing to an endpoint never configured).
std::optional<std::string> sandbox_secret(store& db, const tenant_id& t) {
  auto json = gateway_config_json(db, t, "sandbox");
  if (!json || !*json)
    return std::nullopt;
  auto doc = nlohmann::json::parse(**json, nullptr, false);
  if (!doc.is_object() || !doc.contains("webhook_secret")
      || !doc["webhook_secret"].is_string())
    return std::nullopt;
  return doc["webhook_secret"].get<std::string>();
}

// recurd's own webhook URL for the sandbox pump: loopback when it listens on
// every address.
std::string own_webhook_url(const api::listen_address& listen,
                            std::uint16_t port) {
  const bool any = listen.host == "0.0.0.0" || listen.host == "::";
  const bool v6 = !any && listen.host.find(':') != std::string::npos;
  const std::string host = any  ? std::string{"127.0.0.1"}
                           : v6 ? "[" + listen.host + "]"
                                : listen.host;
  return "http://" + host + ":" + std::to_string(port)
         + "/v1/webhooks/sandbox/{tenant}";
}

int run(const api::options& opts) {
  setup_logging();
  api::system_clock clock;
  const auto db_target = api::redact_conninfo(opts.db_conninfo);
  auto db = api::database_probe::connect(opts.db_conninfo);
  if (!db)
    return fail(exit_startup_failed, "cannot connect to the database ("
                                       + db_target + "): " + db.error().detail);
  pg_store_config store_config;
  store_config.conninfo = opts.db_conninfo;
  // Reads and API writes get db_pool connections; each group-commit lane
  // holds one more while it commits.
  store_config.pool_size = opts.db_pool + opts.db_lanes;
  auto store = open_pg_store(store_config);
  if (!store)
    return store.code() == errc::invalid_argument
             ? fail(exit_usage, "option --db: " + store.error().detail)
             : fail(exit_startup_failed, "cannot open the store (" + db_target
                                           + "): " + store.error().detail);
  // Test-mode tenants' timers fire only through their test clock: the
  // orchestrator's own claims (timer service, fire_due) skip them.
  // The subscription read model cached for GET /v1/subscriptions/{id}
  // (subscription_cache.hpp). It is correct only because recurd is the only
  // writer of this database's subscriptions and every one of its writes
  // (actor commits, group commits, API commands) goes through `cached`: the
  // orchestrator's store and the app's are both built on it. Another process
  // writing the same subscriptions would need this cache turned off.
  // --read-cache 0 turns it off (every read goes to PostgreSQL).
  api::subscription_cache subscription_cache{
    std::max<std::size_t>(1, opts.read_cache_entries)};
  api::caching_store caching{**store, subscription_cache};
  ::recur::store& cached = opts.read_cache_entries > 0
                              ? static_cast<::recur::store&>(caching)
                              : **store;
  api::tenant_envs envs{**store};
  api::test_clocks clocks{**store, clock};
  auto live_store = api::make_live_timers_store(cached);
  // The in-process sandbox answers synchronously what it can; its webhooks
  // carry only what an answer left open (async settlements, lost answers,
  // refunds), so live tenants see no echo of every charge.
  api::sandbox_pool_config pool_config;
  pool_config.wall = &clock;
  pool_config.clock_for = [&clocks](const tenant_id& t) -> const recur::clock* {
    return clocks.clock_for(t);
  };
  pool_config.seed = opts.sandbox_seed.value_or(
    static_cast<std::uint64_t>(clock.now().unix_s));
  pool_config.sandbox = opts.sandbox; // its seeded fault rates
  pool_config.sandbox.events_for_sync_outcomes = false;
  api::sandbox_pool sandboxes{pool_config};
  tenant_gateways_config gateways_config;
  gateways_config.stripe_config_for = [db = store->get()](const tenant_id& t) {
    return gateway_config_json(*db, t, "stripe");
  };
  gateways_config.sandbox_for
    = [&sandboxes](const tenant_id& t) -> payment_gateway& {
    return sandboxes.for_tenant(t);
  };
  gateways_config.sandbox_for_charge
    = [&sandboxes](std::string_view charge_id) -> payment_gateway& {
    return sandboxes.for_charge(charge_id);
  };
  tenant_gateways gateway{std::move(gateways_config)};
  orchestrator_config orch_config;
  orch_config.db = live_store.get();
  orch_config.clk = &clock;
  orch_config.gateway = &gateway;
  orch_config.writer.group.lanes = opts.db_lanes;
  orch_config.env_for = [&envs](const tenant_id& t) { return envs.env_for(t); };
  orch_config.clock_for = [&clocks](const tenant_id& t) {
    return clocks.clock_for(t);
  };
  auto orch = orchestrator::start(std::move(orch_config));
  if (!orch)
    return fail(exit_startup_failed,
                "cannot start the orchestrator: " + orch.error().detail);
  // Domain events leave through the outbox: embedded mock cluster, a real
  // one, or none (--kafka).
  auto events = api::start_event_pipeline(opts.kafka, **store, clock);
  if (!events)
    return fail(events.code() == errc::invalid_argument ? exit_usage
                                                        : exit_startup_failed,
                "option --kafka: " + events.error().detail);
  api::app_config app_config;
  app_config.db = &cached;
  app_config.clk = &clock;
  app_config.now_for = [&clocks](const tenant_record& t) {
    return clocks.now_for(t);
  };
  app_config.extra_routes.push_back(
    api::billing_routes({orch->get(), &envs, &clocks}));
  app_config.extra_routes.push_back(
    [o = orch->get()](api::router& r, api::services& s) {
      api::webhook_options w;
      w.metrics = &s.metrics;
      api::add_webhook_routes(
        r, s.db, s.clk,
        [o](subscription_command c, std::function<void(command_reply)> done) {
          o->submit(std::move(c), std::move(done));
        },
        w);
    });
  // /readyz: the database and, unless --kafka none, the Kafka cluster.
  auto readiness = api::with_kafka_check(**db, **events);
  app_config.readiness = readiness.get();
  app_config.admin_key = opts.admin_key;
  app_config.rate_limit.rate_per_s = opts.rate_limit_per_s;
  app_config.rate_limit.burst = opts.rate_burst;
  api::app app{std::move(app_config)};
  add_orchestrator_metrics(app.metrics(), **orch);
  api::add_store_metrics(app.metrics(), **store, clock);
  (*events)->add_metrics(app.metrics());
  // Signals are routed to asio before any thread starts, so a SIGTERM during
  // start-up is never lost to the default handler.
  boost::asio::io_context signals_ioc;
  boost::asio::signal_set signals{signals_ioc, SIGINT, SIGTERM};
  api::http_server_config config;
  config.host = opts.listen.host;
  config.port = opts.listen.port;
  config.threads = opts.http_threads;
  config.fast_handler = app.fast_handler();
  api::http_server server{config, app.handler()};
  if (auto started = server.start(); !started)
    return fail(exit_startup_failed, started.error().detail);
  api::sandbox_pump_config pump_config;
  pump_config.webhooks.url = own_webhook_url(opts.listen, server.port());
  pump_config.webhooks.secret_for = [db = store->get()](const tenant_id& t) {
    return sandbox_secret(*db, t);
  };
  pump_config.webhooks.seed = pool_config.seed;
  pump_config.event_id_prefix = std::to_string(clock.now().unix_s) + "p"
                                + std::to_string(::getpid());
  auto pump = api::sandbox_pump::create(sandboxes, clock, pump_config);
  if (!pump)
    return fail(exit_startup_failed,
                "cannot start the sandbox pump: " + pump.error().detail);
  (*pump)->start();
  spdlog::info("event=recurd_started version={} listen={} db=ok "
               "db_target=\"{}\" threads={} routes={} admin_key={} kafka={} "
               "rate_limit_per_s={} rate_burst={} db_pool={} db_lanes={} "
               "read_cache={} started_at={}",
               RECUR_VERSION, format_listen(opts.listen), db_target,
               config.threads, app.routes().routes().size(),
               opts.admin_key.empty() ? "unset" : "set", kafka_text(opts.kafka),
               opts.rate_limit_per_s, opts.rate_burst, opts.db_pool, opts.db_lanes,
               opts.read_cache_entries,
               format_iso8601(clock.now()));
  if (opts.admin_key.empty())
    spdlog::warn("event=admin_key_unset detail=\"POST /v1/tenants answers "
                 "401 until RECUR_ADMIN_KEY or --admin-key-file is set\"");
  serve_until_signalled(signals_ioc, signals, server, **pump);
  // The server has stopped taking requests: the actors go before the store,
  // then the relay (it drains what they committed).
  orch->reset();
  (*events)->stop();
  spdlog::info("event=recurd_stopped");
  return EXIT_SUCCESS;
}

int recurd_main(int argc, char** argv) {
  const std::vector<std::string_view> args(argv + 1, argv + argc);
  auto opts = api::parse_options(args, read_env);
  if (!opts)
    return fail(exit_usage, opts.error().detail);
  if (opts->show_help) {
    std::fputs(api::usage().c_str(), stdout);
    return EXIT_SUCCESS;
  }
  if (opts->show_version) {
    std::puts("recurd " RECUR_VERSION);
    return EXIT_SUCCESS;
  }
  if (!opts->admin_key_file.empty()) {
    auto key = api::read_admin_key_file(opts->admin_key_file);
    if (!key)
      return fail(exit_usage, key.error().detail);
    opts->admin_key = std::move(*key);
  }
  return run(*opts);
}

} // namespace

int main(int argc, char** argv) {
  // Only resource exhaustion (threads, memory) throws this far.
  try {
    return recurd_main(argc, argv);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "recurd: unexpected error: %s\n", e.what());
  } catch (...) {
    std::fputs("recurd: unexpected error\n", stderr);
  }
  return exit_startup_failed;
}
