#include "api/auth.hpp"

#include <set>

#include <gtest/gtest.h>

#include "persistence/memory_store.hpp"

using namespace recur;
using namespace recur::api;

TEST(auth, sha256_hex_matches_the_standard_vectors) {
  EXPECT_EQ(sha256_hex(""),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  EXPECT_EQ(sha256_hex("abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
}

TEST(auth, constant_time_equal_compares_contents_and_lengths) {
  EXPECT_TRUE(constant_time_equal("abc", "abc"));
  EXPECT_TRUE(constant_time_equal("", ""));
  EXPECT_FALSE(constant_time_equal("abc", "abd"));
  EXPECT_FALSE(constant_time_equal("abc", "abcd"));
  EXPECT_FALSE(constant_time_equal("", "a"));
}

TEST(auth, bearer_tokens_are_read_from_the_authorization_header) {
  EXPECT_EQ(bearer_token("Bearer rk_live_1"), "rk_live_1");
  EXPECT_EQ(bearer_token("bearer   tok  "), "tok");
  EXPECT_EQ(bearer_token("BEARER tok"), "tok");
  for (const char* bad : {"", "Bearer", "Bearer ", "Basic dXNlcjpwdw==",
                          "Bearer a b", "tok", "Bearertok"})
    EXPECT_FALSE(bearer_token(bad)) << bad;
}

TEST(auth, api_keys_and_ids_are_random_with_their_prefixes) {
  std::set<std::string> keys;
  for (int i = 0; i < 100; ++i)
    keys.insert(new_api_key(false));
  EXPECT_EQ(keys.size(), 100U);
  const auto live = new_api_key(false);
  EXPECT_EQ(live.rfind("rk_live_", 0), 0U);
  EXPECT_EQ(live.size(), 8U + 64U);
  EXPECT_EQ(new_api_key(true).rfind("rk_test_", 0), 0U);
  const auto id = new_id("cus");
  EXPECT_EQ(id.rfind("cus_", 0), 0U);
  EXPECT_EQ(id.size(), 4U + 24U);
  EXPECT_EQ(id.find_first_not_of("cus_0123456789abcdef"), std::string::npos);
  EXPECT_NE(new_id("cus"), id);
}

TEST(auth, the_admin_key_matches_only_itself_and_an_empty_one_matches_nothing) {
  const admin_key key{"0123456789abcdef-admin"};
  EXPECT_TRUE(key.configured());
  EXPECT_TRUE(key.matches("0123456789abcdef-admin"));
  EXPECT_FALSE(key.matches("0123456789abcdef-admiN"));
  EXPECT_FALSE(key.matches(""));
  const admin_key none{""};
  EXPECT_FALSE(none.configured());
  EXPECT_FALSE(none.matches(""));
}

TEST(auth, a_tenant_is_found_by_its_key_and_never_by_another) {
  memory_store db;
  const auto key = new_api_key(false);
  ASSERT_TRUE(db.create_tenant(
    {tenant_id{"ten_1"}, "One", sha256_hex(key), false, utc(2024, 1, 1)}));
  tenant_authenticator auth{db};
  auto found = auth.authenticate(key, utc(2024, 1, 1));
  ASSERT_TRUE(found);
  EXPECT_EQ(found->id.value, "ten_1");
  auto cached = auth.authenticate(key, utc(2024, 1, 1).plus_seconds(10));
  ASSERT_TRUE(cached);
  EXPECT_EQ(cached->id.value, "ten_1");
  auto wrong = auth.authenticate(key + "x", utc(2024, 1, 1));
  ASSERT_FALSE(wrong);
  EXPECT_EQ(wrong.code(), errc::not_found);
}
