#include "api/router.hpp"

#include <gtest/gtest.h>

using namespace recur;
using namespace recur::api;

namespace {

route make(std::string method, std::string pattern) {
  route r;
  r.method = std::move(method);
  r.pattern = std::move(pattern);
  r.handler = [](request_context&) { return http_response{}; };
  return r;
}

router sample() {
  router r;
  r.add(make("GET", "/v1/customers/{id}"));
  r.add(make("PATCH", "/v1/customers/{id}"));
  r.add(make("POST", "/v1/customers"));
  r.add(make("POST", "/v1/invoices/{id}/pay"));
  r.add(make("GET", "/v1/invoices/{id}"));
  r.add(make("POST", "/v1/subscriptions/{id}/{action}"));
  r.add(make("POST", "/v1/subscriptions/{id}/cancel"));
  return r;
}

} // namespace

TEST(router, a_pattern_matches_and_binds_its_parameters) {
  const auto r = sample();
  const auto m = r.match("GET", "/v1/customers/cus_1");
  ASSERT_NE(m.found, nullptr);
  EXPECT_EQ(m.found->pattern, "/v1/customers/{id}");
  ASSERT_EQ(m.path_params.size(), 1U);
  EXPECT_EQ(m.path_params[0].first, "id");
  EXPECT_EQ(m.path_params[0].second, "cus_1");
}

TEST(router, parameters_are_percent_decoded) {
  const auto m = sample().match("GET", "/v1/customers/a%20b");
  ASSERT_NE(m.found, nullptr);
  EXPECT_EQ(m.path_params[0].second, "a b");
  EXPECT_EQ(sample().match("GET", "/v1/customers/a%2").found, nullptr);
}

TEST(router, a_known_path_with_another_method_lists_the_allowed_ones) {
  const auto m = sample().match("DELETE", "/v1/customers/cus_1");
  EXPECT_EQ(m.found, nullptr);
  EXPECT_EQ(m.allowed, (std::vector<std::string>{"GET", "PATCH"}));
}

TEST(router, an_unknown_path_matches_nothing_and_allows_nothing) {
  for (const char* path :
       {"/v1/customer", "/v1/customers/cus_1/x", "/v1/customers/", "/", "",
        "v1/customers", "/v1//customers"}) {
    SCOPED_TRACE(path);
    const auto m = sample().match("GET", path);
    EXPECT_EQ(m.found, nullptr);
    EXPECT_TRUE(m.allowed.empty());
  }
}

TEST(router, a_literal_segment_wins_over_a_parameter) {
  const auto r = sample();
  const auto cancel = r.match("POST", "/v1/subscriptions/sub_1/cancel");
  ASSERT_NE(cancel.found, nullptr);
  EXPECT_EQ(cancel.found->pattern, "/v1/subscriptions/{id}/cancel");
  const auto other = r.match("POST", "/v1/subscriptions/sub_1/pause");
  ASSERT_NE(other.found, nullptr);
  EXPECT_EQ(other.found->pattern, "/v1/subscriptions/{id}/{action}");
  EXPECT_EQ(other.path_params.size(), 2U);
}

TEST(router, the_route_table_lists_every_route_in_order) {
  const auto r = sample();
  ASSERT_EQ(r.routes().size(), 7U);
  EXPECT_EQ(r.routes()[2].pattern, "/v1/customers");
}

TEST(router, adding_the_same_method_and_pattern_twice_aborts) {
  EXPECT_DEATH(
    {
      router r;
      r.add(make("GET", "/x"));
      r.add(make("GET", "/x"));
    },
    "assertion failed");
}

TEST(query, parameters_are_split_and_decoded_in_order) {
  auto q = parse_query("/v1/plans?limit=5&cursor=a%2Bb&x=1+2&flag");
  ASSERT_TRUE(q);
  ASSERT_EQ(q->size(), 4U);
  EXPECT_EQ((*q)[0], (std::pair<std::string, std::string>{"limit", "5"}));
  EXPECT_EQ((*q)[1].second, "a+b");
  EXPECT_EQ((*q)[2].second, "1 2");
  EXPECT_EQ((*q)[3], (std::pair<std::string, std::string>{"flag", ""}));
  EXPECT_TRUE(parse_query("/v1/plans")->empty());
}

TEST(query, a_malformed_escape_or_too_many_parameters_is_refused) {
  EXPECT_FALSE(parse_query("/x?a=%zz"));
  EXPECT_FALSE(parse_query("/x?a=%4"));
  std::string many = "/x?";
  for (int i = 0; i < 33; ++i)
    many += "p" + std::to_string(i) + "=1&";
  EXPECT_FALSE(parse_query(many));
  EXPECT_TRUE(parse_query(many, 40));
}
