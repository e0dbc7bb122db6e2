#include "api/pagination.hpp"

#include <gtest/gtest.h>

using namespace recur::api;

namespace {

param_list q(std::initializer_list<std::pair<std::string, std::string>> kv) {
  return param_list(kv.begin(), kv.end());
}

} // namespace

TEST(pagination, cursors_round_trip_any_bytes_and_look_opaque) {
  for (const std::string& s :
       {std::string{"plan_9"}, std::string{"3:abcdef"}, std::string{"a"},
        std::string{"ab"}, std::string{"abc"}, std::string("\0\xff/", 3)}) {
    const auto opaque = encode_cursor(s);
    EXPECT_NE(opaque, s);
    EXPECT_EQ(opaque.rfind("c1", 0), 0U);
    EXPECT_EQ(opaque.find_first_not_of(
                "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
                "0123456789-_"),
              std::string::npos);
    auto back = decode_cursor(opaque);
    ASSERT_TRUE(back) << opaque;
    EXPECT_EQ(*back, s);
  }
}

TEST(pagination, text_that_is_not_our_cursor_is_refused) {
  for (const char* bad : {"", "plan_9", "c1", "c1!!", "c1A", "x1YWJj"}) {
    SCOPED_TRACE(bad);
    EXPECT_FALSE(decode_cursor(bad));
  }
  EXPECT_FALSE(decode_cursor("c1" + std::string(2000, 'A')));
}

TEST(pagination, limit_defaults_to_20_and_must_be_1_to_100) {
  api_error err;
  auto none = read_page_request({}, err);
  ASSERT_TRUE(none);
  EXPECT_EQ(none->limit, 20U);
  EXPECT_TRUE(none->store_cursor.empty());
  auto hundred = read_page_request(q({{"limit", "100"}}), err);
  ASSERT_TRUE(hundred);
  EXPECT_EQ(hundred->limit, 100U);
  for (const char* bad : {"0", "101", "-1", "ten", "5x", ""}) {
    SCOPED_TRACE(bad);
    api_error e;
    EXPECT_FALSE(read_page_request(q({{"limit", bad}}), e));
    EXPECT_EQ(e.status, 400U);
    EXPECT_EQ(e.type, "validation_error");
    EXPECT_EQ(e.detail.rfind("limit:", 0), 0U);
  }
}

TEST(pagination, cursor_and_starting_after_are_the_same_opaque_value) {
  api_error err;
  const auto opaque = encode_cursor("plan_3");
  auto a = read_page_request(q({{"cursor", opaque}}), err);
  auto b = read_page_request(q({{"starting_after", opaque}}), err);
  ASSERT_TRUE(a && b);
  EXPECT_EQ(a->store_cursor, "plan_3");
  EXPECT_EQ(b->store_cursor, "plan_3");
  api_error e;
  EXPECT_FALSE(read_page_request(
    q({{"cursor", opaque}, {"starting_after", encode_cursor("x")}}), e));
  EXPECT_FALSE(read_page_request(q({{"starting_after", "plan_3"}}), e));
  EXPECT_EQ(e.detail.rfind("starting_after:", 0), 0U);
}

TEST(pagination, the_list_body_says_whether_there_is_more) {
  const auto last = list_body(ordered_json::array({1, 2}), "");
  EXPECT_EQ(last.dump(),
            R"({"data":[1,2],"has_more":false,"next_cursor":null})");
  const auto more = list_body(ordered_json::array({1}), "k");
  EXPECT_TRUE(more["has_more"].get<bool>());
  EXPECT_EQ(decode_cursor(more["next_cursor"].get<std::string>()), "k");
}

TEST(pagination, unknown_query_parameters_are_named) {
  EXPECT_FALSE(unknown_query_param(q({{"limit", "1"}}), {"limit"}));
  auto bad = unknown_query_param(q({{"limit", "1"}, {"sort", "x"}}), {"limit"});
  ASSERT_TRUE(bad);
  EXPECT_EQ(bad->status, 400U);
  EXPECT_NE(bad->detail.find("'sort'"), std::string::npos);
}
