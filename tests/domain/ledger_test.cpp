#include "domain/ledger.hpp"

#include <array>
#include <cstdint>
#include <limits>
#include <vector>

#include <gtest/gtest.h>

#include "domain/clock.hpp"

using namespace recur;

namespace {

const currency usd = currency::of("USD");
const currency eur = currency::of("EUR");
const currency jpy = currency::of("JPY");

constexpr std::int64_t i64_max = std::numeric_limits<std::int64_t>::max();

posting dr(account a, std::int64_t minor, currency cur = usd) {
  return posting{a, entry_side::debit, money{minor, cur}};
}

posting cr(account a, std::int64_t minor, currency cur = usd) {
  return posting{a, entry_side::credit, money{minor, cur}};
}

bool same_posting(const posting& a, const posting& b) {
  return a.account == b.account && a.side == b.side && a.amount == b.amount;
}

void expect_postings(const ledger_transaction& tx,
                     const std::vector<posting>& expected) {
  ASSERT_EQ(tx.postings().size(), expected.size());
  for (std::size_t i = 0; i < expected.size(); ++i)
    EXPECT_TRUE(same_posting(tx.postings()[i], expected[i]))
      << "posting " << i << ": " << to_string(tx.postings()[i].account) << " "
      << to_string(tx.postings()[i].side) << " "
      << tx.postings()[i].amount.to_display();
}

} // namespace

// -- ledger_transaction::make ------------------------------------------------------

TEST(ledger, a_balanced_transaction_keeps_its_memo_and_postings) {
  auto tx = ledger_transaction::make(
    "manual", {dr(account::cash, 500), cr(account::receivable, 300),
               cr(account::revenue, 200)});
  ASSERT_TRUE(tx);
  EXPECT_EQ(tx->memo(), "manual");
  expect_postings(*tx, {dr(account::cash, 500), cr(account::receivable, 300),
                        cr(account::revenue, 200)});
}

TEST(ledger, empty_and_single_posting_transactions_are_rejected) {
  EXPECT_EQ(ledger_transaction::make("empty", {}).code(), errc::invalid_argument);
  EXPECT_EQ(ledger_transaction::make("one", {dr(account::cash, 1)}).code(),
            errc::invalid_argument);
}

TEST(ledger, zero_and_negative_postings_are_rejected) {
  EXPECT_EQ(ledger_transaction::make(
              "zero", {dr(account::cash, 0), cr(account::receivable, 0)})
              .code(),
            errc::invalid_argument);
  EXPECT_EQ(ledger_transaction::make(
              "negative", {dr(account::cash, -5), cr(account::receivable, -5)})
              .code(),
            errc::negative_amount);
}

TEST(ledger, an_unbalanced_transaction_cannot_be_made) {
  auto tx = ledger_transaction::make(
    "off by one", {dr(account::cash, 100), cr(account::receivable, 99)});
  ASSERT_FALSE(tx);
  EXPECT_EQ(tx.code(), errc::unbalanced_transaction);
  EXPECT_EQ(ledger_transaction::make("two debits", {dr(account::cash, 100),
                                                    dr(account::refunds, 100)})
              .code(),
            errc::unbalanced_transaction);
}

TEST(ledger, each_currency_must_balance_on_its_own) {
  // 100 USD against 100 EUR is not balanced, even though the numbers match.
  EXPECT_EQ(ledger_transaction::make("fx", {dr(account::cash, 100, usd),
                                            cr(account::receivable, 100, eur)})
              .code(),
            errc::unbalanced_transaction);
  auto ok = ledger_transaction::make(
    "two currencies", {dr(account::cash, 100, usd), cr(account::receivable, 100, usd),
                       dr(account::cash, 7, jpy), cr(account::receivable, 7, jpy)});
  EXPECT_TRUE(ok);
}

TEST(ledger, totals_that_overflow_int64_are_rejected) {
  EXPECT_EQ(ledger_transaction::make(
              "huge", {dr(account::cash, i64_max), dr(account::cash, 1),
                       cr(account::receivable, i64_max), cr(account::receivable, 1)})
              .code(),
            errc::amount_overflow);
}

TEST(ledger, a_transaction_has_a_posting_limit) {
  std::vector<posting> many;
  for (std::size_t i = 0; i < ledger_transaction::postings_max / 2 + 1; ++i) {
    many.push_back(dr(account::cash, 1));
    many.push_back(cr(account::receivable, 1));
  }
  EXPECT_EQ(ledger_transaction::make("many", many).code(), errc::invalid_argument);
}

// -- builders ------------------------------------------------------------------------

TEST(ledger, an_issued_invoice_debits_receivable_by_the_gross) {
  auto tx = invoice_issued(money{10000, usd}, money{1900, usd});
  ASSERT_TRUE(tx);
  expect_postings(*tx, {dr(account::receivable, 11900),
                        cr(account::deferred_revenue, 10000),
                        cr(account::tax_payable, 1900)});
}

TEST(ledger, a_zero_tax_leg_is_skipped) {
  auto tx = invoice_issued(money{10000, usd}, money{0, usd});
  ASSERT_TRUE(tx);
  expect_postings(*tx, {dr(account::receivable, 10000),
                        cr(account::deferred_revenue, 10000)});
  auto tax_only = invoice_issued(money{0, usd}, money{50, usd});
  ASSERT_TRUE(tax_only);
  expect_postings(*tax_only, {dr(account::receivable, 50),
                              cr(account::tax_payable, 50)});
}

TEST(ledger, a_credit_note_is_the_mirror_of_an_invoice) {
  auto tx = credit_note(money{10000, usd}, money{1900, usd});
  ASSERT_TRUE(tx);
  expect_postings(*tx, {cr(account::receivable, 11900),
                        dr(account::deferred_revenue, 10000),
                        dr(account::tax_payable, 1900)});
}

TEST(ledger, the_two_leg_builders_move_money_between_the_right_accounts) {
  struct row {
    result<ledger_transaction> tx;
    account debit;
    account credit;
  };
  const money m{250, usd};
  row rows[] = {
    {payment_received(m), account::cash, account::receivable},
    {revenue_recognized(m), account::deferred_revenue, account::revenue},
    {write_off(m), account::bad_debt, account::receivable},
    {refund_issued(m), account::refunds, account::cash},
  };
  for (const row& r : rows) {
    ASSERT_TRUE(r.tx);
    expect_postings(*r.tx, {dr(r.debit, 250), cr(r.credit, 250)});
  }
}

TEST(ledger, builders_reject_zero_negative_and_mixed_currency_amounts) {
  EXPECT_EQ(payment_received(money{0, usd}).code(), errc::invalid_argument);
  EXPECT_EQ(invoice_issued(money{0, usd}, money{0, usd}).code(),
            errc::invalid_argument);
  EXPECT_EQ(refund_issued(money{-1, usd}).code(), errc::negative_amount);
  EXPECT_EQ(invoice_issued(money{100, usd}, money{-1, usd}).code(),
            errc::negative_amount);
  EXPECT_EQ(credit_note(money{100, usd}, money{10, eur}).code(),
            errc::currency_mismatch);
  EXPECT_EQ(invoice_issued(money{i64_max, usd}, money{1, usd}).code(),
            errc::amount_overflow);
}

TEST(ledger, builders_carry_a_default_or_given_memo) {
  EXPECT_EQ(payment_received(money{1, usd})->memo(), "payment received");
  EXPECT_EQ(write_off(money{1, usd}, "inv_42 uncollectible")->memo(),
            "inv_42 uncollectible");
}

TEST(ledger, reversing_swaps_every_side) {
  auto tx = invoice_issued(money{10000, usd}, money{1900, usd}, "inv_1");
  ASSERT_TRUE(tx);
  auto rev = reverse(*tx);
  ASSERT_TRUE(rev);
  EXPECT_EQ(rev->memo(), "reversal of: inv_1");
  expect_postings(*rev, {cr(account::receivable, 11900),
                         dr(account::deferred_revenue, 10000),
                         dr(account::tax_payable, 1900)});
}

// -- ledger_balances ------------------------------------------------------------------

TEST(ledger, an_empty_ledger_is_balanced_with_zero_balances) {
  ledger_balances b;
  EXPECT_TRUE(b.balanced());
  EXPECT_EQ(b.balance_minor(account::cash, usd), 0);
}

TEST(ledger, issue_pay_and_recognize_leaves_cash_revenue_and_tax) {
  ledger_balances b;
  ASSERT_TRUE(b.apply(*invoice_issued(money{10000, usd}, money{1900, usd})));
  EXPECT_EQ(b.balance_minor(account::receivable, usd), 11900);
  EXPECT_EQ(b.balance_minor(account::deferred_revenue, usd), -10000);
  ASSERT_TRUE(b.apply(*payment_received(money{11900, usd})));
  ASSERT_TRUE(b.apply(*revenue_recognized(money{10000, usd})));
  EXPECT_EQ(b.balance_minor(account::receivable, usd), 0);
  EXPECT_EQ(b.balance_minor(account::cash, usd), 11900);
  EXPECT_EQ(b.balance_minor(account::deferred_revenue, usd), 0);
  EXPECT_EQ(b.balance_minor(account::revenue, usd), -10000);
  EXPECT_EQ(b.balance_minor(account::tax_payable, usd), -1900);
  EXPECT_EQ(b.balance_minor(account::revenue, eur), 0);
  EXPECT_TRUE(b.balanced());
}

TEST(ledger, an_unpaid_invoice_written_off_clears_receivable_into_bad_debt) {
  ledger_balances b;
  ASSERT_TRUE(b.apply(*invoice_issued(money{500, jpy}, money{50, jpy})));
  ASSERT_TRUE(b.apply(*write_off(money{550, jpy})));
  EXPECT_EQ(b.balance_minor(account::receivable, jpy), 0);
  EXPECT_EQ(b.balance_minor(account::bad_debt, jpy), 550);
  EXPECT_TRUE(b.balanced());
}

TEST(ledger, applying_a_reversal_after_its_transaction_returns_every_balance_to_zero) {
  ledger_balances b;
  auto tx = invoice_issued(money{10000, usd}, money{1900, usd});
  ASSERT_TRUE(tx);
  ASSERT_TRUE(b.apply(*tx));
  ASSERT_TRUE(b.apply(*reverse(*tx)));
  for (std::size_t i = 0; i < account_count; ++i)
    EXPECT_EQ(b.balance_minor(static_cast<account>(i), usd), 0)
      << to_string(static_cast<account>(i));
}

TEST(ledger, a_balance_overflow_applies_no_leg_at_all) {
  ledger_balances b;
  ASSERT_TRUE(b.apply(*payment_received(money{i64_max, usd})));
  auto again = b.apply(*payment_received(money{1, usd}));
  ASSERT_FALSE(again);
  EXPECT_EQ(again.code(), errc::amount_overflow);
  EXPECT_EQ(b.balance_minor(account::cash, usd), i64_max);
  EXPECT_EQ(b.balance_minor(account::receivable, usd), -i64_max);
  EXPECT_TRUE(b.balanced());
}

TEST(ledger, accounts_and_sides_have_stable_names) {
  EXPECT_EQ(to_string(account::receivable), "receivable");
  EXPECT_EQ(to_string(account::deferred_revenue), "deferred_revenue");
  EXPECT_EQ(to_string(account::revenue), "revenue");
  EXPECT_EQ(to_string(account::cash), "cash");
  EXPECT_EQ(to_string(account::tax_payable), "tax_payable");
  EXPECT_EQ(to_string(account::bad_debt), "bad_debt");
  EXPECT_EQ(to_string(account::refunds), "refunds");
  EXPECT_EQ(to_string(entry_side::debit), "debit");
  EXPECT_EQ(to_string(entry_side::credit), "credit");
}

// -- property --------------------------------------------------------------------------

// Property: any sequence of builder transactions (and reversals of earlier
// ones) keeps the ledger balanced, and every account ends where a hand-written
// model of each transaction's effect says it should.
TEST(ledger, property_random_transaction_sequences_stay_balanced) {
  const std::uint64_t seed = 0x1ed9'0001;
  rng gen{seed};
  const currency currencies[] = {usd, eur, jpy};
  ledger_balances b;
  // model[currency][account], debit-positive.
  std::array<std::array<std::int64_t, account_count>, 3> model{};
  std::vector<std::pair<ledger_transaction, std::size_t>> history;
  auto at = [](account a) { return static_cast<std::size_t>(a); };
  for (int i = 0; i < 20'000; ++i) {
    std::size_t ci = gen.below(3);
    const currency cur = currencies[ci];
    const std::int64_t x = gen.between(1, 1'000'000'000);
    const std::int64_t y = gen.between(0, 200'000'000);
    const std::uint64_t kind = gen.below(8);
    SCOPED_TRACE(testing::Message() << "seed=" << seed << " step=" << i
                                    << " kind=" << kind << " x=" << x
                                    << " y=" << y);
    auto& m = model[ci];
    result<ledger_transaction> tx = make_error(errc::invalid_argument);
    switch (kind) {
      case 0:
        tx = invoice_issued(money{x, cur}, money{y, cur});
        m[at(account::receivable)] += x + y;
        m[at(account::deferred_revenue)] -= x;
        m[at(account::tax_payable)] -= y;
        break;
      case 1:
        tx = credit_note(money{x, cur}, money{y, cur});
        m[at(account::receivable)] -= x + y;
        m[at(account::deferred_revenue)] += x;
        m[at(account::tax_payable)] += y;
        break;
      case 2:
        tx = payment_received(money{x, cur});
        m[at(account::cash)] += x;
        m[at(account::receivable)] -= x;
        break;
      case 3:
        tx = revenue_recognized(money{x, cur});
        m[at(account::deferred_revenue)] += x;
        m[at(account::revenue)] -= x;
        break;
      case 4:
        tx = write_off(money{x, cur});
        m[at(account::bad_debt)] += x;
        m[at(account::receivable)] -= x;
        break;
      case 5:
        tx = refund_issued(money{x, cur});
        m[at(account::refunds)] += x;
        m[at(account::cash)] -= x;
        break;
      default: {
        if (history.empty())
          continue;
        const auto& [old, old_ci] = history[gen.below(history.size())];
        tx = reverse(old);
        ci = old_ci; // a reversal is in the currency of what it reverses
        for (const posting& p : old.postings())
          model[old_ci][at(p.account)] += p.side == entry_side::debit
                                            ? -p.amount.amount_minor()
                                            : p.amount.amount_minor();
        break;
      }
    }
    ASSERT_TRUE(tx);
    ASSERT_TRUE(b.apply(*tx));
    ASSERT_TRUE(b.balanced());
    history.emplace_back(std::move(*tx), ci);
  }
  for (std::size_t ci = 0; ci < 3; ++ci)
    for (std::size_t a = 0; a < account_count; ++a)
      EXPECT_EQ(b.balance_minor(static_cast<account>(a), currencies[ci]),
                model[ci][a])
        << currencies[ci].code() << " " << to_string(static_cast<account>(a));
}
