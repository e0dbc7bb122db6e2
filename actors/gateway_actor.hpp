#pragma once
/// The messages, configuration and statistics of a gateway actor: one actor
/// per payment gateway that bounds how many calls run at once and holds calls
/// back (instead of failing them) while the gateway's circuit is open.
/// CAF-free; the actor itself is spawned through actors/gateway_actor_impl.hpp.

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>

#include "actors/circuit_breaker.hpp"
#include "domain/error.hpp"
#include "domain/payment_gateway.hpp"

namespace recur {

// -- configuration ------------------------------------------------------------

struct gateway_actor_config {
  /// Gateway calls that may run at once; the rest wait in FIFO order.
  std::size_t max_in_flight = 8;
  /// Calls that may wait (queued plus held back by an open circuit); one more
  /// is answered at once with `unavailable` ("gateway queue full").
  std::size_t queue_limit = 10'000;
  /// true: the actor calls the gateway inside its own handler (deterministic
  /// tests with CAF's test_coordinator, fast in-process sandboxes). false: the
  /// calls run on worker actors with their own threads (see gateway_actor.cpp).
  bool inline_calls = false;
  circuit_breaker_config breaker;
};

inline constexpr std::size_t gateway_max_in_flight_max = 256;
inline constexpr std::size_t gateway_queue_limit_max = 1'000'000;

/// `invalid_argument` naming the field unless 1 <= max_in_flight <=
/// gateway_max_in_flight_max, 1 <= queue_limit <= gateway_queue_limit_max and
/// the breaker config is valid.
status validate(const gateway_actor_config& c);

// -- messages -----------------------------------------------------------------

/// A request to the gateway actor; it answers with a `gateway_reply`.
struct gateway_call {
  enum class op : std::uint8_t {
    charge,  // gateway.charge(charge)
    resolve, // settle an unknown/pending charge by its key: retrieve(key), and
             // charge(charge) under the same key if it was never processed
    refund,  // gateway.refund(refund)
  };

  op kind = op::charge;
  charge_request charge = placeholder_charge(); // for charge and resolve
  refund_request refund = placeholder_refund(); // for refund

  static gateway_call make_charge(charge_request req);
  static gateway_call make_resolve(charge_request req);
  static gateway_call make_refund(refund_request req);

  /// The idempotency key of the request `kind` names.
  const std::string& idempotency_key() const noexcept;

  /// Empty requests for the member `kind` does not use (money has no default).
  static charge_request placeholder_charge();
  static refund_request placeholder_refund();
};

/// The answer to a `gateway_call`: exactly one of `charge`, `refund`, `error`
/// is set. `charge` answers charge and resolve, `refund` answers refund.
struct gateway_reply {
  gateway_call::op kind = gateway_call::op::charge; // echo
  std::string idempotency_key;                      // echo
  std::optional<charge_result> charge;
  std::optional<refund_result> refund;
  std::optional<recur::error> error;
};

/// "charge", "resolve", "refund".
std::string_view to_string(gateway_call::op kind) noexcept;

/// Runs `call` against `gw` on the calling thread and says what happened.
/// This is all the actor does per call, inline or on a worker.
gateway_reply perform_gateway_call(payment_gateway& gw,
                                   const gateway_call& call);

/// Whether the reply counts against the circuit (see is_breaker_failure).
bool is_breaker_failure(const gateway_reply& reply) noexcept;

// -- statistics ---------------------------------------------------------------

/// What `(stats_atom)` answers.
struct gateway_actor_stats {
  std::size_t in_flight = 0;  // gateway calls running now
  std::size_t queued = 0;     // calls waiting (queue or open circuit)
  std::uint64_t requests = 0; // gateway_call messages received
  std::uint64_t calls = 0; // calls sent to the gateway (a retry counts again)
  std::uint64_t successes = 0; // calls whose outcome proved the gateway works
  std::uint64_t failures = 0;  // calls that counted against the circuit
  std::uint64_t requeued = 0;  // failed calls held back for a retry
  std::uint64_t rejected = 0;  // calls refused because the queue was full
  breaker_state breaker = breaker_state::closed;
  std::int64_t times_opened = 0;
};

} // namespace recur
