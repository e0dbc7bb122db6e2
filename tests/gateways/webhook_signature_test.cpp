#include "gateways/webhook_signature.hpp"

#include <cctype>
#include <cstdio>
#include <string>

#include <gtest/gtest.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

namespace recur {
namespace {

constexpr std::string_view secret = "whsec_test_secret";
constexpr std::string_view body
  = R"({"id":"evt_1","type":"payment_intent.succeeded"})";
constexpr instant signed_at{1'700'000'000};

/// HMAC-SHA256 hex computed here, independently of the code under test.
std::string reference_hmac(std::string_view key, std::int64_t t,
                           std::string_view payload) {
  const std::string message = std::to_string(t) + "." + std::string{payload};
  unsigned char out[EVP_MAX_MD_SIZE];
  unsigned int size = 0;
  HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()),
       reinterpret_cast<const unsigned char*>(message.data()), message.size(),
       out, &size);
  std::string hex;
  char buf[3];
  for (unsigned int i = 0; i < size; ++i) {
    std::snprintf(buf, sizeof buf, "%02x", out[i]);
    hex += buf;
  }
  return hex;
}

std::string header_for(std::int64_t t, std::string_view v1) {
  return "t=" + std::to_string(t) + ",v1=" + std::string{v1};
}

std::optional<signature_failure> check(std::string_view header,
                                       std::string_view payload = body,
                                       instant now = signed_at) {
  return check_stripe_signature(header, payload, secret, now);
}

TEST(webhook_signature, a_fixed_known_vector_is_reproduced) {
  // Computed with `openssl dgst -sha256 -hmac whsec_test_secret` over
  // "1700000000.<body>".
  EXPECT_EQ(stripe_v1_signature(secret, signed_at, body),
            "22d8dc182f5c588077683bd378368e29765bfe5df2560112b4f28fef120f0e31");
  EXPECT_EQ(sign_stripe_payload(secret, signed_at, body),
            "t=1700000000,v1=22d8dc182f5c588077683bd378368e29765bfe5df2560112b"
            "4f28fef120f0e31");
}

TEST(webhook_signature, a_header_signed_with_openssl_hmac_verifies) {
  const auto header = header_for(
    signed_at.unix_s, reference_hmac(secret, signed_at.unix_s, body));
  EXPECT_EQ(check(header), std::nullopt);
  EXPECT_TRUE(verify_stripe_signature(header, body, secret, signed_at));
  EXPECT_EQ(sign_stripe_payload(secret, signed_at, body), header);
}

TEST(webhook_signature, upper_case_hex_and_spaces_after_commas_are_accepted) {
  std::string sig = reference_hmac(secret, signed_at.unix_s, body);
  for (char& c : sig)
    c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  EXPECT_EQ(check("t=1700000000, v1=" + sig), std::nullopt);
}

TEST(webhook_signature, a_tampered_body_is_a_mismatch) {
  const auto header = sign_stripe_payload(secret, signed_at, body);
  std::string tampered{body};
  tampered[tampered.size() - 3] = 'X';
  EXPECT_EQ(check(header, tampered), signature_failure::signature_mismatch);
  const auto s = verify_stripe_signature(header, tampered, secret, signed_at);
  ASSERT_FALSE(s);
  EXPECT_EQ(s.code(), errc::invalid_argument);
  EXPECT_EQ(s.error().detail, "signature mismatch");
}

TEST(webhook_signature, a_signature_made_with_another_secret_is_a_mismatch) {
  const auto header = header_for(
    signed_at.unix_s, reference_hmac("whsec_other", signed_at.unix_s, body));
  EXPECT_EQ(check(header), signature_failure::signature_mismatch);
}

TEST(webhook_signature, a_signed_timestamp_cannot_be_swapped_for_a_fresh_one) {
  // The timestamp is part of what is signed: replaying an old signature with
  // a new t must fail.
  const auto old_sig = reference_hmac(secret, signed_at.unix_s - 1000, body);
  EXPECT_EQ(check(header_for(signed_at.unix_s, old_sig)),
            signature_failure::signature_mismatch);
}

TEST(webhook_signature, an_empty_secret_matches_nothing) {
  const auto header = header_for(signed_at.unix_s,
                                 reference_hmac("", signed_at.unix_s, body));
  EXPECT_EQ(check_stripe_signature(header, body, "", signed_at),
            signature_failure::signature_mismatch);
}

TEST(webhook_signature, timestamps_at_the_tolerance_edge_pass_and_beyond_fail) {
  const auto header = sign_stripe_payload(secret, signed_at, body);
  EXPECT_EQ(check(header, body, signed_at.plus_seconds(300)), std::nullopt);
  EXPECT_EQ(check(header, body, signed_at.plus_seconds(-300)), std::nullopt);
  EXPECT_EQ(check(header, body, signed_at.plus_seconds(301)),
            signature_failure::timestamp_outside_tolerance);
  // A signature from the future (the sender's clock or a forger) too.
  EXPECT_EQ(check(header, body, signed_at.plus_seconds(-301)),
            signature_failure::timestamp_outside_tolerance);
  const auto s = verify_stripe_signature(header, body, secret,
                                         signed_at.plus_seconds(3600));
  ASSERT_FALSE(s);
  EXPECT_EQ(s.error().detail, "timestamp outside tolerance");
}

TEST(webhook_signature, the_tolerance_is_configurable) {
  const auto header = sign_stripe_payload(secret, signed_at, body);
  EXPECT_EQ(check_stripe_signature(header, body, secret,
                                   signed_at.plus_seconds(10), 5),
            signature_failure::timestamp_outside_tolerance);
  EXPECT_EQ(check_stripe_signature(header, body, secret,
                                   signed_at.plus_seconds(600), 900),
            std::nullopt);
  EXPECT_EQ(check_stripe_signature(header, body, secret, signed_at, 0),
            std::nullopt);
}

TEST(webhook_signature, any_v1_may_match_and_others_are_ignored) {
  const std::string good = reference_hmac(secret, signed_at.unix_s, body);
  const std::string wrong = reference_hmac("whsec_old", signed_at.unix_s, body);
  EXPECT_EQ(check("t=1700000000,v1=" + wrong + ",v1=" + good), std::nullopt);
  EXPECT_EQ(check("t=1700000000,v1=" + good + ",v1=" + wrong), std::nullopt);
  EXPECT_EQ(
    check("v0=" + wrong + ",t=1700000000,v1=nothex,v1=" + good + ",v9=x"),
    std::nullopt);
  EXPECT_EQ(check("t=1700000000,v1=" + wrong + ",v1=" + wrong),
            signature_failure::signature_mismatch);
}

TEST(webhook_signature, a_missing_or_blank_header_is_reported_as_missing) {
  EXPECT_EQ(check(""), signature_failure::missing_header);
  EXPECT_EQ(check("   "), signature_failure::missing_header);
  const auto s = verify_stripe_signature("", body, secret, signed_at);
  ASSERT_FALSE(s);
  EXPECT_EQ(s.code(), errc::invalid_argument);
  EXPECT_EQ(s.error().detail, "missing header");
}

TEST(webhook_signature, malformed_headers_are_rejected) {
  const std::string good = reference_hmac(secret, signed_at.unix_s, body);
  for (const std::string& header : {
         std::string{"garbage"},
         "v1=" + good,                           // no t
         "t=,v1=" + good,                        // empty t
         "t=17000000x0,v1=" + good,              // not a number
         "t=-1700000000,v1=" + good,             // signed
         "t=1700000000,t=1700000000,v1=" + good, // two t
         "t=1700000000,,v1=" + good,             // empty element
         "t=1700000000,v1" + good,               // no '='
         "t=1700000000,=abc,v1=" + good,         // no key
         "t=1234567890123,v1=" + good,           // absurd length
       }) {
    EXPECT_EQ(check(header), signature_failure::malformed_header) << header;
  }
  const auto s = verify_stripe_signature("garbage", body, secret, signed_at);
  ASSERT_FALSE(s);
  EXPECT_EQ(s.error().detail, "malformed header");
}

TEST(webhook_signature, a_header_with_only_v0_has_no_v1_signature) {
  const std::string v0 = reference_hmac(secret, signed_at.unix_s, body);
  EXPECT_EQ(check("t=1700000000,v0=" + v0), signature_failure::no_v1_signature);
  EXPECT_EQ(check("t=1700000000"), signature_failure::no_v1_signature);
  const auto s = verify_stripe_signature("t=1700000000,v0=" + v0, body, secret,
                                         signed_at);
  ASSERT_FALSE(s);
  EXPECT_EQ(s.error().detail, "no v1 signature");
}

TEST(webhook_signature, an_oversize_header_is_rejected_even_if_it_would_match) {
  const std::string good = reference_hmac(secret, signed_at.unix_s, body);
  std::string header = "t=1700000000,v1=" + good + ",x=";
  header.append(stripe_signature_header_size_max - header.size() + 1, 'a');
  ASSERT_EQ(header.size(), stripe_signature_header_size_max + 1);
  EXPECT_EQ(check(header), signature_failure::malformed_header);
  const auto s = verify_stripe_signature(header, body, secret, signed_at);
  ASSERT_FALSE(s);
  EXPECT_EQ(s.error().detail, "malformed header: longer than 4096 bytes");
  header.pop_back();
  EXPECT_EQ(check(header), std::nullopt);
}

TEST(webhook_signature, more_than_sixteen_signatures_are_rejected) {
  const std::string wrong = reference_hmac("whsec_x", signed_at.unix_s, body);
  const std::string good = reference_hmac(secret, signed_at.unix_s, body);
  std::string sixteen = "t=1700000000";
  for (int i = 0; i < 15; ++i)
    sixteen += ",v1=" + wrong;
  sixteen += ",v1=" + good;
  EXPECT_EQ(check(sixteen), std::nullopt);
  EXPECT_EQ(check(sixteen + ",v1=" + wrong),
            signature_failure::malformed_header);
}

TEST(webhook_signature, an_empty_body_is_signed_like_any_other) {
  const auto header = header_for(signed_at.unix_s,
                                 reference_hmac(secret, signed_at.unix_s, ""));
  EXPECT_EQ(check(header, ""), std::nullopt);
  EXPECT_EQ(check(header, " "), signature_failure::signature_mismatch);
}

} // namespace
} // namespace recur
