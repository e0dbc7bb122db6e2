#include "domain/ledger.hpp"

#include <algorithm>
#include <initializer_list>

#include "domain/arith.hpp"

namespace recur {

namespace {

struct side_totals {
  currency cur;
  money debit;
  money credit;
};

status check_posting(const posting& p) {
  if (p.amount.is_negative())
    return make_error(errc::negative_amount,
                      "posting amount " + p.amount.to_display()
                        + " is negative");
  if (p.amount.is_zero())
    return make_error(errc::invalid_argument, "posting amount is zero");
  return {};
}

// Adds one posting to the per-currency debit/credit totals.
status add_to_totals(std::vector<side_totals>& totals, const posting& p) {
  const currency& cur = p.amount.currency();
  auto it = std::find_if(totals.begin(), totals.end(),
                         [&](const side_totals& t) { return t.cur == cur; });
  if (it == totals.end())
    it = totals.insert(totals.end(),
                       side_totals{cur, money::zero(cur), money::zero(cur)});
  money& slot = p.side == entry_side::debit ? it->debit : it->credit;
  auto next = slot.plus(p.amount);
  if (!next)
    return next.error();
  slot = *next;
  return {};
}

// The legs of a standard transaction; zero amounts are dropped.
struct leg {
  account acct;
  entry_side side;
  money amount;
};

status check_builder_amounts(std::initializer_list<const money*> amounts) {
  const currency& cur = (*amounts.begin())->currency();
  for (const money* m : amounts) {
    if (!(m->currency() == cur))
      return make_error(errc::currency_mismatch,
                        std::string{m->currency().code()} + " vs "
                          + std::string{cur.code()});
    if (m->is_negative())
      return make_error(errc::negative_amount,
                        "amount " + m->to_display() + " is negative");
  }
  return {};
}

result<ledger_transaction> build(std::string memo,
                                 std::initializer_list<leg> legs) {
  std::vector<posting> postings;
  for (const leg& l : legs) {
    if (!l.amount.is_zero())
      postings.push_back(posting{l.acct, l.side, l.amount});
  }
  if (postings.empty())
    return make_error(errc::invalid_argument,
                      "nothing to post: every amount is zero");
  return ledger_transaction::make(std::move(memo), std::move(postings));
}

// A two-leg transaction: DR `debit` / CR `credit` of the same amount.
result<ledger_transaction> transfer(account debit, account credit,
                                    const money& amount, std::string memo) {
  if (auto ok = check_builder_amounts({&amount}); !ok)
    return ok.error();
  return build(std::move(memo), {{debit, entry_side::debit, amount},
                                 {credit, entry_side::credit, amount}});
}

// The invoice posting, or its mirror image when `side_of_receivable` is credit.
result<ledger_transaction> invoice_posting(const money& net, const money& tax,
                                           entry_side side_of_receivable,
                                           std::string memo) {
  if (auto ok = check_builder_amounts({&net, &tax}); !ok)
    return ok.error();
  auto gross = net.plus(tax);
  if (!gross)
    return gross.error();
  const entry_side other = side_of_receivable == entry_side::debit
                             ? entry_side::credit
                             : entry_side::debit;
  return build(std::move(memo), {{account::receivable, side_of_receivable, *gross},
                                 {account::deferred_revenue, other, net},
                                 {account::tax_payable, other, tax}});
}

} // namespace

std::string_view to_string(account a) noexcept {
  switch (a) {
    case account::receivable: return "receivable";
    case account::deferred_revenue: return "deferred_revenue";
    case account::revenue: return "revenue";
    case account::cash: return "cash";
    case account::tax_payable: return "tax_payable";
    case account::bad_debt: return "bad_debt";
    case account::refunds: return "refunds";
    case account::disputes: return "disputes";
  }
  return "unknown";
}

std::string_view to_string(entry_side s) noexcept {
  switch (s) {
    case entry_side::debit: return "debit";
    case entry_side::credit: return "credit";
  }
  return "unknown";
}

// -- ledger_transaction ----------------------------------------------------------

result<ledger_transaction> ledger_transaction::make(std::string memo,
                                                    std::vector<posting> postings) {
  if (postings.size() < 2)
    return make_error(errc::invalid_argument,
                      "a transaction needs at least two postings");
  if (postings.size() > postings_max)
    return make_error(errc::invalid_argument, "too many postings");
  std::vector<side_totals> totals;
  for (const posting& p : postings) {
    if (auto ok = check_posting(p); !ok)
      return ok.error();
    if (auto ok = add_to_totals(totals, p); !ok)
      return ok.error();
  }
  for (const side_totals& t : totals) {
    if (!(t.debit == t.credit))
      return make_error(errc::unbalanced_transaction,
                        "debits " + t.debit.to_display() + " != credits "
                          + t.credit.to_display());
  }
  return ledger_transaction{std::move(memo), std::move(postings)};
}

// -- builders ---------------------------------------------------------------------

result<ledger_transaction> invoice_issued(const money& net, const money& tax,
                                          std::string memo) {
  return invoice_posting(net, tax, entry_side::debit, std::move(memo));
}

result<ledger_transaction> credit_note(const money& net, const money& tax,
                                       std::string memo) {
  return invoice_posting(net, tax, entry_side::credit, std::move(memo));
}

result<ledger_transaction> payment_received(const money& amount,
                                            std::string memo) {
  return transfer(account::cash, account::receivable, amount, std::move(memo));
}

result<ledger_transaction> revenue_recognized(const money& amount,
                                              std::string memo) {
  return transfer(account::deferred_revenue, account::revenue, amount,
                  std::move(memo));
}

result<ledger_transaction> write_off(const money& amount, std::string memo) {
  return transfer(account::bad_debt, account::receivable, amount,
                  std::move(memo));
}

result<ledger_transaction> refund_issued(const money& amount, std::string memo) {
  return transfer(account::refunds, account::cash, amount, std::move(memo));
}

result<ledger_transaction> reverse(const ledger_transaction& tx) {
  std::vector<posting> swapped = tx.postings();
  for (posting& p : swapped)
    p.side = p.side == entry_side::debit ? entry_side::credit : entry_side::debit;
  return ledger_transaction::make("reversal of: " + tx.memo(), std::move(swapped));
}

// -- ledger_balances --------------------------------------------------------------

status ledger_balances::apply(const ledger_transaction& tx) {
  // Work on a copy so that an overflow part-way leaves no leg applied.
  std::vector<currency_row> next = rows_;
  for (const posting& p : tx.postings()) {
    const currency& cur = p.amount.currency();
    auto it = std::find_if(next.begin(), next.end(),
                           [&](const currency_row& r) { return r.cur == cur; });
    if (it == next.end())
      it = next.insert(next.end(), currency_row{cur, {}});
    std::int64_t& slot = it->balance_minor[static_cast<std::size_t>(p.account)];
    const std::int64_t delta = p.amount.amount_minor();
    const bool overflow = p.side == entry_side::debit
                            ? __builtin_add_overflow(slot, delta, &slot)
                            : __builtin_sub_overflow(slot, delta, &slot);
    if (overflow)
      return make_error(errc::amount_overflow,
                        "balance of " + std::string{to_string(p.account)}
                          + " overflows");
  }
  rows_ = std::move(next);
  return {};
}

std::int64_t ledger_balances::balance_minor(account a, const currency& cur) const {
  for (const currency_row& r : rows_) {
    if (r.cur == cur)
      return r.balance_minor[static_cast<std::size_t>(a)];
  }
  return 0;
}

bool ledger_balances::balanced() const {
  for (const currency_row& r : rows_) {
    int128 total = 0;
    for (std::int64_t b : r.balance_minor)
      total += b;
    if (total != 0)
      return false;
  }
  return true;
}

} // namespace recur
