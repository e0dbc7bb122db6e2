// The API's request path in process, on the in-memory store: routing, auth,
// rate limits, idempotency, media types, and the tenant-level routes. (The
// same over real HTTP and PostgreSQL: api_pgtest.cpp.)

#include "api/app.hpp"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "api/auth.hpp"
#include "api/idempotency.hpp"
#include "persistence/memory_store.hpp"

using namespace recur;
using namespace recur::api;
using nlohmann::json;

namespace {

constexpr const char* admin_secret = "test-admin-key-0123456789";

struct always_ready final : readiness_probe {
  bool database_ok() override { return true; }
};

const char* plan_body = R"({"id":"basic","currency":"USD",
  "interval":{"unit":"month","count":1},
  "base":{"kind":"flat","flat_amount":2000},
  "metered":[{"meter":"api_calls","included_quantity":100,
              "overage":{"kind":"per_unit","unit_amount":2}}]})";

class api_app : public ::testing::Test {
protected:
  void SetUp() override { build({}); }

  void build(rate_limit_config limits,
             std::vector<route_registrar> extra = {}) {
    app_config c;
    c.db = &db_;
    c.clk = &clk_;
    c.readiness = &probe_;
    c.admin_key = admin_secret;
    c.rate_limit = limits;
    c.monotonic_ms = [this] { return ms_; };
    c.extra_routes = std::move(extra);
    app_ = std::make_unique<app>(std::move(c));
  }

  http_response call(const std::string& method, const std::string& target,
                     const std::string& body = {}, header_list headers = {},
                     const std::string& key = {}) {
    if (!key.empty())
      headers.emplace_back("Authorization", "Bearer " + key);
    if (!body.empty())
      headers.emplace_back("Content-Type", "application/json");
    return app_->handle(http_request{method, target, headers, body});
  }

  // A tenant through the API; returns its API key.
  std::string make_tenant(const std::string& name = "Acme") {
    auto res = call("POST", "/v1/tenants", R"({"name":")" + name + R"("})", {},
                    admin_secret);
    EXPECT_EQ(res.status, 201U) << res.body;
    const auto doc = json::parse(res.body);
    ids_.push_back(doc["id"].get<std::string>());
    return doc["api_key"].get<std::string>();
  }

  static json body_of(const http_response& r) { return json::parse(r.body); }
  static std::string type_of(const http_response& r) {
    return body_of(r).value("type", "");
  }
  static std::string header_of(const http_response& r, std::string_view name) {
    for (const auto& [k, v] : r.headers)
      if (k == name)
        return v;
    return {};
  }

  memory_store db_;
  manual_clock clk_{utc(2024, 3, 1)};
  always_ready probe_;
  std::int64_t ms_ = 0;
  std::unique_ptr<app> app_;
  std::vector<std::string> ids_; // tenant ids, in creation order
};

} // namespace

// -- routing ------------------------------------------------------------------

TEST_F(api_app, an_unknown_path_is_404_and_a_wrong_method_405_with_allow) {
  auto missing = call("GET", "/v1/nothing");
  EXPECT_EQ(missing.status, 404U);
  EXPECT_EQ(missing.content_type, "application/problem+json");
  EXPECT_EQ(type_of(missing), "not_found");
  auto wrong = call("DELETE", "/v1/customers/cus_1");
  EXPECT_EQ(wrong.status, 405U);
  EXPECT_EQ(type_of(wrong), "method_not_allowed");
  EXPECT_EQ(header_of(wrong, "Allow"), "GET, PATCH");
}

TEST_F(api_app, health_metrics_and_openapi_need_no_key) {
  EXPECT_EQ(call("GET", "/healthz").status, 200U);
  EXPECT_EQ(call("GET", "/readyz").status, 200U);
  EXPECT_EQ(call("GET", "/openapi.json").status, 200U);
  auto m = call("GET", "/metrics");
  EXPECT_EQ(m.status, 200U);
  EXPECT_EQ(m.content_type, "text/plain; version=0.0.4; charset=utf-8");
  EXPECT_NE(
    m.body.find(
      R"(http_requests_total{route="/healthz",method="GET",status="200"} 1)"),
    std::string::npos)
    << m.body;
}

// -- auth ---------------------------------------------------------------------

TEST_F(api_app, creating_a_tenant_needs_the_admin_key) {
  auto none = call("POST", "/v1/tenants", R"({"name":"x"})");
  EXPECT_EQ(none.status, 401U);
  EXPECT_EQ(type_of(none), "unauthorized");
  EXPECT_EQ(header_of(none, "WWW-Authenticate"), "Bearer");
  auto wrong = call("POST", "/v1/tenants", R"({"name":"x"})", {},
                    "wrong-key-123456789");
  EXPECT_EQ(wrong.status, 401U);
  auto ok = call("POST", "/v1/tenants", R"({"name":"Acme","test_mode":true})",
                 {}, admin_secret);
  ASSERT_EQ(ok.status, 201U) << ok.body;
  const auto doc = body_of(ok);
  EXPECT_EQ(doc["name"], "Acme");
  EXPECT_EQ(doc["test_mode"], true);
  EXPECT_EQ(doc["created_at"], "2024-03-01T00:00:00Z");
  const auto key = doc["api_key"].get<std::string>();
  EXPECT_EQ(key.rfind("rk_test_", 0), 0U);
  // Stored as its hash only.
  auto stored = db_.get_tenant(tenant_id{doc["id"].get<std::string>()});
  ASSERT_TRUE(stored);
  EXPECT_EQ(stored->api_key_sha256_hex, sha256_hex(key));
}

TEST_F(api_app, without_a_configured_admin_key_no_tenant_can_be_created) {
  app_config c;
  c.db = &db_;
  c.clk = &clk_;
  c.readiness = &probe_;
  app no_admin{std::move(c)};
  auto res = no_admin.handle(http_request{
    "POST", "/v1/tenants", {{"Authorization", "Bearer "}}, R"({"name":"x"})"});
  EXPECT_EQ(res.status, 401U);
}

TEST_F(api_app, tenant_routes_need_a_known_tenant_key) {
  const auto key = make_tenant();
  EXPECT_EQ(call("GET", "/v1/plans", {}, {}, key).status, 200U);
  EXPECT_EQ(call("GET", "/v1/plans").status, 401U);
  EXPECT_EQ(call("GET", "/v1/plans", {}, {}, key + "0").status, 401U);
  EXPECT_EQ(
    call("GET", "/v1/plans", {}, {{"Authorization", "Basic eDp5"}}).status,
    401U);
  auto admin = call("GET", "/v1/plans", {}, {}, admin_secret);
  EXPECT_EQ(admin.status, 403U);
  EXPECT_EQ(type_of(admin), "forbidden");
}

TEST_F(api_app, one_tenant_never_sees_or_changes_another_tenants_customer) {
  const auto a = make_tenant("A");
  const auto b = make_tenant("B");
  auto created = call("POST", "/v1/customers",
                      R"({"id":"cus_1","email":"a@x.io","name":"A1"})", {}, a);
  ASSERT_EQ(created.status, 201U) << created.body;
  auto seen = call("GET", "/v1/customers/cus_1", {}, {}, b);
  EXPECT_EQ(seen.status, 404U);
  EXPECT_EQ(type_of(seen), "not_found");
  EXPECT_EQ(call("PATCH", "/v1/customers/cus_1",
                 R"({"version":1,"name":"stolen"})", {}, b)
              .status,
            404U);
  // B may use the same id for its own customer.
  EXPECT_EQ(call("POST", "/v1/customers",
                 R"({"id":"cus_1","email":"b@x.io","name":"B1"})", {}, b)
              .status,
            201U);
  EXPECT_EQ(body_of(call("GET", "/v1/customers/cus_1", {}, {}, a))["name"],
            "A1");
}

// -- rate limits --------------------------------------------------------------

TEST_F(api_app, a_tenant_over_its_rate_gets_429_with_retry_after) {
  build({1, 2, 100});
  const auto a = make_tenant("A");
  const auto b = make_tenant("B");
  EXPECT_EQ(call("GET", "/v1/plans", {}, {}, a).status, 200U);
  EXPECT_EQ(call("GET", "/v1/plans", {}, {}, a).status, 200U);
  auto limited = call("GET", "/v1/plans", {}, {}, a);
  EXPECT_EQ(limited.status, 429U);
  EXPECT_EQ(type_of(limited), "rate_limited");
  EXPECT_EQ(header_of(limited, "Retry-After"), "1");
  EXPECT_EQ(call("GET", "/v1/plans", {}, {}, b).status, 200U); // own bucket
  ms_ += 1000;
  EXPECT_EQ(call("GET", "/v1/plans", {}, {}, a).status, 200U);
}

// -- media types --------------------------------------------------------------

TEST_F(api_app, a_body_that_is_not_json_is_415) {
  const auto key = make_tenant();
  auto res = app_->handle(http_request{"POST",
                                       "/v1/customers",
                                       {{"Authorization", "Bearer " + key},
                                        {"Content-Type", "text/plain"}},
                                       R"({"email":"a@x.io","name":"A"})"});
  EXPECT_EQ(res.status, 415U);
  EXPECT_EQ(type_of(res), "unsupported_media_type");
  auto charset = app_->handle(
    http_request{"POST",
                 "/v1/customers",
                 {{"Authorization", "Bearer " + key},
                  {"Content-Type", "Application/JSON; charset=utf-8"}},
                 R"({"email":"a@x.io","name":"A"})"});
  EXPECT_EQ(charset.status, 201U) << charset.body;
}

// -- idempotency --------------------------------------------------------------

TEST_F(api_app, the_same_key_and_body_replay_the_stored_response) {
  const auto key = make_tenant();
  const std::string body = R"({"email":"a@x.io","name":"A"})";
  auto first = call("POST", "/v1/customers", body, {{"Idempotency-Key", "k1"}},
                    key);
  ASSERT_EQ(first.status, 201U);
  EXPECT_EQ(header_of(first, "Idempotent-Replayed"), "");
  auto again = call("POST", "/v1/customers", body, {{"Idempotency-Key", "k1"}},
                    key);
  EXPECT_EQ(again.status, 201U);
  EXPECT_EQ(again.body, first.body); // the same customer id: not created twice
  EXPECT_EQ(header_of(again, "Idempotent-Replayed"), "true");
}

TEST_F(api_app, the_same_key_with_another_body_is_422_and_changes_nothing) {
  const auto key = make_tenant();
  ASSERT_EQ(call("POST", "/v1/customers",
                 R"({"id":"c1","email":"a@x.io","name":"A"})",
                 {{"Idempotency-Key", "k1"}}, key)
              .status,
            201U);
  auto other = call("POST", "/v1/customers",
                    R"({"id":"c2","email":"a@x.io","name":"A"})",
                    {{"Idempotency-Key", "k1"}}, key);
  EXPECT_EQ(other.status, 422U);
  EXPECT_EQ(type_of(other), "idempotency_conflict");
  EXPECT_EQ(call("GET", "/v1/customers/c2", {}, {}, key).status, 404U);
}

TEST_F(api_app, a_key_still_in_flight_is_409) {
  const auto key = make_tenant();
  const std::string body = R"({"email":"a@x.io","name":"A"})";
  http_request probe{"POST", "/v1/customers", {}, body};
  ASSERT_TRUE(db_.begin_idempotent(tenant_id{ids_[0]}, "k1",
                                   request_fingerprint(probe), clk_.now()));
  auto res = call("POST", "/v1/customers", body, {{"Idempotency-Key", "k1"}},
                  key);
  EXPECT_EQ(res.status, 409U);
  EXPECT_EQ(type_of(res), "conflict");
}

TEST_F(api_app, a_key_over_255_characters_is_refused) {
  const auto key = make_tenant();
  auto res = call("POST", "/v1/customers", R"({"email":"a@x.io","name":"A"})",
                  {{"Idempotency-Key", std::string(256, 'k')}}, key);
  EXPECT_EQ(res.status, 400U);
  EXPECT_EQ(type_of(res), "validation_error");
  EXPECT_EQ(call("POST", "/v1/customers", R"({"email":"a@x.io","name":"A"})",
                 {{"Idempotency-Key", std::string(255, 'k')}}, key)
              .status,
            201U);
}

TEST_F(api_app, a_server_error_gives_the_key_back_so_a_retry_runs) {
  int calls = 0;
  build({}, {[&calls](router& r, services&) {
          route rt;
          rt.method = "POST";
          rt.pattern = "/v1/flaky";
          rt.handler = [&calls](request_context&) {
            return ++calls == 1
                     ? problem({503, "unavailable", "try again"})
                     : http_response{201, "application/json", "{}", {}};
          };
          r.add(std::move(rt));
        }});
  const auto key = make_tenant();
  EXPECT_EQ(
    call("POST", "/v1/flaky", "{}", {{"Idempotency-Key", "k"}}, key).status,
    503U);
  EXPECT_EQ(
    call("POST", "/v1/flaky", "{}", {{"Idempotency-Key", "k"}}, key).status,
    201U);
  auto replay = call("POST", "/v1/flaky", "{}", {{"Idempotency-Key", "k"}},
                     key);
  EXPECT_EQ(replay.status, 201U);
  EXPECT_EQ(header_of(replay, "Idempotent-Replayed"), "true");
  EXPECT_EQ(calls, 2);
}

TEST_F(api_app, a_replayed_tenant_creation_does_not_bring_the_api_key_back) {
  const std::string body = R"({"name":"Acme"})";
  auto first = call("POST", "/v1/tenants", body, {{"Idempotency-Key", "t1"}},
                    admin_secret);
  ASSERT_EQ(first.status, 201U);
  auto again = call("POST", "/v1/tenants", body, {{"Idempotency-Key", "t1"}},
                    admin_secret);
  EXPECT_EQ(again.status, 201U);
  EXPECT_EQ(body_of(again)["id"], body_of(first)["id"]);
  EXPECT_TRUE(body_of(again)["api_key"].is_null());
  EXPECT_EQ(again.body.find(body_of(first)["api_key"].get<std::string>()),
            std::string::npos);
}

TEST_F(api_app, validation_errors_are_stored_and_replayed_too) {
  const auto key = make_tenant();
  auto first = call("POST", "/v1/customers", R"({"name":"A"})",
                    {{"Idempotency-Key", "v"}}, key);
  EXPECT_EQ(first.status, 422U);
  auto again = call("POST", "/v1/customers", R"({"name":"A"})",
                    {{"Idempotency-Key", "v"}}, key);
  EXPECT_EQ(again.status, 422U);
  EXPECT_EQ(again.content_type, "application/problem+json");
  EXPECT_EQ(header_of(again, "Idempotent-Replayed"), "true");
}

// -- gateways -----------------------------------------------------------------

TEST_F(api_app, a_gateway_config_is_stored_and_read_back_without_secrets) {
  const auto key = make_tenant();
  auto put = call(
    "PUT", "/v1/gateways/stripe",
    R"({"webhook_secret":"whsec_topsecret","api_key":"sk_test_hidden","base_url":"http://127.0.0.1:1"})",
    {}, key);
  ASSERT_EQ(put.status, 200U) << put.body;
  auto get = call("GET", "/v1/gateways/stripe", {}, {}, key);
  ASSERT_EQ(get.status, 200U);
  const auto doc = body_of(get);
  EXPECT_EQ(doc["gateway"], "stripe");
  EXPECT_EQ(doc["webhook_secret_set"], true);
  EXPECT_EQ(doc["api_key_set"], true);
  EXPECT_EQ(doc["base_url"], "http://127.0.0.1:1");
  for (const auto* res : {&put, &get}) {
    EXPECT_EQ(res->body.find("whsec_topsecret"), std::string::npos);
    EXPECT_EQ(res->body.find("sk_test_hidden"), std::string::npos);
  }
  auto stored = db_.get_gateway_config(tenant_id{ids_[0]}, "stripe");
  ASSERT_TRUE(stored);
  EXPECT_EQ(json::parse(stored->config_json)["webhook_secret"],
            "whsec_topsecret");
}

TEST_F(api_app, bad_gateway_configs_are_refused_and_nothing_is_stored) {
  const auto key = make_tenant();
  EXPECT_EQ(call("PUT", "/v1/gateways/paypal",
                 R"({"webhook_secret":"whsec_12345678"})", {}, key)
              .status,
            404U);
  for (const char* bad :
       {R"({})", R"({"webhook_secret":"short"})",
        R"({"webhook_secret":"whsec_12345678","base_url":"ftp://x"})",
        R"({"webhook_secret":"whsec_12345678","extra":1})",
        R"({"webhook_secret":12345678})"}) {
    SCOPED_TRACE(bad);
    auto res = call("PUT", "/v1/gateways/sandbox", bad, {}, key);
    EXPECT_EQ(res.status, 422U);
    EXPECT_EQ(type_of(res), "validation_error");
  }
  EXPECT_EQ(call("GET", "/v1/gateways/sandbox", {}, {}, key).status, 404U);
}

// -- customers ----------------------------------------------------------------

TEST_F(api_app, a_customer_is_created_read_and_patched_with_its_version) {
  const auto key = make_tenant();
  auto created = call(
    "POST", "/v1/customers",
    R"({"email":"ann@x.io","name":"Ann","payment_method":"pm_card_visa","currency":"EUR"})",
    {}, key);
  ASSERT_EQ(created.status, 201U) << created.body;
  const auto doc = body_of(created);
  const auto id = doc["id"].get<std::string>();
  EXPECT_EQ(id.rfind("cus_", 0), 0U);
  EXPECT_EQ(doc["version"], 1);
  EXPECT_EQ(doc["payment_method"], "pm_card_visa");
  EXPECT_EQ(doc["currency"], "EUR");
  EXPECT_EQ(body_of(call("GET", "/v1/customers/" + id, {}, {}, key)), doc);

  clk_.advance_seconds(60);
  auto patched = call("PATCH", "/v1/customers/" + id,
                      R"({"version":1,"name":"Anne","payment_method":null})",
                      {}, key);
  ASSERT_EQ(patched.status, 200U) << patched.body;
  const auto p = body_of(patched);
  EXPECT_EQ(p["version"], 2);
  EXPECT_EQ(p["name"], "Anne");
  EXPECT_EQ(p["email"], "ann@x.io");
  EXPECT_TRUE(p["payment_method"].is_null());
  EXPECT_EQ(p["created_at"], "2024-03-01T00:00:00Z");
  EXPECT_EQ(p["updated_at"], "2024-03-01T00:01:00Z");

  auto stale = call("PATCH", "/v1/customers/" + id,
                    R"({"version":1,"name":"Old"})", {}, key);
  EXPECT_EQ(stale.status, 409U);
  EXPECT_EQ(type_of(stale), "conflict");
  EXPECT_EQ(body_of(call("GET", "/v1/customers/" + id, {}, {}, key))["name"],
            "Anne");
}

TEST_F(api_app, a_taken_customer_id_is_409) {
  const auto key = make_tenant();
  const std::string body = R"({"id":"c1","email":"a@x.io","name":"A"})";
  ASSERT_EQ(call("POST", "/v1/customers", body, {}, key).status, 201U);
  auto again = call("POST", "/v1/customers", body, {}, key);
  EXPECT_EQ(again.status, 409U);
  EXPECT_EQ(type_of(again), "conflict");
}

TEST_F(api_app,
       bad_customers_are_refused_naming_the_field_and_nothing_is_stored) {
  const auto key = make_tenant();
  struct row {
    const char* body;
    unsigned status;
    const char* field;
  };
  const row rows[] = {
    {R"({"id":"bad1","name":"A"})", 422, "email"},
    {R"({"id":"bad2","email":"nope","name":"A"})", 422, "email"},
    {R"({"id":"bad3","email":"a@x.io"})", 422, "name"},
    {R"({"id":"bad4","email":"a@x.io","name":7})", 422, "name"},
    {R"({"id":"bad5","email":"a@x.io","name":"A","currency":"XXX"})", 422,
     "currency"},
    {R"({"id":"bad6","email":"a@x.io","name":"A","currency":"usd"})", 422,
     "currency"},
    {R"({"id":"bad7","email":"a@x.io","name":"A","colour":"red"})", 422,
     "colour"},
    {R"({"id":"bad 8","email":"a@x.io","name":"A"})", 422, "id"},
    {R"({"id":"bad9","email":"a@x.io","name":"A","payment_method":"pm card"})",
     422, "payment_method"},
    {R"({"id":"bad10","email":"a@x.io",)", 400, "body"},
    {R"(["bad11"])", 422, "body"},
  };
  for (const auto& r : rows) {
    SCOPED_TRACE(r.body);
    auto res = call("POST", "/v1/customers", r.body, {}, key);
    EXPECT_EQ(res.status, r.status);
    EXPECT_EQ(type_of(res), "validation_error");
    EXPECT_EQ(body_of(res)["detail"].get<std::string>().rfind(r.field, 0), 0U)
      << res.body;
  }
  for (int i = 1; i <= 11; ++i)
    EXPECT_FALSE(db_.get_customer(tenant_id{ids_[0]},
                                  customer_id{"bad" + std::to_string(i)}));
}

// -- plans --------------------------------------------------------------------

TEST_F(api_app, a_plan_gets_versions_one_after_another) {
  const auto key = make_tenant();
  auto v1 = call("POST", "/v1/plans", plan_body, {}, key);
  ASSERT_EQ(v1.status, 201U) << v1.body;
  EXPECT_EQ(body_of(v1)["id"], "basic");
  EXPECT_EQ(body_of(v1)["version"], 1);
  EXPECT_EQ(body_of(v1)["effective_at"], "2024-03-01T00:00:00Z");
  EXPECT_EQ(body_of(v1)["trial_days"], 0);

  clk_.advance_seconds(86400);
  auto body2 = json::parse(plan_body);
  body2["base"]["flat_amount"] = 2500;
  auto v2 = call("POST", "/v1/plans", body2.dump(), {}, key);
  ASSERT_EQ(v2.status, 201U) << v2.body;
  EXPECT_EQ(body_of(v2)["version"], 2);
  EXPECT_EQ(body_of(v2)["base"]["flat_amount"], 2500);

  auto list = body_of(call("GET", "/v1/plans", {}, {}, key));
  ASSERT_EQ(list["data"].size(), 1U);
  EXPECT_EQ(list["data"][0]["version"], 2);
  EXPECT_EQ(list["has_more"], false);
  auto one = body_of(call("GET", "/v1/plans/basic", {}, {}, key));
  ASSERT_EQ(one["versions"].size(), 2U);
  EXPECT_EQ(one["versions"][0]["base"]["flat_amount"], 2000);
}

TEST_F(api_app, a_new_version_in_another_currency_or_out_of_order_is_refused) {
  const auto key = make_tenant();
  ASSERT_EQ(call("POST", "/v1/plans", plan_body, {}, key).status, 201U);
  clk_.advance_seconds(60);
  auto eur = json::parse(plan_body);
  eur["currency"] = "EUR";
  auto res = call("POST", "/v1/plans", eur.dump(), {}, key);
  EXPECT_EQ(res.status, 422U);
  EXPECT_EQ(type_of(res), "validation_error");
  auto earlier = json::parse(plan_body);
  earlier["effective_at"] = "2023-01-01T00:00:00Z";
  EXPECT_EQ(call("POST", "/v1/plans", earlier.dump(), {}, key).status, 422U);
  auto skip = json::parse(plan_body);
  skip["version"] = 5;
  EXPECT_EQ(call("POST", "/v1/plans", skip.dump(), {}, key).status, 409U);
  auto versions = db_.list_plan_versions(tenant_id{ids_[0]}, plan_id{"basic"});
  ASSERT_TRUE(versions);
  EXPECT_EQ(versions->size(), 1U);
}

TEST_F(api_app, bad_plans_are_refused_and_nothing_is_stored) {
  const auto key = make_tenant();
  const auto with = [](const char* field, json value) {
    auto b = json::parse(plan_body);
    b[field] = std::move(value);
    return b.dump();
  };
  const auto without = [](const char* field) {
    auto b = json::parse(plan_body);
    b.erase(field);
    return b.dump();
  };
  for (const auto& bad :
       {without("id"), without("currency"), with("currency", "ZZZ"),
        with("base", json{{"kind", "flat"}, {"flat_amount", -1}}),
        with("base", json{{"kind", "flat"}, {"flat_amount", 1.5}}),
        with("interval", json{{"unit", "fortnight"}, {"count", 1}}),
        with("trial_days", 9999), with("nonsense", true),
        with("id", "has space")}) {
    SCOPED_TRACE(bad);
    auto res = call("POST", "/v1/plans", bad, {}, key);
    EXPECT_EQ(res.status, 422U) << res.body;
    EXPECT_EQ(type_of(res), "validation_error");
  }
  auto page = db_.list_plans(tenant_id{ids_[0]}, "", 10);
  ASSERT_TRUE(page);
  EXPECT_TRUE(page->items.empty());
}

TEST_F(api_app, plans_are_listed_page_by_page) {
  const auto key = make_tenant();
  for (const char* id : {"p1", "p2", "p3"}) {
    auto b = json::parse(plan_body);
    b["id"] = id;
    ASSERT_EQ(call("POST", "/v1/plans", b.dump(), {}, key).status, 201U);
  }
  std::vector<std::string> seen;
  std::string target = "/v1/plans?limit=2";
  for (int page = 0; page < 5; ++page) {
    auto res = call("GET", target, {}, {}, key);
    ASSERT_EQ(res.status, 200U) << res.body;
    const auto doc = body_of(res);
    EXPECT_LE(doc["data"].size(), 2U);
    for (const auto& p : doc["data"])
      seen.push_back(p["id"].get<std::string>());
    if (!doc["has_more"].get<bool>()) {
      EXPECT_TRUE(doc["next_cursor"].is_null());
      break;
    }
    target = "/v1/plans?limit=2&cursor="
             + doc["next_cursor"].get<std::string>();
  }
  EXPECT_EQ(seen, (std::vector<std::string>{"p1", "p2", "p3"}));
  EXPECT_EQ(call("GET", "/v1/plans?limit=0", {}, {}, key).status, 400U);
  EXPECT_EQ(call("GET", "/v1/plans?cursor=p1", {}, {}, key).status, 400U);
  EXPECT_EQ(call("GET", "/v1/plans?sort=id", {}, {}, key).status, 400U);
}

// -- usage --------------------------------------------------------------------

class api_usage : public api_app {
protected:
  void SetUp() override {
    api_app::SetUp();
    key_ = make_tenant();
    ASSERT_EQ(call("POST", "/v1/plans", plan_body, {}, key_).status, 201U);
    // A subscription's read model row, as the subscription actors write it.
    unit_of_work w;
    w.tenant = tenant_id{ids_[0]};
    w.subscriptions.push_back({subscription_id{"sub_1"}, customer_id{"cus_1"},
                               plan_id{"basic"}, "active", 1, "{}",
                               clk_.now()});
    ASSERT_TRUE(db_.commit(w));
  }

  std::int64_t used() {
    auto n = db_.sum_usage(tenant_id{ids_[0]}, subscription_id{"sub_1"},
                           "api_calls", utc(2000, 1, 1), utc(2100, 1, 1));
    EXPECT_TRUE(n);
    return n ? *n : -1;
  }

  std::string key_;
};

TEST_F(api_usage, records_are_stored_once_per_id) {
  const std::string batch = R"({"records":[
    {"id":"u1","subscription":"sub_1","meter":"api_calls","quantity":5},
    {"id":"u2","subscription":"sub_1","meter":"api_calls","quantity":7,
     "timestamp":"2024-03-01T00:00:00Z"}]})";
  auto first = call("POST", "/v1/usage", batch, {}, key_);
  ASSERT_EQ(first.status, 200U) << first.body;
  EXPECT_EQ(body_of(first), (json{{"accepted", 2}, {"duplicates", 0}}));
  auto again = call("POST", "/v1/usage", batch, {}, key_);
  EXPECT_EQ(body_of(again), (json{{"accepted", 0}, {"duplicates", 2}}));
  EXPECT_EQ(used(), 12);
}

TEST_F(api_usage, one_bad_record_refuses_the_whole_batch) {
  const char* good
    = R"({"id":"ok","subscription":"sub_1","meter":"api_calls","quantity":1})";
  for (
    const std::string& bad : std::vector<std::string>{
      R"({"id":"x","subscription":"sub_1","meter":"api_calls","quantity":-1})",
      R"({"id":"x","subscription":"sub_9","meter":"api_calls","quantity":1})",
      R"({"id":"x","subscription":"sub_1","meter":"storage","quantity":1})",
      R"({"id":"x","subscription":"sub_1","meter":"api_calls","quantity":"1"})",
      R"({"id":"x","subscription":"sub_1","meter":"api_calls","quantity":1,"timestamp":"yesterday"})",
      R"({"subscription":"sub_1","meter":"api_calls","quantity":1})",
      R"({"id":"x","subscription":"sub_1","meter":"api_calls","quantity":1,"unit":"x"})",
      "7"}) {
    SCOPED_TRACE(bad);
    auto res = call("POST", "/v1/usage",
                    std::string{R"({"records":[)"} + good + "," + bad + "]}",
                    {}, key_);
    EXPECT_EQ(res.status, 422U);
    EXPECT_EQ(type_of(res), "validation_error");
    EXPECT_EQ(body_of(res)["detail"].get<std::string>().rfind("records[1]", 0),
              0U)
      << res.body;
  }
  EXPECT_EQ(call("POST", "/v1/usage", R"({"records":[]})", {}, key_).status,
            422U);
  EXPECT_EQ(used(), 0);
}

// -- ledger -------------------------------------------------------------------

TEST_F(api_app, the_ledger_balance_lists_accounts_and_says_they_balance) {
  const auto key = make_tenant();
  auto empty = body_of(call("GET", "/v1/ledger/balance", {}, {}, key));
  EXPECT_TRUE(empty["balances"].empty());
  EXPECT_EQ(empty["balanced"], true);
  unit_of_work w;
  w.tenant = tenant_id{ids_[0]};
  auto tx = payment_received(money{1500, currency::of("USD")});
  ASSERT_TRUE(tx);
  w.ledger.push_back({"inv_1/payment", *tx, clk_.now(), "inv_1"});
  ASSERT_TRUE(db_.commit(w));
  auto doc = body_of(call("GET", "/v1/ledger/balance", {}, {}, key));
  EXPECT_EQ(doc["balanced"], true);
  bool cash = false;
  for (const auto& b : doc["balances"])
    if (b["account"] == "cash") {
      cash = true;
      EXPECT_EQ(b["currency"], "USD");
      EXPECT_EQ(b["balance_minor"], 1500);
    }
  EXPECT_TRUE(cash) << doc.dump();
}

TEST_F(api_app, reconciliation_compares_collections_invoices_and_cash) {
  const auto key = make_tenant();
  auto empty = body_of(call("GET", "/v1/reconciliation", {}, {}, key));
  EXPECT_EQ(empty["balanced"], true);
  EXPECT_EQ(empty["complete"], true);
  // Cash without a collected payment behind it: the checks catch it.
  unit_of_work w;
  w.tenant = tenant_id{ids_[0]};
  w.ledger.push_back({"stray",
                      *payment_received(money{900, currency::of("USD")}),
                      clk_.now(), "inv_x"});
  ASSERT_TRUE(db_.commit(w));
  auto doc = body_of(call("GET", "/v1/reconciliation", {}, {}, key));
  EXPECT_EQ(doc["balanced"], false);
  ASSERT_EQ(doc["currencies"].size(), 1U);
  EXPECT_EQ(doc["currencies"][0]["ledger_cash_minor"], 900);
  EXPECT_EQ(doc["currencies"][0]["checks"]["cash_matches_collections"], false);
  // A dispute withholds that cash (DR disputes / CR cash): cash is 0 now,
  // which must not pass for "nothing collected, nothing held back".
  unit_of_work d;
  d.tenant = tenant_id{ids_[0]};
  const money held{900, currency::of("USD")};
  d.ledger.push_back({"stray/dispute",
                      *ledger_transaction::make(
                        "dispute dp_1",
                        {posting{account::disputes, entry_side::debit, held},
                         posting{account::cash, entry_side::credit, held}}),
                      clk_.now(), "inv_x"});
  ASSERT_TRUE(db_.commit(d));
  doc = body_of(call("GET", "/v1/reconciliation", {}, {}, key));
  ASSERT_EQ(doc["currencies"].size(), 1U);
  EXPECT_EQ(doc["currencies"][0]["ledger_cash_minor"], 0);
  EXPECT_EQ(doc["currencies"][0]["ledger_disputes_minor"], 900);
  EXPECT_EQ(doc["currencies"][0]["checks"]["cash_matches_collections"], false);
  EXPECT_EQ(doc["balanced"], false);
}
