#pragma once
/// Invoice computation: lines, pre-tax discounts allocated pro rata, per-line
/// tax and the totals. Pure arithmetic; the invoice status machine lives in
/// workflows/.

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "domain/error.hpp"
#include "domain/money.hpp"
#include "domain/period.hpp"
#include "domain/tax.hpp"

namespace recur {

enum class line_kind : std::uint8_t {
  subscription_fee,
  usage,
  proration_credit,
  proration_charge,
  discount, // produced by compute_invoice, never accepted as input
};

std::string_view to_string(line_kind kind) noexcept;

/// Whether discounts may reduce a line of this kind (when its amount is
/// positive): fees, usage and proration charges; never credits.
bool is_discountable(line_kind kind) noexcept;

/// A line as the caller prices it. `amount` is the line total (not a unit
/// price; `quantity` is for display), negative for credits.
struct invoice_line_input {
  line_kind kind;
  std::string description;
  std::int64_t quantity = 1; // >= 0
  money amount;
  std::optional<billing_period> period; // start < end when present
  bool taxable = true;
};

/// A fraction of the discountable amount, in ppm (10% = 100'000).
struct percent_off {
  std::int64_t off_ppm;
};

/// A fixed amount, capped at what is left to discount.
struct amount_off {
  money amount;
};

/// A coupon applied before tax. Several apply in order, each to what the
/// previous ones left.
struct invoice_discount {
  std::string description;
  std::variant<percent_off, amount_off> value;
};

struct invoice_input {
  recur::currency currency;
  std::vector<invoice_line_input> lines;
  std::vector<invoice_discount> discounts;
  tax_mode mode = tax_mode::exclusive;
  std::int64_t rate_ppm = 0;
  bool tax_exempt = false;
};

/// A computed line. For an input line, net/tax/gross are what the customer is
/// charged for it after its share of the discounts (in inclusive mode the
/// discounted amount is the gross; in exclusive mode it is the net). A
/// discount line has amount = minus the discount and net = tax = gross = 0:
/// its effect is already in the lines it was allocated to.
struct invoice_line {
  line_kind kind;
  std::string description;
  std::int64_t quantity;
  money amount;   // as given; for a discount line, minus the discount
  money discount; // >= 0: the discounts allocated to this line
  std::optional<billing_period> period;
  bool taxable;
  money net;
  money tax;
  money gross;
};

/// The input lines in order, then one discount line per discount, and totals:
///   subtotal   = sum of input line amounts (before discount)
///   total      = sum of gross = net_total + tax_total
///   exclusive: total = subtotal - discount_total + tax_total
///   inclusive: total = subtotal - discount_total
///   amount_due = max(total, 0), ending_credit = max(-total, 0)
struct computed_invoice {
  std::vector<invoice_line> lines;
  money subtotal;
  money discount_total;
  money net_total;
  money tax_total;
  money total;
  money amount_due;
  money ending_credit; // what a credit note leaves the customer
};

inline constexpr std::size_t invoice_lines_max = 10'000;
inline constexpr std::size_t invoice_discounts_max = 16;

/// Computes lines and totals. Errors: a line or amount_off in another
/// currency (`currency_mismatch`); input of kind `discount`, a negative
/// quantity, a positive proration credit, a rate or percent outside
/// [0, 10^6] ppm, or more than the limits above (`invalid_argument`); a
/// negative amount_off (`negative_amount`); a period with end <= start
/// (`invalid_period`); any sum that leaves int64 (`amount_overflow`).
result<computed_invoice> compute_invoice(const invoice_input& input);

} // namespace recur
