#include "domain/tax.hpp"

#include "domain/arith.hpp"

namespace recur {

namespace {

bool valid_rate(std::int64_t rate_ppm) {
  return rate_ppm >= 0 && rate_ppm <= tax_rate_ppm_max;
}

bool valid_region_code(std::string_view code) {
  if (code.empty() || code.size() > tax_table::region_code_length_max)
    return false;
  for (char c : code) {
    const bool ok = (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-';
    if (!ok)
      return false;
  }
  return true;
}

error bad_rate(std::int64_t rate_ppm) {
  return make_error(errc::invalid_argument,
                    "tax rate " + std::to_string(rate_ppm)
                      + " ppm is outside [0, 1000000]");
}

} // namespace

std::string_view to_string(tax_mode mode) noexcept {
  switch (mode) {
    case tax_mode::exclusive: return "exclusive";
    case tax_mode::inclusive: return "inclusive";
  }
  return "unknown";
}

result<tax_split> apply_tax(const money& amount, std::int64_t rate_ppm,
                            tax_mode mode) {
  if (!valid_rate(rate_ppm))
    return bad_rate(rate_ppm);
  const recur::currency cur = amount.currency();
  const int128 a = amount.amount_minor();
  if (mode == tax_mode::exclusive) {
    // |a * rate| <= 2^63 * 10^6 < 2^83: exact in 128 bits.
    const auto tax = narrow_to_int64(div_round_half_even(a * rate_ppm, ppm_one));
    if (!tax)
      return tax.error();
    const money tax_m{*tax, cur};
    auto gross = amount.plus(tax_m);
    if (!gross)
      return gross.error();
    return tax_split{amount, tax_m, *gross};
  }
  // |net| <= |gross|, so neither the net nor gross - net can overflow; the
  // checked calls stay for uniformity.
  const auto net = narrow_to_int64(
    div_round_half_even(a * ppm_one, ppm_one + rate_ppm));
  if (!net)
    return net.error();
  const money net_m{*net, cur};
  auto tax = amount.minus(net_m);
  if (!tax)
    return tax.error();
  return tax_split{net_m, *tax, amount};
}

status tax_table::set_rate(std::string_view region, std::int64_t rate_ppm) {
  if (!valid_region_code(region))
    return make_error(errc::invalid_argument,
                      "malformed tax region code '" + std::string{region} + "'");
  if (!valid_rate(rate_ppm))
    return bad_rate(rate_ppm);
  auto it = rates_ppm_.find(region);
  if (it != rates_ppm_.end()) {
    it->second = rate_ppm;
    return {};
  }
  if (rates_ppm_.size() >= regions_max)
    return make_error(errc::invalid_argument, "tax table is full");
  rates_ppm_.emplace(std::string{region}, rate_ppm);
  return {};
}

result<std::int64_t> tax_table::rate_for(std::string_view region) const {
  auto it = rates_ppm_.find(region);
  if (it == rates_ppm_.end())
    return make_error(errc::not_found,
                      "no tax rate for region '" + std::string{region} + "'");
  return it->second;
}

result<std::int64_t> tax_table::rate_for(const tax_profile& customer) const {
  if (customer.exempt)
    return std::int64_t{0};
  return rate_for(std::string_view{customer.region});
}

result<tax_split> tax_table::apply(const money& amount,
                                   const tax_profile& customer,
                                   tax_mode mode) const {
  auto rate = rate_for(customer);
  if (!rate)
    return rate.error();
  return apply_tax(amount, *rate, mode);
}

} // namespace recur
