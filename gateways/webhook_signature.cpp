#include "gateways/webhook_signature.hpp"

#include <array>
#include <climits>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

namespace recur {

namespace {

constexpr std::size_t digest_size = 32; // SHA-256

/// Twelve digits reach the year 33658 and cannot overflow the arithmetic.
constexpr std::size_t timestamp_digits_max = 12;

using digest = std::array<unsigned char, digest_size>;

digest hmac_sha256(std::string_view secret, instant t, std::string_view body) {
  RECUR_ASSERT(secret.size() <= static_cast<std::size_t>(INT_MAX));
  std::string payload = std::to_string(t.unix_s);
  payload += '.';
  payload += body;
  digest out{};
  unsigned int out_size = 0;
  const unsigned char* ok
    = HMAC(EVP_sha256(), secret.data(), static_cast<int>(secret.size()),
           reinterpret_cast<const unsigned char*>(payload.data()),
           payload.size(), out.data(), &out_size);
  RECUR_ASSERT(ok != nullptr && out_size == digest_size);
  return out;
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t'))
    s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t'))
    s.remove_suffix(1);
  return s;
}

int hex_value(char c) {
  if (c >= '0' && c <= '9')
    return c - '0';
  if (c >= 'a' && c <= 'f')
    return c - 'a' + 10;
  if (c >= 'A' && c <= 'F')
    return c - 'A' + 10;
  return -1;
}

/// A v1 value that is not 64 hex digits can never match: nullopt.
std::optional<digest> decode_hex(std::string_view hex) {
  if (hex.size() != 2 * digest_size)
    return std::nullopt;
  digest out{};
  for (std::size_t i = 0; i < digest_size; ++i) {
    const int hi = hex_value(hex[2 * i]);
    const int lo = hex_value(hex[2 * i + 1]);
    if (hi < 0 || lo < 0)
      return std::nullopt;
    out[i] = static_cast<unsigned char>(hi * 16 + lo);
  }
  return out;
}

std::optional<std::int64_t> parse_timestamp(std::string_view s) {
  if (s.empty() || s.size() > timestamp_digits_max)
    return std::nullopt;
  std::int64_t v = 0;
  for (char c : s) {
    if (c < '0' || c > '9')
      return std::nullopt;
    v = v * 10 + (c - '0');
  }
  return v;
}

/// The header's parts that matter: the timestamp and the v1 signatures.
struct parsed_header {
  std::int64_t t = 0;
  std::array<std::string_view, stripe_signature_count_max> v1{};
  std::size_t v1_count = 0;
};

/// Stripe's grammar: comma-separated key=value elements; exactly one t.
std::optional<signature_failure> parse(std::string_view header,
                                       parsed_header& out) {
  bool have_t = false;
  while (true) {
    const std::size_t comma = header.find(',');
    const std::string_view element = trim(header.substr(0, comma));
    const std::size_t eq = element.find('=');
    if (eq == std::string_view::npos || eq == 0)
      return signature_failure::malformed_header;
    const std::string_view key = element.substr(0, eq);
    const std::string_view value = element.substr(eq + 1);
    if (key == "t") {
      const auto t = parse_timestamp(value);
      if (have_t || !t)
        return signature_failure::malformed_header;
      out.t = *t;
      have_t = true;
    } else if (key == "v1") {
      if (out.v1_count == stripe_signature_count_max)
        return signature_failure::malformed_header;
      out.v1[out.v1_count++] = value;
    }
    if (comma == std::string_view::npos)
      break;
    header.remove_prefix(comma + 1);
  }
  if (!have_t)
    return signature_failure::malformed_header;
  return std::nullopt;
}

} // namespace

std::string_view to_string(signature_failure f) noexcept {
  switch (f) {
    case signature_failure::missing_header:
      return "missing header";
    case signature_failure::malformed_header:
      return "malformed header";
    case signature_failure::no_v1_signature:
      return "no v1 signature";
    case signature_failure::timestamp_outside_tolerance:
      return "timestamp outside tolerance";
    case signature_failure::signature_mismatch:
      return "signature mismatch";
  }
  return "unknown signature failure";
}

std::optional<signature_failure>
check_stripe_signature(std::string_view header, std::string_view body,
                       std::string_view secret, instant now,
                       std::int64_t tolerance_s) {
  RECUR_ASSERT(tolerance_s >= 0
               && tolerance_s <= stripe_signature_tolerance_s_max);
  if (trim(header).empty())
    return signature_failure::missing_header;
  if (header.size() > stripe_signature_header_size_max)
    return signature_failure::malformed_header;
  parsed_header parsed;
  if (auto failure = parse(header, parsed))
    return failure;
  if (parsed.v1_count == 0)
    return signature_failure::no_v1_signature;
  const std::int64_t skew_s = now.unix_s - parsed.t;
  if (skew_s > tolerance_s || skew_s < -tolerance_s)
    return signature_failure::timestamp_outside_tolerance;
  if (secret.empty())
    return signature_failure::signature_mismatch;
  const digest expected = hmac_sha256(secret, instant{parsed.t}, body);
  bool matched = false;
  // Every candidate is compared, so the time taken does not say which matched.
  for (std::size_t i = 0; i < parsed.v1_count; ++i) {
    const auto candidate = decode_hex(parsed.v1[i]);
    if (candidate
        && CRYPTO_memcmp(candidate->data(), expected.data(), digest_size) == 0)
      matched = true;
  }
  if (!matched)
    return signature_failure::signature_mismatch;
  return std::nullopt;
}

status verify_stripe_signature(std::string_view header, std::string_view body,
                               std::string_view secret, instant now,
                               std::int64_t tolerance_s) {
  const auto failure = check_stripe_signature(header, body, secret, now,
                                              tolerance_s);
  if (!failure)
    return {};
  std::string detail{to_string(*failure)};
  if (*failure == signature_failure::malformed_header
      && header.size() > stripe_signature_header_size_max)
    detail += ": longer than "
              + std::to_string(stripe_signature_header_size_max) + " bytes";
  return make_error(errc::invalid_argument, std::move(detail));
}

std::string stripe_v1_signature(std::string_view secret, instant t,
                                std::string_view body) {
  static constexpr char digits[] = "0123456789abcdef";
  const digest d = hmac_sha256(secret, t, body);
  std::string hex;
  hex.reserve(2 * digest_size);
  for (unsigned char b : d) {
    hex += digits[b >> 4];
    hex += digits[b & 0x0f];
  }
  return hex;
}

std::string sign_stripe_payload(std::string_view secret, instant t,
                                std::string_view body) {
  return "t=" + std::to_string(t.unix_s)
         + ",v1=" + stripe_v1_signature(secret, t, body);
}

} // namespace recur
