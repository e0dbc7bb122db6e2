// Helpers of the billing route files (billing_common.hpp).

#include "api/billing_common.hpp"

#include <algorithm>

#include "workflows/lifecycle.hpp"

namespace recur::api {

std::optional<http_response> require_orchestrator(const services& s) {
  if (s.orch == nullptr || s.envs == nullptr)
    return problem({503, "unavailable",
                    "the subscription engine is not running in this process"});
  return std::nullopt;
}

command_outcome run_command(services& s, const request_context& ctx,
                            const subscription_id& id,
                            subscription_input input) {
  auto fut = s.orch->call({ctx.tid(), id, std::move(input)}, command_timeout);
  // The orchestrator answers every call (reply, error or its own timeout);
  // the extra second only guards against a lost answer.
  if (fut.wait_for(command_timeout + std::chrono::seconds{1})
      != std::future_status::ready)
    return {problem({503, "unavailable", "the subscription did not answer"}),
            {}};
  auto reply = fut.get();
  if (reply.failure)
    return {error_response(*reply.failure), std::move(reply.state)};
  return {std::nullopt, std::move(reply.state)};
}

namespace {

ordered_json nullable_time(const std::optional<instant>& t) {
  return t ? ordered_json(format_iso8601(*t)) : ordered_json(nullptr);
}

ordered_json reason(std::string_view r) {
  return r == "none" ? ordered_json(nullptr) : ordered_json(std::string{r});
}

} // namespace

ordered_json subscription_view(const subscription_state& st) {
  ordered_json open = ordered_json::array();
  for (const auto& o : st.open_invoices)
    open.push_back(o.id.value);
  ordered_json sagas = ordered_json::array();
  for (const auto& [id, type] : st.sagas)
    sagas.push_back({{"id", id}, {"type", type}});
  return {
    {"id", st.id.value},
    {"customer", st.customer.value},
    {"plan", st.plan.value},
    {"plan_version", st.plan_version},
    {"quantity", st.quantity},
    {"currency", st.currency},
    {"status", std::string{to_string(st.life.status)}},
    {"cancel_at_period_end", st.life.cancel_at_period_end},
    {"cancel_reason", reason(to_string(st.life.cancel))},
    {"pause_reason", reason(to_string(st.life.pause))},
    {"payment_method",
     st.payment_method.empty() ? ordered_json(nullptr)
                               : ordered_json(st.payment_method)},
    {"interval",
     {{"unit", std::string{to_string(st.interval.unit)}},
      {"count", st.interval.count}}},
    {"current_period_start", format_iso8601(st.period.start)},
    {"current_period_end", format_iso8601(st.period.end)},
    {"trial_end", nullable_time(st.trial_end)},
    {"entitled", st.entitled},
    {"credit_minor", st.credit_minor},
    {"open_invoices", std::move(open)},
    {"live_sagas", std::move(sagas)},
    {"version", st.version},
    {"created_at", format_iso8601(st.created_at)},
    {"updated_at", format_iso8601(st.updated_at)},
  };
}

ordered_json subscription_schema() {
  const ordered_json str = {{"type", "string"}};
  const ordered_json nstr = {{"type", "string"}, {"nullable", true}};
  const ordered_json integer = {{"type", "integer"}};
  const ordered_json time = {{"type", "string"}, {"format", "date-time"}};
  return {
    {"type", "object"},
    {"properties",
     {{"id", str},
      {"customer", str},
      {"plan", str},
      {"plan_version", integer},
      {"quantity", integer},
      {"currency", str},
      {"status",
       {{"type", "string"},
        {"enum",
         {"incomplete", "trialing", "active", "past_due", "suspended",
          "paused", "canceled"}}}},
      {"cancel_at_period_end", {{"type", "boolean"}}},
      {"cancel_reason",
       {{"type", "string"},
        {"nullable", true},
        {"enum", {"incomplete_expired", "nonpayment", "requested"}}}},
      {"pause_reason",
       {{"type", "string"},
        {"nullable", true},
        {"enum", {"requested", "trial_ended"}}}},
      {"payment_method", nstr},
      {"interval",
       {{"type", "object"},
        {"properties", {{"unit", str}, {"count", integer}}}}},
      {"current_period_start", time},
      {"current_period_end", time},
      {"trial_end", {{"type", "string"}, {"format", "date-time"},
                     {"nullable", true}}},
      {"entitled", {{"type", "boolean"}}},
      {"credit_minor", integer},
      {"open_invoices", {{"type", "array"}, {"items", str}}},
      {"live_sagas",
       {{"type", "array"},
        {"items",
         {{"type", "object"},
          {"properties", {{"id", str}, {"type", str}}}}}}},
      {"version", integer},
      {"created_at", time},
      {"updated_at", time}}}};
}

bool is_valid_ref(std::string_view s, std::size_t max_bytes) {
  return !s.empty() && s.size() <= max_bytes
         && std::all_of(s.begin(), s.end(), [](char c) {
              return c > 0x20 && c < 0x7f;
            });
}

} // namespace recur::api

namespace recur::api {

route_registrar billing_routes(billing_parts parts) {
  return [parts](router& r, services& s) {
    s.orch = parts.orch;
    s.envs = parts.envs;
    s.clocks = parts.clocks;
    add_subscription_routes(r, s);
    add_invoice_routes(r, s);
    add_saga_routes(r, s);
    add_test_clock_routes(r, s);
  };
}

} // namespace recur::api
