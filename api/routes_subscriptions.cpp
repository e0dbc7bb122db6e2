// Subscriptions: commands go to the subscription's actor (orchestrator) and
// are answered after their events are committed; reads come from the store's
// read model and event log.
//
//   POST /v1/subscriptions  {id?, customer, plan, quantity?, trial_days?,
//                           payment_method?} → 201 the subscription.
//                           payment_method defaults to the customer's;
//                           trial_days to the plan's. An unknown customer or
//                           plan, or a customer whose currency is not the
//                           plan's, is 422 validation_error; a taken id 409.
//   GET  /v1/subscriptions?status=&customer=   paged by subscription id
//   GET  /v1/subscriptions/{id}
//   GET  /v1/subscriptions/{id}/events          paged by seq, oldest first
//   POST /v1/subscriptions/{id}/cancel {at_period_end?}
//   POST /v1/subscriptions/{id}/pause · /resume
//   POST /v1/subscriptions/{id}/change-plan {plan, quantity?}
//        → 200 the subscription after the change; a transition the
//        lifecycle forbids is 409 invalid_transition and changes nothing.

#include <charconv>
#include <limits>

#include <spdlog/spdlog.h>

#include "api/auth.hpp"
#include "api/billing_common.hpp"
#include "api/pagination.hpp"
#include "api/subscription_cache.hpp"
#include "api/tenant_env.hpp"
#include "workflows/lifecycle.hpp"

namespace recur::api {

namespace {

constexpr std::int64_t max_quantity = 1'000'000;
constexpr std::int64_t max_trial_days = 730;
constexpr std::size_t max_token_bytes = 255;

http_response not_found(const std::string& id) {
  return problem({404, "not_found", "no subscription '" + id + "'"});
}

result<subscription_state> read_row(const subscription_row& row) {
  auto st = subscription_from_json(row.data_json);
  if (!st)
    return make_error(errc::storage_error, "subscription " + row.id.value
                                             + ": unreadable state: "
                                             + st.error().detail);
  return st;
}

// The plan in force now, or the 422 that says why there is none.
std::optional<http_response> check_plan(services& s, request_context& ctx,
                                        const plan_id& plan,
                                        std::string* currency) {
  const auto* env = s.envs->env_for(ctx.tid());
  if (env == nullptr)
    return problem({503, "unavailable", "the plan catalog cannot be read"});
  auto v = env->plans->current(plan, ctx.now);
  if (!v) {
    if (v.code() == errc::not_found)
      return problem(validation_error("plan: no plan '" + plan.value + "'"));
    return problem(validation_error("plan: " + v.error().detail));
  }
  if (currency != nullptr)
    *currency = std::string{v->currency.code()};
  return std::nullopt;
}

http_response create_subscription(services& s, request_context& ctx) {
  if (auto no = require_orchestrator(s))
    return *no;
  api_error err;
  auto body = parse_object(ctx.req.body, err);
  if (!body)
    return problem(err);
  object_reader in{*body};
  auto id = in.id("id", false);
  auto customer = in.id("customer", true);
  auto plan = in.id("plan", true);
  auto quantity = in.integer("quantity", false, 1, max_quantity);
  auto trial_days = in.integer("trial_days", false, 0, max_trial_days);
  auto pm = in.id("payment_method", false, max_token_bytes);
  in.reject_unknown();
  if (in.failed())
    return problem(in.error());
  auto cust = s.db.get_customer(ctx.tid(), customer_id{*customer});
  if (!cust)
    return cust.code() == errc::not_found
             ? problem(validation_error("customer: no customer '" + *customer
                                        + "'"))
             : error_response(cust.error());
  auto fields = read_customer(*cust);
  if (!fields)
    return error_response(make_error(errc::storage_error, fields.error().detail));
  std::string currency;
  if (auto bad = check_plan(s, ctx, plan_id{*plan}, &currency))
    return *bad;
  if (fields->currency && *fields->currency != currency)
    return problem(validation_error("customer: bills in " + *fields->currency
                                    + ", plan '" + *plan + "' in "
                                    + currency));
  sub_in::create create{customer_id{*customer}, plan_id{*plan},
                        quantity.value_or(1),
                        pm ? *pm : fields->payment_method.value_or(""),
                        std::nullopt};
  if (trial_days)
    create.trial_days = static_cast<std::int32_t>(*trial_days);
  const subscription_id sid{id ? *id : new_id("sub")};
  auto out = run_command(s, ctx, sid, std::move(create));
  if (out.failure) // a taken id: already_exists, 409 conflict
    return *out.failure;
  spdlog::info("event=subscription_created tenant={} subscription={} "
               "customer={} plan={} status={}",
               ctx.tid().value, sid.value, *customer, *plan,
               to_string(out.state.life.status));
  return json_response(201, subscription_view(out.state));
}

http_response list_subscriptions(services& s, request_context& ctx) {
  if (auto bad = unknown_query_param(ctx.query, {"limit", "cursor",
                                                 "starting_after", "status",
                                                 "customer"}))
    return problem(*bad);
  api_error err;
  auto page_req = read_page_request(ctx.query, err);
  if (!page_req)
    return problem(err);
  std::optional<std::string> status;
  if (auto q = ctx.query_value("status")) {
    bool known = false;
    for (auto st : all_statuses)
      known = known || to_string(st) == *q;
    if (!known)
      return problem(validation_error(
        "status: must be one of incomplete, trialing, active, past_due, "
        "suspended, paused, canceled",
        400));
    status = std::string{*q};
  }
  std::optional<customer_id> customer;
  if (auto q = ctx.query_value("customer")) {
    if (!is_valid_id(*q))
      return problem(validation_error("customer: not an id", 400));
    customer = customer_id{std::string{*q}};
  }
  auto page = s.db.list_subscriptions(ctx.tid(), status, customer,
                                      page_req->store_cursor, page_req->limit);
  if (!page)
    return error_response(page.error());
  ordered_json data = ordered_json::array();
  for (const auto& row : page->items) {
    auto st = read_row(row);
    if (!st)
      return error_response(st.error());
    data.push_back(subscription_view(*st));
  }
  return json_response(200, list_body(std::move(data), page->next_cursor));
}

// GET from recurd's read-model cache (subscription_cache.hpp), which also
// keeps, per cached row, the body rendered from it: a hit with a body is
// answered without parsing or rendering JSON. Never blocks (the fast
// handler); nullopt on a miss, or when the store is not a caching one.
std::optional<http_response> get_subscription_cached(services& s,
                                                     request_context& ctx) {
  const auto& id = ctx.param("id");
  if (!is_valid_id(id))
    return std::nullopt;
  auto* cached = dynamic_cast<caching_store*>(&s.db);
  if (cached == nullptr)
    return std::nullopt;
  auto hit = cached->cache().find(ctx.tid(), subscription_id{id});
  if (!hit)
    return std::nullopt;
  if (hit->view)
    return http_response{200, "application/json", *hit->view, {}};
  auto st = read_row(*hit->row);
  if (!st)
    return error_response(st.error());
  auto res = json_response(200, subscription_view(*st));
  cached->cache().set_view(ctx.tid(), hit->row,
                           std::make_shared<const std::string>(res.body));
  return res;
}

http_response get_subscription(services& s, request_context& ctx) {
  const auto& id = ctx.param("id");
  if (!is_valid_id(id))
    return not_found(id);
  const subscription_id sid{id};
  if (auto res = get_subscription_cached(s, ctx))
    return std::move(*res);
  auto row = s.db.get_subscription(ctx.tid(), sid); // fills the cache
  if (!row)
    return row.code() == errc::not_found ? not_found(id)
                                         : error_response(row.error());
  auto st = read_row(*row);
  if (!st)
    return error_response(st.error());
  return json_response(200, subscription_view(*st));
}

http_response list_events(services& s, request_context& ctx) {
  const auto& id = ctx.param("id");
  if (!is_valid_id(id))
    return not_found(id);
  if (auto bad = unknown_query_param(ctx.query,
                                     {"limit", "cursor", "starting_after"}))
    return problem(*bad);
  api_error err;
  auto page_req = read_page_request(ctx.query, err);
  if (!page_req)
    return problem(err);
  std::int64_t from = 1; // the store cursor is the next seq to read
  if (const auto& c = page_req->store_cursor; !c.empty()) {
    auto [end, ec] = std::from_chars(c.data(), c.data() + c.size(), from);
    if (ec != std::errc{} || end != c.data() + c.size() || from < 1)
      return problem(validation_error("cursor: not one of ours", 400));
  }
  const subscription_id sid{id};
  auto row = s.db.get_subscription(ctx.tid(), sid);
  if (!row)
    return row.code() == errc::not_found ? not_found(id)
                                         : error_response(row.error());
  auto events = s.db.load_events(ctx.tid(), sid, from);
  if (!events)
    return error_response(events.error());
  ordered_json data = ordered_json::array();
  std::string next;
  for (const auto& e : *events) {
    if (data.size() == page_req->limit) {
      next = std::to_string(e.seq);
      break;
    }
    auto payload = ordered_json::parse(e.payload_json, nullptr, false);
    data.push_back({{"seq", e.seq},
                    {"type", e.type},
                    {"recorded_at", format_iso8601(e.recorded_at)},
                    {"data", payload.is_discarded() ? ordered_json(nullptr)
                                                    : std::move(payload)}});
  }
  return json_response(200, list_body(std::move(data), next));
}

// -- lifecycle commands -------------------------------------------------------

http_response lifecycle(services& s, request_context& ctx,
                        std::string_view command) {
  if (auto no = require_orchestrator(s))
    return *no;
  const auto& id = ctx.param("id");
  if (!is_valid_id(id))
    return not_found(id);
  api_error err;
  auto body = parse_object(ctx.req.body, err, true);
  if (!body)
    return problem(err);
  object_reader in{*body};
  subscription_input input;
  if (command == "cancel") {
    input = sub_in::cancel{in.boolean("at_period_end", false).value_or(false)};
  } else if (command == "pause") {
    input = sub_in::pause{};
  } else if (command == "resume") {
    input = sub_in::resume{};
  } else {
    auto plan = in.id("plan", true);
    auto quantity = in.integer("quantity", false, 1, max_quantity);
    if (plan)
      input = sub_in::change_plan{plan_id{*plan}, quantity.value_or(1)};
  }
  in.reject_unknown();
  if (in.failed())
    return problem(in.error());
  const subscription_id sid{id};
  // The engine says not_found for a subscription that does not exist; a
  // read first tells it apart from an unknown plan, and keeps unknown ids
  // from spawning actors. In recurd it is answered by the read-model cache
  // (subscription_cache.hpp): no PostgreSQL round trip once the
  // subscription has been read or written.
  auto row = s.db.get_subscription(ctx.tid(), sid);
  if (!row)
    return row.code() == errc::not_found ? not_found(id)
                                         : error_response(row.error());
  if (const auto* cp = std::get_if<sub_in::change_plan>(&input))
    if (auto bad = check_plan(s, ctx, cp->plan, nullptr))
      return *bad;
  auto out = run_command(s, ctx, sid, std::move(input));
  if (out.failure)
    return *out.failure;
  spdlog::info("event=subscription_command tenant={} subscription={} "
               "command={} status={} version={}",
               ctx.tid().value, id, command, to_string(out.state.life.status),
               out.state.version);
  return json_response(200, subscription_view(out.state));
}

// -- schemas ------------------------------------------------------------------

ordered_json create_schema() {
  const ordered_json id = {{"type", "string"},
                           {"pattern", "^[A-Za-z0-9_-]{1,64}$"}};
  return {{"type", "object"},
          {"required", {"customer", "plan"}},
          {"additionalProperties", false},
          {"properties",
           {{"id", id},
            {"customer", id},
            {"plan", id},
            {"quantity",
             {{"type", "integer"}, {"minimum", 1}, {"maximum", max_quantity}}},
            {"trial_days",
             {{"type", "integer"},
              {"minimum", 0},
              {"maximum", max_trial_days},
              {"description", "default: the plan's"}}},
            {"payment_method",
             {{"type", "string"},
              {"description", "a gateway token; default: the customer's"}}}}}};
}

ordered_json event_schema() {
  return {{"type", "object"},
          {"properties",
           {{"seq", {{"type", "integer"}}},
            {"type", {{"type", "string"}}},
            {"recorded_at", {{"type", "string"}, {"format", "date-time"}}},
            {"data",
             {{"type", "object"},
              {"description", "the subscription's state after the event"}}}}}};
}

ordered_json list_of(ordered_json item) {
  return {{"type", "object"},
          {"properties",
           {{"data", {{"type", "array"}, {"items", std::move(item)}}},
            {"has_more", {{"type", "boolean"}}},
            {"next_cursor", {{"type", "string"}, {"nullable", true}}}}}};
}

route command_route(services* sp, std::string name, std::string summary,
                    ordered_json request) {
  const std::string pattern = "/v1/subscriptions/{id}/" + name;
  return route{"POST", pattern, auth_kind::tenant,
               [sp, name](request_context& ctx) {
                 return lifecycle(*sp, ctx, name);
               },
               route_doc{std::move(summary), std::move(request),
                         subscription_schema(), 200, {}, "application/json"},
               true, nullptr};
}

ordered_json empty_object() {
  return {{"type", "object"},
          {"additionalProperties", false},
          {"properties", ordered_json::object()}};
}

} // namespace

void add_subscription_routes(router& r, services& s) {
  services* sp = &s;
  r.add(route{"POST", "/v1/subscriptions", auth_kind::tenant,
              [sp](request_context& ctx) {
                return create_subscription(*sp, ctx);
              },
              route_doc{"create a subscription (answered after its events "
                        "are committed)",
                        create_schema(), subscription_schema(), 201, {},
                        "application/json"},
              true, nullptr});
  r.add(route{"GET", "/v1/subscriptions", auth_kind::tenant,
              [sp](request_context& ctx) {
                return list_subscriptions(*sp, ctx);
              },
              route_doc{"subscriptions, by id, filtered by status and customer",
                        nullptr,
                        list_of(subscription_schema()),
                        200,
                        {"status", "customer", "limit", "cursor"},
                        "application/json"},
              true, nullptr});
  r.add(route{"GET", "/v1/subscriptions/{id}", auth_kind::tenant,
              [sp](request_context& ctx) {
                return get_subscription(*sp, ctx);
              },
              route_doc{"one subscription", nullptr, subscription_schema(),
                        200, {}, "application/json"},
              true, nullptr});
  r.set_fast("GET", "/v1/subscriptions/{id}", [sp](request_context& ctx) {
    return get_subscription_cached(*sp, ctx);
  });
  r.add(route{"GET", "/v1/subscriptions/{id}/events", auth_kind::tenant,
              [sp](request_context& ctx) { return list_events(*sp, ctx); },
              route_doc{"a subscription's events, oldest first", nullptr,
                        list_of(event_schema()), 200, {"limit", "cursor"},
                        "application/json"},
              true, nullptr});
  r.add(command_route(
    sp, "cancel",
    "cancel now (prorated credit) or at the end of the period",
    {{"type", "object"},
     {"additionalProperties", false},
     {"properties", {{"at_period_end", {{"type", "boolean"},
                                        {"default", false}}}}}}));
  r.add(command_route(sp, "pause", "pause an active subscription",
                      empty_object()));
  r.add(command_route(sp, "resume", "resume a paused subscription",
                      empty_object()));
  r.add(command_route(
    sp, "change-plan", "move to another plan (prorated)",
    {{"type", "object"},
     {"required", {"plan"}},
     {"additionalProperties", false},
     {"properties",
      {{"plan", {{"type", "string"}}},
       {"quantity",
        {{"type", "integer"}, {"minimum", 1}, {"maximum", max_quantity}}}}}}));
}

} // namespace recur::api
