// The registry and the subscription actors (see subscription_runtime.hpp).

#include <algorithm>
#include <chrono>
#include <functional>
#include <memory>
#include <set>
#include <string>
#include <unordered_map>

#include <caf/all.hpp>
#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>

#include "actors/allocator.hpp"
#include "actors/gateway_actor_impl.hpp"
#include "actors/store_writer_impl.hpp"
#include "actors/subscription_actor_impl.hpp"
#include "actors/timer_service_impl.hpp"

namespace recur {

namespace {

using stop_atom = caf::atom_constant<caf::atom("stop")>;
using retry_atom = caf::atom_constant<caf::atom("retry")>;

std::string key_of(const tenant_id& t, const subscription_id& s) {
  return t.value + "/" + s.value;
}

void bump(std::atomic<std::uint64_t> runtime_counters::*field,
          const runtime_context* ctx, std::uint64_t n = 1) {
  if (ctx->counters != nullptr && n > 0)
    (ctx->counters->*field).fetch_add(n, std::memory_order_relaxed);
}

/// Inputs, gateway calls and retries that are under way: the registry counts
/// a forwarded message, issue_calls a call, retry_later a retry; each ends in
/// exactly one `answer` (or the end of an activation).
void gauge(const runtime_context* ctx, std::int64_t delta) {
  if (ctx->counters != nullptr)
    ctx->counters->in_progress.fetch_add(delta, std::memory_order_acq_rel);
}

void count_outcome(const runtime_context* ctx, gateway_call_request::op kind,
                   gateway_outcome o) {
  if (ctx->counters != nullptr)
    ctx->counters
      ->gateway_outcomes[static_cast<std::size_t>(kind)]
                        [static_cast<std::size_t>(o)]
      .fetch_add(1, std::memory_order_relaxed);
}

// -- the subscription actor ---------------------------------------------------
//
// Memory per active actor is issue 4's budget (≤ 2 KiB, bench/RESULTS.md):
// the state keeps nothing twice, the behavior is one object shared by all
// actors (their messages are dispatched by a plain function, see
// `dispatch`), and idle detection is the registry's periodic sweep, not a
// delayed message per actor.

struct sub_state {
  const runtime_context* ctx = nullptr;
  caf::actor writer;
  caf::actor gateway;
  /// The subscription's identity lives here only (`agg.sub.tenant`,
  /// `agg.sub.id`), also while the subscription does not exist: see adopt.
  subscription_aggregate agg;
  /// Timers and gateway outcomes whose commit failed (the store or its
  /// writer unavailable): processed again after a backoff, so that a busy
  /// store delays them instead of losing them until a lease or a restart.
  std::vector<subscription_input> retries; // empty: no allocation
  std::int32_t calls_in_flight = 0;
  std::int32_t retry_backoff_ms = 0;
  bool loaded = false;
  static inline const char* name = "subscription";

  sub_state() = default;
  sub_state(const sub_state&) = delete;
  sub_state& operator=(const sub_state&) = delete;
  /// The actor's end (CAF destroys the state when the actor exits): counted
  /// here rather than by an attached functor, which would cost a block.
  ~sub_state() {
    if (ctx != nullptr && ctx->counters != nullptr)
      ctx->counters->live_actors.fetch_sub(1, std::memory_order_relaxed);
  }
};

using sub_actor = caf::stateful_actor<sub_state>;

const tenant_id& tenant_of(const sub_state& s) { return s.agg.sub.tenant; }
const subscription_id& id_of(const sub_state& s) { return s.agg.sub.id; }

/// Caches `next`, keeping the identity when `next` has none (the empty
/// aggregate of a subscription that does not exist yet).
void adopt(sub_state& s, subscription_aggregate&& next) {
  if (next.sub.tenant.value.empty() || next.sub.id.value.empty()) {
    next.sub.tenant = std::move(s.agg.sub.tenant);
    next.sub.id = std::move(s.agg.sub.id);
  }
  s.agg = std::move(next);
}

/// The state a reply carries: an empty one while the subscription does not
/// exist (the identity kept in the aggregate is no state of it).
subscription_state reply_state(const sub_state& s) {
  return s.agg.exists() ? s.agg.sub : subscription_state{};
}

/// Where an input's answer goes. A fired timer's requester (the timer
/// service's flow control) waits for the commit, not the state: its answer
/// carries none, and the state is not copied for it.
struct reply_slot {
  caf::response_promise promise;
  bool with_state = true;
};

/// Activation: the state from the snapshot or last event, and its live sagas.
status load(sub_actor* self) {
  auto& s = self->state;
  auto agg = load_subscription(*s.ctx->db, tenant_of(s), id_of(s));
  if (!agg)
    return agg.error();
  adopt(s, std::move(*agg));
  s.loaded = true;
  bump(&runtime_counters::activations, s.ctx);
  return {};
}

/// `reply`: answered with a command_reply once the input's unit of work is
/// committed (or nothing changed). `retry`: a commit refused because the
/// store was unavailable is tried again later (timers, gateway outcomes);
/// a client's command is answered with the failure instead.
void process(sub_actor* self, subscription_input in,
             std::optional<reply_slot> reply, bool retry);

void issue_calls(sub_actor* self, const std::vector<gateway_call_request>& calls) {
  auto& s = self->state;
  for (const auto& c : calls) {
    gateway_call call = c.kind == gateway_call_request::op::refund
                          ? gateway_call::make_refund(*c.refund)
                        : c.kind == gateway_call_request::op::resolve
                          ? gateway_call::make_resolve(*c.charge)
                          : gateway_call::make_charge(*c.charge);
    // A refund request names no tenant: without it a per-tenant gateway
    // would route by its in-process memory of charges, lost on a restart.
    if (c.kind == gateway_call_request::op::refund)
      call.charge.tenant = tenant_of(s);
    ++s.calls_in_flight;
    gauge(s.ctx, +1);
    bump(&runtime_counters::gateway_calls, s.ctx);
    sub_in::gateway_done base;
    base.saga = c.saga;
    base.step = c.step;
    base.action_key = c.action_key;
    self->request(s.gateway, caf::infinite, std::move(call))
      .then(
        [self, base, kind = c.kind](gateway_reply& r) mutable {
          --self->state.calls_in_flight;
          count_outcome(self->state.ctx, kind,
                        outcome_of(r.charge, r.refund, r.error.has_value()));
          base.charge = r.charge;
          base.refund = r.refund;
          if (r.error)
            base.failure = *r.error;
          process(self, std::move(base), std::nullopt, true);
        },
        [self, base, kind = c.kind](caf::error& e) mutable {
          --self->state.calls_in_flight;
          count_outcome(self->state.ctx, kind, gateway_outcome::error);
          base.failure = make_error(errc::unavailable,
                                    "gateway actor: " + to_string(e));
          process(self, std::move(base), std::nullopt, true);
        });
  }
}

/// What a unit of work does to the saga counters, taken before the unit goes
/// to the store (which may take it apart) and counted once it committed.
struct saga_tally {
  std::uint32_t started = 0;
  std::uint32_t completed = 0;
  std::uint32_t compensated = 0;
  std::uint32_t failed = 0;

  void add(saga_status st) {
    completed += st == saga_status::completed;
    compensated += st == saga_status::compensated;
    failed += st == saga_status::failed;
  }

  static saga_tally of(const unit_of_work& w) {
    saga_tally t;
    t.started = static_cast<std::uint32_t>(w.new_sagas.size());
    for (const auto& r : w.new_sagas)
      t.add(r.status);
    for (const auto& u : w.saga_updates)
      t.add(u.status);
    return t;
  }
};

void count_sagas(const runtime_context* ctx, const saga_tally& t) {
  bump(&runtime_counters::sagas_started, ctx, t.started);
  bump(&runtime_counters::sagas_completed, ctx, t.completed);
  bump(&runtime_counters::sagas_compensated, ctx, t.compensated);
  bump(&runtime_counters::sagas_failed, ctx, t.failed);
}

/// A failed commit of an input nobody waits for: try it again later.
void retry_later(sub_actor* self, subscription_input in) {
  auto& s = self->state;
  gauge(s.ctx, +1);
  s.retries.push_back(std::move(in));
  s.retry_backoff_ms = std::clamp<std::int32_t>(s.retry_backoff_ms * 2, 20, 1'000);
  self->delayed_send(self, std::chrono::milliseconds(s.retry_backoff_ms),
                     retry_atom::value);
}

/// The end of one input: answer whoever waits, and count it done.
void answer(sub_actor* self, std::optional<reply_slot>& reply,
            std::optional<error> failure, bool with_state = true) {
  if (reply)
    reply->promise.deliver(command_reply{
      std::move(failure), with_state && reply->with_state
                            ? reply_state(self->state)
                            : subscription_state{}});
  gauge(self->state.ctx, -1);
}

/// Whether a commit of timer input `in` failed because the store no longer
/// has the timer pending (the store says `not_found`; asked again, since a
/// unit of work may miss other rows too).
bool is_stale_timer(const sub_state& s, const commit_reply& r,
                    const subscription_input& in, bool retry) {
  const auto* t = std::get_if<sub_in::timer_due>(&in);
  if (!retry || t == nullptr || !t->pending || r.error->code != errc::not_found)
    return false;
  auto pending = s.ctx->db->timer_pending(tenant_of(s), t->timer.owner,
                                          t->timer.id);
  return pending.has_value() && !*pending;
}

/// What follows a commit attempt of `d`: adopt the new state and issue the
/// calls, or (failure) forget the cached state and retry an input nobody
/// waits for when the store was merely unavailable.
void committed(sub_actor* self, subscription_decision&& d,
               const saga_tally& tally,
               std::optional<reply_slot>& reply,
               const commit_reply& r, subscription_input& in, bool retry) {
  auto& s = self->state;
  if (!r.ok() && is_stale_timer(s, r, in, retry)) {
    // Cancelled (or completed) between its claim and its delivery: the
    // input is taken again as a timer the store no longer has, which
    // changes nothing and completes nothing, and it is acknowledged.
    spdlog::debug("event=stale_timer tenant={} subscription={} timer={}",
                  tenant_of(s).value, id_of(s).value,
                  std::get<sub_in::timer_due>(in).timer.id);
    std::get<sub_in::timer_due>(in).pending = false;
    process(self, std::move(in), std::move(reply), retry);
    return;
  }
  if (!r.ok()) {
    bump(&runtime_counters::commit_failures, s.ctx);
    s.loaded = false; // re-read before the next input
    if (retry && r.error->code == errc::unavailable) {
      spdlog::debug("event=commit_retry tenant={} subscription={} error={}",
                    tenant_of(s).value, id_of(s).value, r.error->detail);
      retry_later(self, std::move(in));
      answer(self, reply, *r.error);
      return;
    }
    spdlog::warn("event=commit_failed tenant={} subscription={} error={}",
                 tenant_of(s).value, id_of(s).value, r.error->detail);
    answer(self, reply, *r.error);
    return;
  }
  s.retry_backoff_ms = 0;
  bump(&runtime_counters::commits, s.ctx);
  count_sagas(s.ctx, tally);
  adopt(s, std::move(d.next));
  answer(self, reply, std::nullopt);
  issue_calls(self, d.calls);
}

void process(sub_actor* self, subscription_input in,
             std::optional<reply_slot> reply, bool retry) {
  auto& s = self->state;
  bump(&runtime_counters::inputs, s.ctx);
  if (!s.loaded)
    if (auto st = load(self); !st) {
      spdlog::warn("event=activation_failed tenant={} subscription={} error={}",
                   tenant_of(s).value, id_of(s).value, st.error().detail);
      answer(self, reply, st.error(), false);
      return;
    }
  const auto* env = s.ctx->env_for(tenant_of(s));
  if (env == nullptr) {
    answer(self, reply, make_error(errc::not_found, "unknown tenant"), false);
    return;
  }
  // A generator per input, derived from (seed, subscription, version): the
  // draws replay whatever the actor's history of activations was.
  std::uint64_t mix =
    s.ctx->seed ^ std::hash<std::string>{}(key_of(tenant_of(s), id_of(s)));
  rng::splitmix64(mix);
  rng gen{rng::splitmix64(mix) ^ static_cast<std::uint64_t>(s.agg.sub.version)};
  clock* clk = s.ctx->clk;
  if (s.ctx->clock_for)
    if (clock* own = s.ctx->clock_for(tenant_of(s)); own != nullptr)
      clk = own;
  auto d = handle(s.agg, tenant_of(s), id_of(s), in, *env, clk->now(), gen);
  if (!d) {
    bump(&runtime_counters::rejected, s.ctx);
    answer(self, reply, d.error());
    return;
  }
  if (d->work.empty()) {
    adopt(s, std::move(d->next));
    answer(self, reply, std::nullopt);
    issue_calls(self, d->calls);
    return;
  }
  const auto tally = saga_tally::of(d->work);
  if (s.ctx->commit_in_actor) {
    // The store's commits never wait on I/O (in-memory): commit here, with
    // no round trip through the writer actor; the unit moves into the store.
    auto r = commit_reply::from(s.ctx->db->commit_owned(std::move(d->work)));
    committed(self, std::move(*d), tally, reply, r, in, retry);
    return;
  }
  // The unit of work travels; the rest of the decision stays here.
  auto work = std::move(d->work);
  auto pending = std::make_shared<subscription_decision>(std::move(*d));
  std::shared_ptr<subscription_input> again;
  if (retry)
    again = std::make_shared<subscription_input>(std::move(in));
  // await: nothing else for this subscription runs until the commit is known.
  self->request(s.writer, caf::infinite, commit_atom::value, std::move(work))
    .await(
      [self, pending, tally, reply, again](commit_reply& r) mutable {
        subscription_input none;
        committed(self, std::move(*pending), tally, reply, r,
                  again ? *again : none, again != nullptr);
      },
      [self, pending, tally, reply, again](caf::error& e) mutable {
        commit_reply r;
        r.error = make_error(errc::unavailable, "store writer: " + to_string(e));
        subscription_input none;
        committed(self, std::move(*pending), tally, reply, r,
                  again ? *again : none, again != nullptr);
      });
}

/// One behavior for all subscription actors: its only case matches a message
/// nobody sends, so every message goes to the default handler (`dispatch`),
/// which gets the actor as an argument. A behavior built per actor costs a
/// block of ≈ 300 B holding six lambdas that differ only by `self`.
using never_atom = caf::atom_constant<caf::atom("never")>;

const caf::behavior& shared_behavior() {
  static const caf::behavior b{[](never_atom) {}};
  return b;
}

caf::result<caf::message> dispatch(caf::scheduled_actor* base,
                                   caf::message_view& x) {
  auto* self = static_cast<sub_actor*>(base);
  auto& s = self->state;
  auto& m = x.content();
  if (m.match_elements<subscription_command>()) {
    auto c = m.move_if_unshared<subscription_command>(0);
    auto rp = self->make_response_promise();
    process(self, std::move(c.input), reply_slot{rp}, false);
    return rp;
  }
  if (m.match_elements<caf::atom_value, claimed_timer>()
      && m.get_as<caf::atom_value>(0) == timer_due_atom::value) {
    auto t = m.move_if_unshared<claimed_timer>(1);
    // Answered after the commit when asked (the timer service's flow
    // control sends timers as requests); a plain send expects nothing.
    std::optional<reply_slot> rp;
    if (self->current_message_id().is_request())
      rp = reply_slot{self->make_response_promise(), false};
    process(self, sub_in::timer_due{std::move(t.timer)}, rp, true);
    return caf::delegated<caf::message>{};
  }
  if (m.match_elements<caf::atom_value, std::string, std::uint32_t>()
      && m.get_as<caf::atom_value>(0) == idle_atom::value) {
    // The registry's sweep found no message for a whole idle period. Busy
    // (a gateway call or a retry pending): no answer, the sweep asks again
    // an idle period later. Quiet: every message the registry forwarded up
    // to this query has been handled (one mailbox, in order), so the
    // registry may stop us if it forwarded nothing since.
    if (s.calls_in_flight > 0 || !s.retries.empty())
      return caf::delegated<caf::message>{};
    self->send(caf::actor_cast<caf::actor>(self->current_sender()),
               passivate_atom::value, m.move_if_unshared<std::string>(1),
               m.get_as<std::uint32_t>(2));
    return caf::delegated<caf::message>{};
  }
  if (m.match_elements<caf::atom_value>()) {
    auto a = m.get_as<caf::atom_value>(0);
    if (a == activate_atom::value) {
      // Recovery: load, and re-issue what was in flight under the same keys.
      if (!s.loaded && load(self)) {
        const auto* env = s.ctx->env_for(tenant_of(s));
        if (env != nullptr)
          issue_calls(self, resume_calls(s.agg, *env));
      }
      gauge(s.ctx, -1);
      return caf::delegated<caf::message>{};
    }
    if (a == retry_atom::value) {
      if (!s.retries.empty()) {
        auto in = std::move(s.retries.front());
        s.retries.erase(s.retries.begin());
        process(self, std::move(in), std::nullopt, true);
      }
      return caf::delegated<caf::message>{};
    }
    if (a == stop_atom::value) {
      bump(&runtime_counters::passivations, s.ctx);
      self->quit();
      return caf::delegated<caf::message>{};
    }
  }
  spdlog::warn("event=unexpected_message actor=subscription tenant={} "
               "subscription={} message={}",
               tenant_of(s).value, id_of(s).value, to_string(m));
  return caf::sec::unexpected_message;
}

caf::behavior subscription_actor(sub_actor* self, const runtime_context* ctx,
                                 tenant_id tenant, subscription_id id,
                                 caf::actor writer, caf::actor gateway) {
  auto& s = self->state;
  s.ctx = ctx;
  s.agg.sub.tenant = std::move(tenant);
  s.agg.sub.id = std::move(id);
  s.writer = std::move(writer);
  s.gateway = std::move(gateway);
  if (ctx->counters != nullptr)
    ctx->counters->live_actors.fetch_add(1, std::memory_order_relaxed);
  self->set_default_handler(dispatch);
  return shared_behavior();
}

// -- the registry -------------------------------------------------------------

struct registry_state {
  const runtime_context* ctx = nullptr;
  caf::actor writer;
  caf::actor gateway;
  struct entry {
    caf::actor actor;
    /// Messages forwarded to the actor (only compared for equality: wraps).
    std::uint32_t forwarded = 0;
    /// The sweep tick of the last message forwarded or idle query sent.
    std::uint32_t touched = 0;
  };
  std::unordered_map<std::string, entry> actors;
  std::uint64_t forwarded = 0;
  /// Idle detection: every half idle period a sweep walks the map (in steps
  /// of `sweep_buckets_per_step` buckets, so commands interleave with it)
  /// and asks the actors untouched for three ticks, i.e. for one to one and
  /// a half idle periods, whether they are quiet.
  std::uint32_t tick = 0;
  bool sweep_armed = false;
  std::size_t sweep_bucket = 0; // next bucket of the walk under way
  /// Actors stopped since the allocator last handed free memory back: the
  /// next sweep tick does (their memory is freed as they stop, after the
  /// registry let go of them), so RSS follows passivation.
  std::size_t stopped_since_release = 0;
  static inline const char* name = "subscription-registry";

  ~registry_state() {
    for (auto& [key, e] : actors)
      caf::anon_send_exit(e.actor, caf::exit_reason::user_shutdown);
  }
};

using registry_actor = caf::stateful_actor<registry_state>;

using sweep_atom = caf::atom_constant<caf::atom("sweep")>;
using sweep_more_atom = caf::atom_constant<caf::atom("sweepmore")>;

/// Buckets one sweep step walks before it lets other messages in (at about
/// one entry per bucket, a few milliseconds).
constexpr std::size_t sweep_buckets_per_step = 16'384;
/// Idle queries one step sends at most, and the pause before the next step
/// when it sent that many (up to 400,000 queries a second).
constexpr std::size_t sweep_queries_per_step = 2'000;
constexpr auto sweep_pause = std::chrono::milliseconds{5};
/// Ticks (half idle periods) without a message before an actor is asked.
constexpr std::uint32_t idle_ticks = 3;

std::chrono::milliseconds sweep_period(const runtime_context* ctx) {
  return std::chrono::milliseconds{std::max<std::int64_t>(
    1, ctx->idle_passivation_ms / 2)};
}

void arm_sweep(registry_actor* self) {
  auto& st = self->state;
  if (st.ctx->idle_passivation_ms <= 0 || st.sweep_armed
      || (st.actors.empty() && st.stopped_since_release == 0))
    return;
  st.sweep_armed = true;
  self->delayed_send(self, sweep_period(st.ctx), sweep_atom::value);
}

/// One step of the sweep: a run of buckets. A rehash between steps may make
/// the walk miss entries or see some twice; a missed one is asked at the
/// next sweep, one seen twice was just touched and is skipped.
void sweep_step(registry_actor* self) {
  auto& st = self->state;
  auto buckets = st.actors.bucket_count();
  auto end = std::min(buckets, st.sweep_bucket + sweep_buckets_per_step);
  std::size_t asked = 0;
  auto b = st.sweep_bucket;
  for (; b < end && asked < sweep_queries_per_step; ++b)
    for (auto it = st.actors.begin(b); it != st.actors.end(b); ++it) {
      auto& e = it->second;
      if (st.tick - e.touched < idle_ticks)
        continue;
      e.touched = st.tick; // busy actors do not answer: ask again later
      // send_as without an execution context: CAF 0.17 then schedules the
      // actor round robin over the workers (as a timer would), where a plain
      // send puts it on this worker's queue; thousands of them there make the
      // other worker steal them one by one, each steal scanning the queue
      // from its head under its locks (passivation slowed from seconds to
      // minutes at 100,000 actors).
      caf::send_as(caf::actor_cast<caf::actor>(self), e.actor, idle_atom::value,
                   it->first, e.forwarded);
      ++asked;
    }
  st.sweep_bucket = b;
  if (b < buckets) {
    // Paced, so that a million idle actors are not asked in one go.
    if (asked >= sweep_queries_per_step)
      self->delayed_send(self, sweep_pause, sweep_more_atom::value);
    else
      self->send(self, sweep_more_atom::value);
    return;
  }
  st.sweep_armed = false;
  arm_sweep(self);
}

registry_state::entry& entry_for(registry_actor* self, const tenant_id& t,
                                 const subscription_id& s) {
  auto& st = self->state;
  auto key = key_of(t, s);
  auto it = st.actors.find(key);
  if (it == st.actors.end()) {
    // Not linked: in CAF 0.17 every linked child's exit costs the parent a
    // scan of its link list (quadratic over a million passivations). The
    // registry stops the children it still holds when it goes down.
    auto a = self->spawn(subscription_actor, st.ctx, t, s, st.writer,
                         st.gateway);
    it = st.actors.emplace(key, registry_state::entry{a, 0, 0}).first;
    arm_sweep(self);
  }
  ++it->second.forwarded;
  it->second.touched = st.tick;
  ++st.forwarded;
  gauge(st.ctx, +1); // ended by the actor's answer (or its activation)
  return it->second;
}

caf::behavior registry(registry_actor* self, const runtime_context* ctx,
                       caf::actor writer, caf::actor gateway) {
  self->state.ctx = ctx;
  self->state.writer = std::move(writer);
  self->state.gateway = std::move(gateway);
  return {
    [self](subscription_command& c) {
      auto& e = entry_for(self, c.tenant, c.subscription);
      return self->delegate(e.actor, std::move(c));
    },
    [self](timer_due_atom a, claimed_timer& t) {
      auto sub_id = timer_subscription(t.timer.payload_json);
      if (!sub_id) {
        spdlog::warn("event=timer_unroutable tenant={} timer={}",
                     t.tenant.value, t.timer.id);
        if (self->current_message_id().is_request())
          self->make_response_promise().deliver(command_reply{
            make_error(errc::invalid_argument, "timer without subscription"),
            {}});
        return;
      }
      subscription_id sub{std::move(*sub_id)};
      auto& e = entry_for(self, t.tenant, sub);
      self->delegate(e.actor, a, std::move(t));
    },
    [self](sweep_atom) {
      if (auto& stopped = self->state.stopped_since_release; stopped > 0) {
        release_free_memory();
        spdlog::debug("event=memory_released allocator={} huge_pages={} "
                      "passivated={}",
                      allocator_name(), to_string(huge_pages()), stopped);
        stopped = 0;
      }
      ++self->state.tick;
      self->state.sweep_bucket = 0;
      sweep_step(self);
    },
    [self](sweep_more_atom) { sweep_step(self); },
    [self](passivate_atom, const std::string& key, std::uint32_t received) {
      auto& st = self->state;
      auto it = st.actors.find(key);
      if (it == st.actors.end() || it->second.forwarded != received
          || it->second.actor != caf::actor_cast<caf::actor>(self->current_sender()))
        return; // something is on its way to it: stay active
      caf::send_as(caf::actor_cast<caf::actor>(self), it->second.actor,
                   stop_atom::value); // see sweep_step
      st.actors.erase(it);
      ++st.stopped_since_release;
      arm_sweep(self); // the last ones too: the next tick releases memory
    },
    [self](recover_atom) -> std::uint64_t {
      auto& st = self->state;
      std::set<std::pair<std::string, std::string>> subs;
      std::string cursor;
      do {
        auto pg = st.ctx->db->find_unfinished_sagas(cursor, 1000);
        if (!pg) {
          spdlog::error("event=recovery_failed error={}", pg.error().detail);
          break;
        }
        for (const auto& ts : pg->items)
          subs.emplace(ts.tenant.value, ts.saga.subscription.value);
        cursor = pg->next_cursor;
      } while (!cursor.empty());
      for (const auto& [t, s] : subs) {
        auto& e = entry_for(self, tenant_id{t}, subscription_id{s});
        self->send(e.actor, activate_atom::value);
      }
      spdlog::info("event=recovery subscriptions={}", subs.size());
      return subs.size();
    },
    [self](stats_atom) {
      return registry_stats{
        static_cast<std::int64_t>(self->state.actors.size()),
        self->state.forwarded};
    },
  };
}

} // namespace

std::optional<std::string> timer_subscription(std::string_view payload) {
  // The shape of every lifecycle timer: exactly {"subscription":"<id>"},
  // the id plain ASCII (no quote, escape or control character), read as it
  // stands. Anything else is parsed, as JSON with UTF-8 checks.
  constexpr std::string_view head = R"({"subscription":")";
  constexpr std::string_view tail = R"("})";
  if (payload.size() > head.size() + tail.size() && payload.starts_with(head)
      && payload.ends_with(tail)) {
    const auto id = payload.substr(head.size(),
                                   payload.size() - head.size() - tail.size());
    if (std::none_of(id.begin(), id.end(), [](char ch) {
          const auto u = static_cast<unsigned char>(ch);
          return ch == '"' || ch == '\\' || u < 0x20 || u >= 0x80;
        }))
      return std::string{id};
  }
  auto p = nlohmann::json::parse(payload, nullptr, false);
  if (!p.is_object())
    return std::nullopt;
  auto it = p.find("subscription");
  if (it == p.end() || !it->is_string())
    return std::nullopt;
  return it->get<std::string>();
}

caf::actor spawn_registry(caf::actor_system& sys, const runtime_context* ctx,
                          caf::actor writer, caf::actor gateway) {
  RECUR_ASSERT(ctx != nullptr && ctx->db != nullptr && ctx->clk != nullptr
               && ctx->env_for);
  return sys.spawn(registry, ctx, std::move(writer), std::move(gateway));
}

} // namespace recur
