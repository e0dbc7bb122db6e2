#include "sagas/subscription.hpp"

#include <algorithm>
#include <exception>

#include <nlohmann/json.hpp>

#include "sagas/json_writer.hpp"
#include "sagas/state_reader.hpp"

namespace recur {

namespace {

using nlohmann::json;

billing_period period_from(const json& j) {
  return billing_period{instant{j.at("start").get<std::int64_t>()},
                        instant{j.at("end").get<std::int64_t>()}};
}

template <class Enum, std::size_t N>
Enum enum_from(const std::string& s, const std::array<Enum, N>& all) {
  for (auto e : all)
    if (to_string(e) == s)
      return e;
  throw std::invalid_argument("unknown value " + s);
}

} // namespace

std::string to_json(const subscription_state& s) {
  // On every commit's path: written directly (keys in nlohmann's sorted
  // order, so the text equals what a json DOM would dump).
  std::string out;
  // Room for a usual state (about 700 bytes with one open invoice), so
  // that the text is not copied again as it grows.
  out.reserve(896 + 160 * s.open_invoices.size() + 64 * s.sagas.size()
              + 48 * s.gateway_refs.size());
  json_writer w{out};
  w.begin_object()
    .member("anchor", s.anchor.unix_s)
    .member("cancel_at_period_end", s.life.cancel_at_period_end)
    .member("cancel_reason", to_string(s.life.cancel))
    .member("created_at", s.created_at.unix_s)
    .member("credit", s.credit_minor)
    .member("currency", s.currency)
    .member("customer", s.customer.value)
    .member("entitled", s.entitled);
  if (!s.gateway_refs.empty()) {
    w.key("gateway_refs").begin_array();
    for (const auto& r : s.gateway_refs)
      w.value(r);
    w.end_array();
  }
  w.member("id", s.id.value);
  w.key("interval").begin_object()
    .member("count", s.interval.count)
    .member("unit", to_string(s.interval.unit))
    .end_object();
  if (s.last_paid) {
    const auto& p = *s.last_paid;
    w.key("last_paid").begin_object()
      .member("charge_id", p.charge_id)
      .member("id", p.id.value)
      .member("net", p.net_minor)
      .member("paid", p.paid_minor)
      .member("period_end", p.period_end.unix_s)
      .member("period_start", p.period_start.unix_s)
      .member("tax", p.tax_minor)
      .end_object();
  }
  w.key("open_invoices").begin_array();
  for (const auto& i : s.open_invoices)
    w.begin_object()
      .member("amount_due", i.amount_due_minor)
      .member("attempts", i.attempts)
      .member("collecting_saga", i.collecting_saga)
      .member("id", i.id.value)
      .member("net", i.net_minor)
      .member("period_end", i.period_end.unix_s)
      .member("period_start", i.period_start.unix_s)
      .member("tax", i.tax_minor)
      .member("version", i.version)
      .end_object();
  w.end_array();
  w.member("pause_reason", to_string(s.life.pause))
    .member("payment_method", s.payment_method);
  w.key("period").begin_object()
    .member("end", s.period.end.unix_s)
    .member("start", s.period.start.unix_s)
    .end_object();
  w.member("plan", s.plan.value)
    .member("plan_version", s.plan_version)
    .member("quantity", s.quantity)
    .member("saga_seq", s.saga_seq);
  w.key("sagas").begin_object();
  for (const auto& [id, type] : s.sagas)
    w.member(id, type);
  w.end_object();
  w.member("status", to_string(s.life.status))
    .member("tenant", s.tenant.value);
  if (s.trial_end)
    w.member("trial_end", s.trial_end->unix_s);
  w.member("updated_at", s.updated_at.unix_s)
    .member("version", s.version)
    .end_object();
  return out;
}

namespace {

result<subscription_state> subscription_from_value(const json& j) {
  if (!j.is_object())
    return make_error(errc::invalid_argument, "subscription state is not JSON");
  subscription_state s;
  try {
    s.tenant = tenant_id{j.at("tenant").get<std::string>()};
    s.id = subscription_id{j.at("id").get<std::string>()};
    s.customer = customer_id{j.at("customer").get<std::string>()};
    s.plan = plan_id{j.at("plan").get<std::string>()};
    s.plan_version = j.at("plan_version").get<std::int32_t>();
    s.quantity = j.at("quantity").get<std::int64_t>();
    s.currency = j.at("currency").get<std::string>();
    s.payment_method = j.at("payment_method").get<std::string>();
    s.life.status
      = enum_from(j.at("status").get<std::string>(), all_statuses);
    s.life.cancel_at_period_end = j.at("cancel_at_period_end").get<bool>();
    s.life.cancel
      = enum_from(j.at("cancel_reason").get<std::string>(), all_cancel_reasons);
    s.life.pause
      = enum_from(j.at("pause_reason").get<std::string>(), all_pause_reasons);
    const auto unit_text = j.at("interval").at("unit").get<std::string>();
    const auto unit = interval_unit_from(unit_text);
    if (!unit)
      throw std::invalid_argument("unknown interval unit " + unit_text);
    s.interval.unit = *unit;
    s.interval.count = j.at("interval").at("count").get<std::int32_t>();
    s.anchor = instant{j.at("anchor").get<std::int64_t>()};
    s.period = period_from(j.at("period"));
    s.entitled = j.at("entitled").get<bool>();
    s.credit_minor = j.at("credit").get<std::int64_t>();
    for (const auto& i : j.at("open_invoices")) {
      open_invoice o;
      o.id = invoice_id{i.at("id").get<std::string>()};
      o.version = i.at("version").get<std::int64_t>();
      o.amount_due_minor = i.at("amount_due").get<std::int64_t>();
      o.net_minor = i.at("net").get<std::int64_t>();
      o.tax_minor = i.at("tax").get<std::int64_t>();
      o.attempts = i.at("attempts").get<std::int32_t>();
      o.collecting_saga = i.at("collecting_saga").get<std::string>();
      o.period_start = instant{i.at("period_start").get<std::int64_t>()};
      o.period_end = instant{i.at("period_end").get<std::int64_t>()};
      s.open_invoices.push_back(std::move(o));
    }
    s.sagas = j.at("sagas").get<std::map<std::string, std::string>>();
    s.saga_seq = j.at("saga_seq").get<std::int64_t>();
    s.version = j.at("version").get<std::int64_t>();
    s.created_at = instant{j.at("created_at").get<std::int64_t>()};
    s.updated_at = instant{j.at("updated_at").get<std::int64_t>()};
    if (auto it = j.find("gateway_refs"); it != j.end())
      s.gateway_refs = it->get<std::vector<std::string>>();
    if (auto it = j.find("trial_end"); it != j.end())
      s.trial_end = instant{it->get<std::int64_t>()};
    if (auto it = j.find("last_paid"); it != j.end()) {
      const auto& p = *it;
      s.last_paid = paid_invoice{invoice_id{p.at("id").get<std::string>()},
                                 p.at("paid").get<std::int64_t>(),
                                 p.at("net").get<std::int64_t>(),
                                 p.at("tax").get<std::int64_t>(),
                                 p.at("charge_id").get<std::string>(),
                                 instant{p.at("period_start").get<std::int64_t>()},
                                 instant{p.at("period_end").get<std::int64_t>()}};
    }
  } catch (const std::exception& e) {
    return make_error(errc::invalid_argument,
                      std::string{"subscription state: "} + e.what());
  }
  return s;
}

} // namespace

result<subscription_state> subscription_from_json(std::string_view text) {
  if (subscription_state fast; read_state_fast(text, fast))
    return fast;
  return subscription_from_json_dom(text);
}

result<subscription_state> subscription_from_json_dom(std::string_view text) {
  auto j = json::parse(text, nullptr, false);
  if (j.is_discarded())
    return make_error(errc::invalid_argument, "subscription state is not JSON");
  return subscription_from_value(j);
}

result<subscription_state>
subscription_from_history(const subscription_history& h) {
  if (h.version == 0)
    return make_error(errc::not_found, "no such subscription");
  std::string_view text;
  if (!h.tail.empty()) {
    if (subscription_state fast;
        read_payload_state_fast(h.tail.back().payload_json, fast)) {
      fast.version = h.version;
      return fast;
    }
    auto j = json::parse(h.tail.back().payload_json, nullptr, false);
    if (j.is_discarded() || !j.contains("state"))
      return make_error(errc::invalid_argument,
                        "event payload without state");
    auto s = subscription_from_value(j.at("state"));
    if (s)
      s->version = h.version;
    return s;
  }
  if (!h.snapshot)
    return make_error(errc::invalid_argument, "history without events");
  text = h.snapshot->state_json;
  auto s = subscription_from_json(text);
  if (s)
    s->version = h.version;
  return s;
}

result<subscription_aggregate> load_subscription(store& db, const tenant_id& t,
                                                 const subscription_id& id) {
  auto h = db.load_history(t, id);
  if (!h)
    return h.error();
  subscription_aggregate agg;
  if (h->version == 0)
    return agg;
  auto st = subscription_from_history(*h);
  if (!st)
    return st.error();
  agg.sub = std::move(*st);
  for (const auto& [sid, type] : agg.sub.sagas) {
    auto rec = db.get_saga(t, saga_id{sid});
    if (!rec)
      return rec.error();
    auto ss = from_record(*rec);
    if (!ss)
      return ss.error();
    if (!is_finished(ss->status))
      agg.sagas[sid] = std::move(*ss);
  }
  return agg;
}

namespace {

constexpr std::string_view attempt_marker = "/attempt-";
/// Saga ids are "<subscription>/<type>/<n>": a refund key starts with one.
constexpr std::size_t saga_id_segments = 3;

using found_route = std::optional<gateway_event_route>;

/// The route by charge id: the attempt that has it, its invoice.
result<found_route> route_by_charge(store& db, const tenant_id& t,
                                    const std::string& charge_id) {
  if (charge_id.empty())
    return found_route{};
  auto a = db.find_attempt_by_charge(t, charge_id);
  if (!a)
    return a.code() == errc::not_found ? result<found_route>{found_route{}}
                                       : result<found_route>{a.error()};
  auto inv = db.get_invoice(t, a->invoice);
  if (!inv)
    return inv.code() == errc::not_found ? result<found_route>{found_route{}}
                                         : result<found_route>{inv.error()};
  return found_route{gateway_event_route{inv->subscription, inv->id}};
}

} // namespace

result<std::optional<gateway_event_route>>
route_gateway_event(store& db, const tenant_id& t, const gateway_event& e) {
  const std::string& key = e.idempotency_key;
  const bool money_out
    = e.type == "charge.refunded" || e.type == "charge.dispute.created";
  if (!key.empty()) {
    if (const auto at = key.rfind(attempt_marker); at != std::string::npos) {
      auto inv = db.get_invoice(t, invoice_id{key.substr(0, at)});
      if (inv)
        return found_route{gateway_event_route{inv->subscription, inv->id}};
      if (inv.code() != errc::not_found)
        return inv.error();
    } else {
      std::size_t end = 0;
      for (std::size_t n = 0; n < saga_id_segments; ++n) {
        end = key.find('/', n == 0 ? 0 : end + 1);
        if (end == std::string::npos)
          break;
      }
      const std::string id
        = end == std::string::npos ? key : key.substr(0, end);
      auto s = db.get_saga(t, saga_id{id});
      if (s) {
        gateway_event_route r{s->subscription, std::nullopt};
        if (money_out) {
          auto by_charge = route_by_charge(db, t, e.charge_id);
          if (!by_charge)
            return by_charge.error();
          if (*by_charge && (*by_charge)->subscription == r.subscription)
            r.invoice = (*by_charge)->invoice;
        }
        return found_route{std::move(r)};
      }
      if (s.code() != errc::not_found)
        return s.error();
    }
  }
  // Payment outcomes are always about a charge Recur keyed; the charge id
  // routes what the gateway originated (disputes, dashboard refunds).
  if (!money_out)
    return found_route{};
  return route_by_charge(db, t, e.charge_id);
}

std::string_view input_name(const subscription_input& in) noexcept {
  static constexpr std::string_view names[] = {
    "create",       "cancel",      "uncancel",     "pause",
    "resume",       "change_plan", "update_payment_method",
    "pay_invoice",  "timer_due",   "gateway_done", "gateway_notice",
    "void_invoice", "retry_saga",  "compensate_saga"};
  static_assert(std::size(names) == std::variant_size_v<subscription_input>);
  return names[in.index()];
}

// -- memory_plan_catalog ------------------------------------------------------

status memory_plan_catalog::add(const plan_id& plan, plan_version v) {
  if (auto st = validate(v); !st)
    return st;
  auto& versions = plans_[plan];
  for (const auto& x : versions)
    if (x.version == v.version)
      return make_error(errc::already_exists, "plan version exists");
  versions.push_back(std::move(v));
  std::sort(versions.begin(), versions.end(),
            [](const auto& a, const auto& b) { return a.version < b.version; });
  return {};
}

result<plan_version> memory_plan_catalog::version(const plan_id& plan,
                                                  std::int32_t version) const {
  auto it = plans_.find(plan);
  if (it != plans_.end())
    for (const auto& v : it->second)
      if (v.version == version)
        return v;
  return make_error(errc::not_found, "no plan " + plan.value + " version "
                                       + std::to_string(version));
}

result<plan_version> memory_plan_catalog::current(const plan_id& plan,
                                                  instant at) const {
  auto it = plans_.find(plan);
  if (it == plans_.end() || it->second.empty())
    return make_error(errc::not_found, "no plan " + plan.value);
  const plan_version* best = nullptr;
  for (const auto& v : it->second)
    if (v.effective_at <= at
        && (best == nullptr || v.effective_at >= best->effective_at))
      best = &v;
  if (best == nullptr)
    return make_error(errc::no_price_version,
                      "plan " + plan.value + " has no version in force");
  return *best;
}

} // namespace recur
