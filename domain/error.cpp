#include "domain/error.hpp"

namespace recur {

std::string_view to_string(errc code) noexcept {
  switch (code) {
    case errc::invalid_argument: return "invalid_argument";
    case errc::unknown_currency: return "unknown_currency";
    case errc::currency_mismatch: return "currency_mismatch";
    case errc::amount_overflow: return "amount_overflow";
    case errc::negative_amount: return "negative_amount";
    case errc::unbalanced_transaction: return "unbalanced_transaction";
    case errc::no_price_version: return "no_price_version";
    case errc::invalid_price: return "invalid_price";
    case errc::invalid_period: return "invalid_period";
    case errc::invalid_transition: return "invalid_transition";
    case errc::invalid_policy: return "invalid_policy";
    case errc::not_found: return "not_found";
    case errc::unavailable: return "unavailable";
    case errc::version_conflict: return "version_conflict";
    case errc::already_exists: return "already_exists";
    case errc::idempotency_conflict: return "idempotency_conflict";
    case errc::constraint_violation: return "constraint_violation";
    case errc::storage_error: return "storage_error";
  }
  return "unknown_error";
}

} // namespace recur
