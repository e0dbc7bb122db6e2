// The gateway actor. Design:
//
// - Every gateway_call gets a sequence number on arrival and waits in a FIFO
//   queue together with its response promise. `pump()` starts calls from the
//   front while fewer than max_in_flight run and the breaker allows them.
// - Threaded mode: gateway calls block (network I/O), so they never run on
//   CAF's scheduler threads. The actor owns a pool of at most max_in_flight
//   worker actors, spawned lazily with `detached` (each has its own thread)
//   and `linked`. A call goes to an idle worker as a request; the worker runs
//   `perform_gateway_call` and replies; the reply comes back to this actor,
//   which updates the breaker and delivers the held promise. Since a call
//   needs an idle worker and there are at most max_in_flight workers, the
//   bound holds twice over. The actor itself never blocks.
// - Inline mode: `perform_gateway_call` runs inside the handler; the queue and
//   the breaker work the same way (a call completes before the next starts).
// - Open circuit: calls stay queued, promises held. A wake-up is scheduled
//   with delayed_send for the end of the cooldown; CAF cannot cancel it, so
//   it carries a generation and only the latest one counts. A (tick_atom)
//   re-checks at once (virtual time). A call that failed `unavailable` and
//   left the breaker open goes back into the queue at its arrival position,
//   with the same request and key, and is retried once the circuit closes.
// - Stopping: on exit the actor stops its workers and answers every call it
//   still holds, so that no caller waits forever (see `on_exit`).

#include "actors/gateway_actor_impl.hpp"

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <deque>
#include <functional>
#include <optional>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include <caf/actor_cast.hpp>
#include <caf/actor_config.hpp>
#include <caf/event_based_actor.hpp>
#include <caf/exit_reason.hpp>
#include <caf/response_promise.hpp>
#include <caf/send.hpp>
#include <caf/spawn_options.hpp>

namespace recur {

// -- configuration and messages -----------------------------------------------

status validate(const gateway_actor_config& c) {
  if (c.max_in_flight < 1 || c.max_in_flight > gateway_max_in_flight_max)
    return make_error(errc::invalid_argument,
                      "max_in_flight must be in [1, "
                        + std::to_string(gateway_max_in_flight_max) + "]");
  if (c.queue_limit < 1 || c.queue_limit > gateway_queue_limit_max)
    return make_error(errc::invalid_argument,
                      "queue_limit must be in [1, "
                        + std::to_string(gateway_queue_limit_max) + "]");
  return validate(c.breaker);
}

charge_request gateway_call::placeholder_charge() {
  return charge_request{{}, {}, {}, {}, money::zero(currency::of("USD")), {}};
}

refund_request gateway_call::placeholder_refund() {
  return refund_request{{}, {}, money::zero(currency::of("USD"))};
}

gateway_call gateway_call::make_charge(charge_request req) {
  gateway_call call;
  call.kind = op::charge;
  call.charge = std::move(req);
  return call;
}

gateway_call gateway_call::make_resolve(charge_request req) {
  gateway_call call;
  call.kind = op::resolve;
  call.charge = std::move(req);
  return call;
}

gateway_call gateway_call::make_refund(refund_request req) {
  gateway_call call;
  call.kind = op::refund;
  call.refund = std::move(req);
  return call;
}

const std::string& gateway_call::idempotency_key() const noexcept {
  return kind == op::refund ? refund.idempotency_key : charge.idempotency_key;
}

std::string_view to_string(gateway_call::op kind) noexcept {
  switch (kind) {
    case gateway_call::op::charge:
      return "charge";
    case gateway_call::op::resolve:
      return "resolve";
    case gateway_call::op::refund:
      return "refund";
  }
  return "?";
}

namespace {

gateway_reply reply_to(const gateway_call& call) {
  gateway_reply reply;
  reply.kind = call.kind;
  reply.idempotency_key = call.idempotency_key();
  return reply;
}

template <class T>
void set_outcome(std::optional<T>& slot, std::optional<error>& err,
                 result<T> r) {
  if (r)
    slot = std::move(*r);
  else
    err = r.error();
}

/// The answer for a call that went out but whose outcome never came back
/// (its worker died, or the actor stopped first). A charge may or may not
/// have happened: `unknown`, resolved later by key. A refund has no unknown
/// status; it is safe to retry under the same key.
gateway_reply outcome_lost(const gateway_call& call, const std::string& why) {
  auto reply = reply_to(call);
  if (call.kind == gateway_call::op::refund)
    reply.error = make_error(errc::unavailable,
                             why
                               + "; the refund's outcome is unknown, retry "
                                 "with the same idempotency key");
  else
    reply.charge = charge_result{};
  return reply;
}

/// The answer for a call that never went out.
gateway_reply not_sent(const gateway_call& call, std::string why) {
  auto reply = reply_to(call);
  reply.error = make_error(errc::unavailable, std::move(why));
  return reply;
}

} // namespace

gateway_reply perform_gateway_call(payment_gateway& gw,
                                   const gateway_call& call) {
  auto reply = reply_to(call);
  switch (call.kind) {
    case gateway_call::op::charge:
      set_outcome(reply.charge, reply.error, gw.charge(call.charge));
      break;
    case gateway_call::op::resolve: {
      // Never charge blindly: only a key the gateway never processed may be
      // charged again, and under the same key.
      auto found = gw.retrieve_for_tenant(call.charge.tenant,
                                          call.charge.idempotency_key);
      if (!found && found.code() == errc::not_found)
        found = gw.charge(call.charge);
      set_outcome(reply.charge, reply.error, std::move(found));
      break;
    }
    case gateway_call::op::refund:
      // call.charge is a placeholder for refunds: its tenant is empty unless
      // the caller sets it (then a per-tenant gateway routes exactly).
      set_outcome(reply.refund, reply.error,
                  gw.refund_for_tenant(call.charge.tenant, call.refund));
      break;
  }
  return reply;
}

bool is_breaker_failure(const gateway_reply& reply) noexcept {
  if (reply.error)
    return is_breaker_failure(*reply.error);
  if (reply.charge)
    return is_breaker_failure(*reply.charge);
  return false;
}

// -- the actor ----------------------------------------------------------------

namespace {

using wake_atom = caf::atom_constant<caf::atom("gw_wake")>;

/// A worker: runs one blocking gateway call at a time on its own thread.
caf::behavior gateway_worker(caf::event_based_actor*, payment_gateway* gw) {
  return {
    [gw](const gateway_call& call) -> gateway_reply {
      return perform_gateway_call(*gw, call);
    },
  };
}

class gateway_actor : public caf::event_based_actor {
public:
  gateway_actor(caf::actor_config& cfg, payment_gateway& gw, recur::clock& clk,
                gateway_actor_config config)
    : caf::event_based_actor(cfg),
      gw_(gw),
      clk_(clk),
      cfg_(config),
      breaker_(config.breaker) {
    // nop
  }

  const char* name() const override { return "gateway_actor"; }

  caf::behavior make_behavior() override;

  void on_exit() override;

private:
  // -- member types -----------------------------------------------------------

  struct pending_call {
    std::uint64_t seq = 0; // arrival order: FIFO, and where a retry goes back
    gateway_call call;
    caf::response_promise promise;
  };

  struct running_call {
    pending_call pending;
    caf::actor worker;
  };

  // -- scheduling -------------------------------------------------------------

  void admit(gateway_call call, caf::response_promise promise);
  void pump();
  void start(pending_call p);
  void start_on_worker(pending_call p);
  void finish_on_worker(std::uint64_t seq, gateway_reply reply, bool worker_ok);
  void complete(pending_call p, gateway_reply reply);
  void requeue(pending_call p);
  void schedule_wake();
  void on_wake(std::uint64_t generation);

  // -- workers ----------------------------------------------------------------

  caf::actor take_worker();
  void drop_worker(const caf::actor_addr& addr);
  bool is_worker(const caf::actor_addr& addr) const;

  gateway_actor_stats stats() const;

  // -- state ------------------------------------------------------------------

  payment_gateway& gw_;
  recur::clock& clk_;
  gateway_actor_config cfg_;
  circuit_breaker breaker_;
  std::deque<pending_call> queue_;                          // sorted by seq
  std::unordered_map<std::uint64_t, running_call> running_; // threaded, by seq
  std::vector<caf::actor> workers_;
  std::vector<caf::actor> idle_workers_;
  std::size_t in_flight_ = 0;
  std::uint64_t next_seq_ = 0;
  std::uint64_t wake_generation_ = 0;
  /// times_opened() of the opening the live wake-up is for; none: no wake-up.
  std::optional<std::int64_t> wake_for_opening_;
  gateway_actor_stats counters_;
};

caf::behavior gateway_actor::make_behavior() {
  set_exit_handler([this](caf::exit_msg& msg) {
    if (is_worker(msg.source)) {
      drop_worker(msg.source); // its running call's error handler answers
      return;
    }
    if (msg.reason)
      quit(std::move(msg.reason));
  });
  return {
    [this](gateway_call& call) -> caf::result<gateway_reply> {
      auto promise = make_response_promise();
      admit(std::move(call), promise);
      return promise;
    },
    [this](stats_atom) -> gateway_actor_stats { return stats(); },
    [this](tick_atom) { pump(); },
    [this](wake_atom, std::uint64_t generation) { on_wake(generation); },
  };
}

void gateway_actor::on_exit() {
  for (auto& worker : workers_)
    caf::anon_send_exit(worker, caf::exit_reason::user_shutdown);
  for (auto& p : queue_)
    p.promise.deliver(not_sent(p.call, "gateway actor stopped"));
  for (auto& [seq, job] : running_)
    job.pending.promise.deliver(
      outcome_lost(job.pending.call, "gateway actor stopped"));
  // The promises hold references to this actor: drop them now.
  queue_.clear();
  running_.clear();
  workers_.clear();
  idle_workers_.clear();
}

void gateway_actor::admit(gateway_call call, caf::response_promise promise) {
  ++counters_.requests;
  if (queue_.size() >= cfg_.queue_limit) {
    ++counters_.rejected;
    promise.deliver(not_sent(call, "gateway queue full"));
    return;
  }
  queue_.push_back(
    pending_call{next_seq_++, std::move(call), std::move(promise)});
  pump();
}

void gateway_actor::pump() {
  while (!queue_.empty() && in_flight_ < cfg_.max_in_flight) {
    if (!breaker_.allow(clk_.now())) {
      schedule_wake();
      return;
    }
    auto p = std::move(queue_.front());
    queue_.pop_front();
    start(std::move(p));
  }
}

void gateway_actor::start(pending_call p) {
  ++counters_.calls;
  ++in_flight_;
  if (!cfg_.inline_calls) {
    start_on_worker(std::move(p));
    return;
  }
  auto reply = perform_gateway_call(gw_, p.call);
  --in_flight_;
  complete(std::move(p), std::move(reply));
}

void gateway_actor::start_on_worker(pending_call p) {
  auto worker = take_worker();
  auto seq = p.seq;
  auto call = p.call;
  running_.emplace(seq, running_call{std::move(p), worker});
  request(worker, caf::infinite, std::move(call))
    .then(
      [this, seq](gateway_reply& reply) {
        finish_on_worker(seq, std::move(reply), true);
      },
      [this, seq](caf::error& err) {
        auto i = running_.find(seq);
        RECUR_ASSERT(i != running_.end());
        auto why = "gateway worker failed: " + system().render(err);
        finish_on_worker(seq, outcome_lost(i->second.pending.call, why), false);
      });
}

void gateway_actor::finish_on_worker(std::uint64_t seq, gateway_reply reply,
                                     bool worker_ok) {
  auto i = running_.find(seq);
  RECUR_ASSERT(i != running_.end());
  auto job = std::move(i->second);
  running_.erase(i);
  --in_flight_;
  if (worker_ok && is_worker(job.worker.address())) {
    idle_workers_.push_back(std::move(job.worker));
  } else {
    // Never reuse a worker that failed a call; unlink first so that its exit
    // does not take this actor down.
    unlink_from(job.worker);
    caf::anon_send_exit(job.worker, caf::exit_reason::kill);
    drop_worker(job.worker.address());
  }
  complete(std::move(job.pending), std::move(reply));
  pump();
}

void gateway_actor::complete(pending_call p, gateway_reply reply) {
  if (!is_breaker_failure(reply)) {
    ++counters_.successes;
    breaker_.on_success();
    p.promise.deliver(std::move(reply));
    return;
  }
  ++counters_.failures;
  breaker_.on_failure(clk_.now());
  // Charges wait instead of failing: an unreachable gateway with an open
  // circuit keeps the call for after the cooldown. An `unknown` charge is an
  // answer (the caller resolves it by key), so it is delivered as it is.
  if (reply.error && breaker_.state() == breaker_state::open) {
    requeue(std::move(p));
    return;
  }
  p.promise.deliver(std::move(reply));
}

void gateway_actor::requeue(pending_call p) {
  ++counters_.requeued;
  auto pos = std::upper_bound(queue_.begin(), queue_.end(), p.seq,
                              [](std::uint64_t seq, const pending_call& q) {
                                return seq < q.seq;
                              });
  queue_.insert(pos, std::move(p));
}

void gateway_actor::schedule_wake() {
  if (breaker_.state() != breaker_state::open
      || wake_for_opening_ == breaker_.times_opened())
    return;
  auto wait_s = std::max<std::int64_t>(1, seconds_between(clk_.now(),
                                                          breaker_.probe_at()));
  wake_for_opening_ = breaker_.times_opened();
  ++wake_generation_;
  delayed_send(caf::actor_cast<caf::actor>(this), std::chrono::seconds(wait_s),
               wake_atom::value, wake_generation_);
}

void gateway_actor::on_wake(std::uint64_t generation) {
  if (generation != wake_generation_)
    return; // superseded: the circuit re-opened since
  wake_for_opening_.reset();
  // Early by the breaker's clock (virtual time not advanced yet): pump()
  // finds it still open and schedules the next wake-up.
  pump();
}

caf::actor gateway_actor::take_worker() {
  if (!idle_workers_.empty()) {
    auto worker = std::move(idle_workers_.back());
    idle_workers_.pop_back();
    return worker;
  }
  RECUR_ASSERT(workers_.size() < cfg_.max_in_flight);
  auto worker = spawn<caf::detached + caf::linked>(gateway_worker, &gw_);
  workers_.push_back(worker);
  return worker;
}

void gateway_actor::drop_worker(const caf::actor_addr& addr) {
  auto same = [&](const caf::actor& w) { return w.address() == addr; };
  workers_.erase(std::remove_if(workers_.begin(), workers_.end(), same),
                 workers_.end());
  idle_workers_.erase(std::remove_if(idle_workers_.begin(), idle_workers_.end(),
                                     same),
                      idle_workers_.end());
}

bool gateway_actor::is_worker(const caf::actor_addr& addr) const {
  return std::any_of(workers_.begin(), workers_.end(),
                     [&](const caf::actor& w) { return w.address() == addr; });
}

gateway_actor_stats gateway_actor::stats() const {
  auto s = counters_;
  s.in_flight = in_flight_;
  s.queued = queue_.size();
  s.breaker = breaker_.state();
  s.times_opened = breaker_.times_opened();
  return s;
}

} // namespace

caf::actor spawn_gateway_actor(caf::actor_system& sys, payment_gateway& gw,
                               clock& clk, gateway_actor_config cfg) {
  RECUR_ASSERT(validate(cfg).has_value());
  return sys.spawn<gateway_actor>(std::ref(gw), std::ref(clk), cfg);
}

} // namespace recur
