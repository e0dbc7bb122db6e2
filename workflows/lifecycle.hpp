#pragma once
/// The subscription lifecycle of ARCHITECTURE.md §4 as one transition table:
/// given a state and a trigger, the next state and the effects to request.

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "domain/error.hpp"
#include "domain/time.hpp"

namespace recur {

// -- states -------------------------------------------------------------------

/// Persisted status of a subscription. There is deliberately no "new" value:
/// a subscription that does not exist yet has no state (see `apply_new`), so
/// no stored row can ever carry a pseudo-status.
enum class sub_status : std::uint8_t {
  incomplete,
  trialing,
  active,
  past_due,
  suspended,
  paused,
  canceled,
};

/// Why a subscription was canceled; `none` unless the status is `canceled`.
enum class cancel_reason : std::uint8_t {
  none,
  incomplete_expired,
  nonpayment,
  requested,
};

/// Why a subscription is paused; `none` unless the status is `paused`.
enum class pause_reason : std::uint8_t { none, requested, trial_ended };

/// The whole lifecycle state. Consistency rules (see `is_consistent`):
/// `cancel` is set iff canceled, `pause` is set iff paused, and
/// `cancel_at_period_end` is never set on incomplete or canceled.
///
/// The flag survives past_due, suspended and paused: it records the
/// customer's wish to leave at period end, and a failed payment or a pause
/// must not turn it into a renewal once the subscription is active again.
struct lifecycle_state {
  sub_status status = sub_status::incomplete;
  bool cancel_at_period_end = false;
  cancel_reason cancel = cancel_reason::none;
  pause_reason pause = pause_reason::none;

  friend bool operator==(const lifecycle_state&, const lifecycle_state&)
    = default;
};

// -- triggers and effects -----------------------------------------------------

enum class trigger : std::uint8_t {
  create_with_trial,
  create_without_trial,
  invoice_paid,
  incomplete_expired,
  trial_end_with_payment_method,
  trial_end_without_payment_method,
  period_end,
  invoice_payment_failed,
  change_plan,
  pause,
  resume,
  dunning_suspend,
  dunning_exhausted,
  cancel_immediately,
  schedule_cancel_at_period_end,
  unschedule_cancel_at_period_end,
};

/// A request the actor layer executes after persisting the transition, in
/// the order listed (teardown before setup).
enum class effect : std::uint8_t {
  arm_trial_end_timer,
  arm_period_end_timer,
  arm_incomplete_expiry_timer, // fires after `incomplete_expiry_s`
  cancel_lifecycle_timers,
  start_invoice_saga,
  void_open_invoice,
  start_dunning_saga,
  end_dunning_saga,
  start_plan_change_saga,
  start_suspension_saga,
  compensate_suspension,
  mark_invoice_uncollectible,
  post_bad_debt,
  start_cancellation_saga,
};

/// How long an incomplete subscription waits for its first payment (Stripe).
inline constexpr std::int64_t incomplete_expiry_s = 23 * seconds_per_hour;

inline constexpr std::array all_statuses{
  sub_status::incomplete, sub_status::trialing,  sub_status::active,
  sub_status::past_due,   sub_status::suspended, sub_status::paused,
  sub_status::canceled,
};

inline constexpr std::array all_cancel_reasons{
  cancel_reason::none,
  cancel_reason::incomplete_expired,
  cancel_reason::nonpayment,
  cancel_reason::requested,
};

inline constexpr std::array all_pause_reasons{
  pause_reason::none,
  pause_reason::requested,
  pause_reason::trial_ended,
};

inline constexpr std::array all_triggers{
  trigger::create_with_trial,
  trigger::create_without_trial,
  trigger::invoice_paid,
  trigger::incomplete_expired,
  trigger::trial_end_with_payment_method,
  trigger::trial_end_without_payment_method,
  trigger::period_end,
  trigger::invoice_payment_failed,
  trigger::change_plan,
  trigger::pause,
  trigger::resume,
  trigger::dunning_suspend,
  trigger::dunning_exhausted,
  trigger::cancel_immediately,
  trigger::schedule_cancel_at_period_end,
  trigger::unschedule_cancel_at_period_end,
};

inline constexpr std::array all_effects{
  effect::arm_trial_end_timer,
  effect::arm_period_end_timer,
  effect::arm_incomplete_expiry_timer,
  effect::cancel_lifecycle_timers,
  effect::start_invoice_saga,
  effect::void_open_invoice,
  effect::start_dunning_saga,
  effect::end_dunning_saga,
  effect::start_plan_change_saga,
  effect::start_suspension_saga,
  effect::compensate_suspension,
  effect::mark_invoice_uncollectible,
  effect::post_bad_debt,
  effect::start_cancellation_saga,
};

// -- names --------------------------------------------------------------------

/// Stable snake_case names, e.g. "past_due", "dunning_suspend".
std::string_view to_string(sub_status s) noexcept;
std::string_view to_string(cancel_reason r) noexcept;
std::string_view to_string(pause_reason r) noexcept;
std::string_view to_string(trigger t) noexcept;
std::string_view to_string(effect e) noexcept;

/// For logs and error details: "active", "active+cancel_at_period_end",
/// "paused(trial_ended)", "canceled(nonpayment)".
std::string to_string(const lifecycle_state& s);

// -- transitions --------------------------------------------------------------

/// One step of the machine. `from` is nullopt for the creation of a new
/// subscription.
struct transition {
  std::optional<lifecycle_state> from;
  lifecycle_state to;
  std::vector<effect> effects;
};

/// Whether a state obeys the consistency rules of `lifecycle_state`.
bool is_consistent(const lifecycle_state& s) noexcept;

/// Whether no trigger can leave the status (only `canceled`).
bool is_terminal(sub_status s) noexcept;

/// The transition `t` causes from `from`, or `invalid_transition` (detail
/// names state and trigger) when the table has no row for it. A state that
/// breaks the consistency rules is `invalid_argument`: it means corrupt data,
/// not a caller asking for something the lifecycle forbids.
result<transition> apply(const lifecycle_state& from, trigger t);

/// As above for a subscription not created yet (the "new" pseudo-state, the
/// `from` of the transition is nullopt): only the create triggers apply.
/// A separate name rather than an `apply(std::optional, …)` overload, which
/// argument-dependent lookup would confuse with `std::apply`.
result<transition> apply_new(trigger t);

} // namespace recur
