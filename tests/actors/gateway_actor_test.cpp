#include "actors/gateway_actor_impl.hpp"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <ostream>
#include <string>
#include <utility>
#include <vector>

#include <caf/actor_system_config.hpp>
#include <caf/event_based_actor.hpp>
#include <caf/exit_reason.hpp>
#include <caf/scheduler/test_coordinator.hpp>
#include <caf/scoped_actor.hpp>
#include <caf/send.hpp>
#include <gtest/gtest.h>

#include "gateways/sandbox_gateway.hpp"

using namespace recur;

namespace recur {

// Readable values in failure messages.
void PrintTo(charge_status s, std::ostream* os) {
  *os << to_string(s);
}
inline void PrintTo(breaker_state s, std::ostream* os) {
  *os << to_string(s);
}

} // namespace recur

namespace {

using op = gateway_call::op;

const instant t0 = utc(2024, 3, 1);

money usd(std::int64_t minor) {
  return money{minor, currency::of("USD")};
}

charge_request charge_req(std::string key, std::string method,
                          money amount = usd(1999)) {
  return charge_request{
    .idempotency_key = std::move(key),
    .tenant = tenant_id{"ten_1"},
    .customer = customer_id{"cus_1"},
    .payment_method = std::move(method),
    .amount = amount,
    .description = "invoice",
  };
}

gateway_call charge(std::string key, std::string method = "pm_card_visa") {
  return gateway_call::make_charge(
    charge_req(std::move(key), std::move(method)));
}

gateway_call resolve(std::string key, std::string method = "pm_card_visa") {
  return gateway_call::make_resolve(
    charge_req(std::move(key), std::move(method)));
}

gateway_call refund(std::string key, std::string charge_id, money amount) {
  return gateway_call::make_refund(
    refund_request{std::move(key), std::move(charge_id), amount});
}

// -- a deterministic fixture: CAF's test coordinator, inline gateway calls ----

/// What one client actor heard back.
struct reply_slot {
  std::optional<gateway_reply> reply;
  std::optional<std::string> caf_error;
};

class gateway_actor_inline : public ::testing::Test {
protected:
  // Declared before the actor system: the gateway and the clock outlive it.
  manual_clock clk{t0};
  sandbox_gateway gw{clk, 42};
  caf::actor_system_config cfg;
  caf::actor_system sys{testing(cfg)};
  caf::scheduler::test_coordinator& sched{
    dynamic_cast<caf::scheduler::test_coordinator&>(sys.scheduler())};
  caf::actor actor;
  /// Idempotency keys in the order their replies arrived.
  std::shared_ptr<std::vector<std::string>> answered
    = std::make_shared<std::vector<std::string>>();

  static caf::actor_system_config& testing(caf::actor_system_config& c) {
    c.set("scheduler.policy", caf::atom("testing"));
    c.set("logger.file-verbosity", caf::atom("quiet"));
    c.set("logger.console-verbosity", caf::atom("quiet"));
    return c;
  }

  ~gateway_actor_inline() override {
    if (actor)
      caf::anon_send_exit(actor, caf::exit_reason::user_shutdown);
    sched.run();
  }

  void start(std::int32_t threshold = 3, std::size_t queue_limit = 10'000) {
    gateway_actor_config c;
    c.inline_calls = true;
    c.queue_limit = queue_limit;
    c.breaker = circuit_breaker_config{threshold, 30};
    actor = spawn_gateway_actor(sys, gw, clk, c);
    sched.run();
  }

  /// Sends `call` from a fresh client actor (the reply lands in the slot)
  /// and runs every actor until nothing is left to do.
  std::shared_ptr<reply_slot> ask(gateway_call call) {
    auto slot = std::make_shared<reply_slot>();
    auto dest = actor;
    auto log = answered;
    sys.spawn([=](caf::event_based_actor* self) {
      self->request(dest, caf::infinite, call)
        .then(
          [=](gateway_reply& r) {
            log->push_back(r.idempotency_key);
            slot->reply = std::move(r);
          },
          [=](caf::error& e) { slot->caf_error = self->system().render(e); });
    });
    sched.run();
    return slot;
  }

  /// Asks and expects an answer.
  gateway_reply call(gateway_call c) {
    auto slot = ask(std::move(c));
    EXPECT_TRUE(slot->reply.has_value()) << slot->caf_error.value_or("");
    return slot->reply.value_or(gateway_reply{});
  }

  gateway_actor_stats stats() {
    auto out = std::make_shared<std::optional<gateway_actor_stats>>();
    auto dest = actor;
    sys.spawn([=](caf::event_based_actor* self) {
      self->request(dest, caf::infinite, stats_atom::value)
        .then([=](gateway_actor_stats& s) { *out = s; },
              [=](caf::error& e) {
                ADD_FAILURE() << self->system().render(e);
              });
    });
    sched.run();
    EXPECT_TRUE(out->has_value());
    return out->value_or(gateway_actor_stats{});
  }

  void tick() {
    caf::anon_send(actor, tick_atom::value);
    sched.run();
  }

  /// Moves the breaker's clock past the cooldown and delivers CAF's timers.
  void wait_out_cooldown() {
    clk.advance_seconds(30);
    sched.trigger_timeouts();
    sched.run();
  }

  /// Opens the circuit: the gateway goes down and `threshold` charges fail.
  /// The first threshold-1 are answered `unavailable`; the last one waits.
  std::shared_ptr<reply_slot> trip(std::int32_t threshold) {
    gw.set_available(false);
    for (std::int32_t i = 1; i < threshold; ++i) {
      auto r = call(charge("down_" + std::to_string(i)));
      EXPECT_TRUE(r.error.has_value());
      EXPECT_EQ(r.error.value_or(make_error(errc::invalid_argument)).code,
                errc::unavailable);
    }
    auto held = ask(charge("trip"));
    EXPECT_FALSE(held->reply.has_value());
    EXPECT_EQ(stats().breaker, breaker_state::open);
    return held;
  }
};

// -- round trips
// ----------------------------------------------------------------

TEST_F(gateway_actor_inline, a_charge_round_trip_echoes_the_call_and_collects) {
  start();
  auto r = call(charge("inv_1/attempt-1"));
  EXPECT_EQ(r.kind, op::charge);
  EXPECT_EQ(r.idempotency_key, "inv_1/attempt-1");
  ASSERT_TRUE(r.charge.has_value());
  EXPECT_FALSE(r.refund.has_value());
  EXPECT_FALSE(r.error.has_value());
  EXPECT_EQ(r.charge->status, charge_status::succeeded);
  EXPECT_FALSE(r.charge->charge_id.empty());
  EXPECT_EQ(gw.times_collected("inv_1/attempt-1"), 1);
  auto s = stats();
  EXPECT_EQ(s.requests, 1u);
  EXPECT_EQ(s.calls, 1u);
  EXPECT_EQ(s.successes, 1u);
  EXPECT_EQ(s.failures, 0u);
  EXPECT_EQ(s.in_flight, 0u);
  EXPECT_EQ(s.queued, 0u);
  EXPECT_EQ(s.breaker, breaker_state::closed);
}

TEST_F(gateway_actor_inline,
       a_decline_is_answered_and_is_not_a_breaker_failure) {
  start(1);
  auto r = call(charge("inv_2/attempt-1", "pm_card_chargeDeclined"));
  ASSERT_TRUE(r.charge.has_value());
  EXPECT_EQ(r.charge->status, charge_status::declined);
  EXPECT_EQ(r.charge->decline_code, "generic_decline");
  EXPECT_EQ(r.charge->decline, decline_class::soft);
  EXPECT_EQ(gw.times_collected("inv_2/attempt-1"), 0);
  auto s = stats();
  EXPECT_EQ(s.successes, 1u);
  EXPECT_EQ(s.failures, 0u);
  EXPECT_EQ(s.breaker, breaker_state::closed); // threshold 1, still closed
}

TEST_F(gateway_actor_inline,
       a_lost_request_is_unknown_and_resolves_to_the_truth) {
  start(5);
  auto first = call(charge("inv_3/attempt-1", "pm_sandbox_timeout"));
  ASSERT_TRUE(first.charge.has_value());
  EXPECT_EQ(first.charge->status, charge_status::unknown);
  // Never processed: resolving finds nothing under the key and charges with
  // the same key, which the sandbox loses again.
  auto resolved = call(resolve("inv_3/attempt-1", "pm_sandbox_timeout"));
  EXPECT_EQ(resolved.kind, op::resolve);
  EXPECT_EQ(resolved.idempotency_key, "inv_3/attempt-1");
  ASSERT_TRUE(resolved.charge.has_value());
  EXPECT_EQ(resolved.charge->status, charge_status::unknown);
  EXPECT_EQ(gw.times_collected("inv_3/attempt-1"), 0);
  auto truth = gw.retrieve("inv_3/attempt-1");
  ASSERT_FALSE(truth);
  EXPECT_EQ(truth.code(), errc::not_found);
  auto s = stats();
  EXPECT_EQ(s.failures, 2u); // unknown answers count against the circuit
  EXPECT_EQ(s.breaker, breaker_state::closed);
}

TEST_F(gateway_actor_inline,
       a_lost_answer_resolves_to_succeeded_collected_once) {
  start();
  auto first
    = call(charge("inv_4/attempt-1", "pm_sandbox_timeout_after_charge"));
  ASSERT_TRUE(first.charge.has_value());
  EXPECT_EQ(first.charge->status, charge_status::unknown);
  auto resolved
    = call(resolve("inv_4/attempt-1", "pm_sandbox_timeout_after_charge"));
  ASSERT_TRUE(resolved.charge.has_value());
  EXPECT_EQ(resolved.charge->status, charge_status::succeeded);
  EXPECT_FALSE(resolved.charge->charge_id.empty());
  auto again
    = call(resolve("inv_4/attempt-1", "pm_sandbox_timeout_after_charge"));
  ASSERT_TRUE(again.charge.has_value());
  EXPECT_EQ(again.charge->charge_id, resolved.charge->charge_id);
  EXPECT_EQ(gw.times_collected("inv_4/attempt-1"), 1);
  EXPECT_EQ(gw.charges().size(), 1u);
}

TEST_F(gateway_actor_inline, resolving_a_key_never_charged_charges_it_once) {
  start();
  auto r = call(resolve("inv_5/attempt-1"));
  ASSERT_TRUE(r.charge.has_value());
  EXPECT_EQ(r.charge->status, charge_status::succeeded);
  auto again = call(resolve("inv_5/attempt-1"));
  ASSERT_TRUE(again.charge.has_value());
  EXPECT_EQ(again.charge->charge_id, r.charge->charge_id);
  EXPECT_EQ(gw.times_collected("inv_5/attempt-1"), 1);
  EXPECT_EQ(stats().calls, 2u);
}

TEST_F(gateway_actor_inline, a_refund_round_trip_and_a_refund_error) {
  start(1);
  auto paid = call(charge("inv_6/attempt-1"));
  ASSERT_TRUE(paid.charge.has_value());
  auto r = call(refund("inv_6/refund-1", paid.charge->charge_id, usd(500)));
  EXPECT_EQ(r.kind, op::refund);
  EXPECT_EQ(r.idempotency_key, "inv_6/refund-1");
  ASSERT_TRUE(r.refund.has_value());
  EXPECT_FALSE(r.charge.has_value());
  EXPECT_EQ(r.refund->amount, usd(500));
  EXPECT_FALSE(r.refund->refund_id.empty());
  ASSERT_EQ(gw.refunds().size(), 1u);
  EXPECT_EQ(gw.refunds()[0].refund_id, r.refund->refund_id);
  // The gateway answered: an error, but not a breaker failure.
  auto missing = call(refund("inv_7/refund-1", "ch_nope", usd(500)));
  ASSERT_TRUE(missing.error.has_value());
  EXPECT_FALSE(missing.refund.has_value());
  EXPECT_EQ(missing.error->code, errc::not_found);
  EXPECT_EQ(stats().breaker, breaker_state::closed);
}

TEST_F(gateway_actor_inline,
       gateway_errors_other_than_unavailable_pass_through) {
  start(1);
  ASSERT_TRUE(call(charge("inv_8/attempt-1")).charge.has_value());
  auto conflict = call(charge("inv_8/attempt-1", "pm_card_mastercard"));
  ASSERT_TRUE(conflict.error.has_value());
  EXPECT_EQ(conflict.error->code, errc::idempotency_conflict);
  auto bad = call(charge("", "pm_card_visa"));
  ASSERT_TRUE(bad.error.has_value());
  EXPECT_EQ(bad.error->code, errc::invalid_argument);
  EXPECT_EQ(stats().breaker, breaker_state::closed);
}

// -- the circuit breaker
// --------------------------------------------------------

TEST_F(gateway_actor_inline,
       while_open_calls_wait_and_are_answered_once_closed) {
  start(3);
  auto pre = call(charge("pre/attempt-1"));
  ASSERT_TRUE(pre.charge.has_value());
  auto held = trip(3);
  auto s = stats();
  EXPECT_EQ(s.times_opened, 1);
  EXPECT_EQ(s.queued, 1u);
  EXPECT_EQ(s.requeued, 1u);
  auto calls_when_opened = s.calls;
  // Charges, resolves and refunds alike wait; nothing reaches the gateway.
  std::vector<std::pair<std::string, std::shared_ptr<reply_slot>>> waiting;
  waiting.emplace_back("trip", held);
  for (auto key : {"w_1", "w_2", "w_3"})
    waiting.emplace_back(key, ask(charge(key)));
  waiting.emplace_back("w_resolve", ask(resolve("w_resolve")));
  waiting.emplace_back(
    "w_refund", ask(refund("w_refund", pre.charge->charge_id, usd(100))));
  for (auto& [key, slot] : waiting)
    EXPECT_FALSE(slot->reply.has_value()) << key;
  s = stats();
  EXPECT_EQ(s.queued, waiting.size());
  EXPECT_EQ(s.calls, calls_when_opened);
  // CAF's timer fires, but the breaker's clock has not moved: still open.
  sched.trigger_timeouts();
  sched.run();
  EXPECT_EQ(stats().calls, calls_when_opened);
  EXPECT_EQ(stats().breaker, breaker_state::open);
  // After the cooldown the probe goes out, fails, and the circuit re-opens.
  wait_out_cooldown();
  s = stats();
  EXPECT_EQ(s.calls, calls_when_opened + 1);
  EXPECT_EQ(s.breaker, breaker_state::open);
  EXPECT_EQ(s.times_opened, 2);
  EXPECT_EQ(s.queued, waiting.size());
  for (auto& [key, slot] : waiting)
    EXPECT_FALSE(slot->reply.has_value()) << key;
  // The gateway is back: the next probe succeeds and everything drains.
  gw.set_available(true);
  wait_out_cooldown();
  s = stats();
  EXPECT_EQ(s.breaker, breaker_state::closed);
  EXPECT_EQ(s.queued, 0u);
  EXPECT_EQ(s.in_flight, 0u);
  EXPECT_EQ(s.calls, calls_when_opened + 1 + waiting.size());
  std::vector<std::string> order;
  for (auto& [key, slot] : waiting) {
    order.push_back(key);
    ASSERT_TRUE(slot->reply.has_value()) << key;
    EXPECT_FALSE(slot->reply->error.has_value()) << key;
    if (key == "w_refund") {
      ASSERT_TRUE(slot->reply->refund.has_value());
      EXPECT_EQ(slot->reply->refund->amount, usd(100));
      continue;
    }
    ASSERT_TRUE(slot->reply->charge.has_value()) << key;
    EXPECT_EQ(slot->reply->charge->status, charge_status::succeeded) << key;
    EXPECT_EQ(gw.times_collected(key), 1) << key;
  }
  // Answered in arrival order, the call that tripped the breaker first.
  std::vector<std::string> tail(answered->end() - order.size(),
                                answered->end());
  EXPECT_EQ(tail, order);
  // The calls answered `unavailable` before it opened were never collected.
  EXPECT_EQ(gw.times_collected("down_1"), 0);
  EXPECT_EQ(gw.times_collected("down_2"), 0);
}

TEST_F(gateway_actor_inline, a_tick_rechecks_the_breaker_without_a_timer) {
  start(2);
  auto held = trip(2);
  gw.set_available(true);
  tick(); // cooldown not over by the breaker's clock
  EXPECT_FALSE(held->reply.has_value());
  clk.advance_seconds(30);
  tick();
  ASSERT_TRUE(held->reply.has_value());
  ASSERT_TRUE(held->reply->charge.has_value());
  EXPECT_EQ(held->reply->charge->status, charge_status::succeeded);
  EXPECT_EQ(gw.times_collected("trip"), 1);
  EXPECT_EQ(stats().breaker, breaker_state::closed);
}

TEST_F(gateway_actor_inline,
       unknown_charges_are_answered_but_open_the_circuit) {
  start(2);
  auto a = call(charge("lost_1", "pm_sandbox_timeout"));
  auto b = call(charge("lost_2", "pm_sandbox_timeout_after_charge"));
  ASSERT_TRUE(a.charge.has_value());
  ASSERT_TRUE(b.charge.has_value());
  EXPECT_EQ(a.charge->status, charge_status::unknown);
  EXPECT_EQ(b.charge->status, charge_status::unknown);
  auto s = stats();
  EXPECT_EQ(s.breaker, breaker_state::open);
  EXPECT_EQ(s.failures, 2u);
  EXPECT_EQ(s.requeued, 0u);
  auto waiting = ask(charge("after"));
  EXPECT_FALSE(waiting->reply.has_value());
  wait_out_cooldown();
  ASSERT_TRUE(waiting->reply.has_value());
  EXPECT_EQ(waiting->reply->charge.value_or(charge_result{}).status,
            charge_status::succeeded);
}

TEST_F(gateway_actor_inline, a_full_queue_refuses_at_once_with_unavailable) {
  start(1, 2);
  auto held = trip(1); // queued: 1
  auto second = ask(charge("q_2"));
  EXPECT_FALSE(second->reply.has_value());
  auto third = call(charge("q_3"));
  ASSERT_TRUE(third.error.has_value());
  EXPECT_EQ(third.error->code, errc::unavailable);
  EXPECT_EQ(third.idempotency_key, "q_3");
  auto s = stats();
  EXPECT_EQ(s.rejected, 1u);
  EXPECT_EQ(s.queued, 2u);
  gw.set_available(true);
  wait_out_cooldown();
  EXPECT_TRUE(held->reply.has_value());
  EXPECT_TRUE(second->reply.has_value());
  EXPECT_EQ(gw.times_collected("q_3"), 0);
}

TEST_F(gateway_actor_inline, stopping_the_actor_answers_the_calls_it_holds) {
  start(1);
  auto held = trip(1);
  auto waiting = ask(charge("w_stop"));
  caf::anon_send_exit(actor, caf::exit_reason::user_shutdown);
  sched.run();
  actor = nullptr;
  for (auto slot : {held, waiting}) {
    ASSERT_TRUE(slot->reply.has_value());
    ASSERT_TRUE(slot->reply->error.has_value());
    EXPECT_EQ(slot->reply->error->code, errc::unavailable);
  }
  EXPECT_EQ(gw.times_collected("w_stop"), 0);
}

// -- threads: bounded concurrency
// -----------------------------------------------

/// Wraps a gateway; every charge blocks at a gate until the test opens it,
/// and the wrapper records how many calls were inside at once.
class gated_gateway final : public payment_gateway {
public:
  explicit gated_gateway(payment_gateway& inner) : inner_(inner) {}

  result<charge_result> charge(const charge_request& req) override {
    enter();
    auto r = inner_.charge(req);
    inside_.fetch_sub(1);
    return r;
  }
  result<charge_result> retrieve(const std::string& key) override {
    return inner_.retrieve(key);
  }
  result<refund_result> refund(const refund_request& req) override {
    return inner_.refund(req);
  }
  std::string_view name() const override { return "gated"; }

  /// Waits (bounded) until at least `n` calls are inside.
  bool wait_inside(int n, std::chrono::seconds bound) {
    std::unique_lock<std::mutex> guard{mtx_};
    return cv_.wait_for(guard, bound, [&] { return inside_.load() >= n; });
  }

  void open_gate() {
    std::lock_guard<std::mutex> guard{mtx_};
    open_ = true;
    cv_.notify_all();
  }

  int max_inside() const { return max_inside_.load(); }

private:
  void enter() {
    auto now_inside = inside_.fetch_add(1) + 1;
    auto seen = max_inside_.load();
    while (now_inside > seen
           && !max_inside_.compare_exchange_weak(seen, now_inside)) {
      // retry with the updated `seen`
    }
    std::unique_lock<std::mutex> guard{mtx_};
    cv_.notify_all();
    // Bounded, so that a failing test cannot hang on the gate.
    cv_.wait_for(guard, std::chrono::seconds(20), [&] { return open_; });
  }

  payment_gateway& inner_;
  std::atomic<int> inside_{0};
  std::atomic<int> max_inside_{0};
  std::mutex mtx_;
  std::condition_variable cv_;
  bool open_ = false;
};

TEST(gateway_actor_threaded, at_most_max_in_flight_calls_run_at_once) {
  constexpr int requests = 50;
  const auto bound = std::chrono::seconds(30);
  manual_clock clk{t0};
  sandbox_gateway sandbox{clk, 7};
  gated_gateway gated{sandbox};
  caf::actor_system_config cfg;
  cfg.set("logger.file-verbosity", caf::atom("quiet"));
  cfg.set("logger.console-verbosity", caf::atom("quiet"));
  caf::actor_system sys{cfg};
  gateway_actor_config c;
  c.max_in_flight = 4;
  auto actor = spawn_gateway_actor(sys, gated, clk, c);
  // Whatever happens below, open the gate and stop the actor (it answers
  // what it still holds), so that the actor system can shut down.
  struct stop_at_exit {
    gated_gateway& gate;
    caf::actor target;
    ~stop_at_exit() {
      gate.open_gate();
      caf::anon_send_exit(target, caf::exit_reason::user_shutdown);
    }
  } stop{gated, actor};
  {
    caf::scoped_actor self{sys};
    using handle = decltype(self->request(actor, bound, charge("k")));
    std::vector<handle> pending;
    for (int i = 0; i < requests; ++i)
      pending.push_back(
        self->request(actor, bound, charge("par_" + std::to_string(i))));
    ASSERT_TRUE(gated.wait_inside(4, std::chrono::seconds(20)));
    // Four calls block their workers; the actor itself still answers.
    self->request(actor, bound, stats_atom::value)
      .receive(
        [&](gateway_actor_stats& s) {
          EXPECT_EQ(s.in_flight, 4u);
          EXPECT_EQ(s.queued, static_cast<std::size_t>(requests - 4));
          EXPECT_EQ(s.calls, 4u);
        },
        [&](caf::error& e) { ADD_FAILURE() << sys.render(e); });
    EXPECT_EQ(gated.max_inside(), 4);
    gated.open_gate();
    int succeeded = 0;
    for (auto& h : pending)
      h.receive(
        [&](gateway_reply& r) {
          if (r.charge && r.charge->status == charge_status::succeeded)
            ++succeeded;
        },
        [&](caf::error& e) { ADD_FAILURE() << sys.render(e); });
    EXPECT_EQ(succeeded, requests);
    EXPECT_EQ(gated.max_inside(), 4);
    for (int i = 0; i < requests; ++i)
      EXPECT_EQ(sandbox.times_collected("par_" + std::to_string(i)), 1);
    self->request(actor, bound, stats_atom::value)
      .receive(
        [&](gateway_actor_stats& s) {
          EXPECT_EQ(s.in_flight, 0u);
          EXPECT_EQ(s.queued, 0u);
          EXPECT_EQ(s.calls, static_cast<std::uint64_t>(requests));
          EXPECT_EQ(s.successes, static_cast<std::uint64_t>(requests));
        },
        [&](caf::error& e) { ADD_FAILURE() << sys.render(e); });
  }
}

} // namespace
