#pragma once
/// Configuration, reply and counters of the store writer, the actor through
/// which other actors commit units of work without blocking a scheduler
/// thread. CAF-free: the messages and the spawn function are in
/// actors/store_writer_impl.hpp.

#include <cstddef>
#include <cstdint>
#include <optional>

#include "domain/error.hpp"
#include "persistence/group_commit.hpp"
#include "sagas/store.hpp"

namespace recur {

enum class store_writer_mode : std::uint8_t {
  /// Hand each unit to a group_commit_writer, whose own thread shares store
  /// transactions among concurrent units; the actor answers when the
  /// transaction that carried the unit committed or failed. For stores whose
  /// commits wait on I/O (PostgreSQL). Not for test_coordinator runs: the
  /// answer arrives from the writer's thread.
  group_commit,
  /// Call store::commit inside the message handler. Deterministic (for
  /// test_coordinator runs and simulations) and the fastest path for the
  /// in-memory store, whose commits never wait.
  inline_commit,
};

struct store_writer_config {
  store_writer_mode mode = store_writer_mode::group_commit;
  /// The group-commit writer's settings (group_commit mode only). Its
  /// queue_limit_units bounds the units in flight: beyond it a commit is
  /// answered at once with `unavailable` ("writer overloaded").
  group_commit_config group;
  /// The most units one commit_many message may carry; a larger one is
  /// answered with `invalid_argument` for every unit and nothing is written.
  std::size_t many_units_max = 1024;
};

/// The answer to one commit: a receipt or an error, as `result<commit_receipt>`
/// carries them, in a form a CAF message can hold (default-constructible,
/// copyable). Exactly one of the two is set.
struct commit_reply {
  std::optional<commit_receipt> receipt;
  std::optional<recur::error> error;

  bool ok() const noexcept { return receipt.has_value(); }

  static commit_reply from(result<commit_receipt> r);
  result<commit_receipt> to_result() const;
};

/// Counters since the actor started; units of commit_many count one by one.
struct store_writer_stats {
  std::uint64_t committed = 0; // units answered with a receipt
  std::uint64_t failed = 0;    // units answered with an error
  std::uint64_t in_flight = 0; // units handed to the writer, not answered yet
};

} // namespace recur
