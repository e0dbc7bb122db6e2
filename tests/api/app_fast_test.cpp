// app::try_handle_fast, the non-blocking path http_server runs on its I/O
// threads: it answers only GETs of routes with a fast handler by a tenant
// whose key the auth cache holds, with the same rate limit and metrics as
// app::handle, and hands everything else back (nullopt) untouched.

#include <memory>
#include <string>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "api/app.hpp"
#include "persistence/memory_store.hpp"

namespace {

using namespace recur;
using namespace recur::api;

constexpr const char* admin_secret = "fast-admin-key-0123456789";

struct always_ready final : readiness_probe {
  bool database_ok() override { return true; }
};

class app_fast : public ::testing::Test {
protected:
  void build(rate_limit_config limits) {
    app_config c;
    c.db = &db_;
    c.clk = &clk_;
    c.readiness = &probe_;
    c.admin_key = admin_secret;
    c.rate_limit = limits;
    c.monotonic_ms = [] { return std::int64_t{0}; };
    c.extra_routes.push_back([this](router& r, services&) {
      r.add(route{"GET", "/v1/things/{id}", auth_kind::tenant,
                  [this](request_context& ctx) {
                    ++slow_calls_;
                    return http_response{200, "application/json",
                                         "slow " + ctx.param("id"), {}};
                  },
                  route_doc{"a thing", nullptr, {{"type", "string"}}, 200, {},
                            "application/json"},
                  true, nullptr});
      r.set_fast("GET", "/v1/things/{id}",
                 [](request_context& ctx) -> std::optional<http_response> {
                   if (ctx.param("id") == "cold")
                     return std::nullopt;
                   return http_response{200, "application/json",
                                        "fast " + ctx.tid().value, {}};
                 });
    });
    app_ = std::make_unique<app>(std::move(c));
  }

  http_request get(const std::string& target, const std::string& key) {
    return http_request{"GET", target, {{"Authorization", "Bearer " + key}},
                        {}};
  }

  std::string make_tenant() {
    auto res = app_->handle(
      http_request{"POST",
                   "/v1/tenants",
                   {{"Authorization", std::string{"Bearer "} + admin_secret},
                    {"Content-Type", "application/json"}},
                   R"({"name":"Acme"})"});
    EXPECT_EQ(res.status, 201u) << res.body;
    return nlohmann::json::parse(res.body)["api_key"].get<std::string>();
  }

  memory_store db_;
  manual_clock clk_{instant{1'700'000'000}};
  always_ready probe_;
  std::unique_ptr<app> app_;
  int slow_calls_ = 0;
};

TEST_F(app_fast, answers_only_once_the_key_is_in_the_auth_cache) {
  build({});
  const auto key = make_tenant();
  // Never authenticated yet: the store would have to be asked.
  EXPECT_FALSE(app_->try_handle_fast(get("/v1/things/a", key)));
  EXPECT_EQ(app_->handle(get("/v1/things/a", key)).body, "slow a");
  auto fast = app_->try_handle_fast(get("/v1/things/a", key));
  ASSERT_TRUE(fast);
  EXPECT_EQ(fast->status, 200u);
  EXPECT_EQ(fast->body.substr(0, 5), "fast ");
  EXPECT_EQ(slow_calls_, 1);
  // Wrong keys, no key, other methods and routes without a fast handler go
  // to the slow path, which answers them as before.
  EXPECT_FALSE(app_->try_handle_fast(get("/v1/things/a", "not-a-key")));
  EXPECT_FALSE(app_->try_handle_fast(http_request{"GET", "/v1/things/a", {}, {}}));
  EXPECT_FALSE(app_->try_handle_fast(
    http_request{"POST", "/v1/things/a", {{"Authorization", "Bearer " + key}}, {}}));
  EXPECT_FALSE(app_->try_handle_fast(get("/v1/plans", key)));
  // A fast handler that declines hands the request over.
  EXPECT_FALSE(app_->try_handle_fast(get("/v1/things/cold", key)));
  EXPECT_EQ(app_->handle(get("/v1/things/cold", key)).body, "slow cold");
}

TEST_F(app_fast, the_rate_limit_applies_and_counts_each_request_once) {
  rate_limit_config limits;
  limits.rate_per_s = 1;
  limits.burst = 3;
  build(limits);
  const auto key = make_tenant();
  EXPECT_EQ(app_->handle(get("/v1/things/a", key)).status, 200u); // 1 token
  // Declined fast attempts take no token.
  for (int i = 0; i < 5; ++i)
    EXPECT_FALSE(app_->try_handle_fast(get("/v1/things/cold", key)));
  EXPECT_EQ(app_->try_handle_fast(get("/v1/things/a", key))->status, 200u);
  EXPECT_EQ(app_->try_handle_fast(get("/v1/things/a", key))->status, 200u);
  auto refused = app_->try_handle_fast(get("/v1/things/a", key));
  ASSERT_TRUE(refused);
  EXPECT_EQ(refused->status, 429u);
  bool retry_after = false;
  for (const auto& [k, v] : refused->headers)
    retry_after = retry_after || k == "Retry-After";
  EXPECT_TRUE(retry_after);
  // Counted in /metrics under the route like any other request.
  const auto metrics = app_->handle(http_request{"GET", "/metrics", {}, {}});
  EXPECT_NE(metrics.body.find("/v1/things/{id}"), std::string::npos);
}

} // namespace
