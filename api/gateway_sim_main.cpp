// recur-gateway-sim: reads its options, serves the Stripe-like API of
// api/gateway_sim.hpp and pumps its webhooks until SIGINT/SIGTERM (exit 0);
// 1: start-up failed, 2: bad command line or configuration.

#include <pthread.h>
#include <unistd.h>

#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include <spdlog/sinks/stdout_sinks.h>
#include <spdlog/spdlog.h>

#include "api/gateway_sim.hpp"
#include "api/http_server.hpp"
#include "api/system_clock.hpp"

#ifndef RECUR_VERSION
#  define RECUR_VERSION "0.0.0"
#endif

namespace {

using namespace recur;

int fail(int code, const std::string& message) {
  std::fprintf(stderr, "recur-gateway-sim: %s\n", message.c_str());
  return code;
}

std::optional<std::string> read_env(std::string_view name) {
  const char* value = std::getenv(std::string{name}.c_str());
  if (value == nullptr)
    return std::nullopt;
  return std::string{value};
}

void setup_logging() {
  auto logger = spdlog::stderr_logger_mt("recur-gateway-sim");
  logger->set_pattern("%Y-%m-%dT%H:%M:%S.%eZ level=%l %v",
                      spdlog::pattern_time_type::utc);
  spdlog::set_default_logger(std::move(logger));
}

int run(api::gateway_sim_options opts, const sigset_t& stop_signals) {
  setup_logging();
  api::system_clock clock;
  // Event ids stay unique across restarts of the sim (the endpoint's inbox
  // would drop a second "evt_sbx_1" as a replay).
  opts.sim.event_id_prefix = std::to_string(clock.now().unix_s) + "p"
                             + std::to_string(::getpid());
  auto sim = api::gateway_sim::create(opts.sim, clock);
  if (!sim)
    return fail(2, "configuration: " + sim.error().detail);
  api::http_server_config config;
  config.host = opts.listen.host;
  config.port = opts.listen.port;
  api::http_server server{config, (*sim)->handler()};
  if (auto started = server.start(); !started)
    return fail(1, started.error().detail);
  (*sim)->start_webhooks();
  spdlog::info("event=sim_started version={} listen={}:{} webhook_url=\"{}\" "
               "settle_delay_s={} duplicate_ppm={} reorder_ppm={} "
               "forge_ppm={} delay_s={} seed={}",
               RECUR_VERSION, opts.listen.host, server.port(),
               opts.sim.webhook_url, opts.sim.sandbox.settle_delay_s,
               opts.sim.duplicate_ppm, opts.sim.reorder_ppm, opts.sim.forge_ppm,
               opts.sim.delay_s, opts.sim.seed);
  if (opts.sim.webhook_url.empty())
    spdlog::warn("event=sim_webhooks_off detail=\"no --webhook-url: events "
                 "are dropped\"");
  int sig = 0;
  sigwait(&stop_signals, &sig);
  spdlog::info("event=sim_stopping signal={}",
               sig == SIGINT ? "SIGINT" : "SIGTERM");
  server.stop();
  (*sim)->stop_webhooks();
  spdlog::info("event=sim_stopped");
  return EXIT_SUCCESS;
}

int sim_main(int argc, char** argv) {
  // Blocked before any thread starts, so every thread inherits the mask and
  // sigwait sees a SIGTERM that arrives during start-up.
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGINT);
  sigaddset(&stop_signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);
  const std::vector<std::string_view> args(argv + 1, argv + argc);
  auto opts = api::parse_gateway_sim_options(args, read_env);
  if (!opts)
    return fail(2, opts.error().detail);
  if (opts->show_help) {
    std::fputs(api::gateway_sim_usage().c_str(), stdout);
    return EXIT_SUCCESS;
  }
  if (opts->show_version) {
    std::puts("recur-gateway-sim " RECUR_VERSION);
    return EXIT_SUCCESS;
  }
  return run(std::move(*opts), stop_signals);
}

} // namespace

int main(int argc, char** argv) {
  try {
    return sim_main(argc, argv);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "recur-gateway-sim: unexpected error: %s\n", e.what());
  } catch (...) {
    std::fputs("recur-gateway-sim: unexpected error\n", stderr);
  }
  return 1;
}
