#include "domain/invoice.hpp"

#include <cstdint>
#include <limits>
#include <vector>

#include <gtest/gtest.h>

#include "domain/arith.hpp"
#include "domain/clock.hpp"

using namespace recur;

namespace {

const currency usd = currency::of("USD");
const currency eur = currency::of("EUR");
const currency jpy = currency::of("JPY");
const currency bhd = currency::of("BHD");

constexpr std::int64_t i64_max = std::numeric_limits<std::int64_t>::max();

invoice_line_input line(line_kind kind, std::int64_t amount_minor,
                        currency cur = usd, bool taxable = true) {
  return invoice_line_input{kind, std::string{to_string(kind)}, 1,
                            money{amount_minor, cur}, std::nullopt, taxable};
}

invoice_discount pct(std::int64_t off_ppm) {
  return invoice_discount{"coupon", percent_off{off_ppm}};
}

invoice_discount off(std::int64_t minor, currency cur = usd) {
  return invoice_discount{"voucher", amount_off{money{minor, cur}}};
}

// The realistic invoice of the hand-computed tests below (USD cents).
std::vector<invoice_line_input> realistic_lines() {
  const billing_period march{utc(2024, 3, 1), utc(2024, 4, 1)};
  return {
    {line_kind::subscription_fee, "Pro plan", 1, money{4900, usd}, march, true},
    {line_kind::usage, "API calls", 12345, money{1234, usd}, march, true},
    {line_kind::usage, "Storage GB", 7, money{333, usd}, march, true},
    {line_kind::proration_credit, "Unused Basic", 1, money{-1613, usd},
     billing_period{utc(2024, 3, 15), utc(2024, 4, 1)}, true},
    {line_kind::proration_charge, "Remaining Pro", 1, money{2419, usd},
     billing_period{utc(2024, 3, 15), utc(2024, 4, 1)}, true},
  };
}

std::vector<std::int64_t> minor(const computed_invoice& inv,
                                money invoice_line::*field) {
  std::vector<std::int64_t> out;
  for (const auto& l : inv.lines)
    out.push_back((l.*field).amount_minor());
  return out;
}

using v = std::vector<std::int64_t>;

} // namespace

// The realistic invoice, shared arithmetic:
//   subtotal            = 4900 + 1234 + 333 - 1613 + 2419 = 7273
//   discountable base   = 4900 + 1234 + 333 + 2419 = 8886 (credit excluded)
//   10% discount        = 888.6 -> 889
//   cumulative shares   = round(889 * cum / 8886) with cum = 4900, 6134, 6467, 8886
//                       = round(490.22), round(613.68), round(646.99), 889
//                       = 490, 614, 647, 889
//   per-line discount   = 490, 124, 33, (credit 0), 242   (sums to 889)
//   discounted amounts  = 4410, 1110, 300, -1613, 2177    (sum 6384)
TEST(invoice, a_realistic_invoice_with_a_discount_and_exclusive_tax) {
  invoice_input in{usd, realistic_lines(), {pct(100'000)}, tax_mode::exclusive,
                   190'000, false};
  auto inv = compute_invoice(in);
  ASSERT_TRUE(inv);
  // 19% of each discounted amount, half-even once per line:
  //   4410 -> 837.9 -> 838; 1110 -> 210.9 -> 211; 300 -> 57;
  //   -1613 -> -306.47 -> -306; 2177 -> 413.63 -> 414.   Sum 1214.
  EXPECT_EQ(minor(*inv, &invoice_line::discount), (v{490, 124, 33, 0, 242, 0}));
  EXPECT_EQ(minor(*inv, &invoice_line::net),
            (v{4410, 1110, 300, -1613, 2177, 0}));
  EXPECT_EQ(minor(*inv, &invoice_line::tax), (v{838, 211, 57, -306, 414, 0}));
  EXPECT_EQ(minor(*inv, &invoice_line::gross),
            (v{5248, 1321, 357, -1919, 2591, 0}));
  EXPECT_EQ(inv->subtotal, money(7273, usd));
  EXPECT_EQ(inv->discount_total, money(889, usd));
  EXPECT_EQ(inv->net_total, money(6384, usd));
  EXPECT_EQ(inv->tax_total, money(1214, usd));
  EXPECT_EQ(inv->total, money(7598, usd)); // 6384 + 1214
  EXPECT_EQ(inv->amount_due, money(7598, usd));
  EXPECT_EQ(inv->ending_credit, money(0, usd));
  const invoice_line& d = inv->lines.back();
  EXPECT_EQ(d.kind, line_kind::discount);
  EXPECT_EQ(d.amount, money(-889, usd));
  EXPECT_EQ(d.description, "coupon");
  // Input data rides through unchanged.
  EXPECT_EQ(inv->lines[1].quantity, 12345);
  EXPECT_EQ(inv->lines[1].description, "API calls");
  EXPECT_EQ(inv->lines[3].amount, money(-1613, usd));
  ASSERT_TRUE(inv->lines[3].period.has_value());
  EXPECT_EQ(inv->lines[3].period->start, utc(2024, 3, 15));
}

TEST(invoice, the_same_invoice_with_inclusive_tax) {
  invoice_input in{usd, realistic_lines(), {pct(100'000)}, tax_mode::inclusive,
                   190'000, false};
  auto inv = compute_invoice(in);
  ASSERT_TRUE(inv);
  // The discounted amounts are now gross; net = round(gross / 1.19):
  //   4410 / 1.19 = 3705.88 -> 3706 (tax 704)
  //   1110 / 1.19 =  932.77 ->  933 (tax 177)
  //    300 / 1.19 =  252.10 ->  252 (tax  48)
  //  -1613 / 1.19 = -1355.46 -> -1355 (tax -258)
  //   2177 / 1.19 = 1829.41 -> 1829 (tax 348)
  // tax 704 + 177 + 48 - 258 + 348 = 1019; net 6384 - 1019 = 5365.
  EXPECT_EQ(minor(*inv, &invoice_line::discount), (v{490, 124, 33, 0, 242, 0}));
  EXPECT_EQ(minor(*inv, &invoice_line::gross),
            (v{4410, 1110, 300, -1613, 2177, 0}));
  EXPECT_EQ(minor(*inv, &invoice_line::net), (v{3706, 933, 252, -1355, 1829, 0}));
  EXPECT_EQ(minor(*inv, &invoice_line::tax), (v{704, 177, 48, -258, 348, 0}));
  EXPECT_EQ(inv->subtotal, money(7273, usd));
  EXPECT_EQ(inv->discount_total, money(889, usd));
  EXPECT_EQ(inv->tax_total, money(1019, usd));
  EXPECT_EQ(inv->net_total, money(5365, usd));
  EXPECT_EQ(inv->total, money(6384, usd)); // 7273 - 889
  EXPECT_EQ(inv->amount_due, money(6384, usd));
}

TEST(invoice, an_exempt_customer_pays_no_tax_on_any_line) {
  for (tax_mode mode : {tax_mode::exclusive, tax_mode::inclusive}) {
    invoice_input in{usd, realistic_lines(), {pct(100'000)}, mode, 190'000, true};
    auto inv = compute_invoice(in);
    ASSERT_TRUE(inv);
    EXPECT_EQ(minor(*inv, &invoice_line::tax), (v{0, 0, 0, 0, 0, 0}));
    EXPECT_EQ(minor(*inv, &invoice_line::net),
              (v{4410, 1110, 300, -1613, 2177, 0}));
    EXPECT_EQ(inv->tax_total, money(0, usd));
    EXPECT_EQ(inv->total, money(6384, usd));
  }
}

TEST(invoice, a_line_marked_not_taxable_carries_no_tax) {
  invoice_input in{usd,
                   {line(line_kind::subscription_fee, 1000),
                    line(line_kind::usage, 500, usd, false)},
                   {},
                   tax_mode::exclusive,
                   200'000,
                   false};
  auto inv = compute_invoice(in);
  ASSERT_TRUE(inv);
  EXPECT_EQ(minor(*inv, &invoice_line::tax), (v{200, 0}));
  EXPECT_EQ(inv->total, money(1700, usd));
}

TEST(invoice, an_amount_off_larger_than_the_discountable_amount_is_capped) {
  // Discountable: 1000 + 500 = 1500, so a 5000 voucher takes off 1500.
  invoice_input in{usd,
                   {line(line_kind::subscription_fee, 1000),
                    line(line_kind::usage, 500)},
                   {off(5000)},
                   tax_mode::exclusive,
                   200'000,
                   false};
  auto inv = compute_invoice(in);
  ASSERT_TRUE(inv);
  EXPECT_EQ(inv->discount_total, money(1500, usd));
  EXPECT_EQ(inv->lines.back().amount, money(-1500, usd));
  EXPECT_EQ(minor(*inv, &invoice_line::net), (v{0, 0, 0}));
  EXPECT_EQ(inv->total, money(0, usd));
  EXPECT_EQ(inv->amount_due, money(0, usd));
  EXPECT_EQ(inv->ending_credit, money(0, usd));
}

TEST(invoice, a_discount_never_eats_into_credits) {
  // Fee 1000, credit -300, voucher 5000: only the fee is discountable, so the
  // discount is 1000 and the credit (with its -20% tax = -60) is left over.
  invoice_input in{usd,
                   {line(line_kind::subscription_fee, 1000),
                    line(line_kind::proration_credit, -300)},
                   {off(5000)},
                   tax_mode::exclusive,
                   200'000,
                   false};
  auto inv = compute_invoice(in);
  ASSERT_TRUE(inv);
  EXPECT_EQ(inv->discount_total, money(1000, usd));
  EXPECT_EQ(minor(*inv, &invoice_line::discount), (v{1000, 0, 0}));
  EXPECT_EQ(inv->total, money(-360, usd));
  EXPECT_EQ(inv->amount_due, money(0, usd));
  EXPECT_EQ(inv->ending_credit, money(360, usd));
}

TEST(invoice, a_negative_fee_line_is_not_discounted) {
  // A manual negative fee is not a positive discountable line.
  invoice_input in{usd,
                   {line(line_kind::subscription_fee, 1000),
                    line(line_kind::subscription_fee, -200)},
                   {pct(500'000)},
                   tax_mode::exclusive,
                   0,
                   false};
  auto inv = compute_invoice(in);
  ASSERT_TRUE(inv);
  EXPECT_EQ(minor(*inv, &invoice_line::discount), (v{500, 0, 0}));
  EXPECT_EQ(inv->total, money(300, usd));
}

TEST(invoice, a_credit_only_invoice_leaves_a_credit_and_nothing_due) {
  // -2500 @ 20% exclusive: tax -500, gross -3000.
  invoice_input in{usd, {line(line_kind::proration_credit, -2500)}, {pct(100'000)},
                   tax_mode::exclusive, 200'000, false};
  auto inv = compute_invoice(in);
  ASSERT_TRUE(inv);
  EXPECT_EQ(inv->discount_total, money(0, usd));
  EXPECT_EQ(inv->tax_total, money(-500, usd));
  EXPECT_EQ(inv->total, money(-3000, usd));
  EXPECT_EQ(inv->amount_due, money(0, usd));
  EXPECT_EQ(inv->ending_credit, money(3000, usd));
}

TEST(invoice, several_discounts_apply_in_order_to_what_is_left) {
  // 10% of 1000 = 100, then 150 off the remaining 900, then 50% of 750 = 375.
  invoice_input in{usd, {line(line_kind::subscription_fee, 1000)},
                   {pct(100'000), off(150), pct(500'000)}, tax_mode::exclusive, 0,
                   false};
  auto inv = compute_invoice(in);
  ASSERT_TRUE(inv);
  EXPECT_EQ(minor(*inv, &invoice_line::amount), (v{1000, -100, -150, -375}));
  EXPECT_EQ(inv->discount_total, money(625, usd));
  EXPECT_EQ(inv->total, money(375, usd));
}

TEST(invoice, allocation_ties_round_half_even_and_the_shares_sum_exactly) {
  // Lines 3 and 3, 3 off: cumulative 3*3/6 = 1.5 -> 2, then 3.
  // Shares 2 and 1.
  invoice_input in{usd,
                   {line(line_kind::usage, 3), line(line_kind::usage, 3)},
                   {off(3)},
                   tax_mode::exclusive,
                   0,
                   false};
  auto inv = compute_invoice(in);
  ASSERT_TRUE(inv);
  EXPECT_EQ(minor(*inv, &invoice_line::discount), (v{2, 1, 0}));
  // Three lines of 1, 1 off: cumulative 1/3 -> 0, 2/3 -> 1, 1 -> 1.
  invoice_input thirds{usd,
                       {line(line_kind::usage, 1), line(line_kind::usage, 1),
                        line(line_kind::usage, 1)},
                       {off(1)},
                       tax_mode::exclusive,
                       0,
                       false};
  auto inv3 = compute_invoice(thirds);
  ASSERT_TRUE(inv3);
  EXPECT_EQ(minor(*inv3, &invoice_line::discount), (v{0, 1, 0, 0}));
}

TEST(invoice, an_empty_invoice_has_zero_totals) {
  auto inv = compute_invoice(invoice_input{jpy, {}, {}, tax_mode::exclusive,
                                           100'000, false});
  ASSERT_TRUE(inv);
  EXPECT_TRUE(inv->lines.empty());
  for (const money& m : {inv->subtotal, inv->discount_total, inv->net_total,
                         inv->tax_total, inv->total, inv->amount_due,
                         inv->ending_credit})
    EXPECT_EQ(m, money(0, jpy));
}

TEST(invoice, a_line_or_voucher_in_another_currency_is_a_mismatch) {
  invoice_input mixed{usd,
                      {line(line_kind::subscription_fee, 1000),
                       line(line_kind::usage, 10, eur)},
                      {},
                      tax_mode::exclusive,
                      0,
                      false};
  EXPECT_EQ(compute_invoice(mixed).code(), errc::currency_mismatch);
  invoice_input voucher{usd, {line(line_kind::subscription_fee, 1000)},
                        {off(100, eur)}, tax_mode::exclusive, 0, false};
  EXPECT_EQ(compute_invoice(voucher).code(), errc::currency_mismatch);
}

TEST(invoice, malformed_input_is_rejected_with_a_typed_error) {
  auto with_line = [](invoice_line_input l) {
    return compute_invoice(
      invoice_input{usd, {std::move(l)}, {}, tax_mode::exclusive, 0, false});
  };
  EXPECT_EQ(with_line(line(line_kind::discount, -5)).code(), errc::invalid_argument);
  EXPECT_EQ(with_line(line(line_kind::proration_credit, 5)).code(),
            errc::invalid_argument);
  auto negative_qty = line(line_kind::usage, 5);
  negative_qty.quantity = -1;
  EXPECT_EQ(with_line(negative_qty).code(), errc::invalid_argument);
  auto backwards = line(line_kind::usage, 5);
  backwards.period = billing_period{utc(2024, 2, 1), utc(2024, 1, 1)};
  EXPECT_EQ(with_line(backwards).code(), errc::invalid_period);

  auto with = [](std::vector<invoice_discount> ds, std::int64_t rate_ppm) {
    return compute_invoice(invoice_input{usd,
                                         {line(line_kind::usage, 5)},
                                         std::move(ds),
                                         tax_mode::exclusive,
                                         rate_ppm,
                                         false});
  };
  EXPECT_EQ(with({}, -1).code(), errc::invalid_argument);
  EXPECT_EQ(with({}, 1'000'001).code(), errc::invalid_argument);
  EXPECT_EQ(with({pct(1'000'001)}, 0).code(), errc::invalid_argument);
  EXPECT_EQ(with({pct(-1)}, 0).code(), errc::invalid_argument);
  EXPECT_EQ(with({off(-1)}, 0).code(), errc::negative_amount);
  EXPECT_EQ(with(std::vector<invoice_discount>(invoice_discounts_max + 1, pct(1)), 0)
              .code(),
            errc::invalid_argument);
  EXPECT_TRUE(with(std::vector<invoice_discount>(invoice_discounts_max, pct(1)), 0));
}

TEST(invoice, sums_that_leave_int64_are_an_overflow) {
  invoice_input two_huge{usd,
                         {line(line_kind::usage, i64_max),
                          line(line_kind::usage, 1)},
                         {},
                         tax_mode::exclusive,
                         0,
                         false};
  EXPECT_EQ(compute_invoice(two_huge).code(), errc::amount_overflow);
  invoice_input taxed{usd, {line(line_kind::usage, i64_max)}, {},
                      tax_mode::exclusive, 1, false};
  EXPECT_EQ(compute_invoice(taxed).code(), errc::amount_overflow);
  // The subtotal i64_max - 1 + 1 fits, the discountable i64_max + 1 does not.
  invoice_input discount_base{usd,
                              {line(line_kind::usage, i64_max),
                               line(line_kind::proration_credit, -1),
                               line(line_kind::usage, 1)},
                              {pct(1)},
                              tax_mode::exclusive,
                              0,
                              false};
  EXPECT_EQ(compute_invoice(discount_base).code(), errc::amount_overflow);
}

TEST(invoice, line_kinds_have_stable_names) {
  EXPECT_EQ(to_string(line_kind::subscription_fee), "subscription_fee");
  EXPECT_EQ(to_string(line_kind::usage), "usage");
  EXPECT_EQ(to_string(line_kind::proration_credit), "proration_credit");
  EXPECT_EQ(to_string(line_kind::proration_charge), "proration_charge");
  EXPECT_EQ(to_string(line_kind::discount), "discount");
  EXPECT_TRUE(is_discountable(line_kind::proration_charge));
  EXPECT_FALSE(is_discountable(line_kind::proration_credit));
  EXPECT_FALSE(is_discountable(line_kind::discount));
}

// -- property --------------------------------------------------------------------

namespace {

int128 abs128(int128 x) { return x < 0 ? -x : x; }

invoice_input random_invoice(rng& gen) {
  const currency currencies[] = {usd, jpy, bhd};
  const currency cur = currencies[gen.below(3)];
  invoice_input in{cur, {}, {}, gen.below(2) ? tax_mode::inclusive : tax_mode::exclusive,
                   gen.between(0, 300'000), gen.below(5) == 0};
  const std::int64_t scale = gen.below(2) ? 1'000 : 1'000'000'000;
  const std::size_t n = gen.below(13);
  for (std::size_t i = 0; i < n; ++i) {
    const auto kind = static_cast<line_kind>(gen.below(4));
    std::int64_t amount = gen.between(0, scale);
    if (kind == line_kind::proration_credit || gen.below(20) == 0)
      amount = -amount;
    in.lines.push_back(line(kind, amount, cur, gen.below(6) != 0));
  }
  const std::size_t k = gen.below(4);
  for (std::size_t i = 0; i < k; ++i)
    in.discounts.push_back(gen.below(2) ? pct(gen.between(0, 1'000'000))
                                        : off(gen.between(0, 2 * scale), cur));
  return in;
}

} // namespace

// Property: every random invoice satisfies the totals invariants, and the
// discount allocations sum exactly to each discount and stay within each line.
TEST(invoice, property_random_invoices_keep_the_totals_invariants) {
  const std::uint64_t seed = 0x1a7'0001;
  rng gen{seed};
  for (int i = 0; i < 20'000; ++i) {
    SCOPED_TRACE(testing::Message() << "seed=" << seed << " case=" << i);
    const invoice_input in = random_invoice(gen);
    auto inv = compute_invoice(in);
    ASSERT_TRUE(inv);
    const std::size_t n = in.lines.size();
    ASSERT_EQ(inv->lines.size(), n + in.discounts.size());

    int128 net = 0, tax = 0, gross = 0, allocated = 0, discount_lines = 0;
    int128 subtotal = 0, discountable = 0;
    for (std::size_t j = 0; j < inv->lines.size(); ++j) {
      const invoice_line& l = inv->lines[j];
      ASSERT_EQ(l.net.currency(), in.currency);
      ASSERT_EQ(int128{l.net.amount_minor()} + l.tax.amount_minor(),
                int128{l.gross.amount_minor()});
      net += l.net.amount_minor();
      tax += l.tax.amount_minor();
      gross += l.gross.amount_minor();
      if (j >= n) {
        ASSERT_EQ(l.kind, line_kind::discount);
        ASSERT_LE(l.amount.amount_minor(), 0);
        discount_lines -= l.amount.amount_minor();
        continue;
      }
      const std::int64_t a = in.lines[j].amount.amount_minor();
      const bool eligible = is_discountable(in.lines[j].kind) && a > 0;
      subtotal += a;
      discountable += eligible ? a : 0;
      ASSERT_GE(l.discount.amount_minor(), 0);
      ASSERT_LE(l.discount.amount_minor(), eligible ? a : 0);
      allocated += l.discount.amount_minor();
      if (in.tax_exempt || !in.lines[j].taxable) {
        ASSERT_EQ(l.tax.amount_minor(), 0);
      }
      const std::int64_t base = a - l.discount.amount_minor();
      ASSERT_EQ(in.mode == tax_mode::exclusive ? l.net.amount_minor()
                                               : l.gross.amount_minor(),
                base);
    }
    ASSERT_EQ(net, int128{inv->net_total.amount_minor()});
    ASSERT_EQ(tax, int128{inv->tax_total.amount_minor()});
    ASSERT_EQ(gross, int128{inv->total.amount_minor()});
    ASSERT_EQ(net + tax, int128{inv->total.amount_minor()});
    ASSERT_EQ(subtotal, int128{inv->subtotal.amount_minor()});
    ASSERT_EQ(allocated, int128{inv->discount_total.amount_minor()});
    ASSERT_EQ(discount_lines, int128{inv->discount_total.amount_minor()});
    ASSERT_LE(allocated, discountable);
    const int128 expected_total = subtotal - allocated
                                  + (in.mode == tax_mode::exclusive ? tax : 0);
    ASSERT_EQ(int128{inv->total.amount_minor()}, expected_total);
    ASSERT_GE(inv->amount_due.amount_minor(), 0);
    ASSERT_GE(inv->ending_credit.amount_minor(), 0);
    ASSERT_TRUE(inv->amount_due.is_zero() || inv->ending_credit.is_zero());
    ASSERT_EQ(int128{inv->amount_due.amount_minor()}
                - inv->ending_credit.amount_minor(),
              int128{inv->total.amount_minor()});

    // With a single discount, each share is within one minor unit of the
    // exact pro-rata share D * a / B: |share * B - D * a| < B.
    if (in.discounts.size() == 1 && discountable > 0) {
      const int128 d = inv->discount_total.amount_minor();
      for (std::size_t j = 0; j < n; ++j) {
        const std::int64_t a = in.lines[j].amount.amount_minor();
        if (!is_discountable(in.lines[j].kind) || a <= 0)
          continue;
        const int128 share = inv->lines[j].discount.amount_minor();
        ASSERT_LT(abs128(share * discountable - d * a), discountable);
      }
      // A single percent-off is the correctly rounded share of the base.
      if (const auto* p = std::get_if<percent_off>(&in.discounts[0].value)) {
        const int128 err = d * ppm_one - discountable * p->off_ppm;
        ASSERT_LE(abs128(err) * 2, int128{ppm_one});
      } else {
        const int128 want = std::get<amount_off>(in.discounts[0].value)
                              .amount.amount_minor();
        ASSERT_EQ(d, want < discountable ? want : discountable);
      }
    }
  }
}
