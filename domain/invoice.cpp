#include "domain/invoice.hpp"

#include <algorithm>

#include "domain/arith.hpp"

namespace recur {

namespace {

error mismatch(const currency& got, const currency& want) {
  return make_error(errc::currency_mismatch, std::string{got.code()} + " vs "
                                               + std::string{want.code()});
}

status validate_line(const invoice_line_input& line, const currency& cur) {
  if (!(line.amount.currency() == cur))
    return mismatch(line.amount.currency(), cur);
  if (line.kind == line_kind::discount)
    return make_error(errc::invalid_argument,
                      "discount lines come from invoice_input.discounts");
  if (line.quantity < 0)
    return make_error(errc::invalid_argument, "negative quantity");
  if (line.kind == line_kind::proration_credit && line.amount.is_positive())
    return make_error(errc::invalid_argument, "a proration credit is positive");
  if (line.period && !(line.period->start < line.period->end))
    return make_error(errc::invalid_period, "line period ends before it starts");
  return {};
}

status validate_discount(const invoice_discount& d, const currency& cur) {
  if (const auto* p = std::get_if<percent_off>(&d.value)) {
    if (p->off_ppm < 0 || p->off_ppm > ppm_one)
      return make_error(errc::invalid_argument, "percent_off outside [0, 10^6] ppm");
    return {};
  }
  const money& off = std::get<amount_off>(d.value).amount;
  if (!(off.currency() == cur))
    return mismatch(off.currency(), cur);
  if (off.is_negative())
    return make_error(errc::negative_amount, "negative amount_off");
  return {};
}

status validate(const invoice_input& in) {
  if (in.lines.size() > invoice_lines_max)
    return make_error(errc::invalid_argument, "too many invoice lines");
  if (in.discounts.size() > invoice_discounts_max)
    return make_error(errc::invalid_argument, "too many discounts");
  if (in.rate_ppm < 0 || in.rate_ppm > tax_rate_ppm_max)
    return make_error(errc::invalid_argument, "tax rate outside [0, 10^6] ppm");
  for (const auto& line : in.lines)
    if (auto ok = validate_line(line, in.currency); !ok)
      return ok;
  for (const auto& d : in.discounts)
    if (auto ok = validate_discount(d, in.currency); !ok)
      return ok;
  return {};
}

// What is still discountable on each line, and what has been taken off it.
struct allocation {
  std::vector<std::int64_t> remaining_minor;
  std::vector<std::int64_t> discount_minor;
};

allocation initial_allocation(const std::vector<invoice_line_input>& lines) {
  allocation a;
  for (const auto& line : lines) {
    const bool eligible = is_discountable(line.kind) && line.amount.is_positive();
    a.remaining_minor.push_back(eligible ? line.amount.amount_minor() : 0);
    a.discount_minor.push_back(0);
  }
  return a;
}

// The discount's amount against `base_minor`, never more than the base.
std::int64_t discount_minor_for(const invoice_discount& d,
                                std::int64_t base_minor) {
  if (const auto* p = std::get_if<percent_off>(&d.value))
    return static_cast<std::int64_t>(
      div_round_half_even(int128{base_minor} * p->off_ppm, ppm_one));
  return std::min(std::get<amount_off>(d.value).amount.amount_minor(), base_minor);
}

// Takes one discount off the remaining amounts, pro rata. Each line's share is
// the difference of half-even rounded cumulative shares, so the shares sum to
// the discount exactly and each lies in [0, remaining].
result<std::int64_t> apply_discount(const invoice_discount& d, allocation& a,
                                    const currency& cur) {
  money base = money::zero(cur);
  for (std::int64_t r : a.remaining_minor) {
    auto next = base.plus(money{r, cur});
    if (!next)
      return next.error();
    base = *next;
  }
  const std::int64_t base_minor = base.amount_minor();
  const std::int64_t off_minor = discount_minor_for(d, base_minor);
  if (off_minor == 0)
    return off_minor;
  int128 cumulative = 0;
  int128 allocated_before = 0;
  for (std::size_t i = 0; i < a.remaining_minor.size(); ++i) {
    cumulative += a.remaining_minor[i];
    const int128 allocated = div_round_half_even(cumulative * off_minor, base_minor);
    const auto share = static_cast<std::int64_t>(allocated - allocated_before);
    allocated_before = allocated;
    a.remaining_minor[i] -= share;
    a.discount_minor[i] += share; // <= the line amount: cannot overflow
  }
  return off_minor;
}

result<invoice_line> price_line(const invoice_line_input& in,
                                std::int64_t discount_minor,
                                const invoice_input& invoice) {
  const currency& cur = invoice.currency;
  const money discount{discount_minor, cur};
  auto base = in.amount.minus(discount);
  if (!base)
    return base.error();
  const bool taxed = in.taxable && !invoice.tax_exempt;
  auto split = apply_tax(*base, taxed ? invoice.rate_ppm : 0, invoice.mode);
  if (!split)
    return split.error();
  return invoice_line{in.kind,   in.description, in.quantity, in.amount,
                      discount,  in.period,      in.taxable,  split->net,
                      split->tax, split->gross};
}

invoice_line discount_line(const invoice_discount& d, std::int64_t off_minor,
                           const currency& cur) {
  const money zero = money::zero(cur);
  return invoice_line{line_kind::discount, d.description, 1,
                      money{-off_minor, cur}, zero, std::nullopt,
                      false, zero, zero, zero};
}

// Sums one money field over lines with checked arithmetic.
template <class Field>
result<money> sum_lines(const std::vector<invoice_line>& lines, Field field,
                        const currency& cur) {
  money total = money::zero(cur);
  for (const auto& line : lines) {
    auto next = total.plus(line.*field);
    if (!next)
      return next;
    total = *next;
  }
  return total;
}

result<computed_invoice> totals(std::vector<invoice_line> lines,
                                money subtotal, money discount_total,
                                const currency& cur) {
  auto net = sum_lines(lines, &invoice_line::net, cur);
  auto tax = sum_lines(lines, &invoice_line::tax, cur);
  auto gross = sum_lines(lines, &invoice_line::gross, cur);
  if (!net || !tax || !gross)
    return !net ? net.error() : !tax ? tax.error() : gross.error();
  auto owed_back = gross->negated();
  if (!owed_back)
    return owed_back.error();
  const money zero = money::zero(cur);
  const money due = gross->is_positive() ? *gross : zero;
  const money credit = owed_back->is_positive() ? *owed_back : zero;
  return computed_invoice{std::move(lines), subtotal, discount_total,
                          *net,             *tax,     *gross,
                          due,              credit};
}

} // namespace

std::string_view to_string(line_kind kind) noexcept {
  switch (kind) {
    case line_kind::subscription_fee: return "subscription_fee";
    case line_kind::usage: return "usage";
    case line_kind::proration_credit: return "proration_credit";
    case line_kind::proration_charge: return "proration_charge";
    case line_kind::discount: return "discount";
  }
  return "unknown";
}

bool is_discountable(line_kind kind) noexcept {
  return kind == line_kind::subscription_fee || kind == line_kind::usage
         || kind == line_kind::proration_charge;
}

result<computed_invoice> compute_invoice(const invoice_input& input) {
  if (auto ok = validate(input); !ok)
    return ok.error();
  const currency& cur = input.currency;
  std::vector<money> amounts;
  for (const auto& line : input.lines)
    amounts.push_back(line.amount);
  auto subtotal = sum(amounts, cur);
  if (!subtotal)
    return subtotal.error();

  allocation alloc = initial_allocation(input.lines);
  std::vector<std::int64_t> off_minor;
  money discount_total = money::zero(cur);
  for (const auto& d : input.discounts) {
    auto off = apply_discount(d, alloc, cur);
    if (!off)
      return off.error();
    off_minor.push_back(*off);
    // Discounts never exceed the discountable sum, which fit in int64.
    discount_total = *discount_total.plus(money{*off, cur});
  }

  std::vector<invoice_line> lines;
  for (std::size_t i = 0; i < input.lines.size(); ++i) {
    auto line = price_line(input.lines[i], alloc.discount_minor[i], input);
    if (!line)
      return line.error();
    lines.push_back(std::move(*line));
  }
  for (std::size_t k = 0; k < input.discounts.size(); ++k)
    lines.push_back(discount_line(input.discounts[k], off_minor[k], cur));
  return totals(std::move(lines), *subtotal, discount_total, cur);
}

} // namespace recur
