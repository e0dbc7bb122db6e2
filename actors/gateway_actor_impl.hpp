#pragma once
/// The CAF side of the gateway actor: its atoms, the message types it lets CAF
/// carry, and the function that spawns it. Only actors/*.cpp and tests include
/// this header; everything else sees actors/gateway_actor.hpp.
///
/// Protocol:
///   gateway_call  -> gateway_reply         (held while the circuit is open)
///   (stats_atom)  -> gateway_actor_stats
///   (tick_atom)   -> void                  (re-check the circuit now)

#include <caf/actor.hpp>
#include <caf/actor_system.hpp>
#include <caf/allowed_unsafe_message_type.hpp>
#include <caf/atom.hpp>

#include "actors/gateway_actor.hpp"
#include "domain/clock.hpp"
#include "domain/payment_gateway.hpp"

namespace recur {

// The same aliases as other actors' (timer service, store writer) declare:
// redeclaring an alias to the same type is allowed, so the headers mix.
using stats_atom = caf::atom_constant<caf::atom("stats")>;
using tick_atom = caf::atom_constant<caf::atom("tick")>;

/// Spawns the actor for `gw`. Asserts `validate(cfg)`. `gw` and `clk` must
/// outlive the actor system: in threaded mode a worker may still be inside a
/// gateway call after the actor is gone, and the system waits for it.
caf::actor spawn_gateway_actor(caf::actor_system& sys, payment_gateway& gw,
                               clock& clk, gateway_actor_config cfg);

} // namespace recur

CAF_ALLOW_UNSAFE_MESSAGE_TYPE(recur::gateway_call)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(recur::gateway_reply)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(recur::gateway_actor_stats)
