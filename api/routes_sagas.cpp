// Sagas: the inspection trail of what the subscription actors did.
//
//   GET  /v1/sagas?status=&type=   ordered by (created_at, id)
//   GET  /v1/sagas/{id}            with its step log, oldest first. Saga ids
//                                  hold '/' ("sub_1/invoice/3"): clients
//                                  percent-encode them ("sub_1%2Finvoice%2F3").
//   POST /v1/sagas/{id}/retry
//        Operator: a saga waiting on a retry/backoff timer runs its next
//        attempt now (a new attempt key: a charged key is never reused); one
//        waiting on a charge outcome asks the gateway now under the same key;
//        a compensation waiting to be retried runs again under its key.
//   POST /v1/sagas/{id}/compensate
//        Operator: aborts a live invoice, payment or plan-change saga and
//        runs its compensations (void the invoice, reverse the receivable,
//        revert the plan); the subscription follows as for a void invoice.
//   Both go through the saga's subscription actor (sub_in::retry_saga /
//   compensate_saga) and answer after the commit with the saga and its
//   step log (once a gateway call they issued has its outcome, waiting at
//   most 10 s; else the saga as committed, `running`). 409
//   invalid_transition with nothing changed for a saga that is finished
//   (completed, compensated, failed), has a call in flight, is compensating
//   already, waits on its schedule (dunning: pay or void the invoice
//   instead), or — compensate — is dunning, suspension or cancellation,
//   whose undo belongs to the lifecycle.

#include <algorithm>
#include <chrono>
#include <thread>

#include <spdlog/spdlog.h>

#include "api/billing_common.hpp"
#include "api/pagination.hpp"
#include "api/route_replies.hpp"

namespace recur::api {

namespace {

constexpr std::size_t max_saga_type_bytes = 32;
constexpr std::chrono::milliseconds outcome_wait{10'000};

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
  return list_response(page, [](const auto& g) { return saga_view(g); });
}

http_response get_saga(services& s, request_context& ctx) {
  const auto& id = ctx.param("id");
  if (!is_valid_ref(id))
    return no_such("saga", id);
  auto g = s.db.get_saga(ctx.tid(), saga_id{id});
  if (!g)
    return read_failure(g.error(), "saga", id);
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

// A command that issued a gateway call answers with its outcome when it
// comes within `outcome_wait` (the saga leaves `running`); else with the
// saga as committed, still running.
void wait_while_running(services& s, const tenant_id& t, const saga_id& id) {
  const auto deadline = std::chrono::steady_clock::now() + outcome_wait;
  auto pause = std::chrono::milliseconds{2};
  while (std::chrono::steady_clock::now() < deadline) {
    auto g = s.db.get_saga(t, id);
    if (!g || g->status != saga_status::running)
      return;
    std::this_thread::sleep_for(pause);
    pause = std::min(pause * 2, std::chrono::milliseconds{50});
  }
}

http_response operator_command(services& s, request_context& ctx,
                               const std::string& what) {
  if (auto no = require_orchestrator(s))
    return *no;
  const auto& id = ctx.param("id");
  if (!is_valid_ref(id))
    return no_such("saga", id);
  if (auto bad = refuse_fields(ctx.req))
    return *bad;
  auto g = s.db.get_saga(ctx.tid(), saga_id{id});
  if (!g)
    return read_failure(g.error(), "saga", id);
  if (is_finished(g->status))
    return problem({409, "invalid_transition",
                    "saga '" + id + "' is "
                      + std::string{to_string(g->status)}
                      + ": an operator can only " + what + " a live saga"});
  subscription_input input;
  if (what == "retry")
    input = sub_in::retry_saga{saga_id{id}};
  else
    input = sub_in::compensate_saga{saga_id{id}};
  auto done = run_command(s, ctx, g->subscription, std::move(input));
  if (done.failure)
    return *done.failure;
  spdlog::info("event=saga_operator_command tenant={} saga={} command={}",
               ctx.tid().value, id, what);
  wait_while_running(s, ctx.tid(), saga_id{id});
  return get_saga(s, ctx);
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
                route_doc{name == "retry"
                            ? "operator: run a waiting saga's next attempt "
                              "now (a new key), or ask the gateway now for "
                              "an awaited charge outcome; answers with the "
                              "saga after the commit; 409 invalid_transition "
                              "when it is finished, busy or waits on its "
                              "schedule"
                            : "operator: abort a live invoice, payment or "
                              "plan-change saga and run its compensations; "
                              "answers with the saga after the commit; 409 "
                              "invalid_transition when it is finished, busy, "
                              "or a dunning/suspension/cancellation saga",
                          {{"type", "object"},
                           {"additionalProperties", false},
                           {"properties", ordered_json::object()}},
                          saga_schema(true), 200, {}, "application/json"},
                true, nullptr});
  }
}

} // namespace recur::api
