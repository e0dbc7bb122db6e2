// Test clocks.
//
//   POST /v1/test-clock/advance {"seconds": N}   (1 <= N <= 400 days)
//        Only for tenants created with test_mode (others: 403 forbidden).
//        First waits until the work under way has settled. Then moves the
//        tenant's clock forward timer by timer: for each of the
//        tenant's timers due by start + N, in due order, sets the clock to
//        its due time, fires it through the subscription's actor and waits
//        until the resulting sagas have settled (gateway calls included);
//        then sets the clock to start + N. Timers the fired ones schedule
//        within the window fire in the same call. At most max_timers fire
//        per call: more is 409 conflict after advancing to the last one
//        fired (call again). → 200 {started_at, now, timers_fired}.
//        Advances of one tenant run one at a time. `settle` waits for every
//        subscription actor of the process, so a busy server answers
//        slower; a settle that runs out of time is 503 (the clock stays at
//        the last timer fired).

#include <mutex>

#include <spdlog/spdlog.h>

#include "api/billing_common.hpp"
#include "api/test_clocks.hpp"

namespace recur::api {

namespace {

constexpr std::int64_t max_advance_s = 400 * seconds_per_day;
constexpr std::size_t max_timers = 10'000;
constexpr std::int64_t lease_s = 300;
constexpr std::chrono::seconds settle_timeout{30};

// The subscription a timer belongs to (its payload names it), as the
// registry routes it.
std::optional<subscription_id> owner_of(const timer_record& t) {
  auto sub = timer_subscription(t.payload_json);
  if (!sub)
    return std::nullopt;
  return subscription_id{std::move(*sub)};
}

struct advance_outcome {
  std::size_t fired = 0;
  std::optional<http_response> failure;
};

// Fires tenant `t`'s timers due by `target`, one at a time, in due order.
advance_outcome fire_until(services& s, request_context& ctx, test_clock& clk,
                           instant target) {
  advance_outcome out;
  // Work already under way first (a subscription created a moment ago may
  // still be charging its first invoice): a timer claimed now and cancelled
  // by that work before it fires would fail the advance, and what the clock
  // fires must not depend on how fast the previous request's sagas ran.
  if (auto st = s.orch->settle(settle_timeout); !st) {
    out.failure = error_response(st.error());
    return out;
  }
  store::timer_claim_scope scope;
  scope.tenant = ctx.tid();
  while (out.fired < max_timers) {
    auto claimed = s.db.claim_due_timers_in(scope, target, 1, lease_s,
                                            "test-clock");
    if (!claimed) {
      out.failure = error_response(claimed.error());
      return out;
    }
    if (claimed->empty())
      return out;
    auto& timer = claimed->front().timer;
    if (timer.due_at > clk.now())
      clk.set(timer.due_at);
    const auto sub = owner_of(timer);
    if (!sub) {
      spdlog::warn("event=test_clock_timer_unroutable tenant={} timer={}",
                   ctx.tid().value, timer.id);
      continue; // leased until target + lease_s: not claimed again here
    }
    const std::string timer_id = timer.id;
    auto r = run_command(s, ctx, *sub, sub_in::timer_due{std::move(timer)});
    if (r.failure) {
      spdlog::warn("event=test_clock_timer_failed tenant={} timer={} "
                   "status={}",
                   ctx.tid().value, timer_id, r.failure->status);
      out.failure = std::move(r.failure);
      return out;
    }
    ++out.fired;
    if (auto st = s.orch->settle(settle_timeout); !st) {
      out.failure = error_response(st.error());
      return out;
    }
  }
  out.failure = problem(
    {409, "conflict",
     "more than " + std::to_string(max_timers)
       + " timers fell due: the clock stopped at the last one fired; "
         "advance again"});
  return out;
}

http_response advance(services& s, request_context& ctx) {
  if (auto no = require_orchestrator(s))
    return *no;
  if (s.clocks == nullptr)
    return problem({503, "unavailable", "test clocks are not running"});
  if (!ctx.tenant->test_mode)
    return problem({403, "forbidden",
                    "tenant '" + ctx.tid().value
                      + "' is not in test mode: its clock is the real one"});
  api_error err;
  auto body = parse_object(ctx.req.body, err);
  if (!body)
    return problem(err);
  object_reader in{*body};
  auto seconds = in.integer("seconds", true, 1, max_advance_s);
  in.reject_unknown();
  if (in.failed())
    return problem(in.error());
  std::lock_guard one_at_a_time{s.clocks->advance_lock(ctx.tid())};
  auto& clk = s.clocks->clock_of(*ctx.tenant);
  const instant start = clk.now();
  const instant target = start.plus_seconds(*seconds);
  auto out = fire_until(s, ctx, clk, target);
  spdlog::info("event=test_clock_advanced tenant={} from={} to={} "
               "timers_fired={} ok={}",
               ctx.tid().value, format_iso8601(start),
               format_iso8601(clk.now()), out.fired, !out.failure);
  if (out.failure)
    return *out.failure;
  clk.set(target);
  return json_response(200, {{"started_at", format_iso8601(start)},
                             {"now", format_iso8601(target)},
                             {"timers_fired", out.fired}});
}

} // namespace

void add_test_clock_routes(router& r, services& s) {
  services* sp = &s;
  r.add(route{
    "POST", "/v1/test-clock/advance", auth_kind::tenant,
    [sp](request_context& ctx) { return advance(*sp, ctx); },
    route_doc{"test-mode tenants: move the tenant's clock forward, firing "
              "every timer that falls due in order and waiting until the "
              "resulting sagas have settled",
              {{"type", "object"},
               {"required", {"seconds"}},
               {"additionalProperties", false},
               {"properties",
                {{"seconds",
                  {{"type", "integer"},
                   {"minimum", 1},
                   {"maximum", max_advance_s}}}}}},
              {{"type", "object"},
               {"properties",
                {{"started_at", {{"type", "string"}, {"format", "date-time"}}},
                 {"now", {{"type", "string"}, {"format", "date-time"}}},
                 {"timers_fired", {{"type", "integer"}}}}}},
              200,
              {},
              "application/json"},
    true, nullptr});
}

} // namespace recur::api
