#pragma once
/// The CAF face of the store writer (actors/store_writer.hpp): its messages
/// and its spawn function. Only actors/*.cpp and tests include it.
///
/// Messages the writer handles:
///   (commit_atom, recur::unit_of_work)        -> recur::commit_reply
///   (commit_many_atom, std::vector<unit_of_work>)
///                                             -> std::vector<commit_reply>
///        each unit committed as if alone (one failing unit fails alone),
///        replies in the order of the units;
///   (stats_atom)                              -> recur::store_writer_stats
/// A store failure is a value in the reply, never a CAF error; callers still
/// pass `request(...).then` an error handler for CAF's own failures (timeout,
/// writer gone). A reply whose error satisfies is_commit_outcome_unknown
/// (sagas/store.hpp) means the unit may be stored: re-read before retrying.
/// That is also what the writer answers for units still in flight when it is
/// shut down.
///
/// In group_commit mode the group_commit_writer's completions run on its own
/// thread and touch no actor state: each one sends the reply back to the
/// actor as a message, and the actor delivers the held response promise in
/// its own context.

#include <vector>

#include <caf/actor.hpp>
#include <caf/actor_system.hpp>
#include <caf/allowed_unsafe_message_type.hpp>
#include <caf/atom.hpp>

#include "actors/store_writer.hpp"
#include "sagas/store.hpp"

namespace recur {

// -- messages -----------------------------------------------------------------

using commit_atom = caf::atom_constant<caf::atom("commit")>;
using commit_many_atom = caf::atom_constant<caf::atom("commit_n")>;
using stats_atom = caf::atom_constant<caf::atom("stats")>;

// -- spawning -----------------------------------------------------------------

/// Spawns a store writer over `st`, which must outlive the actor. In
/// group_commit mode the actor owns a group_commit_writer (and its thread),
/// stopped when the actor terminates.
caf::actor spawn_store_writer(caf::actor_system& sys, store& st,
                              store_writer_config cfg = {});

} // namespace recur

CAF_ALLOW_UNSAFE_MESSAGE_TYPE(recur::unit_of_work)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(std::vector<recur::unit_of_work>)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(recur::commit_reply)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(std::vector<recur::commit_reply>)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(recur::store_writer_stats)
