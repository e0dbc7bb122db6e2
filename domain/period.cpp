#include "domain/period.hpp"

#include <algorithm>

#include "domain/arith.hpp"

namespace recur {

namespace {

// The calendar time.hpp converts: 0001-01-01T00:00:00Z .. 9999-12-31T23:59:59Z.
constexpr std::int64_t min_unix_s = days_from_civil(1, 1, 1) * seconds_per_day;
constexpr std::int64_t max_unix_s
    = days_from_civil(10000, 1, 1) * seconds_per_day - 1;

// Months are counted from year 0 so that one integer orders (year, month).
constexpr std::int64_t min_month_index = 12; // year 1, January
constexpr std::int64_t max_month_index = std::int64_t{9999} * 12 + 11;

bool is_calendar_step(interval_unit u) {
  return u == interval_unit::month || u == interval_unit::year;
}

std::int64_t step_months(const billing_interval& iv) {
  return iv.unit == interval_unit::year ? std::int64_t{12} * iv.count
                                        : std::int64_t{iv.count};
}

std::int64_t step_seconds(const billing_interval& iv) {
  const std::int64_t days = iv.unit == interval_unit::week ? 7 : 1;
  return days * seconds_per_day * iv.count;
}

std::int64_t month_index(const utc_date_time& u) {
  return std::int64_t{u.year} * 12 + (u.month - 1);
}

// The instant in month `index` on `day` (clamped to the month's length) at the
// time of day of `tod`.
instant on_month(std::int64_t index, std::int32_t day,
                 const utc_date_time& tod) {
  RECUR_ASSERT(index >= min_month_index && index <= max_month_index);
  const auto year = static_cast<std::int32_t>(index / 12);
  const auto month = static_cast<std::int32_t>(index % 12) + 1;
  return to_instant({year, month, std::min(day, days_in_month(year, month)),
                     tod.hour, tod.minute, tod.second});
}

instant calendar_boundary(const billing_anchor& s, std::int64_t n) {
  const utc_date_time a = to_utc(s.anchor);
  const int128 index
      = int128{month_index(a)} + int128{n} * step_months(s.interval);
  RECUR_ASSERT(index >= min_month_index && index <= max_month_index);
  return on_month(static_cast<std::int64_t>(index), a.day, a);
}

instant fixed_boundary(const billing_anchor& s, std::int64_t n) {
  const int128 t
      = int128{s.anchor.unix_s} + int128{n} * step_seconds(s.interval);
  RECUR_ASSERT(t >= min_unix_s && t <= max_unix_s);
  return {static_cast<std::int64_t>(t)};
}

// floor(months / step) is exact or one too high: boundary(n) lies in month
// anchor + n * step, never after t's month, but may fall later in t's month.
// Boundary n + 1 lies in a later month than t's, so it never is too low.
std::int64_t calendar_index(const billing_anchor& s, instant t) {
  const std::int64_t months
      = month_index(to_utc(t)) - month_index(to_utc(s.anchor));
  std::int64_t n
      = static_cast<std::int64_t>(div_floor(months, step_months(s.interval)));
  if (calendar_boundary(s, n) > t)
    --n;
  return n;
}

status check_billing_day(std::int32_t billing_day) {
  if (billing_day < 1 || billing_day > 31)
    return make_error(errc::invalid_argument, "billing day must be 1..31");
  return {};
}

// The longest a calendar month ever gets (February: 29).
std::int32_t longest_days(std::int32_t month) {
  return days_in_month(2000, month);
}

// The latest month at or before `first`'s, a whole number of steps back, that
// has `billing_day`, so an anchor there re-fixes that day for the schedule.
// Steps of whole years only ever visit one calendar month, so there it is
// enough to find the longest that month gets (a leap February, or Apr 30 for
// day 31). Twelve steps visit every month a step can reach, or cover the
// longest gap between leap years (8 years around 2100); failing that (every
// other year from an odd year never meets Feb 29), `first`'s month is
// already the schedule the day asks for.
std::int64_t earlier_month_with_day(instant first, std::int32_t billing_day,
                                    std::int64_t step) {
  const std::int64_t first_index = month_index(to_utc(first));
  for (std::int64_t k = 0; k < 12; ++k) {
    const std::int64_t index = first_index - k * step;
    if (index < min_month_index)
      break;
    const auto year = static_cast<std::int32_t>(index / 12);
    const auto month = static_cast<std::int32_t>(index % 12) + 1;
    const std::int32_t wanted = step % 12 == 0
                                    ? std::min(billing_day, longest_days(month))
                                    : billing_day;
    if (days_in_month(year, month) >= wanted)
      return index;
  }
  return first_index;
}

} // namespace

status validate(const billing_interval& interval) {
  std::int64_t max_count = 0;
  switch (interval.unit) {
    case interval_unit::day: max_count = std::int64_t{365} * max_interval_years; break;
    case interval_unit::week: max_count = std::int64_t{52} * max_interval_years; break;
    case interval_unit::month: max_count = std::int64_t{12} * max_interval_years; break;
    case interval_unit::year: max_count = max_interval_years; break;
  }
  if (interval.count < 1 || interval.count > max_count)
    return make_error(errc::invalid_period,
                      "interval count must be 1.." + std::to_string(max_count)
                          + " for unit "
                          + std::string{to_string(interval.unit)});
  return {};
}

result<billing_anchor> make_billing_anchor(instant anchor,
                                           billing_interval interval) {
  if (auto ok = validate(interval); !ok)
    return ok.error();
  return billing_anchor{anchor, interval};
}

instant boundary(const billing_anchor& schedule, std::int64_t n) {
  RECUR_ASSERT(schedule.interval.count >= 1);
  return is_calendar_step(schedule.interval.unit)
             ? calendar_boundary(schedule, n)
             : fixed_boundary(schedule, n);
}

billing_period period_at(const billing_anchor& schedule, std::int64_t n) {
  return {boundary(schedule, n), boundary(schedule, n + 1)};
}

std::int64_t period_index(const billing_anchor& schedule, instant t) {
  RECUR_ASSERT(schedule.interval.count >= 1);
  RECUR_ASSERT(t.unix_s >= min_unix_s && t.unix_s <= max_unix_s);
  if (is_calendar_step(schedule.interval.unit))
    return calendar_index(schedule, t);
  const std::int64_t elapsed_s = seconds_between(schedule.anchor, t);
  return static_cast<std::int64_t>(
      div_floor(elapsed_s, step_seconds(schedule.interval)));
}

billing_period period_containing(const billing_anchor& schedule, instant t) {
  return period_at(schedule, period_index(schedule, t));
}

result<instant> anchor_on_billing_day(instant start, std::int32_t billing_day) {
  if (auto ok = check_billing_day(billing_day); !ok)
    return ok.error();
  const utc_date_time u = to_utc(start);
  const instant this_month = on_month(month_index(u), billing_day, u);
  if (this_month >= start)
    return this_month;
  return on_month(month_index(u) + 1, billing_day, u);
}

result<billing_anchor> schedule_on_billing_day(instant start,
                                               std::int32_t billing_day,
                                               billing_interval interval) {
  if (auto ok = validate(interval); !ok)
    return ok.error();
  auto first = anchor_on_billing_day(start, billing_day);
  if (!first)
    return first.error();
  if (!is_calendar_step(interval.unit))
    return billing_anchor{*first, interval};
  const std::int64_t index
      = earlier_month_with_day(*first, billing_day, step_months(interval));
  return billing_anchor{on_month(index, billing_day, to_utc(*first)), interval};
}

} // namespace recur
