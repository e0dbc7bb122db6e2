#pragma once
/// Double-entry ledger postings: transactions that balance by construction, the
/// standard billing transactions, and running account balances.

#include <array>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "domain/error.hpp"
#include "domain/money.hpp"

namespace recur {

enum class account : std::uint8_t {
  receivable,
  deferred_revenue,
  revenue,
  cash,
  tax_payable,
  bad_debt,
  refunds,
  disputes, // money a gateway withheld for a chargeback, until it is decided
};

inline constexpr std::size_t account_count = 8;

std::string_view to_string(account a) noexcept;

enum class entry_side : std::uint8_t { debit, credit };

std::string_view to_string(entry_side s) noexcept;

/// One leg of a transaction. The amount is strictly positive; the side says
/// which way it moves the account.
struct posting {
  recur::account account;
  entry_side side;
  money amount;
};

/// A balanced set of postings: for every currency, debits equal credits. The
/// only way to get one is `make`, so an unbalanced transaction cannot exist.
class ledger_transaction {
public:
  static constexpr std::size_t postings_max = 64;

  /// Rejects: no postings or fewer than two (`invalid_argument`), more than
  /// `postings_max` (`invalid_argument`), a zero amount (`invalid_argument`),
  /// a negative amount (`negative_amount`), debits != credits in any currency
  /// (`unbalanced_transaction`), and sums that overflow (`amount_overflow`).
  static result<ledger_transaction> make(std::string memo,
                                         std::vector<posting> postings);

  const std::string& memo() const noexcept { return memo_; }
  const std::vector<posting>& postings() const noexcept { return postings_; }

private:
  ledger_transaction(std::string memo, std::vector<posting> postings)
    : memo_(std::move(memo)), postings_(std::move(postings)) {}

  std::string memo_;
  std::vector<posting> postings_;
};

// -- standard billing transactions ---------------------------------------------
//
// Each builder skips zero-amount legs; amounts must be >= 0 (`negative_amount`)
// and share one currency (`currency_mismatch`). When every amount is zero there
// is nothing to post, which is `invalid_argument`: callers skip the posting.

/// DR receivable (net + tax) / CR deferred_revenue net / CR tax_payable tax.
result<ledger_transaction> invoice_issued(const money& net, const money& tax,
                                          std::string memo = "invoice issued");

/// DR cash / CR receivable.
result<ledger_transaction>
payment_received(const money& amount, std::string memo = "payment received");

/// DR deferred_revenue / CR revenue.
result<ledger_transaction>
revenue_recognized(const money& amount, std::string memo = "revenue recognized");

/// DR bad_debt / CR receivable.
result<ledger_transaction> write_off(const money& amount,
                                     std::string memo = "write-off");

/// DR refunds / CR cash.
result<ledger_transaction> refund_issued(const money& amount,
                                         std::string memo = "refund issued");

/// The reverse of invoice_issued: DR deferred_revenue net / DR tax_payable tax
/// / CR receivable (net + tax).
result<ledger_transaction> credit_note(const money& net, const money& tax,
                                       std::string memo = "credit note");

/// The compensation of `tx`: the same legs with every side swapped. Applying
/// both leaves every balance where it was.
result<ledger_transaction> reverse(const ledger_transaction& tx);

/// Running balances per account and currency, debit-positive (a credit-normal
/// account such as revenue shows a negative balance).
class ledger_balances {
public:
  /// Applies every leg of `tx`, or none of them if a balance would overflow
  /// (`amount_overflow`).
  status apply(const ledger_transaction& tx);

  /// The debit-positive balance; 0 for a currency never seen.
  std::int64_t balance_minor(account a, const currency& cur) const;

  /// True when, for every currency, the balances over all accounts sum to zero.
  bool balanced() const;

private:
  struct currency_row {
    currency cur;
    std::array<std::int64_t, account_count> balance_minor{};
  };

  std::vector<currency_row> rows_;
};

} // namespace recur
