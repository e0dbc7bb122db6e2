#pragma once
/// Exponential backoff with seeded jitter for payment retries, and the
/// soft/hard classification of Stripe decline codes that decides whether a
/// retry may help at all.

#include <cstdint>
#include <optional>
#include <string_view>

#include "domain/clock.hpp"
#include "domain/error.hpp"
#include "domain/payment_gateway.hpp"
#include "domain/time.hpp"

namespace recur {

// -- backoff ------------------------------------------------------------------

/// delay(n) = min(max_interval_s, initial_interval_s × coefficient^(n-1)) for
/// the wait after the n-th attempt, then ± jitter. `max_attempts` counts every
/// charge attempt including the first (4 = one charge and three retries).
struct retry_policy {
  std::int64_t initial_interval_s;
  std::int32_t coefficient_permille; // 2000 = ×2.0; >= 1000
  std::int64_t max_interval_s;
  std::int32_t max_attempts;
  std::int32_t jitter_permille; // ± of the delay, 100 = ±10%; 0..1000
};

/// Limits `validate` enforces: a card is not retried more often than this,
/// nor is a retry put off for longer than a year.
inline constexpr std::int32_t retry_attempts_limit = 100;
inline constexpr std::int64_t retry_interval_limit_s = 365 * seconds_per_day;

/// `invalid_policy` (with a detail naming the field) unless:
/// 1 <= initial_interval_s <= max_interval_s <= retry_interval_limit_s,
/// coefficient_permille >= 1000 (delays never shrink),
/// 1 <= max_attempts <= retry_attempts_limit, 0 <= jitter_permille <= 1000.
status validate(const retry_policy& p);

/// The wait before attempt `attempts_made + 1`, or nullopt once
/// `attempts_made >= max_attempts`. Requires a valid policy and
/// attempts_made >= 1 (the first charge is not a retry).
///
/// The backoff is computed in integers, each ×coefficient step rounded half
/// even and saturated at the cap (so huge coefficients cannot overflow).
/// Jitter is drawn with `gen.between(-spread, +spread)`, spread = delay ×
/// jitter_permille / 1000 (half even), and the result is clamped to
/// [1, max_interval_s]: the cap is a promise to the customer, so jitter never
/// pushes past it. With no spread, `gen` is not touched.
std::optional<std::int64_t>
next_delay_s(const retry_policy& p, std::int32_t attempts_made, rng& gen);

/// Stripe-like: 4 attempts, 1 day, ×2, capped at 7 days, ±10%.
retry_policy default_retry_policy() noexcept;

// -- decline classification ---------------------------------------------------

// decline_class (soft / hard) is defined with the gateway port in
// domain/payment_gateway.hpp.

std::string_view to_string(decline_class c) noexcept;

/// Classifies a Stripe `decline_code` (exact, lower-case). Codes not in the
/// table are soft: Stripe adds codes over time, and a wrong "soft" costs a few
/// bounded retries while a wrong "hard" gives up on revenue at once.
decline_class classify_decline(std::string_view stripe_decline_code) noexcept;

} // namespace recur
