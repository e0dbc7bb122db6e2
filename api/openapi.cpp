#include "api/openapi.hpp"

#include <cctype>
#include <string>

namespace recur::api {

namespace {

std::string lower(std::string_view s) {
  std::string out{s};
  for (auto& c : out)
    c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

// "post /v1/customers/{id}" → "post_v1_customers_id": unique per route.
std::string operation_id(const route& r) {
  std::string out = lower(r.method);
  for (const char c : r.pattern) {
    if (std::isalnum(static_cast<unsigned char>(c)))
      out += c;
    else if (c == '/' || c == '-' || c == '.')
      out += '_';
  }
  return out;
}

ordered_json parameters(const route& r) {
  ordered_json out = ordered_json::array();
  std::string_view p = r.pattern;
  for (auto open = p.find('{'); open != std::string_view::npos;
       open = p.find('{', open + 1)) {
    const auto close = p.find('}', open);
    out.push_back({{"name", std::string{p.substr(open + 1, close - open - 1)}},
                   {"in", "path"},
                   {"required", true},
                   {"schema", {{"type", "string"}}}});
  }
  for (const auto& q : r.doc.query_params)
    out.push_back({{"name", q},
                   {"in", "query"},
                   {"required", false},
                   {"schema", {{"type", "string"}}}});
  if (r.method == "POST" && r.idempotent)
    out.push_back(
      {{"name", "Idempotency-Key"},
       {"in", "header"},
       {"required", false},
       {"description", "1..255 printable characters; a repeat with the same "
                       "body gets the stored response, with another body 422"},
       {"schema", {{"type", "string"}, {"maxLength", 255}}}});
  return out;
}

ordered_json responses(const route& r) {
  ordered_json out = ordered_json::object();
  ordered_json ok = {{"description", r.doc.summary}};
  if (!r.doc.response_schema.is_null())
    ok["content"]
      = {{r.doc.response_media_type, {{"schema", r.doc.response_schema}}}};
  out[std::to_string(r.doc.success_status)] = std::move(ok);
  const ordered_json problem = {{"$ref", "#/components/responses/Problem"}};
  if (r.auth != auth_kind::none) {
    out["401"] = problem;
    out["403"] = problem;
  }
  if (r.auth == auth_kind::tenant)
    out["429"] = problem;
  out["default"] = problem;
  return out;
}

ordered_json operation(const route& r) {
  ordered_json op = ordered_json::object();
  op["operationId"] = operation_id(r);
  op["summary"] = r.doc.summary;
  if (auto params = parameters(r); !params.empty())
    op["parameters"] = std::move(params);
  if (!r.doc.request_schema.is_null())
    op["requestBody"] = {
      {"required", true},
      {"content", {{"application/json", {{"schema", r.doc.request_schema}}}}}};
  op["responses"] = responses(r);
  switch (r.auth) {
    case auth_kind::none:
      op["security"] = ordered_json::array();
      break;
    case auth_kind::admin:
      op["security"] = {{{"admin_key", ordered_json::array()}}};
      break;
    case auth_kind::tenant:
      op["security"] = {{{"tenant_key", ordered_json::array()}}};
      break;
  }
  return op;
}

} // namespace

ordered_json problem_schema() {
  return {{"type", "object"},
          {"required", {"type", "title", "status", "detail"}},
          {"properties",
           {{"type",
             {{"type", "string"},
              {"description",
               "stable: validation_error, not_found, unauthorized, "
               "forbidden, conflict, invalid_transition, "
               "idempotency_conflict, not_supported, payment_failed, "
               "rate_limited, payload_too_large, "
               "unsupported_media_type, method_not_allowed, unavailable, "
               "internal_error"}}},
            {"title", {{"type", "string"}}},
            {"status", {{"type", "integer"}}},
            {"detail", {{"type", "string"}}}}}};
}

ordered_json openapi_document(const router& routes, std::string_view version) {
  ordered_json doc = ordered_json::object();
  doc["openapi"] = "3.0.3";
  doc["info"] = {{"title", "Recur API"},
                 {"version", std::string{version}},
                 {"description",
                  "Subscription billing. Money is integer minor units with a "
                  "currency; timestamps are ISO-8601 UTC. Errors are "
                  "application/problem+json. Lists take limit (1..100, "
                  "default 20) and cursor, and answer {data, has_more, "
                  "next_cursor}."}};
  ordered_json paths = ordered_json::object();
  for (const auto& r : routes.routes())
    paths[r.pattern][lower(r.method)] = operation(r);
  doc["paths"] = std::move(paths);
  doc["components"]
    = {{"securitySchemes",
        {{"tenant_key",
          {{"type", "http"},
           {"scheme", "bearer"},
           {"description", "the tenant's API key (rk_live_… / rk_test_…)"}}},
         {"admin_key",
          {{"type", "http"},
           {"scheme", "bearer"},
           {"description", "the server's admin key (RECUR_ADMIN_KEY)"}}}}},
       {"schemas", {{"Problem", problem_schema()}}},
       {"responses",
        {{"Problem",
          {{"description", "an error"},
           {"content",
            {{"application/problem+json",
              {{"schema", {{"$ref", "#/components/schemas/Problem"}}}}}}}}}}}};
  return doc;
}

} // namespace recur::api
