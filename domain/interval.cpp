#include "domain/interval.hpp"

namespace recur {

std::string_view to_string(interval_unit u) noexcept {
  switch (u) {
    case interval_unit::day: return "day";
    case interval_unit::week: return "week";
    case interval_unit::month: return "month";
    case interval_unit::year: return "year";
  }
  return "unknown";
}

std::optional<interval_unit> interval_unit_from(std::string_view s) noexcept {
  for (interval_unit u : all_interval_units)
    if (to_string(u) == s)
      return u;
  return std::nullopt;
}

} // namespace recur
