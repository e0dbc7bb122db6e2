// The API as a client meets it: the built recurd on a fresh PostgreSQL
// database of its own (pg_testdb), real HTTP over TCP. Tenants and keys,
// isolation between tenants, plans, customers, usage, gateway configs,
// idempotency, rate limits, pagination, malformed input that changes
// nothing, /openapi.json and /metrics.

#include <memory>
#include <set>
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>
#include <pqxx/pqxx>

#include "persistence/pg_store.hpp"
#include "tests/api/recurd_process.hpp"
#include "tests/persistence/pg_testdb.hpp"

#ifndef RECURD_PATH
#  error "RECURD_PATH must name the recurd binary"
#endif

namespace {

using namespace recur;
using namespace recur::apitest;
using nlohmann::json;
using headers = std::vector<std::pair<std::string, std::string>>;

constexpr const char* admin_key = "api-pgtest-admin-key-0123456789";

const char* plan_body = R"({"id":"basic","currency":"USD",
  "interval":{"unit":"month","count":1},"trial_days":14,
  "base":{"kind":"flat","flat_amount":2000},
  "metered":[{"meter":"api_calls","included_quantity":100,
              "overage":{"kind":"per_unit","unit_amount":2}}]})";

struct tenant_keys {
  std::string id;
  std::string key;
};

class api_pg : public testing::Test {
protected:
  void SetUp() override {
    db_ = pgtest::scratch_db::create();
    ASSERT_NE(db_, nullptr) << pgtest::missing_db_message();
  }

  void TearDown() override {
    if (server_)
      server_->terminate();
  }

  // recurd on this test's database with the admin key; extra flags appended.
  testing::AssertionResult start(const std::vector<std::string>& extra = {}) {
    return spawn_listening(
      RECURD_PATH,
      [&](std::uint16_t p) {
        std::vector<std::string> args{"--db",     db_->conninfo(),
                                      "--kafka",  "none",
                                      "--listen", "127.0.0.1:" + std::to_string(p)};
        args.insert(args.end(), extra.begin(), extra.end());
        return args;
      },
      {{"RECUR_ADMIN_KEY", admin_key}}, server_, port_);
  }

  http_reply call(const std::string& method, const std::string& target,
                  const std::string& body = {}, headers extra = {},
                  const std::string& key = {}) {
    return request(port_, method, target, key, body, std::move(extra));
  }

  tenant_keys make_tenant(const std::string& name) {
    auto res = call("POST", "/v1/tenants", R"({"name":")" + name + R"("})", {},
                    admin_key);
    EXPECT_EQ(res.status, 201) << res.body;
    const auto doc = res.json();
    return {doc.value("id", ""), doc.value("api_key", "")};
  }

  // Digest of every row of the tables the API writes, read as superuser.
  std::string snapshot() {
    pqxx::connection c{db_->conninfo()};
    pqxx::work tx{c};
    std::string out;
    for (const char* table :
         {"tenants", "customers", "plans", "usage_events", "gateway_configs",
          "idempotency_keys", "subscriptions", "audit_log"})
      out += std::string{table} + "="
             + tx.exec("SELECT md5(coalesce(string_agg(t::text, '|' ORDER BY"
                       " t::text), '')) FROM "
                       + tx.quote_name(table) + " t")[0][0]
                 .as<std::string>()
             + " ";
    return out;
  }

  std::unique_ptr<pgtest::scratch_db> db_;
  std::unique_ptr<child_process> server_;
  std::uint16_t port_ = 0;
};

} // namespace

// -- tenants and keys ---------------------------------------------------------

TEST_F(api_pg, a_tenant_needs_the_admin_key_and_its_key_works_once_shown) {
  ASSERT_TRUE(start());
  EXPECT_EQ(call("POST", "/v1/tenants", R"({"name":"x"})").status, 401);
  auto wrong = call("POST", "/v1/tenants", R"({"name":"x"})", {},
                    "not-the-admin-key-000000");
  EXPECT_EQ(wrong.status, 401);
  EXPECT_EQ(wrong.header("content-type"), "application/problem+json");
  EXPECT_EQ(wrong.json()["type"], "unauthorized");

  const auto t = make_tenant("Acme");
  ASSERT_EQ(t.key.rfind("rk_live_", 0), 0U);
  EXPECT_EQ(call("GET", "/v1/plans", {}, {}, t.key).status, 200);
  EXPECT_EQ(call("GET", "/v1/plans", {}, {}, t.key + "x").status, 401);
  EXPECT_EQ(call("GET", "/v1/plans").status, 401);

  // Only the hash is stored, nowhere the key itself.
  pqxx::connection c{db_->conninfo()};
  pqxx::work tx{c};
  const auto hash = tx.exec_params("SELECT api_key_sha256_hex FROM tenants"
                                   " WHERE tenant_id = $1",
                                   t.id)[0][0]
                      .as<std::string>();
  EXPECT_EQ(hash.size(), 64U);
  EXPECT_EQ(tx.exec_params("SELECT count(*) FROM tenants t WHERE"
                           " strpos(t::text, $1) > 0",
                           t.key)[0][0]
              .as<int>(),
            0);
}

TEST_F(api_pg, a_replayed_tenant_creation_is_the_same_tenant_without_its_key) {
  ASSERT_TRUE(start());
  const std::string body = R"({"name":"Once","test_mode":true})";
  auto first = call("POST", "/v1/tenants", body, {{"Idempotency-Key", "t-1"}},
                    admin_key);
  ASSERT_EQ(first.status, 201) << first.body;
  auto again = call("POST", "/v1/tenants", body, {{"Idempotency-Key", "t-1"}},
                    admin_key);
  ASSERT_EQ(again.status, 201) << again.body;
  EXPECT_EQ(again.header("idempotent-replayed"), "true");
  EXPECT_EQ(again.json()["id"], first.json()["id"]);
  EXPECT_TRUE(again.json()["api_key"].is_null());
  pqxx::connection c{db_->conninfo()};
  pqxx::work tx{c};
  EXPECT_EQ(tx.exec("SELECT count(*) FROM tenants")[0][0].as<int>(), 1);
  EXPECT_EQ(tx.exec_params("SELECT count(*) FROM idempotency_keys k WHERE"
                           " strpos(k::text, $1) > 0",
                           first.json()["api_key"].get<std::string>())[0][0]
              .as<int>(),
            0);
}

TEST_F(api_pg, another_tenants_key_sees_nothing_of_the_first) {
  ASSERT_TRUE(start());
  const auto a = make_tenant("A");
  const auto b = make_tenant("B");
  ASSERT_EQ(call("POST", "/v1/customers",
                 R"({"id":"cus_a","email":"a@a.io","name":"A"})", {}, a.key)
              .status,
            201);
  ASSERT_EQ(call("POST", "/v1/plans", plan_body, {}, a.key).status, 201);
  ASSERT_EQ(call("PUT", "/v1/gateways/sandbox",
                 R"({"webhook_secret":"whsec_aaaaaaaa"})", {}, a.key)
              .status,
            200);

  EXPECT_EQ(call("GET", "/v1/customers/cus_a", {}, {}, b.key).status, 404);
  EXPECT_EQ(call("PATCH", "/v1/customers/cus_a", R"({"version":1,"name":"x"})",
                 {}, b.key)
              .status,
            404);
  EXPECT_EQ(call("GET", "/v1/plans/basic", {}, {}, b.key).status, 404);
  EXPECT_TRUE(call("GET", "/v1/plans", {}, {}, b.key).json()["data"].empty());
  EXPECT_EQ(call("GET", "/v1/gateways/sandbox", {}, {}, b.key).status, 404);
  EXPECT_TRUE(call("GET", "/v1/ledger/balance", {}, {}, b.key)
                .json()["balances"]
                .empty());
  // A's own view is intact.
  EXPECT_EQ(call("GET", "/v1/customers/cus_a", {}, {}, a.key).json()["name"],
            "A");
}

// -- plans, customers, usage, gateways
// ------------------------------------------

TEST_F(api_pg, plans_are_versioned_and_customers_created_and_patched) {
  ASSERT_TRUE(start());
  const auto t = make_tenant("Acme");
  auto v1 = call("POST", "/v1/plans", plan_body, {}, t.key);
  ASSERT_EQ(v1.status, 201) << v1.body;
  EXPECT_EQ(v1.json()["version"], 1);
  EXPECT_EQ(v1.json()["trial_days"], 14);
  auto later = json::parse(plan_body);
  later["effective_at"] = "2100-01-01T00:00:00Z";
  later["base"]["flat_amount"] = 3000;
  auto v2 = call("POST", "/v1/plans", later.dump(), {}, t.key);
  ASSERT_EQ(v2.status, 201) << v2.body;
  EXPECT_EQ(v2.json()["version"], 2);
  const auto versions = call("GET", "/v1/plans/basic", {}, {}, t.key).json();
  ASSERT_EQ(versions["versions"].size(), 2U);
  EXPECT_EQ(versions["versions"][1]["base"]["flat_amount"], 3000);

  auto good = call(
    "POST", "/v1/customers",
    R"({"email":"ann@x.io","name":"Ann","payment_method":"pm_card_visa","currency":"USD"})",
    {}, t.key);
  ASSERT_EQ(good.status, 201) << good.body;
  const auto id = good.json()["id"].get<std::string>();
  auto declining = call(
    "POST", "/v1/customers",
    R"({"email":"bob@x.io","name":"Bob","payment_method":"pm_card_chargeDeclined"})",
    {}, t.key);
  EXPECT_EQ(declining.status, 201) << declining.body;
  auto bad = call("POST", "/v1/customers", R"({"email":"bob@x.io","name":5})",
                  {}, t.key);
  EXPECT_EQ(bad.status, 422);
  EXPECT_EQ(bad.json()["type"], "validation_error");

  auto patched = call("PATCH", "/v1/customers/" + id,
                      R"({"version":1,"email":"ann@y.io"})", {}, t.key);
  ASSERT_EQ(patched.status, 200) << patched.body;
  EXPECT_EQ(patched.json()["version"], 2);
  EXPECT_EQ(call("PATCH", "/v1/customers/" + id,
                 R"({"version":1,"email":"old@y.io"})", {}, t.key)
              .status,
            409);
  EXPECT_EQ(call("GET", "/v1/customers/" + id, {}, {}, t.key).json()["email"],
            "ann@y.io");
}

TEST_F(api_pg, usage_is_recorded_once_per_id_for_a_known_subscription) {
  ASSERT_TRUE(start());
  const auto t = make_tenant("Acme");
  ASSERT_EQ(call("POST", "/v1/plans", plan_body, {}, t.key).status, 201);
  {
    // The subscription's read model row, as the subscription actors write it.
    auto cfg = db_->config();
    auto store = open_pg_store(cfg);
    ASSERT_TRUE(store) << store.error().detail;
    unit_of_work w;
    w.tenant = tenant_id{t.id};
    w.subscriptions.push_back({subscription_id{"sub_1"}, customer_id{"cus_1"},
                               plan_id{"basic"}, "active", 1, "{}",
                               utc(2024, 1, 1)});
    ASSERT_TRUE((*store)->commit(w));
  }
  const std::string batch = R"({"records":[
    {"id":"u1","subscription":"sub_1","meter":"api_calls","quantity":5},
    {"id":"u2","subscription":"sub_1","meter":"api_calls","quantity":7}]})";
  auto first = call("POST", "/v1/usage", batch, {}, t.key);
  ASSERT_EQ(first.status, 200) << first.body;
  EXPECT_EQ(first.json(), (json{{"accepted", 2}, {"duplicates", 0}}));
  EXPECT_EQ(call("POST", "/v1/usage", batch, {}, t.key).json(),
            (json{{"accepted", 0}, {"duplicates", 2}}));
  auto unknown = call(
    "POST", "/v1/usage",
    R"({"records":[{"id":"u3","subscription":"sub_404","meter":"api_calls","quantity":1}]})",
    {}, t.key);
  EXPECT_EQ(unknown.status, 422);
  pqxx::connection c{db_->conninfo()};
  EXPECT_EQ(pqxx::work{c}
              .exec("SELECT sum(quantity) FROM usage_events")[0][0]
              .as<int>(),
            12);
}

TEST_F(api_pg, a_gateway_config_is_stored_with_its_secret_and_shown_without) {
  ASSERT_TRUE(start());
  const auto t = make_tenant("Acme");
  auto put
    = call("PUT", "/v1/gateways/stripe",
           R"({"webhook_secret":"whsec_verysecret","api_key":"sk_test_zzz"})",
           {}, t.key);
  ASSERT_EQ(put.status, 200) << put.body;
  auto get = call("GET", "/v1/gateways/stripe", {}, {}, t.key);
  ASSERT_EQ(get.status, 200);
  EXPECT_EQ(get.json()["webhook_secret_set"], true);
  EXPECT_EQ(get.body.find("whsec_verysecret"), std::string::npos);
  EXPECT_EQ(get.body.find("sk_test_zzz"), std::string::npos);
  // The webhook endpoint reads the secret back through the store.
  auto store = open_pg_store(db_->config());
  ASSERT_TRUE(store);
  auto cfg = (*store)->get_gateway_config(tenant_id{t.id}, "stripe");
  ASSERT_TRUE(cfg);
  EXPECT_EQ(json::parse(cfg->config_json)["webhook_secret"],
            "whsec_verysecret");
}

// -- idempotency, rate limits, pagination -------------------------------------

TEST_F(api_pg, an_idempotency_key_replays_the_same_body_and_refuses_another) {
  ASSERT_TRUE(start());
  const auto t = make_tenant("Acme");
  const std::string body = R"({"email":"a@x.io","name":"A"})";
  auto first = call("POST", "/v1/customers", body,
                    {{"Idempotency-Key", "abc-1"}}, t.key);
  ASSERT_EQ(first.status, 201);
  auto replay = call("POST", "/v1/customers", body,
                     {{"Idempotency-Key", "abc-1"}}, t.key);
  EXPECT_EQ(replay.status, 201);
  EXPECT_EQ(replay.header("idempotent-replayed"), "true");
  EXPECT_EQ(replay.json()["id"], first.json()["id"]);
  auto other = call("POST", "/v1/customers", R"({"email":"b@x.io","name":"B"})",
                    {{"Idempotency-Key", "abc-1"}}, t.key);
  EXPECT_EQ(other.status, 422);
  EXPECT_EQ(other.json()["type"], "idempotency_conflict");
  pqxx::connection c{db_->conninfo()};
  EXPECT_EQ(
    pqxx::work{c}.exec("SELECT count(*) FROM customers")[0][0].as<int>(), 1);
}

TEST_F(api_pg, a_tenant_over_its_rate_gets_429_with_retry_after) {
  ASSERT_TRUE(start({"--rate-limit", "1", "--rate-burst", "3"}));
  const auto t = make_tenant("Acme");
  std::vector<int> statuses;
  http_reply limited;
  for (int i = 0; i < 6; ++i) {
    auto r = call("GET", "/v1/plans", {}, {}, t.key);
    statuses.push_back(r.status);
    if (r.status == 429)
      limited = r;
  }
  EXPECT_EQ(statuses[0], 200);
  EXPECT_EQ(statuses[1], 200);
  EXPECT_EQ(statuses[2], 200);
  ASSERT_EQ(limited.status, 429) << "six requests at 1/s with a burst of 3";
  EXPECT_EQ(limited.json()["type"], "rate_limited");
  EXPECT_GE(std::stoi(limited.header("retry-after")), 1);
  // Another tenant has its own bucket.
  const auto other = make_tenant("Other");
  EXPECT_EQ(call("GET", "/v1/plans", {}, {}, other.key).status, 200);
}

TEST_F(api_pg, plans_are_listed_with_cursor_pagination) {
  ASSERT_TRUE(start());
  const auto t = make_tenant("Acme");
  std::set<std::string> made;
  for (int i = 0; i < 5; ++i) {
    auto b = json::parse(plan_body);
    b["id"] = "plan_" + std::to_string(i);
    made.insert(b["id"].get<std::string>());
    ASSERT_EQ(call("POST", "/v1/plans", b.dump(), {}, t.key).status, 201);
  }
  std::vector<std::string> seen;
  std::string target = "/v1/plans?limit=2";
  int pages = 0;
  for (; pages < 10; ++pages) {
    auto page = call("GET", target, {}, {}, t.key);
    ASSERT_EQ(page.status, 200) << page.body;
    const auto doc = page.json();
    EXPECT_LE(doc["data"].size(), 2U);
    for (const auto& p : doc["data"])
      seen.push_back(p["id"].get<std::string>());
    if (!doc["has_more"].get<bool>())
      break;
    target = "/v1/plans?limit=2&starting_after="
             + doc["next_cursor"].get<std::string>();
  }
  EXPECT_EQ(pages, 2); // pages 0, 1, 2
  EXPECT_EQ(std::set<std::string>(seen.begin(), seen.end()), made);
  EXPECT_EQ(seen.size(), made.size());
}

// -- malformed requests -------------------------------------------------------

TEST_F(api_pg, malformed_requests_are_4xx_and_change_nothing) {
  ASSERT_TRUE(start());
  const auto t = make_tenant("Acme");
  ASSERT_EQ(call("POST", "/v1/plans", plan_body, {}, t.key).status, 201);
  ASSERT_EQ(call("POST", "/v1/customers",
                 R"({"id":"cus_1","email":"a@x.io","name":"A"})", {}, t.key)
              .status,
            201);
  const auto before = snapshot();

  auto eur = json::parse(plan_body);
  eur["currency"] = "EUR";
  eur["effective_at"] = "2100-01-01T00:00:00Z";
  auto negative = json::parse(plan_body);
  negative["id"] = "neg";
  negative["base"]["flat_amount"] = -100;
  struct row {
    std::string method, target, body;
    headers extra;
    bool auth;
    int status;
    const char* type;
  };
  const std::vector<row> rows = {
    {"POST",
     "/v1/customers",
     R"({"email":"a@x.io",)",
     {},
     true,
     400,
     "validation_error"},
    {"POST",
     "/v1/customers",
     R"({"email":1,"name":"A"})",
     {},
     true,
     422,
     "validation_error"},
    {"POST",
     "/v1/customers",
     R"({"email":"b@x.io","name":"B","vip":true})",
     {},
     true,
     422,
     "validation_error"},
    {"POST",
     "/v1/customers",
     R"({"email":"b@x.io","name":"B","currency":"ABC"})",
     {},
     true,
     422,
     "validation_error"},
    {"POST",
     "/v1/customers",
     R"({"id":"cus_1","email":"b@x.io","name":"B"})",
     {},
     true,
     409,
     "conflict"},
    {"POST",
     "/v1/customers",
     R"({"email":"b@x.io","name":"B"})",
     {{"Content-Type", "text/plain"}},
     true,
     415,
     "unsupported_media_type"},
    {"POST",
     "/v1/customers",
     R"({"email":"b@x.io","name":"B"})",
     {},
     false,
     401,
     "unauthorized"},
    {"PATCH",
     "/v1/customers/cus_1",
     R"({"version":7,"name":"C"})",
     {},
     true,
     409,
     "conflict"},
    {"PATCH",
     "/v1/customers/cus_1",
     R"({"name":"C"})",
     {},
     true,
     422,
     "validation_error"},
    {"PATCH",
     "/v1/customers/nobody",
     R"({"version":1,"name":"C"})",
     {},
     true,
     404,
     "not_found"},
    {"POST", "/v1/plans", negative.dump(), {}, true, 422, "validation_error"},
    {"POST", "/v1/plans", eur.dump(), {}, true, 422, "validation_error"},
    {"POST",
     "/v1/plans",
     R"({"id":"x","currency":"USD"})",
     {},
     true,
     422,
     "validation_error"},
    {"POST", "/v1/plans", "[]", {}, true, 422, "validation_error"},
    {"POST",
     "/v1/usage",
     R"({"records":[{"id":"u","subscription":"sub_404","meter":"api_calls","quantity":1}]})",
     {},
     true,
     422,
     "validation_error"},
    {"POST",
     "/v1/usage",
     R"({"records":[{"id":"u","subscription":"s","meter":"m","quantity":-3}]})",
     {},
     true,
     422,
     "validation_error"},
    {"POST",
     "/v1/usage",
     R"({"records":"all"})",
     {},
     true,
     422,
     "validation_error"},
    {"PUT",
     "/v1/gateways/paypal",
     R"({"webhook_secret":"whsec_12345678"})",
     {},
     true,
     404,
     "not_found"},
    {"PUT",
     "/v1/gateways/stripe",
     R"({"webhook_secret":""})",
     {},
     true,
     422,
     "validation_error"},
    {"POST",
     "/v1/tenants",
     R"({"name":"Evil"})",
     {},
     true,
     401,
     "unauthorized"},
    {"GET", "/v1/plans?limit=1000", "", {}, true, 400, "validation_error"},
    {"GET", "/v1/plans?cursor=garbage", "", {}, true, 400, "validation_error"},
    {"DELETE", "/v1/customers/cus_1", "", {}, true, 405, "method_not_allowed"},
    {"POST",
     "/v1/customers",
     R"({"email":"b@x.io","name":"B"})",
     {{"Idempotency-Key", std::string(300, 'k')}},
     true,
     400,
     "validation_error"},
  };
  for (const auto& r : rows) {
    SCOPED_TRACE(r.method + " " + r.target + " " + r.body);
    auto res = call(r.method, r.target, r.body, r.extra, r.auth ? t.key : "");
    EXPECT_EQ(res.status, r.status) << res.body;
    EXPECT_EQ(res.header("content-type"), "application/problem+json");
    EXPECT_EQ(res.json().value("type", ""), r.type) << res.body;
  }
  // A body over the limit is refused before it is read.
  auto huge = call("POST", "/v1/customers", std::string(1'048'577, ' '), {},
                   t.key);
  EXPECT_EQ(huge.status, 413);
  EXPECT_EQ(huge.json()["type"], "payload_too_large");
  EXPECT_EQ(snapshot(), before);
}

// -- documents ----------------------------------------------------------------

TEST_F(api_pg, openapi_and_metrics_are_served) {
  ASSERT_TRUE(start());
  const auto t = make_tenant("Acme");
  EXPECT_EQ(call("GET", "/v1/plans", {}, {}, t.key).status, 200);
  auto doc = call("GET", "/openapi.json");
  ASSERT_EQ(doc.status, 200);
  const auto spec = doc.json();
  EXPECT_EQ(spec["openapi"], "3.0.3");
  for (const char* path : {"/v1/tenants", "/v1/customers", "/v1/customers/{id}",
                           "/v1/plans", "/v1/usage", "/v1/gateways/{gateway}",
                           "/v1/ledger/balance", "/v1/reconciliation"})
    EXPECT_TRUE(spec["paths"].contains(path)) << path;
  auto metrics = call("GET", "/metrics");
  ASSERT_EQ(metrics.status, 200);
  EXPECT_NE(
    metrics.body.find(
      R"(http_requests_total{route="/v1/plans",method="GET",status="200"} 1)"),
    std::string::npos)
    << metrics.body;
  EXPECT_NE(metrics.body.find(
              R"(http_request_duration_seconds_count{route="/v1/tenants"} 1)"),
            std::string::npos);
  EXPECT_EQ(call("GET", "/v1/reconciliation", {}, {}, t.key).json()["balanced"],
            true);
}

// -- invoice void and operator saga commands ----------------------------------

namespace {

constexpr std::int64_t day_s = 86'400;

std::string encoded(const std::string& id) {
  std::string out;
  for (char c : id)
    out += c == '/' ? std::string{"%2F"} : std::string(1, c);
  return out;
}

} // namespace

class api_operations_pg : public api_pg {
protected:
  // A test-mode tenant with the plan (14-day trial) and one customer with
  // `card`, subscribed as `sub`, moved through the trial: its first invoice
  // has been charged once.
  void subscribe_through_trial(const std::string& sub, const std::string& card) {
    if (key_.empty()) {
      auto t = call("POST", "/v1/tenants", R"({"name":"Ops","test_mode":true})",
                    {}, admin_key);
      ASSERT_EQ(t.status, 201) << t.body;
      key_ = t.json()["api_key"].get<std::string>();
      ASSERT_EQ(post("/v1/plans", plan_body).status, 201);
    }
    const auto cus = "cus_" + sub;
    auto customer = post("/v1/customers",
                         R"({"id":")" + cus + R"(","email":"o@x.io",)"
                           + R"("name":"Ops","payment_method":")" + card
                           + R"("})");
    ASSERT_EQ(customer.status, 201) << customer.body;
    auto created = post("/v1/subscriptions",
                        R"({"id":")" + sub + R"(","customer":")" + cus
                          + R"(","plan":"basic"})");
    ASSERT_EQ(created.status, 201) << created.body;
    auto moved = post("/v1/test-clock/advance",
                      R"({"seconds":)" + std::to_string(14 * day_s + 3600) + "}");
    ASSERT_EQ(moved.status, 200) << moved.body;
  }
  http_reply post(const std::string& target, const std::string& body = "{}") {
    return call("POST", target, body, {}, key_);
  }
  json get(const std::string& target) {
    auto r = call("GET", target, {}, {}, key_);
    EXPECT_EQ(r.status, 200) << target << ": " << r.body;
    return r.json();
  }
  json first_invoice(const std::string& sub) {
    auto list = get("/v1/invoices?subscription=" + sub)["data"];
    EXPECT_FALSE(list.empty());
    return list.empty() ? json{} : list[0];
  }
  // The invoice saga of `sub` once it waits (on its retry timer); the
  // charge's outcome may still be on its way when the clock returned.
  std::string waiting_invoice_saga(const std::string& sub) {
    const auto deadline = steady::now() + 10s;
    do {
      const auto page = get("/v1/sagas?type=invoice&status=waiting");
      for (const auto& g : page["data"])
        if (g["subscription"] == sub)
          return g["id"].get<std::string>();
      std::this_thread::sleep_for(10ms);
    } while (steady::now() < deadline);
    return {};
  }
  std::int64_t balance(const std::string& account) {
    const auto balances = get("/v1/ledger/balance");
    for (const auto& row : balances["balances"])
      if (row["account"] == account)
        return row["balance_minor"].get<std::int64_t>();
    return 0;
  }

  std::string key_;
};

TEST_F(api_operations_pg,
       voiding_a_past_due_invoice_answers_the_void_invoice_and_recovers) {
  ASSERT_TRUE(start());
  ASSERT_NO_FATAL_FAILURE(
    subscribe_through_trial("sub_v", "pm_card_chargeDeclinedExpiredCard"));
  EXPECT_EQ(get("/v1/subscriptions/sub_v")["status"], "past_due");
  const auto inv = first_invoice("sub_v")["id"].get<std::string>();
  auto voided = post("/v1/invoices/" + encoded(inv) + "/void");
  ASSERT_EQ(voided.status, 200) << voided.body;
  EXPECT_EQ(voided.json()["status"], "void");
  EXPECT_EQ(voided.json()["id"], inv);
  EXPECT_EQ(get("/v1/subscriptions/sub_v")["status"], "active");
  EXPECT_EQ(balance("receivable"), 0);
  EXPECT_TRUE(get("/v1/ledger/balance")["balanced"].get<bool>());
  // Not open any more: 409 with nothing changed; an unknown one: 404.
  const auto before = snapshot();
  auto again = post("/v1/invoices/" + encoded(inv) + "/void");
  EXPECT_EQ(again.status, 409);
  EXPECT_EQ(again.json()["type"], "invalid_transition");
  EXPECT_EQ(post("/v1/invoices/inv_nope/void").status, 404);
  EXPECT_EQ(snapshot(), before);
}

TEST_F(api_operations_pg,
       an_operator_retries_a_waiting_invoice_saga_and_compensates_another) {
  ASSERT_TRUE(start());
  // Fails twice, then succeeds: the first attempt failed at the trial's end.
  ASSERT_NO_FATAL_FAILURE(subscribe_through_trial("sub_r", "pm_sandbox_flaky_2"));
  auto saga = waiting_invoice_saga("sub_r");
  ASSERT_FALSE(saga.empty()) << get("/v1/sagas").dump();
  auto second = post("/v1/sagas/" + encoded(saga) + "/retry");
  ASSERT_EQ(second.status, 200) << second.body;
  EXPECT_EQ(second.json()["id"], saga);
  EXPECT_EQ(second.json()["status"], "waiting") << second.body;
  auto third = post("/v1/sagas/" + encoded(saga) + "/retry");
  ASSERT_EQ(third.status, 200) << third.body;
  EXPECT_EQ(third.json()["status"], "completed") << third.body;
  auto inv = first_invoice("sub_r");
  EXPECT_EQ(inv["status"], "paid");
  auto detail = get("/v1/invoices/" + encoded(inv["id"].get<std::string>()));
  EXPECT_EQ(detail["attempts"].size(), 3U) << detail.dump();
  // Finished: 409, nothing changes.
  auto done = post("/v1/sagas/" + encoded(saga) + "/retry");
  EXPECT_EQ(done.status, 409);
  EXPECT_EQ(done.json()["type"], "invalid_transition");

  // Always soft-declined: the operator gives up on the invoice.
  ASSERT_NO_FATAL_FAILURE(
    subscribe_through_trial("sub_c", "pm_card_chargeDeclined"));
  auto other = waiting_invoice_saga("sub_c");
  ASSERT_FALSE(other.empty());
  auto undone = post("/v1/sagas/" + encoded(other) + "/compensate");
  ASSERT_EQ(undone.status, 200) << undone.body;
  EXPECT_EQ(undone.json()["status"], "compensated");
  EXPECT_FALSE(undone.json()["steps"].empty());
  EXPECT_EQ(first_invoice("sub_c")["status"], "void");
  EXPECT_EQ(get("/v1/subscriptions/sub_c")["status"], "active");
  EXPECT_EQ(post("/v1/sagas/" + encoded(other) + "/compensate").status, 409);
  EXPECT_EQ(post("/v1/sagas/sub_c%2Finvoice%2F99/retry").status, 404);
  EXPECT_TRUE(get("/v1/ledger/balance")["balanced"].get<bool>());
}
