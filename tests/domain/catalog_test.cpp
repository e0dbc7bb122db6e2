#include "domain/catalog.hpp"

#include <cstdint>
#include <string>
#include <type_traits>
#include <unordered_set>
#include <vector>

#include <gtest/gtest.h>

#include "domain/ids.hpp"

using namespace recur;

namespace {

const currency usd = currency::of("USD");
const currency eur = currency::of("EUR");
const currency jpy = currency::of("JPY");

const plan_id pro{"pro"};

plan_version make_version(std::int32_t number, instant effective_at,
                          std::int64_t base_minor, currency cur = usd) {
  return plan_version{number,
                      effective_at,
                      cur,
                      billing_interval{interval_unit::month, 1},
                      0,
                      pricing::flat(base_minor),
                      {}};
}

// pro: v1 2024-01-01 at 1000, v2 2024-03-01 at 1500, v3 2024-07-01 at 2000.
price_book three_version_book() {
  price_book book{tenant_id{"acme"}};
  EXPECT_TRUE(book.add_plan(plan{pro, "Pro"}));
  EXPECT_TRUE(book.add_version(pro, make_version(1, utc(2024, 1, 1), 1000)));
  EXPECT_TRUE(book.add_version(pro, make_version(2, utc(2024, 3, 1), 1500)));
  EXPECT_TRUE(book.add_version(pro, make_version(3, utc(2024, 7, 1), 2000)));
  return book;
}

std::int32_t version_in_force(const price_book& book, instant t) {
  auto v = book.resolve(pro, t);
  EXPECT_TRUE(v.has_value()) << format_iso8601(t);
  return v ? (*v)->version : -1;
}

} // namespace

// -- ids ----------------------------------------------------------------------

TEST(ids, ids_of_different_kinds_do_not_convert_into_each_other) {
  static_assert(!std::is_convertible_v<plan_id, customer_id>);
  static_assert(!std::is_convertible_v<customer_id, tenant_id>);
  static_assert(!std::is_same_v<invoice_id, saga_id>);
  static_assert(!std::is_convertible_v<std::string, subscription_id>);
  EXPECT_EQ(plan_id{"a"}, plan_id{"a"});
  EXPECT_NE(plan_id{"a"}, plan_id{"b"});
}

TEST(ids, ids_order_and_hash_by_their_value) {
  EXPECT_LT(customer_id{"alice"}, customer_id{"bob"});
  EXPECT_GT(customer_id{"b"}, customer_id{"a"});
  std::unordered_set<payment_attempt_id> seen{{"pa_1"}, {"pa_2"}, {"pa_1"}};
  EXPECT_EQ(seen.size(), 2u);
  EXPECT_TRUE(seen.contains(payment_attempt_id{"pa_2"}));
  EXPECT_TRUE(tenant_id{}.empty());
  EXPECT_FALSE(tenant_id{"t"}.empty());
}

// -- metered usage ------------------------------------------------------------

TEST(metered, usage_within_the_allowance_is_free) {
  const metered_component api{"api_calls", 1000, pricing::per_unit(2)};
  EXPECT_EQ(*usage_charge(api, usd, 0), money::zero(usd));
  EXPECT_EQ(*usage_charge(api, usd, 999), money::zero(usd));
  EXPECT_EQ(*usage_charge(api, usd, 1000), money::zero(usd));
}

TEST(metered, per_unit_overage_prices_only_the_units_above_the_allowance) {
  const metered_component api{"api_calls", 1000, pricing::per_unit(2)};
  EXPECT_EQ(*usage_charge(api, usd, 1001), money(2, usd));
  EXPECT_EQ(*usage_charge(api, usd, 1500), money(1000, usd)); // 500 x 2
  const metered_component no_allowance{"gb", 0, pricing::per_unit(7)};
  EXPECT_EQ(*usage_charge(no_allowance, usd, 3), money(21, usd));
}

// included 50; overage tiers count overage units:
//   overage 1..100 at 10 each + fee 300, overage 101.. at 5 each + fee 500.
//   used 50  -> no overage                          = 0 (no fee either)
//   used 51  -> overage 1:   1x10 + 300             = 310
//   used 150 -> overage 100: 100x10 + 300           = 1300
//   used 151 -> overage 101: 1300 + 1x5 + 500       = 1805
TEST(metered, tiered_overage_counts_tiers_from_the_first_unit_over) {
  const metered_component seats{
    "seats", 50, pricing::tiered({{100, 10, 300}, {std::nullopt, 5, 500}})};
  EXPECT_EQ(*usage_charge(seats, usd, 50), money::zero(usd));
  EXPECT_EQ(*usage_charge(seats, usd, 51), money(310, usd));
  EXPECT_EQ(*usage_charge(seats, usd, 150), money(1300, usd));
  EXPECT_EQ(*usage_charge(seats, usd, 151), money(1805, usd));
}

// included 10; volume overage: 1..20 at 30, 21.. at 20 + fee 100.
//   used 30 -> overage 20: 20x30                    = 600
//   used 31 -> overage 21: 21x20 + 100              = 520
TEST(metered, volume_overage_prices_the_whole_overage_at_one_tier) {
  const metered_component sms{
    "sms", 10, pricing::volume({{20, 30, 0}, {std::nullopt, 20, 100}})};
  EXPECT_EQ(*usage_charge(sms, jpy, 30), money(600, jpy));
  EXPECT_EQ(*usage_charge(sms, jpy, 31), money(520, jpy));
}

TEST(metered, bad_usage_or_components_are_typed_errors) {
  const metered_component ok{"api_calls", 10, pricing::per_unit(2)};
  EXPECT_EQ(usage_charge(ok, usd, -1).code(), errc::invalid_argument);
  const metered_component negative_included{"api_calls", -1,
                                            pricing::per_unit(2)};
  EXPECT_EQ(usage_charge(negative_included, usd, 5).code(),
            errc::invalid_argument);
  const metered_component unnamed{"", 0, pricing::per_unit(2)};
  EXPECT_EQ(validate(unnamed).code(), errc::invalid_argument);
  const metered_component bad_price{"x", 0, pricing::per_unit(-2)};
  EXPECT_EQ(usage_charge(bad_price, usd, 5).code(), errc::negative_amount);
  const metered_component huge{"x", 0, pricing::per_unit(1'000'000)};
  EXPECT_EQ(usage_charge(huge, usd, INT64_MAX).code(), errc::amount_overflow);
}

// -- plan version validation --------------------------------------------------

TEST(plan_version, a_well_formed_version_validates) {
  auto v = make_version(1, utc(2024, 1, 1), 1000);
  v.trial_days = 730;
  v.interval = {interval_unit::year, 3};
  v.metered = {{"api_calls", 0, pricing::per_unit(1)},
               {"storage_gb", 5, pricing::per_unit(10)}};
  EXPECT_TRUE(validate(v));
}

TEST(plan_version, trial_days_must_be_between_0_and_730) {
  auto v = make_version(1, utc(2024, 1, 1), 1000);
  v.trial_days = -1;
  EXPECT_EQ(validate(v).code(), errc::invalid_argument);
  v.trial_days = 731;
  EXPECT_EQ(validate(v).code(), errc::invalid_argument);
  v.trial_days = 14;
  EXPECT_TRUE(validate(v));
}

TEST(plan_version, the_interval_runs_from_one_unit_to_three_years) {
  auto v = make_version(1, utc(2024, 1, 1), 1000);
  v.interval = {interval_unit::month, 0};
  EXPECT_EQ(validate(v).code(), errc::invalid_argument);
  v.interval = {interval_unit::week, -2};
  EXPECT_EQ(validate(v).code(), errc::invalid_argument);
  v.interval = {interval_unit::month, 37};
  EXPECT_EQ(validate(v).code(), errc::invalid_argument);
  v.interval = {interval_unit::month, 36};
  EXPECT_TRUE(validate(v));
  v.interval = {interval_unit::day, 1};
  EXPECT_TRUE(validate(v));
}

TEST(plan_version, meter_names_must_be_unique_and_non_empty) {
  auto v = make_version(1, utc(2024, 1, 1), 1000);
  v.metered = {{"api_calls", 0, pricing::per_unit(1)},
               {"api_calls", 0, pricing::per_unit(2)}};
  EXPECT_EQ(validate(v).code(), errc::invalid_argument);
  v.metered = {{"", 0, pricing::per_unit(1)}};
  EXPECT_EQ(validate(v).code(), errc::invalid_argument);
  v.metered = {{std::string(max_meter_name_length + 1, 'm'), 0,
                pricing::per_unit(1)}};
  EXPECT_EQ(validate(v).code(), errc::invalid_argument);
}

TEST(plan_version, a_bad_price_keeps_its_own_error_code) {
  auto v = make_version(1, utc(2024, 1, 1), 1000);
  v.base = pricing::tiered({});
  EXPECT_EQ(validate(v).code(), errc::invalid_price);
  v.base = pricing::flat(-5);
  EXPECT_EQ(validate(v).code(), errc::negative_amount);
  v.base = pricing::flat(5);
  v.metered = {{"api_calls", 0, pricing::volume({{3, 1, 0}})}};
  EXPECT_EQ(validate(v).code(), errc::invalid_price);
}

TEST(plan_version, meters_are_found_by_name) {
  auto v = make_version(1, utc(2024, 1, 1), 1000);
  v.metered = {{"api_calls", 100, pricing::per_unit(1)}};
  auto m = find_meter(v, "api_calls");
  ASSERT_TRUE(m);
  EXPECT_EQ((*m)->included_quantity, 100);
  EXPECT_EQ(find_meter(v, "storage").code(), errc::not_found);
}

// -- plans --------------------------------------------------------------------

TEST(plan, a_plan_without_versions_has_no_price) {
  plan p{pro, "Pro"};
  EXPECT_EQ(p.version_at(utc(2024, 1, 1)).code(), errc::no_price_version);
  EXPECT_EQ(p.version(1).code(), errc::not_found);
}

TEST(plan, versions_are_numbered_one_two_three) {
  plan p{pro, "Pro"};
  EXPECT_EQ(p.add_version(make_version(2, utc(2024, 1, 1), 1000)).code(),
            errc::invalid_argument);
  EXPECT_EQ(p.add_version(make_version(0, utc(2024, 1, 1), 1000)).code(),
            errc::invalid_argument);
  ASSERT_TRUE(p.add_version(make_version(1, utc(2024, 1, 1), 1000)));
  EXPECT_EQ(p.add_version(make_version(1, utc(2024, 2, 1), 1000)).code(),
            errc::invalid_argument);
  EXPECT_EQ(p.add_version(make_version(3, utc(2024, 2, 1), 1000)).code(),
            errc::invalid_argument);
  EXPECT_EQ(p.versions().size(), 1u);
  ASSERT_TRUE(p.add_version(make_version(2, utc(2024, 2, 1), 1100)));
  EXPECT_EQ((*p.version(2))->base, pricing::flat(1100));
  EXPECT_EQ(p.version(3).code(), errc::not_found);
  EXPECT_EQ(p.version(0).code(), errc::not_found);
}

TEST(plan, an_invalid_version_is_rejected_and_leaves_the_plan_unchanged) {
  plan p{pro, "Pro"};
  auto v = make_version(1, utc(2024, 1, 1), 1000);
  v.trial_days = 1000;
  EXPECT_EQ(p.add_version(v).code(), errc::invalid_argument);
  EXPECT_TRUE(p.versions().empty());
}

TEST(plan, a_plan_keeps_one_currency_across_its_versions) {
  plan p{pro, "Pro"};
  ASSERT_TRUE(p.add_version(make_version(1, utc(2024, 1, 1), 1000, eur)));
  EXPECT_EQ(p.add_version(make_version(2, utc(2024, 2, 1), 1000, usd)).code(),
            errc::currency_mismatch);
  EXPECT_EQ(p.versions().size(), 1u);
  EXPECT_EQ(p.versions().front().currency, eur);
}

TEST(plan, resolved_versions_stay_valid_as_versions_are_added) {
  plan p{pro, "Pro"};
  ASSERT_TRUE(p.add_version(make_version(1, utc(2000, 1, 1), 1000)));
  const plan_version* first = *p.version_at(utc(2000, 6, 1));
  for (std::int32_t n = 2; n <= 200; ++n)
    ASSERT_TRUE(p.add_version(make_version(n, utc(2000 + n, 1, 1), 1000 + n)));
  EXPECT_EQ(first, *p.version(1));
  EXPECT_EQ(first->base, pricing::flat(1000));
  EXPECT_EQ((*p.version_at(utc(2100, 1, 1)))->version, 100);
}

// -- price books --------------------------------------------------------------

TEST(price_book, a_default_price_book_resolves_nothing) {
  price_book book{tenant_id{"acme"}};
  EXPECT_EQ(book.tenant(), tenant_id{"acme"});
  EXPECT_TRUE(book.plans().empty());
  EXPECT_EQ(book.resolve(pro, utc(2024, 1, 1)).code(), errc::not_found);
  EXPECT_EQ(book.find(pro).code(), errc::not_found);
}

TEST(price_book, before_the_first_version_there_is_no_price) {
  const auto book = three_version_book();
  EXPECT_EQ(book.resolve(pro, utc(2023, 12, 31, 23, 59, 59)).code(),
            errc::no_price_version);
  EXPECT_EQ(book.resolve(pro, instant{0}).code(), errc::no_price_version);
}

TEST(price_book, a_version_takes_effect_exactly_at_its_effective_instant) {
  const auto book = three_version_book();
  EXPECT_EQ(version_in_force(book, utc(2024, 1, 1)), 1);
  EXPECT_EQ(version_in_force(book, utc(2024, 2, 29, 23, 59, 59)), 1);
  EXPECT_EQ(version_in_force(book, utc(2024, 3, 1)), 2);
  EXPECT_EQ(version_in_force(book, utc(2024, 6, 30, 23, 59, 59)), 2);
  EXPECT_EQ(version_in_force(book, utc(2024, 7, 1)), 3);
}

TEST(price_book, between_versions_the_earlier_one_is_in_force) {
  const auto book = three_version_book();
  EXPECT_EQ(version_in_force(book, utc(2024, 2, 15, 12)), 1);
  EXPECT_EQ(version_in_force(book, utc(2024, 5, 1)), 2);
  auto v = book.resolve(pro, utc(2024, 4, 10));
  ASSERT_TRUE(v);
  EXPECT_EQ((*v)->base, pricing::flat(1500));
}

TEST(price_book, the_latest_version_stays_in_force_into_the_far_future) {
  const auto book = three_version_book();
  EXPECT_EQ(version_in_force(book, utc(2100, 1, 1)), 3);
  EXPECT_EQ(version_in_force(book, utc(9999, 12, 31, 23, 59, 59)), 3);
}

TEST(price_book, a_version_not_after_the_last_is_rejected_and_changes_nothing) {
  auto book = three_version_book();
  // Same instant as v3, then earlier than v3.
  const auto same = make_version(4, utc(2024, 7, 1), 9999);
  const auto earlier = make_version(4, utc(2024, 5, 1), 9999);
  EXPECT_EQ(book.add_version(pro, same).code(), errc::invalid_argument);
  EXPECT_EQ(book.add_version(pro, earlier).code(), errc::invalid_argument);
  EXPECT_EQ((*book.find(pro))->versions().size(), 3u);
  EXPECT_EQ(version_in_force(book, utc(2024, 5, 1)), 2);
  EXPECT_EQ(version_in_force(book, utc(2030, 1, 1)), 3);
  EXPECT_EQ((*book.resolve(pro, utc(2030, 1, 1)))->base, pricing::flat(2000));
  // One second later than v3 is fine.
  EXPECT_TRUE(
    book.add_version(pro, make_version(4, utc(2024, 7, 1, 0, 0, 1), 2500)));
  EXPECT_EQ(version_in_force(book, utc(2030, 1, 1)), 4);
  EXPECT_EQ(version_in_force(book, utc(2024, 7, 1)), 3);
}

TEST(price_book, an_unknown_plan_is_not_found) {
  auto book = three_version_book();
  const plan_id basic{"basic"};
  EXPECT_EQ(book.resolve(basic, utc(2024, 5, 1)).code(), errc::not_found);
  EXPECT_EQ(book.add_version(basic, make_version(1, utc(2024, 1, 1), 1)).code(),
            errc::not_found);
  EXPECT_EQ(book.plans().size(), 1u);
}

TEST(price_book, plan_ids_are_unique_and_plans_need_an_id_and_a_name) {
  auto book = three_version_book();
  EXPECT_EQ(book.add_plan(plan{pro, "Pro again"}).code(),
            errc::invalid_argument);
  EXPECT_EQ((*book.find(pro))->name(), "Pro");
  EXPECT_EQ((*book.find(pro))->versions().size(), 3u);
  EXPECT_EQ(book.add_plan(plan{plan_id{}, "Nameless"}).code(),
            errc::invalid_argument);
  EXPECT_EQ(book.add_plan(plan{plan_id{"x"}, ""}).code(),
            errc::invalid_argument);
  EXPECT_EQ(book.plans().size(), 1u);
}

TEST(price_book, plans_in_one_book_may_use_different_currencies) {
  price_book book{tenant_id{"acme"}};
  plan yen{plan_id{"jp"}, "Japan"};
  ASSERT_TRUE(yen.add_version(make_version(1, utc(2024, 1, 1), 3000, jpy)));
  ASSERT_TRUE(book.add_plan(std::move(yen)));
  ASSERT_TRUE(book.add_plan(plan{plan_id{"eu"}, "Europe"}));
  ASSERT_TRUE(book.add_version(plan_id{"eu"},
                               make_version(1, utc(2024, 1, 1), 2500, eur)));
  auto jp = book.resolve(plan_id{"jp"}, utc(2024, 2, 1));
  auto eu = book.resolve(plan_id{"eu"}, utc(2024, 2, 1));
  ASSERT_TRUE(jp && eu);
  EXPECT_EQ((*jp)->currency, jpy);
  EXPECT_EQ((*eu)->currency, eur);
  EXPECT_EQ(*price_for_quantity((*jp)->base, (*jp)->currency, 1),
            money(3000, jpy));
}
