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

} // namespace recur
