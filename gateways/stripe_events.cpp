#include "gateways/stripe_events.hpp"

#include <cctype>
#include <cstdint>
#include <limits>
#include <utility>

#include <nlohmann/json.hpp>

#include "workflows/retry_policy.hpp"

namespace recur {

namespace {

using json = nlohmann::json;

error bad(const std::string& path, std::string_view why) {
  return make_error(errc::invalid_argument, path + ": " + std::string{why});
}

/// `obj[name]`, which must be a JSON object.
result<const json*> object_at(const json& obj, const char* name,
                              const std::string& path) {
  const auto it = obj.find(name);
  if (it == obj.end() || it->is_null())
    return bad(path, "is missing");
  if (!it->is_object())
    return bad(path, "must be an object");
  return &*it;
}

/// A string field; absent or null reads as "" when not `required`.
result<std::string> string_at(const json& obj, const char* name,
                              const std::string& path, bool required = true) {
  const auto it = obj.find(name);
  if (it == obj.end() || it->is_null()) {
    if (required)
      return bad(path, "is missing");
    return std::string{};
  }
  if (!it->is_string())
    return bad(path, "must be a string");
  std::string s = it->get<std::string>();
  if (required && s.empty())
    return bad(path, "is empty");
  if (s.size() > stripe_field_size_max)
    return bad(path, "is too long");
  return s;
}

/// A JSON integer that fits int64: 12.0, "12" and 2^63 are all refused.
result<std::int64_t> integer_at(const json& obj, const char* name,
                                const std::string& path) {
  const auto it = obj.find(name);
  if (it == obj.end() || it->is_null())
    return bad(path, "is missing");
  if (!it->is_number_integer())
    return bad(path, "must be an integer");
  if (it->is_number_unsigned()
      && it->get<std::uint64_t>() > static_cast<std::uint64_t>(
           std::numeric_limits<std::int64_t>::max()))
    return bad(path, "is out of range");
  return it->get<std::int64_t>();
}

/// `amount` (positive minor units) and `currency` of a Stripe object.
result<money> money_at(const json& obj, const std::string& path) {
  auto amount = integer_at(obj, "amount", path + ".amount");
  if (!amount)
    return amount.error();
  if (*amount <= 0)
    return bad(path + ".amount", "must be positive");
  auto code = string_at(obj, "currency", path + ".currency");
  if (!code)
    return code.error();
  std::string upper = *code;
  for (char& c : upper)
    c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  auto cur = currency::from_code(upper);
  if (!cur)
    return bad(path + ".currency", "unknown currency '" + *code + "'");
  return money{*amount, *cur};
}

/// `metadata.<name>` of a Stripe object; "" when there is none.
result<std::string> metadata_at(const json& obj, const char* name,
                                const std::string& path) {
  const auto it = obj.find("metadata");
  if (it == obj.end() || it->is_null())
    return std::string{};
  if (!it->is_object())
    return bad(path + ".metadata", "must be an object");
  return string_at(*it, name, path + ".metadata." + name, false);
}

/// The fields every event has.
struct envelope {
  std::string id;
  std::string type;
  instant created;
  const json* object = nullptr;
};

result<envelope> read_envelope(const json& doc) {
  if (!doc.is_object())
    return bad("event", "must be a JSON object");
  envelope env;
  auto id = string_at(doc, "id", "id");
  if (!id)
    return id.error();
  env.id = std::move(*id);
  auto type = string_at(doc, "type", "type");
  if (!type)
    return type.error();
  env.type = std::move(*type);
  auto created = integer_at(doc, "created", "created");
  if (!created)
    return created.error();
  if (*created < 0)
    return bad("created", "must not be negative");
  env.created = instant{*created};
  auto data = object_at(doc, "data", "data");
  if (!data)
    return data.error();
  auto object = object_at(**data, "object", "data.object");
  if (!object)
    return object.error();
  env.object = *object;
  return env;
}

const std::string obj_path = "data.object";

ignored_stripe_event ignore(const envelope& env, std::string reason) {
  return {env.id, env.type, std::move(reason)};
}

stripe_event make_event(const envelope& env, std::string type, money amount) {
  return stripe_event{
    .event = gateway_event{.id = env.id,
                           .type = std::move(type),
                           .tenant = {},
                           .idempotency_key = {},
                           .charge_id = {},
                           .amount = amount,
                           .decline_code = {},
                           .created = env.created},
    .stripe_type = env.type,
    .decline = {},
    .refund_id = {},
    .dispute = std::nullopt,
  };
}

/// Reads `metadata.idempotency_key` and `metadata.tenant_id` of `obj`; an
/// object without a key was not made by Recur: nullopt.
result<std::optional<std::pair<std::string, std::string>>>
recur_metadata(const json& obj, const std::string& path) {
  auto key = metadata_at(obj, "idempotency_key", path);
  if (!key)
    return key.error();
  if (key->empty())
    return std::optional<std::pair<std::string, std::string>>{};
  if (key->size() > idempotency_key_size_max)
    return bad(path + ".metadata.idempotency_key", "is too long");
  auto tenant = metadata_at(obj, "tenant_id", path);
  if (!tenant)
    return tenant.error();
  return std::optional{std::pair{std::move(*key), std::move(*tenant)}};
}

using parse_result = result<parsed_stripe_event>;

parse_result payment_intent(const envelope& env, bool succeeded) {
  const json& pi = *env.object;
  auto id = string_at(pi, "id", obj_path + ".id");
  if (!id)
    return id.error();
  auto amount = money_at(pi, obj_path);
  if (!amount)
    return amount.error();
  auto meta = recur_metadata(pi, obj_path);
  if (!meta)
    return meta.error();
  if (!*meta)
    return parsed_stripe_event{
      ignore(env, "no metadata.idempotency_key: not a payment Recur made")};
  stripe_event ev = make_event(env, env.type, *amount);
  ev.event.idempotency_key = std::move((*meta)->first);
  ev.event.tenant = tenant_id{std::move((*meta)->second)};
  ev.event.charge_id = std::move(*id);
  if (!succeeded) {
    const std::string err_path = obj_path + ".last_payment_error";
    auto err = object_at(pi, "last_payment_error", err_path);
    if (!err)
      return err.error();
    auto decline = string_at(**err, "decline_code", err_path + ".decline_code",
                             false);
    if (!decline)
      return decline.error();
    if (decline->empty()) {
      decline = string_at(**err, "code", err_path + ".code");
      if (!decline)
        return bad(err_path, "has neither decline_code nor code");
    }
    ev.event.decline_code = std::move(*decline);
    ev.decline = classify_decline(ev.event.decline_code);
  }
  return parsed_stripe_event{std::move(ev)};
}

/// Fills a refund event from a Refund object at `path`; `charge_id` is what
/// the consumer knows the payment by.
parse_result refund_event(const envelope& env, const json& refund,
                          const std::string& path, std::string charge_id) {
  auto refund_id = string_at(refund, "id", path + ".id");
  if (!refund_id)
    return refund_id.error();
  auto amount = money_at(refund, path);
  if (!amount)
    return amount.error();
  auto meta = recur_metadata(refund, path);
  if (!meta)
    return meta.error();
  stripe_event ev = make_event(env, "charge.refunded", *amount);
  if (*meta) {
    ev.event.idempotency_key = std::move((*meta)->first);
    ev.event.tenant = tenant_id{std::move((*meta)->second)};
  }
  // A refund without our metadata was made at the gateway (the dashboard):
  // it is about a payment of ours if its charge id is one; the consumer
  // finds out by `charge_id`.
  if (charge_id.empty())
    return bad(path, "names neither payment_intent nor charge");
  ev.event.charge_id = std::move(charge_id);
  ev.refund_id = std::move(*refund_id);
  return parsed_stripe_event{std::move(ev)};
}

/// The payment a Charge, Refund or Dispute belongs to: its PaymentIntent when
/// it names one (what stripe_gateway::charge returned), else `fallback`.
result<std::string> payment_of(const json& obj, const std::string& path,
                               std::string fallback) {
  auto pi = string_at(obj, "payment_intent", path + ".payment_intent", false);
  if (!pi)
    return pi.error();
  return pi->empty() ? std::move(fallback) : std::move(*pi);
}

parse_result charge_refunded(const envelope& env) {
  const json& charge = *env.object;
  auto id = string_at(charge, "id", obj_path + ".id");
  if (!id)
    return id.error();
  auto payment = payment_of(charge, obj_path, *id);
  if (!payment)
    return payment.error();
  const auto refunds = charge.find("refunds");
  if (refunds == charge.end() || refunds->is_null())
    return parsed_stripe_event{
      ignore(env, "charge.refunded without data.object.refunds (API version "
                  "2022-11-15 or later): refund.created carries the refund")};
  const std::string list_path = obj_path + ".refunds";
  if (!refunds->is_object())
    return bad(list_path, "must be an object");
  const auto list = refunds->find("data");
  if (list == refunds->end() || !list->is_array())
    return bad(list_path + ".data", "must be an array");
  if (list->empty())
    return bad(list_path + ".data", "is empty");
  const json& newest = list->front();
  if (!newest.is_object())
    return bad(list_path + ".data[0]", "must be an object");
  return refund_event(env, newest, list_path + ".data[0]", std::move(*payment));
}

parse_result refund_created(const envelope& env) {
  const json& refund = *env.object;
  auto status = string_at(refund, "status", obj_path + ".status", false);
  if (!status)
    return status.error();
  if (*status == "failed" || *status == "canceled")
    return parsed_stripe_event{ignore(env, "refund is " + *status)};
  auto charge = string_at(refund, "charge", obj_path + ".charge", false);
  if (!charge)
    return charge.error();
  auto payment = payment_of(refund, obj_path, std::move(*charge));
  if (!payment)
    return payment.error();
  if (payment->empty())
    return bad(obj_path, "names neither payment_intent nor charge");
  return refund_event(env, refund, obj_path, std::move(*payment));
}

parse_result dispute_created(const envelope& env) {
  const json& dp = *env.object;
  stripe_dispute dispute;
  auto id = string_at(dp, "id", obj_path + ".id");
  if (!id)
    return id.error();
  dispute.dispute_id = std::move(*id);
  auto charge = string_at(dp, "charge", obj_path + ".charge");
  if (!charge)
    return charge.error();
  dispute.stripe_charge_id = std::move(*charge);
  auto pi = string_at(dp, "payment_intent", obj_path + ".payment_intent",
                      false);
  if (!pi)
    return pi.error();
  dispute.payment_intent_id = std::move(*pi);
  auto reason = string_at(dp, "reason", obj_path + ".reason", false);
  if (!reason)
    return reason.error();
  dispute.reason = std::move(*reason);
  auto status = string_at(dp, "status", obj_path + ".status", false);
  if (!status)
    return status.error();
  dispute.status = std::move(*status);
  auto amount = money_at(dp, obj_path);
  if (!amount)
    return amount.error();
  auto key = metadata_at(dp, "idempotency_key", obj_path);
  if (!key)
    return key.error();
  auto tenant = metadata_at(dp, "tenant_id", obj_path);
  if (!tenant)
    return tenant.error();
  stripe_event ev = make_event(env, env.type, *amount);
  ev.event.idempotency_key = std::move(*key);
  ev.event.tenant = tenant_id{std::move(*tenant)};
  ev.event.charge_id = dispute.payment_intent_id.empty()
                         ? dispute.stripe_charge_id
                         : dispute.payment_intent_id;
  ev.dispute = std::move(dispute);
  return parsed_stripe_event{std::move(ev)};
}

} // namespace

result<parsed_stripe_event> parse_stripe_event(std::string_view text) {
  if (text.size() > stripe_event_size_max)
    return bad("event", "is larger than "
                          + std::to_string(stripe_event_size_max) + " bytes");
  const json doc = json::parse(text, nullptr, false);
  if (doc.is_discarded())
    return bad("event", "is not valid JSON");
  auto env = read_envelope(doc);
  if (!env)
    return env.error();
  const std::string& type = env->type;
  if (type == "payment_intent.succeeded")
    return payment_intent(*env, true);
  if (type == "payment_intent.payment_failed")
    return payment_intent(*env, false);
  if (type == "charge.refunded")
    return charge_refunded(*env);
  if (type == "refund.created")
    return refund_created(*env);
  if (type == "charge.dispute.created")
    return dispute_created(*env);
  return parsed_stripe_event{ignore(*env, "event type not handled")};
}

} // namespace recur
