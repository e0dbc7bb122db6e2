#include "domain/time.hpp"

#include <cstdio>

namespace recur {

namespace {

struct civil {
  std::int32_t y, m, d;
};

civil civil_from_days(std::int64_t z) {
  z += 719468;
  const std::int64_t era = (z >= 0 ? z : z - 146096) / 146097;
  const std::int64_t doe = z - era * 146097;
  const std::int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
  const std::int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
  const std::int64_t mp = (5 * doy + 2) / 153;
  const auto d = static_cast<std::int32_t>(doy - (153 * mp + 2) / 5 + 1);
  const auto m = static_cast<std::int32_t>(mp < 10 ? mp + 3 : mp - 9);
  const auto y = static_cast<std::int32_t>(yoe + era * 400 + (m <= 2 ? 1 : 0));
  return {y, m, d};
}

std::int64_t floor_div(std::int64_t a, std::int64_t b) {
  std::int64_t q = a / b;
  if ((a % b != 0) && ((a < 0) != (b < 0)))
    --q;
  return q;
}

bool parse_digits(std::string_view s, std::size_t pos, std::size_t n,
                  std::int32_t& out) {
  out = 0;
  for (std::size_t i = pos; i < pos + n; ++i) {
    if (s[i] < '0' || s[i] > '9')
      return false;
    out = out * 10 + (s[i] - '0');
  }
  return true;
}

} // namespace

bool is_valid(const utc_date_time& t) {
  return t.year >= 1 && t.year <= 9999 && t.month >= 1 && t.month <= 12
         && t.day >= 1 && t.day <= days_in_month(t.year, t.month) && t.hour >= 0
         && t.hour < 24 && t.minute >= 0 && t.minute < 60 && t.second >= 0
         && t.second < 60;
}

instant to_instant(const utc_date_time& t) {
  RECUR_ASSERT(is_valid(t));
  const std::int64_t days = days_from_civil(t.year, t.month, t.day);
  return {days * seconds_per_day + t.hour * seconds_per_hour
          + t.minute * seconds_per_minute + t.second};
}

utc_date_time to_utc(instant t) {
  const std::int64_t days = floor_div(t.unix_s, seconds_per_day);
  const std::int64_t rem = t.unix_s - days * seconds_per_day;
  const civil c = civil_from_days(days);
  return {c.y,
          c.m,
          c.d,
          static_cast<std::int32_t>(rem / seconds_per_hour),
          static_cast<std::int32_t>((rem % seconds_per_hour) / 60),
          static_cast<std::int32_t>(rem % 60)};
}

std::string format_iso8601(instant t) {
  const utc_date_time u = to_utc(t);
  char buf[32];
  std::snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02dZ", u.year,
                u.month, u.day, u.hour, u.minute, u.second);
  return buf;
}

result<instant> parse_iso8601(std::string_view s) {
  auto bad = [&] {
    return make_error(errc::invalid_argument,
                      "expected a UTC timestamp like 2024-02-29T12:00:00Z");
  };
  if (s.size() != 20 || s[4] != '-' || s[7] != '-' || s[10] != 'T'
      || s[13] != ':' || s[16] != ':' || s[19] != 'Z')
    return bad();
  utc_date_time u;
  if (!parse_digits(s, 0, 4, u.year) || !parse_digits(s, 5, 2, u.month)
      || !parse_digits(s, 8, 2, u.day) || !parse_digits(s, 11, 2, u.hour)
      || !parse_digits(s, 14, 2, u.minute) || !parse_digits(s, 17, 2, u.second)
      || !is_valid(u))
    return bad();
  return to_instant(u);
}

instant utc(std::int32_t y, std::int32_t m, std::int32_t d, std::int32_t hh,
            std::int32_t mm, std::int32_t ss) {
  return to_instant({y, m, d, hh, mm, ss});
}

} // namespace recur
