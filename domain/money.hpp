#pragma once
/// Money as int64 minor units of an ISO-4217 currency, with checked arithmetic.
/// No floating point anywhere in a money path.

#include <array>
#include <cstdint>
#include <string>
#include <string_view>

#include "domain/error.hpp"

namespace recur {

/// An ISO-4217 currency: its three-letter code and its minor-unit exponent
/// (JPY 0, USD 2, BHD 3). Only currencies in Recur's table can be made.
class currency {
public:
  /// Looks up an upper-case ISO-4217 code; unknown codes are `unknown_currency`.
  static result<currency> from_code(std::string_view code);

  /// For tables and tests where the code is known to be valid (asserts).
  static currency of(std::string_view code);

  std::string_view code() const noexcept { return {code_.data(), 3}; }
  std::int32_t exponent() const noexcept { return exponent_; }

  /// 10^exponent: how many minor units make one major unit.
  std::int64_t minor_per_major() const noexcept;

  friend bool operator==(const currency& a, const currency& b) {
    return a.code_ == b.code_;
  }

private:
  currency(std::array<char, 3> code, std::int32_t exponent)
    : code_(code), exponent_(exponent) {}

  std::array<char, 3> code_;
  std::int32_t exponent_;
};

/// An amount in minor units of one currency. Arithmetic is checked: overflow
/// and currency mismatch are typed errors, never silent.
class money {
public:
  money(std::int64_t amount_minor, recur::currency cur)
    : amount_minor_(amount_minor), currency_(cur) {}

  static money zero(recur::currency cur) { return money{0, cur}; }

  // -- properties -------------------------------------------------------------

  std::int64_t amount_minor() const noexcept { return amount_minor_; }
  const recur::currency& currency() const noexcept { return currency_; }
  bool is_zero() const noexcept { return amount_minor_ == 0; }
  bool is_negative() const noexcept { return amount_minor_ < 0; }
  bool is_positive() const noexcept { return amount_minor_ > 0; }

  // -- checked arithmetic -----------------------------------------------------

  result<money> plus(const money& other) const;
  result<money> minus(const money& other) const;
  result<money> times(std::int64_t factor) const;
  result<money> negated() const;

  // -- display ----------------------------------------------------------------

  /// For people only, never parsed back: "12.34 USD", "-0.005 BHD", "1234 JPY".
  std::string to_display() const;

  friend bool operator==(const money& a, const money& b) {
    return a.amount_minor_ == b.amount_minor_ && a.currency_ == b.currency_;
  }

private:
  std::int64_t amount_minor_;
  recur::currency currency_;
};

/// Sum of amounts that must all share `cur`; an empty span sums to zero.
template <class Range>
result<money> sum(const Range& amounts, recur::currency cur) {
  money total = money::zero(cur);
  for (const money& m : amounts) {
    auto next = total.plus(m);
    if (!next)
      return next;
    total = *next;
  }
  return total;
}

} // namespace recur
