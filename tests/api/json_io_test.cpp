#include "api/json_io.hpp"

#include <gtest/gtest.h>

using namespace recur;
using namespace recur::api;

namespace {

json parsed(std::string_view text) {
  api_error err;
  auto doc = parse_object(text, err);
  EXPECT_TRUE(doc) << err.detail;
  return doc ? *doc : json::object();
}

} // namespace

TEST(parse_object, malformed_json_duplicates_and_deep_nesting_are_400) {
  for (const std::string_view bad :
       {std::string_view{"{"}, std::string_view{"{\"a\":1,}"},
        std::string_view{"{\"a\":1,\"a\":2}"},
        std::string_view{"{\"a\":{\"b\":1,\"b\":1}}"},
        std::string_view{"{\"s\":\"\xff\"}"}, std::string_view{""},
        std::string_view{"{} {}"}}) {
    SCOPED_TRACE(bad);
    api_error err;
    EXPECT_FALSE(parse_object(bad, err));
    EXPECT_EQ(err.status, 400U);
    EXPECT_EQ(err.type, "validation_error");
  }
  std::string deep(40, '[');
  deep += std::string(40, ']');
  api_error err;
  EXPECT_FALSE(parse_object("{\"a\":" + deep + "}", err));
  EXPECT_EQ(err.status, 400U);
  EXPECT_NE(err.detail.find("nested"), std::string::npos);
}

TEST(parse_object, a_value_that_is_not_an_object_is_422) {
  for (const char* bad : {"[]", "1", "\"x\"", "null"}) {
    api_error err;
    EXPECT_FALSE(parse_object(bad, err));
    EXPECT_EQ(err.status, 422U) << bad;
  }
  api_error err;
  EXPECT_TRUE(parse_object("", err, true));
  EXPECT_TRUE(parse_object("{\"s\":\"{[\"}", err)); // brackets in strings
}

TEST(object_reader, typed_fields_read_back) {
  const auto doc = parsed(
    R"({"s":"abc","n":-5,"b":true,"t":"2024-03-01T00:00:00Z","id":"cus_1"})");
  object_reader in{doc};
  EXPECT_EQ(in.string("s", true), "abc");
  EXPECT_EQ(in.integer("n", true, -10, 10), -5);
  EXPECT_EQ(in.boolean("b", true), true);
  EXPECT_EQ(in.timestamp("t", true), utc(2024, 3, 1));
  EXPECT_EQ(in.id("id", true), "cus_1");
  EXPECT_FALSE(in.string("absent", false));
  in.reject_unknown();
  EXPECT_FALSE(in.failed());
}

TEST(object_reader, the_first_problem_names_its_field_and_sticks) {
  const auto doc = parsed(R"({"n":"5","m":1.5})");
  object_reader in{doc, "records[2]"};
  EXPECT_FALSE(in.integer("n", true, 0, 10));
  EXPECT_FALSE(in.integer("m", true, 0, 10));
  ASSERT_TRUE(in.failed());
  EXPECT_EQ(in.error().status, 422U);
  EXPECT_EQ(in.error().detail,
            "records[2].n: must be an integer, got a string");
}

TEST(object_reader, wrong_types_ranges_and_missing_fields_are_refused) {
  struct row {
    const char* body;
    const char* expected;
  };
  const row rows[] = {
    {R"({})", "x: is required"},
    {R"({"x":null})", "x: is required"},
    {R"({"x":-1})", "x: must not be negative, got -1"},
    {R"({"x":11})", "x: must be in 0..10, got 11"},
    {R"({"x":1.0})", "x: must be an integer, got a decimal number"},
    {R"({"x":18446744073709551615})", "x: must be an integer in 0..10"},
    {R"({"x":true})", "x: must be an integer, got a boolean"},
  };
  for (const auto& r : rows) {
    SCOPED_TRACE(r.body);
    const auto doc = parsed(r.body);
    object_reader in{doc};
    EXPECT_FALSE(in.integer("x", true, 0, 10));
    ASSERT_TRUE(in.failed());
    EXPECT_EQ(in.error().detail, r.expected);
  }
}

TEST(object_reader, strings_ids_and_timestamps_are_checked) {
  const auto doc = parsed(
    R"({"long":"abcdef","id":"a b","t":"2024-13-01T00:00:00Z","e":""})");
  {
    object_reader in{doc};
    EXPECT_FALSE(in.string("long", true, 1, 5));
    EXPECT_NE(in.error().detail.find("1..5 bytes"), std::string::npos);
  }
  {
    object_reader in{doc};
    EXPECT_FALSE(in.id("id", true));
    EXPECT_EQ(in.error().detail.rfind("id: must be", 0), 0U);
  }
  {
    object_reader in{doc};
    EXPECT_FALSE(in.timestamp("t", true));
    EXPECT_NE(in.error().detail.find("ISO-8601"), std::string::npos);
  }
  {
    object_reader in{doc};
    EXPECT_FALSE(in.string("e", true));
  }
}

TEST(object_reader, unknown_fields_are_refused_by_name) {
  const auto doc = parsed(R"({"name":"x","nmae":"y"})");
  object_reader in{doc};
  in.string("name", true);
  in.reject_unknown();
  ASSERT_TRUE(in.failed());
  EXPECT_EQ(in.error().detail, "nmae: is not a known field");
}

TEST(object_reader, arrays_are_bounded) {
  const auto doc = parsed(R"({"a":[1,2,3],"o":{}})");
  {
    object_reader in{doc};
    EXPECT_NE(in.array("a", true, 3), nullptr);
    EXPECT_FALSE(in.failed());
  }
  {
    object_reader in{doc};
    EXPECT_EQ(in.array("a", true, 2), nullptr);
    EXPECT_NE(in.error().detail.find("more than 2"), std::string::npos);
  }
  {
    object_reader in{doc};
    EXPECT_EQ(in.array("o", true, 2), nullptr);
    EXPECT_NE(in.error().detail.find("must be an array"), std::string::npos);
  }
}

TEST(errors, store_and_domain_codes_map_to_stable_problem_types) {
  struct row {
    errc code;
    unsigned status;
    const char* type;
  };
  const row rows[] = {
    {errc::not_found, 404, "not_found"},
    {errc::invalid_transition, 409, "invalid_transition"},
    {errc::version_conflict, 409, "conflict"},
    {errc::already_exists, 409, "conflict"},
    {errc::idempotency_conflict, 422, "idempotency_conflict"},
    {errc::unavailable, 503, "unavailable"},
    {errc::storage_error, 500, "internal_error"},
    {errc::invalid_argument, 422, "validation_error"},
    {errc::currency_mismatch, 422, "validation_error"},
    {errc::negative_amount, 422, "validation_error"},
    {errc::unknown_currency, 422, "validation_error"},
  };
  for (const auto& r : rows) {
    const auto e = to_api_error(make_error(r.code, "d"));
    EXPECT_EQ(e.status, r.status) << to_string(r.code);
    EXPECT_EQ(e.type, r.type) << to_string(r.code);
  }
  const auto res = error_response(make_error(errc::unavailable, "db down"));
  EXPECT_EQ(res.content_type, "application/problem+json");
  ASSERT_EQ(res.headers.size(), 1U);
  EXPECT_EQ(res.headers[0].first, "Retry-After");
  const auto body = json::parse(res.body);
  EXPECT_EQ(body["type"], "unavailable");
  EXPECT_EQ(body["title"], "Service Unavailable");
  EXPECT_EQ(body["detail"], "db down");
}
