#pragma once
/// CAF side of the subscription actors (see subscription_runtime.hpp).
/// Protocol of the registry:
///   subscription_command            -> command_reply (after the commit)
///   (timer_due_atom, claimed_timer) -> routed by payload "subscription";
///       a request is answered after the commit with a command_reply that
///       carries the failure, if any, and no state
///   (recover_atom)                  -> std::uint64_t subscriptions poked:
///       activates every subscription with an unfinished saga, which
///       re-issues its in-flight gateway calls under the same keys
///   (stats_atom)                    -> registry_stats

#include <caf/actor.hpp>
#include <caf/actor_system.hpp>
#include <caf/allowed_unsafe_message_type.hpp>
#include <caf/atom.hpp>

#include "actors/subscription_runtime.hpp"

namespace recur {

using timer_due_atom = caf::atom_constant<caf::atom("timer_due")>;
using stats_atom = caf::atom_constant<caf::atom("stats")>;
using recover_atom = caf::atom_constant<caf::atom("recover")>;
using passivate_atom = caf::atom_constant<caf::atom("passivate")>;
using activate_atom = caf::atom_constant<caf::atom("activate")>;
using idle_atom = caf::atom_constant<caf::atom("idle")>;

/// `writer`: the store writer actor; `gateway`: the gateway actor.
caf::actor spawn_registry(caf::actor_system& sys, const runtime_context* ctx,
                          caf::actor writer, caf::actor gateway);

} // namespace recur

CAF_ALLOW_UNSAFE_MESSAGE_TYPE(recur::subscription_command)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(recur::command_reply)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(recur::registry_stats)
