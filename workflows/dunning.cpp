#include "workflows/dunning.hpp"

#include <algorithm>
#include <string>

namespace recur {

namespace {

using enum dunning_action;

status ladder_error(const std::string& detail) {
  return make_error(errc::invalid_policy, "dunning ladder: " + detail);
}

std::string step_name(std::size_t i) { return "step " + std::to_string(i); }

bool contains(const std::vector<dunning_action>& actions, dunning_action a) {
  return std::find(actions.begin(), actions.end(), a) != actions.end();
}

/// Checks one step on its own and against the day of the step before it.
status validate_step(const dunning_step& step, std::size_t i,
                     std::optional<std::int32_t> previous_day) {
  if (step.day_offset < 0 || step.day_offset > dunning_days_limit)
    return ladder_error(step_name(i) + ": day_offset "
                        + std::to_string(step.day_offset)
                        + " is outside [0, 365]");
  if (previous_day && step.day_offset <= *previous_day)
    return ladder_error(step_name(i) + ": day_offset "
                        + std::to_string(step.day_offset) + " is not after day "
                        + std::to_string(*previous_day));
  if (step.actions.empty())
    return ladder_error(step_name(i) + " has no actions");
  for (auto a = step.actions.begin(); a != step.actions.end(); ++a)
    if (std::find(a + 1, step.actions.end(), *a) != step.actions.end())
      return ladder_error(step_name(i) + " lists "
                          + std::string{to_string(*a)} + " twice");
  return {};
}

/// Where the ladder ends: suspend once, then cancel once and last of all.
status validate_escalation(const dunning_ladder& ladder) {
  std::optional<std::size_t> suspend_step;
  for (std::size_t i = 0; i < ladder.steps.size(); ++i) {
    const auto& actions = ladder.steps[i].actions;
    if (contains(actions, suspend)) {
      if (suspend_step)
        return ladder_error(step_name(i) + ": suspend appears twice");
      suspend_step = i;
    }
    if (!contains(actions, cancel_and_write_off))
      continue;
    if (i + 1 != ladder.steps.size() || actions.back() != cancel_and_write_off)
      return ladder_error(step_name(i)
                          + ": cancel_and_write_off must be the last action");
    if (!suspend_step)
      return ladder_error(step_name(i)
                          + ": cancel_and_write_off needs a suspend first");
  }
  return {};
}

} // namespace

std::string_view to_string(dunning_action a) noexcept {
  switch (a) {
    case notify_email: return "notify_email";
    case notify_in_app: return "notify_in_app";
    case notify_sms: return "notify_sms";
    case retry_payment: return "retry_payment";
    case suspend: return "suspend";
    case cancel_and_write_off: return "cancel_and_write_off";
  }
  return "unknown_dunning_action";
}

status validate(const dunning_ladder& ladder) {
  if (ladder.steps.empty())
    return ladder_error("no steps");
  if (ladder.steps.size() > dunning_steps_limit)
    return ladder_error("more than 32 steps");
  std::optional<std::int32_t> previous_day;
  for (std::size_t i = 0; i < ladder.steps.size(); ++i) {
    if (auto st = validate_step(ladder.steps[i], i, previous_day); !st)
      return st;
    previous_day = ladder.steps[i].day_offset;
  }
  if (ladder.sms_min_amount && ladder.sms_min_amount->is_negative())
    return ladder_error("sms_min_amount is negative");
  return validate_escalation(ladder);
}

dunning_ladder default_dunning_ladder(currency cur) {
  return dunning_ladder{
    .steps = {
      {0, {retry_payment, notify_email}},
      {3, {retry_payment, notify_in_app}},
      {7, {retry_payment, notify_sms}},
      {14, {suspend}},
      {30, {cancel_and_write_off}},
    },
    .sms_min_amount = money{100 * cur.minor_per_major(), cur},
  };
}

std::vector<dunning_action> actions_for(const dunning_ladder& ladder,
                                        std::size_t step_index,
                                        const money& invoice_amount) {
  RECUR_ASSERT(step_index < ladder.steps.size());
  const auto& threshold = ladder.sms_min_amount;
  const bool sms_allowed
    = !threshold
      || (threshold->currency() == invoice_amount.currency()
          && invoice_amount.amount_minor() >= threshold->amount_minor());
  std::vector<dunning_action> out;
  for (dunning_action a : ladder.steps[step_index].actions)
    if (a != notify_sms || sms_allowed)
      out.push_back(a);
  return out;
}

std::optional<std::size_t> next_step_after(const dunning_ladder& ladder,
                                           std::int32_t day) {
  for (std::size_t i = 0; i < ladder.steps.size(); ++i)
    if (ladder.steps[i].day_offset > day)
      return i;
  return std::nullopt;
}

instant step_due_at(const dunning_ladder& ladder, std::size_t step,
                    instant dunning_started_at) {
  RECUR_ASSERT(step < ladder.steps.size());
  return dunning_started_at.plus_seconds(
    std::int64_t{ladder.steps[step].day_offset} * seconds_per_day);
}

} // namespace recur
