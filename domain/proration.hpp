#pragma once
/// Proration of a period's amount to the second: shares of a billing period
/// for partial service, plan changes and cancellations.

#include <span>
#include <vector>

#include "domain/error.hpp"
#include "domain/money.hpp"
#include "domain/period.hpp"
#include "domain/time.hpp"

namespace recur {

// Why the cumulative form: with T = period length and R = half-even rounding,
// the share of [from, to) is R(amount * (to - start) / T) minus
// R(amount * (from - start) / T), never R(amount * (to - from) / T). Rounding
// each piece on its own loses or invents a unit (100 over three equal thirds
// gives 33 + 33 + 33 = 99); differencing one rounded running total carries
// the remainder, so ANY partition of the period into consecutive pieces sums
// exactly to `amount`, each piece is one rounding step and is within one
// minor unit of its exact share. R is odd, so credits (negative amounts) are
// the exact mirror image of charges.

/// The share of `amount` for [from, to) within `period`, as described above.
/// `invalid_period` when the period is empty or reversed, when from > to, or
/// when [from, to) is not inside [period.start, period.end].
result<money> prorate(const money& amount, const billing_period& period,
                      instant from, instant to);

/// Splits `amount` at `cuts` into cuts.size() + 1 consecutive shares that sum
/// exactly to `amount`. Cuts must be strictly increasing and strictly inside
/// the period, else `invalid_period`.
result<std::vector<money>> split(const money& amount,
                                 const billing_period& period,
                                 std::span<const instant> cuts);

/// Plan change or cancellation at `at`: the credit owed for the old price's
/// unused rest of the period, i.e. minus prorate(amount, period, at, end).
/// Negative for a positive `amount`, and exact: amount + unused_credit equals
/// prorate(amount, period, start, at), the part actually used. `at` must lie
/// in [start, end], else `invalid_period`.
result<money> unused_credit(const money& amount, const billing_period& period,
                            instant at);

/// Plan change at `at`: the charge for the new price over the rest of the
/// period, i.e. prorate(amount, period, at, end). Positive for a positive
/// `amount`. `at` must lie in [start, end], else `invalid_period`.
result<money> remaining_charge(const money& amount,
                               const billing_period& period, instant at);

} // namespace recur
