#include "sagas/saga.hpp"

#include <cstdint>
#include <map>
#include <string>
#include <utility>
#include <variant>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

using namespace recur;

namespace {

constexpr std::uint64_t seed = 42;
const instant t0 = utc(2026, 3, 1);

/// Three steps; the middle one has nothing to undo.
saga_definition three_steps() {
  return saga_definition{
    "test",
    {{"issue", "void"}, {"notify", ""}, {"charge", "refund"}},
    retry_policy{3600, 2000, 86'400, 3, 100}};
}

saga_state fresh(const saga_definition& def) {
  return new_saga(def, saga_id{"saga_1"}, subscription_id{"sub_1"}, t0);
}

/// One input at one time, processed with its own seeded generator (as a
/// driver does, so that a replay after a crash draws the same jitter).
struct event {
  saga_input input;
  std::int64_t at_s = 0;
};

saga_decision apply(const saga_definition& def, const saga_state& s,
                    const event& e, std::uint64_t gen_seed) {
  rng gen{gen_seed};
  auto d = step(def, s, e.input, saga_context{t0.plus_seconds(e.at_s), gen});
  EXPECT_TRUE(d.has_value()) << (d ? "" : d.error().detail);
  return std::move(d).value();
}

struct run_result {
  std::vector<saga_state> states; // states[k] = after k events
  std::vector<saga_decision> decisions;
};

run_result run(const saga_definition& def, const std::vector<event>& events) {
  run_result r;
  r.states.push_back(fresh(def));
  for (std::size_t i = 0; i < events.size(); ++i) {
    auto d = apply(def, r.states.back(), events[i], seed + i);
    r.states.push_back(d.state);
    r.decisions.push_back(std::move(d));
  }
  return r;
}

template <class C>
std::vector<C> only(const std::vector<saga_command>& cmds) {
  std::vector<C> out;
  for (const auto& c : cmds)
    if (const auto* x = std::get_if<C>(&c))
      out.push_back(*x);
  return out;
}

std::vector<std::string> names(const std::vector<saga_decision>& ds) {
  std::vector<std::string> out;
  for (const auto& d : ds) {
    for (const auto& a : only<saga_cmd::execute_action>(d.commands))
      out.push_back(a.name);
    for (const auto& c : only<saga_cmd::execute_compensation>(d.commands))
      out.push_back("~" + c.name);
  }
  return out;
}

std::string last_timer_id(const saga_decision& d) {
  auto timers = only<saga_cmd::arm_timer>(d.commands);
  EXPECT_EQ(timers.size(), 1u);
  return timers.empty() ? std::string{} : timers.back().timer.id;
}

saga_in::action_succeeded ok() {
  return {"ok", {}};
}

} // namespace

TEST(saga_executor, happy_path_runs_every_action_in_order_and_completes) {
  auto def = three_steps();
  auto r = run(def,
               {{saga_in::start{}},
                {saga_in::action_succeeded{"inv_1", {{"invoice", "inv_1"}}}},
                {ok()},
                {ok()}});
  const auto& end = r.states.back();
  EXPECT_EQ(end.status, saga_status::completed);
  EXPECT_EQ(end.version, 4);
  EXPECT_EQ(end.data.at("invoice"), "inv_1");
  EXPECT_EQ(names(r.decisions),
            (std::vector<std::string>{"issue", "notify", "charge"}));
  auto first = only<saga_cmd::execute_action>(r.decisions[0].commands);
  ASSERT_EQ(first.size(), 1u);
  EXPECT_EQ(first[0].idempotency_key, "saga_1/0/issue/a1");
  auto fin = only<saga_cmd::saga_finished>(r.decisions.back().commands);
  ASSERT_EQ(fin.size(), 1u);
  EXPECT_EQ(fin[0].status, saga_status::completed);
  // Log: one record per action outcome.
  std::size_t logs = 0;
  for (const auto& d : r.decisions)
    logs += d.log.size();
  EXPECT_EQ(logs, 3u);
  EXPECT_EQ(r.decisions[1].log[0].outcome, "ok");
  EXPECT_EQ(r.decisions[1].log[0].detail, "inv_1");
}

TEST(saga_executor, an_empty_definition_completes_on_start) {
  saga_definition def{"empty", {}, default_retry_policy()};
  auto r = run(def, {{saga_in::start{}}});
  EXPECT_EQ(r.states.back().status, saga_status::completed);
}

TEST(saga_executor,
     a_retryable_failure_waits_on_a_seeded_retry_timer_then_succeeds) {
  auto def = three_steps();
  auto r = run(def, {{saga_in::start{}}, {ok()}, {ok()}});
  rng gen{7};
  auto failed = step(def, r.states.back(),
                     saga_in::action_failed_retryable{"card_declined"},
                     saga_context{t0.plus_seconds(10), gen});
  ASSERT_TRUE(failed.has_value());
  EXPECT_EQ(failed->state.status, saga_status::waiting);
  auto timers = only<saga_cmd::arm_timer>(failed->commands);
  ASSERT_EQ(timers.size(), 1u);
  rng same{7};
  auto expected = next_delay_s(def.retry, 1, same);
  ASSERT_TRUE(expected.has_value());
  EXPECT_EQ(timers[0].timer.due_at, t0.plus_seconds(10 + *expected));
  EXPECT_EQ(timers[0].timer.id, "saga_1/2/retry/a1/t1");
  EXPECT_EQ(timers[0].timer.owner, "saga_1");
  EXPECT_EQ(timers[0].timer.kind, "retry");

  auto fired = apply(def, failed->state,
                     {saga_in::timer_fired{timers[0].timer.id}}, 1);
  EXPECT_EQ(fired.state.status, saga_status::running);
  auto retry = only<saga_cmd::execute_action>(fired.commands);
  ASSERT_EQ(retry.size(), 1u);
  EXPECT_EQ(retry[0].attempt, 2);
  EXPECT_EQ(retry[0].idempotency_key, "saga_1/2/charge/a2");
  auto done = apply(def, fired.state, {ok()}, 2);
  EXPECT_EQ(done.state.status, saga_status::completed);
}

TEST(saga_executor, the_same_seed_gives_the_same_retry_delays) {
  auto def = three_steps();
  auto once = [&] {
    auto r = run(def,
                 {{saga_in::start{}}, {saga_in::action_failed_retryable{"x"}}});
    return only<saga_cmd::arm_timer>(r.decisions.back().commands)
      .at(0)
      .timer.due_at;
  };
  EXPECT_EQ(once(), once());
}

TEST(saga_executor, spent_retries_compensate_completed_steps_in_reverse_order) {
  auto def = three_steps(); // 3 attempts
  std::vector<event> evs{{saga_in::start{}}, {ok()}, {ok()}};
  auto r = run(def, evs);
  auto s = r.states.back();
  std::vector<saga_decision> ds;
  for (int attempt = 1; attempt <= 3; ++attempt) {
    auto d = apply(def, s, {saga_in::action_failed_retryable{"soft"}}, attempt);
    ds.push_back(d);
    s = d.state;
    if (attempt < 3) {
      auto f = apply(def, s, {saga_in::timer_fired{last_timer_id(d)}}, 0);
      ds.push_back(f);
      s = f.state;
    }
  }
  // Charge failed for good: "notify" has no compensation, so "void" is next.
  EXPECT_EQ(s.status, saga_status::compensating);
  EXPECT_EQ(s.step, 0);
  EXPECT_EQ(ds.back().log.at(0).outcome, "retries_exhausted");
  auto comp = only<saga_cmd::execute_compensation>(ds.back().commands);
  ASSERT_EQ(comp.size(), 1u);
  EXPECT_EQ(comp[0].name, "void");
  EXPECT_EQ(comp[0].idempotency_key, "saga_1/0/void/c");
  auto end = apply(def, s, {saga_in::compensation_succeeded{"voided"}}, 0);
  EXPECT_EQ(end.state.status, saga_status::compensated);
  EXPECT_EQ(only<saga_cmd::saga_finished>(end.commands).at(0).status,
            saga_status::compensated);
}

/// The step that takes the state over decides exactly as the one that
/// copies it, through retries, timers and compensation, and refuses alike.
TEST(saga_executor, a_step_on_a_moved_state_decides_as_on_a_copied_one) {
  auto def = three_steps();
  std::vector<saga_input> inputs{saga_in::start{}, ok(), ok(),
                                 saga_in::action_failed_retryable{"soft"}};
  saga_state copied = fresh(def);
  saga_state moved = fresh(def);
  auto both = [&](const saga_input& in, std::uint64_t seed_n) {
    rng g1{seed_n};
    rng g2{seed_n};
    auto a = step(def, copied, in, saga_context{t0, g1});
    auto b = step(def, std::move(moved), in, saga_context{t0, g2});
    ASSERT_EQ(a.has_value(), b.has_value());
    if (!a) {
      EXPECT_EQ(a.error().code, b.error().code);
      EXPECT_EQ(a.error().detail, b.error().detail);
      moved = copied; // unspecified after a refusal: start again from it
      return;
    }
    EXPECT_EQ(a->state, b->state);
    EXPECT_EQ(a->commands.size(), b->commands.size());
    EXPECT_EQ(names({*a}), names({*b}));
    ASSERT_EQ(a->log.size(), b->log.size());
    for (std::size_t i = 0; i < a->log.size(); ++i)
      EXPECT_EQ(a->log[i].outcome, b->log[i].outcome);
    copied = a->state;
    moved = std::move(b->state);
  };
  for (std::size_t i = 0; i < inputs.size(); ++i)
    both(inputs[i], seed + i);
  for (int n = 0; n < 2; ++n) { // the retries' timers, then retries spent
    ASSERT_TRUE(copied.timer.has_value());
    both(saga_in::timer_fired{copied.timer->id}, seed + 10 + n);
    both(saga_in::action_failed_retryable{"soft"}, seed + 20 + n);
  }
  EXPECT_EQ(copied.status, saga_status::compensating);
  both(saga_in::timer_fired{"not-the-armed-one"}, seed); // refused alike
  both(saga_in::compensation_succeeded{"voided"}, seed);
  EXPECT_EQ(copied.status, saga_status::compensated);
  EXPECT_EQ(moved, copied);
  both(ok(), seed); // a finished saga refuses any input, both ways
}

TEST(saga_executor, compensations_run_in_reverse_order) {
  saga_definition def{"rev",
                      {{"a", "undo_a"}, {"b", "undo_b"}, {"c", "undo_c"}},
                      default_retry_policy()};
  auto r = run(def, {{saga_in::start{}},
                     {ok()},
                     {ok()},
                     {saga_in::action_failed_permanent{"hard"}},
                     {saga_in::compensation_succeeded{}},
                     {saga_in::compensation_succeeded{}}});
  EXPECT_EQ(names(r.decisions),
            (std::vector<std::string>{"a", "b", "c", "~undo_b", "~undo_a"}));
  EXPECT_EQ(r.states.back().status, saga_status::compensated);
}

TEST(saga_executor,
     a_permanent_failure_of_the_first_step_is_compensated_at_once) {
  auto def = three_steps();
  auto r = run(def,
               {{saga_in::start{}}, {saga_in::action_failed_permanent{"x"}}});
  EXPECT_EQ(r.states.back().status, saga_status::compensated);
  EXPECT_TRUE(
    only<saga_cmd::execute_compensation>(r.decisions.back().commands).empty());
}

TEST(saga_executor, a_failed_compensation_fails_the_saga) {
  auto def = three_steps();
  auto r = run(def, {{saga_in::start{}},
                     {ok()},
                     {ok()},
                     {saga_in::action_failed_permanent{"expired_card"}},
                     {saga_in::compensation_failed{"void refused"}}});
  const auto& d = r.decisions.back();
  EXPECT_EQ(d.state.status, saga_status::failed);
  EXPECT_EQ(d.log.at(0).kind, step_kind::compensation);
  EXPECT_EQ(d.log.at(0).outcome, "failed");
  EXPECT_EQ(only<saga_cmd::saga_finished>(d.commands).at(0).status,
            saga_status::failed);
}

TEST(saga_executor,
     an_unavailable_compensation_waits_on_a_timer_and_retries_with_the_same_key) {
  saga_definition def{"rev",
                      {{"a", "undo_a"}, {"b", "undo_b"}},
                      retry_policy{3600, 2000, 86'400, 3, 0}};
  auto r = run(def, {{saga_in::start{}},
                     {ok()},
                     {saga_in::action_failed_permanent{"hard"}}});
  auto s = r.states.back();
  ASSERT_EQ(s.status, saga_status::compensating);
  const auto first = only<saga_cmd::execute_compensation>(
    r.decisions.back().commands).at(0);
  EXPECT_EQ(first.name, "undo_a");
  // Unavailable five times: the delays double from 1 h and stay capped at
  // 1 day; never given up (more than the policy's 3 attempts).
  std::vector<std::int64_t> delays;
  std::int64_t at = 10;
  for (int i = 0; i < 6; ++i) {
    auto d = apply(def, s,
                   {saga_in::compensation_failed_retryable{"gateway down"}, at},
                   seed + 100 + static_cast<std::uint64_t>(i));
    ASSERT_EQ(d.state.status, saga_status::waiting);
    auto timers = only<saga_cmd::arm_timer>(d.commands);
    ASSERT_EQ(timers.size(), 1u);
    EXPECT_EQ(timers.at(0).timer.kind, "compensation_retry");
    delays.push_back(timers.at(0).timer.due_at.unix_s - (t0.unix_s + at));
    // Neither an abort nor an early finish interrupts an undo under way.
    rng g{1};
    EXPECT_FALSE(step(def, d.state, saga_in::abort_requested{"paid"},
                      saga_context{t0, g}).has_value());
    EXPECT_FALSE(step(def, d.state, saga_in::finish_early{"paid"},
                      saga_context{t0, g}).has_value());
    at = timers.at(0).timer.due_at.unix_s - t0.unix_s;
    auto fired = apply(def, d.state,
                       {saga_in::timer_fired{timers.at(0).timer.id}, at},
                       seed + 200 + static_cast<std::uint64_t>(i));
    ASSERT_EQ(fired.state.status, saga_status::compensating);
    auto again = only<saga_cmd::execute_compensation>(fired.commands);
    ASSERT_EQ(again.size(), 1u);
    EXPECT_EQ(again.at(0), first); // the same compensation, the same key
    s = fired.state;
  }
  EXPECT_EQ(delays, (std::vector<std::int64_t>{3600, 7200, 14400, 28800,
                                               57600, 86400}));
  auto done = apply(def, s, {saga_in::compensation_succeeded{"voided"}, at},
                    seed + 300);
  EXPECT_EQ(done.state.status, saga_status::compensated);
  EXPECT_EQ(done.state.data.count("_compensation_retries"), 0u);
}

TEST(saga_executor,
     pending_waits_on_a_timeout_timer_and_asks_again_with_the_same_key) {
  auto def = three_steps();
  auto r = run(def, {{saga_in::start{}},
                     {ok()},
                     {ok()},
                     {saga_in::action_pending{"webhook", 3600}, 100}});
  const auto& pending = r.decisions.back();
  EXPECT_EQ(pending.state.status, saga_status::waiting);
  auto timer = only<saga_cmd::arm_timer>(pending.commands).at(0).timer;
  EXPECT_EQ(timer.kind, "timeout");
  EXPECT_EQ(timer.due_at, t0.plus_seconds(3700));

  auto fired = apply(def, pending.state, {saga_in::timer_fired{timer.id}, 3700},
                     0);
  EXPECT_EQ(fired.state.status, saga_status::running);
  auto again = only<saga_cmd::execute_action>(fired.commands).at(0);
  EXPECT_EQ(again.idempotency_key, "saga_1/2/charge/a1"); // not a new charge
  EXPECT_EQ(fired.log.at(0).outcome, "timeout");

  // The webhook arriving while waiting resolves it and cancels the timer.
  auto hooked = apply(def, pending.state, {ok()}, 0);
  EXPECT_EQ(hooked.state.status, saga_status::completed);
  EXPECT_EQ(only<saga_cmd::cancel_timers>(hooked.commands).size(), 1u);
}

TEST(saga_executor, abort_mid_way_compensates_only_completed_steps) {
  saga_definition def{"abort",
                      {{"a", "undo_a"}, {"b", "undo_b"}, {"c", "undo_c"}},
                      default_retry_policy()};
  auto r = run(def, {{saga_in::start{}},
                     {ok()},
                     {saga_in::action_failed_retryable{"soft"}}, // b waits
                     {saga_in::abort_requested{"payment arrived"}},
                     {saga_in::compensation_succeeded{}}});
  EXPECT_EQ(names(r.decisions),
            (std::vector<std::string>{"a", "b", "~undo_a"}));
  EXPECT_EQ(only<saga_cmd::cancel_timers>(r.decisions[3].commands).size(), 1u);
  EXPECT_EQ(r.states.back().status, saga_status::compensated);
  EXPECT_FALSE(r.states.back().timer.has_value());
}

TEST(saga_executor,
     inputs_that_make_no_sense_are_rejected_with_the_state_unchanged) {
  auto def = three_steps();
  auto r = run(def, {{saga_in::start{}}, {ok()}});
  auto running = r.states.back();
  auto before = running;
  rng gen{1};
  saga_context ctx{t0, gen};
  auto rejects = [&](const saga_state& s, const saga_input& in) {
    auto d = step(def, s, in, ctx);
    EXPECT_FALSE(d.has_value());
    if (!d) {
      EXPECT_EQ(d.code(), errc::invalid_transition);
    }
  };
  rejects(running, saga_in::start{});
  rejects(running, saga_in::compensation_succeeded{});
  rejects(running, saga_in::compensation_failed{});
  rejects(running, saga_in::timer_fired{"saga_1/1/retry/a1"});
  rejects(fresh(def), ok());
  rejects(fresh(def), saga_in::abort_requested{});
  EXPECT_EQ(running, before);

  auto waiting
    = apply(def, running, {saga_in::action_failed_retryable{"x"}}, 3).state;
  rejects(waiting, saga_in::timer_fired{"some/other/timer"});
  rejects(waiting, saga_in::action_pending{"webhook", 10});
  rejects(waiting, ok()); // a retry wait has no action in flight

  auto done
    = run(def, {{saga_in::start{}}, {ok()}, {ok()}, {ok()}}).states.back();
  rejects(done, ok());
  rejects(done, saga_in::abort_requested{});

  auto bad = step(def, running, saga_in::action_pending{"webhook", 0}, ctx);
  ASSERT_FALSE(bad.has_value());
  EXPECT_EQ(bad.code(), errc::invalid_argument);
  auto other = saga_definition{"other", {{"x", ""}}, default_retry_policy()};
  auto misfit = step(other, running, ok(), ctx);
  ASSERT_FALSE(misfit.has_value());
  EXPECT_EQ(misfit.code(), errc::invalid_argument);
}

TEST(saga_executor, a_record_is_the_text_nlohmann_prints_for_the_state) {
  // to_record writes its JSON directly; the text must stay what a json DOM
  // of the same state dumps, so stored rows read back the same either way.
  saga_state s;
  s.id = saga_id{"sub_1/invoice/1"};
  s.type = "invoice";
  s.attempts = {1, 3, 0, -2};
  s.data = {{"a\"q", "x\\y\n\x01"}, {"empty", ""}, {"z", "é/ok"}};
  s.timers_armed = 7;
  auto doc = [](const saga_state& st) {
    nlohmann::json j;
    j["attempts"] = st.attempts;
    j["data"] = st.data;
    j["timers_armed"] = st.timers_armed;
    if (st.timer)
      j["timer"] = {{"id", st.timer->id},
                    {"kind", st.timer->kind},
                    {"wait_kind", st.timer->wait_kind},
                    {"due_at_unix_s", st.timer->due_at.unix_s}};
    return j.dump();
  };
  EXPECT_EQ(to_record(s).data_json, doc(s));
  s.timer = saga_timer{"sub_1/invoice/1/2/retry/a1/t3", "retry", "",
                       instant{-5}};
  EXPECT_EQ(to_record(s).data_json, doc(s));
  s.attempts.clear();
  s.data.clear();
  EXPECT_EQ(to_record(s).data_json, doc(s));
  auto back = from_record(to_record(s));
  ASSERT_TRUE(back.has_value());
  EXPECT_EQ(back->timer, s.timer);
}

TEST(saga_executor, a_state_round_trips_through_its_store_record) {
  auto def = three_steps();
  auto r = run(def,
               {{saga_in::start{}},
                {saga_in::action_succeeded{"", {{"invoice", "inv_\"1\""}}}},
                {ok()},
                {saga_in::action_pending{"webhook", 60}, 5}});
  for (const auto& s : r.states) {
    auto rec = to_record(s);
    EXPECT_EQ(rec.status, s.status);
    EXPECT_EQ(rec.step, s.step);
    EXPECT_EQ(rec.version, s.version);
    auto back = from_record(rec);
    ASSERT_TRUE(back.has_value());
    EXPECT_EQ(*back, s);
  }
  auto upd = to_update(r.states.back());
  EXPECT_EQ(upd.expected_version, 3);
  EXPECT_EQ(upd.status, saga_status::waiting);

  auto broken = to_record(r.states.back());
  broken.data_json = "{\"attempts\": \"no\"}";
  EXPECT_EQ(from_record(broken).code(), errc::invalid_argument);
  broken.data_json = "not json";
  EXPECT_EQ(from_record(broken).code(), errc::invalid_argument);
}

// -- crash and resume ---------------------------------------------------------

namespace {

/// What an external key or timer id was first issued with; any re-issue must
/// match it exactly.
struct effect_ledger {
  std::map<std::string, std::string> seen;

  void check(const std::vector<saga_command>& cmds) {
    for (const auto& c : cmds) {
      std::string key, content;
      if (const auto* a = std::get_if<saga_cmd::execute_action>(&c)) {
        key = a->idempotency_key;
        content = "A" + std::to_string(a->step) + a->name
                  + std::to_string(a->attempt);
      } else if (const auto* x
                 = std::get_if<saga_cmd::execute_compensation>(&c)) {
        key = x->idempotency_key;
        content = "C" + std::to_string(x->step) + x->name;
      } else if (const auto* t = std::get_if<saga_cmd::arm_timer>(&c)) {
        key = t->timer.id;
        content = t->timer.owner + t->timer.kind
                  + std::to_string(t->timer.due_at.unix_s)
                  + t->timer.payload_json;
      } else {
        continue;
      }
      auto [it, fresh_key] = seen.emplace(key, content);
      EXPECT_TRUE(fresh_key || it->second == content)
        << "key " << key << " re-issued with other content";
    }
  }
};

void crash_matrix(const saga_definition& def, const std::vector<event>& evs) {
  auto ref = run(def, evs);
  effect_ledger ledger;
  for (const auto& d : ref.decisions)
    ledger.check(d.commands);
  for (std::size_t k = 0; k <= evs.size(); ++k) {
    // Crash right after event k was persisted: reload from the record.
    auto loaded = from_record(to_record(ref.states[k]));
    ASSERT_TRUE(loaded.has_value());
    auto s = *loaded;
    auto again = resume(def, s);
    ledger.check(again);
    if (k > 0 && !ref.decisions[k - 1].commands.empty()
        && !is_finished(s.status)) {
      EXPECT_FALSE(again.empty()) << "nothing to resume after event " << k;
    }
    for (std::size_t i = k; i < evs.size(); ++i) {
      auto d = apply(def, s, evs[i], seed + i);
      ledger.check(d.commands);
      s = d.state;
    }
    EXPECT_EQ(s, ref.states.back()) << "diverged after a crash at " << k;
  }
}

} // namespace

TEST(saga_executor, a_crash_after_any_step_resumes_with_the_same_keys_and_end) {
  auto def = three_steps();
  // Timer ids need the run's own armed timers; build the script step by step.
  std::vector<event> evs{{saga_in::start{}},
                         {saga_in::action_succeeded{"", {{"k", "v"}}}, 1},
                         {ok(), 2},
                         {saga_in::action_failed_retryable{"soft"}, 3}};
  auto r = run(def, evs);
  evs.push_back(
    {saga_in::timer_fired{last_timer_id(r.decisions.back())}, 9000});
  evs.push_back({saga_in::action_pending{"webhook", 600}, 9001});
  r = run(def, evs);
  evs.push_back(
    {saga_in::timer_fired{last_timer_id(r.decisions.back())}, 9601});
  evs.push_back({saga_in::action_failed_permanent{"expired_card"}, 9602});
  evs.push_back({saga_in::compensation_succeeded{"voided"}, 9603});
  auto end = run(def, evs).states.back();
  EXPECT_EQ(end.status, saga_status::compensated);
  crash_matrix(def, evs);

  std::vector<event> happy{{saga_in::start{}}, {ok(), 1}, {ok(), 2}, {ok(), 3}};
  crash_matrix(def, happy);
}
