#pragma once
/// The generic, pure saga executor: a saga definition is data (ordered steps,
/// each an action and an optional compensation), and `step` turns (state,
/// input) into (new state, commands, log records) without I/O or clock reads.
///
/// Conventions (the five concrete sagas build on them):
/// - `state.step` is the step whose action (running/waiting) or compensation
///   (compensating) is in flight; steps below it have completed their action.
/// - A saga owns at most one armed timer at a time (a retry or a pending
///   timeout); leaving `waiting` cancels the saga's timers.
/// - Idempotency keys are `<saga>/<step>/<name>/a<attempt>` for actions and
///   `<saga>/<step>/<name>/c` for compensations; timer ids are
///   `<saga>/<step>/<kind>/a<attempt>`. They depend on nothing but the state,
///   so re-issuing after a crash (see `resume`) repeats the same keys.
/// - Timer ids are `<saga>/<step>/<kind>/a<attempt>/t<n>`, n counting every
///   timer the saga ever armed: a store never re-arms an id it has seen (even
///   a fired one), so a second wait in the same step needs a fresh id.

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <variant>
#include <vector>

#include "domain/clock.hpp"
#include "domain/error.hpp"
#include "domain/ids.hpp"
#include "domain/time.hpp"
#include "sagas/store.hpp"
#include "workflows/retry_policy.hpp"

namespace recur {

// -- definitions --------------------------------------------------------------

/// A definition longer than this is a programmer error (`invalid_argument`).
inline constexpr std::size_t saga_steps_limit = 64;

struct saga_step_def {
  std::string action;
  std::string compensation; // empty: nothing to undo
};

struct saga_definition {
  std::string type; // "invoice", "dunning", …
  std::vector<saga_step_def> steps;
  retry_policy retry = default_retry_policy(); // for retryable action failures
};

// -- state --------------------------------------------------------------------

/// The one timer a waiting saga has armed.
struct saga_timer {
  std::string id;
  std::string kind;      // "retry" or "timeout"
  std::string wait_kind; // for "timeout": what is awaited, e.g. "webhook"
  instant due_at;

  friend bool operator==(const saga_timer&, const saga_timer&) = default;
};

struct saga_state {
  saga_id id;
  std::string type;
  subscription_id subscription;
  saga_status status = saga_status::running;
  std::int32_t step = 0;
  std::vector<std::int32_t> attempts; // per step; 0 = never started
  std::map<std::string, std::string> data;
  std::optional<saga_timer> timer; // set exactly while waiting
  std::int32_t timers_armed = 0;   // for fresh timer ids
  std::int64_t version = 0;        // 0 = not started; +1 per decision
  instant created_at;
  instant updated_at;

  friend bool operator==(const saga_state&, const saga_state&) = default;
};

/// A fresh, not yet started saga (version 0); feed it `saga_in::start`.
saga_state new_saga(const saga_definition& def, saga_id id,
                    subscription_id subscription, instant now);

// -- inputs -------------------------------------------------------------------

namespace saga_in {

struct start {};
struct action_succeeded {
  std::string detail;
  std::map<std::string, std::string> data; // merged into the saga's data
};
struct action_failed_retryable {
  std::string reason;
};
struct action_failed_permanent {
  std::string reason;
};
/// The action was accepted but its outcome comes later (a webhook): wait, and
/// after `timeout_s` re-issue the action with the same key to ask for it.
struct action_pending {
  std::string wait_kind;
  std::int64_t timeout_s = 0; // >= 1
};
struct timer_fired {
  std::string timer_id;
};
struct compensation_succeeded {
  std::string detail;
};
struct compensation_failed {
  std::string reason;
};
/// A compensation could not run for now (the gateway unavailable): it is
/// tried again, under the same key, after a capped exponential backoff
/// (the definition's retry policy, without its attempt limit: an undo is
/// never given up on). The saga waits on a durable timer meanwhile.
struct compensation_failed_retryable {
  std::string reason;
};
/// Stop and undo the completed steps (e.g. payment arrived during dunning).
struct abort_requested {
  std::string reason;
};
/// Stop as `completed` without running the remaining steps or any
/// compensation (e.g. a dunning saga whose invoices got paid elsewhere). Only
/// while running or waiting; the caller must make sure no external action is
/// in flight (its outcome would find the saga finished).
struct finish_early {
  std::string reason;
};

} // namespace saga_in

using saga_input
  = std::variant<saga_in::start, saga_in::action_succeeded,
                 saga_in::action_failed_retryable,
                 saga_in::action_failed_permanent, saga_in::action_pending,
                 saga_in::timer_fired, saga_in::compensation_succeeded,
                 saga_in::compensation_failed, saga_in::abort_requested,
                 saga_in::finish_early,
                 saga_in::compensation_failed_retryable>;

/// What the executor may use besides its arguments: the time and chance.
struct saga_context {
  instant now;
  rng& gen; // retry jitter only
};

// -- commands -----------------------------------------------------------------

namespace saga_cmd {

struct execute_action {
  std::int32_t step = 0;
  std::string name;
  std::int32_t attempt = 1;
  std::string idempotency_key;

  friend bool operator==(const execute_action&, const execute_action&)
    = default;
};
struct execute_compensation {
  std::int32_t step = 0;
  std::string name;
  std::string idempotency_key;

  friend bool
  operator==(const execute_compensation&, const execute_compensation&)
    = default;
};
/// Schedule-once by id: re-arming the same id is harmless.
struct arm_timer {
  timer_record timer;
};
struct cancel_timers {
  std::string owner;
};
struct saga_finished {
  saga_status status = saga_status::completed;
};

} // namespace saga_cmd

using saga_command
  = std::variant<saga_cmd::execute_action, saga_cmd::execute_compensation,
                 saga_cmd::arm_timer, saga_cmd::cancel_timers,
                 saga_cmd::saga_finished>;

struct saga_decision {
  saga_state state;
  std::vector<saga_command> commands; // in order
  std::vector<saga_step_record> log;  // seq left 0: the store assigns it
};

// -- the executor -------------------------------------------------------------

/// Moves the saga on by one input. Errors: `invalid_transition` for an input
/// that makes no sense in the current status (or a stale timer id),
/// `invalid_argument` for a state that does not fit the definition or a bad
/// input, `invalid_policy` for a bad retry policy. The state is never changed
/// on error (it is taken by const&; the caller keeps it).
result<saga_decision> step(const saga_definition& def, const saga_state& state,
                           const saga_input& input, const saga_context& ctx);

/// `step` that takes the state over instead of copying it (its data map is
/// the bulk of a saga): on success the decision holds it moved on; on error
/// `state` is left unspecified, for callers that drop it then anyway.
result<saga_decision> step(const saga_definition& def, saga_state&& state,
                           const saga_input& input, const saga_context& ctx);

/// The commands to re-issue after a crash, from the last persisted state: the
/// in-flight action/compensation with the same key, or the armed timer again.
/// Nothing for a finished or not yet started saga.
std::vector<saga_command> resume(const saga_definition& def,
                                 const saga_state& state);

/// The key of step `step`'s action at `attempt`, or of its compensation.
std::string action_key(const saga_id& id, std::int32_t step,
                       const std::string& name, std::int32_t attempt);
std::string compensation_key(const saga_id& id, std::int32_t step,
                             const std::string& name);

// -- persistence --------------------------------------------------------------

/// The store row for this state (attempts, data and timer in data_json).
saga_record to_record(const saga_state& s);
/// The update that moves the stored row (at version s.version - 1) to `s`.
saga_update to_update(const saga_state& s);
/// The inverse of to_record; `invalid_argument` for unreadable data_json.
result<saga_state> from_record(const saga_record& r);

} // namespace recur
