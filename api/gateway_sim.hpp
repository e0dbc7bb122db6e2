#pragma once
/// recur-gateway-sim: the sandbox gateway behind the subset of Stripe's REST
/// API that gateways/stripe_gateway.cpp speaks, so that recurd can be run
/// against a "Stripe" that settles asynchronous payments later and delivers
/// signed webhooks with seeded duplicates, reordering, delays and forgeries.
///
///   POST /v1/payment_intents        (form; Idempotency-Key) → PaymentIntent
///   GET  /v1/payment_intents/search?query=metadata['idempotency_key']:'K'
///   POST /v1/refunds                (form; Idempotency-Key) → Refund
///   GET  /sim/charges               every charge, for tests and people
///   GET  /healthz
///
/// Every /v1 and /sim call needs `Authorization: Bearer <api key>`.

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>

#include "api/http_server.hpp"
#include "api/options.hpp"
#include "api/sandbox_pump.hpp"
#include "domain/clock.hpp"
#include "domain/error.hpp"
#include "gateways/sandbox_gateway.hpp"

namespace recur::api {

// -- configuration ------------------------------------------------------------

struct gateway_sim_config {
  /// The secret key clients send as Bearer (stripe_config::secret_key).
  std::string api_key = "sk_test_recur_sim";
  std::uint64_t seed = 1;
  /// Test payment methods, fault tokens and rates; settle_delay_s is how
  /// long pm_sandbox_async takes (the sandbox's 60 s here; the binary's
  /// --settle-delay-s defaults to 10 s).
  sandbox_config sandbox;
  /// Where events go: "http://host:port/path", every "{tenant}" replaced by
  /// the tenant of the event (metadata[tenant_id] of the charge). Empty: no
  /// webhooks (events are polled and dropped, logged).
  std::string webhook_url;
  /// The endpoint secret every tenant's endpoint verifies with (the
  /// webhook_secret of PUT /v1/gateways/stripe).
  std::string webhook_secret;
  std::uint32_t duplicate_ppm = 0;
  std::uint32_t reorder_ppm = 0;
  std::uint32_t forge_ppm = 0;
  std::int64_t delay_s = 0;
  std::int64_t delay_jitter_s = 0;
  std::chrono::milliseconds pump_interval{200};
  /// Makes event ids unique across runs ("evt_<prefix>_sbx_<n>"); main sets
  /// it from the start time. Empty: "evt_sbx_<n>".
  std::string event_id_prefix;
  /// Form fields read per request at most (a bound on work per request).
  std::size_t form_fields_max = 64;
};

/// `invalid_argument` naming the field.
status validate(const gateway_sim_config& c);

/// The command line of recur-gateway-sim.
struct gateway_sim_options {
  listen_address listen{"127.0.0.1", 12111};
  gateway_sim_config sim;
  bool show_help = false;
  bool show_version = false;
};

/// Parses argv (without argv[0]); a flag wins over its environment
/// variable. Errors are `invalid_argument`, one line naming the option.
result<gateway_sim_options>
parse_gateway_sim_options(std::span<const std::string_view> args,
                          const env_lookup& env);

/// The --help text: every option, its variable and default.
std::string gateway_sim_usage();

// -- the service --------------------------------------------------------------

/// The sim: a sandbox gateway (on `clk`), its HTTP handler and its webhook
/// pump. Charge ids are PaymentIntent ids "pi_sbx_<n>" (the sandbox's
/// "ch_sbx_<n>" renamed), in answers and events alike. One Stripe account:
/// idempotency keys are one namespace for every tenant.
class gateway_sim {
public:
  /// Checks the config. `clk` (the sandbox's time, the webhooks' delays and
  /// signatures) must outlive the sim: a system clock in the binary, a
  /// controllable one in tests.
  static result<std::unique_ptr<gateway_sim>> create(gateway_sim_config config,
                                                     const clock& clk);

  ~gateway_sim();
  gateway_sim(const gateway_sim&) = delete;
  gateway_sim& operator=(const gateway_sim&) = delete;

  /// Answers one request. Thread-safe.
  http_response handle(const http_request& req);

  /// `handle` bound to this sim, for http_server (the sim must outlive it).
  http_handler handler();

  /// Starts / stops the webhook thread (no-ops without a webhook URL).
  void start_webhooks();
  void stop_webhooks();

  /// One webhook round on the caller's thread: settles what is due, plans
  /// and delivers what is due (tests). Without a webhook URL: polls and
  /// drops.
  pump_round pump_once();

  sandbox_gateway& sandbox();

  struct impl;

private:
  explicit gateway_sim(std::unique_ptr<impl> p);
  std::unique_ptr<impl> impl_;
};

/// "ch_sbx_7" → "pi_sbx_7" (other ids unchanged) and back.
std::string payment_intent_id_of(std::string_view charge_id);
std::string charge_id_of(std::string_view payment_intent_id);

} // namespace recur::api
