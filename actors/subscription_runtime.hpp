#pragma once
/// The subscription actors' shared context and message values, CAF-free.
///
/// Design (actors/README.md has the picture):
/// - A registry actor owns the map (tenant, subscription) -> subscription
///   actor. It spawns an actor on the first message for a subscription
///   (activation: snapshot or last event + its live sagas from the store) and
///   forwards commands, durable timers and recovery pokes to it.
/// - A subscription actor hosts its sagas and serialises everything for its
///   subscription: it runs the pure engine (sagas/subscription.hpp), commits
///   the unit of work through the store writer and waits for the commit
///   before it looks at its next message, replies after the commit, then
///   issues the gateway calls through the gateway actor; their outcomes come
///   back to it as inputs.
/// - Idle actors passivate: the registry sweeps its map every half
///   `idle_passivation_ms` and asks the actors it forwarded nothing to for one
///   to one and a half idle periods; one with no gateway call or retry pending
///   answers, and the registry stops it only if it has forwarded nothing
///   since its question, so no message is lost. A busy one is asked again
///   an idle period later.

#include <array>
#include <atomic>
#include <cstdint>
#include <functional>
#include <optional>
#include <string_view>

#include "domain/clock.hpp"
#include "domain/error.hpp"
#include "domain/ids.hpp"
#include "sagas/store.hpp"
#include "sagas/subscription.hpp"

namespace recur {

/// What a gateway call came back with, for /metrics: a charge (or its
/// resolution by key) succeeded, is pending, was declined softly or hard, or
/// its outcome is unknown (a timeout); a refund went through; or the call
/// failed (the gateway refused the request or could not be reached).
enum class gateway_outcome : std::uint8_t {
  succeeded,
  pending,
  declined_soft,
  declined_hard,
  unknown,
  refunded,
  error
};
inline constexpr std::size_t gateway_outcome_count = 7;
inline constexpr std::size_t gateway_op_count = 3; // gateway_call_request::op

inline std::string_view to_string(gateway_outcome o) noexcept {
  switch (o) {
    case gateway_outcome::succeeded: return "succeeded";
    case gateway_outcome::pending: return "pending";
    case gateway_outcome::declined_soft: return "declined_soft";
    case gateway_outcome::declined_hard: return "declined_hard";
    case gateway_outcome::unknown: return "unknown";
    case gateway_outcome::refunded: return "refunded";
    case gateway_outcome::error: return "error";
  }
  return "error";
}

inline std::string_view to_string(gateway_call_request::op k) noexcept {
  switch (k) {
    case gateway_call_request::op::charge: return "charge";
    case gateway_call_request::op::resolve: return "resolve";
    case gateway_call_request::op::refund: return "refund";
  }
  return "charge";
}

/// The subscription a durable timer belongs to: the string member
/// "subscription" of its JSON payload, or nullopt when the payload is not an
/// object with one. The registry routes every timer by it; the payloads of
/// lifecycle timers are exactly {"subscription":"<id>"} and are read without
/// a JSON parse.
std::optional<std::string> timer_subscription(std::string_view payload_json);

/// The outcome of one answered call from the parts of its reply.
inline gateway_outcome
outcome_of(const std::optional<charge_result>& charge,
           const std::optional<refund_result>& refund, bool failed) noexcept {
  if (failed)
    return gateway_outcome::error;
  if (refund)
    return gateway_outcome::refunded;
  if (!charge)
    return gateway_outcome::error;
  switch (charge->status) {
    case charge_status::succeeded: return gateway_outcome::succeeded;
    case charge_status::pending: return gateway_outcome::pending;
    case charge_status::declined:
      return charge->decline == decline_class::hard
               ? gateway_outcome::declined_hard
               : gateway_outcome::declined_soft;
    case charge_status::unknown: return gateway_outcome::unknown;
  }
  return gateway_outcome::error;
}

/// Counters the runtime keeps (read them any time; each is atomic).
struct runtime_counters {
  std::atomic<std::uint64_t> activations{0};
  std::atomic<std::uint64_t> passivations{0};
  std::atomic<std::int64_t> live_actors{0};
  std::atomic<std::uint64_t> inputs{0};
  std::atomic<std::uint64_t> rejected{0};   // inputs the engine refused
  std::atomic<std::uint64_t> commits{0};
  std::atomic<std::uint64_t> commit_failures{0};
  std::atomic<std::uint64_t> gateway_calls{0};
  std::atomic<std::uint64_t> sagas_started{0};
  std::atomic<std::uint64_t> sagas_completed{0};
  std::atomic<std::uint64_t> sagas_compensated{0};
  std::atomic<std::uint64_t> sagas_failed{0};
  /// Answered gateway calls by [gateway_call_request::op][gateway_outcome].
  std::array<std::array<std::atomic<std::uint64_t>, gateway_outcome_count>,
             gateway_op_count>
    gateway_outcomes{};
  /// Inputs forwarded to subscription actors, gateway calls and retries not
  /// finished yet: 0 when the runtime has settled (nothing left to do until a
  /// timer falls due or a command arrives).
  std::atomic<std::int64_t> in_progress{0};
};

/// What every subscription actor shares; outlives the actor system.
struct runtime_context {
  store* db = nullptr;
  clock* clk = nullptr;
  /// The tenant's billing settings (plans, taxes, ladder, retry policy);
  /// nullptr for an unknown tenant. Called from many actors at once.
  std::function<const billing_env*(const tenant_id&)> env_for;
  std::uint64_t seed = 1; // each input's generator derives from it, the
                          // subscription and its version
  std::int64_t idle_passivation_ms = 60'000; // 0: never passivate
  runtime_counters* counters = nullptr;      // optional
  /// true: subscription actors call db->commit themselves instead of going
  /// through the store writer. Only for stores whose commits never wait on
  /// I/O (the in-memory store): it saves two messages and a serialisation
  /// point per commit. Commits stay serialised per subscription either way.
  bool commit_in_actor = false;
  /// Optional: a tenant's own clock (test-mode tenants run on a test clock);
  /// nullptr from it, or no function, means `clk`.
  std::function<clock*(const tenant_id&)> clock_for;
};

/// A command (or any input) for one subscription.
struct subscription_command {
  tenant_id tenant;
  subscription_id subscription;
  subscription_input input;
};

/// The answer to a command: the state after its events were committed, or
/// why nothing changed.
struct command_reply {
  std::optional<error> failure;
  subscription_state state;
  bool ok() const noexcept { return !failure.has_value(); }
};

struct registry_stats {
  std::int64_t actors = 0;
  std::uint64_t forwarded = 0;
};

} // namespace recur
