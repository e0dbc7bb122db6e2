#include "workflows/lifecycle.hpp"

#include <optional>
#include <ostream>
#include <set>
#include <string>
#include <vector>

#include <gtest/gtest.h>

using namespace recur;

// Readable failure messages: names instead of numbers.
namespace recur {
void PrintTo(effect e, std::ostream* os) { *os << to_string(e); }
void PrintTo(const lifecycle_state& s, std::ostream* os) { *os << to_string(s); }
} // namespace recur

namespace {

using S = lifecycle_state;
using E = effect;

// -- states, written out by hand ----------------------------------------------

const S incomplete{sub_status::incomplete};
const S trialing{sub_status::trialing};
const S trialing_cape{sub_status::trialing, true}; // "cape": cancel at period end
const S active{sub_status::active};
const S active_cape{sub_status::active, true};
const S past_due{sub_status::past_due};
const S past_due_cape{sub_status::past_due, true};
const S suspended{sub_status::suspended};
const S suspended_cape{sub_status::suspended, true};
const S paused_req{sub_status::paused, false, cancel_reason::none,
                   pause_reason::requested};
const S paused_req_cape{sub_status::paused, true, cancel_reason::none,
                        pause_reason::requested};
const S paused_trial{sub_status::paused, false, cancel_reason::none,
                     pause_reason::trial_ended};
const S paused_trial_cape{sub_status::paused, true, cancel_reason::none,
                          pause_reason::trial_ended};
const S canceled_req{sub_status::canceled, false, cancel_reason::requested};
const S canceled_nonpay{sub_status::canceled, false, cancel_reason::nonpayment};
const S canceled_expired{sub_status::canceled, false,
                         cancel_reason::incomplete_expired};

// -- the expected lifecycle, one line per concrete (state, trigger) -----------

struct expected_row {
  std::optional<S> from; // nullopt: not created yet
  trigger on;
  S to;
  std::vector<E> effects;
};

const std::optional<S> none_yet = std::nullopt;

const std::vector<E> cancel_now{E::cancel_lifecycle_timers,
                                E::start_cancellation_saga};
const std::vector<E> cancel_in_dunning{E::cancel_lifecycle_timers,
                                       E::end_dunning_saga,
                                       E::start_cancellation_saga};
const std::vector<E> renew{E::start_invoice_saga, E::arm_period_end_timer};
const std::vector<E> write_off_at_period_end{
  E::cancel_lifecycle_timers, E::end_dunning_saga, E::mark_invoice_uncollectible,
  E::post_bad_debt};

const std::vector<expected_row>& expected_rows() {
  using T = trigger;
  static const std::vector<expected_row> rows = {
    {none_yet, T::create_with_trial, trialing, {E::arm_trial_end_timer}},
    {none_yet, T::create_without_trial, incomplete,
     {E::start_invoice_saga, E::arm_incomplete_expiry_timer}},

    {incomplete, T::invoice_paid, active,
     {E::cancel_lifecycle_timers, E::arm_period_end_timer}},
    {incomplete, T::incomplete_expired, canceled_expired, {E::void_open_invoice}},
    {incomplete, T::cancel_immediately, canceled_req,
     {E::cancel_lifecycle_timers, E::void_open_invoice,
      E::start_cancellation_saga}},

    {trialing, T::trial_end_with_payment_method, active, renew},
    {trialing, T::trial_end_without_payment_method, paused_trial, {}},
    {trialing_cape, T::trial_end_with_payment_method, canceled_req, {}},
    {trialing_cape, T::trial_end_without_payment_method, canceled_req, {}},
    {trialing, T::schedule_cancel_at_period_end, trialing_cape, {}},
    {trialing_cape, T::unschedule_cancel_at_period_end, trialing, {}},
    {trialing, T::cancel_immediately, canceled_req, cancel_now},
    {trialing_cape, T::cancel_immediately, canceled_req, cancel_now},

    {active, T::period_end, active, renew},
    {active_cape, T::period_end, canceled_req, {E::cancel_lifecycle_timers}},
    {active, T::invoice_payment_failed, past_due, {E::start_dunning_saga}},
    {active_cape, T::invoice_payment_failed, past_due_cape,
     {E::start_dunning_saga}},
    {active, T::change_plan, active, {E::start_plan_change_saga}},
    {active_cape, T::change_plan, active_cape, {E::start_plan_change_saga}},
    {active, T::pause, paused_req, {}},
    {active_cape, T::pause, paused_req_cape, {}},
    {active, T::schedule_cancel_at_period_end, active_cape, {}},
    {active_cape, T::unschedule_cancel_at_period_end, active, {}},
    {active, T::cancel_immediately, canceled_req, cancel_now},
    {active_cape, T::cancel_immediately, canceled_req, cancel_now},

    {paused_req, T::resume, active, {}},
    {paused_req_cape, T::resume, active_cape, {}},
    {paused_trial, T::resume, active, renew},
    {paused_trial_cape, T::resume, active_cape, renew},
    {paused_req, T::period_end, paused_req, {E::arm_period_end_timer}},
    {paused_req_cape, T::period_end, canceled_req, {E::cancel_lifecycle_timers}},
    {paused_req, T::cancel_immediately, canceled_req, cancel_now},
    {paused_req_cape, T::cancel_immediately, canceled_req, cancel_now},
    {paused_trial, T::cancel_immediately, canceled_req, cancel_now},
    {paused_trial_cape, T::cancel_immediately, canceled_req, cancel_now},

    {past_due, T::invoice_paid, active, {E::end_dunning_saga}},
    {past_due_cape, T::invoice_paid, active_cape, {E::end_dunning_saga}},
    {past_due, T::dunning_suspend, suspended, {E::start_suspension_saga}},
    {past_due_cape, T::dunning_suspend, suspended_cape,
     {E::start_suspension_saga}},
    {past_due, T::period_end, past_due, renew},
    {past_due_cape, T::period_end, canceled_req, write_off_at_period_end},
    {past_due, T::cancel_immediately, canceled_req, cancel_in_dunning},
    {past_due_cape, T::cancel_immediately, canceled_req, cancel_in_dunning},

    {suspended, T::invoice_paid, active,
     {E::compensate_suspension, E::end_dunning_saga}},
    {suspended_cape, T::invoice_paid, active_cape,
     {E::compensate_suspension, E::end_dunning_saga}},
    {suspended, T::dunning_exhausted, canceled_nonpay,
     {E::cancel_lifecycle_timers, E::mark_invoice_uncollectible,
      E::post_bad_debt}},
    {suspended_cape, T::dunning_exhausted, canceled_nonpay,
     {E::cancel_lifecycle_timers, E::mark_invoice_uncollectible,
      E::post_bad_debt}},
    {suspended, T::period_end, suspended, {E::arm_period_end_timer}},
    {suspended_cape, T::period_end, canceled_req, write_off_at_period_end},
    {suspended, T::cancel_immediately, canceled_req, cancel_in_dunning},
    {suspended_cape, T::cancel_immediately, canceled_req, cancel_in_dunning},
  };
  return rows;
}

const expected_row* expected_for(const std::optional<S>& from, trigger t) {
  for (const auto& r : expected_rows())
    if (r.from == from && r.on == t)
      return &r;
  return nullptr;
}

/// The consistency rules, restated independently of the implementation.
bool consistent(const S& s) {
  if ((s.status == sub_status::canceled) != (s.cancel != cancel_reason::none))
    return false;
  if ((s.status == sub_status::paused) != (s.pause != pause_reason::none))
    return false;
  if (s.cancel_at_period_end
      && (s.status == sub_status::canceled
          || s.status == sub_status::incomplete))
    return false;
  return true;
}

/// Every combination of status, flag and reasons, consistent or not.
std::vector<S> every_state() {
  std::vector<S> out;
  for (auto st : all_statuses)
    for (bool cape : {false, true})
      for (auto c : all_cancel_reasons)
        for (auto p : all_pause_reasons)
          out.push_back(S{st, cape, c, p});
  return out;
}

/// Applies a trigger that must succeed and returns the new state.
S step(const S& from, trigger t, std::vector<E> want_effects) {
  auto r = apply(from, t);
  EXPECT_TRUE(r.has_value()) << to_string(from) << " on " << to_string(t);
  if (!r)
    return from;
  EXPECT_EQ(r->effects, want_effects) << to_string(from) << " on "
                                      << to_string(t);
  return r->to;
}

void check_against_expectation(const std::optional<S>& from, trigger t) {
  SCOPED_TRACE(testing::Message()
               << (from ? to_string(*from) : std::string{"new"}) << " on "
               << to_string(t));
  const std::optional<S> before = from;
  auto got = from ? apply(*from, t) : apply_new(t);
  EXPECT_EQ(from, before); // the caller's state is untouched
  if (from && !consistent(*from)) {
    ASSERT_FALSE(got);
    EXPECT_EQ(got.code(), errc::invalid_argument);
    return;
  }
  const expected_row* want = expected_for(from, t);
  if (want == nullptr) {
    ASSERT_FALSE(got);
    EXPECT_EQ(got.code(), errc::invalid_transition);
    EXPECT_NE(got.error().detail.find(std::string{to_string(t)}),
              std::string::npos);
    const std::string name{from ? to_string(from->status) : "new"};
    EXPECT_NE(got.error().detail.find(name), std::string::npos);
    return;
  }
  ASSERT_TRUE(got);
  EXPECT_EQ(got->from, from);
  EXPECT_EQ(got->to, want->to) << "got " << to_string(got->to);
  EXPECT_EQ(got->effects, want->effects);
  EXPECT_TRUE(consistent(got->to));
}

} // namespace

// -- the whole table ----------------------------------------------------------

TEST(lifecycle, every_state_and_trigger_matches_the_expected_table) {
  const auto states = every_state();
  ASSERT_EQ(states.size(), 7u * 2 * 4 * 3);
  for (auto t : all_triggers) {
    check_against_expectation(std::nullopt, t);
    for (const S& s : states)
      check_against_expectation(s, t);
  }
}

TEST(lifecycle, every_expected_row_names_consistent_states) {
  // Guards against a typo in the expected table that the loop above would
  // silently treat as "invalid": every listed from-state must be consistent.
  for (const auto& r : expected_rows()) {
    if (r.from) {
      EXPECT_TRUE(consistent(*r.from)) << to_string(*r.from);
    }
    EXPECT_TRUE(consistent(r.to)) << to_string(r.to);
  }
  EXPECT_EQ(expected_rows().size(), 51u);
}

TEST(lifecycle, the_consistent_states_are_exactly_the_sixteen_expected) {
  std::size_t n = 0;
  for (const S& s : every_state()) {
    EXPECT_EQ(is_consistent(s), consistent(s)) << to_string(s);
    n += consistent(s) ? 1 : 0;
  }
  // incomplete 1, trialing/active/past_due/suspended 2 each, paused 2x2,
  // canceled 3.
  EXPECT_EQ(n, 16u);
}

TEST(lifecycle, a_canceled_subscription_rejects_every_trigger) {
  for (const S& s : {canceled_req, canceled_nonpay, canceled_expired})
    for (auto t : all_triggers) {
      auto r = apply(s, t);
      ASSERT_FALSE(r);
      EXPECT_EQ(r.code(), errc::invalid_transition);
    }
  for (auto st : all_statuses)
    EXPECT_EQ(is_terminal(st), st == sub_status::canceled);
}

TEST(lifecycle, a_new_subscription_accepts_only_the_create_triggers) {
  for (auto t : all_triggers) {
    const bool create = t == trigger::create_with_trial
                        || t == trigger::create_without_trial;
    EXPECT_EQ(apply_new(t).has_value(), create) << to_string(t);
  }
  auto r = apply_new(trigger::period_end);
  EXPECT_EQ(r.error().detail, "no transition from new on period_end");
}

TEST(lifecycle, a_rejection_names_the_state_and_the_trigger) {
  auto r = apply(paused_trial, trigger::pause);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.code(), errc::invalid_transition);
  EXPECT_EQ(r.error().detail, "no transition from paused(trial_ended) on pause");
  auto again = apply(active_cape, trigger::schedule_cancel_at_period_end);
  EXPECT_EQ(again.error().detail,
            "no transition from active+cancel_at_period_end on "
            "schedule_cancel_at_period_end");
}

TEST(lifecycle, an_inconsistent_state_is_invalid_argument_not_a_transition) {
  const S active_with_reason{sub_status::active, false,
                             cancel_reason::nonpayment};
  EXPECT_EQ(apply(active_with_reason, trigger::period_end).code(),
            errc::invalid_argument);
  const S paused_without_reason{sub_status::paused};
  EXPECT_EQ(apply(paused_without_reason, trigger::resume).code(),
            errc::invalid_argument);
}

// -- scenarios ----------------------------------------------------------------

TEST(lifecycle, a_trial_becomes_active_and_renews_every_period) {
  auto created = apply_new(trigger::create_with_trial);
  ASSERT_TRUE(created);
  EXPECT_FALSE(created->from.has_value());
  S s = created->to;
  EXPECT_EQ(s, trialing);
  s = step(s, trigger::trial_end_with_payment_method,
           {E::start_invoice_saga, E::arm_period_end_timer});
  EXPECT_EQ(s.status, sub_status::active);
  for (int period = 0; period < 12; ++period)
    s = step(s, trigger::period_end,
             {E::start_invoice_saga, E::arm_period_end_timer});
  EXPECT_EQ(s, active);
}

TEST(lifecycle, a_failed_payment_escalates_and_a_late_payment_restores) {
  S s = step(active, trigger::invoice_payment_failed, {E::start_dunning_saga});
  EXPECT_EQ(s.status, sub_status::past_due);
  s = step(s, trigger::period_end, renew); // past_due keeps invoicing
  EXPECT_EQ(s, past_due);
  s = step(s, trigger::dunning_suspend, {E::start_suspension_saga});
  EXPECT_EQ(s.status, sub_status::suspended);
  s = step(s, trigger::invoice_paid,
           {E::compensate_suspension, E::end_dunning_saga});
  EXPECT_EQ(s, active);
}

TEST(lifecycle, exhausted_dunning_cancels_for_nonpayment_and_writes_off) {
  S s = step(active, trigger::invoice_payment_failed, {E::start_dunning_saga});
  s = step(s, trigger::dunning_suspend, {E::start_suspension_saga});
  s = step(s, trigger::dunning_exhausted,
           {E::cancel_lifecycle_timers, E::mark_invoice_uncollectible,
            E::post_bad_debt});
  EXPECT_EQ(s, canceled_nonpay);
  EXPECT_TRUE(is_terminal(s.status));
  EXPECT_EQ(apply(s, trigger::invoice_paid).code(), errc::invalid_transition);
}

TEST(lifecycle, dunning_cannot_cancel_before_it_has_suspended) {
  EXPECT_EQ(apply(past_due, trigger::dunning_exhausted).code(),
            errc::invalid_transition);
}

TEST(lifecycle, an_unpaid_first_invoice_expires_the_subscription) {
  auto created = apply_new(trigger::create_without_trial);
  ASSERT_TRUE(created);
  EXPECT_EQ(created->effects,
            (std::vector<E>{E::start_invoice_saga,
                            E::arm_incomplete_expiry_timer}));
  EXPECT_EQ(incomplete_expiry_s, 82'800); // 23 h
  S s = step(created->to, trigger::incomplete_expired, {E::void_open_invoice});
  EXPECT_EQ(s, canceled_expired);
}

TEST(lifecycle, a_paid_first_invoice_activates_and_stops_the_expiry_timer) {
  S s = step(incomplete, trigger::invoice_paid,
             {E::cancel_lifecycle_timers, E::arm_period_end_timer});
  EXPECT_EQ(s, active);
  EXPECT_EQ(apply(s, trigger::incomplete_expired).code(),
            errc::invalid_transition);
}

TEST(lifecycle, cancel_at_period_end_ends_the_subscription_at_renewal) {
  S s = step(active, trigger::schedule_cancel_at_period_end, {});
  EXPECT_TRUE(s.cancel_at_period_end);
  EXPECT_EQ(apply(s, trigger::schedule_cancel_at_period_end).code(),
            errc::invalid_transition);
  s = step(s, trigger::period_end, {E::cancel_lifecycle_timers});
  EXPECT_EQ(s, canceled_req);
  EXPECT_FALSE(s.cancel_at_period_end);
}

TEST(lifecycle, an_unscheduled_cancel_renews_as_usual) {
  S s = step(active, trigger::schedule_cancel_at_period_end, {});
  s = step(s, trigger::unschedule_cancel_at_period_end, {});
  EXPECT_EQ(apply(s, trigger::unschedule_cancel_at_period_end).code(),
            errc::invalid_transition);
  s = step(s, trigger::period_end, renew);
  EXPECT_EQ(s, active);
}

TEST(lifecycle, a_cancel_scheduled_in_the_trial_takes_effect_at_trial_end) {
  S s = step(trialing, trigger::schedule_cancel_at_period_end, {});
  s = step(s, trigger::trial_end_with_payment_method, {});
  EXPECT_EQ(s, canceled_req);
}

TEST(lifecycle, a_scheduled_cancel_survives_a_failed_payment) {
  S s = step(active_cape, trigger::invoice_payment_failed,
             {E::start_dunning_saga});
  s = step(s, trigger::invoice_paid, {E::end_dunning_saga});
  EXPECT_EQ(s, active_cape);
  s = step(s, trigger::period_end, {E::cancel_lifecycle_timers});
  EXPECT_EQ(s, canceled_req);
}

TEST(lifecycle, pause_and_resume_clear_the_pause_reason) {
  S s = step(active, trigger::pause, {});
  EXPECT_EQ(s, paused_req);
  EXPECT_EQ(apply(s, trigger::pause).code(), errc::invalid_transition);
  s = step(s, trigger::period_end, {E::arm_period_end_timer}); // no invoice
  EXPECT_EQ(s, paused_req);
  s = step(s, trigger::resume, {});
  EXPECT_EQ(s, active);
  EXPECT_EQ(s.pause, pause_reason::none);
}

TEST(lifecycle, a_trial_without_a_card_pauses_and_resume_restarts_billing) {
  S s = step(trialing, trigger::trial_end_without_payment_method, {});
  EXPECT_EQ(s, paused_trial);
  s = step(s, trigger::resume, renew);
  EXPECT_EQ(s, active);
}

TEST(lifecycle, an_immediate_cancel_from_dunning_ends_the_dunning_saga) {
  S s = step(suspended, trigger::cancel_immediately, cancel_in_dunning);
  EXPECT_EQ(s, canceled_req);
  EXPECT_EQ(apply(s, trigger::cancel_immediately).code(),
            errc::invalid_transition);
}

// -- names --------------------------------------------------------------------

TEST(lifecycle, every_name_is_stable_snake_case_and_unique) {
  auto check_unique = [](const auto& values) {
    std::set<std::string> seen;
    for (auto v : values) {
      const std::string name{to_string(v)};
      EXPECT_FALSE(name.empty());
      EXPECT_EQ(name.find_first_not_of("abcdefghijklmnopqrstuvwxyz_"),
                std::string::npos)
        << name;
      EXPECT_TRUE(seen.insert(name).second) << name;
    }
    return seen.size();
  };
  EXPECT_EQ(check_unique(all_statuses), 7u);
  EXPECT_EQ(check_unique(all_cancel_reasons), 4u);
  EXPECT_EQ(check_unique(all_pause_reasons), 3u);
  EXPECT_EQ(check_unique(all_triggers), 16u);
  EXPECT_EQ(check_unique(all_effects), 14u);
  EXPECT_EQ(to_string(sub_status::past_due), "past_due");
  EXPECT_EQ(to_string(cancel_reason::incomplete_expired), "incomplete_expired");
  EXPECT_EQ(to_string(pause_reason::trial_ended), "trial_ended");
  EXPECT_EQ(to_string(trigger::unschedule_cancel_at_period_end),
            "unschedule_cancel_at_period_end");
  EXPECT_EQ(to_string(effect::mark_invoice_uncollectible),
            "mark_invoice_uncollectible");
  EXPECT_EQ(to_string(canceled_nonpay), "canceled(nonpayment)");
  EXPECT_EQ(to_string(paused_req_cape), "paused(requested)+cancel_at_period_end");
}
