#include "domain/billing.hpp"

#include <utility>

#include "domain/proration.hpp"
#include "domain/pricing.hpp"

namespace recur {

namespace {

std::string fee_description(const plan_version& v, std::int64_t quantity) {
  return "subscription fee (plan version " + std::to_string(v.version)
         + ", quantity " + std::to_string(quantity) + ")";
}

status check_quantity(std::int64_t quantity) {
  if (quantity < 0)
    return make_error(errc::invalid_argument, "quantity must be >= 0");
  return {};
}

} // namespace

result<std::vector<invoice_line_input>> period_lines(const period_charges& in) {
  RECUR_ASSERT(in.version != nullptr);
  const plan_version& v = *in.version;
  if (auto ok = check_quantity(in.quantity); !ok)
    return ok.error();
  auto fee = price_for_quantity(v.base, v.currency, in.quantity);
  if (!fee)
    return fee.error();
  std::vector<invoice_line_input> lines;
  lines.push_back({line_kind::subscription_fee, fee_description(v, in.quantity),
                   in.quantity, *fee, in.period, true});
  for (const usage_total& u : in.usage) {
    if (auto ok = check_quantity(u.quantity); !ok)
      return ok.error();
    auto meter = find_meter(v, u.meter);
    if (!meter)
      return meter.error();
    auto charge = usage_charge(**meter, v.currency, u.quantity);
    if (!charge)
      return charge.error();
    lines.push_back({line_kind::usage, "usage: " + u.meter, u.quantity, *charge,
                     in.usage_period, true});
  }
  return lines;
}

result<std::vector<invoice_line_input>> plan_change_lines(const plan_change& in) {
  RECUR_ASSERT(in.from != nullptr && in.to != nullptr);
  if (!(in.from->currency == in.to->currency))
    return make_error(errc::currency_mismatch,
                      "a plan change cannot switch currency");
  if (!(in.from->interval == in.to->interval))
    return make_error(errc::invalid_argument,
                      "a plan change across billing intervals starts a new "
                      "billing cycle");
  if (auto ok = check_quantity(in.from_quantity); !ok)
    return ok.error();
  if (auto ok = check_quantity(in.to_quantity); !ok)
    return ok.error();
  auto old_fee = price_for_quantity(in.from->base, in.from->currency,
                                    in.from_quantity);
  if (!old_fee)
    return old_fee.error();
  auto new_fee = price_for_quantity(in.to->base, in.to->currency,
                                    in.to_quantity);
  if (!new_fee)
    return new_fee.error();
  auto credit = unused_credit(*old_fee, in.period, in.at);
  if (!credit)
    return credit.error();
  auto charge = remaining_charge(*new_fee, in.period, in.at);
  if (!charge)
    return charge.error();
  const billing_period rest{in.at, in.period.end};
  std::vector<invoice_line_input> lines;
  if (!credit->is_zero())
    lines.push_back({line_kind::proration_credit,
                     "unused time on plan version "
                       + std::to_string(in.from->version),
                     in.from_quantity, *credit, rest, true});
  if (!charge->is_zero())
    lines.push_back({line_kind::proration_charge,
                     "remaining time on plan version "
                       + std::to_string(in.to->version),
                     in.to_quantity, *charge, rest, true});
  return lines;
}

result<computed_invoice> draft_invoice(currency cur,
                                       std::vector<invoice_line_input> lines,
                                       const billing_terms& terms,
                                       const tax_table& taxes) {
  auto rate = taxes.rate_for(terms.customer);
  if (!rate)
    return rate.error();
  invoice_input input{cur, std::move(lines), terms.discounts, terms.mode, *rate,
                      terms.customer.exempt};
  return compute_invoice(input);
}

} // namespace recur
