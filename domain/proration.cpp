#include "domain/proration.hpp"

#include "domain/arith.hpp"

namespace recur {

namespace {

status check_period(const billing_period& period) {
  if (period.length_s() <= 0)
    return make_error(errc::invalid_period, "billing period is empty");
  return {};
}

status check_span(const billing_period& period, instant from, instant to) {
  if (auto ok = check_period(period); !ok)
    return ok;
  if (from > to || from < period.start || to > period.end)
    return make_error(errc::invalid_period,
                      "proration span must lie inside the billing period");
  return {};
}

// The running total R(amount * elapsed / T) at `t`. |result| <= |amount|, so
// it always fits int64; the product needs 128 bits.
int128 cumulative(const money& amount, const billing_period& period,
                  instant t) {
  return div_round_half_even(int128{amount.amount_minor()}
                                 * seconds_between(period.start, t),
                             period.length_s());
}

// Callers have checked the span, so the difference of two running totals of
// the same sign is bounded by |amount| and cannot overflow.
money share(const money& amount, const billing_period& period, instant from,
            instant to) {
  const int128 diff
      = cumulative(amount, period, to) - cumulative(amount, period, from);
  return money{static_cast<std::int64_t>(diff), amount.currency()};
}

} // namespace

result<money> prorate(const money& amount, const billing_period& period,
                      instant from, instant to) {
  if (auto ok = check_span(period, from, to); !ok)
    return ok.error();
  return share(amount, period, from, to);
}

result<std::vector<money>> split(const money& amount,
                                 const billing_period& period,
                                 std::span<const instant> cuts) {
  if (auto ok = check_period(period); !ok)
    return ok.error();
  instant previous = period.start;
  for (instant cut : cuts) {
    if (cut <= previous || cut >= period.end)
      return make_error(errc::invalid_period,
                        "cuts must increase strictly inside the period");
    previous = cut;
  }
  std::vector<money> pieces;
  pieces.reserve(cuts.size() + 1);
  previous = period.start;
  for (instant cut : cuts) {
    pieces.push_back(share(amount, period, previous, cut));
    previous = cut;
  }
  pieces.push_back(share(amount, period, previous, period.end));
  return pieces;
}

result<money> unused_credit(const money& amount, const billing_period& period,
                            instant at) {
  auto rest = remaining_charge(amount, period, at);
  if (!rest)
    return rest;
  // Overflows only for the one amount whose negation does not fit int64.
  return rest->negated();
}

result<money> remaining_charge(const money& amount,
                               const billing_period& period, instant at) {
  return prorate(amount, period, at, period.end);
}

} // namespace recur
