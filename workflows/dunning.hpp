#pragma once
/// A tenant's dunning ladder (Kill Bill overdue states, Stripe smart retries):
/// what to do on which day after a payment has finally failed.

#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string_view>
#include <vector>

#include "domain/error.hpp"
#include "domain/money.hpp"
#include "domain/time.hpp"

namespace recur {

enum class dunning_action : std::uint8_t {
  notify_email,
  notify_in_app,
  notify_sms,
  retry_payment,
  suspend,              // lifecycle trigger dunning_suspend
  cancel_and_write_off, // lifecycle trigger dunning_exhausted
};

inline constexpr std::array all_dunning_actions{
  dunning_action::notify_email,  dunning_action::notify_in_app,
  dunning_action::notify_sms,    dunning_action::retry_payment,
  dunning_action::suspend,       dunning_action::cancel_and_write_off,
};

std::string_view to_string(dunning_action a) noexcept;

/// What to do `day_offset` days after dunning started, in the listed order.
struct dunning_step {
  std::int32_t day_offset;
  std::vector<dunning_action> actions;
};

/// Steps in day order. SMS goes only to invoices of at least `sms_min_amount`
/// (in its currency); without a threshold every invoice gets the SMS.
struct dunning_ladder {
  std::vector<dunning_step> steps;
  std::optional<money> sms_min_amount;
};

/// Limits `validate` enforces.
inline constexpr std::size_t dunning_steps_limit = 32;
inline constexpr std::int32_t dunning_days_limit = 365;

/// `invalid_policy` with a detail unless: 1..32 steps; day offsets in
/// [0, 365] and strictly increasing; every step has actions, none twice;
/// suspend appears at most once; cancel_and_write_off appears at most once,
/// last in the last step, after a suspend (the lifecycle only cancels for
/// nonpayment from suspended, so a suspend must come first, in the same or an
/// earlier step); sms_min_amount, when set, is not negative.
status validate(const dunning_ladder& ladder);

/// ARCHITECTURE.md §5: day 0 retry + email, day 3 retry + in-app, day 7
/// retry + SMS (invoices >= 100 major units of `cur`), day 14 suspend, day 30
/// cancel and write off. Retries come first in a step so that a successful
/// retry ends dunning before any notice goes out.
dunning_ladder default_dunning_ladder(currency cur);

/// The actions of step `step_index` for an invoice of `invoice_amount`, with
/// notify_sms dropped when the amount is below sms_min_amount or in another
/// currency (a threshold in one currency says nothing about another; no
/// exchange rates here, and an unwanted SMS is worse than a missing one).
/// Requires step_index < steps.size().
std::vector<dunning_action> actions_for(const dunning_ladder& ladder,
                                        std::size_t step_index,
                                        const money& invoice_amount);

/// The first step whose day_offset is strictly after `day` (days since
/// dunning started), or nullopt when the ladder is done.
std::optional<std::size_t> next_step_after(const dunning_ladder& ladder,
                                           std::int32_t day);

/// dunning_started_at + day_offset days. Requires step < steps.size().
instant step_due_at(const dunning_ladder& ladder, std::size_t step,
                    instant dunning_started_at);

} // namespace recur
