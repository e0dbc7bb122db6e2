#include "api/problem.hpp"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

using namespace recur::api;

TEST(problem, the_document_has_type_title_status_and_detail) {
  const auto doc = nlohmann::json::parse(
    problem_json(404, "not_found", "Not Found", "no route for /x"));
  EXPECT_EQ(doc.size(), 4u);
  EXPECT_EQ(doc.at("type"), "not_found");
  EXPECT_EQ(doc.at("title"), "Not Found");
  EXPECT_EQ(doc.at("status"), 404);
  EXPECT_EQ(doc.at("detail"), "no route for /x");
}

TEST(problem, the_response_uses_the_problem_json_media_type) {
  const auto res = problem_response(405, "method_not_allowed",
                                    "Method Not Allowed", "only GET");
  EXPECT_EQ(res.status, 405u);
  EXPECT_EQ(res.content_type, "application/problem+json");
  EXPECT_EQ(nlohmann::json::parse(res.body).at("status"), 405);
}

TEST(problem, quotes_and_invalid_utf8_in_the_detail_stay_valid_json) {
  const std::string detail = "say \"hi\" \xff\xfe";
  const auto doc = nlohmann::json::parse(
    problem_json(400, "bad_request", "Bad Request", detail));
  EXPECT_EQ(doc.at("detail"), "say \"hi\" \xEF\xBF\xBD\xEF\xBF\xBD");
}
