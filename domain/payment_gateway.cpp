#include "domain/payment_gateway.hpp"

namespace recur {

std::string_view to_string(charge_status s) noexcept {
  switch (s) {
    case charge_status::succeeded:
      return "succeeded";
    case charge_status::pending:
      return "pending";
    case charge_status::declined:
      return "declined";
    case charge_status::unknown:
      return "unknown";
  }
  return "unknown_charge_status";
}

} // namespace recur
