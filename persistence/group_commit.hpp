#pragma once
/// A writer that gathers concurrent units of work into shared store
/// transactions (group commit) and acknowledges each caller only after the
/// transaction that carried its unit committed or failed.
///
/// Why: a durable commit costs one WAL flush whatever its size, so N callers
/// that each wait for their own flush get N flushes; through this writer they
/// share one. The writer is written against the `recur::store` port only;
/// `store::commit_many` decides how a batch maps onto transactions and gives
/// every unit its own result (one conflicting unit fails alone).
///
/// Threading: any thread may submit; each lane's writer thread drains its
/// queue into batches of at most `max_batch_units` and calls `commit_many`;
/// completions run on that thread, so they must be short, must not throw and
/// must not call `stop()` (they may call `submit`, which never blocks).
///
/// Lanes: with `lanes` > 1 there are that many queues and writer threads,
/// whose transactions run at once (on separate store connections: give the
/// store a pool at least that large). When the database backend executing
/// one batch, not the WAL flush, is the bottleneck, lanes spread that work
/// over several backends. A unit always goes to the lane of its ordering
/// key (`ordering_key_of`: its subscription, or its tenant if it names
/// none), so units of one subscription commit in the order they were
/// submitted, as with one lane; units of different keys may commit in any
/// order relative to each other.

#include <cstddef>
#include <cstdint>
#include <functional>
#include <future>
#include <memory>
#include <string>

#include "domain/error.hpp"
#include "sagas/store.hpp"

namespace recur {

struct group_commit_config {
  /// The most units one `commit_many` call carries.
  std::size_t max_batch_units = 512;
  /// Writer threads (1..lanes_max), each with its own queue and batches.
  std::size_t lanes = 1;
  /// Once the writer holds at least one unit, how long it may wait for as
  /// many units as its previous batch carried (the callers active a moment
  /// ago, about to submit again) before it commits what it has. A lone caller
  /// makes that target 1, so it never waits. 0: take what is queued now.
  std::int64_t max_wait_us = 100;
  /// Units waiting to be committed, in all lanes together; a submit beyond
  /// this fails at once with `unavailable` ("writer overloaded") instead of
  /// queueing without bound.
  std::size_t queue_limit_units = 16'384;
  /// Commit attempts for a unit whose result is `unavailable` (the store's own
  /// retries already failed): the writer tries again up to this many times in
  /// all, waiting retry_delay_ms_min, ×2 each time, at most
  /// retry_delay_ms_max, then hands the caller `unavailable`. 1: no retry.
  /// A commit whose outcome is unknown (is_commit_outcome_unknown) is never
  /// retried: it may be stored, so its caller hears about it and re-reads.
  std::int32_t unavailable_attempts_max = 4;
  std::int64_t retry_delay_ms_min = 20;
  std::int64_t retry_delay_ms_max = 1'000;
};

/// The most lanes a writer may have.
inline constexpr std::size_t group_commit_lanes_max = 64;

/// The key that decides a unit's lane: its tenant and the first subscription
/// it names (in its event appends, read-model rows, new sagas, invoices, or
/// timers' owners); just its tenant if it names none. Units with equal keys
/// commit in submission order.
std::string ordering_key_of(const unit_of_work& work);

/// Counters for observability, summed over the lanes; a consistent-enough
/// snapshot (each counter is read atomically, not all together).
struct group_commit_stats {
  std::uint64_t batches = 0; // commit_many calls
  std::uint64_t units = 0; // units passed to commit_many (a retry counts again)
  std::uint64_t acknowledged = 0; // completions run (success or failure)
  std::uint64_t failed = 0;       // completions run with an error
  std::uint64_t retried = 0;      // units queued again after `unavailable`
  std::uint64_t rejected = 0;     // submits refused: overloaded or stopped
  std::uint64_t largest_batch_units = 0;
  std::uint64_t commit_us = 0; // time spent inside commit_many, summed
                               // over lanes (may exceed wall time)

  double mean_batch_units() const noexcept {
    return batches == 0
             ? 0.0
             : static_cast<double>(units) / static_cast<double>(batches);
  }
};

class group_commit_writer {
public:
  /// Runs exactly once per accepted unit, on the writer thread, after the
  /// store returned the unit's result.
  using completion = std::function<void(result<commit_receipt>)>;

  // -- constructors -----------------------------------------------------------

  /// Starts one writer thread per lane. `target` must outlive the writer.
  explicit group_commit_writer(store& target, group_commit_config cfg = {});

  /// Calls stop().
  ~group_commit_writer();

  group_commit_writer(const group_commit_writer&) = delete;
  group_commit_writer& operator=(const group_commit_writer&) = delete;

  // -- submitting -------------------------------------------------------------

  /// Queues `work`; `done` runs once with its result after its batch's
  /// transaction committed or failed. Never blocks. Refused with `unavailable`
  /// when the queue is full ("writer overloaded") or after stop() ("writer
  /// stopped"); a refused submit never runs `done`.
  status submit(unit_of_work work, completion done);

  /// As above; the future holds the unit's result, or the refusal.
  std::future<result<commit_receipt>> submit(unit_of_work work);

  // -- lifetime ---------------------------------------------------------------

  /// Refuses new submits, commits everything already queued (unavailable units
  /// still get their bounded retries), runs every completion, then joins the
  /// writer threads. Idempotent; safe from several threads; never from a
  /// completion.
  void stop();

  // -- observers --------------------------------------------------------------

  group_commit_stats stats() const;

  /// Units queued (in all lanes) and not yet taken into a batch.
  std::size_t queued_units() const;

  const group_commit_config& config() const noexcept;

private:
  struct impl;
  std::unique_ptr<impl> impl_;
};

} // namespace recur
