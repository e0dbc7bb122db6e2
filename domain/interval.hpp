#pragma once
/// A billing interval: a calendar unit times a count ("every 3 months").

#include <array>
#include <cstdint>
#include <optional>
#include <string_view>

namespace recur {

enum class interval_unit : std::uint8_t { day, week, month, year };

inline constexpr std::array all_interval_units{
  interval_unit::day, interval_unit::week, interval_unit::month,
  interval_unit::year};

/// "day", "week", "month", "year".
std::string_view to_string(interval_unit u) noexcept;

/// The unit to_string spells as `s`; nullopt for anything else.
std::optional<interval_unit> interval_unit_from(std::string_view s) noexcept;

struct billing_interval {
  interval_unit unit = interval_unit::month;
  std::int32_t count = 1; // >= 1

  friend bool operator==(const billing_interval&, const billing_interval&)
    = default;
};

} // namespace recur
