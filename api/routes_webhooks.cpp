// Gateway webhooks: POST /v1/webhooks/{gateway}/{tenant_id} (see
// routes_webhooks.hpp for the answers and the routing rules).

#include "api/routes_webhooks.hpp"

#include <future>
#include <memory>
#include <string>
#include <utility>
#include <variant>

#include <spdlog/spdlog.h>

#include "api/json_io.hpp"
#include "api/routes.hpp"
#include "gateways/stripe_events.hpp"
#include "gateways/webhook_signature.hpp"

namespace recur::api {

namespace {

struct webhook_route {
  store& db;
  const clock& clk;
  command_dispatch dispatch;
  webhook_options options;
  metrics_registry::counter_family* outcomes = nullptr;

  http_response handle(request_context& ctx) const;

private:
  void count(const std::string& gateway, std::string_view outcome) const {
    if (outcomes != nullptr)
      outcomes->inc({{"gateway", gateway}, {"outcome", std::string{outcome}}});
  }
  http_response received(const std::string& gateway, std::string_view outcome,
                         ordered_json body) const {
    count(gateway, outcome);
    return json_response(200, body);
  }
  http_response refuse(const std::string& gateway, std::string_view outcome,
                       api_error e) const {
    count(gateway, outcome);
    return problem(e);
  }
  /// The tenant's webhook secret, or the response that refuses the delivery.
  std::variant<std::string, http_response>
  secret_of(const tenant_id& t, const std::string& gateway) const;
  /// Dispatches and waits for the reply; nullopt after reply_timeout.
  std::optional<command_reply> apply(subscription_command cmd) const;
};

std::variant<std::string, http_response>
webhook_route::secret_of(const tenant_id& t, const std::string& gateway) const {
  auto cfg = db.get_gateway_config(t, gateway);
  if (!cfg) {
    if (cfg.code() != errc::not_found) {
      count(gateway, "unavailable");
      return error_response(cfg.error());
    }
    return refuse(
      gateway, "not_found",
      {404, "not_found",
       "no " + gateway + " webhook endpoint for tenant '" + t.value + "'"});
  }
  const json doc = json::parse(cfg->config_json, nullptr, false);
  const auto it = doc.is_object() ? doc.find("webhook_secret") : doc.end();
  if (it == doc.end() || !it->is_string() || it->get<std::string>().empty())
    return refuse(gateway, "invalid_signature",
                  {400, "invalid_signature",
                   "no webhook_secret is configured for " + gateway
                     + ": set it with PUT /v1/gateways/" + gateway});
  return it->get<std::string>();
}

std::optional<command_reply>
webhook_route::apply(subscription_command cmd) const {
  auto promise = std::make_shared<std::promise<command_reply>>();
  auto reply = promise->get_future();
  dispatch(std::move(cmd),
           [promise](command_reply r) { promise->set_value(std::move(r)); });
  if (reply.wait_for(options.reply_timeout) != std::future_status::ready)
    return std::nullopt;
  return reply.get();
}

http_response webhook_route::handle(request_context& ctx) const {
  const std::string& gateway = ctx.param("gateway");
  const std::string& tenant = ctx.param("tenant_id");
  if (!is_known_gateway(gateway) || !is_valid_id(tenant))
    return refuse(is_known_gateway(gateway) ? gateway : "unknown", "not_found",
                  {404, "not_found", "no webhook endpoint at this path"});
  const tenant_id tid{tenant};
  auto secret = secret_of(tid, gateway);
  if (auto* refused = std::get_if<http_response>(&secret))
    return std::move(*refused);
  const auto now = clk.now();
  if (auto bad = check_stripe_signature(
        ctx.req.header(stripe_signature_header), ctx.req.body,
        std::get<std::string>(secret), now, options.tolerance_s)) {
    spdlog::warn("event=webhook_rejected tenant={} gateway={} reason=\"{}\"",
                 tenant, gateway, to_string(*bad));
    return refuse(gateway, "invalid_signature",
                  {400, "invalid_signature", std::string{to_string(*bad)}});
  }
  auto parsed = parse_stripe_event(ctx.req.body);
  if (!parsed) {
    spdlog::warn("event=webhook_invalid tenant={} gateway={} error=\"{}\"",
                 tenant, gateway, parsed.error().detail);
    return refuse(gateway, "invalid_event",
                  {400, "invalid_event", parsed.error().detail});
  }
  if (auto* ignored = std::get_if<ignored_stripe_event>(&*parsed)) {
    spdlog::info("event=webhook_ignored tenant={} gateway={} event_id={} "
                 "type={} reason=\"{}\"",
                 tenant, gateway, ignored->id, ignored->type, ignored->reason);
    return received(
      gateway, "ignored",
      {{"received", true}, {"ignored", true}, {"reason", ignored->reason}});
  }
  auto& se = std::get<stripe_event>(*parsed);
  gateway_event ev = std::move(se.event);
  const std::string ref_id
    = se.dispute ? se.dispute->dispute_id : se.refund_id;
  if (!ev.tenant.empty() && ev.tenant != tid)
    return refuse(gateway, "invalid_event",
                  {400, "invalid_event",
                   "data.object.metadata.tenant_id names another tenant"});
  ev.tenant = tid;
  auto seen = db.inbox_contains(tid, gateway, ev.id);
  if (!seen)
    return error_response(seen.error());
  if (*seen) {
    spdlog::info("event=webhook_duplicate tenant={} gateway={} event_id={}",
                 tenant, gateway, ev.id);
    return received(gateway, "duplicate",
                    {{"received", true}, {"duplicate", true}});
  }
  auto target = route_gateway_event(db, tid, ev);
  if (!target)
    return refuse(gateway, "unavailable", to_api_error(target.error()));
  if (!*target) {
    spdlog::warn("event=webhook_unroutable tenant={} gateway={} event_id={} "
                 "type={} key=\"{}\" charge_id={}",
                 tenant, gateway, ev.id, ev.type, ev.idempotency_key,
                 ev.charge_id);
    return received(gateway, "unroutable",
                    {{"received", true},
                     {"ignored", true},
                     {"reason", "no subscription of this tenant matches"}});
  }
  const std::string event_id = ev.id;
  const std::string type = ev.type;
  const subscription_id sub = (*target)->subscription;
  // The engine commits the inbox entry with the event's effects.
  sub_in::gateway_notice notice{std::move(ev), gateway, ref_id,
                                (*target)->invoice};
  auto reply = apply(subscription_command{tid, sub, std::move(notice)});
  if (reply && reply->failure && reply->failure->code == errc::already_exists) {
    // A concurrent delivery of the same event id committed first (the
    // inbox refused this one), or its refund/dispute is booked already.
    spdlog::info("event=webhook_duplicate tenant={} gateway={} event_id={} "
                 "subscription={} detail=\"{}\"",
                 tenant, gateway, event_id, sub.value, reply->failure->detail);
    return received(gateway, "duplicate",
                    {{"received", true}, {"duplicate", true}});
  }
  if (!reply
      || (reply->failure
          && (reply->failure->code == errc::unavailable
              || reply->failure->code == errc::storage_error))) {
    spdlog::warn("event=webhook_unavailable tenant={} gateway={} event_id={} "
                 "subscription={} error=\"{}\"",
                 tenant, gateway, event_id, sub.value,
                 reply ? reply->failure->detail : "no reply in time");
    return refuse(gateway, "unavailable",
                  {503, "unavailable",
                   "the subscription could not apply the event now; retry"});
  }
  // A refusal by the engine is final: retrying cannot change it. (Events
  // it cannot use by their meaning are not refusals: they commit their
  // inbox entry alone.)
  spdlog::info("event=webhook_applied tenant={} gateway={} event_id={} type={} "
               "subscription={} outcome={}",
               tenant, gateway, event_id, type, sub.value,
               reply->ok() ? "ok" : to_string(reply->failure->code));
  return received(gateway, "applied", {{"received", true}});
}

} // namespace

result<std::optional<subscription_id>>
find_event_subscription(store& db, const tenant_id& t, const gateway_event& e) {
  auto r = route_gateway_event(db, t, e);
  if (!r)
    return r.error();
  if (!*r)
    return std::optional<subscription_id>{};
  return std::optional<subscription_id>{(*r)->subscription};
}

void add_webhook_routes(router& r, store& db, const clock& clk,
                        command_dispatch dispatch, webhook_options options) {
  RECUR_ASSERT(dispatch != nullptr);
  RECUR_ASSERT(options.tolerance_s >= 0
               && options.tolerance_s <= stripe_signature_tolerance_s_max);
  auto route_state = std::make_shared<webhook_route>(
    webhook_route{db, clk, std::move(dispatch), options, nullptr});
  if (options.metrics != nullptr)
    route_state->outcomes = &options.metrics->add_counter(
      "recur_webhooks_total", "Gateway webhook deliveries by outcome");
  ordered_json response{{"type", "object"},
                        {"properties",
                         {{"received", {{"type", "boolean"}}},
                          {"ignored", {{"type", "boolean"}}},
                          {"duplicate", {{"type", "boolean"}}},
                          {"reason", {{"type", "string"}}}}},
                        {"required", {"received"}}};
  r.add(route{
    "POST", "/v1/webhooks/{gateway}/{tenant_id}", auth_kind::none,
    [route_state](request_context& ctx) { return route_state->handle(ctx); },
    route_doc{"a gateway event, signed with Stripe's scheme (Stripe-Signature: "
              "t=<unix>,v1=<hex>); replays are answered 200 and change nothing",
              {{"type", "object"},
               {"description", "a Stripe event {id, type, created, data}"}},
              std::move(response),
              200,
              {},
              "application/json"},
    false, nullptr});
}

} // namespace recur::api
