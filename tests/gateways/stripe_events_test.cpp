#include "gateways/stripe_events.hpp"

#include <optional>
#include <string>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

namespace recur {
namespace {

using json = nlohmann::json;

json envelope(std::string type, json object) {
  return json{
    {"id", "evt_1"},           {"object", "event"},
    {"type", std::move(type)}, {"created", 1'700'000'000},
    {"livemode", false},       {"data", {{"object", std::move(object)}}}};
}

json payment_intent(std::string status) {
  return json{
    {"id", "pi_123"},
    {"object", "payment_intent"},
    {"amount", 1999},
    {"amount_received", 1999},
    {"currency", "usd"},
    {"status", std::move(status)},
    {"latest_charge", "ch_123"},
    {"metadata",
     {{"idempotency_key", "inv_42/attempt-1"}, {"tenant_id", "ten_1"}}}};
}

json refund_object() {
  return json{
    {"id", "re_9"},
    {"object", "refund"},
    {"amount", 500},
    {"currency", "eur"},
    {"charge", "ch_123"},
    {"payment_intent", "pi_123"},
    {"status", "succeeded"},
    {"metadata",
     {{"idempotency_key", "inv_42/refund-1"}, {"tenant_id", "ten_1"}}}};
}

json charge_with_refunds() {
  json older = refund_object();
  older["id"] = "re_8";
  older["amount"] = 100;
  older["metadata"]["idempotency_key"] = "inv_42/refund-0";
  return json{
    {"id", "ch_123"},
    {"object", "charge"},
    {"amount", 1999},
    {"amount_refunded", 600},
    {"currency", "eur"},
    {"payment_intent", "pi_123"},
    {"refunded", false},
    {"metadata", {{"idempotency_key", "inv_42/attempt-1"}}},
    {"refunds",
     {{"object", "list"}, {"data", json::array({refund_object(), older})}}}};
}

json dispute_object() {
  return json{{"id", "dp_7"},
              {"object", "dispute"},
              {"amount", 1999},
              {"currency", "usd"},
              {"charge", "ch_123"},
              {"payment_intent", "pi_123"},
              {"reason", "fraudulent"},
              {"status", "needs_response"},
              {"metadata", json::object()}};
}

std::optional<stripe_event> parsed(const json& doc) {
  auto r = parse_stripe_event(doc.dump());
  EXPECT_TRUE(r.has_value()) << (r ? "" : r.error().detail);
  if (!r || !std::holds_alternative<stripe_event>(*r))
    return std::nullopt;
  return std::get<stripe_event>(*r);
}

std::optional<ignored_stripe_event> ignored(const json& doc) {
  auto r = parse_stripe_event(doc.dump());
  EXPECT_TRUE(r.has_value()) << (r ? "" : r.error().detail);
  if (!r || !std::holds_alternative<ignored_stripe_event>(*r))
    return std::nullopt;
  return std::get<ignored_stripe_event>(*r);
}

std::string error_of_text(std::string_view text) {
  auto r = parse_stripe_event(text);
  EXPECT_FALSE(r.has_value());
  if (r)
    return {};
  EXPECT_EQ(r.code(), errc::invalid_argument);
  return r.error().detail;
}

std::string error_of(const json& doc) {
  return error_of_text(doc.dump());
}

const currency usd = currency::of("USD");
const currency eur = currency::of("EUR");

// -- each handled type --------------------------------------------------------

TEST(stripe_events, payment_intent_succeeded_maps_to_the_charge_it_settles) {
  const auto ev
    = parsed(envelope("payment_intent.succeeded", payment_intent("succeeded")));
  ASSERT_TRUE(ev);
  EXPECT_EQ(ev->event, (gateway_event{.id = "evt_1",
                                      .type = "payment_intent.succeeded",
                                      .tenant = tenant_id{"ten_1"},
                                      .idempotency_key = "inv_42/attempt-1",
                                      .charge_id = "pi_123",
                                      .amount = money{1999, usd},
                                      .decline_code = "",
                                      .created = instant{1'700'000'000}}));
  EXPECT_EQ(ev->stripe_type, "payment_intent.succeeded");
  EXPECT_FALSE(ev->dispute);
}

TEST(stripe_events, payment_failed_reads_the_decline_code_and_classifies_it) {
  json pi = payment_intent("requires_payment_method");
  pi["last_payment_error"] = {{"type", "card_error"},
                              {"code", "card_declined"},
                              {"decline_code", "insufficient_funds"}};
  const auto soft = parsed(envelope("payment_intent.payment_failed", pi));
  ASSERT_TRUE(soft);
  EXPECT_EQ(soft->event.type, "payment_intent.payment_failed");
  EXPECT_EQ(soft->event.decline_code, "insufficient_funds");
  EXPECT_EQ(soft->decline, decline_class::soft);
  EXPECT_EQ(soft->event.idempotency_key, "inv_42/attempt-1");
  EXPECT_EQ(soft->event.charge_id, "pi_123");

  // No decline_code: Stripe's error code stands in (expired_card is hard).
  pi["last_payment_error"] = {{"type", "card_error"},
                              {"code", "expired_card"},
                              {"decline_code", nullptr}};
  const auto hard = parsed(envelope("payment_intent.payment_failed", pi));
  ASSERT_TRUE(hard);
  EXPECT_EQ(hard->event.decline_code, "expired_card");
  EXPECT_EQ(hard->decline, decline_class::hard);
}

TEST(stripe_events, payment_failed_without_last_payment_error_is_malformed) {
  EXPECT_EQ(error_of(envelope("payment_intent.payment_failed",
                              payment_intent("requires_payment_method"))),
            "data.object.last_payment_error: is missing");
}

TEST(stripe_events, charge_refunded_reads_the_newest_refund) {
  const auto ev = parsed(envelope("charge.refunded", charge_with_refunds()));
  ASSERT_TRUE(ev);
  EXPECT_EQ(ev->event.type, "charge.refunded");
  EXPECT_EQ(ev->event.idempotency_key, "inv_42/refund-1");
  EXPECT_EQ(ev->event.tenant, tenant_id{"ten_1"});
  EXPECT_EQ(ev->event.charge_id, "pi_123");
  EXPECT_EQ(ev->event.amount, (money{500, eur}));
  EXPECT_EQ(ev->refund_id, "re_9");
}

TEST(stripe_events,
     a_refunded_charge_without_payment_intent_uses_the_charge_id) {
  json charge = charge_with_refunds();
  charge["payment_intent"] = nullptr;
  const auto ev = parsed(envelope("charge.refunded", charge));
  ASSERT_TRUE(ev);
  EXPECT_EQ(ev->event.charge_id, "ch_123");
}

TEST(stripe_events, charge_refunded_without_the_refund_list_is_ignored) {
  json charge = charge_with_refunds();
  charge.erase("refunds");
  const auto ig = ignored(envelope("charge.refunded", charge));
  ASSERT_TRUE(ig);
  EXPECT_EQ(ig->id, "evt_1");
  EXPECT_NE(ig->reason.find("refund.created"), std::string::npos);
}

TEST(stripe_events, refund_created_is_reported_as_charge_refunded) {
  const auto ev = parsed(envelope("refund.created", refund_object()));
  ASSERT_TRUE(ev);
  EXPECT_EQ(ev->event.type, "charge.refunded");
  EXPECT_EQ(ev->stripe_type, "refund.created");
  EXPECT_EQ(ev->event.idempotency_key, "inv_42/refund-1");
  EXPECT_EQ(ev->event.charge_id, "pi_123");
  EXPECT_EQ(ev->event.amount, (money{500, eur}));
  EXPECT_EQ(ev->refund_id, "re_9");

  json failed = refund_object();
  failed["status"] = "failed";
  EXPECT_TRUE(ignored(envelope("refund.created", failed)));
}

TEST(stripe_events, dispute_created_carries_the_dispute_and_its_payment) {
  const auto ev = parsed(envelope("charge.dispute.created", dispute_object()));
  ASSERT_TRUE(ev);
  EXPECT_EQ(ev->event.type, "charge.dispute.created");
  EXPECT_EQ(ev->event.charge_id, "pi_123");
  EXPECT_EQ(ev->event.amount, (money{1999, usd}));
  EXPECT_EQ(ev->event.idempotency_key, "");
  EXPECT_TRUE(ev->event.tenant.empty());
  ASSERT_TRUE(ev->dispute);
  EXPECT_EQ(*ev->dispute, (stripe_dispute{"dp_7", "ch_123", "pi_123",
                                          "fraudulent", "needs_response"}));

  json no_pi = dispute_object();
  no_pi.erase("payment_intent");
  const auto by_charge = parsed(envelope("charge.dispute.created", no_pi));
  ASSERT_TRUE(by_charge);
  EXPECT_EQ(by_charge->event.charge_id, "ch_123");
}

// -- ignored ------------------------------------------------------------------

TEST(stripe_events, an_unknown_type_is_ignored_not_an_error) {
  const auto ig = ignored(envelope("customer.created", {{"id", "cus_1"}}));
  ASSERT_TRUE(ig);
  EXPECT_EQ(*ig, (ignored_stripe_event{"evt_1", "customer.created",
                                       "event type not handled"}));
}

TEST(stripe_events, a_payment_recur_did_not_make_is_ignored) {
  json pi = payment_intent("succeeded");
  pi["metadata"] = json::object();
  const auto ig = ignored(envelope("payment_intent.succeeded", pi));
  ASSERT_TRUE(ig);
  EXPECT_NE(ig->reason.find("idempotency_key"), std::string::npos);
}

// -- malformed ----------------------------------------------------------------

TEST(stripe_events, malformed_json_is_invalid_argument) {
  EXPECT_EQ(error_of_text("{\"id\": "), "event: is not valid JSON");
  EXPECT_EQ(error_of_text("[1, 2]"), "event: must be a JSON object");
  EXPECT_EQ(error_of_text(""), "event: is not valid JSON");
}

TEST(stripe_events, a_missing_or_mistyped_field_is_named) {
  const json ok = envelope("payment_intent.succeeded",
                           payment_intent("succeeded"));
  auto without = [&](const json::json_pointer& p) {
    json doc = ok;
    doc[p.parent_pointer()].erase(p.back());
    return error_of(doc);
  };
  EXPECT_EQ(without("/id"_json_pointer), "id: is missing");
  EXPECT_EQ(without("/type"_json_pointer), "type: is missing");
  EXPECT_EQ(without("/created"_json_pointer), "created: is missing");
  EXPECT_EQ(without("/data"_json_pointer), "data: is missing");
  EXPECT_EQ(without("/data/object"_json_pointer), "data.object: is missing");
  EXPECT_EQ(without("/data/object/id"_json_pointer),
            "data.object.id: is missing");
  EXPECT_EQ(without("/data/object/amount"_json_pointer),
            "data.object.amount: is missing");
  EXPECT_EQ(without("/data/object/currency"_json_pointer),
            "data.object.currency: is missing");

  json doc = ok;
  doc["data"]["object"]["metadata"]["idempotency_key"] = 42;
  EXPECT_EQ(error_of(doc),
            "data.object.metadata.idempotency_key: must be a string");
  doc = ok;
  doc["created"] = "1700000000";
  EXPECT_EQ(error_of(doc), "created: must be an integer");
  doc = ok;
  doc["data"] = "x";
  EXPECT_EQ(error_of(doc), "data: must be an object");
}

TEST(stripe_events, amounts_must_be_positive_integers_in_a_known_currency) {
  json doc = envelope("payment_intent.succeeded", payment_intent("succeeded"));
  json& obj = doc["data"]["object"];
  obj["amount"] = 19.99;
  EXPECT_EQ(error_of(doc), "data.object.amount: must be an integer");
  obj["amount"] = 1999.0;
  EXPECT_EQ(error_of(doc), "data.object.amount: must be an integer");
  obj["amount"] = "1999";
  EXPECT_EQ(error_of(doc), "data.object.amount: must be an integer");
  obj["amount"] = 0;
  EXPECT_EQ(error_of(doc), "data.object.amount: must be positive");
  obj["amount"] = -5;
  EXPECT_EQ(error_of(doc), "data.object.amount: must be positive");
  obj["amount"] = 18446744073709551615ULL;
  EXPECT_EQ(error_of(doc), "data.object.amount: is out of range");
  obj["amount"] = 1999;
  obj["currency"] = "xyz";
  EXPECT_EQ(error_of(doc), "data.object.currency: unknown currency 'xyz'");
  // Stripe's lower-case codes and upper-case ones both work.
  obj["currency"] = "JPY";
  const auto ev = parsed(doc);
  ASSERT_TRUE(ev);
  EXPECT_EQ(ev->event.amount, (money{1999, currency::of("JPY")}));
}

TEST(stripe_events, a_refund_list_that_is_not_a_list_is_malformed) {
  json charge = charge_with_refunds();
  charge["refunds"]["data"] = json::array();
  EXPECT_EQ(error_of(envelope("charge.refunded", charge)),
            "data.object.refunds.data: is empty");
  charge["refunds"]["data"] = "no";
  EXPECT_EQ(error_of(envelope("charge.refunded", charge)),
            "data.object.refunds.data: must be an array");
  charge["refunds"]["data"] = json::array({refund_object()});
  charge["refunds"]["data"][0].erase("amount");
  EXPECT_EQ(error_of(envelope("charge.refunded", charge)),
            "data.object.refunds.data[0].amount: is missing");
}

TEST(stripe_events, an_oversize_event_is_refused_before_parsing) {
  std::string big(stripe_event_size_max + 1, ' ');
  EXPECT_NE(error_of_text(big).find("larger than"), std::string::npos);
}

} // namespace
} // namespace recur
