// Invoices: read from the store; paying goes through the subscription actor
// (sub_in::pay_invoice), which owns its invoices.
//
//   GET  /v1/invoices?subscription=   paged by invoice id
//   GET  /v1/invoices/{id}            with its payment attempts
//   POST /v1/invoices/{id}/pay {payment_method?}
//        Collects an open invoice now. The card is the body's
//        payment_method, else the customer's current one (so "PATCH the
//        customer's card, then pay" works); when it differs from the
//        subscription's, the subscription's card is updated first. Waits (up
//        to pay_wait) for the charge's outcome: 200 the paid invoice; 402
//        payment_failed when the card was declined (the invoice stays open
//        and dunning goes on); 202 the open invoice when the outcome is not
//        known yet (an async payment settles by webhook). An invoice that is
//        not open, or is being collected, is 409 invalid_transition.
//   POST /v1/invoices/{id}/void
//        Voids an open invoice through its subscription actor
//        (sub_in::void_invoice) and answers after the commit with the void
//        invoice: its collection ends (retry timers cancelled, dunning
//        forgets it, a plan change it belongs to is compensated), the
//        receivable is reversed, `invoice.voided` goes out. With nothing left
//        to collect, a past_due/suspended subscription becomes active again
//        and an incomplete one expires (Stripe's behaviour when the last open
//        invoice is voided). An invoice that is not open, or has a charge in
//        flight, is 409 invalid_transition with nothing changed.

#include <thread>

#include <spdlog/spdlog.h>

#include "api/billing_common.hpp"
#include "api/pagination.hpp"
#include "api/route_replies.hpp"

namespace recur::api {

namespace {

constexpr std::chrono::milliseconds pay_wait{10'000};
constexpr std::size_t max_token_bytes = 255;

ordered_json invoice_view(const invoice_record& i) {
  auto lines = ordered_json::parse(i.lines_json, nullptr, false);
  return {{"id", i.id.value},
          {"subscription", i.subscription.value},
          {"status", i.status},
          {"currency", i.currency},
          {"total_minor", i.total_minor},
          {"amount_due_minor", i.amount_due_minor},
          {"amount_paid_minor", i.amount_paid_minor},
          {"period_start", format_iso8601(i.period_start)},
          {"period_end", format_iso8601(i.period_end)},
          {"lines", lines.is_discarded() ? ordered_json::array()
                                         : std::move(lines)},
          {"version", i.version},
          {"created_at", format_iso8601(i.created_at)},
          {"updated_at", format_iso8601(i.updated_at)}};
}

ordered_json attempt_view(const payment_attempt_record& a) {
  return {{"id", a.id.value},
          {"attempt_no", a.attempt_no},
          {"status", a.status},
          {"amount_minor", a.amount_minor},
          {"currency", a.currency},
          {"decline_code", a.decline_code.empty()
                             ? ordered_json(nullptr)
                             : ordered_json(a.decline_code)},
          {"created_at", format_iso8601(a.created_at)},
          {"updated_at", format_iso8601(a.updated_at)}};
}

// The invoice with its attempts, oldest first.
result<ordered_json> full_view(services& s, const tenant_id& t,
                               const invoice_record& i) {
  auto attempts = s.db.list_attempts(t, i.id);
  if (!attempts)
    return attempts.error();
  auto out = invoice_view(i);
  ordered_json list = ordered_json::array();
  for (const auto& a : *attempts)
    list.push_back(attempt_view(a));
  out["attempts"] = std::move(list);
  return out;
}

http_response list_invoices(services& s, request_context& ctx) {
  if (auto bad = unknown_query_param(
        ctx.query, {"limit", "cursor", "starting_after", "subscription"}))
    return problem(*bad);
  api_error err;
  auto page_req = read_page_request(ctx.query, err);
  if (!page_req)
    return problem(err);
  std::optional<subscription_id> sub;
  if (auto q = ctx.query_value("subscription")) {
    if (!is_valid_id(*q))
      return problem(validation_error("subscription: not an id", 400));
    sub = subscription_id{std::string{*q}};
  }
  auto page = s.db.list_invoices(ctx.tid(), sub, page_req->store_cursor,
                                 page_req->limit);
  return list_response(page, [](const auto& i) { return invoice_view(i); });
}

http_response get_invoice(services& s, request_context& ctx) {
  const auto& id = ctx.param("id");
  if (!is_valid_ref(id))
    return no_such("invoice", id);
  auto inv = s.db.get_invoice(ctx.tid(), invoice_id{id});
  if (!inv)
    return read_failure(inv.error(), "invoice", id);
  auto view = full_view(s, ctx.tid(), *inv);
  if (!view)
    return error_response(view.error());
  return json_response(200, *view);
}

// Whether the subscription still collects invoice `inv` (a payment saga or
// a charge of it in flight), read from the committed read model.
result<bool> collecting(services& s, const tenant_id& t,
                        const subscription_id& sub, const std::string& inv) {
  auto row = s.db.get_subscription(t, sub);
  if (!row)
    return row.error();
  auto st = subscription_from_json(row->data_json);
  if (!st)
    return st.error();
  for (const auto& [id, type] : st->sagas)
    if (type == "payment")
      return true;
  for (const auto& o : st->open_invoices)
    if (o.id.value == inv)
      return !o.collecting_saga.empty();
  return false;
}

// Polls (bounded) until the payment started for `inv` has an outcome.
bool wait_for_outcome(services& s, const tenant_id& t,
                      const subscription_id& sub, const std::string& inv) {
  const auto deadline = std::chrono::steady_clock::now() + pay_wait;
  auto pause = std::chrono::milliseconds{2};
  while (std::chrono::steady_clock::now() < deadline) {
    auto busy = collecting(s, t, sub, inv);
    if (busy && !*busy)
      return true;
    std::this_thread::sleep_for(pause);
    pause = std::min(pause * 2, std::chrono::milliseconds{50});
  }
  return false;
}

http_response pay_invoice(services& s, request_context& ctx) {
  if (auto no = require_orchestrator(s))
    return *no;
  const auto& id = ctx.param("id");
  if (!is_valid_ref(id))
    return no_such("invoice", id);
  api_error err;
  auto body = parse_object(ctx.req.body, err, true);
  if (!body)
    return problem(err);
  object_reader in{*body};
  auto pm = in.id("payment_method", false, max_token_bytes);
  in.reject_unknown();
  if (in.failed())
    return problem(in.error());
  auto inv = s.db.get_invoice(ctx.tid(), invoice_id{id});
  if (!inv)
    return read_failure(inv.error(), "invoice", id);
  if (inv->status != "open")
    return problem({409, "invalid_transition",
                    "invoice '" + id + "' is " + inv->status + ", not open"});
  auto row = s.db.get_subscription(ctx.tid(), inv->subscription);
  if (!row)
    return error_response(row.error());
  auto sub = subscription_from_json(row->data_json);
  if (!sub)
    return error_response(make_error(errc::storage_error, sub.error().detail));
  std::string card = pm ? *pm : "";
  if (card.empty()) {
    auto cust = s.db.get_customer(ctx.tid(), sub->customer);
    if (cust)
      if (auto f = read_customer(*cust); f && f->payment_method)
        card = *f->payment_method;
  }
  if (!card.empty() && card != sub->payment_method) {
    auto updated = run_command(s, ctx, inv->subscription,
                               sub_in::update_payment_method{card});
    if (updated.failure)
      return *updated.failure;
  }
  auto paid = run_command(s, ctx, inv->subscription,
                          sub_in::pay_invoice{invoice_id{id}});
  if (paid.failure)
    return *paid.failure;
  spdlog::info("event=invoice_pay_requested tenant={} invoice={} "
               "subscription={}",
               ctx.tid().value, id, inv->subscription.value);
  const bool known = wait_for_outcome(s, ctx.tid(), inv->subscription, id);
  auto after = s.db.get_invoice(ctx.tid(), invoice_id{id});
  if (!after)
    return error_response(after.error());
  auto view = full_view(s, ctx.tid(), *after);
  if (!view)
    return error_response(view.error());
  if (after->status == "paid")
    return json_response(200, *view);
  if (!known)
    return json_response(202, *view);
  std::string code = "declined";
  if (!(*view)["attempts"].empty())
    if (const auto& last = (*view)["attempts"].back();
        last["decline_code"].is_string())
      code = last["decline_code"].get<std::string>();
  return problem({402, "payment_failed",
                  "invoice '" + id + "' was not paid: " + code});
}

http_response void_invoice(services& s, request_context& ctx) {
  if (auto no = require_orchestrator(s))
    return *no;
  const auto& id = ctx.param("id");
  if (!is_valid_ref(id))
    return no_such("invoice", id);
  if (auto bad = refuse_fields(ctx.req))
    return *bad;
  auto inv = s.db.get_invoice(ctx.tid(), invoice_id{id});
  if (!inv)
    return read_failure(inv.error(), "invoice", id);
  if (inv->status != "open")
    return problem({409, "invalid_transition",
                    "invoice '" + id + "' is " + inv->status + ", not open"});
  auto voided = run_command(s, ctx, inv->subscription,
                            sub_in::void_invoice{invoice_id{id}});
  if (voided.failure)
    return *voided.failure;
  spdlog::info("event=invoice_voided tenant={} invoice={} subscription={}",
               ctx.tid().value, id, inv->subscription.value);
  auto after = s.db.get_invoice(ctx.tid(), invoice_id{id});
  if (!after)
    return error_response(after.error());
  auto view = full_view(s, ctx.tid(), *after);
  if (!view)
    return error_response(view.error());
  return json_response(200, *view);
}

ordered_json invoice_schema(bool with_attempts) {
  const ordered_json str = {{"type", "string"}};
  const ordered_json integer = {{"type", "integer"}};
  const ordered_json time = {{"type", "string"}, {"format", "date-time"}};
  ordered_json props = {
    {"id", str},
    {"subscription", str},
    {"status",
     {{"type", "string"},
      {"enum", {"draft", "open", "paid", "void", "uncollectible"}}}},
    {"currency", str},
    {"total_minor", integer},
    {"amount_due_minor", integer},
    {"amount_paid_minor", integer},
    {"period_start", time},
    {"period_end", time},
    {"lines", {{"type", "array"}, {"items", {{"type", "object"}}}}},
    {"version", integer},
    {"created_at", time},
    {"updated_at", time}};
  if (with_attempts)
    props["attempts"]
      = {{"type", "array"},
         {"items",
          {{"type", "object"},
           {"properties",
            {{"id", str},
             {"attempt_no", integer},
             {"status", str},
             {"amount_minor", integer},
             {"currency", str},
             {"decline_code", {{"type", "string"}, {"nullable", true}}},
             {"created_at", time},
             {"updated_at", time}}}}}};
  return {{"type", "object"}, {"properties", std::move(props)}};
}

} // namespace

void add_invoice_routes(router& r, services& s) {
  services* sp = &s;
  r.add(route{"GET", "/v1/invoices", auth_kind::tenant,
              [sp](request_context& ctx) { return list_invoices(*sp, ctx); },
              route_doc{"invoices, by id, optionally of one subscription",
                        nullptr,
                        {{"type", "object"},
                         {"properties",
                          {{"data",
                            {{"type", "array"},
                             {"items", invoice_schema(false)}}},
                           {"has_more", {{"type", "boolean"}}},
                           {"next_cursor",
                            {{"type", "string"}, {"nullable", true}}}}}},
                        200,
                        {"subscription", "limit", "cursor"},
                        "application/json"},
              true, nullptr});
  r.add(route{"GET", "/v1/invoices/{id}", auth_kind::tenant,
              [sp](request_context& ctx) { return get_invoice(*sp, ctx); },
              route_doc{"one invoice with its payment attempts", nullptr,
                        invoice_schema(true), 200, {}, "application/json"},
              true, nullptr});
  r.add(route{
    "POST", "/v1/invoices/{id}/pay", auth_kind::tenant,
    [sp](request_context& ctx) { return pay_invoice(*sp, ctx); },
    route_doc{"collect an open invoice now (with the body's card, else the "
              "customer's current one): 200 paid, 402 payment_failed when "
              "declined, 202 when the outcome is still pending",
              {{"type", "object"},
               {"additionalProperties", false},
               {"properties",
                {{"payment_method",
                  {{"type", "string"},
                   {"description", "a gateway token, e.g. pm_card_visa"}}}}}},
              invoice_schema(true),
              200,
              {},
              "application/json"},
    true, nullptr});
  r.add(route{"POST", "/v1/invoices/{id}/void", auth_kind::tenant,
              [sp](request_context& ctx) { return void_invoice(*sp, ctx); },
              route_doc{"void an open invoice: its collection ends, the "
                        "receivable is reversed; 409 invalid_transition when "
                        "it is not open or a charge of it is in flight",
                        {{"type", "object"},
                         {"additionalProperties", false},
                         {"properties", ordered_json::object()}},
                        invoice_schema(true), 200, {}, "application/json"},
              true, nullptr});
}

} // namespace recur::api
