#include "workflows/dunning.hpp"

#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include <gtest/gtest.h>

using namespace recur;

namespace {

using A = dunning_action;
using actions = std::vector<A>;

const currency usd = currency::of("USD");
const currency eur = currency::of("EUR");
const currency jpy = currency::of("JPY");
const currency bhd = currency::of("BHD");

/// A valid ladder to break one rule at a time.
dunning_ladder small_ladder() {
  return dunning_ladder{
    {{0, {A::retry_payment}}, {5, {A::suspend}}, {9, {A::cancel_and_write_off}}},
    std::nullopt};
}

void expect_invalid(const dunning_ladder& ladder, std::string_view why) {
  auto st = validate(ladder);
  ASSERT_FALSE(st) << why;
  EXPECT_EQ(st.code(), errc::invalid_policy);
  EXPECT_NE(st.error().detail.find(why), std::string::npos)
    << st.error().detail;
}

} // namespace

// -- the default ladder -------------------------------------------------------

TEST(dunning, the_default_ladder_is_the_architecture_example) {
  const auto ladder = default_dunning_ladder(usd);
  EXPECT_TRUE(validate(ladder));
  ASSERT_EQ(ladder.steps.size(), 5u);
  EXPECT_EQ(ladder.steps[0].day_offset, 0);
  EXPECT_EQ(ladder.steps[0].actions,
            (actions{A::retry_payment, A::notify_email}));
  EXPECT_EQ(ladder.steps[1].day_offset, 3);
  EXPECT_EQ(ladder.steps[1].actions,
            (actions{A::retry_payment, A::notify_in_app}));
  EXPECT_EQ(ladder.steps[2].day_offset, 7);
  EXPECT_EQ(ladder.steps[2].actions, (actions{A::retry_payment, A::notify_sms}));
  EXPECT_EQ(ladder.steps[3].day_offset, 14);
  EXPECT_EQ(ladder.steps[3].actions, (actions{A::suspend}));
  EXPECT_EQ(ladder.steps[4].day_offset, 30);
  EXPECT_EQ(ladder.steps[4].actions, (actions{A::cancel_and_write_off}));
  ASSERT_TRUE(ladder.sms_min_amount.has_value());
  EXPECT_EQ(*ladder.sms_min_amount, money(10'000, usd)); // 100.00 USD
}

TEST(dunning, the_sms_threshold_is_one_hundred_major_units_of_the_currency) {
  EXPECT_EQ(*default_dunning_ladder(jpy).sms_min_amount, money(100, jpy));
  EXPECT_EQ(*default_dunning_ladder(bhd).sms_min_amount, money(100'000, bhd));
  EXPECT_TRUE(validate(default_dunning_ladder(jpy)));
}

// -- validation ---------------------------------------------------------------

TEST(dunning, a_ladder_needs_steps_within_the_limits) {
  EXPECT_TRUE(validate(small_ladder()));
  expect_invalid(dunning_ladder{}, "no steps");
  dunning_ladder many;
  for (std::int32_t d = 0; d < 33; ++d)
    many.steps.push_back({d, {A::notify_email}});
  expect_invalid(many, "more than 32 steps");
  many.steps.pop_back();
  EXPECT_TRUE(validate(many));
}

TEST(dunning, day_offsets_must_be_in_range_and_strictly_increasing) {
  auto l = small_ladder();
  l.steps[0].day_offset = -1;
  expect_invalid(l, "step 0: day_offset -1 is outside [0, 365]");
  l = small_ladder();
  l.steps[1].day_offset = 0;
  expect_invalid(l, "step 1: day_offset 0 is not after day 0");
  l = small_ladder();
  l.steps[2].day_offset = 4;
  expect_invalid(l, "step 2: day_offset 4 is not after day 5");
  l = small_ladder();
  l.steps[2].day_offset = 366;
  expect_invalid(l, "outside [0, 365]");
  l.steps[2].day_offset = 365;
  EXPECT_TRUE(validate(l));
}

TEST(dunning, every_step_has_actions_and_none_twice) {
  auto l = small_ladder();
  l.steps[0].actions.clear();
  expect_invalid(l, "step 0 has no actions");
  l = small_ladder();
  l.steps[0].actions = {A::notify_email, A::retry_payment, A::notify_email};
  expect_invalid(l, "step 0 lists notify_email twice");
}

TEST(dunning, cancel_and_write_off_comes_last_and_only_after_a_suspend) {
  auto l = small_ladder();
  l.steps.push_back({20, {A::notify_email}});
  expect_invalid(l, "cancel_and_write_off must be the last action");
  l = small_ladder();
  l.steps[2].actions = {A::cancel_and_write_off, A::notify_email};
  expect_invalid(l, "cancel_and_write_off must be the last action");
  l = small_ladder();
  l.steps[1].actions = {A::notify_email};
  expect_invalid(l, "cancel_and_write_off needs a suspend first");
  l = small_ladder();
  l.steps[0].actions = {A::retry_payment, A::suspend};
  expect_invalid(l, "step 1: suspend appears twice");
}

TEST(dunning, suspend_and_cancel_may_share_the_last_step_in_that_order) {
  dunning_ladder l{{{0, {A::retry_payment}},
                    {10, {A::suspend, A::cancel_and_write_off}}},
                   std::nullopt};
  EXPECT_TRUE(validate(l));
  l.steps[1].actions = {A::cancel_and_write_off, A::suspend};
  expect_invalid(l, "must be the last action");
}

TEST(dunning, a_ladder_may_stop_short_of_suspending_or_canceling) {
  EXPECT_TRUE(validate(dunning_ladder{
    {{0, {A::retry_payment, A::notify_email}}, {3, {A::retry_payment}}},
    std::nullopt}));
  EXPECT_TRUE(validate(dunning_ladder{
    {{0, {A::retry_payment}}, {14, {A::suspend}}}, std::nullopt}));
}

TEST(dunning, a_negative_sms_threshold_is_rejected) {
  auto l = small_ladder();
  l.sms_min_amount = money(-1, usd);
  expect_invalid(l, "sms_min_amount is negative");
  l.sms_min_amount = money(0, usd);
  EXPECT_TRUE(validate(l));
}

// -- the SMS rule -------------------------------------------------------------

TEST(dunning, sms_goes_to_invoices_at_or_above_the_threshold) {
  const auto ladder = default_dunning_ladder(usd);
  const actions with_sms{A::retry_payment, A::notify_sms};
  const actions without_sms{A::retry_payment};
  EXPECT_EQ(actions_for(ladder, 2, money(10'000, usd)), with_sms);  // at
  EXPECT_EQ(actions_for(ladder, 2, money(10'001, usd)), with_sms);  // above
  EXPECT_EQ(actions_for(ladder, 2, money(9'999, usd)), without_sms); // below
  EXPECT_EQ(actions_for(ladder, 2, money(0, usd)), without_sms);
}

TEST(dunning, sms_is_not_sent_for_an_invoice_in_another_currency) {
  const auto ladder = default_dunning_ladder(usd);
  EXPECT_EQ(actions_for(ladder, 2, money(100'000'000, eur)),
            (actions{A::retry_payment}));
}

TEST(dunning, without_a_threshold_every_invoice_gets_the_sms) {
  auto ladder = default_dunning_ladder(usd);
  ladder.sms_min_amount.reset();
  EXPECT_EQ(actions_for(ladder, 2, money(1, jpy)),
            (actions{A::retry_payment, A::notify_sms}));
}

TEST(dunning, steps_without_sms_are_returned_whole_in_order) {
  const auto ladder = default_dunning_ladder(usd);
  EXPECT_EQ(actions_for(ladder, 0, money(1, usd)),
            (actions{A::retry_payment, A::notify_email}));
  EXPECT_EQ(actions_for(ladder, 4, money(1, eur)),
            (actions{A::cancel_and_write_off}));
}

// -- scheduling ---------------------------------------------------------------

TEST(dunning, the_next_step_is_the_first_strictly_after_the_day) {
  const auto ladder = default_dunning_ladder(usd);
  EXPECT_EQ(next_step_after(ladder, -1), std::optional<std::size_t>{0});
  EXPECT_EQ(next_step_after(ladder, 0), std::optional<std::size_t>{1});
  EXPECT_EQ(next_step_after(ladder, 2), std::optional<std::size_t>{1});
  EXPECT_EQ(next_step_after(ladder, 3), std::optional<std::size_t>{2});
  EXPECT_EQ(next_step_after(ladder, 13), std::optional<std::size_t>{3});
  EXPECT_EQ(next_step_after(ladder, 29), std::optional<std::size_t>{4});
  EXPECT_EQ(next_step_after(ladder, 30), std::nullopt);
  EXPECT_EQ(next_step_after(ladder, 1000), std::nullopt);
}

TEST(dunning, steps_fall_due_whole_days_after_dunning_started) {
  const auto ladder = default_dunning_ladder(usd);
  const instant start = utc(2024, 2, 20, 9, 30, 15);
  EXPECT_EQ(step_due_at(ladder, 0, start), start);
  EXPECT_EQ(step_due_at(ladder, 2, start), utc(2024, 2, 27, 9, 30, 15));
  // across the leap day
  EXPECT_EQ(step_due_at(ladder, 3, start), utc(2024, 3, 5, 9, 30, 15));
  EXPECT_EQ(step_due_at(ladder, 4, start), utc(2024, 3, 21, 9, 30, 15));
}

TEST(dunning, action_names_are_stable_and_unique) {
  std::set<std::string_view> names;
  for (auto a : all_dunning_actions)
    names.insert(to_string(a));
  EXPECT_EQ(names.size(), 6u);
  EXPECT_EQ(to_string(A::notify_sms), "notify_sms");
  EXPECT_EQ(to_string(A::cancel_and_write_off), "cancel_and_write_off");
}
