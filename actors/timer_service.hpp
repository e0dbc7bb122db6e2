#pragma once
/// Configuration and counters of the durable timer service, the actor that
/// claims due timers from the store and hands each one to its owner. CAF-free:
/// the messages and the spawn function are in actors/timer_service_impl.hpp.
///
/// Delivery is at least once. The service leases each due timer for `lease_s`
/// seconds and sends it to its delivery target; the owner completes the timer
/// in its own unit of work (`unit_of_work::timers_to_complete`), in the same
/// transaction as whatever the timer caused. If the owner never completes it
/// (it crashed, its commit failed, the message was lost with a dying actor),
/// the lease lapses, the store hands the timer out again and the service
/// delivers it again. So every timer handler must be idempotent: a second
/// delivery of a timer whose effect is already stored must change nothing
/// (check the state the timer is about, e.g. "is this period already
/// invoiced?", and complete the timer if it is still pending).

#include <cstddef>
#include <cstdint>
#include <string>

namespace recur {

struct timer_service_config {
  /// Pause between polls when the last poll drained everything due. 0: no
  /// polling of its own; the service claims only when sent a tick.
  std::int64_t poll_interval_ms = 50;
  /// The most timers one claim_due_timers call leases. A claim that returns
  /// this many means more may be due, so the service claims again at once.
  /// (A store may clamp it: the in-memory store returns at most 1000.)
  std::size_t claim_batch_limit = 1000;
  /// How long a delivered timer stays leased before the store hands it out
  /// again if its owner has not completed it.
  std::int64_t lease_s = 30;
  /// Names this service instance in the store's leases and in logs.
  std::string claimer = "timer-service";
  /// The most claim calls one poll or tick makes (each of up to
  /// claim_batch_limit timers); a backlog beyond that is picked up by the
  /// next poll, which then comes at once instead of after the interval.
  std::size_t drain_rounds_max = 1000;
  /// Flow control: the most delivered timers whose owner has not answered
  /// yet (0: no limit; timers are then plain sends that expect no answer).
  /// With a limit the service sends each timer as a request, the owner
  /// answers once the timer's unit of work is committed (or failed), and the
  /// service claims only while fewer than this many are unanswered. A burst
  /// (every renewal of the month due at midnight) then activates a bounded
  /// number of owners at a time instead of all of them at once. An owner
  /// that never answers frees its slot at the first poll or tick lease_s
  /// after the delivery (on the actor clock). The service monitors
  /// its target: when the target goes down, every slot is released at once
  /// and the service claims nothing more (due timers stay in the store for
  /// another process's service; answers still on their way free nothing).
  std::size_t max_in_flight = 0;
};

/// Counters since the service started.
struct timer_service_stats {
  std::uint64_t polls = 0;     // claim_due_timers calls
  std::uint64_t delivered = 0; // timers sent to the target (re-deliveries too)
  std::uint64_t errors = 0;    // claim_due_timers calls that failed
  std::uint64_t in_flight = 0; // delivered, not answered (max_in_flight > 0)
  std::uint64_t lapsed = 0;    // slots freed unanswered after lease_s
};

} // namespace recur
