#pragma once
/// Billing periods and the UTC calendar arithmetic that lays them end to end
/// from an anchor: month-end clamping, leap days, billing cycle days.

#include <cstdint>

#include "domain/error.hpp"
#include "domain/interval.hpp"
#include "domain/time.hpp"

namespace recur {

/// A half-open span of time [start, end) that one invoice line covers.
struct billing_period {
  instant start;
  instant end;

  constexpr std::int64_t length_s() const {
    return seconds_between(start, end);
  }

  /// The start belongs to the period, the end to the next one.
  constexpr bool contains(instant t) const { return start <= t && t < end; }

  friend constexpr bool operator==(const billing_period&, const billing_period&)
      = default;
};

/// The longest interval accepted, as Stripe does: 3 years, 36 months,
/// 156 weeks or 1095 days. Longer schedules are almost always input mistakes.
inline constexpr std::int32_t max_interval_years = 3;

/// Whether an interval can drive a schedule: 1 <= count <= the 3-year limit.
/// Otherwise `invalid_period`.
status validate(const billing_interval& interval);

/// A billing schedule. The anchor instant fixes the day of month and the time
/// of day of every boundary; boundary 0 is the anchor itself.
struct billing_anchor {
  instant anchor;
  billing_interval interval;

  friend bool operator==(const billing_anchor&, const billing_anchor&)
      = default;
};

/// A checked schedule: `invalid_period` when the interval does not validate.
result<billing_anchor> make_billing_anchor(instant anchor,
                                           billing_interval interval);

// Preconditions of the functions below (programmer errors, asserted):
// interval.count >= 1, and every boundary they compute lies in years
// 1..9999, the calendar that time.hpp converts and parse_iso8601 accepts.

/// The start of period n (n < 0 counts back before the anchor).
/// Months and years step from the anchor, never from the previous boundary,
/// and clamp the day to the month: Jan 31 -> Feb 28/29 -> Mar 31 -> Apr 30.
/// Days and weeks are exact multiples of 86,400 s. Time of day is preserved.
instant boundary(const billing_anchor& schedule, std::int64_t n);

/// Period n: [boundary(n), boundary(n + 1)).
billing_period period_at(const billing_anchor& schedule, std::int64_t n);

/// The n with boundary(n) <= t < boundary(n + 1), in O(1). An instant before
/// the anchor yields a negative n (not an error), so the periods tile the
/// whole timeline.
std::int64_t period_index(const billing_anchor& schedule, instant t);

/// The period that contains t, i.e. period_at(period_index(t)).
billing_period period_containing(const billing_anchor& schedule, instant t);

/// Kill Bill style billing cycle day: the first instant >= start whose day of
/// month is `billing_day` (1..31, clamped to short months), at start's time of
/// day. Keeping the time of day means a customer who starts on their billing
/// day is billed from `start` itself instead of almost a month later.
/// A billing day outside 1..31 is `invalid_argument`.
result<instant> anchor_on_billing_day(instant start, std::int32_t billing_day);

/// A schedule whose boundaries fall on `billing_day` and one of whose
/// boundaries is anchor_on_billing_day(start, billing_day).
/// Why not simply anchor there: a clamped anchor (billing day 31, start in
/// February -> Feb 28) would fix day 28 for every later month. This picks the
/// anchor from an earlier month that really has `billing_day` when one exists,
/// so the schedule returns to the 31st. Day and week intervals just anchor at
/// the first boundary.
result<billing_anchor> schedule_on_billing_day(instant start,
                                               std::int32_t billing_day,
                                               billing_interval interval);

} // namespace recur
