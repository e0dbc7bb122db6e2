// Metered usage.
//
//   POST /v1/usage {records: [{id, subscription, meter, quantity,
//                  timestamp?}, …]} → 200 {accepted, duplicates}
//
// Up to 1000 records per call. Every record is checked before any is
// stored: an unknown subscription, a meter its plan does not price, a
// negative quantity or a bad timestamp refuses the whole batch (422) and
// nothing is recorded. Ids already recorded count as duplicates, not errors,
// so a client may resend a batch.

#include <map>
#include <set>

#include <spdlog/spdlog.h>

#include "api/json_io.hpp"
#include "api/routes.hpp"
#include "domain/catalog.hpp"
#include "sagas/catalog_codec.hpp"

namespace recur::api {

namespace {

constexpr std::size_t max_usage_records = 1000;
constexpr std::size_t max_usage_id_bytes = 255;
constexpr std::int64_t max_quantity = 1'000'000'000'000; // per record

// Every meter any version of the plan prices.
result<std::set<std::string>> meters_of(store& db, const tenant_id& t,
                                        const plan_id& plan) {
  auto versions = db.list_plan_versions(t, plan);
  if (!versions)
    return versions.error();
  std::set<std::string> out;
  for (const auto& rec : *versions) {
    auto v = plan_version_from_json(rec.data_json);
    if (!v)
      return make_error(errc::storage_error,
                        "stored plan " + plan.value
                          + " is unreadable: " + v.error().detail);
    for (const auto& m : v->metered)
      out.insert(m.meter);
  }
  return out;
}

// Reads one record; on a problem, `in` holds it.
std::optional<usage_event> read_record(object_reader& in, instant now) {
  auto id = in.id("id", true, max_usage_id_bytes);
  auto sub = in.id("subscription", true);
  auto meter = in.string("meter", true, 1, max_meter_name_length);
  auto quantity = in.integer("quantity", true, 0, max_quantity);
  auto at = in.timestamp("timestamp", false);
  in.reject_unknown();
  if (in.failed())
    return std::nullopt;
  return usage_event{*id, subscription_id{*sub}, *meter, *quantity,
                     at.value_or(now)};
}

// Subscriptions exist and price the meters: `fields[i]` names record i.
std::optional<api_error>
check_references(services& s, const tenant_id& t,
                 const std::vector<usage_event>& batch,
                 const std::vector<std::string>& fields) {
  std::map<std::string, std::set<std::string>> meters_by_sub;
  std::map<std::string, std::set<std::string>> meters_by_plan;
  for (std::size_t i = 0; i < batch.size(); ++i) {
    const auto& e = batch[i];
    auto it = meters_by_sub.find(e.subscription.value);
    if (it == meters_by_sub.end()) {
      auto sub = s.db.get_subscription(t, e.subscription);
      if (!sub) {
        if (sub.code() == errc::not_found)
          return validation_error(fields[i] + ".subscription: no subscription '"
                                  + e.subscription.value + "'");
        return to_api_error(sub.error());
      }
      auto pm = meters_by_plan.find(sub->plan.value);
      if (pm == meters_by_plan.end()) {
        auto meters = meters_of(s.db, t, sub->plan);
        if (!meters)
          return to_api_error(meters.error());
        pm = meters_by_plan.emplace(sub->plan.value, std::move(*meters)).first;
      }
      it = meters_by_sub.emplace(e.subscription.value, pm->second).first;
    }
    if (!it->second.contains(e.meter))
      return validation_error(fields[i] + ".meter: the plan of subscription '"
                              + e.subscription.value + "' has no meter '"
                              + e.meter + "'");
  }
  return std::nullopt;
}

http_response record_usage(services& s, request_context& ctx) {
  api_error err;
  auto body = parse_object(ctx.req.body, err);
  if (!body)
    return problem(err);
  object_reader in{*body};
  const json* records = in.array("records", true, max_usage_records);
  in.reject_unknown();
  if (in.failed())
    return problem(in.error());
  if (records->empty())
    return problem(validation_error("records: must hold at least one record"));
  std::vector<usage_event> batch;
  std::vector<std::string> fields;
  batch.reserve(records->size());
  for (std::size_t i = 0; i < records->size(); ++i) {
    const auto field = "records[" + std::to_string(i) + "]";
    const auto& item = (*records)[i];
    if (!item.is_object())
      return problem(validation_error(field + ": must be an object"));
    object_reader rec{item, field};
    auto e = read_record(rec, ctx.now);
    if (!e)
      return problem(rec.error());
    batch.push_back(std::move(*e));
    fields.push_back(field);
  }
  if (auto bad = check_references(s, ctx.tid(), batch, fields))
    return problem(*bad);
  auto receipt = s.db.record_usage(ctx.tid(), batch);
  if (!receipt)
    return error_response(receipt.error());
  spdlog::info("event=usage_recorded tenant={} accepted={} duplicates={}",
               ctx.tid().value, receipt->accepted, receipt->duplicates);
  return json_response(200, {{"accepted", receipt->accepted},
                             {"duplicates", receipt->duplicates}});
}

} // namespace

void add_usage_routes(router& r, services& s) {
  services* sp = &s;
  const ordered_json record_schema
    = {{"type", "object"},
       {"required", {"id", "subscription", "meter", "quantity"}},
       {"additionalProperties", false},
       {"properties",
        {{"id",
          {{"type", "string"},
           {"maxLength", max_usage_id_bytes},
           {"description", "the caller's id: a repeat is a duplicate"}}},
         {"subscription", {{"type", "string"}}},
         {"meter", {{"type", "string"}, {"maxLength", max_meter_name_length}}},
         {"quantity", {{"type", "integer"}, {"minimum", 0}}},
         {"timestamp",
          {{"type", "string"},
           {"format", "date-time"},
           {"description", "when it was used; default: now"}}}}}};
  r.add(route{"POST", "/v1/usage", auth_kind::tenant,
              [sp](request_context& ctx) { return record_usage(*sp, ctx); },
              route_doc{"record a batch of usage, de-duplicated by record id",
                        {{"type", "object"},
                         {"required", {"records"}},
                         {"additionalProperties", false},
                         {"properties",
                          {{"records",
                            {{"type", "array"},
                             {"minItems", 1},
                             {"maxItems", max_usage_records},
                             {"items", record_schema}}}}}},
                        {{"type", "object"},
                         {"properties",
                          {{"accepted", {{"type", "integer"}}},
                           {"duplicates", {{"type", "integer"}}}}}},
                        200,
                        {},
                        "application/json"},
              true, nullptr});
}

} // namespace recur::api
