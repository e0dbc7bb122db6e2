#include "api/health.hpp"

#include <optional>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

using namespace recur::api;

namespace {

class fake_probe final : public readiness_probe {
public:
  explicit fake_probe(bool ok, std::optional<bool> kafka = std::nullopt)
    : ok_(ok), kafka_(kafka) {}
  bool database_ok() override {
    ++calls;
    return ok_;
  }
  std::optional<bool> kafka_ok() override {
    ++kafka_calls;
    return kafka_;
  }
  int calls = 0;
  int kafka_calls = 0;

private:
  bool ok_;
  std::optional<bool> kafka_;
};

http_request get(std::string target) {
  return http_request{"GET", std::move(target), {}, {}};
}

std::string header_of(const http_response& res, std::string_view name) {
  for (const auto& [key, value] : res.headers)
    if (key == name)
      return value;
  return {};
}

} // namespace

TEST(health, healthz_is_200_with_status_database_and_version) {
  fake_probe probe{true};
  const auto res = route_health(get("/healthz"), probe);
  EXPECT_EQ(res.status, 200u);
  EXPECT_EQ(res.content_type, "application/json");
  EXPECT_EQ(nlohmann::json::parse(res.body),
            nlohmann::json::parse(
              R"({"status":"ok","database":"ok","version":"0.1.0"})"));
  EXPECT_EQ(header_of(res, "Cache-Control"), "no-store");
  EXPECT_EQ(probe.calls, 1);
}

TEST(health, a_failing_database_makes_healthz_and_readyz_503) {
  for (const char* path : {"/healthz", "/readyz"}) {
    SCOPED_TRACE(path);
    fake_probe probe{false};
    const auto res = route_health(get(path), probe);
    EXPECT_EQ(res.status, 503u);
    const auto doc = nlohmann::json::parse(res.body);
    EXPECT_EQ(doc.at("database"), "unavailable");
    EXPECT_EQ(doc.at("status"), "unavailable");
    EXPECT_EQ(probe.calls, 1);
  }
}

TEST(health, readyz_and_a_query_string_answer_like_healthz) {
  fake_probe probe{true};
  EXPECT_EQ(route_health(get("/readyz"), probe).status, 200u);
  EXPECT_EQ(route_health(get("/healthz?verbose=1"), probe).status, 200u);
  EXPECT_EQ(probe.calls, 2);
}

TEST(health, readyz_without_an_event_log_says_kafka_not_configured) {
  fake_probe probe{true};
  const auto res = route_health(get("/readyz"), probe);
  EXPECT_EQ(res.status, 200u);
  EXPECT_EQ(nlohmann::json::parse(res.body),
            nlohmann::json::parse(R"({"status":"ok","database":"ok",)"
                                  R"("kafka":"not_configured",)"
                                  R"("version":"0.1.0"})"));
  EXPECT_EQ(probe.kafka_calls, 1);
}

TEST(health, readyz_is_200_when_the_database_and_kafka_answer) {
  fake_probe probe{true, true};
  const auto res = route_health(get("/readyz"), probe);
  EXPECT_EQ(res.status, 200u);
  const auto doc = nlohmann::json::parse(res.body);
  EXPECT_EQ(doc.at("status"), "ok");
  EXPECT_EQ(doc.at("kafka"), "ok");
  EXPECT_FALSE(doc.contains("failing"));
}

TEST(health, a_failing_kafka_makes_readyz_503_naming_kafka) {
  fake_probe probe{true, false};
  const auto res = route_health(get("/readyz"), probe);
  EXPECT_EQ(res.status, 503u);
  const auto doc = nlohmann::json::parse(res.body);
  EXPECT_EQ(doc.at("status"), "unavailable");
  EXPECT_EQ(doc.at("database"), "ok");
  EXPECT_EQ(doc.at("kafka"), "unavailable");
  EXPECT_EQ(doc.at("failing"), nlohmann::json::parse(R"(["kafka"])"));
}

TEST(health, readyz_names_every_failing_check) {
  fake_probe probe{false, false};
  const auto doc
    = nlohmann::json::parse(route_health(get("/readyz"), probe).body);
  EXPECT_EQ(doc.at("failing"),
            nlohmann::json::parse(R"(["database","kafka"])"));
}

TEST(health, healthz_does_not_ask_about_kafka_so_a_kafka_outage_keeps_it_200) {
  fake_probe probe{true, false};
  const auto res = route_health(get("/healthz"), probe);
  EXPECT_EQ(res.status, 200u);
  EXPECT_FALSE(nlohmann::json::parse(res.body).contains("kafka"));
  EXPECT_EQ(probe.kafka_calls, 0);
}

TEST(health, combined_readiness_asks_the_database_probe_and_the_kafka_check) {
  fake_probe database{true};
  int asked = 0;
  combined_readiness probe{database, [&asked]() -> std::optional<bool> {
                             ++asked;
                             return false;
                           }};
  const auto res = route_health(get("/readyz"), probe);
  EXPECT_EQ(res.status, 503u);
  EXPECT_EQ(nlohmann::json::parse(res.body).at("failing"),
            nlohmann::json::parse(R"(["kafka"])"));
  EXPECT_EQ(database.calls, 1);
  EXPECT_EQ(asked, 1);
  combined_readiness unchecked{database, {}};
  EXPECT_EQ(unchecked.kafka_ok(), std::nullopt);
  EXPECT_EQ(route_health(get("/readyz"), unchecked).status, 200u);
}

TEST(health, an_unknown_path_is_a_404_problem_without_a_probe) {
  fake_probe probe{true};
  for (const char* target : {"/", "/healthz/", "/v1/plans", "/HEALTHZ"}) {
    SCOPED_TRACE(target);
    const auto res = route_health(get(target), probe);
    EXPECT_EQ(res.status, 404u);
    EXPECT_EQ(res.content_type, "application/problem+json");
    const auto doc = nlohmann::json::parse(res.body);
    EXPECT_EQ(doc.at("type"), "not_found");
    EXPECT_EQ(doc.at("title"), "Not Found");
    EXPECT_EQ(doc.at("status"), 404);
    EXPECT_NE(doc.at("detail").get<std::string>().find(target),
              std::string::npos);
  }
  EXPECT_EQ(probe.calls, 0);
}

TEST(health, another_method_on_a_health_path_is_a_405_with_allow) {
  fake_probe probe{true};
  for (const char* method : {"POST", "PUT", "DELETE", "HEAD"}) {
    SCOPED_TRACE(method);
    const auto res = route_health({method, "/healthz", {}, {}}, probe);
    EXPECT_EQ(res.status, 405u);
    EXPECT_EQ(res.content_type, "application/problem+json");
    EXPECT_EQ(nlohmann::json::parse(res.body).at("type"), "method_not_allowed");
    EXPECT_EQ(header_of(res, "Allow"), "GET");
  }
  EXPECT_EQ(probe.calls, 0);
}

TEST(health, the_handler_routes_through_the_probe_it_was_given) {
  fake_probe probe{false};
  const auto handler = make_health_handler(probe);
  EXPECT_EQ(handler(get("/readyz")).status, 503u);
  EXPECT_EQ(probe.calls, 1);
}

TEST(http_request, path_drops_the_query_and_header_lookup_ignores_case) {
  const http_request req{
    "GET", "/a/b?x=1&y=2", {{"Content-Type", "text/plain"}}, {}};
  EXPECT_EQ(req.path(), "/a/b");
  EXPECT_EQ(req.header("content-type"), "text/plain");
  EXPECT_EQ(req.header("accept"), "");
}
