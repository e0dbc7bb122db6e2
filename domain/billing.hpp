#pragma once
/// Turns the catalog into invoice lines: the fee for a period (in advance),
/// metered usage (in arrears) and the proration lines of a mid-period plan
/// change; then prices them with the customer's tax into a computed invoice.

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "domain/catalog.hpp"
#include "domain/invoice.hpp"
#include "domain/period.hpp"
#include "domain/tax.hpp"

namespace recur {

/// The quantity a subscription used of one meter over a usage period.
struct usage_total {
  std::string meter;
  std::int64_t quantity = 0;
};

/// What a renewal (or first) invoice covers: the plan fee for `period`,
/// billed in advance, and the usage of `usage_period` (normally the period
/// just ended), billed in arrears.
struct period_charges {
  const plan_version* version = nullptr;
  std::int64_t quantity = 1; // seats / licensed units for the base price
  billing_period period;
  std::vector<usage_total> usage;
  std::optional<billing_period> usage_period;
};

/// One fee line plus one usage line per metered component of the version that
/// has usage (a meter with no usage is omitted; a meter the version does not
/// have is `not_found`; a negative quantity is `invalid_argument`).
result<std::vector<invoice_line_input>> period_lines(const period_charges& in);

/// A plan change at instant `at` inside `period` (Stripe's
/// proration_behavior=create_prorations): a credit for the unused time of the
/// old price and a charge for the remaining time of the new one, each exact to
/// the second. Both versions must share a currency (`currency_mismatch`) and
/// a billing interval (`invalid_argument`: an interval change starts a new
/// billing cycle and is priced with period_lines instead). A zero-amount
/// line is omitted.
struct plan_change {
  const plan_version* from = nullptr;
  std::int64_t from_quantity = 1;
  const plan_version* to = nullptr;
  std::int64_t to_quantity = 1;
  billing_period period;
  instant at;
};

result<std::vector<invoice_line_input>> plan_change_lines(const plan_change& in);

/// Who is billed and how: the customer's tax profile resolved in the tenant's
/// tax table, the tenant's tax mode, and the coupons that apply.
struct billing_terms {
  tax_profile customer;
  tax_mode mode = tax_mode::exclusive;
  std::vector<invoice_discount> discounts;
};

/// Prices `lines` in `cur` under `terms`: looks up the customer's rate
/// (`not_found` for an unknown region unless the customer is exempt) and runs
/// compute_invoice.
result<computed_invoice> draft_invoice(currency cur,
                                       std::vector<invoice_line_input> lines,
                                       const billing_terms& terms,
                                       const tax_table& taxes);

} // namespace recur
