// The registry and the subscription actors (see subscription_runtime.hpp).

#include <algorithm>
#include <chrono>
#include <deque>
#include <functional>
#include <memory>
#include <set>
#include <string>
#include <unordered_map>

#include <caf/all.hpp>
#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>

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

// -- the subscription actor ---------------------------------------------------

struct sub_state {
  const runtime_context* ctx = nullptr;
  tenant_id tenant;
  subscription_id id;
  std::string key;
  caf::actor registry;
  caf::actor writer;
  caf::actor gateway;
  subscription_aggregate agg;
  bool loaded = false;
  std::uint64_t received = 0; // messages the registry forwarded to us
  bool idle_armed = false; // one idle check pending at most
  std::int64_t calls_in_flight = 0;
  /// Timers and gateway outcomes whose commit failed (the store or its
  /// writer unavailable): processed again after a backoff, so that a busy
  /// store delays them instead of losing them until a lease or a restart.
  std::vector<subscription_input> retries; // empty: no allocation
  std::int64_t retry_backoff_ms = 0;
  static inline const char* name = "subscription";
};

using sub_actor = caf::stateful_actor<sub_state>;

/// Activation: the state from the snapshot or last event, and its live sagas.
status load(sub_actor* self) {
  auto& s = self->state;
  auto agg = load_subscription(*s.ctx->db, s.tenant, s.id);
  if (!agg)
    return agg.error();
  s.agg = std::move(*agg);
  s.loaded = true;
  bump(&runtime_counters::activations, s.ctx);
  return {};
}

/// `reply`: answered with a command_reply once the input's unit of work is
/// committed (or nothing changed). `retry`: a commit refused because the
/// store was unavailable is tried again later (timers, gateway outcomes);
/// a client's command is answered with the failure instead.
void process(sub_actor* self, subscription_input in,
             std::optional<caf::response_promise> reply, bool retry);

void issue_calls(sub_actor* self, const std::vector<gateway_call_request>& calls) {
  auto& s = self->state;
  for (const auto& c : calls) {
    gateway_call call = c.kind == gateway_call_request::op::refund
                          ? gateway_call::make_refund(*c.refund)
                        : c.kind == gateway_call_request::op::resolve
                          ? gateway_call::make_resolve(*c.charge)
                          : gateway_call::make_charge(*c.charge);
    ++s.calls_in_flight;
    gauge(s.ctx, +1);
    bump(&runtime_counters::gateway_calls, s.ctx);
    sub_in::gateway_done base;
    base.saga = c.saga;
    base.step = c.step;
    base.action_key = c.action_key;
    self->request(s.gateway, caf::infinite, std::move(call))
      .then(
        [self, base](gateway_reply& r) mutable {
          --self->state.calls_in_flight;
          base.charge = r.charge;
          base.refund = r.refund;
          if (r.error)
            base.failure = *r.error;
          process(self, std::move(base), std::nullopt, true);
        },
        [self, base](caf::error& e) mutable {
          --self->state.calls_in_flight;
          base.failure = make_error(errc::unavailable,
                                    "gateway actor: " + to_string(e));
          process(self, std::move(base), std::nullopt, true);
        });
  }
}

void count_sagas(const runtime_context* ctx, const unit_of_work& w) {
  for (const auto& r : w.new_sagas) {
    bump(&runtime_counters::sagas_started, ctx);
    if (r.status == saga_status::completed)
      bump(&runtime_counters::sagas_completed, ctx);
    else if (r.status == saga_status::compensated)
      bump(&runtime_counters::sagas_compensated, ctx);
    else if (r.status == saga_status::failed)
      bump(&runtime_counters::sagas_failed, ctx);
  }
  for (const auto& u : w.saga_updates) {
    if (u.status == saga_status::completed)
      bump(&runtime_counters::sagas_completed, ctx);
    else if (u.status == saga_status::compensated)
      bump(&runtime_counters::sagas_compensated, ctx);
    else if (u.status == saga_status::failed)
      bump(&runtime_counters::sagas_failed, ctx);
  }
}

/// A failed commit of an input nobody waits for: try it again later.
void retry_later(sub_actor* self, subscription_input in) {
  auto& s = self->state;
  gauge(s.ctx, +1);
  s.retries.push_back(std::move(in));
  s.retry_backoff_ms = std::clamp<std::int64_t>(s.retry_backoff_ms * 2, 20, 1'000);
  self->delayed_send(self, std::chrono::milliseconds(s.retry_backoff_ms),
                     retry_atom::value);
}

/// The end of one input: answer whoever waits, and count it done.
void answer(sub_actor* self, std::optional<caf::response_promise>& reply,
            command_reply r) {
  if (reply)
    reply->deliver(std::move(r));
  gauge(self->state.ctx, -1);
}

/// What follows a commit attempt of `d`: adopt the new state and issue the
/// calls, or (failure) forget the cached state and retry an input nobody
/// waits for when the store was merely unavailable.
void committed(sub_actor* self, subscription_decision&& d,
               std::optional<caf::response_promise>& reply,
               const commit_reply& r, subscription_input& in, bool retry) {
  auto& s = self->state;
  if (!r.ok()) {
    bump(&runtime_counters::commit_failures, s.ctx);
    s.loaded = false; // re-read before the next input
    if (retry && r.error->code == errc::unavailable) {
      spdlog::debug("event=commit_retry tenant={} subscription={} error={}",
                    s.tenant.value, s.id.value, r.error->detail);
      retry_later(self, std::move(in));
      answer(self, reply, command_reply{*r.error, s.agg.sub});
      return;
    }
    spdlog::warn("event=commit_failed tenant={} subscription={} error={}",
                 s.tenant.value, s.id.value, r.error->detail);
    answer(self, reply, command_reply{*r.error, s.agg.sub});
    return;
  }
  s.retry_backoff_ms = 0;
  bump(&runtime_counters::commits, s.ctx);
  count_sagas(s.ctx, d.work);
  s.agg = std::move(d.next);
  answer(self, reply, command_reply{std::nullopt, s.agg.sub});
  issue_calls(self, d.calls);
}

void process(sub_actor* self, subscription_input in,
             std::optional<caf::response_promise> reply, bool retry) {
  auto& s = self->state;
  bump(&runtime_counters::inputs, s.ctx);
  if (!s.loaded)
    if (auto st = load(self); !st) {
      spdlog::warn("event=activation_failed tenant={} subscription={} error={}",
                   s.tenant.value, s.id.value, st.error().detail);
      answer(self, reply, command_reply{st.error(), {}});
      return;
    }
  const auto* env = s.ctx->env_for(s.tenant);
  if (env == nullptr) {
    answer(self, reply, command_reply{make_error(errc::not_found, "unknown tenant"),
                                {}});
    return;
  }
  // A generator per input, derived from (seed, subscription, version): the
  // draws replay whatever the actor's history of activations was.
  std::uint64_t mix = s.ctx->seed ^ std::hash<std::string>{}(s.key);
  rng::splitmix64(mix);
  rng gen{rng::splitmix64(mix) ^ static_cast<std::uint64_t>(s.agg.sub.version)};
  clock* clk = s.ctx->clk;
  if (s.ctx->clock_for)
    if (clock* own = s.ctx->clock_for(s.tenant); own != nullptr)
      clk = own;
  auto d = handle(s.agg, s.tenant, s.id, in, *env, clk->now(), gen);
  if (!d) {
    bump(&runtime_counters::rejected, s.ctx);
    answer(self, reply, command_reply{d.error(), s.agg.sub});
    return;
  }
  if (d->work.empty()) {
    s.agg = std::move(d->next);
    answer(self, reply, command_reply{std::nullopt, s.agg.sub});
    issue_calls(self, d->calls);
    return;
  }
  if (s.ctx->commit_in_actor) {
    // The store's commits never wait on I/O (in-memory): commit here, with
    // no round trip through the writer actor.
    auto r = commit_reply::from(s.ctx->db->commit(d->work));
    committed(self, std::move(*d), reply, r, in, retry);
    return;
  }
  auto pending = std::make_shared<subscription_decision>(std::move(*d));
  auto work = pending->work; // a copy travels; the decision stays here
  std::shared_ptr<subscription_input> again;
  if (retry)
    again = std::make_shared<subscription_input>(std::move(in));
  // await: nothing else for this subscription runs until the commit is known.
  self->request(s.writer, caf::infinite, commit_atom::value, std::move(work))
    .await(
      [self, pending, reply, again](commit_reply& r) mutable {
        subscription_input none;
        committed(self, std::move(*pending), reply, r, again ? *again : none,
                  again != nullptr);
      },
      [self, pending, reply, again](caf::error& e) mutable {
        commit_reply r;
        r.error = make_error(errc::unavailable, "store writer: " + to_string(e));
        subscription_input none;
        committed(self, std::move(*pending), reply, r, again ? *again : none,
                  again != nullptr);
      });
}

/// Arms the idle check unless one is pending. CAF 0.17 cannot cancel a
/// delayed message, so instead of one per message there is one per actor:
/// it carries the count of messages seen when it was armed, and finding
/// newer ones it arms itself again (passivation then comes between one and
/// two idle periods after the last message).
void arm_idle(sub_actor* self) {
  auto& s = self->state;
  if (s.ctx->idle_passivation_ms <= 0 || s.idle_armed)
    return;
  s.idle_armed = true;
  self->delayed_send(self, std::chrono::milliseconds(s.ctx->idle_passivation_ms),
                     idle_atom::value, s.received);
}

/// After a message from the registry.
void touched(sub_actor* self) {
  ++self->state.received;
  arm_idle(self);
}

caf::behavior subscription_actor(sub_actor* self, const runtime_context* ctx,
                                 tenant_id tenant, subscription_id id,
                                 caf::actor registry, caf::actor writer,
                                 caf::actor gateway) {
  auto& s = self->state;
  s.ctx = ctx;
  s.tenant = std::move(tenant);
  s.id = std::move(id);
  s.key = key_of(s.tenant, s.id);
  s.registry = std::move(registry);
  s.writer = std::move(writer);
  s.gateway = std::move(gateway);
  if (ctx->counters != nullptr)
    ctx->counters->live_actors.fetch_add(1, std::memory_order_relaxed);
  self->attach_functor([ctx] {
    if (ctx->counters != nullptr)
      ctx->counters->live_actors.fetch_sub(1, std::memory_order_relaxed);
  });
  return {
    [self](subscription_command& c) {
      touched(self);
      auto rp = self->make_response_promise();
      process(self, std::move(c.input), rp, false);
    },
    [self](timer_due_atom, claimed_timer& t) {
      touched(self);
      // Answered after the commit when asked (the timer service's flow
      // control sends timers as requests); a plain send expects nothing.
      std::optional<caf::response_promise> rp;
      if (self->current_message_id().is_request())
        rp = self->make_response_promise();
      process(self, sub_in::timer_due{std::move(t.timer)}, rp, true);
    },
    [self](activate_atom) {
      // Recovery: load, and re-issue what was in flight under the same keys.
      touched(self);
      auto& s = self->state;
      if (!s.loaded && load(self)) {
        const auto* env = s.ctx->env_for(s.tenant);
        if (env != nullptr)
          issue_calls(self, resume_calls(s.agg, *env));
      }
      gauge(s.ctx, -1);
    },
    [self](retry_atom) {
      auto& s = self->state;
      if (s.retries.empty())
        return;
      auto in = std::move(s.retries.front());
      s.retries.erase(s.retries.begin());
      process(self, std::move(in), std::nullopt, true);
    },
    [self](idle_atom, std::uint64_t seen) {
      auto& s = self->state;
      s.idle_armed = false;
      if (seen != s.received || s.calls_in_flight > 0 || !s.retries.empty()) {
        arm_idle(self); // busy since: look again later (never stay forever)
        return;
      }
      self->send(s.registry, passivate_atom::value, s.key, s.received);
    },
    [self](stop_atom) {
      bump(&runtime_counters::passivations, self->state.ctx);
      self->quit();
    },
  };
}

// -- the registry -------------------------------------------------------------

struct registry_state {
  const runtime_context* ctx = nullptr;
  caf::actor writer;
  caf::actor gateway;
  struct entry {
    caf::actor actor;
    std::uint64_t forwarded = 0;
  };
  std::unordered_map<std::string, entry> actors;
  std::uint64_t forwarded = 0;
  static inline const char* name = "subscription-registry";

  ~registry_state() {
    for (auto& [key, e] : actors)
      caf::anon_send_exit(e.actor, caf::exit_reason::user_shutdown);
  }
};

using registry_actor = caf::stateful_actor<registry_state>;

registry_state::entry& entry_for(registry_actor* self, const tenant_id& t,
                                 const subscription_id& s) {
  auto& st = self->state;
  auto key = key_of(t, s);
  auto it = st.actors.find(key);
  if (it == st.actors.end()) {
    // Not linked: in CAF 0.17 every linked child's exit costs the parent a
    // scan of its link list (quadratic over a million passivations). The
    // registry stops the children it still holds when it goes down.
    auto a = self->spawn(subscription_actor, st.ctx, t, s,
                         caf::actor_cast<caf::actor>(self), st.writer,
                         st.gateway);
    it = st.actors.emplace(key, registry_state::entry{a, 0}).first;
  }
  ++it->second.forwarded;
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
      auto p = nlohmann::json::parse(t.timer.payload_json, nullptr, false);
      if (!p.is_object() || !p.contains("subscription")
          || !p["subscription"].is_string()) {
        spdlog::warn("event=timer_unroutable tenant={} timer={}",
                     t.tenant.value, t.timer.id);
        if (self->current_message_id().is_request())
          self->make_response_promise().deliver(command_reply{
            make_error(errc::invalid_argument, "timer without subscription"),
            {}});
        return;
      }
      subscription_id sub{p["subscription"].get<std::string>()};
      auto& e = entry_for(self, t.tenant, sub);
      self->delegate(e.actor, a, std::move(t));
    },
    [self](passivate_atom, const std::string& key, std::uint64_t received) {
      auto& st = self->state;
      auto it = st.actors.find(key);
      if (it == st.actors.end() || it->second.forwarded != received
          || it->second.actor != caf::actor_cast<caf::actor>(self->current_sender()))
        return; // something is on its way to it: stay active
      self->send(it->second.actor, stop_atom::value);
      st.actors.erase(it);
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

caf::actor spawn_registry(caf::actor_system& sys, const runtime_context* ctx,
                          caf::actor writer, caf::actor gateway) {
  RECUR_ASSERT(ctx != nullptr && ctx->db != nullptr && ctx->clk != nullptr
               && ctx->env_for);
  return sys.spawn(registry, ctx, std::move(writer), std::move(gateway));
}

} // namespace recur
