#pragma once
/// An in-process, deterministic payment gateway for tests and simulations:
/// Stripe's test payment methods, our fault tokens, seeded fault rates, and a
/// record of every charge by idempotency key to prove nothing was collected
/// twice.

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "domain/clock.hpp"
#include "domain/payment_gateway.hpp"

namespace recur {

// -- configuration ------------------------------------------------------------

/// Seeded fault rates in parts per million, all 0 by default. They apply to
/// every charge() call that reaches the gateway (a valid request while the
/// gateway is available), which draws exactly four numbers from the seeded
/// generator, in this order, whatever the outcome: so the n-th such call
/// behaves the same for a given seed whatever the rates or tokens.
///  1. timeout_ppm: the request is lost before the gateway processes it:
///     `unknown`, nothing recorded, retrieve → not_found.
///  2. timeout_after_commit_ppm: processed (and recorded, charged if it
///     succeeded) but the answer is lost: `unknown`; retrieve tells the truth.
///  3. decline_soft_ppm: a card charge that would succeed (a succeeding test
///     card, pm_sandbox_flaky_N past N) is declined "processing_error"
///     (soft) instead.
///  4. pending_ppm: such a charge goes `pending` instead and settles to
///     succeeded after `settle_delay_s`.
/// Draws 3 and 4 are ignored on an idempotent replay (the stored answer wins).
struct sandbox_config {
  std::uint32_t timeout_ppm = 0;
  std::uint32_t timeout_after_commit_ppm = 0;
  std::uint32_t decline_soft_ppm = 0;
  std::uint32_t pending_ppm = 0;
  /// How long a pending charge takes to settle (pm_sandbox_async,
  /// pm_sandbox_async_fail, pending_ppm).
  std::int64_t settle_delay_s = 60;
  /// Whether synchronous outcomes also produce events, as Stripe does (a
  /// succeeded charge is followed by payment_intent.succeeded). Settlements of
  /// pending charges and refunds always do.
  bool events_for_sync_outcomes = true;
};

inline constexpr std::uint32_t ppm_max = 1'000'000;
inline constexpr std::int64_t settle_delay_s_max = 30 * seconds_per_day;

/// Limits the sandbox asserts (it is for tests and simulations): more would
/// mean a runaway test, not a workload.
inline constexpr std::size_t sandbox_charges_max = 10'000'000;
inline constexpr std::size_t sandbox_refunds_max = 10'000'000;
inline constexpr std::size_t sandbox_queued_events_max = 10'000'000;
/// N in pm_sandbox_flaky_N.
inline constexpr std::int64_t sandbox_flaky_n_max = 1000;

/// `invalid_argument` naming the field unless every rate is <= ppm_max and
/// 0 <= settle_delay_s <= settle_delay_s_max.
status validate(const sandbox_config& c);

// -- records ------------------------------------------------------------------

/// One processed charge, as a test or a checker sees it.
struct charge_record {
  std::string idempotency_key;
  tenant_id tenant;
  customer_id customer;
  std::string payment_method;
  money amount;
  charge_status status; // now: a pending charge settles
  std::string charge_id;
  std::string decline_code;
  instant created;
  money refunded;
  std::int64_t times_collected = 0; // 0 or 1, asserted
};

struct refund_record {
  std::string idempotency_key;
  std::string charge_id;
  std::string refund_id;
  money amount;
  instant created;
};

// -- the sandbox --------------------------------------------------------------

// clang-format off
/// The sandbox gateway. Stripe's test payment methods (docs.stripe.com/testing)
/// and what charge() answers (declines: decline_code and class):
///
/// | token                                       | answer
/// |---------------------------------------------|----------------------------
/// | pm_card_visa, pm_card_visa_debit,           | succeeded
/// |   pm_card_mastercard, pm_card_amex,         |
/// |   pm_card_discover                          |
/// | pm_card_chargeDeclined                      | generic_decline         soft
/// | pm_card_chargeDeclinedInsufficientFunds     | insufficient_funds      soft
/// | pm_card_chargeDeclinedProcessingError       | processing_error        soft
/// | pm_card_chargeDeclinedVelocityLimitExceeded | card_velocity_exceeded  soft
/// | pm_card_chargeDeclinedExpiredCard           | expired_card            hard
/// | pm_card_chargeDeclinedIncorrectCvc          | incorrect_cvc           hard
/// | pm_card_chargeDeclinedFraudulent            | fraudulent              hard
/// | pm_card_chargeDeclinedLostCard              | lost_card               hard
/// | pm_card_chargeDeclinedStolenCard            | stolen_card             hard
/// | anything else                               | resource_missing        hard
///
/// Our fault tokens:
///
/// | token                           | charge() | retrieve() afterwards
/// |---------------------------------|----------|------------------------------
/// | pm_sandbox_timeout              | unknown  | not_found: never processed
/// | pm_sandbox_timeout_after_charge | unknown  | succeeded: it was charged
/// | pm_sandbox_async                | pending  | pending; once settled:
/// |                                 |          |   succeeded
/// | pm_sandbox_async_fail           | pending  | pending; once settled:
/// |                                 |          |   insufficient_funds, soft
/// | pm_sandbox_flaky_N, N 1..1000   | the first N charges under different keys
/// |                                 | for that tenant + customer + token are
/// |                                 | declined processing_error (soft); later
/// |                                 | ones succeed
///
/// A replay under the same key returns the answer the gateway first produced
/// (pm_sandbox_timeout_after_charge: succeeded, only the first answer is
/// lost); pm_sandbox_timeout is never processed, so it stays unknown.
///
/// Unknown tokens decline hard with Stripe's error code for a missing payment
/// method (Stripe answers 400 "No such PaymentMethod"): only the customer can
/// fix it, and a decline (not an error) sends the invoice to dunning.
///
/// Pending charges settle `settle_delay_s` after they were made. Settlement
/// happens when it is due by the clock (on any call) or by the `now` given to
/// `poll_events`, whichever comes first.
///
/// Events: payment_intent.succeeded / payment_intent.payment_failed when a
/// charge reaches its final state (synchronous ones too unless disabled, and
/// always when the answer was lost, so that a webhook can resolve it), and
/// charge.refunded for every refund.
///
/// Ids are deterministic: charges "ch_sbx_<n>", refunds "re_sbx_<n>", events
/// "evt_sbx_<n>" (numbered in the order poll_events returns them). Idempotency
/// keys are one namespace: a refund key used for a charge is a conflict.
///
/// `set_available(false)` models an outage: charge, retrieve and refund
/// answer `unavailable` and nothing happens (no draws either); events stay
/// queued for poll_events.
///
/// Thread-safe: one mutex around everything. Deterministic for a given seed
/// and a given order of calls.
// clang-format on
class sandbox_gateway final : public payment_gateway {
public:
  /// Asserts `validate(config)`. `clk` must outlive the gateway.
  sandbox_gateway(const clock& clk, std::uint64_t seed,
                  sandbox_config config = {});
  ~sandbox_gateway() override;

  sandbox_gateway(const sandbox_gateway&) = delete;
  sandbox_gateway& operator=(const sandbox_gateway&) = delete;

  // -- payment_gateway --------------------------------------------------------

  result<charge_result> charge(const charge_request& req) override;
  result<charge_result> retrieve(const std::string& idempotency_key) override;
  result<refund_result> refund(const refund_request& req) override;
  std::string_view name() const override { return "sandbox"; }

  // -- asynchronous events ----------------------------------------------------

  /// Settles what is due by `now`, then returns every event due by `now` not
  /// returned before, in due order (ties: the order they were caused).
  std::vector<gateway_event> poll_events(instant now);

  // -- fault control ----------------------------------------------------------

  void set_available(bool available);

  // -- inspection -------------------------------------------------------------

  /// How many times money was collected under `key`: 0 or 1, never more.
  std::int64_t times_collected(const std::string& key) const;

  /// Every processed charge, in the order they were made.
  std::vector<charge_record> charges() const;

  std::vector<refund_record> refunds() const;

  /// Sum of succeeded charges (before refunds) in `cur`.
  money total_collected(const currency& cur) const;

  /// Sum of refunds in `cur`.
  money total_refunded(const currency& cur) const;

private:
  struct state;
  std::unique_ptr<state> state_;
};

} // namespace recur
