// The subscription actors on CAF: deterministic runs on the test coordinator
// (inline store writer and gateway), crash + recovery with a fresh actor
// system, passivation, and real-thread concurrency through group commit.

// GCC 12 reports a false maybe-uninitialized on variant temporaries of
// subscription_input built inline at -O2; nothing here is uninitialized.
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"

#include <atomic>
#include <map>
#include <thread>
#include <vector>

#include <caf/all.hpp>
#include <caf/scheduler/test_coordinator.hpp>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "actors/gateway_actor_impl.hpp"
#include "actors/store_writer_impl.hpp"
#include "actors/subscription_actor_impl.hpp"
#include "actors/timer_service_impl.hpp"
#include "gateways/sandbox_gateway.hpp"
#include "persistence/memory_store.hpp"
#include "../sagas/billing_harness.hpp" // the §9 invariant checker

namespace recur {
namespace {

const tenant_id tenant{"t_1"};
const subscription_id sub{"sub_1"};
const instant t0 = utc(2026, 4, 1);

struct world {
  memory_store st;
  manual_clock clk{t0};
  sandbox_gateway gw{clk, 7};
  memory_plan_catalog plans;
  billing_env env;
  runtime_counters counters;
  runtime_context ctx;

  explicit world(std::int64_t idle_ms = 0) {
    plan_version basic{1, instant{0}, currency::of("USD"),
                       billing_interval{interval_unit::month, 1}, 14,
                       pricing::flat(3000), {}};
    EXPECT_TRUE(plans.add(plan_id{"basic"}, basic).has_value());
    env.plans = &plans;
    ctx.db = &st;
    ctx.clk = &clk;
    ctx.env_for = [this](const tenant_id& t) -> const billing_env* {
      return t == tenant ? &env : nullptr;
    };
    ctx.seed = 11;
    ctx.idle_passivation_ms = idle_ms;
    ctx.counters = &counters;
  }
};

/// Gateway calls held in front of the gateway actor until released (the
/// test coordinator runs everything on the test thread: plain pointers).
using release_atom = caf::atom_constant<caf::atom("release")>;

struct held_calls {
  std::vector<std::pair<caf::response_promise, gateway_call>> calls;
};

caf::behavior holding_gateway(caf::event_based_actor* self, held_calls* held,
                              caf::actor real) {
  return {
    [=](gateway_call& c) {
      held->calls.emplace_back(self->make_response_promise(), std::move(c));
    },
    [=](release_atom) {
      for (auto& [rp, c] : held->calls)
        rp.delegate(real, std::move(c));
      held->calls.clear();
    },
  };
}

/// One actor system on the test coordinator over a world (a "process").
class node {
public:
  static caf::actor_system_config& configure(caf::actor_system_config& c) {
    c.set("scheduler.policy", caf::atom("testing"));
    c.set("logger.file-verbosity", caf::atom("quiet"));
    return c;
  }

  /// `held`: the registry's gateway holds every call until release().
  explicit node(world& w, held_calls* held = nullptr)
    : w_(w),
      sys_{configure(cfg_)},
      sched_{dynamic_cast<caf::scheduler::test_coordinator&>(sys_.scheduler())},
      self_{sys_, true} {
    writer_ = spawn_store_writer(
      sys_, w.st, store_writer_config{store_writer_mode::inline_commit, {}, 64});
    gateway_actor_config gc;
    gc.inline_calls = true;
    gateway_ = spawn_gateway_actor(sys_, w.gw, w.clk, gc);
    if (held != nullptr)
      holder_ = sys_.spawn(holding_gateway, held, gateway_);
    registry_ = spawn_registry(sys_, &w.ctx, writer_,
                               held != nullptr ? holder_ : gateway_);
    timer_service_config tc;
    tc.poll_interval_ms = 0;
    tc.claimer = "node";
    timers_ = spawn_timer_service(sys_, w.st, w.clk, registry_, tc);
    run();
  }

  ~node() {
    for (auto* h : {&timers_, &registry_, &holder_, &gateway_, &writer_})
      if (*h)
        caf::anon_send_exit(*h, caf::exit_reason::user_shutdown);
    run();
  }

  void release_gateway_calls() {
    self_->send(holder_, release_atom::value);
    run();
  }

  std::size_t run() {
    std::size_t n = 0;
    while (sched_.try_run_once())
      ++n;
    return n;
  }

  command_reply send(subscription_input in, const subscription_id& s = sub) {
    auto h = self_->request(registry_, caf::infinite,
                            subscription_command{tenant, s, std::move(in)});
    run();
    command_reply out;
    out.failure = make_error(errc::unavailable, "no reply");
    if (!self_->has_next_message())
      return out;
    h.receive([&](command_reply& r) { out = std::move(r); },
              [&](caf::error& e) {
                out.failure = make_error(errc::unavailable, sys_.render(e));
              });
    return out;
  }

  /// Moves the clock day by day, firing due timers at each step.
  void advance_days(int days) {
    for (int i = 0; i < days * 24; ++i) {
      w_.clk.advance_seconds(seconds_per_hour);
      tick();
    }
  }

  void tick() {
    self_->send(timers_, tick_atom::value);
    run();
    // the tick's reply lands in our mailbox; drop it
    while (self_->has_next_message())
      self_->receive([](std::uint64_t) {}, [](caf::error&) {});
    run();
  }

  std::uint64_t recover() {
    auto h = self_->request(registry_, caf::infinite, recover_atom::value);
    run();
    std::uint64_t n = 0;
    h.receive([&](std::uint64_t x) { n = x; }, [](caf::error&) {});
    run();
    return n;
  }

  /// Hands a claimed timer to the registry as the timer service does (a
  /// request answered after the commit).
  command_reply deliver(claimed_timer t) {
    auto h = self_->request(registry_, caf::infinite, timer_due_atom::value,
                            std::move(t));
    run();
    command_reply out;
    out.failure = make_error(errc::unavailable, "no reply");
    if (!self_->has_next_message())
      return out;
    h.receive([&](command_reply& r) { out = std::move(r); },
              [&](caf::error& e) {
                out.failure = make_error(errc::unavailable, sys_.render(e));
              });
    return out;
  }

  registry_stats stats() {
    auto h = self_->request(registry_, caf::infinite, stats_atom::value);
    run();
    registry_stats out;
    h.receive([&](registry_stats s) { out = s; }, [](caf::error&) {});
    return out;
  }

  caf::scheduler::test_coordinator& sched() { return sched_; }

private:
  world& w_;
  caf::actor_system_config cfg_;
  caf::actor_system sys_;
  caf::scheduler::test_coordinator& sched_;
  caf::scoped_actor self_;
  caf::actor writer_, gateway_, holder_, registry_, timers_;
};

std::vector<std::string> invoice_statuses(world& w) {
  std::vector<std::string> out;
  auto pg = w.st.list_invoices(tenant, sub, "", 100);
  if (pg)
    for (const auto& i : pg->items)
      out.push_back(i.status);
  return out;
}

std::uint64_t outcomes(const world& w, gateway_call_request::op op,
                       gateway_outcome o) {
  return w.counters
    .gateway_outcomes[static_cast<std::size_t>(op)][static_cast<std::size_t>(o)]
    .load();
}

std::uint64_t all_outcomes(const world& w) {
  std::uint64_t n = 0;
  for (const auto& row : w.counters.gateway_outcomes)
    for (const auto& c : row)
      n += c.load();
  return n;
}

TEST(timer_subscription, reads_the_plain_shape_and_parses_every_other) {
  // The shape lifecycle timers have, read without a parse.
  EXPECT_EQ(timer_subscription(R"({"subscription":"sub_1"})"), "sub_1");
  // Other shapes and keys: parsed, with JSON's rules.
  EXPECT_EQ(timer_subscription(R"({"saga":"s/invoice/1","subscription":"sub_2"})"),
            "sub_2");
  EXPECT_EQ(timer_subscription(R"({ "subscription" : "sub_3" })"), "sub_3");
  EXPECT_EQ(timer_subscription(R"({"subscription":"a\"b"})"), "a\"b");
  EXPECT_EQ(timer_subscription(R"({"subscription":"a\u00e9"})"), "a\u00e9");
  EXPECT_EQ(timer_subscription(R"({"subscription":""})"), "");
  // Looks like the plain shape but is not JSON, or names no string.
  EXPECT_EQ(timer_subscription(R"({"subscription":"a"b"})"), std::nullopt);
  EXPECT_EQ(timer_subscription("{\"subscription\":\"a\nb\"}"), std::nullopt);
  EXPECT_EQ(timer_subscription("{\"subscription\":\"\xff\"}"), std::nullopt);
  EXPECT_EQ(timer_subscription(R"({"subscription":"x"}})"), std::nullopt);
  EXPECT_EQ(timer_subscription(R"({"subscription":7})"), std::nullopt);
  EXPECT_EQ(timer_subscription(R"({"saga":"x"})"), std::nullopt);
  EXPECT_EQ(timer_subscription(R"(["subscription"])"), std::nullopt);
  EXPECT_EQ(timer_subscription(""), std::nullopt);
}

TEST(subscription_actor, trial_renewals_through_actors) {
  world w;
  node n(w);
  auto r = n.send(sub_in::create{customer_id{"c"}, plan_id{"basic"}, 1,
                                 "pm_card_visa", std::nullopt});
  ASSERT_TRUE(r.ok()) << r.failure->detail;
  EXPECT_EQ(r.state.life.status, sub_status::trialing);
  n.advance_days(14);
  auto st = w.st.get_subscription(tenant, sub);
  ASSERT_TRUE(st.has_value());
  EXPECT_EQ(st->status, "active");
  n.advance_days(62); // two renewals
  EXPECT_EQ(invoice_statuses(w),
            (std::vector<std::string>{"paid", "paid", "paid"}));
  EXPECT_EQ(w.gw.total_collected(currency::of("USD")).amount_minor(), 9000);
  EXPECT_EQ(w.counters.sagas_completed.load(), 3u);
  EXPECT_EQ(w.counters.commit_failures.load(), 0u);
  // Every answered call is counted once, by what it came back with.
  using op = gateway_call_request::op;
  EXPECT_EQ(outcomes(w, op::charge, gateway_outcome::succeeded), 3u);
  EXPECT_EQ(all_outcomes(w), 3u);
  EXPECT_EQ(all_outcomes(w), w.counters.gateway_calls.load());
}

TEST(subscription_actor, invalid_command_is_rejected_and_changes_nothing) {
  world w;
  node n(w);
  ASSERT_TRUE(n.send(sub_in::create{customer_id{"c"}, plan_id{"basic"}, 1,
                                    "pm_card_visa", std::nullopt})
                .ok());
  auto before = w.st.load_events(tenant, sub, 1)->size();
  auto r = n.send(sub_in::resume{});
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.failure->code, errc::invalid_transition);
  EXPECT_EQ(r.state.life.status, sub_status::trialing);
  EXPECT_EQ(w.st.load_events(tenant, sub, 1)->size(), before);
  auto missing = n.send(sub_in::pause{}, subscription_id{"sub_404"});
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.failure->code, errc::not_found);
}

TEST(subscription_actor, dunning_suspension_and_recovery_after_a_crash) {
  world w;
  {
    node n(w);
    ASSERT_TRUE(n.send(sub_in::create{customer_id{"c"}, plan_id{"basic"}, 1,
                                      "pm_card_chargeDeclinedExpiredCard", 7})
                  .ok());
    n.advance_days(7);
    EXPECT_EQ(w.st.get_subscription(tenant, sub)->status, "past_due");
    n.advance_days(4);
  } // the process dies: every actor and all in-memory state is gone
  {
    node n(w);
    EXPECT_EQ(n.recover(), 1u); // the dunning saga is unfinished
    n.advance_days(11);
    EXPECT_EQ(w.st.get_subscription(tenant, sub)->status, "suspended");
    ASSERT_TRUE(n.send(sub_in::update_payment_method{"pm_card_visa"}).ok());
    auto inv = w.st.list_invoices(tenant, sub, "", 10)->items.at(0).id;
    auto r = n.send(sub_in::pay_invoice{inv});
    ASSERT_TRUE(r.ok()) << r.failure->detail;
    n.run();
    EXPECT_EQ(w.st.get_subscription(tenant, sub)->status, "active");
    EXPECT_EQ(invoice_statuses(w), std::vector<std::string>{"paid"});
    for (const auto& c : w.gw.charges())
      EXPECT_LE(w.gw.times_collected(c.idempotency_key), 1);
    EXPECT_EQ(testing::check_invariants(w.st, tenant, w.gw),
              std::vector<std::string>{});
    // The outcome counters agree with the attempts the store holds: every
    // hard decline before the new card, then the one success.
    std::uint64_t hard = 0;
    for (const auto& a : *w.st.list_attempts(tenant, inv))
      hard += a.status == "failed_hard" ? 1 : 0;
    using op = gateway_call_request::op;
    EXPECT_GE(hard, 2u);
    EXPECT_EQ(outcomes(w, op::charge, gateway_outcome::declined_hard), hard);
    EXPECT_EQ(outcomes(w, op::charge, gateway_outcome::succeeded), 1u);
    EXPECT_EQ(outcomes(w, op::charge, gateway_outcome::declined_soft), 0u);
  }
}

/// Moves the actor clock by 50 ms and runs what fell due (in small steps, as
/// a real clock would: a timer armed by a handler counts from when it ran).
void step_50ms(node& n) {
  n.sched().advance_time(std::chrono::milliseconds{50});
  n.run();
}

void move_clock(node& n, int ms) {
  for (int t = 0; t < ms; t += 50)
    step_50ms(n);
}

/// Moves the actor clock until the registry holds no actor (at most
/// `bound_ms`); returns the time moved.
int ms_until_passivated(node& n, int bound_ms) {
  int waited = 0;
  while (n.stats().actors > 0 && waited < bound_ms) {
    step_50ms(n);
    waited += 50;
  }
  return waited;
}

TEST(subscription_actor, passivates_when_idle_and_reactivates_with_its_state) {
  world w(1'000);
  node n(w);
  ASSERT_TRUE(n.send(sub_in::create{customer_id{"c"}, plan_id{"basic"}, 1,
                                    "pm_card_visa", std::nullopt})
                .ok());
  EXPECT_EQ(n.stats().actors, 1);
  EXPECT_EQ(w.counters.live_actors.load(), 1);
  // Between one and two idle periods after its last message.
  auto waited = ms_until_passivated(n, 5'000);
  EXPECT_GE(waited, 1'000);
  EXPECT_LE(waited, 2'000);
  EXPECT_EQ(n.stats().actors, 0);
  EXPECT_EQ(w.counters.passivations.load(), 1u);
  EXPECT_EQ(w.counters.live_actors.load(), 0);
  auto r = n.send(sub_in::cancel{true});
  ASSERT_TRUE(r.ok()) << r.failure->detail;
  EXPECT_TRUE(r.state.life.cancel_at_period_end);
  EXPECT_EQ(r.state.life.status, sub_status::trialing);
  EXPECT_EQ(w.counters.activations.load(), 2u);
}

TEST(subscription_actor, a_message_within_the_idle_period_keeps_the_actor) {
  world w(1'000);
  node n(w);
  ASSERT_TRUE(n.send(sub_in::create{customer_id{"c"}, plan_id{"basic"}, 1,
                                    "pm_card_visa", std::nullopt})
                .ok());
  // Messages every 700 ms for 3.5 s: always less than one idle period apart.
  for (int i = 0; i < 5; ++i) {
    move_clock(n, 700);
    ASSERT_EQ(n.stats().actors, 1) << "after " << (i + 1) * 700 << " ms";
    ASSERT_TRUE(n.send(sub_in::update_payment_method{
                         "pm_" + std::to_string(i)})
                  .ok());
  }
  EXPECT_EQ(w.counters.activations.load(), 1u);
  auto waited = ms_until_passivated(n, 5'000);
  EXPECT_GE(waited, 1'000);
  EXPECT_LE(waited, 2'000);
  EXPECT_EQ(w.counters.passivations.load(), 1u);
  EXPECT_EQ(w.counters.live_actors.load(), 0);
}

TEST(subscription_actor, each_idle_actor_passivates_on_its_own_schedule) {
  world w(1'000);
  node n(w);
  const subscription_id second{"sub_2"};
  ASSERT_TRUE(n.send(sub_in::create{customer_id{"c"}, plan_id{"basic"}, 1,
                                    "pm_card_visa", std::nullopt})
                .ok());
  move_clock(n, 900);
  ASSERT_TRUE(n.send(sub_in::create{customer_id{"c2"}, plan_id{"basic"}, 1,
                                    "pm_card_visa", std::nullopt},
                     second)
                .ok());
  EXPECT_EQ(n.stats().actors, 2);
  // At 1,850 ms the first (idle since 0) is gone, the second (idle since
  // 900 ms, less than one idle period) stays.
  ms_until_passivated(n, 950);
  EXPECT_EQ(n.stats().actors, 1);
  EXPECT_EQ(w.counters.passivations.load(), 1u);
  auto r = n.send(sub_in::update_payment_method{"pm_again"}, second);
  ASSERT_TRUE(r.ok()) << r.failure->detail;
  EXPECT_EQ(w.counters.activations.load(), 2u); // the second never left
  ms_until_passivated(n, 5'000);
  EXPECT_EQ(n.stats().actors, 0);
  EXPECT_EQ(w.counters.passivations.load(), 2u);
  EXPECT_EQ(w.counters.live_actors.load(), 0);
}

TEST(subscription_actor, an_actor_with_a_gateway_call_in_flight_stays_until_it_is_answered) {
  world w(1'000);
  held_calls held;
  node n(w, &held);
  // No trial: the first invoice is charged at once, and the call is held.
  ASSERT_TRUE(n.send(sub_in::create{customer_id{"c"}, plan_id{"basic"}, 1,
                                    "pm_card_visa", 0})
                .ok());
  ASSERT_EQ(held.calls.size(), 1u);
  // Five idle periods: asked again and again, never passivated while busy.
  move_clock(n, 5'000);
  EXPECT_EQ(n.stats().actors, 1);
  EXPECT_EQ(w.counters.passivations.load(), 0u);
  n.release_gateway_calls();
  EXPECT_EQ(invoice_statuses(w), std::vector<std::string>{"paid"});
  // Answered: it goes like any idle actor (its last registry message is
  // long past, so at the next question).
  auto waited = ms_until_passivated(n, 5'000);
  EXPECT_LE(waited, 2'000);
  EXPECT_EQ(n.stats().actors, 0);
  EXPECT_EQ(w.counters.passivations.load(), 1u);
  EXPECT_EQ(w.counters.activations.load(), 1u);
}

TEST(subscription_actor, a_refund_call_names_the_subscriptions_tenant) {
  world w;
  held_calls held;
  node n(w, &held);
  // No trial: the first invoice is charged at once, and the call is held.
  ASSERT_TRUE(n.send(sub_in::create{customer_id{"c"}, plan_id{"basic"}, 1,
                                    "pm_card_visa", 0})
                .ok());
  ASSERT_EQ(held.calls.size(), 1u);
  EXPECT_EQ(held.calls[0].second.charge.tenant, tenant);
  n.release_gateway_calls();
  ASSERT_EQ(invoice_statuses(w), std::vector<std::string>{"paid"});
  n.advance_days(15);
  // Cancelled at once with a prorated refund: the refund call must carry
  // the tenant (a per-tenant gateway routes by it, not by a memory of
  // charges that a restart loses).
  ASSERT_TRUE(n.send(sub_in::cancel{false}).ok());
  ASSERT_EQ(held.calls.size(), 1u);
  EXPECT_EQ(held.calls[0].second.kind, gateway_call::op::refund);
  EXPECT_EQ(held.calls[0].second.charge.tenant, tenant);
  n.release_gateway_calls();
  EXPECT_EQ(w.gw.total_refunded(currency::of("USD")).amount_minor(), 1500);
}

TEST(subscription_actor, a_timer_cancelled_between_its_claim_and_its_delivery_is_acknowledged) {
  world w;
  node n(w);
  ASSERT_TRUE(n.send(sub_in::create{customer_id{"c"}, plan_id{"basic"}, 1,
                                    "pm_card_visa", std::nullopt})
                .ok());
  // The trial's end is due and claimed, but not delivered yet ...
  w.clk.advance_seconds(14 * seconds_per_day);
  auto claimed = w.st.claim_due_timers(w.clk.now(), 10, 60, "test");
  ASSERT_TRUE(claimed.has_value());
  ASSERT_EQ(claimed->size(), 1u);
  // ... when the subscription is cancelled, which cancels that timer.
  ASSERT_TRUE(n.send(sub_in::cancel{false}).ok());
  auto events = w.st.load_events(tenant, sub, 1)->size();
  auto r = n.deliver(claimed->front());
  EXPECT_TRUE(r.ok()) << r.failure->detail;
  EXPECT_EQ(w.counters.commit_failures.load(), 0u);
  EXPECT_EQ(w.st.load_events(tenant, sub, 1)->size(), events);
  EXPECT_TRUE(invoice_statuses(w).empty());
  auto pending = w.st.timer_pending(tenant, sub.value, claimed->front().timer.id);
  ASSERT_TRUE(pending.has_value());
  EXPECT_FALSE(*pending);
}

/// A command's answer carries the state after it; a fired timer's (the
/// timer service only waits for the commit) carries none, and the state is
/// not copied for it.
TEST(subscription_actor, a_timer_is_acknowledged_without_the_state_a_command_gets) {
  world w;
  node n(w);
  auto created = n.send(sub_in::create{customer_id{"c"}, plan_id{"basic"}, 1,
                                       "pm_card_visa", std::nullopt});
  ASSERT_TRUE(created.ok());
  EXPECT_EQ(created.state.id, sub);
  EXPECT_EQ(created.state.life.status, sub_status::trialing);
  w.clk.advance_seconds(14 * seconds_per_day);
  auto claimed = w.st.claim_due_timers(w.clk.now(), 10, 60, "test");
  ASSERT_TRUE(claimed.has_value());
  ASSERT_EQ(claimed->size(), 1u);
  auto r = n.deliver(claimed->front());
  ASSERT_TRUE(r.ok()) << r.failure->detail;
  EXPECT_EQ(r.state, subscription_state{});
  // The timer did its work all the same: the trial ended.
  auto after = n.send(sub_in::update_payment_method{"pm_card_visa"});
  ASSERT_TRUE(after.ok());
  EXPECT_NE(after.state.life.status, sub_status::trialing);
  EXPECT_GE(after.state.version, 2);
}

// -- real threads ---------------------------------------------------------------

struct threaded {
  world w{60'000};
  caf::actor_system_config cfg;
  std::unique_ptr<caf::actor_system> sys;
  caf::actor writer, gateway, reg;

  threaded() {
    cfg.set("scheduler.max-threads", 2);
    cfg.set("logger.file-verbosity", caf::atom("quiet"));
    sys = std::make_unique<caf::actor_system>(cfg);
    writer = spawn_store_writer(*sys, w.st);
    gateway = spawn_gateway_actor(*sys, w.gw, w.clk, gateway_actor_config{});
    reg = spawn_registry(*sys, &w.ctx, writer, gateway);
  }
  ~threaded() {
    for (auto* h : {&reg, &gateway, &writer})
      caf::anon_send_exit(*h, caf::exit_reason::user_shutdown);
  }
};

TEST(subscription_actor_threads, thousands_of_concurrent_commands_keep_order) {
  threaded t;
  {
    caf::scoped_actor self{*t.sys};
    bool ok = false;
    self->request(t.reg, std::chrono::seconds(10),
                  subscription_command{tenant, sub,
                                       sub_in::create{customer_id{"c"},
                                                      plan_id{"basic"}, 1,
                                                      "pm_card_visa", 30}})
      .receive([&](command_reply& r) { ok = r.ok(); }, [](caf::error&) {});
    ASSERT_TRUE(ok);
  }
  constexpr int senders = 8;
  constexpr int per_sender = 250;
  std::atomic<int> acked{0};
  std::vector<std::thread> threads;
  for (int s = 0; s < senders; ++s)
    threads.emplace_back([&, s] {
      caf::scoped_actor self{*t.sys};
      // Each sender waits for each reply: its own commands are ordered.
      for (int i = 0; i < per_sender; ++i) {
        auto token = "pm_s" + std::to_string(s) + "_" + std::to_string(i);
        self->request(t.reg, std::chrono::seconds(30),
                      subscription_command{tenant, sub,
                                           sub_in::update_payment_method{token}})
          .receive([&](command_reply& r) { acked += r.ok() ? 1 : 0; },
                   [](caf::error&) {});
      }
    });
  for (auto& th : threads)
    th.join();
  EXPECT_EQ(acked.load(), senders * per_sender);
  auto events = t.w.st.load_events(tenant, sub, 1);
  ASSERT_TRUE(events.has_value());
  ASSERT_EQ(events->size(), 1u + senders * per_sender);
  std::map<int, int> last; // sender -> last index seen in the event stream
  for (std::size_t k = 1; k < events->size(); ++k) {
    const auto& e = (*events)[k];
    EXPECT_EQ(e.seq, static_cast<std::int64_t>(k + 1));
    auto pm = nlohmann::json::parse(e.payload_json)["state"]["payment_method"]
                .get<std::string>();
    auto us = pm.find('_', 4);
    int s = std::stoi(pm.substr(4, us - 4));
    int i = std::stoi(pm.substr(us + 1));
    auto it = last.find(s);
    EXPECT_TRUE(it == last.end() ? i == 0 : i == it->second + 1)
      << "sender " << s << " index " << i;
    last[s] = i;
  }
}

TEST(subscription_actor_threads, many_subscriptions_lose_nothing) {
  threaded t;
  constexpr int subs = 200;
  constexpr int commands = 10;
  std::atomic<int> acked{0};
  std::vector<std::thread> threads;
  for (int th = 0; th < 4; ++th)
    threads.emplace_back([&, th] {
      caf::scoped_actor self{*t.sys};
      for (int k = th; k < subs; k += 4) {
        subscription_id id{"sub_" + std::to_string(k)};
        self->request(t.reg, std::chrono::seconds(30),
                      subscription_command{tenant, id,
                                           sub_in::create{customer_id{"c"},
                                                          plan_id{"basic"}, 1,
                                                          "pm_card_visa", 30}})
          .receive([&](command_reply& r) { acked += r.ok() ? 1 : 0; },
                   [](caf::error&) {});
      }
      for (int i = 0; i < commands; ++i)
        for (int k = th; k < subs; k += 4) {
          subscription_id id{"sub_" + std::to_string(k)};
          auto in = i % 2 == 0 ? subscription_input{sub_in::cancel{true}}
                               : subscription_input{sub_in::uncancel{}};
          self->send(t.reg, subscription_command{tenant, id, in});
        }
      // Then wait for every reply of this thread's commands.
      for (int i = 0; i < commands * ((subs - th + 3) / 4); ++i)
        self->receive([&](command_reply& r) { acked += r.ok() ? 1 : 0; },
                      caf::after(std::chrono::seconds(30)) >> [] {});
    });
  for (auto& th : threads)
    th.join();
  EXPECT_EQ(acked.load(), subs + subs * commands);
  for (int k = 0; k < subs; ++k) {
    auto h = t.w.st.load_history(tenant, subscription_id{"sub_" + std::to_string(k)});
    ASSERT_TRUE(h.has_value());
    EXPECT_EQ(h->version, 1 + commands) << k;
  }
  EXPECT_EQ(testing::check_invariants(t.w.st, tenant, t.w.gw),
            std::vector<std::string>{});
}

} // namespace
} // namespace recur

namespace recur {
namespace {

/// `subs` subscriptions with a 14-day trial, stored directly; the clock is
/// then at their trial end, so that all their renewals are due at once.
void seed_trials(world& w, int subs, std::uint64_t seed) {
  rng gen(seed);
  for (int k = 0; k < subs; ++k) {
    auto d = handle(subscription_aggregate{}, tenant,
                    subscription_id{"sub_" + std::to_string(k)},
                    sub_in::create{customer_id{"c"}, plan_id{"basic"}, 1,
                                   "pm_card_visa", 14},
                    w.env, t0, gen);
    ASSERT_TRUE(d.has_value());
    ASSERT_TRUE(w.st.commit(d->work).has_value());
  }
  w.clk.advance_seconds(14 * seconds_per_day);
}

/// Commits refused by an overloaded writer are retried by the subscription
/// actors (with a backoff), not lost until the timer lease runs out.
TEST(subscription_actor_threads, refused_commits_are_retried) {
  world w{0};
  constexpr int subs = 60;
  seed_trials(w, subs, 5);
  if (::testing::Test::HasFatalFailure())
    return;
  caf::actor_system_config cfg;
  cfg.set("scheduler.max-threads", 2);
  cfg.set("logger.file-verbosity", caf::atom("quiet"));
  caf::actor_system sys{cfg};
  store_writer_config wc;
  wc.group.queue_limit_units = 1; // nearly every concurrent commit is refused
  wc.group.max_wait_us = 0;
  auto writer = spawn_store_writer(sys, w.st, wc);
  gateway_actor_config gc;
  gc.inline_calls = true;
  auto gateway = spawn_gateway_actor(sys, w.gw, w.clk, gc);
  auto reg = spawn_registry(sys, &w.ctx, writer, gateway);
  timer_service_config tc;
  tc.poll_interval_ms = 5;
  tc.lease_s = 3'600; // a lost timer would not come back within the test
  auto timers = spawn_timer_service(sys, w.st, w.clk, reg, tc);
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  while (w.counters.sagas_completed.load() < static_cast<std::uint64_t>(subs)
         && std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  for (auto* h : {&timers, &reg, &gateway, &writer})
    caf::anon_send_exit(*h, caf::exit_reason::user_shutdown);
  EXPECT_EQ(w.counters.sagas_completed.load(), static_cast<std::uint64_t>(subs));
  EXPECT_GT(w.counters.commit_failures.load(), 0u) << "the writer never refused";
  for (int k = 0; k < subs; ++k) {
    auto row = w.st.get_subscription(tenant, subscription_id{"sub_" + std::to_string(k)});
    ASSERT_TRUE(row.has_value());
    EXPECT_EQ(row->status, "active") << k;
  }
  EXPECT_EQ(w.gw.total_collected(currency::of("USD")).amount_minor(), subs * 3000);
  EXPECT_EQ(testing::check_invariants(w.st, tenant, w.gw),
            std::vector<std::string>{});
}

/// The memory-store fast path (actors commit themselves) with the timer
/// service's flow control: a burst of renewals larger than the window all
/// complete, each invoice collected once, the ledger balanced.
TEST(subscription_actor_threads, commits_in_actors_with_a_timer_window_lose_nothing) {
  world w{0};
  w.ctx.commit_in_actor = true;
  constexpr int subs = 400;
  seed_trials(w, subs, 7);
  if (::testing::Test::HasFatalFailure())
    return;
  caf::actor_system_config cfg;
  cfg.set("scheduler.max-threads", 2);
  cfg.set("logger.file-verbosity", caf::atom("quiet"));
  caf::actor_system sys{cfg};
  // A writer that refuses everything: nothing may go through it.
  store_writer_config wc;
  wc.group.queue_limit_units = 1;
  auto writer = spawn_store_writer(sys, w.st, wc);
  gateway_actor_config gc;
  gc.inline_calls = true;
  auto gateway = spawn_gateway_actor(sys, w.gw, w.clk, gc);
  auto reg = spawn_registry(sys, &w.ctx, writer, gateway);
  timer_service_config tc;
  tc.poll_interval_ms = 5;
  tc.lease_s = 3'600;
  tc.max_in_flight = 16;
  auto timers = spawn_timer_service(sys, w.st, w.clk, reg, tc);
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  while (w.counters.sagas_completed.load() < static_cast<std::uint64_t>(subs)
         && std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  for (auto* h : {&timers, &reg, &gateway, &writer})
    caf::anon_send_exit(*h, caf::exit_reason::user_shutdown);
  EXPECT_EQ(w.counters.sagas_completed.load(), static_cast<std::uint64_t>(subs));
  EXPECT_EQ(w.counters.commit_failures.load(), 0u);
  for (int k = 0; k < subs; ++k) {
    auto row = w.st.get_subscription(tenant, subscription_id{"sub_" + std::to_string(k)});
    ASSERT_TRUE(row.has_value());
    EXPECT_EQ(row->status, "active") << k;
  }
  EXPECT_EQ(w.gw.total_collected(currency::of("USD")).amount_minor(), subs * 3000);
  auto bal = w.st.ledger_balances(tenant);
  ASSERT_TRUE(bal.has_value());
  std::int64_t sum = 0;
  for (const auto& b : *bal)
    sum += b.balance_minor;
  EXPECT_EQ(sum, 0) << "the ledger does not balance";
  EXPECT_EQ(testing::check_invariants(w.st, tenant, w.gw),
            std::vector<std::string>{});
}

} // namespace
} // namespace recur
