// Gateway webhooks in process: the route on the in-memory store with a
// recording dispatch (signatures, replays, routing), the sandbox's webhook
// sender against a local HTTP server (duplicates, reordering, delays,
// forgeries), the whole path sandbox → HTTP → route → orchestrator, and the
// Kafka wiring with the embedded mock cluster.

// GCC 12 reports a false maybe-uninitialized on variant temporaries of
// subscription_input built inline at -O2; nothing here is uninitialized.
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"

#include <atomic>
#include <chrono>
#include <mutex>
#include <set>
#include <thread>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "actors/orchestrator.hpp"
#include "api/app.hpp"
#include "api/events_wiring.hpp"
#include "api/http_server.hpp"
#include "api/routes_webhooks.hpp"
#include "gateways/kafka_mock_cluster.hpp"
#include "gateways/sandbox_gateway.hpp"
#include "gateways/sandbox_webhooks.hpp"
#include "gateways/stripe_events.hpp"
#include "gateways/webhook_signature.hpp"
#include "persistence/memory_store.hpp"

using namespace recur;
using namespace recur::api;
using nlohmann::json;

namespace {

constexpr const char* secret = "whsec_test_secret";
const tenant_id tenant{"t_1"};

struct always_ready final : readiness_probe {
  bool database_ok() override { return true; }
};

gateway_event charge_event(std::string id,
                           std::string type = "payment_intent.succeeded",
                           std::string key = "inv_1/attempt-1") {
  const bool failed = type == "payment_intent.payment_failed";
  return gateway_event{.id = std::move(id),
                       .type = std::move(type),
                       .tenant = tenant,
                       .idempotency_key = std::move(key),
                       .charge_id = "ch_sbx_1",
                       .amount = money{3000, currency::of("USD")},
                       .decline_code = failed ? "insufficient_funds" : "",
                       .created = utc(2024, 3, 1)};
}

// The route on an app with a dispatch that records commands and answers
// with `reply_failure` (none: ok).
class webhook_route_test : public ::testing::Test {
protected:
  void SetUp() override {
    ASSERT_TRUE(db_
                  .create_tenant(
                    tenant_record{tenant, "Acme", "hash1", false, clk_.now()})
                  .has_value());
    ASSERT_TRUE(
      db_
        .put_gateway_config(
          tenant, gateway_config_record{"sandbox",
                                        json{{"webhook_secret", secret}}.dump(),
                                        clk_.now()})
        .has_value());
    unit_of_work w;
    w.tenant = tenant;
    invoice_record inv;
    inv.id = invoice_id{"inv_1"};
    inv.subscription = subscription_id{"sub_1"};
    inv.idempotency_key = "t_1/sub_1/0";
    inv.status = "open";
    inv.currency = "USD";
    inv.total_minor = inv.amount_due_minor = 3000;
    inv.lines_json = "[]";
    inv.version = 1;
    w.new_invoices.push_back(inv);
    saga_record saga;
    saga.id = saga_id{"sub_2/cancellation/1"};
    saga.type = "cancellation";
    saga.subscription = subscription_id{"sub_2"};
    saga.version = 1;
    saga.data_json = "{}";
    w.new_sagas.push_back(saga);
    ASSERT_TRUE(db_.commit(w).has_value());

    app_config c;
    c.db = &db_;
    c.clk = &clk_;
    c.readiness = &probe_;
    c.extra_routes.push_back([this](router& r, services& s) {
      webhook_options o;
      o.metrics = &s.metrics;
      o.reply_timeout = std::chrono::milliseconds{500};
      add_webhook_routes(
        r, s.db, s.clk,
        [this](subscription_command cmd,
               std::function<void(command_reply)> done) {
          std::lock_guard lock{mutex_};
          commands_.push_back(cmd);
          if (silent_)
            return; // never answers
          command_reply reply;
          reply.failure = reply_failure_;
          if (!reply.failure)
            reply.failure = commit_inbox_like_the_engine(cmd);
          done(std::move(reply));
        },
        o);
    });
    app_ = std::make_unique<app>(std::move(c));
  }

  // What the engine does with a notice it applies: the inbox entry
  // commits in its unit of work (here alone).
  std::optional<error>
  commit_inbox_like_the_engine(const subscription_command& c) {
    const auto* n = std::get_if<sub_in::gateway_notice>(&c.input);
    if (n == nullptr || n->gateway.empty())
      return std::nullopt;
    unit_of_work w;
    w.tenant = c.tenant;
    w.inbox.push_back(inbox_entry{n->gateway, n->event.id, clk_.now()});
    auto done = db_.commit(w);
    return done ? std::nullopt : std::optional<error>{done.error()};
  }

  http_response post(const std::string& body, const std::string& signature,
                     const std::string& path = "/v1/webhooks/sandbox/t_1") {
    header_list h{{"Content-Type", "application/json; charset=utf-8"}};
    if (!signature.empty())
      h.emplace_back("Stripe-Signature", signature);
    return app_->handle(http_request{"POST", path, h, body});
  }

  http_response deliver(const gateway_event& e) {
    const auto body = stripe_event_json(e);
    return post(body, sign_stripe_payload(secret, clk_.now(), body));
  }

  std::size_t dispatched() {
    std::lock_guard lock{mutex_};
    return commands_.size();
  }
  subscription_command command(std::size_t i) {
    std::lock_guard lock{mutex_};
    return commands_.at(i);
  }
  bool in_inbox(const std::string& id) {
    auto r = db_.inbox_contains(tenant, "sandbox", id);
    EXPECT_TRUE(r.has_value());
    return r.has_value() && *r;
  }
  static json body_of(const http_response& r) { return json::parse(r.body); }
  static std::string type_of(const http_response& r) {
    return body_of(r).value("type", "");
  }

  memory_store db_;
  manual_clock clk_{utc(2024, 3, 1, 12)};
  always_ready probe_;
  std::unique_ptr<app> app_;
  std::mutex mutex_;
  std::vector<subscription_command> commands_;
  std::optional<error> reply_failure_;
  bool silent_ = false;
};

} // namespace

// -- the route ----------------------------------------------------------------

TEST_F(webhook_route_test,
       a_validly_signed_payment_event_is_dispatched_once_to_its_subscription) {
  auto res = deliver(charge_event("evt_1"));
  ASSERT_EQ(res.status, 200U) << res.body;
  EXPECT_EQ(body_of(res), json({{"received", true}}));
  ASSERT_EQ(dispatched(), 1U);
  const auto cmd = command(0);
  EXPECT_EQ(cmd.tenant, tenant);
  EXPECT_EQ(cmd.subscription, subscription_id{"sub_1"});
  const auto* notice = std::get_if<sub_in::gateway_notice>(&cmd.input);
  ASSERT_NE(notice, nullptr);
  EXPECT_EQ(notice->event, charge_event("evt_1"));
  EXPECT_EQ(notice->gateway, "sandbox");
  ASSERT_TRUE(notice->invoice.has_value());
  EXPECT_EQ(*notice->invoice, invoice_id{"inv_1"});
  EXPECT_TRUE(in_inbox("evt_1"));
}

TEST_F(webhook_route_test,
       a_tampered_body_is_refused_and_nothing_is_dispatched_or_stored) {
  const auto body = stripe_event_json(charge_event("evt_1"));
  const auto sig = sign_stripe_payload(secret, clk_.now(), body);
  auto tampered = body;
  tampered.replace(tampered.find("3000"), 4, "3001");
  auto res = post(tampered, sig);
  EXPECT_EQ(res.status, 400U);
  EXPECT_EQ(res.content_type, "application/problem+json");
  EXPECT_EQ(type_of(res), "invalid_signature");
  EXPECT_EQ(body_of(res).value("detail", ""), "signature mismatch");
  EXPECT_EQ(dispatched(), 0U);
  EXPECT_FALSE(in_inbox("evt_1"));
}

TEST_F(webhook_route_test, a_signature_made_with_another_secret_is_refused) {
  const auto body = stripe_event_json(charge_event("evt_1"));
  auto res = post(body, sign_stripe_payload("whsec_other", clk_.now(), body));
  EXPECT_EQ(res.status, 400U);
  EXPECT_EQ(type_of(res), "invalid_signature");
  EXPECT_EQ(dispatched(), 0U);
  EXPECT_FALSE(in_inbox("evt_1"));
}

TEST_F(webhook_route_test,
       stale_and_future_timestamps_beyond_300_s_are_refused_and_300_s_is_not) {
  const auto body = stripe_event_json(charge_event("evt_1"));
  for (std::int64_t off : {-301, 301}) {
    auto res = post(
      body, sign_stripe_payload(secret, clk_.now().plus_seconds(off), body));
    EXPECT_EQ(res.status, 400U) << off;
    EXPECT_EQ(body_of(res).value("detail", ""), "timestamp outside tolerance");
  }
  EXPECT_EQ(dispatched(), 0U);
  EXPECT_FALSE(in_inbox("evt_1"));
  auto edge = post(
    body, sign_stripe_payload(secret, clk_.now().plus_seconds(-300), body));
  EXPECT_EQ(edge.status, 200U) << edge.body;
  EXPECT_EQ(dispatched(), 1U);
}

TEST_F(webhook_route_test, an_unsigned_delivery_is_refused) {
  auto res = post(stripe_event_json(charge_event("evt_1")), "");
  EXPECT_EQ(res.status, 400U);
  EXPECT_EQ(body_of(res).value("detail", ""), "missing header");
  EXPECT_EQ(dispatched(), 0U);
}

TEST_F(webhook_route_test,
       several_v1_signatures_are_accepted_when_any_one_of_them_matches) {
  const auto body = stripe_event_json(charge_event("evt_1"));
  const auto t = clk_.now();
  const auto header = "t=" + std::to_string(t.unix_s)
                      + ",v1=" + stripe_v1_signature("whsec_old", t, body)
                      + ",v0=abc,v1=" + stripe_v1_signature(secret, t, body);
  auto res = post(body, header);
  EXPECT_EQ(res.status, 200U) << res.body;
  EXPECT_EQ(dispatched(), 1U);
}

TEST_F(webhook_route_test,
       a_replayed_event_id_answers_200_and_is_dispatched_only_once) {
  ASSERT_EQ(deliver(charge_event("evt_1")).status, 200U);
  clk_.advance_seconds(120); // a later delivery, freshly signed
  auto replay = deliver(charge_event("evt_1"));
  EXPECT_EQ(replay.status, 200U);
  EXPECT_EQ(body_of(replay), json({{"received", true}, {"duplicate", true}}));
  EXPECT_EQ(dispatched(), 1U);
}

TEST_F(
  webhook_route_test,
  an_event_type_recur_does_not_use_answers_200_ignored_and_is_not_dispatched) {
  auto res = deliver(charge_event("evt_1", "customer.created"));
  EXPECT_EQ(res.status, 200U);
  EXPECT_EQ(body_of(res).value("ignored", false), true);
  auto foreign = charge_event("evt_2");
  foreign.idempotency_key.clear(); // a payment Recur did not make
  auto res2 = deliver(foreign);
  EXPECT_EQ(res2.status, 200U);
  EXPECT_EQ(body_of(res2).value("ignored", false), true);
  EXPECT_EQ(dispatched(), 0U);
}

TEST_F(webhook_route_test,
       an_unknown_tenant_gateway_or_missing_config_is_404_and_no_secret_400) {
  const auto body = stripe_event_json(charge_event("evt_1"));
  const auto sig = sign_stripe_payload(secret, clk_.now(), body);
  EXPECT_EQ(post(body, sig, "/v1/webhooks/sandbox/t_nobody").status, 404U);
  EXPECT_EQ(post(body, sig, "/v1/webhooks/paypal/t_1").status, 404U);
  EXPECT_EQ(post(body, sig, "/v1/webhooks/stripe/t_1").status, 404U);
  EXPECT_EQ(post(body, sig, "/v1/webhooks/sandbox/bad%20id").status, 404U);
  ASSERT_TRUE(db_
                .put_gateway_config(
                  tenant, gateway_config_record{"stripe", R"({"api_key":"sk"})",
                                                clk_.now()})
                .has_value());
  auto no_secret = post(body, sig, "/v1/webhooks/stripe/t_1");
  EXPECT_EQ(no_secret.status, 400U);
  EXPECT_EQ(type_of(no_secret), "invalid_signature");
  EXPECT_EQ(dispatched(), 0U);
}

TEST_F(webhook_route_test,
       an_event_whose_metadata_names_another_tenant_is_refused) {
  auto e = charge_event("evt_1");
  e.tenant = tenant_id{"t_2"};
  auto res = deliver(e);
  EXPECT_EQ(res.status, 400U);
  EXPECT_EQ(type_of(res), "invalid_event");
  EXPECT_EQ(dispatched(), 0U);
  EXPECT_FALSE(in_inbox("evt_1"));
}

TEST_F(webhook_route_test, a_signed_body_that_is_not_an_event_is_400) {
  const std::string body
    = R"({"id":"evt_1","type":"payment_intent.succeeded"})";
  auto res = post(body, sign_stripe_payload(secret, clk_.now(), body));
  EXPECT_EQ(res.status, 400U);
  EXPECT_EQ(type_of(res), "invalid_event");
  EXPECT_EQ(dispatched(), 0U);
}

TEST_F(webhook_route_test,
       refunds_are_routed_by_their_saga_and_disputes_by_their_key) {
  auto refund = charge_event("evt_r", "charge.refunded",
                             "sub_2/cancellation/1/1/refund_credit/c");
  ASSERT_EQ(deliver(refund).status, 200U);
  auto dispute = charge_event("evt_d", "charge.dispute.created");
  ASSERT_EQ(deliver(dispute).status, 200U);
  ASSERT_EQ(dispatched(), 2U);
  EXPECT_EQ(command(0).subscription, subscription_id{"sub_2"});
  EXPECT_EQ(command(1).subscription, subscription_id{"sub_1"});
  const auto second = command(1);
  const auto* n = std::get_if<sub_in::gateway_notice>(&second.input);
  ASSERT_NE(n, nullptr);
  EXPECT_EQ(n->event.type, "charge.dispute.created");
}

TEST_F(webhook_route_test,
       an_event_naming_nothing_of_this_tenant_is_acknowledged_but_not_applied) {
  auto lost = charge_event("evt_1", "payment_intent.succeeded",
                           "inv_unknown/attempt-1");
  auto res = deliver(lost);
  EXPECT_EQ(res.status, 200U);
  EXPECT_EQ(body_of(res).value("ignored", false), true);
  auto keyless = charge_event("evt_2", "charge.dispute.created", "");
  EXPECT_EQ(deliver(keyless).status, 200U);
  EXPECT_EQ(dispatched(), 0U);
  EXPECT_FALSE(in_inbox("evt_1")); // a redelivery may still be applied
}

TEST_F(webhook_route_test,
       an_old_event_is_still_dispatched_the_engine_applies_it_by_meaning) {
  auto old = charge_event("evt_1");
  old.created = utc(2020, 1, 1);
  EXPECT_EQ(deliver(old).status, 200U);
  EXPECT_EQ(dispatched(), 1U);
}

TEST_F(
  webhook_route_test,
  an_engine_that_cannot_apply_now_gets_503_and_the_redelivery_goes_through) {
  reply_failure_ = make_error(errc::unavailable, "store down");
  auto first = deliver(charge_event("evt_1"));
  EXPECT_EQ(first.status, 503U);
  EXPECT_EQ(type_of(first), "unavailable");
  EXPECT_FALSE(in_inbox("evt_1"));
  reply_failure_.reset();
  EXPECT_EQ(deliver(charge_event("evt_1")).status, 200U);
  EXPECT_EQ(dispatched(), 2U);
  EXPECT_TRUE(in_inbox("evt_1"));
}

TEST_F(webhook_route_test, a_subscription_that_never_answers_gets_503_in_time) {
  silent_ = true;
  const auto start = std::chrono::steady_clock::now();
  auto res = deliver(charge_event("evt_1"));
  EXPECT_EQ(res.status, 503U);
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds{5});
  EXPECT_FALSE(in_inbox("evt_1"));
}

TEST_F(webhook_route_test,
       a_refusal_by_the_engine_is_final_200_and_the_route_writes_no_inbox) {
  reply_failure_ = make_error(errc::invalid_transition,
                              "subscription canceled");
  EXPECT_EQ(deliver(charge_event("evt_1")).status, 200U);
  // The inbox entry is the engine's to commit, with the effects.
  EXPECT_FALSE(in_inbox("evt_1"));
}

TEST_F(webhook_route_test,
       a_commit_the_inbox_refuses_is_answered_as_a_duplicate) {
  // A concurrent delivery of evt_1 committed between this one's inbox
  // check and its commit.
  reply_failure_ = make_error(errc::already_exists, "inbox entry");
  auto res = deliver(charge_event("evt_1"));
  EXPECT_EQ(res.status, 200U);
  EXPECT_EQ(body_of(res), json({{"received", true}, {"duplicate", true}}));
}

TEST_F(webhook_route_test,
       a_dispute_without_a_key_is_routed_by_its_charge_id_to_the_invoice) {
  unit_of_work w;
  w.tenant = tenant;
  payment_attempt_record a;
  a.id = payment_attempt_id{"inv_1/pa-1"};
  a.invoice = invoice_id{"inv_1"};
  a.idempotency_key = "inv_1/attempt-1";
  a.status = "pending";
  a.amount_minor = 3000;
  a.currency = "USD";
  a.version = 1;
  w.new_attempts.push_back(a);
  w.attempt_updates.push_back(payment_attempt_update{
    a.id, 1, "succeeded", "", clk_.now(), "ch_sbx_1"});
  ASSERT_TRUE(db_.commit(w).has_value());
  auto dispute = charge_event("evt_d", "charge.dispute.created", "");
  ASSERT_EQ(deliver(dispute).status, 200U);
  ASSERT_EQ(dispatched(), 1U);
  const auto cmd = command(0);
  EXPECT_EQ(cmd.subscription, subscription_id{"sub_1"});
  const auto* n = std::get_if<sub_in::gateway_notice>(&cmd.input);
  ASSERT_NE(n, nullptr);
  ASSERT_TRUE(n->invoice.has_value());
  EXPECT_EQ(*n->invoice, invoice_id{"inv_1"});
  EXPECT_EQ(n->ref_id, "dp_evt_d");
  // A dashboard refund of that charge (no metadata of ours) too.
  json refund = json::parse(stripe_event_json(
    charge_event("evt_r", "charge.refunded", "")));
  auto& obj = refund["data"]["object"];
  obj["refunds"]["data"][0]["metadata"] = json::object();
  obj["metadata"] = json::object();
  const auto body = refund.dump();
  auto res = post(body, sign_stripe_payload(secret, clk_.now(), body));
  ASSERT_EQ(res.status, 200U) << res.body;
  ASSERT_EQ(dispatched(), 2U);
  const auto second = command(1);
  const auto* r = std::get_if<sub_in::gateway_notice>(&second.input);
  ASSERT_NE(r, nullptr);
  EXPECT_EQ(r->event.type, "charge.refunded");
  EXPECT_TRUE(r->event.idempotency_key.empty());
  EXPECT_EQ(r->ref_id, "re_evt_r");
  EXPECT_TRUE(in_inbox("evt_r"));
}

TEST_F(webhook_route_test,
       outcomes_are_counted_in_metrics_and_openapi_lists_the_route) {
  deliver(charge_event("evt_1"));
  deliver(charge_event("evt_1"));
  post("{}", "t=1,v1=00");
  auto m = app_->handle(http_request{"GET", "/metrics", {}, {}});
  EXPECT_NE(m.body.find(
              R"(recur_webhooks_total{gateway="sandbox",outcome="applied"} 1)"),
            std::string::npos)
    << m.body;
  EXPECT_NE(
    m.body.find(
      R"(recur_webhooks_total{gateway="sandbox",outcome="duplicate"} 1)"),
    std::string::npos);
  EXPECT_NE(m.body.find(R"(outcome="invalid_signature"} 1)"),
            std::string::npos);
  auto doc = json::parse(
    app_->handle(http_request{"GET", "/openapi.json", {}, {}}).body);
  EXPECT_TRUE(doc["paths"].contains("/v1/webhooks/{gateway}/{tenant_id}"));
}

// -- the sandbox's webhook sender ---------------------------------------------

namespace {

// A local HTTP server that records what it receives and verifies each
// signature against `secret`.
struct recording_endpoint {
  struct hit {
    std::string event_id;
    std::string body;
    bool signature_ok = false;
    std::string target;
  };
  manual_clock* clk;
  std::mutex mutex;
  std::vector<hit> hits;
  http_server server;

  explicit recording_endpoint(manual_clock& c)
    : clk(&c),
      server(config(), [this](const http_request& r) { return on(r); }) {
    EXPECT_TRUE(server.start().has_value());
  }
  ~recording_endpoint() { server.stop(); }

  static http_server_config config() {
    http_server_config c;
    c.port = 0;
    c.threads = 1;
    return c;
  }
  http_response on(const http_request& r) {
    const bool ok = !check_stripe_signature(r.header("Stripe-Signature"),
                                            r.body, secret, clk->now())
                       .has_value();
    const auto doc = json::parse(r.body, nullptr, false);
    std::lock_guard lock{mutex};
    hits.push_back(
      {doc.is_object() ? doc.value("id", "") : "", r.body, ok, r.target});
    return http_response{ok ? 200U : 400U, "application/json", "{}", {}};
  }
  std::string url() const {
    return "http://127.0.0.1:" + std::to_string(server.port())
           + "/v1/webhooks/sandbox/t_1";
  }
  std::vector<hit> received() {
    std::lock_guard lock{mutex};
    return hits;
  }
};

std::vector<gateway_event> events(int n) {
  std::vector<gateway_event> out;
  for (int i = 1; i <= n; ++i)
    out.push_back(charge_event("evt_" + std::to_string(i)));
  return out;
}

std::unique_ptr<sandbox_webhook_sender>
sender(const std::string& url, const recur::clock& clk,
       void (*tune)(sandbox_webhook_config&) = nullptr) {
  sandbox_webhook_config c;
  c.url = url;
  c.secret = secret;
  c.seed = 42;
  if (tune != nullptr)
    tune(c);
  auto s = sandbox_webhook_sender::create(c, clk);
  EXPECT_TRUE(s.has_value()) << s.error().detail;
  return std::move(*s);
}

std::vector<std::string> ids(const std::vector<recording_endpoint::hit>& hits) {
  std::vector<std::string> out;
  for (const auto& h : hits)
    out.push_back(h.event_id);
  return out;
}

} // namespace

TEST(sandbox_webhooks, event_json_reads_back_as_the_same_gateway_event) {
  for (const char* type :
       {"payment_intent.succeeded", "payment_intent.payment_failed",
        "charge.refunded", "charge.dispute.created"}) {
    const auto e = charge_event("evt_1", type);
    auto parsed = parse_stripe_event(stripe_event_json(e, "re_sbx_1"));
    ASSERT_TRUE(parsed.has_value()) << type << ": " << parsed.error().detail;
    const auto* ev = std::get_if<stripe_event>(&*parsed);
    ASSERT_NE(ev, nullptr) << type;
    EXPECT_EQ(ev->event, e) << type;
  }
  auto other
    = parse_stripe_event(stripe_event_json(charge_event("evt_2", "x.y")));
  ASSERT_TRUE(other.has_value());
  EXPECT_TRUE(std::holds_alternative<ignored_stripe_event>(*other));
}

TEST(sandbox_webhooks, bad_configs_are_refused_naming_the_field) {
  manual_clock clk{utc(2024, 3, 1)};
  sandbox_webhook_config c;
  c.url = "https://example.com/x";
  c.secret = secret;
  EXPECT_EQ(sandbox_webhook_sender::create(c, clk).error().code,
            errc::invalid_argument);
  c.url = "http://127.0.0.1:8080/x";
  c.forge_ppm = 1'000'001;
  auto bad = sandbox_webhook_sender::create(c, clk);
  ASSERT_FALSE(bad.has_value());
  EXPECT_NE(bad.error().detail.find("forge_ppm"), std::string::npos);
}

TEST(sandbox_webhooks,
     without_faults_every_event_arrives_once_in_order_and_signed) {
  manual_clock clk{utc(2024, 3, 1)};
  recording_endpoint ep{clk};
  auto s = sender(ep.url(), clk);
  ASSERT_TRUE(s->enqueue(events(5), clk.now()).has_value());
  auto out = s->deliver_due(clk.now());
  ASSERT_EQ(out.size(), 5U);
  for (const auto& o : out)
    EXPECT_EQ(o.http_status, 200U);
  const auto hits = ep.received();
  EXPECT_EQ(ids(hits), (std::vector<std::string>{"evt_1", "evt_2", "evt_3",
                                                 "evt_4", "evt_5"}));
  for (const auto& h : hits)
    EXPECT_TRUE(h.signature_ok);
  EXPECT_EQ(s->queued(), 0U);
}

TEST(sandbox_webhooks, duplicates_send_every_event_again_after_its_batch) {
  manual_clock clk{utc(2024, 3, 1)};
  recording_endpoint ep{clk};
  auto s = sender(ep.url(), clk,
                  [](sandbox_webhook_config& c) { c.duplicate_ppm = ppm_max; });
  ASSERT_TRUE(s->enqueue(events(3), clk.now()).has_value());
  auto out = s->deliver_due(clk.now());
  EXPECT_EQ(ids(ep.received()),
            (std::vector<std::string>{"evt_1", "evt_2", "evt_3", "evt_1",
                                      "evt_2", "evt_3"}));
  ASSERT_EQ(out.size(), 6U);
  EXPECT_FALSE(out[0].delivery.duplicate);
  EXPECT_TRUE(out[3].delivery.duplicate);
  EXPECT_EQ(out[3].delivery.body, out[0].delivery.body);
}

TEST(sandbox_webhooks, reordering_swaps_neighbours) {
  manual_clock clk{utc(2024, 3, 1)};
  recording_endpoint ep{clk};
  auto s = sender(ep.url(), clk,
                  [](sandbox_webhook_config& c) { c.reorder_ppm = ppm_max; });
  ASSERT_TRUE(s->enqueue(events(5), clk.now()).has_value());
  s->deliver_due(clk.now());
  EXPECT_EQ(
    ids(ep.received()),
    (std::vector<std::string>{"evt_2", "evt_1", "evt_4", "evt_3", "evt_5"}));
}

TEST(sandbox_webhooks,
     forgeries_precede_the_real_delivery_and_all_fail_verification) {
  manual_clock clk{utc(2024, 3, 1)};
  recording_endpoint ep{clk};
  auto s = sender(ep.url(), clk,
                  [](sandbox_webhook_config& c) { c.forge_ppm = ppm_max; });
  ASSERT_TRUE(s->enqueue(events(40), clk.now()).has_value());
  auto out = s->deliver_due(clk.now());
  ASSERT_EQ(out.size(), 80U);
  std::set<forgery_kind> kinds;
  for (std::size_t i = 0; i < out.size(); i += 2) {
    ASSERT_TRUE(out[i].delivery.forged.has_value());
    kinds.insert(*out[i].delivery.forged);
    EXPECT_EQ(out[i].http_status, 400U)
      << recur::to_string(*out[i].delivery.forged);
    EXPECT_FALSE(out[i + 1].delivery.forged.has_value());
    EXPECT_EQ(out[i + 1].http_status, 200U);
    EXPECT_EQ(out[i].delivery.event_id, out[i + 1].delivery.event_id);
  }
  EXPECT_EQ(kinds.size(), 4U); // every kind of forgery showed up
}

TEST(sandbox_webhooks, delayed_deliveries_wait_until_they_are_due) {
  manual_clock clk{utc(2024, 3, 1)};
  recording_endpoint ep{clk};
  auto s = sender(ep.url(), clk, [](sandbox_webhook_config& c) {
    c.delay_s = 60;
    c.delay_jitter_s = 30;
  });
  ASSERT_TRUE(s->enqueue(events(10), clk.now()).has_value());
  EXPECT_TRUE(s->deliver_due(clk.now().plus_seconds(59)).empty());
  EXPECT_EQ(s->queued(), 10U);
  EXPECT_EQ(s->deliver_due(clk.now().plus_seconds(90)).size(), 10U);
  EXPECT_EQ(ep.received().size(), 10U);
}

TEST(sandbox_webhooks, the_same_seed_plans_the_same_deliveries) {
  manual_clock clk{utc(2024, 3, 1)};
  recording_endpoint ep{clk};
  auto tune = [](sandbox_webhook_config& c) {
    c.duplicate_ppm = 300'000;
    c.reorder_ppm = 300'000;
    c.forge_ppm = 300'000;
  };
  auto plan = [&] {
    auto s = sender(ep.url(), clk, tune);
    EXPECT_TRUE(s->enqueue(events(30), clk.now()).has_value());
    std::vector<std::string> seen;
    for (const auto& o : s->deliver_due(clk.now()))
      seen.push_back(
        o.delivery.event_id
        + (o.delivery.forged
             ? "/" + std::string{recur::to_string(*o.delivery.forged)}
             : std::string{})
        + (o.delivery.duplicate ? "/dup" : ""));
    return seen;
  };
  const auto a = plan();
  const auto b = plan();
  EXPECT_EQ(a, b);
  EXPECT_GT(a.size(), 30U); // some faults happened
}

TEST(
  sandbox_webhooks,
  one_sender_serves_every_tenant_by_url_template_and_skips_tenants_without_a_secret) {
  manual_clock clk{utc(2024, 3, 1)};
  recording_endpoint ep{clk};
  sandbox_webhook_config c;
  c.url = "http://127.0.0.1:" + std::to_string(ep.server.port())
          + "/v1/webhooks/sandbox/{tenant}";
  c.secret_for = [](const tenant_id& t) -> std::optional<std::string> {
    if (t == tenant)
      return std::string{secret};
    return std::nullopt;
  };
  auto s = sandbox_webhook_sender::create(c, clk);
  ASSERT_TRUE(s.has_value()) << s.error().detail;
  auto other = charge_event("evt_2");
  other.tenant = tenant_id{"t_2"};
  const std::vector<gateway_event> batch{charge_event("evt_1"), other};
  ASSERT_TRUE((*s)->enqueue(batch, clk.now()).has_value());
  auto out = (*s)->deliver_due(clk.now());
  ASSERT_EQ(out.size(), 1U);
  EXPECT_EQ(out[0].delivery.tenant, tenant);
  const auto hits = ep.received();
  ASSERT_EQ(hits.size(), 1U);
  EXPECT_EQ(hits[0].event_id, "evt_1");
  EXPECT_EQ(hits[0].target, "/v1/webhooks/sandbox/t_1");
  EXPECT_TRUE(hits[0].signature_ok);
}

TEST(sandbox_webhooks, a_closed_endpoint_is_reported_not_thrown) {
  manual_clock clk{utc(2024, 3, 1)};
  std::string url;
  {
    recording_endpoint ep{clk};
    url = ep.url();
  }
  auto s = sender(url, clk);
  ASSERT_TRUE(s->enqueue(events(1), clk.now()).has_value());
  auto out = s->deliver_due(clk.now());
  ASSERT_EQ(out.size(), 1U);
  EXPECT_EQ(out[0].http_status, 0U);
  ASSERT_TRUE(out[0].failure.has_value());
  EXPECT_EQ(out[0].failure->code, errc::unavailable);
}

// -- the whole path: sandbox → HTTP → route → orchestrator -------------------

namespace {

/// The whole path: an orchestrator on the in-memory store with the sandbox,
/// the webhook route on an app behind a real HTTP server, and sub_1 created
/// with an async card (incomplete until its payment settles).
struct webhook_world {
  memory_store db;
  manual_clock clk{utc(2026, 4, 1)};
  sandbox_gateway gw{clk, 7};
  memory_plan_catalog plans;
  billing_env env;
  always_ready probe;
  std::unique_ptr<orchestrator> orch;
  std::unique_ptr<app> a;
  std::unique_ptr<http_server> server;

  void start() {
    ASSERT_TRUE(plans
                  .add(plan_id{"basic"},
                       plan_version{1,
                                    instant{0},
                                    currency::of("USD"),
                                    billing_interval{interval_unit::month, 1},
                                    0,
                                    pricing::flat(3000),
                                    {}})
                  .has_value());
    env.plans = &plans;
    ASSERT_TRUE(
      db.create_tenant(tenant_record{tenant, "Acme", "h", false, clk.now()})
        .has_value());
    ASSERT_TRUE(db.put_gateway_config(
                    tenant,
                    gateway_config_record{
                      "sandbox", json{{"webhook_secret", secret}}.dump(),
                      clk.now()})
                  .has_value());
    orchestrator_config oc;
    oc.db = &db;
    oc.clk = &clk;
    oc.gateway = &gw;
    oc.env_for = [this](const tenant_id& t) -> const billing_env* {
      return t == tenant ? &env : nullptr;
    };
    oc.threads = 2;
    oc.idle_passivation_ms = 0;
    oc.run_timer_service = false;
    auto started = orchestrator::start(oc);
    ASSERT_TRUE(started.has_value()) << started.error().detail;
    orch = std::move(*started);

    app_config ac;
    ac.db = &db;
    ac.clk = &clk;
    ac.readiness = &probe;
    orchestrator* o = orch.get();
    ac.extra_routes.push_back([o](router& r, services& s) {
      add_webhook_routes(r, s.db, s.clk, [o](subscription_command c, auto done) {
        o->submit(std::move(c), std::move(done));
      });
    });
    a = std::make_unique<app>(std::move(ac));
    http_server_config hc;
    hc.port = 0;
    server = std::make_unique<http_server>(hc, a->handler());
    ASSERT_TRUE(server->start().has_value());

    auto created = o->call({tenant, subscription_id{"sub_1"},
                            sub_in::create{customer_id{"c"}, plan_id{"basic"},
                                           1, "pm_sandbox_async", 0}})
                     .get();
    ASSERT_TRUE(created.ok()) << created.failure->detail;
    ASSERT_TRUE(o->settle().has_value());
    ASSERT_EQ(status(), "incomplete");
  }

  ~webhook_world() {
    if (server)
      server->stop();
  }

  sandbox_webhook_config sender_config() const {
    sandbox_webhook_config wc;
    wc.url = "http://127.0.0.1:" + std::to_string(server->port())
             + "/v1/webhooks/sandbox/t_1";
    wc.secret = secret;
    return wc;
  }

  std::string status() {
    auto s = db.get_subscription(tenant, subscription_id{"sub_1"});
    EXPECT_TRUE(s.has_value());
    return s.has_value() ? s->status : "";
  }

  std::vector<std::string> invoice_statuses() {
    std::vector<std::string> out;
    auto page = db.list_invoices(tenant, subscription_id{"sub_1"}, "", 10);
    EXPECT_TRUE(page.has_value());
    if (page.has_value())
      for (const auto& i : page->items)
        out.push_back(i.status);
    return out;
  }
};

} // namespace

TEST(
  webhooks_end_to_end,
  an_async_payment_settled_by_a_signed_webhook_activates_the_subscription_once) {
  webhook_world w;
  ASSERT_NO_FATAL_FAILURE(w.start());
  auto wc = w.sender_config();
  wc.duplicate_ppm = ppm_max; // every event twice
  wc.forge_ppm = ppm_max;     // and a forgery before each
  auto s = sandbox_webhook_sender::create(wc, w.clk);
  ASSERT_TRUE(s.has_value());
  EXPECT_TRUE((*s)->pump(w.gw, w.clk.now()).empty()); // not settled yet
  w.clk.advance_seconds(60);                          // settle_delay_s
  auto out = (*s)->pump(w.gw, w.clk.now());
  ASSERT_EQ(out.size(), 3U); // forgery, real, duplicate
  EXPECT_EQ(out[0].http_status, 400U);
  EXPECT_EQ(out[1].http_status, 200U) << out[1].response_body;
  EXPECT_EQ(json::parse(out[1].response_body), json({{"received", true}}));
  EXPECT_EQ(out[2].http_status, 200U);
  EXPECT_EQ(json::parse(out[2].response_body).value("duplicate", false), true);
  ASSERT_TRUE(w.orch->settle().has_value());

  EXPECT_EQ(w.status(), "active");
  EXPECT_EQ(w.invoice_statuses(), std::vector<std::string>{"paid"});
  EXPECT_EQ(w.gw.total_collected(currency::of("USD")).amount_minor(), 3000);
}

TEST(webhooks_end_to_end,
     a_failure_event_delivered_after_the_success_it_preceded_changes_nothing) {
  webhook_world w;
  ASSERT_NO_FATAL_FAILURE(w.start());
  const auto charges = w.gw.charges();
  ASSERT_EQ(charges.size(), 1U);
  const auto& charge = charges[0];
  auto s = sandbox_webhook_sender::create(w.sender_config(), w.clk);
  ASSERT_TRUE(s.has_value());
  w.clk.advance_seconds(60); // the sandbox settles: payment_intent.succeeded
  auto out = (*s)->pump(w.gw, w.clk.now());
  ASSERT_EQ(out.size(), 1U);
  ASSERT_EQ(out[0].http_status, 200U) << out[0].response_body;
  ASSERT_TRUE(w.orch->settle().has_value());
  ASSERT_EQ(w.status(), "active");
  const auto before = w.db.get_subscription(tenant, subscription_id{"sub_1"});
  ASSERT_TRUE(before.has_value());

  // The gateway's earlier word on the same payment arrives last: a decline
  // created before the success. Acknowledged (so it is not redelivered),
  // and applied by meaning: the invoice stays paid, nothing is retried.
  gateway_event late{.id = "evt_late_failure",
                     .type = "payment_intent.payment_failed",
                     .tenant = tenant,
                     .idempotency_key = charge.idempotency_key,
                     .charge_id = charge.charge_id,
                     .amount = charge.amount,
                     .decline_code = "insufficient_funds",
                     .created = charge.created};
  const auto body = stripe_event_json(late);
  auto res = w.a->handle(http_request{
    "POST",
    "/v1/webhooks/sandbox/t_1",
    {{"Content-Type", "application/json"},
     {"Stripe-Signature", sign_stripe_payload(secret, w.clk.now(), body)}},
    body});
  EXPECT_EQ(res.status, 200U) << res.body;
  ASSERT_TRUE(w.orch->settle().has_value());

  EXPECT_EQ(w.status(), "active");
  EXPECT_EQ(w.invoice_statuses(), std::vector<std::string>{"paid"});
  auto after = w.db.get_subscription(tenant, subscription_id{"sub_1"});
  ASSERT_TRUE(after.has_value());
  EXPECT_EQ(after->version, before->version); // no event, no state change
  EXPECT_EQ(w.gw.charges().size(), 1U); // no retry charged
  EXPECT_EQ(w.gw.total_collected(currency::of("USD")).amount_minor(), 3000);
  auto seen = w.db.inbox_contains(tenant, "sandbox", "evt_late_failure");
  ASSERT_TRUE(seen.has_value());
  EXPECT_TRUE(*seen); // a redelivery is a duplicate
}

// -- Kafka wiring
// --------------------------------------------------------------

TEST(event_pipeline, embedded_publishes_a_committed_outbox_row_and_marks_it) {
  memory_store db;
  manual_clock clk{utc(2024, 3, 1)};
  event_pipeline_options opts;
  opts.relay.poll_interval = std::chrono::milliseconds{20};
  auto p = start_event_pipeline("embedded", db, clk, opts);
  ASSERT_TRUE(p.has_value()) << p.error().detail;
  EXPECT_TRUE((*p)->enabled());
  EXPECT_FALSE((*p)->bootstrap_servers().empty());
  EXPECT_TRUE((*p)->probe().has_value());
  metrics_registry metrics;
  (*p)->add_metrics(metrics);

  unit_of_work w;
  w.tenant = tenant;
  w.outbox.push_back(outbox_message{"t_1/sub_1/1/0", "sub_1",
                                    "subscription.activated", "sub_1",
                                    R"({"status":"active"})", clk.now()});
  ASSERT_TRUE(db.commit(w).has_value());
  (*p)->wake();
  auto records = kafka_read_topic((*p)->bootstrap_servers(), "recur.events", 1,
                                  std::chrono::seconds{10});
  ASSERT_TRUE(records.has_value()) << records.error().detail;
  ASSERT_EQ(records->size(), 1U);
  EXPECT_EQ((*records)[0].key, "sub_1");
  const auto env = json::parse((*records)[0].value);
  EXPECT_EQ(env["id"], "t_1/sub_1/1/0");
  EXPECT_EQ(env["type"], "subscription.activated");
  EXPECT_EQ(env["tenant_id"], "t_1");
  EXPECT_EQ(env["data"]["status"], "active");
  // Marked published once its delivery report came back (bounded wait).
  const auto deadline = std::chrono::steady_clock::now()
                        + std::chrono::seconds{10};
  while ((*p)->stats().published < 1
         && std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(std::chrono::milliseconds{10});
  EXPECT_EQ((*p)->stats().published, 1U);
  auto left = db.fetch_unpublished(0, 10);
  ASSERT_TRUE(left.has_value());
  EXPECT_TRUE(left->empty());
  EXPECT_NE(metrics.render().find("recur_outbox_published_total 1"),
            std::string::npos)
    << metrics.render();
  (*p)->stop();
  (*p)->stop(); // idempotent
  EXPECT_FALSE((*p)->stats().running);
  p->reset();
  EXPECT_EQ(metrics.render().find("recur_outbox_published_total 1"),
            std::string::npos); // the pipeline is gone: nothing to read
}

TEST(event_pipeline, none_publishes_nothing_and_is_always_ready) {
  memory_store db;
  manual_clock clk{utc(2024, 3, 1)};
  auto p = start_event_pipeline("none", db, clk);
  ASSERT_TRUE(p.has_value());
  EXPECT_FALSE((*p)->enabled());
  EXPECT_TRUE((*p)->probe().has_value());
  unit_of_work w;
  w.tenant = tenant;
  w.outbox.push_back(
    outbox_message{"e1", "sub_1", "t", "sub_1", "{}", clk.now()});
  ASSERT_TRUE(db.commit(w).has_value());
  (*p)->stop();
  auto left = db.fetch_unpublished(0, 10);
  ASSERT_TRUE(left.has_value());
  EXPECT_EQ(left->size(), 1U);
}

TEST(
  event_pipeline,
  a_bad_setting_is_invalid_argument_and_an_unreachable_cluster_is_not_ready) {
  memory_store db;
  manual_clock clk{utc(2024, 3, 1)};
  auto bad = start_event_pipeline("nope:port", db, clk);
  ASSERT_FALSE(bad.has_value());
  EXPECT_EQ(bad.error().code, errc::invalid_argument);
  event_pipeline_options opts;
  opts.probe_timeout = std::chrono::milliseconds{300};
  opts.message_timeout = std::chrono::milliseconds{1'000};
  auto far = start_event_pipeline("127.0.0.1:1", db, clk, opts);
  ASSERT_TRUE(far.has_value()) << far.error().detail;
  EXPECT_TRUE((*far)->enabled());
  auto probed = (*far)->probe();
  ASSERT_FALSE(probed.has_value());
  EXPECT_EQ(probed.error().code, errc::unavailable);
}
