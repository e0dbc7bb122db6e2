#include "workflows/lifecycle.hpp"

#include <cstddef>
#include <initializer_list>

namespace recur {

namespace {

// -- table vocabulary ---------------------------------------------------------

/// A predicate on the from-state's flags. Guards of rows that share a from
/// status and a trigger must be disjoint (checked at compile time below).
enum class guard : std::uint8_t {
  any,
  no_cancel_scheduled, // !cancel_at_period_end
  cancel_scheduled,    // cancel_at_period_end
  paused_on_request,   // pause == requested
  paused_at_trial_end, // pause == trial_ended
  paused_on_request_no_cancel,      // pause == requested && !cancel_at_period_end
  paused_on_request_cancel_scheduled, // pause == requested && cancel_at_period_end
};

/// What happens to `cancel_at_period_end` on the way to the target.
enum class flag_op : std::uint8_t { keep, set, clear };

/// The target state minus the flag: a status and the reason it carries.
struct target {
  sub_status status;
  cancel_reason cancel = cancel_reason::none;
  pause_reason pause = pause_reason::none;
};

constexpr target to_incomplete{sub_status::incomplete};
constexpr target to_trialing{sub_status::trialing};
constexpr target to_active{sub_status::active};
constexpr target to_past_due{sub_status::past_due};
constexpr target to_suspended{sub_status::suspended};
constexpr target paused_requested{sub_status::paused, cancel_reason::none,
                                  pause_reason::requested};
constexpr target paused_trial_ended{sub_status::paused, cancel_reason::none,
                                    pause_reason::trial_ended};
constexpr target canceled_requested{sub_status::canceled,
                                    cancel_reason::requested};
constexpr target canceled_nonpayment{sub_status::canceled,
                                     cancel_reason::nonpayment};
constexpr target canceled_expired{sub_status::canceled,
                                  cancel_reason::incomplete_expired};

/// Effects of one row, in execution order; fixed capacity so the table stays
/// constexpr.
struct effect_list {
  std::array<effect, 4> items{};
  std::size_t size = 0;

  constexpr effect_list() = default;
  constexpr effect_list(std::initializer_list<effect> list) {
    for (effect e : list)
      items.at(size++) = e;
  }
};

struct row {
  std::optional<sub_status> from; // nullopt: the subscription is being created
  trigger on;
  guard when;
  target to;
  flag_op flag;
  effect_list effects;
};

/// The from-column of the create rows: no subscription exists yet.
constexpr std::optional<sub_status> brand_new = std::nullopt;

using enum sub_status;
using enum trigger;
using enum effect;
using enum guard;
using enum flag_op;

// -- the lifecycle ------------------------------------------------------------
//
// Rows follow ARCHITECTURE.md §4. Additions and decisions not spelled out there:
//  * schedule/unschedule_cancel_at_period_end rows on active and trialing: the
//    flag of §4 needs a way to be set and cleared.
//  * trialing + trial_end_* with the flag set cancels (requested) at trial end,
//    as Stripe does; the trial_end rows of §4 require the flag to be clear.
//  * active + period_end with the flag set cancels without a cancellation saga:
//    the period was fully used, so nothing is prorated.
//  * paused(trial_ended) + resume restarts billing (invoice + period timer),
//    as Stripe does; paused(requested) + resume just reactivates.
//  * incomplete + invoice_paid cancels the expiry timer before arming the
//    period timer.
//  * cancel_immediately also ends the dunning saga from past_due/suspended
//    (it would otherwise keep charging a canceled subscription) and voids the
//    open first invoice from incomplete (nothing was delivered, nothing owed).
//  * cancel_at_period_end is kept through past_due, suspended and paused and
//    cleared on cancellation (see lifecycle_state).
//  * period_end keeps the billing clock running outside active, so that the
//    period timer is never lost: past_due still renews and invoices (Stripe
//    keeps invoicing past_due subscriptions); suspended and paused(requested)
//    only roll the period (billing is blocked while service is withheld, as in
//    Kill Bill's overdue BLOCK_BILLING and Stripe's pause_collection=void).
//    With cancel_at_period_end set, the period end cancels (requested); from
//    past_due/suspended it also ends dunning and writes the unpaid invoice off.
//
// clang-format off
constexpr row table[] = {
  // from      trigger                           guard                to                   flag
  //   effects, in execution order
  {brand_new,  create_with_trial,                any,                 to_trialing,         clear,
     {arm_trial_end_timer}},
  {brand_new,  create_without_trial,             any,                 to_incomplete,       clear,
     {start_invoice_saga, arm_incomplete_expiry_timer}},

  {incomplete, invoice_paid,                     any,                 to_active,           keep,
     {cancel_lifecycle_timers, arm_period_end_timer}},
  {incomplete, trigger::incomplete_expired,      any,                 canceled_expired,    clear,
     {void_open_invoice}},
  {incomplete, cancel_immediately,               any,                 canceled_requested,  clear,
     {cancel_lifecycle_timers, void_open_invoice, start_cancellation_saga}},

  {trialing,   trial_end_with_payment_method,    no_cancel_scheduled, to_active,           keep,
     {start_invoice_saga, arm_period_end_timer}},
  {trialing,   trial_end_without_payment_method, no_cancel_scheduled, paused_trial_ended,  keep,
     {}},
  {trialing,   trial_end_with_payment_method,    cancel_scheduled,    canceled_requested,  clear,
     {}},
  {trialing,   trial_end_without_payment_method, cancel_scheduled,    canceled_requested,  clear,
     {}},
  {trialing,   schedule_cancel_at_period_end,    no_cancel_scheduled, to_trialing,         set,
     {}},
  {trialing,   unschedule_cancel_at_period_end,  cancel_scheduled,    to_trialing,         clear,
     {}},
  {trialing,   cancel_immediately,               any,                 canceled_requested,  clear,
     {cancel_lifecycle_timers, start_cancellation_saga}},

  {active,     period_end,                       no_cancel_scheduled, to_active,           keep,
     {start_invoice_saga, arm_period_end_timer}},
  {active,     period_end,                       cancel_scheduled,    canceled_requested,  clear,
     {cancel_lifecycle_timers}},
  {active,     invoice_payment_failed,           any,                 to_past_due,         keep,
     {start_dunning_saga}},
  {active,     change_plan,                      any,                 to_active,           keep,
     {start_plan_change_saga}},
  {active,     trigger::pause,                   any,                 paused_requested,    keep,
     {}},
  {active,     schedule_cancel_at_period_end,    no_cancel_scheduled, to_active,           set,
     {}},
  {active,     unschedule_cancel_at_period_end,  cancel_scheduled,    to_active,           clear,
     {}},
  {active,     cancel_immediately,               any,                 canceled_requested,  clear,
     {cancel_lifecycle_timers, start_cancellation_saga}},

  {paused,     resume,                           paused_on_request,   to_active,           keep,
     {}},
  {paused,     resume,                           paused_at_trial_end, to_active,           keep,
     {start_invoice_saga, arm_period_end_timer}},
  {paused,     period_end,                       paused_on_request_no_cancel, paused_requested, keep,
     {arm_period_end_timer}},
  {paused,     period_end,                       paused_on_request_cancel_scheduled, canceled_requested, clear,
     {cancel_lifecycle_timers}},
  {paused,     cancel_immediately,               any,                 canceled_requested,  clear,
     {cancel_lifecycle_timers, start_cancellation_saga}},

  {past_due,   invoice_paid,                     any,                 to_active,           keep,
     {end_dunning_saga}},
  {past_due,   dunning_suspend,                  any,                 to_suspended,        keep,
     {start_suspension_saga}},
  {past_due,   period_end,                       no_cancel_scheduled, to_past_due,         keep,
     {start_invoice_saga, arm_period_end_timer}},
  {past_due,   period_end,                       cancel_scheduled,    canceled_requested,  clear,
     {cancel_lifecycle_timers, end_dunning_saga, mark_invoice_uncollectible, post_bad_debt}},
  {past_due,   cancel_immediately,               any,                 canceled_requested,  clear,
     {cancel_lifecycle_timers, end_dunning_saga, start_cancellation_saga}},

  {suspended,  invoice_paid,                     any,                 to_active,           keep,
     {compensate_suspension, end_dunning_saga}},
  {suspended,  dunning_exhausted,                any,                 canceled_nonpayment, clear,
     {cancel_lifecycle_timers, mark_invoice_uncollectible, post_bad_debt}},
  {suspended,  period_end,                       no_cancel_scheduled, to_suspended,        keep,
     {arm_period_end_timer}},
  {suspended,  period_end,                       cancel_scheduled,    canceled_requested,  clear,
     {cancel_lifecycle_timers, end_dunning_saga, mark_invoice_uncollectible, post_bad_debt}},
  {suspended,  cancel_immediately,               any,                 canceled_requested,  clear,
     {cancel_lifecycle_timers, end_dunning_saga, start_cancellation_saga}},

  // canceled: terminal, no rows.
};
// clang-format on

// -- table checks -------------------------------------------------------------

constexpr bool opposite(guard a, guard b) {
  return (a == no_cancel_scheduled && b == cancel_scheduled)
         || (a == paused_on_request && b == paused_at_trial_end)
         || (a == paused_on_request_no_cancel
             && b == paused_on_request_cancel_scheduled);
}

constexpr bool guards_overlap(guard a, guard b) {
  return !opposite(a, b) && !opposite(b, a);
}

/// At most one row can match any (state, trigger): the table is a function.
constexpr bool rows_are_disjoint() {
  for (std::size_t i = 0; i < std::size(table); ++i)
    for (std::size_t j = i + 1; j < std::size(table); ++j)
      if (table[i].from == table[j].from && table[i].on == table[j].on
          && guards_overlap(table[i].when, table[j].when))
        return false;
  return true;
}
static_assert(rows_are_disjoint(), "two lifecycle rows match the same input");

/// A canceled target must clear the flag; only live states may keep it.
constexpr bool targets_are_consistent() {
  for (const row& r : table) {
    const bool ends = r.to.status == canceled || r.to.status == incomplete;
    if (ends && r.flag != clear)
      return false;
  }
  return true;
}
static_assert(targets_are_consistent(), "a lifecycle row keeps a dead flag");

// -- evaluation ---------------------------------------------------------------

bool holds(guard g, const lifecycle_state& s) {
  switch (g) {
    case any: return true;
    case no_cancel_scheduled: return !s.cancel_at_period_end;
    case cancel_scheduled: return s.cancel_at_period_end;
    case paused_on_request: return s.pause == pause_reason::requested;
    case paused_at_trial_end: return s.pause == pause_reason::trial_ended;
    case paused_on_request_no_cancel:
      return s.pause == pause_reason::requested && !s.cancel_at_period_end;
    case paused_on_request_cancel_scheduled:
      return s.pause == pause_reason::requested && s.cancel_at_period_end;
  }
  return false;
}

bool starts_from(const row& r, const std::optional<lifecycle_state>& from) {
  if (!from)
    return !r.from.has_value();
  return r.from.has_value() && *r.from == from->status
         && holds(r.when, *from);
}

const row* find_row(const std::optional<lifecycle_state>& from, trigger t) {
  for (const row& r : table) {
    if (r.on == t && starts_from(r, from))
      return &r;
  }
  return nullptr;
}

bool next_flag(flag_op op, bool current) {
  switch (op) {
    case keep: return current;
    case set: return true;
    case clear: return false;
  }
  return current;
}

transition make_transition(const row& r,
                           const std::optional<lifecycle_state>& from) {
  const bool flag_before = from && from->cancel_at_period_end;
  lifecycle_state next{r.to.status, next_flag(r.flag, flag_before),
                       r.to.cancel, r.to.pause};
  return transition{from, next,
                    std::vector<effect>(r.effects.items.begin(),
                                        r.effects.items.begin()
                                          + static_cast<std::ptrdiff_t>(
                                            r.effects.size))};
}

} // namespace

// -- names --------------------------------------------------------------------

std::string_view to_string(sub_status s) noexcept {
  switch (s) {
    case incomplete: return "incomplete";
    case trialing: return "trialing";
    case active: return "active";
    case past_due: return "past_due";
    case suspended: return "suspended";
    case paused: return "paused";
    case canceled: return "canceled";
  }
  return "unknown_status";
}

std::string_view to_string(cancel_reason r) noexcept {
  switch (r) {
    case cancel_reason::none: return "none";
    case cancel_reason::incomplete_expired: return "incomplete_expired";
    case cancel_reason::nonpayment: return "nonpayment";
    case cancel_reason::requested: return "requested";
  }
  return "unknown_cancel_reason";
}

std::string_view to_string(pause_reason r) noexcept {
  switch (r) {
    case pause_reason::none: return "none";
    case pause_reason::requested: return "requested";
    case pause_reason::trial_ended: return "trial_ended";
  }
  return "unknown_pause_reason";
}

std::string_view to_string(trigger t) noexcept {
  switch (t) {
    case create_with_trial: return "create_with_trial";
    case create_without_trial: return "create_without_trial";
    case invoice_paid: return "invoice_paid";
    case trigger::incomplete_expired: return "incomplete_expired";
    case trial_end_with_payment_method: return "trial_end_with_payment_method";
    case trial_end_without_payment_method:
      return "trial_end_without_payment_method";
    case period_end: return "period_end";
    case invoice_payment_failed: return "invoice_payment_failed";
    case change_plan: return "change_plan";
    case trigger::pause: return "pause";
    case resume: return "resume";
    case dunning_suspend: return "dunning_suspend";
    case dunning_exhausted: return "dunning_exhausted";
    case cancel_immediately: return "cancel_immediately";
    case schedule_cancel_at_period_end: return "schedule_cancel_at_period_end";
    case unschedule_cancel_at_period_end:
      return "unschedule_cancel_at_period_end";
  }
  return "unknown_trigger";
}

std::string_view to_string(effect e) noexcept {
  switch (e) {
    case arm_trial_end_timer: return "arm_trial_end_timer";
    case arm_period_end_timer: return "arm_period_end_timer";
    case arm_incomplete_expiry_timer: return "arm_incomplete_expiry_timer";
    case cancel_lifecycle_timers: return "cancel_lifecycle_timers";
    case start_invoice_saga: return "start_invoice_saga";
    case void_open_invoice: return "void_open_invoice";
    case start_dunning_saga: return "start_dunning_saga";
    case end_dunning_saga: return "end_dunning_saga";
    case start_plan_change_saga: return "start_plan_change_saga";
    case start_suspension_saga: return "start_suspension_saga";
    case compensate_suspension: return "compensate_suspension";
    case mark_invoice_uncollectible: return "mark_invoice_uncollectible";
    case post_bad_debt: return "post_bad_debt";
    case start_cancellation_saga: return "start_cancellation_saga";
  }
  return "unknown_effect";
}

std::string to_string(const lifecycle_state& s) {
  std::string out{to_string(s.status)};
  if (s.cancel != cancel_reason::none)
    out.append("(").append(to_string(s.cancel)).append(")");
  if (s.pause != pause_reason::none)
    out.append("(").append(to_string(s.pause)).append(")");
  if (s.cancel_at_period_end)
    out.append("+cancel_at_period_end");
  return out;
}

// -- transitions --------------------------------------------------------------

bool is_consistent(const lifecycle_state& s) noexcept {
  const bool canceled_now = s.status == canceled;
  const bool paused_now = s.status == paused;
  if (canceled_now != (s.cancel != cancel_reason::none))
    return false;
  if (paused_now != (s.pause != pause_reason::none))
    return false;
  return !(s.cancel_at_period_end && (canceled_now || s.status == incomplete));
}

bool is_terminal(sub_status s) noexcept { return s == canceled; }

namespace {

result<transition> lookup(const std::optional<lifecycle_state>& from,
                          trigger t) {
  if (from && !is_consistent(*from))
    return make_error(errc::invalid_argument,
                      "inconsistent lifecycle state " + to_string(*from));
  if (const row* r = find_row(from, t))
    return make_transition(*r, from);
  const std::string state = from ? to_string(*from) : std::string{"new"};
  return make_error(errc::invalid_transition,
                    "no transition from " + state + " on "
                      + std::string{to_string(t)});
}

} // namespace

result<transition> apply(const lifecycle_state& from, trigger t) {
  return lookup(from, t);
}

result<transition> apply_new(trigger t) { return lookup(std::nullopt, t); }

} // namespace recur
