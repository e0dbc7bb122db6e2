#pragma once
/// UTC instants with one-second resolution and proleptic Gregorian calendar
/// arithmetic. Pure: nothing here reads a clock.

#include <compare>
#include <cstdint>
#include <string>
#include <string_view>

#include "domain/error.hpp"

namespace recur {

inline constexpr std::int64_t seconds_per_minute = 60;
inline constexpr std::int64_t seconds_per_hour = 3600;
inline constexpr std::int64_t seconds_per_day = 86400;

/// A point in time: seconds since 1970-01-01T00:00:00Z (no leap seconds).
struct instant {
  std::int64_t unix_s = 0;

  friend constexpr auto operator<=>(instant, instant) = default;
  constexpr instant plus_seconds(std::int64_t s) const { return {unix_s + s}; }
};

/// Seconds from a to b (negative when b < a).
constexpr std::int64_t seconds_between(instant a, instant b) {
  return b.unix_s - a.unix_s;
}

/// A broken-down UTC date and time of day.
struct utc_date_time {
  std::int32_t year = 1970;
  std::int32_t month = 1; // 1..12
  std::int32_t day = 1;   // 1..days_in_month
  std::int32_t hour = 0;
  std::int32_t minute = 0;
  std::int32_t second = 0;

  friend constexpr bool operator==(const utc_date_time&, const utc_date_time&)
    = default;
};

constexpr bool is_leap_year(std::int32_t y) {
  return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

constexpr std::int32_t days_in_month(std::int32_t y, std::int32_t m) {
  constexpr std::int32_t table[] = {31, 28, 31, 30, 31, 30,
                                    31, 31, 30, 31, 30, 31};
  return (m == 2 && is_leap_year(y)) ? 29 : table[m - 1];
}

/// Days since 1970-01-01 of a civil date (H. Hinnant's algorithm).
constexpr std::int64_t days_from_civil(std::int32_t y, std::int32_t m,
                                       std::int32_t d) {
  y -= m <= 2 ? 1 : 0;
  const std::int64_t era = (y >= 0 ? y : y - 399) / 400;
  const std::int64_t yoe = y - era * 400;
  const std::int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
  const std::int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * 146097 + doe - 719468;
}

/// Whether the fields name a real calendar date and time of day.
bool is_valid(const utc_date_time& t);

/// Converts a valid broken-down time to an instant (asserts validity).
instant to_instant(const utc_date_time& t);

/// Breaks an instant into UTC calendar fields.
utc_date_time to_utc(instant t);

/// "2024-02-29T12:00:00Z".
std::string format_iso8601(instant t);

/// Parses exactly "YYYY-MM-DDTHH:MM:SSZ" (UTC only); anything else is
/// `invalid_argument`.
result<instant> parse_iso8601(std::string_view text);

/// Shorthand for tests and tables: to_instant({y, m, d, hh, mm, ss}).
instant utc(std::int32_t y, std::int32_t m, std::int32_t d, std::int32_t hh = 0,
            std::int32_t mm = 0, std::int32_t ss = 0);

} // namespace recur
