#pragma once
/// A billing interval: a calendar unit times a count ("every 3 months").

#include <cstdint>
#include <string_view>

namespace recur {

enum class interval_unit : std::uint8_t { day, week, month, year };

std::string_view to_string(interval_unit u) noexcept;

struct billing_interval {
  interval_unit unit = interval_unit::month;
  std::int32_t count = 1; // >= 1

  friend bool operator==(const billing_interval&, const billing_interval&)
    = default;
};

} // namespace recur
