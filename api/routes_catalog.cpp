// Plans: versioned price books in the JSON of sagas/catalog_codec.hpp.
//
//   POST /v1/plans       {id, <plan version fields>} → 201 {id, <version>}
//                        The first POST of an id creates version 1; each
//                        later one adds the next version. `version` may be
//                        left out (it is the next one) and `effective_at`
//                        too (it is now); it must come after the previous
//                        version's, in the same currency.
//   GET  /v1/plans       the latest version of every plan, paged by plan id
//   GET  /v1/plans/{id}  {id, versions: [...]} oldest first

#include <spdlog/spdlog.h>

#include "api/json_io.hpp"
#include "api/pagination.hpp"
#include "api/routes.hpp"
#include "api/tenant_env.hpp"
#include "domain/catalog.hpp"
#include "sagas/catalog_codec.hpp"

namespace recur::api {

namespace {

// {"id": plan, …the stored version document…}.
ordered_json plan_json(const plan_version_record& v) {
  ordered_json out = {{"id", v.plan.value}};
  auto doc = ordered_json::parse(v.data_json, nullptr, false);
  if (doc.is_object())
    for (auto it = doc.begin(); it != doc.end(); ++it)
      out[it.key()] = it.value();
  return out;
}

// The plan as the domain sees it, from its stored versions.
result<plan> load_plan(const plan_id& id,
                       const std::vector<plan_version_record>& stored) {
  plan p{id, id.value};
  for (const auto& rec : stored) {
    auto v = plan_version_from_json(rec.data_json);
    if (!v)
      return make_error(errc::storage_error,
                        "stored plan " + id.value + " version "
                          + std::to_string(rec.version)
                          + " is unreadable: " + v.error().detail);
    if (auto st = p.add_version(std::move(*v)); !st)
      return make_error(errc::storage_error,
                        "stored plan " + id.value
                          + " is inconsistent: " + st.error().detail);
  }
  return p;
}

http_response create_plan_version(services& s, request_context& ctx) {
  api_error err;
  auto body = parse_object(ctx.req.body, err);
  if (!body)
    return problem(err);
  object_reader in{*body};
  auto id = in.id("id", true);
  if (in.failed())
    return problem(in.error());
  const plan_id pid{*id};
  auto stored = s.db.list_plan_versions(ctx.tid(), pid);
  if (!stored)
    return error_response(stored.error());
  if (stored->size() >= max_plan_versions)
    return problem(validation_error("id: plan " + *id + " already has "
                                    + std::to_string(max_plan_versions)
                                    + " versions"));
  const auto next = static_cast<std::int64_t>(stored->size()) + 1;
  if (auto v = body->find("version"); v != body->end() && !v->is_null()) {
    if (!v->is_number_integer())
      return problem(validation_error("version: must be an integer"));
    if (v->get<std::int64_t>() != next)
      return problem({409, "conflict",
                      "plan " + *id + " has " + std::to_string(stored->size())
                        + " version(s): the next one is "
                        + std::to_string(next)});
  }
  body->erase("id");
  (*body)["version"] = next;
  if (!body->contains("effective_at"))
    (*body)["effective_at"] = format_iso8601(ctx.now);
  auto version = plan_version_from_json(body->dump());
  if (!version)
    return error_response(version.error());
  auto current = load_plan(pid, *stored);
  if (!current)
    return error_response(current.error());
  if (auto st = current->add_version(*version); !st)
    return error_response(st.error());
  const plan_version_record rec{pid, version->version, version->effective_at,
                                plan_version_to_json(*version)};
  if (auto st = s.db.add_plan_version(ctx.tid(), rec); !st)
    return error_response(st.error());
  if (s.envs != nullptr) // the subscription actors' catalog reloads
    s.envs->invalidate(ctx.tid());
  spdlog::info("event=plan_version_added tenant={} plan={} version={}",
               ctx.tid().value, *id, rec.version);
  return json_response(201, plan_json(rec));
}

http_response list_plans(services& s, request_context& ctx) {
  if (auto bad = unknown_query_param(ctx.query,
                                     {"limit", "cursor", "starting_after"}))
    return problem(*bad);
  api_error err;
  auto page_req = read_page_request(ctx.query, err);
  if (!page_req)
    return problem(err);
  auto page = s.db.list_plans(ctx.tid(), page_req->store_cursor,
                              page_req->limit);
  if (!page)
    return error_response(page.error());
  ordered_json data = ordered_json::array();
  for (const auto& v : page->items)
    data.push_back(plan_json(v));
  return json_response(200, list_body(std::move(data), page->next_cursor));
}

http_response get_plan(services& s, request_context& ctx) {
  const auto& id = ctx.param("id");
  if (!is_valid_id(id))
    return problem({404, "not_found", "no plan '" + id + "'"});
  auto stored = s.db.list_plan_versions(ctx.tid(), plan_id{id});
  if (!stored)
    return error_response(stored.error());
  if (stored->empty())
    return problem({404, "not_found", "no plan '" + id + "'"});
  ordered_json versions = ordered_json::array();
  for (const auto& v : *stored) {
    auto j = plan_json(v);
    j.erase("id");
    versions.push_back(std::move(j));
  }
  return json_response(200, {{"id", id}, {"versions", std::move(versions)}});
}

// -- schemas ------------------------------------------------------------------

ordered_json pricing_schema() {
  return {
    {"type", "object"},
    {"required", {"kind"}},
    {"properties",
     {{"kind",
       {{"type", "string"},
        {"enum", {"flat", "per_unit", "tiered", "volume"}}}},
      {"flat_amount", {{"type", "integer"}, {"minimum", 0}}},
      {"unit_amount", {{"type", "integer"}, {"minimum", 0}}},
      {"tiers",
       {{"type", "array"},
        {"items",
         {{"type", "object"},
          {"properties",
           {{"up_to", {{"type", "integer"}, {"nullable", true}}},
            {"unit_amount", {{"type", "integer"}, {"minimum", 0}}},
            {"flat_amount", {{"type", "integer"}, {"minimum", 0}}}}}}}}}}}};
}

ordered_json version_properties(bool with_id) {
  ordered_json props = ordered_json::object();
  if (with_id)
    props["id"] = {{"type", "string"}, {"pattern", "^[A-Za-z0-9_-]{1,64}$"}};
  props["version"] = {{"type", "integer"}, {"minimum", 1}};
  props["effective_at"] = {{"type", "string"}, {"format", "date-time"}};
  props["currency"] = {{"type", "string"}, {"pattern", "^[A-Z]{3}$"}};
  props["interval"]
    = {{"type", "object"},
       {"required", {"unit", "count"}},
       {"properties",
        {{"unit",
          {{"type", "string"}, {"enum", {"day", "week", "month", "year"}}}},
         {"count", {{"type", "integer"}, {"minimum", 1}}}}}};
  props["trial_days"] = {{"type", "integer"}, {"minimum", 0}, {"maximum", 730}};
  props["base"] = pricing_schema();
  props["metered"]
    = {{"type", "array"},
       {"items",
        {{"type", "object"},
         {"required", {"meter", "included_quantity", "overage"}},
         {"properties",
          {{"meter", {{"type", "string"}, {"maxLength", 100}}},
           {"included_quantity", {{"type", "integer"}, {"minimum", 0}}},
           {"overage", pricing_schema()}}}}}};
  return props;
}

ordered_json plan_schema() {
  return {{"type", "object"}, {"properties", version_properties(true)}};
}

ordered_json list_schema(ordered_json item) {
  return {{"type", "object"},
          {"properties",
           {{"data", {{"type", "array"}, {"items", std::move(item)}}},
            {"has_more", {{"type", "boolean"}}},
            {"next_cursor", {{"type", "string"}, {"nullable", true}}}}}};
}

} // namespace

void add_catalog_routes(router& r, services& s) {
  services* sp = &s;
  r.add(
    route{"POST", "/v1/plans", auth_kind::tenant,
          [sp](request_context& ctx) { return create_plan_version(*sp, ctx); },
          route_doc{"create a plan, or add the next version of an existing one",
                    {{"type", "object"},
                     {"required", {"id", "currency", "interval", "base"}},
                     {"additionalProperties", false},
                     {"properties", version_properties(true)}},
                    plan_schema(),
                    201,
                    {},
                    "application/json"},
          true, nullptr});
  r.add(route{"GET", "/v1/plans", auth_kind::tenant,
              [sp](request_context& ctx) { return list_plans(*sp, ctx); },
              route_doc{"the latest version of every plan, by plan id",
                        nullptr,
                        list_schema(plan_schema()),
                        200,
                        {"limit", "cursor", "starting_after"},
                        "application/json"},
              true, nullptr});
  r.add(route{"GET", "/v1/plans/{id}", auth_kind::tenant,
              [sp](request_context& ctx) { return get_plan(*sp, ctx); },
              route_doc{"every version of one plan, oldest first",
                        nullptr,
                        {{"type", "object"},
                         {"properties",
                          {{"id", {{"type", "string"}}},
                           {"versions",
                            {{"type", "array"},
                             {"items",
                              {{"type", "object"},
                               {"properties", version_properties(false)}}}}}}}},
                        200,
                        {},
                        "application/json"},
              true, nullptr});
}

} // namespace recur::api
