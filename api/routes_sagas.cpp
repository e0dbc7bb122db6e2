// Sagas: the inspection trail of what the subscription actors did.
//
//   GET  /v1/sagas?status=&type=   ordered by (created_at, id)
//   GET  /v1/sagas/{id}            with its step log, oldest first. Saga ids
//                                  hold '/' ("sub_1/invoice/3"): clients
//                                  percent-encode them ("sub_1%2Finvoice%2F3").
//   POST /v1/sagas/{id}/retry · /compensate
//        409 not_supported: the engine has no operator inputs for sagas
//        (a failed saga is resolved by the subscription's own commands, e.g.
//        paying or canceling); nothing is faked.

#include "api/billing_common.hpp"
#include "api/pagination.hpp"

namespace recur::api {

namespace {

constexpr std::size_t max_saga_type_bytes = 32;

http_response not_found(const std::string& id) {
  return problem({404, "not_found", "no saga '" + id + "'"});
}

ordered_json parsed(const std::string& text) {
  auto doc = ordered_json::parse(text, nullptr, false);
  return doc.is_discarded() ? ordered_json(text) : doc;
}

ordered_json saga_view(const saga_record& g) {
  return {{"id", g.id.value},
          {"type", g.type},
          {"subscription", g.subscription.value},
          {"status", std::string{to_string(g.status)}},
          {"step", g.step},
          {"version", g.version},
          {"data", parsed(g.data_json)},
          {"created_at", format_iso8601(g.created_at)},
          {"updated_at", format_iso8601(g.updated_at)}};
}

ordered_json step_view(const saga_step_record& st) {
  return {{"seq", st.seq},
          {"step", st.step},
          {"kind", std::string{to_string(st.kind)}},
          {"name", st.name},
          {"outcome", st.outcome},
          {"detail", st.detail},
          {"at", format_iso8601(st.at)}};
}

http_response list_sagas(services& s, request_context& ctx) {
  if (auto bad = unknown_query_param(
        ctx.query, {"limit", "cursor", "starting_after", "status", "type"}))
    return problem(*bad);
  api_error err;
  auto page_req = read_page_request(ctx.query, err);
  if (!page_req)
    return problem(err);
  saga_filter f;
  if (auto q = ctx.query_value("status")) {
    auto st = saga_status_from_string(*q);
    if (!st)
      return problem(validation_error(
        "status: must be one of running, waiting, compensating, completed, "
        "compensated, failed",
        400));
    f.status = *st;
  }
  if (auto q = ctx.query_value("type")) {
    if (!is_valid_id(*q, max_saga_type_bytes))
      return problem(validation_error("type: not a saga type", 400));
    f.type = std::string{*q};
  }
  auto page = s.db.list_sagas(ctx.tid(), f, page_req->store_cursor,
                              page_req->limit);
  if (!page)
    return error_response(page.error());
  ordered_json data = ordered_json::array();
  for (const auto& g : page->items)
    data.push_back(saga_view(g));
  return json_response(200, list_body(std::move(data), page->next_cursor));
}

http_response get_saga(services& s, request_context& ctx) {
  const auto& id = ctx.param("id");
  if (!is_valid_ref(id))
    return not_found(id);
  auto g = s.db.get_saga(ctx.tid(), saga_id{id});
  if (!g)
    return g.code() == errc::not_found ? not_found(id)
                                       : error_response(g.error());
  auto steps = s.db.load_saga_steps(ctx.tid(), saga_id{id});
  if (!steps)
    return error_response(steps.error());
  auto out = saga_view(*g);
  ordered_json list = ordered_json::array();
  for (const auto& st : *steps)
    list.push_back(step_view(st));
  out["steps"] = std::move(list);
  return json_response(200, out);
}

http_response operator_command(services& s, request_context& ctx,
                               std::string_view what) {
  const auto& id = ctx.param("id");
  if (!is_valid_ref(id))
    return not_found(id);
  auto g = s.db.get_saga(ctx.tid(), saga_id{id});
  if (!g)
    return g.code() == errc::not_found ? not_found(id)
                                       : error_response(g.error());
  return problem({409, "not_supported",
                  std::string{what}
                    + " of a saga by an operator is not supported by the "
                      "engine: sagas retry on their own policy and are "
                      "compensated by their subscription's commands (pay "
                      "the invoice, cancel the subscription)"});
}

ordered_json saga_schema(bool with_steps) {
  const ordered_json str = {{"type", "string"}};
  const ordered_json integer = {{"type", "integer"}};
  const ordered_json time = {{"type", "string"}, {"format", "date-time"}};
  ordered_json props = {
    {"id", str},
    {"type",
     {{"type", "string"},
      {"enum",
       {"invoice", "dunning", "suspension", "plan_change", "cancellation",
        "payment"}}}},
    {"subscription", str},
    {"status",
     {{"type", "string"},
      {"enum",
       {"running", "waiting", "compensating", "completed", "compensated",
        "failed"}}}},
    {"step", integer},
    {"version", integer},
    {"data", {{"type", "object"}}},
    {"created_at", time},
    {"updated_at", time}};
  if (with_steps)
    props["steps"] = {{"type", "array"},
                      {"items",
                       {{"type", "object"},
                        {"properties",
                         {{"seq", integer},
                          {"step", integer},
                          {"kind",
                           {{"type", "string"},
                            {"enum", {"action", "compensation"}}}},
                          {"name", str},
                          {"outcome", str},
                          {"detail", str},
                          {"at", time}}}}}};
  return {{"type", "object"}, {"properties", std::move(props)}};
}

} // namespace

void add_saga_routes(router& r, services& s) {
  services* sp = &s;
  r.add(route{"GET", "/v1/sagas", auth_kind::tenant,
              [sp](request_context& ctx) { return list_sagas(*sp, ctx); },
              route_doc{"sagas, oldest first, filtered by status and type",
                        nullptr,
                        {{"type", "object"},
                         {"properties",
                          {{"data",
                            {{"type", "array"}, {"items", saga_schema(false)}}},
                           {"has_more", {{"type", "boolean"}}},
                           {"next_cursor",
                            {{"type", "string"}, {"nullable", true}}}}}},
                        200,
                        {"status", "type", "limit", "cursor"},
                        "application/json"},
              true, nullptr});
  r.add(route{"GET", "/v1/sagas/{id}", auth_kind::tenant,
              [sp](request_context& ctx) { return get_saga(*sp, ctx); },
              route_doc{"one saga with its step log (percent-encode the '/' "
                        "of saga ids)",
                        nullptr, saga_schema(true), 200, {},
                        "application/json"},
              true, nullptr});
  for (const char* what : {"retry", "compensate"}) {
    const std::string name = what;
    r.add(route{"POST", "/v1/sagas/{id}/" + name, auth_kind::tenant,
                [sp, name](request_context& ctx) {
                  return operator_command(*sp, ctx, name);
                },
                route_doc{"not supported by the engine: always 409 "
                          "not_supported (404 for an unknown saga)",
                          nullptr, nullptr, 409, {}, "application/json"},
                true, nullptr});
  }
}

} // namespace recur::api
