// recur-gateway-sim's REST mapping, driven by the real Stripe adapter over
// loopback HTTP (succeeded, declines, idempotent replay and conflict,
// retrieve, refunds, async settlement by signed webhook with duplicates and
// forgeries), its command line, the per-tenant gateway router and the
// sandbox pump's per-tenant clocks.

#include <chrono>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "api/gateway_sim.hpp"
#include "api/http_server.hpp"
#include "api/sandbox_pump.hpp"
#include "api/test_clocks.hpp"
#include "gateways/sandbox_gateway.hpp"
#include "gateways/stripe_events.hpp"
#include "gateways/stripe_gateway.hpp"
#include "gateways/tenant_gateways.hpp"
#include "gateways/webhook_signature.hpp"

namespace recur::api {
namespace {

constexpr const char* api_key = "sk_test_gateway_sim_unit";
constexpr const char* secret = "whsec_gateway_sim_unit";
constexpr instant start{1'750'000'000};

http_server_config loopback() {
  http_server_config c;
  c.host = "127.0.0.1";
  c.port = 0;
  return c;
}

money usd(std::int64_t minor) {
  return money{minor, currency::of("USD")};
}

charge_request charge_of(std::string key, std::string pm,
                         std::int64_t minor = 2'500,
                         std::string tenant = "t_1") {
  return charge_request{std::move(key),       tenant_id{std::move(tenant)},
                        customer_id{"cus_1"}, std::move(pm),
                        usd(minor),           "test charge"};
}

// -- a webhook endpoint that verifies like recurd
// -------------------------------

struct received_hook {
  std::string target;
  bool valid = false;
  std::string event_id;
  std::string type;
  std::optional<gateway_event> event;
};

/// Answers 200 to a valid signature (by `clk`, the sim's clock) and 400 to
/// anything else, remembering every request.
class hook_endpoint {
public:
  explicit hook_endpoint(const clock& clk)
    : clk_(clk),
      server_(loopback(), [this](const http_request& r) { return on(r); }) {
    EXPECT_TRUE(server_.start().has_value());
  }
  ~hook_endpoint() { server_.stop(); }

  std::string url() const {
    return "http://127.0.0.1:" + std::to_string(server_.port())
           + "/hooks/{tenant}";
  }

  std::vector<received_hook> received() const {
    std::lock_guard lock{mutex_};
    return hooks_;
  }

  std::vector<received_hook> valid() const {
    std::vector<received_hook> out;
    for (auto& h : received())
      if (h.valid)
        out.push_back(h);
    return out;
  }

private:
  http_response on(const http_request& r) {
    received_hook h;
    h.target = r.target;
    h.valid = !check_stripe_signature(r.header("Stripe-Signature"), r.body,
                                      secret, clk_.now());
    auto parsed = parse_stripe_event(r.body);
    if (h.valid && parsed) {
      if (auto* e = std::get_if<stripe_event>(&*parsed)) {
        h.event = e->event;
        h.event_id = e->event.id;
        h.type = e->event.type;
      }
    }
    std::lock_guard lock{mutex_};
    hooks_.push_back(h);
    return http_response{h.valid ? 200U : 400U, "application/json", "{}", {}};
  }

  const clock& clk_;
  mutable std::mutex mutex_;
  std::vector<received_hook> hooks_;
  http_server server_;
};

// -- the sim on a loopback port -----------------------------------------------

class gateway_sim_test : public testing::Test {
protected:
  void start_sim(gateway_sim_config c = {}) {
    c.api_key = api_key;
    c.webhook_url = hooks_.url();
    c.webhook_secret = secret;
    c.sandbox.settle_delay_s = 30;
    auto s = gateway_sim::create(std::move(c), clk_);
    ASSERT_TRUE(s.has_value()) << s.error().detail;
    sim_ = std::move(*s);
    server_ = std::make_unique<http_server>(loopback(), sim_->handler());
    ASSERT_TRUE(server_->start().has_value());
  }

  void TearDown() override {
    if (server_)
      server_->stop();
  }

  stripe_config stripe(std::string key = api_key) const {
    stripe_config c;
    c.base_url = base_url();
    c.secret_key = std::move(key);
    c.read_timeout_ms = 5'000;
    return c;
  }

  std::string base_url() const {
    return "http://127.0.0.1:" + std::to_string(server_->port());
  }

  test_clock clk_{start};
  hook_endpoint hooks_{clk_};
  std::unique_ptr<gateway_sim> sim_;
  std::unique_ptr<http_server> server_;
};

TEST_F(gateway_sim_test, a_good_card_succeeds_with_a_payment_intent_id) {
  start_sim();
  stripe_gateway gw{stripe()};
  auto r = gw.charge(charge_of("inv_1/attempt-1", "pm_card_visa"));
  ASSERT_TRUE(r.has_value()) << r.error().detail;
  EXPECT_EQ(r->status, charge_status::succeeded);
  EXPECT_TRUE(r->charge_id.starts_with("pi_sbx_")) << r->charge_id;
  EXPECT_EQ(sim_->sandbox().times_collected("inv_1/attempt-1"), 1);
  EXPECT_EQ(sim_->sandbox().total_collected(currency::of("USD")), usd(2'500));
}

TEST_F(gateway_sim_test, declines_keep_their_code_and_class) {
  start_sim();
  stripe_gateway gw{stripe()};
  auto soft
    = gw.charge(charge_of("k_soft", "pm_card_chargeDeclinedInsufficientFunds"));
  ASSERT_TRUE(soft.has_value()) << soft.error().detail;
  EXPECT_EQ(soft->status, charge_status::declined);
  EXPECT_EQ(soft->decline_code, "insufficient_funds");
  EXPECT_EQ(soft->decline, decline_class::soft);
  EXPECT_TRUE(soft->charge_id.starts_with("pi_sbx_"));

  auto hard
    = gw.charge(charge_of("k_hard", "pm_card_chargeDeclinedExpiredCard"));
  ASSERT_TRUE(hard.has_value());
  EXPECT_EQ(hard->status, charge_status::declined);
  EXPECT_EQ(hard->decline_code, "expired_card");
  EXPECT_EQ(hard->decline, decline_class::hard);

  auto missing = gw.charge(charge_of("k_missing", "pm_no_such_card"));
  ASSERT_TRUE(missing.has_value());
  EXPECT_EQ(missing->status, charge_status::declined);
  EXPECT_EQ(missing->decline_code, "resource_missing");
  EXPECT_EQ(missing->decline, decline_class::hard);
  EXPECT_EQ(sim_->sandbox().total_collected(currency::of("USD")), usd(0));
}

TEST_F(gateway_sim_test,
       a_replay_answers_the_first_outcome_and_a_changed_request_conflicts) {
  start_sim();
  stripe_gateway gw{stripe()};
  auto first = gw.charge(charge_of("k_replay", "pm_card_visa"));
  auto again = gw.charge(charge_of("k_replay", "pm_card_visa"));
  ASSERT_TRUE(first.has_value() && again.has_value());
  EXPECT_EQ(*first, *again);
  EXPECT_EQ(sim_->sandbox().times_collected("k_replay"), 1);

  auto changed = gw.charge(charge_of("k_replay", "pm_card_visa", 9'999));
  ASSERT_FALSE(changed.has_value());
  EXPECT_EQ(changed.code(), errc::idempotency_conflict);
  EXPECT_EQ(sim_->sandbox().total_collected(currency::of("USD")), usd(2'500));
}

TEST_F(gateway_sim_test,
       retrieve_searches_by_key_and_tells_lost_answers_apart) {
  start_sim();
  stripe_gateway gw{stripe()};
  auto made = gw.charge(charge_of("inv_'q\\/attempt-1", "pm_card_visa"));
  ASSERT_TRUE(made.has_value());
  auto found = gw.retrieve("inv_'q\\/attempt-1");
  ASSERT_TRUE(found.has_value()) << found.error().detail;
  EXPECT_EQ(*found, *made);

  auto none = gw.retrieve("never_sent");
  ASSERT_FALSE(none.has_value());
  EXPECT_EQ(none.code(), errc::not_found);

  // Lost before processing: unknown, and search finds nothing.
  auto lost = gw.charge(charge_of("k_lost", "pm_sandbox_timeout"));
  ASSERT_TRUE(lost.has_value());
  EXPECT_EQ(lost->status, charge_status::unknown);
  EXPECT_EQ(gw.retrieve("k_lost").code(), errc::not_found);

  // Processed, answer lost: unknown, and search tells the truth.
  auto charged
    = gw.charge(charge_of("k_charged", "pm_sandbox_timeout_after_charge"));
  ASSERT_TRUE(charged.has_value());
  EXPECT_EQ(charged->status, charge_status::unknown);
  auto truth = gw.retrieve("k_charged");
  ASSERT_TRUE(truth.has_value());
  EXPECT_EQ(truth->status, charge_status::succeeded);
  EXPECT_EQ(sim_->sandbox().times_collected("k_charged"), 1);
}

TEST_F(gateway_sim_test, refunds_map_every_outcome) {
  start_sim();
  stripe_gateway gw{stripe()};
  auto paid = gw.charge(charge_of("k_paid", "pm_card_visa", 10'000));
  ASSERT_TRUE(paid.has_value());
  auto half = gw.refund({"k_refund_1", paid->charge_id, usd(4'000)});
  ASSERT_TRUE(half.has_value()) << half.error().detail;
  EXPECT_EQ(half->amount, usd(4'000));
  EXPECT_FALSE(half->refund_id.empty());
  auto replay = gw.refund({"k_refund_1", paid->charge_id, usd(4'000)});
  ASSERT_TRUE(replay.has_value());
  EXPECT_EQ(*replay, *half);
  EXPECT_EQ(sim_->sandbox().total_refunded(currency::of("USD")), usd(4'000));

  auto too_much = gw.refund({"k_refund_2", paid->charge_id, usd(7'000)});
  ASSERT_FALSE(too_much.has_value());
  EXPECT_EQ(too_much.code(), errc::invalid_argument);

  auto declined = gw.charge(charge_of("k_dec", "pm_card_chargeDeclined"));
  ASSERT_TRUE(declined.has_value());
  auto not_paid = gw.refund({"k_refund_3", declined->charge_id, usd(100)});
  ASSERT_FALSE(not_paid.has_value());
  EXPECT_EQ(not_paid.code(), errc::invalid_transition);

  auto nowhere = gw.refund({"k_refund_4", "pi_sbx_999", usd(100)});
  ASSERT_FALSE(nowhere.has_value());
  EXPECT_EQ(nowhere.code(), errc::not_found);

  auto conflict = gw.refund({"k_refund_1", paid->charge_id, usd(1'000)});
  ASSERT_FALSE(conflict.has_value());
  EXPECT_EQ(conflict.code(), errc::idempotency_conflict);
  EXPECT_EQ(sim_->sandbox().total_refunded(currency::of("USD")), usd(4'000));
}

TEST_F(gateway_sim_test, a_wrong_api_key_is_refused_and_nothing_is_charged) {
  start_sim();
  stripe_gateway gw{stripe("sk_test_wrong")};
  auto r = gw.charge(charge_of("k_auth", "pm_card_visa"));
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.code(), errc::unavailable);
  EXPECT_TRUE(sim_->sandbox().charges().empty());
}

TEST_F(gateway_sim_test, an_async_charge_settles_later_by_a_signed_webhook) {
  start_sim();
  stripe_gateway gw{stripe()};
  auto pending = gw.charge(charge_of("inv_9/attempt-1", "pm_sandbox_async"));
  ASSERT_TRUE(pending.has_value());
  EXPECT_EQ(pending->status, charge_status::pending);
  EXPECT_EQ(gw.retrieve("inv_9/attempt-1")->status, charge_status::pending);

  EXPECT_EQ(sim_->pump_once().events, 0U); // not due yet
  clk_.set(start.plus_seconds(31));
  const auto round = sim_->pump_once();
  EXPECT_EQ(round.events, 1U);
  EXPECT_EQ(round.accepted, 1U);
  const auto hooks = hooks_.valid();
  ASSERT_EQ(hooks.size(), 1U);
  EXPECT_EQ(hooks[0].target, "/hooks/t_1");
  EXPECT_EQ(hooks[0].type, "payment_intent.succeeded");
  EXPECT_EQ(hooks[0].event->idempotency_key, "inv_9/attempt-1");
  EXPECT_EQ(hooks[0].event->charge_id, pending->charge_id);
  EXPECT_EQ(hooks[0].event->tenant, tenant_id{"t_1"});
  EXPECT_EQ(gw.retrieve("inv_9/attempt-1")->status, charge_status::succeeded);
  EXPECT_EQ(sim_->sandbox().times_collected("inv_9/attempt-1"), 1);
}

TEST_F(gateway_sim_test,
       duplicates_and_forgeries_go_out_with_every_real_event) {
  gateway_sim_config c;
  c.duplicate_ppm = ppm_max;
  c.forge_ppm = ppm_max;
  c.event_id_prefix = "run7";
  start_sim(c);
  stripe_gateway gw{stripe()};
  ASSERT_TRUE(gw.charge(charge_of("k_a", "pm_sandbox_async")).has_value());
  ASSERT_TRUE(gw.charge(charge_of("k_b", "pm_sandbox_async_fail")).has_value());
  clk_.set(start.plus_seconds(31));
  const auto round = sim_->pump_once();
  EXPECT_EQ(round.events, 2U);
  // Per event: a forgery (refused), the real one, its duplicate.
  EXPECT_EQ(round.deliveries, 6U);
  EXPECT_EQ(round.refused, 2U);
  EXPECT_EQ(round.accepted, 4U);
  std::map<std::string, int> copies;
  for (const auto& h : hooks_.valid()) {
    ++copies[h.event_id];
    EXPECT_TRUE(h.event_id.starts_with("evt_run7_")) << h.event_id;
  }
  ASSERT_EQ(copies.size(), 2U);
  for (const auto& [id, n] : copies)
    EXPECT_EQ(n, 2) << id;
  EXPECT_EQ(sim_->sandbox().total_collected(currency::of("USD")), usd(2'500));
}

TEST_F(gateway_sim_test, unknown_routes_and_bad_forms_get_stripe_errors) {
  start_sim();
  http_request req{"POST",
                   "/v1/customers",
                   {{"Authorization", std::string{"Bearer "} + api_key}},
                   ""};
  auto r = sim_->handle(req);
  EXPECT_EQ(r.status, 404U);
  EXPECT_EQ(nlohmann::json::parse(r.body)["error"]["type"],
            "invalid_request_error");
  req.target = "/v1/payment_intents";
  req.headers.emplace_back("Idempotency-Key", "k_form");
  req.body = "amount=-5&currency=usd&payment_method=pm_card_visa&confirm=true";
  r = sim_->handle(req);
  EXPECT_EQ(r.status, 400U);
  EXPECT_EQ(nlohmann::json::parse(r.body)["error"]["param"], "amount");
  req.body = "amount=5&currency=usd&payment_method=pm_card_visa";
  EXPECT_EQ(sim_->handle(req).status, 400U); // confirm=true is required
  EXPECT_TRUE(sim_->sandbox().charges().empty());
  EXPECT_EQ(sim_->handle({"GET", "/healthz", {}, ""}).status, 200U);
}

// -- the command line ---------------------------------------------------------

result<gateway_sim_options> parse(std::vector<std::string_view> args,
                                  std::map<std::string, std::string> env = {}) {
  return parse_gateway_sim_options(
    args, [env](std::string_view name) -> std::optional<std::string> {
      auto it = env.find(std::string{name});
      if (it == env.end())
        return std::nullopt;
      return it->second;
    });
}

TEST(gateway_sim_options, defaults_flags_and_environment_are_read) {
  auto d = parse({});
  ASSERT_TRUE(d.has_value()) << d.error().detail;
  EXPECT_EQ(d->listen.port, 12111);
  EXPECT_EQ(d->sim.sandbox.settle_delay_s, 10);
  EXPECT_TRUE(d->sim.webhook_url.empty());

  auto o = parse({"--listen", "127.0.0.1:9999", "--duplicate-ppm=250000",
                  "--webhook-url",
                  "http://127.0.0.1:8080/v1/webhooks/stripe/{tenant}"},
                 {{"RECUR_SIM_WEBHOOK_SECRET", "whsec_x"},
                  {"RECUR_SIM_DUPLICATE_PPM", "5"},
                  {"RECUR_SIM_SETTLE_DELAY_S", "3"}});
  ASSERT_TRUE(o.has_value()) << o.error().detail;
  EXPECT_EQ(o->listen.port, 9999);
  EXPECT_EQ(o->sim.duplicate_ppm, 250'000U); // the flag wins
  EXPECT_EQ(o->sim.sandbox.settle_delay_s, 3);
  EXPECT_EQ(o->sim.webhook_secret, "whsec_x");
}

TEST(gateway_sim_options, a_bad_option_is_one_line_naming_it) {
  auto unknown = parse({"--nope"});
  ASSERT_FALSE(unknown.has_value());
  EXPECT_NE(unknown.error().detail.find("--nope"), std::string::npos);
  auto rate = parse({"--forge-ppm", "2000000"});
  ASSERT_FALSE(rate.has_value());
  EXPECT_NE(rate.error().detail.find("--forge-ppm"), std::string::npos);
  auto env = parse({}, {{"RECUR_SIM_SEED", "x"}});
  ASSERT_FALSE(env.has_value());
  EXPECT_NE(env.error().detail.find("RECUR_SIM_SEED"), std::string::npos);
  auto no_secret = parse({"--webhook-url", "http://127.0.0.1:1/x"});
  ASSERT_FALSE(no_secret.has_value());
  EXPECT_NE(no_secret.error().detail.find("webhook_secret"), std::string::npos);
  for (const auto& e : {unknown, rate, env, no_secret})
    EXPECT_EQ(e.error().detail.find('\n'), std::string::npos);
}

TEST(gateway_sim_options, help_lists_every_option_with_its_variable) {
  const auto help = gateway_sim_usage();
  for (const char* s :
       {"--listen", "RECUR_SIM_LISTEN", "--api-key", "--webhook-url",
        "--webhook-secret", "--seed", "--settle-delay-s", "--sync-events",
        "--timeout-ppm", "--decline-soft-ppm", "--pending-ppm",
        "--duplicate-ppm", "--reorder-ppm", "--forge-ppm", "--delay-s",
        "--delay-jitter-s", "--pump-interval-ms", "--help"})
    EXPECT_NE(help.find(s), std::string::npos) << s;
  auto h = parse({"--help", "--nope"});
  ASSERT_TRUE(h.has_value());
  EXPECT_TRUE(h->show_help);
}

// -- per-tenant routing -------------------------------------------------------

class tenant_gateways_test : public gateway_sim_test {
protected:
  void SetUp() override {
    start_sim();
    tenant_gateways_config c;
    c.stripe_config_for
      = [this](const tenant_id& t) -> result<std::optional<std::string>> {
      std::lock_guard lock{mutex_};
      if (down_)
        return make_error(errc::unavailable, "store down");
      auto it = configs_.find(t.value);
      if (it == configs_.end())
        return std::optional<std::string>{};
      return std::optional<std::string>{it->second};
    };
    c.sandbox_for = [this](const tenant_id&) -> payment_gateway& {
      return local_;
    };
    router_ = std::make_unique<tenant_gateways>(std::move(c));
  }

  void configure(const std::string& tenant, const std::string& json) {
    std::lock_guard lock{mutex_};
    configs_[tenant] = json;
  }

  std::string stripe_json(const std::string& key) const {
    return nlohmann::json{
      {"webhook_secret", secret}, {"api_key", key}, {"base_url", base_url()}}
      .dump();
  }

  std::mutex mutex_;
  std::map<std::string, std::string> configs_;
  bool down_ = false;
  manual_clock local_clock_{start};
  sandbox_gateway local_{local_clock_, 7};
  std::unique_ptr<tenant_gateways> router_;
};

TEST_F(tenant_gateways_test,
       each_tenant_is_served_by_the_gateway_it_configured) {
  configure("t_stripe", stripe_json(api_key));
  configure("t_hooks_only", R"({"webhook_secret":"whsec_only"})");
  auto s = router_->charge(charge_of("k_s", "pm_card_visa", 100, "t_stripe"));
  auto l = router_->charge(charge_of("k_l", "pm_card_visa", 200, "t_local"));
  auto h
    = router_->charge(charge_of("k_h", "pm_card_visa", 300, "t_hooks_only"));
  ASSERT_TRUE(s.has_value() && l.has_value() && h.has_value());
  EXPECT_TRUE(s->charge_id.starts_with("pi_")) << s->charge_id;
  EXPECT_EQ(sim_->sandbox().times_collected("k_s"), 1);
  EXPECT_EQ(sim_->sandbox().times_collected("k_l"), 0);
  EXPECT_EQ(local_.times_collected("k_l"), 1);
  EXPECT_EQ(local_.times_collected("k_h"), 1);
  EXPECT_EQ(*router_->gateway_name_for(tenant_id{"t_stripe"}), "stripe");
  EXPECT_EQ(*router_->gateway_name_for(tenant_id{"t_local"}), "sandbox");

  // Retrieve and refund go where the charge went.
  auto found = router_->retrieve_for_tenant(tenant_id{"t_stripe"}, "k_s");
  ASSERT_TRUE(found.has_value()) << found.error().detail;
  EXPECT_EQ(found->charge_id, s->charge_id);
  EXPECT_EQ(router_->retrieve_for_tenant(tenant_id{"t_local"}, "k_s").code(),
            errc::not_found);
  auto refunded = router_->refund({"k_s_refund", s->charge_id, usd(50)});
  ASSERT_TRUE(refunded.has_value()) << refunded.error().detail;
  EXPECT_EQ(sim_->sandbox().total_refunded(currency::of("USD")), usd(50));
  auto local_refund = router_->refund_for_tenant(
    tenant_id{"t_local"}, {"k_l_refund", l->charge_id, usd(20)});
  ASSERT_TRUE(local_refund.has_value());
  EXPECT_EQ(local_.total_refunded(currency::of("USD")), usd(20));
}

TEST_F(tenant_gateways_test,
       a_key_charged_before_a_gateway_switch_is_found_not_charged_again) {
  // Sandbox first, then Stripe: the sandbox's charge is still found.
  auto on_sandbox
    = router_->charge(charge_of("k_before", "pm_card_visa", 100, "t_move"));
  ASSERT_TRUE(on_sandbox.has_value());
  configure("t_move", stripe_json(api_key));
  auto found = router_->retrieve_for_tenant(tenant_id{"t_move"}, "k_before");
  ASSERT_TRUE(found.has_value()) << found.error().detail;
  EXPECT_EQ(found->charge_id, on_sandbox->charge_id);
  EXPECT_EQ(found->status, on_sandbox->status);

  // Stripe, then back to the sandbox: the Stripe charge is still found.
  auto on_stripe
    = router_->charge(charge_of("k_stripe", "pm_card_visa", 200, "t_move"));
  ASSERT_TRUE(on_stripe.has_value());
  configure("t_move", R"({"webhook_secret":"whsec_back"})");
  auto back = router_->retrieve_for_tenant(tenant_id{"t_move"}, "k_stripe");
  ASSERT_TRUE(back.has_value()) << back.error().detail;
  EXPECT_EQ(back->charge_id, on_stripe->charge_id);

  // A key charged nowhere is still not_found (a resolve may charge it).
  EXPECT_EQ(router_->retrieve_for_tenant(tenant_id{"t_move"}, "k_never").code(),
            errc::not_found);
  EXPECT_EQ(local_.times_collected("k_before"), 1);
  EXPECT_EQ(sim_->sandbox().times_collected("k_stripe"), 1);
  EXPECT_EQ(sim_->sandbox().times_collected("k_before"), 0);
}

TEST_F(tenant_gateways_test, a_changed_or_broken_config_takes_effect_at_once) {
  configure("t_1", stripe_json(api_key));
  ASSERT_TRUE(router_->charge(charge_of("k_1", "pm_card_visa")).has_value());
  configure("t_1", stripe_json("sk_test_revoked"));
  auto refused = router_->charge(charge_of("k_2", "pm_card_visa"));
  ASSERT_FALSE(refused.has_value());
  EXPECT_EQ(refused.code(), errc::unavailable);
  configure("t_1", R"({"webhook_secret":"whsec_1","api_key":"sk bad key"})");
  auto invalid = router_->charge(charge_of("k_3", "pm_card_visa"));
  ASSERT_FALSE(invalid.has_value());
  EXPECT_EQ(invalid.code(), errc::unavailable);
  EXPECT_EQ(invalid.error().detail.find("sk bad key"), std::string::npos);
  {
    std::lock_guard lock{mutex_};
    down_ = true;
  }
  auto down = router_->charge(charge_of("k_4", "pm_card_visa"));
  ASSERT_FALSE(down.has_value());
  EXPECT_EQ(down.code(), errc::unavailable);
  EXPECT_EQ(sim_->sandbox().charges().size(), 1U);
  EXPECT_TRUE(local_.charges().empty());
}

// -- the pump and per-tenant clocks -------------------------------------------

TEST(sandbox_pump, a_tenant_on_its_own_clock_settles_when_that_clock_passes) {
  test_clock wall{start};
  test_clock tenant_clock{start};
  hook_endpoint hooks{wall};
  sandbox_pool_config pc;
  pc.wall = &wall;
  pc.clock_for = [&](const tenant_id& t) -> const clock* {
    return t.value == "t_test" ? &tenant_clock : nullptr;
  };
  pc.sandbox.settle_delay_s = 60;
  pc.sandbox.events_for_sync_outcomes = false;
  sandbox_pool pool{pc};
  sandbox_pump_config c;
  c.webhooks.url = hooks.url();
  c.webhooks.secret = secret;
  c.event_id_prefix = "boot1";
  auto pump = sandbox_pump::create(pool, wall, c);
  ASSERT_TRUE(pump.has_value()) << pump.error().detail;

  auto& own = pool.for_tenant(tenant_id{"t_test"});
  auto& shared = pool.for_tenant(tenant_id{"t_live"});
  EXPECT_NE(&own, &shared);
  EXPECT_EQ(&shared, &pool.shared());
  EXPECT_EQ(&own, &pool.for_tenant(tenant_id{"t_test"}));
  auto own_charge
    = own.charge(charge_of("k_test", "pm_sandbox_async", 100, "t_test"));
  ASSERT_EQ(own_charge->status, charge_status::pending);
  // Own sandboxes' ids are unique in the process and lead back to them.
  EXPECT_TRUE(own_charge->charge_id.starts_with("ch_sbx_t1_"))
    << own_charge->charge_id;
  EXPECT_EQ(&pool.for_charge(own_charge->charge_id), &own);
  EXPECT_EQ(&pool.for_charge("ch_sbx_1"), &shared);
  EXPECT_EQ(&pool.for_charge("ch_sbx_t9_1"), &shared);
  ASSERT_EQ(shared
              .charge(charge_of("k_live", "pm_sandbox_async", 100, "t_live"))
              ->status,
            charge_status::pending);
  ASSERT_EQ(
    shared.charge(charge_of("k_sync", "pm_card_visa", 100, "t_live"))->status,
    charge_status::succeeded);

  // Real time passes: only the live tenant's charge settles.
  wall.set(start.plus_seconds(61));
  auto r = (*pump)->pump_once();
  EXPECT_EQ(r.events, 1U);
  auto got = hooks.valid();
  ASSERT_EQ(got.size(), 1U);
  EXPECT_EQ(got[0].event->idempotency_key, "k_live");
  EXPECT_EQ(got[0].target, "/hooks/t_live");
  EXPECT_TRUE(got[0].event_id.starts_with("evt_boot1_sbx_"));

  // The test clock passes the settle time: now the test tenant's settles.
  tenant_clock.set(start.plus_seconds(61));
  r = (*pump)->pump_once();
  EXPECT_EQ(r.events, 1U);
  got = hooks.valid();
  ASSERT_EQ(got.size(), 2U);
  EXPECT_EQ(got[1].event->idempotency_key, "k_test");
  EXPECT_EQ(got[1].event->charge_id, own_charge->charge_id);
  EXPECT_EQ(got[1].target, "/hooks/t_test");
  EXPECT_EQ((*pump)->totals().accepted, 2U);

  // A refund that names only the renamed id reaches the right sandbox.
  auto refunded = pool.for_charge(own_charge->charge_id)
                    .refund({"k_test_refund", own_charge->charge_id, usd(40)});
  ASSERT_TRUE(refunded.has_value()) << refunded.error().detail;
  EXPECT_EQ(refunded->amount, usd(40));
}

TEST(sandbox_pump, the_thread_delivers_without_being_asked) {
  test_clock wall{start};
  hook_endpoint hooks{wall};
  sandbox_pool_config pc;
  pc.wall = &wall;
  pc.sandbox.settle_delay_s = 0;
  sandbox_pool pool{pc};
  sandbox_pump_config c;
  c.webhooks.url = hooks.url();
  c.webhooks.secret = secret;
  c.interval = std::chrono::milliseconds{10};
  auto pump = sandbox_pump::create(pool, wall, c);
  ASSERT_TRUE(pump.has_value());
  (*pump)->start();
  ASSERT_TRUE(
    pool.shared().charge(charge_of("k", "pm_sandbox_async")).has_value());
  const auto deadline = std::chrono::steady_clock::now()
                        + std::chrono::seconds{5};
  while (hooks.valid().empty() && std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(std::chrono::milliseconds{5});
  (*pump)->stop();
  ASSERT_EQ(hooks.valid().size(), 1U);
  EXPECT_EQ(hooks.valid()[0].type, "payment_intent.succeeded");
}

} // namespace
} // namespace recur::api
