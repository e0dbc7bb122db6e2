// The OpenAPI document against the route table the app serves: the same
// (path, method) pairs both ways, and the parts clients rely on.

#include "api/openapi.hpp"

#include <set>
#include <utility>

#include <gtest/gtest.h>

#include "api/app.hpp"
#include "persistence/memory_store.hpp"

using namespace recur;
using namespace recur::api;

namespace {

struct always_ready final : readiness_probe {
  bool database_ok() override { return true; }
};

struct fixture {
  memory_store db;
  manual_clock clk{utc(2024, 1, 1)};
  always_ready probe;
  app api{[this] {
    app_config c;
    c.db = &db;
    c.clk = &clk;
    c.readiness = &probe;
    return c;
  }()};
};

using pair_set = std::set<std::pair<std::string, std::string>>;

std::string lower(std::string s) {
  for (auto& c : s)
    c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

pair_set routes_of(const router& r) {
  pair_set out;
  for (const auto& rt : r.routes())
    out.emplace(rt.pattern, lower(rt.method));
  return out;
}

pair_set paths_of(const nlohmann::json& doc) {
  pair_set out;
  for (const auto& [path, ops] : doc.at("paths").items())
    for (const auto& [method, op] : ops.items())
      out.emplace(path, method);
  return out;
}

// The document the app serves, fetched like a client would.
nlohmann::json served(app& a) {
  http_request req{"GET", "/openapi.json", {}, {}};
  const auto res = a.handle(req);
  EXPECT_EQ(res.status, 200U);
  return nlohmann::json::parse(res.body);
}

} // namespace

TEST(openapi, every_route_is_documented_and_every_documented_route_exists) {
  fixture f;
  const auto doc = served(f.api);
  const auto routes = routes_of(f.api.routes());
  const auto documented = paths_of(doc);
  for (const auto& r : routes)
    EXPECT_TRUE(documented.contains(r))
      << r.second << " " << r.first << " is served but not documented";
  for (const auto& d : documented)
    EXPECT_TRUE(routes.contains(d))
      << d.second << " " << d.first << " is documented but not served";
  EXPECT_GE(routes.size(), 16U);
}

TEST(openapi, the_issue_routes_of_this_part_are_all_there) {
  fixture f;
  const auto documented = paths_of(served(f.api));
  for (const auto& [path, method] : pair_set{{"/v1/tenants", "post"},
                                             {"/v1/gateways/{gateway}", "put"},
                                             {"/v1/gateways/{gateway}", "get"},
                                             {"/v1/plans", "post"},
                                             {"/v1/plans", "get"},
                                             {"/v1/customers", "post"},
                                             {"/v1/customers/{id}", "get"},
                                             {"/v1/customers/{id}", "patch"},
                                             {"/v1/usage", "post"},
                                             {"/v1/ledger/balance", "get"},
                                             {"/v1/reconciliation", "get"},
                                             {"/metrics", "get"},
                                             {"/healthz", "get"},
                                             {"/readyz", "get"},
                                             {"/openapi.json", "get"}})
    EXPECT_TRUE(documented.contains({path, method})) << method << " " << path;
}

TEST(openapi, bodies_responses_security_and_parameters_are_described) {
  fixture f;
  const auto doc = served(f.api);
  EXPECT_EQ(doc.at("openapi"), "3.0.3");
  const auto& paths = doc.at("paths");
  for (const auto& rt : f.api.routes().routes()) {
    SCOPED_TRACE(rt.method + " " + rt.pattern);
    const auto& op = paths.at(rt.pattern).at(lower(rt.method));
    EXPECT_FALSE(op.at("summary").get<std::string>().empty());
    EXPECT_TRUE(
      op.at("responses").contains(std::to_string(rt.doc.success_status)));
    EXPECT_TRUE(op.at("responses").contains("default"));
    if (rt.method == "POST" || rt.method == "PUT" || rt.method == "PATCH") {
      ASSERT_TRUE(op.contains("requestBody"));
      EXPECT_TRUE(
        op["requestBody"]["content"]["application/json"]["schema"].contains(
          "properties"));
    }
    const auto& security = op.at("security");
    if (rt.auth == auth_kind::tenant)
      EXPECT_TRUE(security[0].contains("tenant_key"));
    else if (rt.auth == auth_kind::admin)
      EXPECT_TRUE(security[0].contains("admin_key"));
    else
      EXPECT_TRUE(security.empty());
    // Every {param} of the path is a declared path parameter.
    std::set<std::string> declared;
    if (op.contains("parameters"))
      for (const auto& p : op["parameters"])
        if (p["in"] == "path")
          declared.insert(p["name"].get<std::string>());
    for (std::size_t at = rt.pattern.find('{'); at != std::string::npos;
         at = rt.pattern.find('{', at + 1))
      EXPECT_TRUE(declared.contains(
        rt.pattern.substr(at + 1, rt.pattern.find('}', at) - at - 1)));
  }
}

TEST(openapi, the_field_names_of_bodies_are_listed) {
  fixture f;
  const auto doc = served(f.api);
  const auto& customer = doc["paths"]["/v1/customers"]["post"];
  const auto& props = customer["requestBody"]["content"]["application/json"]
                              ["schema"]["properties"];
  for (const char* field :
       {"id", "email", "name", "payment_method", "currency"})
    EXPECT_TRUE(props.contains(field)) << field;
  const auto& out = customer["responses"]["201"]["content"]["application/json"]
                            ["schema"]["properties"];
  EXPECT_TRUE(out.contains("version"));
  const auto& tenant = doc["paths"]["/v1/tenants"]["post"];
  EXPECT_TRUE(tenant["responses"]["201"]["content"]["application/json"]
                    ["schema"]["properties"]
                      .contains("api_key"));
  EXPECT_TRUE(doc["paths"]["/v1/plans"]["get"]["responses"]["200"]["content"]
                 ["application/json"]["schema"]["properties"]
                   .contains("next_cursor"));
}

TEST(openapi, every_reference_resolves) {
  fixture f;
  const auto doc = served(f.api);
  std::size_t refs = 0;
  auto walk = [&](const auto& self, const nlohmann::json& node) -> void {
    if (node.is_object()) {
      if (auto it = node.find("$ref"); it != node.end()) {
        ++refs;
        const auto ref = it->get<std::string>();
        ASSERT_EQ(ref.rfind("#/", 0), 0U) << ref;
        EXPECT_NO_THROW(static_cast<void>(
          doc.at(nlohmann::json::json_pointer{ref.substr(1)})))
          << ref;
      }
      for (const auto& [k, v] : node.items())
        self(self, v);
    } else if (node.is_array()) {
      for (const auto& v : node)
        self(self, v);
    }
  };
  walk(walk, doc);
  EXPECT_GT(refs, 0U);
}

TEST(openapi, later_routes_registered_through_the_config_are_documented_too) {
  memory_store db;
  manual_clock clk{utc(2024, 1, 1)};
  always_ready probe;
  app_config c;
  c.db = &db;
  c.clk = &clk;
  c.readiness = &probe;
  c.extra_routes.push_back([](router& r, services&) {
    route rt;
    rt.method = "GET";
    rt.pattern = "/v1/subscriptions/{id}";
    rt.handler = [](request_context&) { return http_response{}; };
    rt.doc.summary = "one subscription";
    r.add(std::move(rt));
  });
  app a{std::move(c)};
  EXPECT_TRUE(paths_of(served(a)).contains({"/v1/subscriptions/{id}", "get"}));
}
