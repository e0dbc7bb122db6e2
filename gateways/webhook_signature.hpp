#pragma once
/// Stripe's webhook signature scheme (`Stripe-Signature: t=<unix>,v1=<hex>`),
/// verified and produced with HMAC-SHA256 over "<t>.<raw body>".

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "domain/error.hpp"
#include "domain/time.hpp"

namespace recur {

/// The header that carries the signature, as Stripe spells it.
inline constexpr std::string_view stripe_signature_header = "Stripe-Signature";

/// Stripe's libraries default to five minutes; so do we.
inline constexpr std::int64_t stripe_signature_tolerance_s = 300;

/// A longer tolerance would make a captured delivery replayable for too long.
inline constexpr std::int64_t stripe_signature_tolerance_s_max = 86'400;

/// Stripe sends one v1 signature per active secret (two while a secret is
/// rolled), so a few KiB and 16 signatures leave ample room and bound the work
/// an unauthenticated caller can cause.
inline constexpr std::size_t stripe_signature_header_size_max = 4096;
inline constexpr std::size_t stripe_signature_count_max = 16;

/// Why a delivery was rejected. Each one answers 400 at the webhook endpoint;
/// the distinction is for logs and metrics.
enum class signature_failure : std::uint8_t {
  missing_header,              // absent or empty
  malformed_header,            // no t=, a bad t=, an element without '=',
                               // too long, too many signatures
  no_v1_signature,             // only other schemes (v0) or none at all
  timestamp_outside_tolerance, // |now - t| > tolerance
  signature_mismatch,          // no v1 matches (also: no secret configured)
};

/// "missing header", "malformed header", "no v1 signature",
/// "timestamp outside tolerance", "signature mismatch".
std::string_view to_string(signature_failure f) noexcept;

/// Checks a `Stripe-Signature` header value against the raw request body.
/// Any of the v1 signatures may match; v0 and unknown schemes are ignored, as
/// Stripe's libraries do. The comparison is constant-time. The timestamp must
/// be within `tolerance_s` of `now` in either direction (Stripe's libraries
/// only reject old ones; a timestamp from the future is as suspect).
/// The secret is used as given, "whsec_" prefix included, as Stripe's
/// libraries do; an empty secret matches nothing.
/// Returns nullopt when the signature is valid. Asserts
/// 0 <= tolerance_s <= stripe_signature_tolerance_s_max.
std::optional<signature_failure>
check_stripe_signature(std::string_view header, std::string_view body,
                       std::string_view secret, instant now,
                       std::int64_t tolerance_s = stripe_signature_tolerance_s);

/// `check_stripe_signature` as a status: `invalid_argument` whose detail
/// starts with `to_string(failure)` (e.g. "signature mismatch").
status verify_stripe_signature(std::string_view header, std::string_view body,
                               std::string_view secret, instant now,
                               std::int64_t tolerance_s
                               = stripe_signature_tolerance_s);

/// Lower-case hex HMAC-SHA256(secret, "<t>.<body>"): one v1 signature.
std::string stripe_v1_signature(std::string_view secret, instant t,
                                std::string_view body);

/// The full header value Stripe would send: "t=<unix>,v1=<hex>". For the
/// sandbox's webhook sender and for tests.
std::string sign_stripe_payload(std::string_view secret, instant t,
                                std::string_view body);

} // namespace recur
