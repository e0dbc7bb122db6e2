#include "domain/billing.hpp"

#include <gtest/gtest.h>

using namespace recur;

namespace {

const currency usd = currency::of("USD");
const billing_interval monthly{interval_unit::month, 1};

// $15.00 a seat per month; API calls: 1,000 included, then graduated overage
// of 2 cents each up to 10,000 overage calls and 1 cent after that.
plan_version team_plan() {
  return plan_version{
    1,
    utc(2024, 1, 1),
    usd,
    monthly,
    14,
    pricing::per_unit(1500),
    {metered_component{"api_calls", 1000,
                       pricing::tiered({{10'000, 2, 0}, {std::nullopt, 1, 0}})}}};
}

// $30.00 a seat per month.
plan_version pro_plan() {
  return plan_version{1,       utc(2024, 1, 1), usd, monthly, 0,
                      pricing::per_unit(3000), {}};
}

tax_table eu_taxes() {
  tax_table t;
  EXPECT_TRUE(t.set_rate("DE", 190'000));
  return t;
}

} // namespace

TEST(billing, a_renewal_invoice_bills_seats_in_advance_and_usage_in_arrears) {
  const plan_version v = team_plan();
  const billing_period march{utc(2024, 3, 1), utc(2024, 4, 1)};
  const billing_period february{utc(2024, 2, 1), utc(2024, 3, 1)};
  auto lines = period_lines({&v, 3, march, {{"api_calls", 12'500}}, february});
  ASSERT_TRUE(lines) << to_string(lines.code());
  ASSERT_EQ(lines->size(), 2u);
  // 3 seats x 1500 = 4500, for March.
  EXPECT_EQ((*lines)[0].kind, line_kind::subscription_fee);
  EXPECT_EQ((*lines)[0].amount, money(4500, usd));
  EXPECT_EQ((*lines)[0].period, march);
  // 12,500 - 1,000 included = 11,500 overage: 10,000 x 2 + 1,500 x 1 = 21,500.
  EXPECT_EQ((*lines)[1].kind, line_kind::usage);
  EXPECT_EQ((*lines)[1].amount, money(21'500, usd));
  EXPECT_EQ((*lines)[1].period, february);

  billing_terms terms{{"DE", false}, tax_mode::exclusive,
                      {{"10% off", percent_off{100'000}}}};
  auto inv = draft_invoice(usd, *lines, terms, eu_taxes());
  ASSERT_TRUE(inv) << to_string(inv.code());
  // Subtotal 26,000; 10% discount = 2,600 split 450 / 2,150.
  // Tax 19% per line: 4,050 x 0.19 = 769.5 -> 770 (tie to even);
  // 19,350 x 0.19 = 3,676.5 -> 3,676 (tie to even). Total 23,400 + 4,446.
  EXPECT_EQ(inv->subtotal, money(26'000, usd));
  EXPECT_EQ(inv->discount_total, money(2'600, usd));
  EXPECT_EQ(inv->tax_total, money(4'446, usd));
  EXPECT_EQ(inv->total, money(27'846, usd));
  EXPECT_EQ(inv->amount_due, money(27'846, usd));
}

TEST(billing, an_upgrade_mid_month_credits_unused_time_and_charges_the_rest) {
  const plan_version from = team_plan();
  const plan_version to = pro_plan();
  const billing_period march{utc(2024, 3, 1), utc(2024, 4, 1)};
  // 10 of March's 31 days used. Old fee 4,500: used share
  // R(4500 x 10/31) = R(1451.61) = 1452, credit = -(4500 - 1452) = -3048.
  // New fee 9,000: used share R(2903.23) = 2903, charge = 9000 - 2903 = 6097.
  auto lines = plan_change_lines({&from, 3, &to, 3, march, utc(2024, 3, 11)});
  ASSERT_TRUE(lines) << to_string(lines.code());
  ASSERT_EQ(lines->size(), 2u);
  EXPECT_EQ((*lines)[0].kind, line_kind::proration_credit);
  EXPECT_EQ((*lines)[0].amount, money(-3048, usd));
  EXPECT_EQ((*lines)[1].kind, line_kind::proration_charge);
  EXPECT_EQ((*lines)[1].amount, money(6097, usd));
  const billing_period rest{utc(2024, 3, 11), utc(2024, 4, 1)};
  EXPECT_EQ((*lines)[1].period, rest);

  billing_terms exempt{{"", true}, tax_mode::exclusive, {}};
  auto inv = draft_invoice(usd, *lines, exempt, tax_table{});
  ASSERT_TRUE(inv);
  EXPECT_EQ(inv->tax_total, money(0, usd));
  EXPECT_EQ(inv->total, money(3049, usd));
}

TEST(billing, a_downgrade_leaves_the_customer_a_credit) {
  const plan_version from = pro_plan();
  const plan_version to = team_plan();
  const billing_period march{utc(2024, 3, 1), utc(2024, 4, 1)};
  auto lines = plan_change_lines({&from, 3, &to, 3, march, utc(2024, 3, 11)});
  ASSERT_TRUE(lines);
  // Credit -(9000 - 2903) = -6097, charge 4500 - 1452 = 3048.
  auto inv = draft_invoice(usd, *lines, {{"", true}, tax_mode::exclusive, {}},
                           tax_table{});
  ASSERT_TRUE(inv);
  EXPECT_EQ(inv->total, money(-3049, usd));
  EXPECT_EQ(inv->amount_due, money(0, usd));
  EXPECT_EQ(inv->ending_credit, money(3049, usd));
}

TEST(billing, a_change_at_the_period_start_or_end_prorates_to_whole_or_nothing) {
  const plan_version from = team_plan();
  const plan_version to = pro_plan();
  const billing_period march{utc(2024, 3, 1), utc(2024, 4, 1)};
  auto at_start = plan_change_lines({&from, 1, &to, 1, march, march.start});
  ASSERT_TRUE(at_start);
  ASSERT_EQ(at_start->size(), 2u);
  EXPECT_EQ((*at_start)[0].amount, money(-1500, usd));
  EXPECT_EQ((*at_start)[1].amount, money(3000, usd));
  auto at_end = plan_change_lines({&from, 1, &to, 1, march, march.end});
  ASSERT_TRUE(at_end);
  EXPECT_TRUE(at_end->empty());
}

TEST(billing, bad_inputs_are_typed_errors) {
  const plan_version v = team_plan();
  const billing_period march{utc(2024, 3, 1), utc(2024, 4, 1)};
  EXPECT_EQ(period_lines({&v, 1, march, {{"storage_gb", 5}}, march}).code(),
            errc::not_found);
  EXPECT_EQ(period_lines({&v, -1, march, {}, {}}).code(), errc::invalid_argument);
  EXPECT_EQ(period_lines({&v, 1, march, {{"api_calls", -5}}, march}).code(),
            errc::invalid_argument);

  plan_version yearly = pro_plan();
  yearly.interval = {interval_unit::year, 1};
  EXPECT_EQ(plan_change_lines({&v, 1, &yearly, 1, march, utc(2024, 3, 5)}).code(),
            errc::invalid_argument);
  plan_version euro = pro_plan();
  euro.currency = currency::of("EUR");
  EXPECT_EQ(plan_change_lines({&v, 1, &euro, 1, march, utc(2024, 3, 5)}).code(),
            errc::currency_mismatch);
  EXPECT_EQ(plan_change_lines({&v, 1, &v, 1, march, utc(2024, 4, 5)}).code(),
            errc::invalid_period);

  auto lines = period_lines({&v, 1, march, {}, {}});
  ASSERT_TRUE(lines);
  EXPECT_EQ(draft_invoice(usd, *lines, {{"FR", false}, tax_mode::exclusive, {}},
                          eu_taxes())
              .code(),
            errc::not_found);
}
