#include "workflows/retry_policy.hpp"

#include <algorithm>
#include <string>

#include "domain/arith.hpp"

namespace recur {

namespace {

constexpr std::int64_t permille = 1000;

status policy_error(const char* detail) {
  return make_error(errc::invalid_policy, std::string{"retry policy: "} + detail);
}

/// initial × coefficient^(steps), each step rounded half even, saturated at
/// the cap. Stops early at the cap or at a fixed point (a coefficient so
/// close to 1 that rounding swallows the growth), so huge inputs are cheap.
std::int64_t backoff_s(const retry_policy& p, std::int32_t steps) {
  std::int64_t delay = std::min(p.initial_interval_s, p.max_interval_s);
  for (std::int32_t i = 0; i < steps; ++i) {
    const int128 grown = div_round_half_even(
      int128{delay} * p.coefficient_permille, permille);
    if (grown >= p.max_interval_s)
      return p.max_interval_s;
    if (grown == delay)
      return delay;
    delay = static_cast<std::int64_t>(grown);
  }
  return delay;
}

struct decline_row {
  std::string_view code;
  decline_class cls;
};

using enum decline_class;

// Stripe decline codes (docs.stripe.com/declines/codes), by whether retrying
// the same card later can help. hard = the customer or the issuer must act:
// the card is invalid, blocked, reported, or needs authentication the
// customer must perform; retrying only risks network penalties.
// clang-format off
constexpr decline_row decline_table[] = {
  // code                                  class
  {"approve_with_id",                      soft},  // retry as advised
  {"authentication_required",              hard},  // off-session: customer must authenticate
  {"call_issuer",                          soft},  // referral: issuers often approve later
  {"card_not_supported",                   hard},
  {"card_velocity_exceeded",               soft},  // limit resets
  {"currency_not_supported",               hard},
  {"do_not_honor",                         soft},
  {"do_not_try_again",                     hard},
  {"duplicate_transaction",                soft},  // identical charge just before; a later retry is distinct
  {"expired_card",                         hard},
  {"fraudulent",                           hard},
  {"generic_decline",                      soft},
  {"incorrect_cvc",                        hard},
  {"incorrect_number",                     hard},
  {"incorrect_pin",                        hard},
  {"incorrect_zip",                        hard},
  {"insufficient_funds",                   soft},
  {"invalid_account",                      hard},
  {"invalid_amount",                       hard},  // the same amount fails again
  {"invalid_cvc",                          hard},
  {"invalid_expiry_month",                 hard},
  {"invalid_expiry_year",                  hard},
  {"invalid_number",                       hard},
  {"invalid_pin",                          hard},
  {"issuer_not_available",                 soft},
  {"lost_card",                            hard},
  {"merchant_blacklist",                   hard},
  {"new_account_information_available",    hard},  // card replaced: needs the new details
  {"no_action_taken",                      hard},
  {"not_permitted",                        hard},  // network "not permitted to cardholder": never approves
  {"offline_pin_required",                 hard},
  {"online_or_offline_pin_required",       hard},
  {"pickup_card",                          hard},
  {"pin_try_exceeded",                     hard},
  {"processing_error",                     soft},
  {"reenter_transaction",                  soft},
  {"restricted_card",                      hard},
  {"revocation_of_all_authorizations",     hard},
  {"revocation_of_authorization",          hard},
  {"security_violation",                   hard},
  {"service_not_allowed",                  hard},
  {"stolen_card",                          hard},
  {"stop_payment_order",                   hard},
  {"testmode_decline",                     hard},  // a test card never succeeds in live mode
  {"transaction_not_allowed",              hard},
  {"try_again_later",                      soft},
  {"withdrawal_count_limit_exceeded",      soft},  // limit resets
};
// clang-format on

} // namespace

// -- backoff ------------------------------------------------------------------

status validate(const retry_policy& p) {
  if (p.initial_interval_s < 1)
    return policy_error("initial_interval_s must be >= 1");
  if (p.max_interval_s < p.initial_interval_s)
    return policy_error("max_interval_s must be >= initial_interval_s");
  if (p.max_interval_s > retry_interval_limit_s)
    return policy_error("max_interval_s must be <= 365 days");
  if (p.coefficient_permille < permille)
    return policy_error("coefficient_permille must be >= 1000");
  if (p.max_attempts < 1 || p.max_attempts > retry_attempts_limit)
    return policy_error("max_attempts must be in [1, 100]");
  if (p.jitter_permille < 0 || p.jitter_permille > permille)
    return policy_error("jitter_permille must be in [0, 1000]");
  return {};
}

std::optional<std::int64_t>
next_delay_s(const retry_policy& p, std::int32_t attempts_made, rng& gen) {
  RECUR_ASSERT(validate(p).has_value());
  RECUR_ASSERT(attempts_made >= 1);
  if (attempts_made >= p.max_attempts)
    return std::nullopt;
  const std::int64_t delay = backoff_s(p, attempts_made - 1);
  const auto spread = static_cast<std::int64_t>(
    div_round_half_even(int128{delay} * p.jitter_permille, permille));
  if (spread == 0)
    return delay;
  const std::int64_t jittered = delay + gen.between(-spread, spread);
  return std::clamp<std::int64_t>(jittered, 1, p.max_interval_s);
}

retry_policy default_retry_policy() noexcept {
  return retry_policy{
    .initial_interval_s = seconds_per_day,
    .coefficient_permille = 2000,
    .max_interval_s = 7 * seconds_per_day,
    .max_attempts = 4,
    .jitter_permille = 100,
  };
}

// -- decline classification ---------------------------------------------------

std::string_view to_string(decline_class c) noexcept {
  switch (c) {
    case soft: return "soft";
    case hard: return "hard";
  }
  return "unknown_decline_class";
}

decline_class classify_decline(std::string_view stripe_decline_code) noexcept {
  for (const decline_row& r : decline_table) {
    if (r.code == stripe_decline_code)
      return r.cls;
  }
  return soft;
}

} // namespace recur
