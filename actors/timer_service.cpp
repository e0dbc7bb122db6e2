#include "actors/timer_service_impl.hpp"

#include "actors/subscription_actor_impl.hpp" // command_reply, the answer

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <deque>
#include <unordered_set>
#include <utility>

#include <caf/all.hpp>
#include <spdlog/spdlog.h>

namespace recur {

namespace {

/// Internal: "claim now", carrying the generation it was armed with.
using poll_atom = caf::atom_constant<caf::atom("timer_poll")>;

struct timer_service_state {
  store* st = nullptr;
  clock* clk = nullptr;
  caf::actor target;
  timer_service_config cfg;
  timer_service_stats stats;
  /// Bumped whenever a poll is armed; a poll message with an older number
  /// was superseded and does nothing.
  std::uint64_t generation = 0;
  /// The target went down (monitored): its window slots were released and
  /// the service claims nothing more.
  bool target_down = false;
  /// Deliveries of the window not answered yet, by number (their count is
  /// the window's use; stats.in_flight is read from it); and every
  /// delivery in the order sent with the time its slot lapses (lease_s
  /// after it was sent, on the actor clock). A poll or tick frees the lapsed
  /// slots: one sweep instead of a CAF request timeout per delivery (each
  /// of which woke CAF's clock thread).
  std::uint64_t next_delivery = 0;
  std::unordered_set<std::uint64_t> unanswered;
  std::deque<std::pair<std::uint64_t, caf::actor_clock::time_point>> sent;

  static inline const char* name = "recur.timer_service";
};

using timer_service_actor = caf::stateful_actor<timer_service_state>;

/// What one poll or tick did.
struct drain_outcome {
  std::uint64_t delivered = 0;
  bool backlog = false; // stopped at drain_rounds_max with full batches
  bool failed = false;  // a claim failed
};

/// How many timers one claim may take: the batch limit, less what the
/// in-flight window has no room for.
std::size_t window_room(const timer_service_state& s) {
  if (s.cfg.max_in_flight == 0)
    return s.cfg.claim_batch_limit;
  const std::size_t used = s.unanswered.size();
  if (used >= s.cfg.max_in_flight)
    return 0;
  return std::min(s.cfg.claim_batch_limit, s.cfg.max_in_flight - used);
}

drain_outcome drain(timer_service_actor* self);
void arm_poll(timer_service_actor* self, bool at_once);

/// An answer (or its absence) freed a slot of the window (taken out of
/// `unanswered`): claim again once half of the window is free, so that
/// claims stay batched.
void slot_freed(timer_service_actor* self) {
  auto& s = self->state;
  if (s.unanswered.size() == s.cfg.max_in_flight / 2) {
    const drain_outcome d = drain(self);
    arm_poll(self, d.backlog);
  }
}

/// The answer (or error) of delivery n: frees its slot unless a sweep or
/// the target's going down did.
void answered(timer_service_actor* self, std::uint64_t n) {
  if (self->state.unanswered.erase(n) > 0)
    slot_freed(self);
}

/// Frees the slots of deliveries unanswered lease_s after they were sent
/// (the store's lease has lapsed: the timer is claimable again anyway).
void sweep_lapsed(timer_service_actor* self) {
  auto& s = self->state;
  const auto now = self->clock().now();
  while (!s.sent.empty()) {
    const auto [n, lapses] = s.sent.front();
    if (s.unanswered.contains(n)) {
      if (lapses > now)
        return;
      s.unanswered.erase(n);
      ++s.stats.lapsed;
      slot_freed(self);
    }
    s.sent.pop_front();
  }
}

void deliver(timer_service_actor* self, claimed_timer t) {
  auto& s = self->state;
  if (s.cfg.max_in_flight == 0) {
    self->send(s.target, timer_due_atom::value, std::move(t));
    return;
  }
  const std::uint64_t n = s.next_delivery++;
  s.unanswered.insert(n);
  s.sent.emplace_back(n, self->clock().now()
                           + std::chrono::seconds{s.cfg.lease_s});
  self->request(s.target, caf::infinite, timer_due_atom::value, std::move(t))
    .then([self, n](const command_reply&) { answered(self, n); },
          [self, n](caf::error&) { answered(self, n); });
}

/// One claim_due_timers call; sends each claimed timer to the target in the
/// order the store returned them (oldest due first). Returns the number
/// claimed, or -1 when the store failed.
std::int64_t claim_once(timer_service_actor* self) {
  auto& s = self->state;
  ++s.stats.polls;
  const std::size_t room = window_room(s);
  if (room == 0)
    return 0;
  auto claimed = s.st->claim_due_timers(s.clk->now(), room, s.cfg.lease_s,
                                        s.cfg.claimer);
  if (!claimed) {
    ++s.stats.errors;
    spdlog::warn("timer_service claimer={} event=claim_failed error={} "
                 "detail=\"{}\" poll_interval_ms={}",
                 s.cfg.claimer, to_string(claimed.code()),
                 claimed.error().detail, s.cfg.poll_interval_ms);
    return -1;
  }
  for (claimed_timer& t : *claimed)
    deliver(self, std::move(t));
  const auto n = static_cast<std::int64_t>(claimed->size());
  s.stats.delivered += static_cast<std::uint64_t>(n);
  return n;
}

/// Claims until a claim returns less than a full batch, fails, or
/// drain_rounds_max claims were made.
drain_outcome drain(timer_service_actor* self) {
  const auto& cfg = self->state.cfg;
  const auto full = static_cast<std::int64_t>(cfg.claim_batch_limit);
  drain_outcome out;
  if (self->state.target_down)
    return out; // nobody to deliver to: leave the timers to another service
  for (std::size_t round = 0; round < cfg.drain_rounds_max; ++round) {
    const std::int64_t n = claim_once(self);
    if (n < 0) {
      out.failed = true;
      return out;
    }
    out.delivered += static_cast<std::uint64_t>(n);
    if (window_room(self->state) == 0)
      return out; // the answers resume the draining (slot_freed)
    if (n < full)
      return out;
  }
  out.backlog = true;
  return out;
}

/// Arms the next poll (superseding any armed before): at once when a backlog
/// is waiting, else after the poll interval. No-op when polling is off.
void arm_poll(timer_service_actor* self, bool at_once) {
  auto& s = self->state;
  if (s.cfg.poll_interval_ms <= 0 || s.target_down)
    return;
  const std::uint64_t gen = ++s.generation;
  if (at_once)
    self->send(self, poll_atom::value, gen);
  else
    self->delayed_send(self, std::chrono::milliseconds{s.cfg.poll_interval_ms},
                       poll_atom::value, gen);
}

caf::behavior timer_service_fun(timer_service_actor* self, store* st,
                                clock* clk, caf::actor target,
                                timer_service_config cfg) {
  auto& s = self->state;
  s.st = st;
  s.clk = clk;
  s.target = std::move(target);
  s.cfg = std::move(cfg);
  // Watch the target: requests it took and will never answer (held by an
  // actor it delegated them to, which died with it) would otherwise keep
  // their window slots until their lease_s timeout.
  self->monitor(s.target);
  self->set_down_handler([self](caf::down_msg& m) {
    auto& s = self->state;
    if (m.source != s.target.address())
      return;
    spdlog::warn("timer_service claimer={} event=target_down "
                 "in_flight_released={} reason={}",
                 s.cfg.claimer, s.unanswered.size(), to_string(m.reason));
    s.target_down = true;
    s.unanswered.clear(); // answers still to come free nothing
    s.sent.clear();
  });
  // Claim once at start: timers that fell due while nobody was running (a
  // restart) fire at once instead of one interval later.
  arm_poll(self, true);
  return {
    [self](poll_atom, std::uint64_t gen) {
      if (gen != self->state.generation)
        return; // superseded by a tick or a later poll
      sweep_lapsed(self);
      const drain_outcome d = drain(self);
      arm_poll(self, d.backlog);
    },
    [self](tick_atom) -> std::uint64_t {
      sweep_lapsed(self);
      const drain_outcome d = drain(self);
      arm_poll(self, d.backlog);
      return d.delivered;
    },
    [self](stats_atom) -> timer_service_stats {
      auto out = self->state.stats;
      out.in_flight = self->state.unanswered.size();
      return out;
    },
  };
}

} // namespace

caf::actor spawn_timer_service(caf::actor_system& sys, store& st, clock& clk,
                               caf::actor target, timer_service_config cfg) {
  RECUR_ASSERT(static_cast<bool>(target));
  RECUR_ASSERT(cfg.claim_batch_limit > 0);
  RECUR_ASSERT(cfg.lease_s > 0);
  RECUR_ASSERT(cfg.poll_interval_ms >= 0);
  RECUR_ASSERT(cfg.drain_rounds_max > 0);
  return sys.spawn(timer_service_fun, &st, &clk, std::move(target),
                   std::move(cfg));
}

} // namespace recur
