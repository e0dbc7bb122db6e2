#include "workflows/payment_attempt.hpp"

#include <string>

namespace recur {

namespace {

struct row {
  attempt_status from;
  gateway_outcome on;
  attempt_status to;
};

using st = attempt_status;
using out = gateway_outcome;

// Additions to ARCHITECTURE.md §4:
//  * pending + processing stays pending (explicit, so an async "accepted"
//    answer is not mistaken for an error).
//  * unknown + timed_out and unknown + processing stay unknown: a lookup that
//    itself times out, or says the charge is still settling, resolves nothing;
//    the attempt waits for the next lookup or the webhook. unknown never goes
//    back to pending, so nothing can re-send the charge.
// Terminal statuses have no rows.
// clang-format off
constexpr row table[] = {
  // from          outcome             to
  {st::pending,    out::succeeded,     st::succeeded},
  {st::pending,    out::processing,    st::pending},
  {st::pending,    out::declined_soft, st::failed_soft},
  {st::pending,    out::declined_hard, st::failed_hard},
  {st::pending,    out::timed_out,     st::unknown},

  {st::unknown,    out::succeeded,     st::succeeded},
  {st::unknown,    out::processing,    st::unknown},
  {st::unknown,    out::declined_soft, st::failed_soft},
  {st::unknown,    out::declined_hard, st::failed_hard},
  {st::unknown,    out::timed_out,     st::unknown},
};
// clang-format on

} // namespace

std::string_view to_string(attempt_status s) noexcept {
  switch (s) {
    case st::pending: return "pending";
    case st::succeeded: return "succeeded";
    case st::failed_soft: return "failed_soft";
    case st::failed_hard: return "failed_hard";
    case st::unknown: return "unknown";
  }
  return "unknown_attempt_status";
}

std::string_view to_string(gateway_outcome o) noexcept {
  switch (o) {
    case out::succeeded: return "succeeded";
    case out::processing: return "processing";
    case out::declined_soft: return "declined_soft";
    case out::declined_hard: return "declined_hard";
    case out::timed_out: return "timed_out";
  }
  return "unknown_gateway_outcome";
}

bool is_terminal(attempt_status s) noexcept {
  return s == st::succeeded || s == st::failed_soft || s == st::failed_hard;
}

result<attempt_status> apply(attempt_status from, gateway_outcome o) {
  for (const row& r : table) {
    if (r.from == from && r.on == o)
      return r.to;
  }
  return make_error(errc::invalid_transition,
                    "payment attempt: no transition from "
                      + std::string{to_string(from)} + " on "
                      + std::string{to_string(o)});
}

} // namespace recur
