#include "sagas/saga.hpp"

#include <exception>
#include <utility>

#include <nlohmann/json.hpp>

#include "sagas/json_writer.hpp"

namespace recur {

namespace {

using std::int32_t;
using std::int64_t;

constexpr std::string_view retry_kind = "retry";
constexpr std::string_view timeout_kind = "timeout";
constexpr std::string_view compensation_retry_kind = "compensation_retry";
/// saga data key counting the retries of the current compensation.
constexpr const char* compensation_retries_key = "_compensation_retries";

error bad_transition(const saga_state& s, std::string_view input) {
  return make_error(errc::invalid_transition,
                    std::string{input} + " in status "
                      + std::string{to_string(s.status)});
}

/// The decision being built: a copy of the state plus what it emits.
struct builder {
  const saga_definition& def;
  const saga_context& ctx;
  saga_decision d;

  const saga_step_def& cur() const { return def.steps.at(d.state.step); }

  void log(step_kind kind, std::string name, std::string outcome,
           std::string detail) {
    d.log.push_back(saga_step_record{d.state.id, 0, d.state.step, kind,
                                     std::move(name), std::move(outcome),
                                     std::move(detail), ctx.now});
  }

  void leave_waiting() {
    if (d.state.timer.has_value())
      d.commands.emplace_back(saga_cmd::cancel_timers{d.state.id.value});
    d.state.timer.reset();
  }

  void finish(saga_status st) {
    leave_waiting();
    d.state.status = st;
    d.commands.emplace_back(saga_cmd::saga_finished{st});
  }

  /// Runs the current step's action at its next attempt.
  void run_action() {
    leave_waiting();
    d.state.status = saga_status::running;
    auto& attempt = d.state.attempts.at(d.state.step);
    ++attempt;
    d.commands.emplace_back(saga_cmd::execute_action{
      d.state.step, cur().action, attempt,
      action_key(d.state.id, d.state.step, cur().action, attempt)});
  }

  /// Compensates the completed steps below `from` (exclusive) in reverse.
  void compensate_below(int32_t from) {
    leave_waiting();
    for (int32_t i = from - 1; i >= 0; --i) {
      const auto& name = def.steps.at(i).compensation;
      if (name.empty())
        continue;
      d.state.status = saga_status::compensating;
      d.state.step = i;
      d.commands.emplace_back(saga_cmd::execute_compensation{
        i, name, compensation_key(d.state.id, i, name)});
      return;
    }
    finish(saga_status::compensated);
  }

  void arm(std::string kind, std::string wait_kind, int64_t delay_s) {
    auto attempt = d.state.attempts.at(d.state.step);
    auto n = ++d.state.timers_armed;
    saga_timer t{d.state.id.value + "/" + std::to_string(d.state.step) + "/"
                   + kind + "/a" + std::to_string(attempt) + "/t"
                   + std::to_string(n),
                 std::move(kind), std::move(wait_kind),
                 ctx.now.plus_seconds(delay_s)};
    d.state.status = saga_status::waiting;
    d.state.timer = t;
  }
};

timer_record timer_of(const saga_state& s) {
  RECUR_ASSERT(s.timer.has_value());
  nlohmann::json payload{{"step", s.step}, {"wait_kind", s.timer->wait_kind}};
  return timer_record{s.timer->id, s.id.value, s.timer->kind, s.timer->due_at,
                      payload.dump()};
}

bool in_action(const saga_state& s) {
  return s.status == saga_status::running
         || (s.status == saga_status::waiting && s.timer
             && s.timer->kind == timeout_kind);
}

status check_fits(const saga_definition& def, const saga_state& s) {
  if (def.steps.size() > saga_steps_limit)
    return make_error(errc::invalid_argument, "too many saga steps");
  if (s.type != def.type || s.attempts.size() != def.steps.size())
    return make_error(errc::invalid_argument,
                      "saga state does not fit definition " + def.type);
  if (s.version > 0 && !is_finished(s.status)
      && (s.step < 0 || static_cast<std::size_t>(s.step) >= def.steps.size()))
    return make_error(errc::invalid_argument, "saga step out of range");
  if ((s.status == saga_status::waiting) != s.timer.has_value())
    return make_error(errc::invalid_argument, "waiting saga without timer");
  return {};
}

// -- one handler per input
// ------------------------------------------------------

status on(builder& b, const saga_in::start&) {
  if (b.d.state.version != 0)
    return bad_transition(b.d.state, "start");
  if (b.def.steps.empty()) {
    b.finish(saga_status::completed);
    return {};
  }
  b.d.state.step = 0;
  b.run_action();
  return {};
}

status on(builder& b, const saga_in::action_succeeded& in) {
  auto& s = b.d.state;
  if (!in_action(s))
    return bad_transition(s, "action_succeeded");
  b.log(step_kind::action, b.cur().action, "ok", in.detail);
  for (const auto& [k, v] : in.data)
    s.data[k] = v;
  if (static_cast<std::size_t>(s.step) + 1 == b.def.steps.size()) {
    b.finish(saga_status::completed);
    return {};
  }
  b.leave_waiting();
  ++s.step;
  b.run_action();
  return {};
}

status on(builder& b, const saga_in::action_failed_permanent& in) {
  if (!in_action(b.d.state))
    return bad_transition(b.d.state, "action_failed_permanent");
  b.log(step_kind::action, b.cur().action, "failed", in.reason);
  b.compensate_below(b.d.state.step);
  return {};
}

status on(builder& b, const saga_in::action_failed_retryable& in) {
  auto& s = b.d.state;
  if (!in_action(s))
    return bad_transition(s, "action_failed_retryable");
  if (auto st = validate(b.def.retry); !st)
    return st;
  auto delay = next_delay_s(b.def.retry, s.attempts.at(s.step), b.ctx.gen);
  if (!delay) {
    b.log(step_kind::action, b.cur().action, "retries_exhausted", in.reason);
    b.compensate_below(s.step);
    return {};
  }
  b.log(step_kind::action, b.cur().action, "failed_retryable", in.reason);
  b.leave_waiting();
  b.arm(std::string{retry_kind}, {}, *delay);
  b.d.commands.emplace_back(saga_cmd::arm_timer{timer_of(s)});
  return {};
}

status on(builder& b, const saga_in::action_pending& in) {
  auto& s = b.d.state;
  if (s.status != saga_status::running)
    return bad_transition(s, "action_pending");
  if (in.timeout_s < 1 || in.wait_kind.empty())
    return make_error(errc::invalid_argument,
                      "action_pending needs a wait kind and timeout_s >= 1");
  b.log(step_kind::action, b.cur().action, "pending", in.wait_kind);
  b.arm(std::string{timeout_kind}, in.wait_kind, in.timeout_s);
  b.d.commands.emplace_back(saga_cmd::arm_timer{timer_of(s)});
  return {};
}

status on(builder& b, const saga_in::timer_fired& in) {
  auto& s = b.d.state;
  if (s.status != saga_status::waiting || !s.timer
      || s.timer->id != in.timer_id)
    return bad_transition(s, "timer_fired");
  if (s.timer->kind == retry_kind) {
    b.run_action(); // the next attempt, under a new key
    return {};
  }
  if (s.timer->kind == compensation_retry_kind) {
    // The same compensation again, under the SAME key: idempotent.
    b.log(step_kind::compensation, b.cur().compensation, "retry",
          s.data[compensation_retries_key]);
    b.leave_waiting();
    s.status = saga_status::compensating;
    b.d.commands.emplace_back(saga_cmd::execute_compensation{
      s.step, b.cur().compensation,
      compensation_key(s.id, s.step, b.cur().compensation)});
    return {};
  }
  // A pending outcome timed out: ask again under the SAME key, so that the
  // gateway reports the first charge instead of making a second one.
  b.log(step_kind::action, b.cur().action, "timeout", s.timer->wait_kind);
  b.leave_waiting();
  s.status = saga_status::running;
  auto attempt = s.attempts.at(s.step);
  b.d.commands.emplace_back(saga_cmd::execute_action{
    s.step, b.cur().action, attempt,
    action_key(s.id, s.step, b.cur().action, attempt)});
  return {};
}

status on(builder& b, const saga_in::compensation_succeeded& in) {
  auto& s = b.d.state;
  if (s.status != saga_status::compensating)
    return bad_transition(s, "compensation_succeeded");
  b.log(step_kind::compensation, b.cur().compensation, "ok", in.detail);
  s.data.erase(compensation_retries_key);
  b.compensate_below(s.step);
  return {};
}

status on(builder& b, const saga_in::compensation_failed& in) {
  auto& s = b.d.state;
  if (s.status != saga_status::compensating)
    return bad_transition(s, "compensation_failed");
  b.log(step_kind::compensation, b.cur().compensation, "failed", in.reason);
  b.finish(saga_status::failed);
  return {};
}

/// The delay before compensation retry `n` (1, 2, …): the retry policy's
/// exponential schedule, capped at its max interval, with its jitter.
int64_t compensation_delay_s(const retry_policy& p, int32_t n, rng& gen) {
  retry_policy unbounded = p;
  unbounded.max_attempts = retry_attempts_limit;
  auto d = next_delay_s(unbounded, std::min(n, retry_attempts_limit - 1), gen);
  return d ? *d : p.max_interval_s;
}

status on(builder& b, const saga_in::compensation_failed_retryable& in) {
  auto& s = b.d.state;
  if (s.status != saga_status::compensating)
    return bad_transition(s, "compensation_failed_retryable");
  if (auto st = validate(b.def.retry); !st)
    return st;
  auto& count = s.data[compensation_retries_key];
  const int32_t n = count.empty() ? 1 : std::stoi(count) + 1;
  count = std::to_string(n);
  b.log(step_kind::compensation, b.cur().compensation, "failed_retryable",
        in.reason);
  b.arm(std::string{compensation_retry_kind}, {},
        compensation_delay_s(b.def.retry, n, b.ctx.gen));
  b.d.commands.emplace_back(saga_cmd::arm_timer{timer_of(s)});
  return {};
}

status on(builder& b, const saga_in::abort_requested& in) {
  auto& s = b.d.state;
  if (s.version == 0
      || (s.status != saga_status::running && s.status != saga_status::waiting)
      || (s.timer && s.timer->kind == compensation_retry_kind))
    return bad_transition(s, "abort_requested"); // an undo under way is finished first
  b.log(step_kind::action, b.cur().action, "aborted", in.reason);
  b.compensate_below(s.step);
  return {};
}

status on(builder& b, const saga_in::finish_early& in) {
  auto& s = b.d.state;
  if (s.version == 0
      || (s.status != saga_status::running && s.status != saga_status::waiting)
      || (s.timer && s.timer->kind == compensation_retry_kind))
    return bad_transition(s, "finish_early"); // an undo under way is finished first
  b.log(step_kind::action, b.cur().action, "ended_early", in.reason);
  b.finish(saga_status::completed);
  return {};
}

} // namespace

// -- public API ---------------------------------------------------------------

std::string action_key(const saga_id& id, int32_t step, const std::string& name,
                       int32_t attempt) {
  return id.value + "/" + std::to_string(step) + "/" + name + "/a"
         + std::to_string(attempt);
}

std::string compensation_key(const saga_id& id, int32_t step,
                             const std::string& name) {
  return id.value + "/" + std::to_string(step) + "/" + name + "/c";
}

saga_state new_saga(const saga_definition& def, saga_id id,
                    subscription_id subscription, instant now) {
  saga_state s;
  s.id = std::move(id);
  s.type = def.type;
  s.subscription = std::move(subscription);
  s.attempts.assign(def.steps.size(), 0);
  s.created_at = now;
  s.updated_at = now;
  return s;
}

namespace {

/// The checks before any input; then `run` applies it to a state taken over.
status admissible(const saga_definition& def, const saga_state& state,
                  const saga_input& input) {
  if (auto st = check_fits(def, state); !st)
    return st.error();
  if (is_finished(state.status))
    return bad_transition(state, "any input");
  if (state.version == 0 && !std::holds_alternative<saga_in::start>(input))
    return bad_transition(state, "input before start");
  return {};
}

result<saga_decision> run(const saga_definition& def, saga_state state,
                          const saga_input& input, const saga_context& ctx) {
  builder b{def, ctx, saga_decision{std::move(state), {}, {}}};
  auto st = std::visit([&b](const auto& in) { return on(b, in); }, input);
  if (!st)
    return st.error();
  ++b.d.state.version;
  b.d.state.updated_at = ctx.now;
  return std::move(b.d);
}

} // namespace

result<saga_decision> step(const saga_definition& def, const saga_state& state,
                           const saga_input& input, const saga_context& ctx) {
  if (auto st = admissible(def, state, input); !st)
    return st.error();
  return run(def, state, input, ctx);
}

result<saga_decision> step(const saga_definition& def, saga_state&& state,
                           const saga_input& input, const saga_context& ctx) {
  if (auto st = admissible(def, state, input); !st)
    return st.error();
  return run(def, std::move(state), input, ctx);
}

std::vector<saga_command> resume(const saga_definition& def,
                                 const saga_state& s) {
  if (s.version == 0 || is_finished(s.status) || !check_fits(def, s))
    return {};
  const auto& sd = def.steps.at(s.step);
  switch (s.status) {
    case saga_status::running: {
      auto attempt = s.attempts.at(s.step);
      return {
        saga_cmd::execute_action{s.step, sd.action, attempt,
                                 action_key(s.id, s.step, sd.action, attempt)}};
    }
    case saga_status::waiting:
      return {saga_cmd::arm_timer{timer_of(s)}};
    case saga_status::compensating:
      return {saga_cmd::execute_compensation{
        s.step, sd.compensation,
        compensation_key(s.id, s.step, sd.compensation)}};
    default:
      return {};
  }
}

// -- persistence --------------------------------------------------------------

saga_record to_record(const saga_state& s) {
  // On every saga commit's path: written directly, byte for byte what
  // nlohmann's dump of the same document prints (keys in sorted order).
  std::string out;
  out.reserve(64 + 8 * s.attempts.size() + 48 * s.data.size());
  json_writer w{out};
  w.begin_object().key("attempts").begin_array();
  for (auto a : s.attempts)
    w.value(a);
  w.end_array().key("data").begin_object();
  for (const auto& [k, v] : s.data)
    w.member(k, v);
  w.end_object();
  if (s.timer)
    w.key("timer")
      .begin_object()
      .member("due_at_unix_s", s.timer->due_at.unix_s)
      .member("id", s.timer->id)
      .member("kind", s.timer->kind)
      .member("wait_kind", s.timer->wait_kind)
      .end_object();
  w.member("timers_armed", s.timers_armed).end_object();
  return saga_record{s.id,      s.type,         s.subscription,
                     s.status,  s.step,         s.version,
                     std::move(out), s.created_at, s.updated_at};
}

saga_update to_update(const saga_state& s) {
  RECUR_ASSERT(s.version >= 2);
  auto r = to_record(s);
  return saga_update{r.id,   r.version - 1,          r.status,
                     r.step, std::move(r.data_json), r.updated_at};
}

result<saga_state> from_record(const saga_record& r) {
  auto j = nlohmann::json::parse(r.data_json, nullptr, false);
  if (j.is_discarded() || !j.is_object())
    return make_error(errc::invalid_argument,
                      "saga data_json is not an object");
  saga_state s;
  s.id = r.id;
  s.type = r.type;
  s.subscription = r.subscription;
  s.status = r.status;
  s.step = r.step;
  s.version = r.version;
  s.created_at = r.created_at;
  s.updated_at = r.updated_at;
  try {
    s.attempts = j.at("attempts").get<std::vector<int32_t>>();
    s.data = j.at("data").get<std::map<std::string, std::string>>();
    s.timers_armed = j.value("timers_armed", 0);
    if (auto it = j.find("timer"); it != j.end()) {
      const auto& t = *it;
      s.timer = saga_timer{t.at("id").get<std::string>(),
                           t.at("kind").get<std::string>(),
                           t.at("wait_kind").get<std::string>(),
                           instant{t.at("due_at_unix_s").get<int64_t>()}};
    }
  } catch (const std::exception& e) {
    return make_error(errc::invalid_argument,
                      std::string{"saga data_json: "} + e.what());
  }
  return s;
}

} // namespace recur
