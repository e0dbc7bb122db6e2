// Tenants (admin) and their gateway configs.
//
//   POST /v1/tenants            {name, test_mode?} → 201 {id, name, test_mode,
//                               created_at, api_key}; the key is shown once
//   PUT  /v1/gateways/{gateway} {webhook_secret, api_key?, base_url?} → 200
//   GET  /v1/gateways/{gateway} → 200, secrets left out

#include <spdlog/spdlog.h>

#include "api/auth.hpp"
#include "api/json_io.hpp"
#include "api/routes.hpp"

namespace recur::api {

namespace {

constexpr std::size_t max_tenant_name_bytes = 200;
constexpr std::size_t min_webhook_secret_bytes = 8;
constexpr std::size_t max_secret_bytes = 512;
constexpr std::size_t max_base_url_bytes = 2048;

// -- tenants ------------------------------------------------------------------

ordered_json tenant_view(const tenant_record& t) {
  return {{"id", t.id.value},
          {"name", t.name},
          {"test_mode", t.test_mode},
          {"created_at", format_iso8601(t.created_at)}};
}

http_response create_tenant(services& s, request_context& ctx) {
  api_error err;
  auto body = parse_object(ctx.req.body, err);
  if (!body)
    return problem(err);
  object_reader in{*body};
  auto name = in.string("name", true, 1, max_tenant_name_bytes);
  auto test_mode = in.boolean("test_mode", false);
  in.reject_unknown();
  if (in.failed())
    return problem(in.error());
  const bool test = test_mode.value_or(false);
  const auto api_key = new_api_key(test);
  const tenant_record t{tenant_id{new_id("ten")}, *name, sha256_hex(api_key),
                        test, ctx.now};
  if (auto st = s.db.create_tenant(t); !st)
    return error_response(st.error());
  spdlog::info("event=tenant_created tenant={} test_mode={}", t.id.value, test);
  auto view = tenant_view(t);
  view["api_key"] = api_key;
  return json_response(201, view);
}

// An Idempotency-Key stores the answer without the API key: the key exists
// only as its hash, and a replay must not bring it back.
std::string without_api_key(std::string_view body) {
  auto doc = ordered_json::parse(body, nullptr, false);
  if (doc.is_discarded() || !doc.is_object())
    return std::string{body};
  if (doc.contains("api_key"))
    doc["api_key"] = nullptr;
  return dump(doc);
}

// -- gateway configs ----------------------------------------------------------

bool is_http_url(std::string_view url) {
  const std::string_view scheme = url.starts_with("https://")  ? "https://"
                                  : url.starts_with("http://") ? "http://"
                                                               : "";
  if (scheme.empty() || url.size() == scheme.size())
    return false;
  for (const char c : url)
    if (c <= 0x20 || c >= 0x7f)
      return false;
  return true;
}

ordered_json gateway_view(const gateway_config_record& c) {
  const auto doc = json::parse(c.config_json, nullptr, false);
  const bool ok = doc.is_object();
  ordered_json view = {{"gateway", c.gateway}};
  view["webhook_secret_set"] = ok && doc.contains("webhook_secret");
  view["api_key_set"] = ok && doc.contains("api_key");
  view["base_url"] = ok && doc.contains("base_url")
                         && doc["base_url"].is_string()
                       ? ordered_json(doc["base_url"].get<std::string>())
                       : ordered_json(nullptr);
  view["updated_at"] = format_iso8601(c.updated_at);
  return view;
}

http_response unknown_gateway(const std::string& gateway) {
  return problem({404, "not_found",
                  "no gateway '" + gateway + "' (known: sandbox, stripe)"});
}

http_response put_gateway(services& s, request_context& ctx) {
  const auto& gateway = ctx.param("gateway");
  if (!is_known_gateway(gateway))
    return unknown_gateway(gateway);
  api_error err;
  auto body = parse_object(ctx.req.body, err);
  if (!body)
    return problem(err);
  object_reader in{*body};
  auto secret = in.string("webhook_secret", true, min_webhook_secret_bytes,
                          max_secret_bytes);
  auto api_key = in.string("api_key", false, 1, max_secret_bytes);
  auto base_url = in.string("base_url", false, 1, max_base_url_bytes);
  if (base_url && !is_http_url(*base_url))
    in.fail("base_url", "must be an http:// or https:// URL");
  in.reject_unknown();
  if (in.failed())
    return problem(in.error());
  ordered_json config = {{"webhook_secret", *secret}};
  if (api_key)
    config["api_key"] = *api_key;
  if (base_url)
    config["base_url"] = *base_url;
  const gateway_config_record rec{gateway, dump(config), ctx.now};
  if (auto st = s.db.put_gateway_config(ctx.tid(), rec); !st)
    return error_response(st.error());
  spdlog::info("event=gateway_config_set tenant={} gateway={}", ctx.tid().value,
               gateway);
  return json_response(200, gateway_view(rec));
}

http_response get_gateway(services& s, request_context& ctx) {
  const auto& gateway = ctx.param("gateway");
  if (!is_known_gateway(gateway))
    return unknown_gateway(gateway);
  auto rec = s.db.get_gateway_config(ctx.tid(), gateway);
  if (!rec)
    return error_response(rec.error());
  return json_response(200, gateway_view(*rec));
}

// -- schemas ------------------------------------------------------------------

ordered_json str() {
  return {{"type", "string"}};
}

ordered_json tenant_schema(bool with_key) {
  ordered_json props
    = {{"id", str()},
       {"name", str()},
       {"test_mode", {{"type", "boolean"}}},
       {"created_at", {{"type", "string"}, {"format", "date-time"}}}};
  if (with_key)
    props["api_key"] = {{"type", "string"},
                        {"nullable", true},
                        {"description", "shown once; null in a replay"}};
  return {{"type", "object"}, {"properties", props}};
}

ordered_json gateway_schema() {
  return {{"type", "object"},
          {"properties",
           {{"gateway", {{"type", "string"}, {"enum", {"sandbox", "stripe"}}}},
            {"webhook_secret_set", {{"type", "boolean"}}},
            {"api_key_set", {{"type", "boolean"}}},
            {"base_url", {{"type", "string"}, {"nullable", true}}},
            {"updated_at", {{"type", "string"}, {"format", "date-time"}}}}}};
}

} // namespace

bool is_known_gateway(std::string_view gateway) {
  return gateway == "sandbox" || gateway == "stripe";
}

void add_tenant_routes(router& r, services& s) {
  services* sp = &s;
  r.add(route{
    "POST", "/v1/tenants", auth_kind::admin,
    [sp](request_context& ctx) { return create_tenant(*sp, ctx); },
    route_doc{"create a tenant (admin key); returns its API key once",
              {{"type", "object"},
               {"required", {"name"}},
               {"additionalProperties", false},
               {"properties",
                {{"name",
                  {{"type", "string"},
                   {"minLength", 1},
                   {"maxLength", max_tenant_name_bytes}}},
                 {"test_mode", {{"type", "boolean"}, {"default", false}}}}}},
              tenant_schema(true),
              201,
              {},
              "application/json"},
    true, without_api_key});
  r.add(route{
    "PUT", "/v1/gateways/{gateway}", auth_kind::tenant,
    [sp](request_context& ctx) { return put_gateway(*sp, ctx); },
    route_doc{
      "set the tenant's config of a gateway (sandbox, stripe)",
      {{"type", "object"},
       {"required", {"webhook_secret"}},
       {"additionalProperties", false},
       {"properties",
        {{"webhook_secret",
          {{"type", "string"},
           {"minLength", min_webhook_secret_bytes},
           {"maxLength", max_secret_bytes}}},
         {"api_key", {{"type", "string"}, {"maxLength", max_secret_bytes}}},
         {"base_url", {{"type", "string"}, {"format", "uri"}}}}}},
      gateway_schema(),
      200,
      {},
      "application/json"},
    true, nullptr});
  r.add(route{"GET", "/v1/gateways/{gateway}", auth_kind::tenant,
              [sp](request_context& ctx) { return get_gateway(*sp, ctx); },
              route_doc{"the tenant's config of a gateway, without secrets",
                        nullptr,
                        gateway_schema(),
                        200,
                        {},
                        "application/json"},
              true, nullptr});
}

} // namespace recur::api
