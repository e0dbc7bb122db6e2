// Customers.
//
//   POST  /v1/customers       {id?, email, name, payment_method?, currency?}
//                             → 201; a taken id is 409 conflict
//   GET   /v1/customers/{id}  → 200
//   PATCH /v1/customers/{id}  {version, email?, name?, payment_method?,
//                             currency?} → 200; `version` must be the stored
//                             one (optimistic concurrency, else 409); null
//                             clears payment_method or currency

#include <algorithm>
#include <limits>

#include <spdlog/spdlog.h>

#include "api/auth.hpp"
#include "api/json_io.hpp"
#include "api/routes.hpp"
#include "domain/money.hpp"

namespace recur::api {

namespace {

constexpr std::size_t max_email_bytes = 254;
constexpr std::size_t max_name_bytes = 200;
constexpr std::size_t max_token_bytes = 255;

// local@domain with no spaces or controls: the checks that catch typos; the
// mail system is the only real validator.
bool plausible_email(std::string_view s) {
  const auto at = s.find('@');
  if (at == std::string_view::npos || at == 0 || at + 1 >= s.size()
      || s.find('@', at + 1) != std::string_view::npos)
    return false;
  return std::none_of(s.begin(), s.end(), [](char c) {
    return static_cast<unsigned char>(c) <= 0x20 || c == 0x7f;
  });
}

// The optional fields that may be set, kept or (PATCH, null) cleared.
struct customer_edit {
  std::optional<std::string> email;
  std::optional<std::string> name;
  std::optional<std::optional<std::string>> payment_method; // {} kept
  std::optional<std::optional<std::string>> currency;
};

// Reads email, name, payment_method, currency. `patch`: every field may be
// absent (kept) and null clears payment_method/currency.
customer_edit read_edit(object_reader& in, const json& body, bool patch) {
  customer_edit e;
  e.email = in.string("email", !patch, 3, max_email_bytes);
  if (e.email && !plausible_email(*e.email))
    in.fail("email", "must look like name@example.com");
  e.name = in.string("name", !patch, 1, max_name_bytes);
  auto clears = [&](const char* field) {
    auto it = body.find(field);
    return it != body.end() && it->is_null();
  };
  if (auto pm = in.id("payment_method", false, max_token_bytes))
    e.payment_method = std::optional<std::string>{*pm};
  else if (clears("payment_method"))
    e.payment_method = std::optional<std::string>{};
  if (auto cur = in.string("currency", false, 3, 3)) {
    if (!currency::from_code(*cur))
      in.fail("currency", "'" + *cur + "' is not an ISO-4217 code we know");
    e.currency = std::optional<std::string>{*cur};
  } else if (clears("currency")) {
    e.currency = std::optional<std::string>{};
  }
  return e;
}

ordered_json nullable(const std::optional<std::string>& s) {
  return s ? ordered_json(*s) : ordered_json(nullptr);
}

std::string to_data_json(const customer_fields& f) {
  return dump({{"email", f.email},
               {"name", f.name},
               {"payment_method", nullable(f.payment_method)},
               {"currency", nullable(f.currency)},
               {"created_at", format_iso8601(f.created_at)}});
}

ordered_json customer_view(const customer_record& c, const customer_fields& f) {
  return {{"id", c.id.value},
          {"email", f.email},
          {"name", f.name},
          {"payment_method", nullable(f.payment_method)},
          {"currency", nullable(f.currency)},
          {"version", c.version},
          {"created_at", format_iso8601(f.created_at)},
          {"updated_at", format_iso8601(c.updated_at)}};
}

http_response view_response(unsigned status, const customer_record& c) {
  auto f = read_customer(c);
  if (!f)
    return error_response(make_error(errc::storage_error, f.error().detail));
  return json_response(status, customer_view(c, *f));
}

http_response not_found(const std::string& id) {
  return problem({404, "not_found", "no customer '" + id + "'"});
}

http_response create_customer(services& s, request_context& ctx) {
  api_error err;
  auto body = parse_object(ctx.req.body, err);
  if (!body)
    return problem(err);
  object_reader in{*body};
  auto id = in.id("id", false);
  auto edit = read_edit(in, *body, false);
  in.reject_unknown();
  if (in.failed())
    return problem(in.error());
  customer_fields f{*edit.email, *edit.name,
                    edit.payment_method.value_or(std::nullopt),
                    edit.currency.value_or(std::nullopt), ctx.now};
  const customer_record rec{customer_id{id ? *id : new_id("cus")},
                            to_data_json(f), 0, ctx.now};
  auto stored = s.db.put_customer(ctx.tid(), rec, 0);
  if (!stored) {
    if (stored.code() == errc::version_conflict
        || stored.code() == errc::already_exists)
      return problem(
        {409, "conflict", "customer '" + rec.id.value + "' already exists"});
    return error_response(stored.error());
  }
  spdlog::info("event=customer_created tenant={} customer={}", ctx.tid().value,
               rec.id.value);
  return view_response(201, *stored);
}

http_response get_customer(services& s, request_context& ctx) {
  const auto& id = ctx.param("id");
  if (!is_valid_id(id))
    return not_found(id);
  auto c = s.db.get_customer(ctx.tid(), customer_id{id});
  if (!c)
    return c.code() == errc::not_found ? not_found(id)
                                       : error_response(c.error());
  return view_response(200, *c);
}

http_response patch_customer(services& s, request_context& ctx) {
  const auto& id = ctx.param("id");
  if (!is_valid_id(id))
    return not_found(id);
  api_error err;
  auto body = parse_object(ctx.req.body, err);
  if (!body)
    return problem(err);
  object_reader in{*body};
  auto version = in.integer("version", true, 1,
                            std::numeric_limits<std::int64_t>::max());
  auto edit = read_edit(in, *body, true);
  in.reject_unknown();
  if (in.failed())
    return problem(in.error());
  auto current = s.db.get_customer(ctx.tid(), customer_id{id});
  if (!current)
    return current.code() == errc::not_found ? not_found(id)
                                             : error_response(current.error());
  if (current->version != *version)
    return problem({409, "conflict",
                    "customer '" + id + "' is at version "
                      + std::to_string(current->version) + ", not "
                      + std::to_string(*version)});
  auto f = read_customer(*current);
  if (!f)
    return error_response(make_error(errc::storage_error, f.error().detail));
  if (edit.email)
    f->email = *edit.email;
  if (edit.name)
    f->name = *edit.name;
  if (edit.payment_method)
    f->payment_method = *edit.payment_method;
  if (edit.currency)
    f->currency = *edit.currency;
  const customer_record next{current->id, to_data_json(*f), 0, ctx.now};
  auto stored = s.db.put_customer(ctx.tid(), next, *version);
  if (!stored)
    return stored.code() == errc::version_conflict
             ? problem(
               {409, "conflict", "customer '" + id + "' was changed meanwhile"})
             : error_response(stored.error());
  spdlog::info("event=customer_updated tenant={} customer={} version={}",
               ctx.tid().value, id, stored->version);
  return view_response(200, *stored);
}

// -- schemas ------------------------------------------------------------------

ordered_json customer_schema() {
  const ordered_json nullable_str = {{"type", "string"}, {"nullable", true}};
  return {{"type", "object"},
          {"properties",
           {{"id", {{"type", "string"}}},
            {"email", {{"type", "string"}}},
            {"name", {{"type", "string"}}},
            {"payment_method", nullable_str},
            {"currency", nullable_str},
            {"version", {{"type", "integer"}}},
            {"created_at", {{"type", "string"}, {"format", "date-time"}}},
            {"updated_at", {{"type", "string"}, {"format", "date-time"}}}}}};
}

ordered_json edit_properties(bool patch) {
  ordered_json props = ordered_json::object();
  if (patch)
    props["version"] = {{"type", "integer"},
                        {"minimum", 1},
                        {"description", "the version last read"}};
  else
    props["id"] = {{"type", "string"}, {"pattern", "^[A-Za-z0-9_-]{1,64}$"}};
  props["email"] = {{"type", "string"}, {"maxLength", max_email_bytes}};
  props["name"] = {{"type", "string"}, {"maxLength", max_name_bytes}};
  props["payment_method"]
    = {{"type", "string"},
       {"nullable", true},
       {"description", "a gateway token, e.g. pm_card_visa"}};
  props["currency"]
    = {{"type", "string"}, {"nullable", true}, {"pattern", "^[A-Z]{3}$"}};
  return props;
}

} // namespace

result<customer_fields> read_customer(const customer_record& c) {
  const auto doc = json::parse(c.data_json, nullptr, false);
  if (!doc.is_object() || !doc.contains("email") || !doc["email"].is_string()
      || !doc.contains("name") || !doc["name"].is_string())
    return make_error(errc::invalid_argument,
                      "customer " + c.id.value + ": unreadable data_json");
  customer_fields f;
  f.email = doc["email"].get<std::string>();
  f.name = doc["name"].get<std::string>();
  if (auto it = doc.find("payment_method"); it != doc.end() && it->is_string())
    f.payment_method = it->get<std::string>();
  if (auto it = doc.find("currency"); it != doc.end() && it->is_string())
    f.currency = it->get<std::string>();
  f.created_at = c.updated_at;
  if (auto it = doc.find("created_at"); it != doc.end() && it->is_string())
    if (auto t = parse_iso8601(it->get<std::string>()))
      f.created_at = *t;
  return f;
}

void add_customer_routes(router& r, services& s) {
  services* sp = &s;
  r.add(route{"POST", "/v1/customers", auth_kind::tenant,
              [sp](request_context& ctx) { return create_customer(*sp, ctx); },
              route_doc{"create a customer",
                        {{"type", "object"},
                         {"required", {"email", "name"}},
                         {"additionalProperties", false},
                         {"properties", edit_properties(false)}},
                        customer_schema(),
                        201,
                        {},
                        "application/json"},
              true, nullptr});
  r.add(route{
    "GET", "/v1/customers/{id}", auth_kind::tenant,
    [sp](request_context& ctx) { return get_customer(*sp, ctx); },
    route_doc{
      "one customer", nullptr, customer_schema(), 200, {}, "application/json"},
    true, nullptr});
  r.add(route{
    "PATCH", "/v1/customers/{id}", auth_kind::tenant,
    [sp](request_context& ctx) { return patch_customer(*sp, ctx); },
    route_doc{"change a customer (optimistic: give the version last read)",
              {{"type", "object"},
               {"required", {"version"}},
               {"additionalProperties", false},
               {"properties", edit_properties(true)}},
              customer_schema(),
              200,
              {},
              "application/json"},
    true, nullptr});
}

} // namespace recur::api
