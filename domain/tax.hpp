#pragma once
/// Sales tax / VAT: exact exclusive and inclusive splits of an amount at a rate
/// in parts per million, and the per-region rate table with customer exemption.

#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <string_view>

#include "domain/error.hpp"
#include "domain/money.hpp"

namespace recur {

/// One whole in parts per million: a rate of 20% is 200'000 ppm.
inline constexpr std::int64_t ppm_one = 1'000'000;

/// The highest rate accepted (100%); anything above is a data error.
inline constexpr std::int64_t tax_rate_ppm_max = ppm_one;

/// Whether a price already contains its tax (VAT-style) or has it added on top
/// (US sales-tax style).
enum class tax_mode : std::uint8_t { exclusive, inclusive };

std::string_view to_string(tax_mode mode) noexcept;

/// An amount split into its net and tax parts; net + tax == gross exactly.
struct tax_split {
  money net;
  money tax;
  money gross;
};

/// Splits `amount` at `rate_ppm`, rounding half-even exactly once.
/// exclusive: amount is the net; tax = round(net * rate / 10^6).
/// inclusive: amount is the gross; net = round(gross * 10^6 / (10^6 + rate))
///            and tax = gross - net, so the split is exact by construction.
/// Negative amounts (credits) split symmetrically. A rate outside
/// [0, tax_rate_ppm_max] is `invalid_argument`; overflow is `amount_overflow`.
result<tax_split> apply_tax(const money& amount, std::int64_t rate_ppm,
                            tax_mode mode);

/// Who a customer is for tax purposes. An exempt customer pays no tax in either
/// mode: with inclusive prices the whole gross counts as net (the price does
/// not drop, the seller simply owes no tax on it).
struct tax_profile {
  std::string region; // "DE", "US-NY"
  bool exempt = false;
};

/// Tax rates by region code ("DE", "US-NY"). Codes are matched exactly
/// (case-sensitive) and are 1..16 characters of A-Z, 0-9 and '-'.
class tax_table {
public:
  static constexpr std::size_t region_code_length_max = 16;
  static constexpr std::size_t regions_max = 4096;

  // -- mutators ---------------------------------------------------------------

  /// Adds or replaces a region's rate. A malformed code, a rate outside
  /// [0, tax_rate_ppm_max] or a table already at `regions_max` is
  /// `invalid_argument`, and the table is left unchanged.
  status set_rate(std::string_view region, std::int64_t rate_ppm);

  // -- observers --------------------------------------------------------------

  /// The region's rate; an unknown region is `not_found`.
  result<std::int64_t> rate_for(std::string_view region) const;

  /// The rate a customer pays: 0 when exempt (whatever the region, so exempt
  /// customers need no configured region), else the rate of their region.
  result<std::int64_t> rate_for(const tax_profile& customer) const;

  /// apply_tax at the customer's rate.
  result<tax_split> apply(const money& amount, const tax_profile& customer,
                          tax_mode mode) const;

  std::size_t size() const noexcept { return rates_ppm_.size(); }

private:
  std::map<std::string, std::int64_t, std::less<>> rates_ppm_;
};

} // namespace recur
