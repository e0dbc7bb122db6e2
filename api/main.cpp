// recurd: the composition root. It reads options, connects to PostgreSQL
// (migrating it), serves the HTTP API until SIGINT/SIGTERM, and maps failures
// to exit codes (1: start-up failed, 2: bad command line or configuration).

#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include <boost/asio/io_context.hpp>
#include <boost/asio/signal_set.hpp>
#include <spdlog/sinks/stdout_sinks.h>
#include <spdlog/spdlog.h>

#include "api/app.hpp"
#include "api/database.hpp"
#include "api/health.hpp"
#include "api/http_server.hpp"
#include "api/options.hpp"
#include "api/system_clock.hpp"
#include "domain/time.hpp"
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

// Blocks until SIGINT or SIGTERM, then stops the server gracefully.
void serve_until_signalled(boost::asio::io_context& signals_ioc,
                           boost::asio::signal_set& signals,
                           api::http_server& server) {
  signals.async_wait([&server](const boost::system::error_code& ec, int sig) {
    if (ec)
      return;
    spdlog::info("event=recurd_stopping signal={}",
                 sig == SIGINT ? "SIGINT" : "SIGTERM");
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

int run(const api::options& opts) {
  setup_logging();
  const api::system_clock clock;
  const auto db_target = api::redact_conninfo(opts.db_conninfo);
  auto db = api::database_probe::connect(opts.db_conninfo);
  if (!db)
    return fail(exit_startup_failed, "cannot connect to the database ("
                                       + db_target + "): " + db.error().detail);
  pg_store_config store_config;
  store_config.conninfo = opts.db_conninfo;
  auto store = open_pg_store(store_config);
  if (!store)
    return store.code() == errc::invalid_argument
             ? fail(exit_usage, "option --db: " + store.error().detail)
             : fail(exit_startup_failed, "cannot open the store (" + db_target
                                           + "): " + store.error().detail);
  api::app_config app_config;
  app_config.db = store->get();
  app_config.clk = &clock;
  app_config.readiness = db->get();
  app_config.admin_key = opts.admin_key;
  app_config.rate_limit.rate_per_s = opts.rate_limit_per_s;
  app_config.rate_limit.burst = opts.rate_burst;
  api::app app{std::move(app_config)};
  // Signals are routed to asio before any thread starts, so a SIGTERM during
  // start-up is never lost to the default handler.
  boost::asio::io_context signals_ioc;
  boost::asio::signal_set signals{signals_ioc, SIGINT, SIGTERM};
  api::http_server_config config;
  config.host = opts.listen.host;
  config.port = opts.listen.port;
  api::http_server server{config, app.handler()};
  if (auto started = server.start(); !started)
    return fail(exit_startup_failed, started.error().detail);
  spdlog::info("event=recurd_started version={} listen={} db=ok "
               "db_target=\"{}\" threads={} routes={} admin_key={} kafka={} "
               "rate_limit_per_s={} rate_burst={} started_at={}",
               RECUR_VERSION, format_listen(opts.listen), db_target,
               config.threads, app.routes().routes().size(),
               opts.admin_key.empty() ? "unset" : "set", kafka_text(opts.kafka),
               opts.rate_limit_per_s, opts.rate_burst,
               format_iso8601(clock.now()));
  if (opts.admin_key.empty())
    spdlog::warn("event=admin_key_unset detail=\"POST /v1/tenants answers "
                 "401 until RECUR_ADMIN_KEY or --admin-key-file is set\"");
  serve_until_signalled(signals_ioc, signals, server);
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
