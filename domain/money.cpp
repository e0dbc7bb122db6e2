#include "domain/money.hpp"

#include <algorithm>
#include <iterator>
#include <limits>
#include <string_view>

namespace recur {

namespace {

struct currency_row {
  const char* code;
  std::int32_t exponent;
};

// ISO-4217 active currencies Recur accepts, with their minor-unit exponents.
constexpr currency_row currency_table[] = {
  {"AED", 2}, {"ARS", 2}, {"AUD", 2}, {"BGN", 2}, {"BHD", 3}, {"BRL", 2},
  {"CAD", 2}, {"CHF", 2}, {"CLP", 0}, {"CNY", 2}, {"COP", 2}, {"CZK", 2},
  {"DKK", 2}, {"EGP", 2}, {"EUR", 2}, {"GBP", 2}, {"HKD", 2}, {"HUF", 2},
  {"IDR", 2}, {"ILS", 2}, {"INR", 2}, {"IQD", 3}, {"ISK", 0}, {"JOD", 3},
  {"JPY", 0}, {"KES", 2}, {"KRW", 0}, {"KWD", 3}, {"LYD", 3}, {"MAD", 2},
  {"MXN", 2}, {"MYR", 2}, {"NGN", 2}, {"NOK", 2}, {"NZD", 2}, {"OMR", 3},
  {"PEN", 2}, {"PHP", 2}, {"PKR", 2}, {"PLN", 2}, {"QAR", 2}, {"RON", 2},
  {"SAR", 2}, {"SEK", 2}, {"SGD", 2}, {"THB", 2}, {"TND", 3}, {"TRY", 2},
  {"TWD", 2}, {"UAH", 2}, {"UGX", 0}, {"USD", 2}, {"VND", 0}, {"XAF", 0},
  {"XOF", 0}, {"ZAR", 2},
};

constexpr std::string_view code_of(const currency_row& row) {
  return {row.code, 3};
}

/// from_code searches the table by halves: it must stay in strict code order.
static_assert(std::adjacent_find(std::begin(currency_table),
                                 std::end(currency_table),
                                 [](const currency_row& a, const currency_row& b) {
                                   return !(code_of(a) < code_of(b));
                                 })
                == std::end(currency_table),
              "currency_table must be sorted by code, without repeats");

std::int64_t pow10(std::int32_t e) {
  std::int64_t r = 1;
  for (std::int32_t i = 0; i < e; ++i)
    r *= 10;
  return r;
}

error mismatch(const money& a, const money& b) {
  return make_error(errc::currency_mismatch,
                    std::string{a.currency().code()} + " vs "
                      + std::string{b.currency().code()});
}

error overflow(const char* op) {
  return make_error(errc::amount_overflow,
                    std::string{"int64 overflow in money "} + op);
}

} // namespace

result<currency> currency::from_code(std::string_view code) {
  // The table is in code order: a binary search over three-letter codes,
  // with no strlen per row (a lookup is on every money read of a state).
  if (code.size() == 3) {
    const auto* end = std::end(currency_table);
    const auto* it = std::lower_bound(
      std::begin(currency_table), end, code,
      [](const currency_row& row, std::string_view c) {
        return code_of(row) < c;
      });
    if (it != end && code_of(*it) == code)
      return currency{{it->code[0], it->code[1], it->code[2]}, it->exponent};
  }
  return make_error(errc::unknown_currency,
                    "unknown ISO-4217 currency '" + std::string{code} + "'");
}

currency currency::of(std::string_view code) {
  auto c = from_code(code);
  RECUR_ASSERT(c.has_value());
  return *c;
}

std::int64_t currency::minor_per_major() const noexcept {
  return pow10(exponent_);
}

result<money> money::plus(const money& other) const {
  if (!(currency_ == other.currency_))
    return mismatch(*this, other);
  std::int64_t out = 0;
  if (__builtin_add_overflow(amount_minor_, other.amount_minor_, &out))
    return overflow("addition");
  return money{out, currency_};
}

result<money> money::minus(const money& other) const {
  if (!(currency_ == other.currency_))
    return mismatch(*this, other);
  std::int64_t out = 0;
  if (__builtin_sub_overflow(amount_minor_, other.amount_minor_, &out))
    return overflow("subtraction");
  return money{out, currency_};
}

result<money> money::times(std::int64_t factor) const {
  std::int64_t out = 0;
  if (__builtin_mul_overflow(amount_minor_, factor, &out))
    return overflow("multiplication");
  return money{out, currency_};
}

result<money> money::negated() const {
  if (amount_minor_ == std::numeric_limits<std::int64_t>::min())
    return overflow("negation");
  return money{-amount_minor_, currency_};
}

std::string money::to_display() const {
  const bool neg = amount_minor_ < 0;
  // Work in unsigned so that INT64_MIN displays correctly.
  const std::uint64_t mag = neg ? 0 - static_cast<std::uint64_t>(amount_minor_)
                                : static_cast<std::uint64_t>(amount_minor_);
  const auto unit = static_cast<std::uint64_t>(currency_.minor_per_major());
  std::string out = neg ? "-" : "";
  out += std::to_string(mag / unit);
  if (currency_.exponent() > 0) {
    std::string frac = std::to_string(mag % unit);
    out += '.';
    out.append(static_cast<std::size_t>(currency_.exponent()) - frac.size(), '0');
    out += frac;
  }
  out += ' ';
  out += currency_.code();
  return out;
}

} // namespace recur
