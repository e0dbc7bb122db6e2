#pragma once
/// The status machine of one charge attempt against a payment gateway, as a
/// transition table driven by gateway outcomes.

#include <array>
#include <cstdint>
#include <string_view>

#include "domain/error.hpp"

namespace recur {

/// `unknown` means the gateway did not answer (timeout): the charge may or may
/// not have happened, so it is resolved by looking the attempt up by its
/// idempotency key or by the gateway's webhook, never by charging again.
enum class attempt_status : std::uint8_t {
  pending,
  succeeded,
  failed_soft,
  failed_hard,
  unknown,
};

/// What the gateway (its charge response, a lookup or a webhook) said.
enum class gateway_outcome : std::uint8_t {
  succeeded,
  processing, // accepted, settles later (asynchronous methods)
  declined_soft,
  declined_hard,
  timed_out,
};

inline constexpr std::array all_attempt_statuses{
  attempt_status::pending,     attempt_status::succeeded,
  attempt_status::failed_soft, attempt_status::failed_hard,
  attempt_status::unknown,
};

inline constexpr std::array all_gateway_outcomes{
  gateway_outcome::succeeded,     gateway_outcome::processing,
  gateway_outcome::declined_soft, gateway_outcome::declined_hard,
  gateway_outcome::timed_out,
};

std::string_view to_string(attempt_status s) noexcept;
std::string_view to_string(gateway_outcome o) noexcept;

/// succeeded, failed_soft and failed_hard: a retry is a new attempt.
bool is_terminal(attempt_status s) noexcept;

/// The status `o` leads to from `from`, or `invalid_transition` naming both.
result<attempt_status> apply(attempt_status from, gateway_outcome o);

} // namespace recur
