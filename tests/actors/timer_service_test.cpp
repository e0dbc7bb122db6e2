// The durable timer service on CAF's deterministic test coordinator, over the
// in-memory store and a manual clock: what a tick delivers and in which order,
// re-delivery after a lapsed lease, draining a backlog larger than one claim,
// cancelled timers, its own polling (with superseded polls), store errors.

#include "actors/store_writer_impl.hpp"
#include "actors/subscription_actor_impl.hpp" // command_reply
#include "actors/timer_service_impl.hpp"
#include "domain/clock.hpp"
#include "forwarding_store.hpp"
#include "persistence/memory_store.hpp"

#include <cstddef>
#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include <caf/all.hpp>
#include <caf/scheduler/test_coordinator.hpp>
#include <gtest/gtest.h>

namespace {

using namespace recur;

const tenant_id tenant_a{"tenant_a"};
const tenant_id tenant_b{"tenant_b"};
const instant t0 = utc(2024, 3, 1);

timer_record make_timer(std::string id, std::string owner, std::string kind,
                        instant due_at) {
  std::string payload = R"({"subscription":")" + owner + R"("})";
  return timer_record{std::move(id), std::move(owner), std::move(kind), due_at,
                      std::move(payload)};
}

std::vector<std::string> ids_of(const std::vector<claimed_timer>& ts) {
  std::vector<std::string> out;
  for (const auto& t : ts)
    out.push_back(t.timer.id);
  return out;
}

// -- a store whose claims can fail --------------------------------------------
// Forwards everything to a memory_store; the next `fail_claims` claims fail
// with `unavailable`, as a PostgreSQL store does when the server is away.
class flaky_claims_store final : public recur::testing::forwarding_store {
public:
  int fail_claims = 0;

  result<std::vector<claimed_timer>>
  claim_due_timers(instant now, std::size_t limit, std::int64_t lease_s,
                   const std::string& claimer) override {
    if (fail_claims > 0) {
      --fail_claims;
      return make_error(errc::unavailable, "fake outage");
    }
    return inner.claim_due_timers(now, limit, lease_s, claimer);
  }
};

// -- the delivery target ------------------------------------------------------
// Records every timer it is handed; completes (through the store writer) the
// ones the test lists, in a unit of work of the timer's tenant. Everything
// runs on the test thread (test coordinator), so plain pointers are safe.

struct delivery_log {
  std::vector<claimed_timer> delivered;
  std::set<std::string> complete; // ids the target completes when delivered
  std::vector<commit_reply> completions;
  int errors = 0;
};

caf::behavior recording_target(caf::event_based_actor* self, delivery_log* log,
                               caf::actor writer) {
  return {
    [=](timer_due_atom, const claimed_timer& t) {
      log->delivered.push_back(t);
      if (!log->complete.contains(t.timer.id))
        return;
      unit_of_work work;
      work.tenant = t.tenant;
      work.timers_to_complete.push_back(t.timer.id);
      self->request(writer, caf::infinite, commit_atom::value, std::move(work))
        .then([=](const commit_reply& r) { log->completions.push_back(r); },
              [=](caf::error&) { ++log->errors; });
    },
  };
}

// -- fixture ------------------------------------------------------------------

class timer_service_test : public ::testing::Test {
protected:
  static caf::actor_system_config& configure(caf::actor_system_config& c) {
    c.set("scheduler.policy", caf::atom("testing"));
    c.set("logger.file-verbosity", caf::atom("quiet"));
    return c;
  }

  timer_service_test()
    : sys{configure(cfg)},
      sched{dynamic_cast<caf::scheduler::test_coordinator&>(sys.scheduler())},
      self{sys, true} {
    writer = spawn_store_writer(
      sys, st, store_writer_config{store_writer_mode::inline_commit, {}, 64});
    target = sys.spawn(recording_target, &log, writer);
  }

  ~timer_service_test() override {
    for (auto* hdl : {&service, &target, &writer})
      if (*hdl)
        caf::anon_send_exit(*hdl, caf::exit_reason::user_shutdown);
    run();
  }

  /// Runs every queued message; never fires a (delayed-send) timeout, so a
  /// polling service does not spin.
  std::size_t run() {
    std::size_t n = 0;
    while (sched.try_run_once())
      ++n;
    return n;
  }

  void spawn_service(timer_service_config c) {
    service = spawn_timer_service(sys, st, clk, target, std::move(c));
    run();
  }

  void spawn_ticked_service(std::size_t batch = 1000) {
    timer_service_config c;
    c.poll_interval_ms = 0;
    c.claim_batch_limit = batch;
    c.claimer = "test";
    spawn_service(std::move(c));
  }

  void schedule(const tenant_id& t, std::vector<timer_record> timers) {
    unit_of_work w;
    w.tenant = t;
    w.timers_to_schedule = std::move(timers);
    ASSERT_TRUE(st.commit(w).has_value());
  }

  /// Sends a tick, runs everything it causes, returns its reply.
  std::optional<std::uint64_t> tick() {
    auto h = self->request(service, caf::infinite, tick_atom::value);
    run();
    if (!self->has_next_message()) {
      ADD_FAILURE() << "the tick was not answered";
      return std::nullopt;
    }
    std::optional<std::uint64_t> out;
    h.receive([&](std::uint64_t n) { out = n; },
              [&](caf::error& e) { ADD_FAILURE() << sys.render(e); });
    return out;
  }

  timer_service_stats stats() {
    auto h = self->request(service, caf::infinite, stats_atom::value);
    run();
    timer_service_stats out;
    if (!self->has_next_message()) {
      ADD_FAILURE() << "the stats request was not answered";
      return out;
    }
    h.receive([&](timer_service_stats& s) { out = s; },
              [&](caf::error& e) { ADD_FAILURE() << sys.render(e); });
    return out;
  }

  caf::actor_system_config cfg;
  caf::actor_system sys;
  caf::scheduler::test_coordinator& sched;
  caf::scoped_actor self;
  flaky_claims_store st;
  manual_clock clk{t0};
  delivery_log log;
  caf::actor writer;
  caf::actor target;
  caf::actor service;
};

// t1 < t2 < t3, one owner each.
const timer_record t1 = make_timer("sub_1/trial_end", "sub_1", "trial_end",
                                   t0.plus_seconds(60));
const timer_record t2 = make_timer("sub_2/period_end", "sub_2", "period_end",
                                   t0.plus_seconds(120));
const timer_record t3 = make_timer("sub_3/retry", "sub_3", "retry",
                                   t0.plus_seconds(3600));

// -- tests --------------------------------------------------------------------

TEST_F(timer_service_test, a_tick_before_the_first_due_time_delivers_nothing) {
  schedule(tenant_a, {t1, t2, t3});
  spawn_ticked_service();
  clk.set(t1.due_at.plus_seconds(-1));
  EXPECT_EQ(tick(), 0u);
  EXPECT_TRUE(log.delivered.empty());
  const auto s = stats();
  EXPECT_EQ(s.polls, 1u);
  EXPECT_EQ(s.delivered, 0u);
  EXPECT_EQ(s.errors, 0u);
}

TEST_F(timer_service_test,
       due_timers_come_in_order_and_an_uncompleted_one_returns_after_lease) {
  schedule(tenant_a, {t3, t2, t1}); // scheduling order is not due order
  spawn_ticked_service();
  log.complete = {t1.id}; // the owner of t1 completes it, t2's owner does not

  clk.set(t2.due_at.plus_seconds(30));
  EXPECT_EQ(tick(), 2u);
  ASSERT_EQ(ids_of(log.delivered), (std::vector<std::string>{t1.id, t2.id}));
  EXPECT_EQ(log.delivered[0].tenant, tenant_a);
  EXPECT_EQ(log.delivered[0].timer.payload_json, t1.payload_json);
  EXPECT_EQ(log.delivered[0].lease_until, clk.now().plus_seconds(30));
  ASSERT_EQ(log.completions.size(), 1u);
  EXPECT_TRUE(log.completions[0].ok());
  EXPECT_EQ(log.errors, 0);
  auto pending_t1 = st.list_timers(tenant_a, "sub_1");
  ASSERT_TRUE(pending_t1.has_value());
  EXPECT_TRUE(pending_t1->empty()); // t1 is done

  // t2 is leased: nothing comes back until the lease lapses.
  EXPECT_EQ(tick(), 0u);
  clk.advance_seconds(29);
  EXPECT_EQ(tick(), 0u);
  EXPECT_EQ(log.delivered.size(), 2u);

  clk.advance_seconds(1); // lease_s = 30 after the claim
  EXPECT_EQ(tick(), 1u);
  ASSERT_EQ(ids_of(log.delivered),
            (std::vector<std::string>{t1.id, t2.id, t2.id}));

  // Past the next lease, t2 is still pending and comes back again; t1 never.
  clk.advance_seconds(30);
  EXPECT_EQ(tick(), 1u);
  EXPECT_EQ(ids_of(log.delivered),
            (std::vector<std::string>{t1.id, t2.id, t2.id, t2.id}));
  EXPECT_EQ(stats().delivered, 4u);
}

TEST_F(timer_service_test, one_tick_drains_2500_due_timers_exactly_once) {
  std::vector<timer_record> a;
  std::vector<timer_record> b;
  for (int i = 0; i < 2500; ++i) {
    auto t = make_timer("t" + std::to_string(i), "sub_" + std::to_string(i),
                        "retry", t0.plus_seconds(i));
    (i % 2 == 0 ? a : b).push_back(std::move(t));
  }
  schedule(tenant_a, std::move(a));
  schedule(tenant_b, std::move(b));
  spawn_ticked_service(1000);
  clk.set(t0.plus_seconds(2500));

  EXPECT_EQ(tick(), 2500u);
  ASSERT_EQ(log.delivered.size(), 2500u);
  std::set<std::string> seen;
  for (std::size_t i = 0; i < log.delivered.size(); ++i) {
    const claimed_timer& t = log.delivered[i];
    EXPECT_TRUE(seen.insert(t.timer.id).second) << "twice: " << t.timer.id;
    EXPECT_EQ(t.timer.id, "t" + std::to_string(i)); // due order across tenants
    EXPECT_EQ(t.tenant, i % 2 == 0 ? tenant_a : tenant_b);
  }
  EXPECT_EQ(stats().polls, 3u); // 1000 + 1000 + 500

  EXPECT_EQ(tick(), 0u); // all leased
  EXPECT_EQ(log.delivered.size(), 2500u);
}

TEST_F(timer_service_test, cancelled_timers_are_never_delivered) {
  const auto due = t0.plus_seconds(10);
  schedule(tenant_a, {make_timer("a", "sub_1", "retry", due),
                      make_timer("b", "sub_1", "period_end", due),
                      make_timer("c", "sub_2", "retry", due),
                      make_timer("d", "sub_2", "trial_end", due)});
  unit_of_work cancel;
  cancel.tenant = tenant_a;
  cancel.timers_to_cancel = {timer_cancel{"sub_1", "retry"},
                             timer_cancel{"sub_2", ""}};
  ASSERT_TRUE(st.commit(cancel).has_value());
  spawn_ticked_service();

  clk.set(due);
  EXPECT_EQ(tick(), 1u);
  // Leases lapse twice more: only b ever comes (again), never a, c or d.
  clk.advance_seconds(30);
  EXPECT_EQ(tick(), 1u);
  clk.advance_seconds(30);
  EXPECT_EQ(tick(), 1u);
  EXPECT_EQ(ids_of(log.delivered), (std::vector<std::string>{"b", "b", "b"}));
}

TEST_F(timer_service_test,
       it_polls_by_itself_and_a_superseded_poll_does_nothing) {
  schedule(tenant_a, {t1, t2});
  log.complete = {t1.id, t2.id}; // no lease lapses into re-deliveries here
  timer_service_config c;
  c.poll_interval_ms = 50;
  spawn_service(c); // claims once at start: nothing due yet
  EXPECT_EQ(stats().polls, 1u);
  EXPECT_TRUE(sched.has_pending_timeout());

  clk.set(t1.due_at);
  EXPECT_EQ(sched.trigger_timeouts(), 1u);
  run();
  EXPECT_EQ(ids_of(log.delivered), (std::vector<std::string>{t1.id}));
  EXPECT_EQ(stats().polls, 2u);

  // A tick re-arms the poll: the poll armed before it becomes stale, so two
  // timeouts fire but only one of them claims.
  clk.set(t2.due_at);
  EXPECT_EQ(tick(), 1u);
  EXPECT_EQ(stats().polls, 3u);
  EXPECT_EQ(sched.trigger_timeouts(), 2u);
  run();
  EXPECT_EQ(stats().polls, 4u);
  EXPECT_EQ(ids_of(log.delivered), (std::vector<std::string>{t1.id, t2.id}));
  EXPECT_TRUE(sched.has_pending_timeout()); // and it keeps polling
  EXPECT_EQ(log.completions.size(), 2u);
}

TEST_F(timer_service_test,
       a_poll_that_ends_with_a_backlog_polls_again_at_once) {
  std::vector<timer_record> many;
  for (int i = 0; i < 25; ++i)
    many.push_back(
      make_timer("t" + std::to_string(i), "sub", "retry", t0.plus_seconds(i)));
  schedule(tenant_a, std::move(many));
  clk.set(t0.plus_seconds(100));
  timer_service_config c;
  c.poll_interval_ms = 50;
  c.claim_batch_limit = 5;
  c.drain_rounds_max = 2; // 10 timers per poll
  spawn_service(c);
  // No timeout fired: the backlog was taken by polls sent at once.
  EXPECT_EQ(log.delivered.size(), 25u);
  EXPECT_EQ(stats().polls, 6u); // 5 full claims + one that finds nothing
}

TEST_F(timer_service_test, a_store_error_is_counted_and_the_next_poll_retries) {
  schedule(tenant_a, {t1});
  clk.set(t1.due_at);
  st.fail_claims = 1;
  timer_service_config c;
  c.poll_interval_ms = 50;
  spawn_service(c); // the first claim fails
  EXPECT_TRUE(log.delivered.empty());
  auto s = stats();
  EXPECT_EQ(s.errors, 1u);
  EXPECT_EQ(s.polls, 1u);
  EXPECT_TRUE(sched.has_pending_timeout()); // backed off to the next poll

  EXPECT_EQ(sched.trigger_timeouts(), 1u);
  run();
  EXPECT_EQ(ids_of(log.delivered), (std::vector<std::string>{t1.id}));
  s = stats();
  EXPECT_EQ(s.errors, 1u);
  EXPECT_EQ(s.delivered, 1u);
}

TEST_F(timer_service_test,
       a_tick_that_meets_a_store_error_answers_what_it_delivered) {
  schedule(tenant_a, {t1});
  spawn_ticked_service();
  clk.set(t1.due_at);
  st.fail_claims = 1;
  EXPECT_EQ(tick(), 0u);
  EXPECT_EQ(stats().errors, 1u);
  EXPECT_EQ(tick(), 1u); // the service lives on
  EXPECT_EQ(ids_of(log.delivered), (std::vector<std::string>{t1.id}));
}

} // namespace

// -- flow control (max_in_flight) ----------------------------------------------

using answer_atom = caf::atom_constant<caf::atom("answer")>;

/// Holds every timer request unanswered until told to answer some of them.
struct holding_log {
  std::vector<std::string> delivered;
  std::vector<caf::response_promise> held;
};

caf::behavior holding_target(caf::event_based_actor* self, holding_log* log) {
  return {
    [=](timer_due_atom, const claimed_timer& t) {
      log->delivered.push_back(t.timer.id);
      log->held.push_back(self->make_response_promise());
    },
    [=](answer_atom, std::uint64_t n) {
      for (; n > 0 && !log->held.empty(); --n) {
        log->held.front().deliver(command_reply{});
        log->held.erase(log->held.begin());
      }
    },
  };
}

/// The flow-control tests' set-up: n period_end timers due a second apart
/// from t0 + 60 s, a target holding every request (the promises outlive
/// it), and a ticked service with a window of 4 and a lease of 600 s, the
/// clock an hour on.
class windowed_service_test : public timer_service_test {
protected:
  ~windowed_service_test() override {
    if (holder)
      caf::anon_send_exit(holder, caf::exit_reason::user_shutdown);
  }

  void start(int n) {
    for (int i = 0; i < n; ++i)
      due.push_back(make_timer("sub_" + std::to_string(i) + "/period_end",
                               "sub_" + std::to_string(i), "period_end",
                               t0.plus_seconds(60 + i)));
    schedule(tenant_a, due);
    holder = sys.spawn(holding_target, &held);
    clk.set(t0.plus_seconds(3600));
    timer_service_config c;
    c.poll_interval_ms = 0;
    c.claim_batch_limit = 1000;
    c.max_in_flight = 4;
    c.lease_s = 600;
    service = spawn_timer_service(sys, st, clk, holder, c);
    run();
  }

  std::vector<timer_record> due;
  holding_log held;
  caf::actor holder;
};

TEST_F(windowed_service_test,
       with_a_window_at_most_that_many_timers_are_unanswered_and_answers_resume_delivery) {
  start(10);
  EXPECT_EQ(tick(), 4u); // the window is full after 4
  EXPECT_EQ(held.delivered.size(), 4u);
  EXPECT_EQ(stats().in_flight, 4u);
  EXPECT_EQ(tick(), 0u); // no room: nothing claimed
  // One answer leaves 3 unanswered: above half the window, no claim yet.
  self->send(holder, answer_atom::value, std::uint64_t{1});
  run();
  EXPECT_EQ(held.delivered.size(), 4u);
  // Down to half (2 unanswered): the service claims at once, up to the window.
  self->send(holder, answer_atom::value, std::uint64_t{1});
  run();
  EXPECT_EQ(held.delivered.size(), 6u);
  EXPECT_EQ(stats().in_flight, 4u);
  for (int round = 0; round < 10 && held.delivered.size() < 10; ++round) {
    self->send(holder, answer_atom::value, std::uint64_t{4});
    run();
  }
  // Every timer once, in due order.
  ASSERT_EQ(held.delivered.size(), 10u);
  for (int i = 0; i < 10; ++i)
    EXPECT_EQ(held.delivered[static_cast<std::size_t>(i)], due[static_cast<std::size_t>(i)].id);
  self->send(holder, answer_atom::value, std::uint64_t{10});
  run();
  EXPECT_EQ(stats().in_flight, 0u);
}

TEST_F(windowed_service_test,
       a_slot_never_answered_is_freed_by_the_first_tick_lease_s_after_its_delivery) {
  start(6);
  EXPECT_EQ(tick(), 4u);
  EXPECT_FALSE(sched.has_pending_timeout()); // no timeout per request
  sched.clock().current_time += std::chrono::seconds{599};
  EXPECT_EQ(tick(), 0u); // not yet
  EXPECT_EQ(stats().in_flight, 4u);
  EXPECT_EQ(stats().lapsed, 0u);
  sched.clock().current_time += std::chrono::seconds{1};
  // The four lapse (the store's leases with them): as the window falls to
  // half, the service claims the two never delivered, then two of the
  // lapsed ones again, before the tick's own claim finds no room.
  clk.advance_seconds(600);
  EXPECT_EQ(tick(), 0u);
  EXPECT_EQ(stats().lapsed, 4u);
  EXPECT_EQ(stats().in_flight, 4u);
  ASSERT_EQ(held.delivered.size(), 8u);
  EXPECT_EQ(held.delivered[4], due[4].id);
  EXPECT_EQ(held.delivered[5], due[5].id);
  EXPECT_EQ(held.delivered[6], due[0].id);
  // A late answer of a lapsed delivery frees nothing a second time.
  self->send(holder, answer_atom::value, std::uint64_t{4});
  run();
  EXPECT_EQ(stats().in_flight, 4u);
  // Answers of the current ones do.
  self->send(holder, answer_atom::value, std::uint64_t{4});
  run();
  EXPECT_EQ(stats().in_flight, 2u); // and claimed at half: the last two
  EXPECT_EQ(held.delivered.size(), 10u);
}

TEST_F(windowed_service_test,
       when_its_target_dies_holding_answers_the_window_is_released_and_claims_stop) {
  start(10);
  EXPECT_EQ(tick(), 4u);
  EXPECT_EQ(stats().in_flight, 4u);
  caf::anon_send_exit(holder, caf::exit_reason::kill);
  run();
  // Released at once, not after lease_s.
  EXPECT_EQ(stats().in_flight, 0u);
  // Nothing more is claimed: the other six stay due in the store.
  EXPECT_EQ(tick(), 0u);
  EXPECT_EQ(held.delivered.size(), 4u);
  // The requests' own timeouts (lease_s) free nothing a second time.
  sched.trigger_timeouts();
  run();
  EXPECT_EQ(stats().in_flight, 0u);
  auto left = st.claim_due_timers(clk.now(), 100, 60, "another-process");
  ASSERT_TRUE(left.has_value());
  EXPECT_EQ(left->size(), 6u);
}
