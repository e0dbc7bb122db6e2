#pragma once
/// The CAF face of the durable timer service (actors/timer_service.hpp): its
/// messages and its spawn function. Only actors/*.cpp and tests include it.
///
/// Messages the service handles:
///   (tick_atom)  -> std::uint64_t  claims now, draining until a claim returns
///                                  fewer than claim_batch_limit timers (or
///                                  drain_rounds_max claims were made), and
///                                  replies with the number delivered; a
///                                  store error ends the tick early (counted
///                                  in stats.errors) and it replies what it
///                                  delivered before the error.
///   (stats_atom) -> timer_service_stats
/// Messages it sends to its delivery target, one per claimed timer, in due
/// order (oldest first), as plain sends that expect no reply:
///   (timer_due_atom, recur::claimed_timer)
/// The target completes the timer in its own unit of work; a timer it does not
/// complete is delivered again once its lease lapses (see timer_service.hpp:
/// handlers must be idempotent).
///
/// Polling: the service claims once when it starts, then every
/// poll_interval_ms; when a poll ends with a backlog it claims again at once.
/// A tick re-arms the poll timer (a generation counter makes the superseded
/// delayed message a no-op, since CAF 0.17 cannot cancel a delayed_send). A
/// store error is logged (one line) and retried at the next poll; it never
/// stops the service. The service monitors its target; once the target is
/// down it claims nothing more (ticks answer 0, stats still answer).
///
/// The service calls the store on its scheduler thread: claims are short
/// (one indexed query), so it does not need a detached thread.

#include <caf/actor.hpp>
#include <caf/actor_system.hpp>
#include <caf/allowed_unsafe_message_type.hpp>
#include <caf/atom.hpp>

#include "actors/timer_service.hpp"
#include "domain/clock.hpp"
#include "sagas/store.hpp"

namespace recur {

// -- messages -----------------------------------------------------------------

using timer_due_atom = caf::atom_constant<caf::atom("timer_due")>;
using tick_atom = caf::atom_constant<caf::atom("tick")>;
using stats_atom = caf::atom_constant<caf::atom("stats")>;

// -- spawning -----------------------------------------------------------------

/// Spawns a timer service. `st` and `clk` must outlive the actor; `target`
/// must be a valid handle. Asserts a valid config (claim_batch_limit > 0,
/// lease_s > 0, poll_interval_ms >= 0, drain_rounds_max > 0).
caf::actor spawn_timer_service(caf::actor_system& sys, store& st, clock& clk,
                               caf::actor target,
                               timer_service_config cfg = {});

} // namespace recur

CAF_ALLOW_UNSAFE_MESSAGE_TYPE(recur::claimed_timer)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(recur::timer_service_stats)
