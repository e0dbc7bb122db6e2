#pragma once
/// The transactional-outbox relay: moves committed outbox rows from the store
/// to the event log (Kafka), in order per subscription, and marks a row
/// published only after the log acknowledged it.
///
/// A plain class with one thread of its own (no CAF): start() runs rounds
/// until stop(); tests may call run_once() instead, without start().
///
/// One round: fetch_unpublished(cursor, batch_max) → publish the rows in
/// position order → mark_published(the positions the log acknowledged) →
/// cursor = the last position fetched. A pass is the rounds from cursor 0 up
/// to a fetch that returns nothing; then the relay sleeps `poll_interval`
/// (or until wake()) and starts the next pass from 0, which is what is still
/// unpublished. Order per key (the subscription id) holds because a key's
/// rows go out in position order and, once one of them fails, no later row of
/// that key is published in that pass: the key is retried from its failed row
/// in the next pass. Other keys go on meanwhile.
///
/// Delivery is at least once. A crash (or a failed mark_published) after the
/// log acknowledged a row but before the row was marked publishes that row
/// again after the restart, so consumers de-duplicate by the envelope's `id`.
/// Nothing is lost: a row leaves the outbox only once it is in the log, and a
/// restarted relay resumes from what the store still holds unpublished.
///
/// Residual risk, left to the producer: the Kafka publisher's idempotent
/// producer keeps a partition's order across its retries and turns a refused
/// batch into a fatal error that fails the later ones too (gapless
/// guarantee), but librdkafka does not extend that to a message that times
/// out while in flight; if a later message of the same key is then written,
/// it precedes the re-published earlier one. Keep the publisher's
/// message_timeout well above its request_timeout so that this stays a
/// broker outage longer than the message timeout.

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

#include "domain/clock.hpp"
#include "domain/event_publisher.hpp"
#include "sagas/store.hpp"

namespace recur {

struct outbox_relay_config {
  /// Rows per round (fetched and published together): 1..10,000.
  std::size_t batch_max = 500;
  /// How long an idle relay sleeps before it looks again (wake() cuts it).
  std::chrono::milliseconds poll_interval{200};
  /// After a round in which nothing could be published or the store failed:
  /// waits double from backoff_min up to backoff_max, and reset on success.
  std::chrono::milliseconds backoff_min{100};
  std::chrono::milliseconds backoff_max{5'000};
  /// A pass (rounds from position 0 to the end of the outbox) that has keys
  /// blocked by a failure restarts from 0 after this many rounds, so that
  /// a steady stream of new rows cannot postpone their retry indefinitely.
  std::size_t pass_rounds_max = 64;
  /// Names the relay in logs.
  std::string name = "outbox-relay";
};

/// What one round did.
struct outbox_round {
  std::size_t fetched = 0;   // rows read from the store
  std::size_t published = 0; // acknowledged by the log and marked
  std::size_t failed = 0;    // the log refused or did not acknowledge
  std::size_t held = 0;      // not sent: an earlier row of the key is pending
  bool store_error = false;  // fetch or mark failed
  bool pass_ended = false;   // it fetched nothing: the pass is over
};

/// Counters and gauges for /metrics (totals since construction).
struct outbox_relay_stats {
  std::uint64_t rounds = 0;
  std::uint64_t published = 0;    // rows acknowledged and marked
  std::uint64_t failures = 0;     // row deliveries that failed
  std::uint64_t store_errors = 0; // failed fetch/mark calls
  /// Rows acknowledged by the log whose mark_published failed: they will be
  /// published again (duplicates that consumers drop by id).
  std::uint64_t unmarked = 0;
  /// Lag: rows the relay has seen and not yet published, counted over the
  /// last complete pass (0 when the relay is caught up).
  std::uint64_t pending = 0;
  std::int64_t last_published_position = 0;
  bool running = false;
};

class outbox_relay {
public:
  /// `db`, `log` and `clk` must outlive the relay. `clk` stamps
  /// published_at. Asserts a valid configuration (see validate()).
  outbox_relay(store& db, event_publisher& log, const clock& clk,
               outbox_relay_config config = {});
  /// Stops the thread if it runs.
  ~outbox_relay();
  outbox_relay(const outbox_relay&) = delete;
  outbox_relay& operator=(const outbox_relay&) = delete;

  /// `invalid_argument` naming the bad setting.
  static status validate(const outbox_relay_config& config);

  /// Starts the relay's thread; a no-op when it already runs.
  void start();
  /// Asks the thread to finish its round and joins it. A round in flight
  /// takes at most the publisher's delivery timeout.
  void stop();
  /// Cuts the current idle wait short: call after committing outbox rows.
  void wake();

  /// One round on the caller's thread. Not while the thread runs.
  outbox_round run_once();

  outbox_relay_stats stats() const;

  struct impl;

private:
  std::unique_ptr<impl> impl_;
};

} // namespace recur
