#pragma once
// A synchronous, deterministic driver of the subscription engine over a real
// store and the sandbox gateway: what the actors do, without CAF, so that
// scenarios, crashes and invariants can be checked step by step. Used by the
// engine scenario tests (memory store, label unit; PostgreSQL, label pg) and
// the crash matrix.

#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "domain/clock.hpp"
#include "gateways/sandbox_gateway.hpp"
#include "sagas/store.hpp"
#include "sagas/subscription.hpp"

namespace recur::testing {

class billing_harness {
public:
  billing_harness(store& st, instant start, std::uint64_t seed,
                  tenant_id tenant = tenant_id{"t_1"});

  // -- setup --------------------------------------------------------------
  manual_clock& clock() { return clk_; }
  sandbox_gateway& gateway() { return *gw_; }
  memory_plan_catalog& catalog() { return catalog_; }
  billing_env& env() { return env_; }
  store& db() { return st_; }
  const tenant_id& tenant() const { return tenant_; }

  /// Adds a plan version (flat fee per period) to the catalog.
  void add_flat_plan(const std::string& plan, std::int32_t version,
                     std::int64_t amount_minor, std::int32_t trial_days = 0,
                     interval_unit unit = interval_unit::month,
                     const char* currency = "USD");

  // -- driving ------------------------------------------------------------
  /// Delivers one input and everything it causes (gateway calls and their
  /// outcomes) until the subscription is quiet. Returns the input's own
  /// result (a rejected command changes nothing).
  status send(const subscription_id& sub, const subscription_input& in);

  /// Queues one gateway event (as a webhook would bring it: routed by key
  /// or charge id, with the inbox entry "sandbox"/event id) and processes
  /// it with everything it causes.
  status deliver(const gateway_event& e) {
    if (auto st = deliver_event(e); !st)
      return st;
    return process_queue();
  }

  /// Moves the clock to `to`, firing every durable timer and delivering
  /// every gateway event that falls due on the way, each at its own time.
  status advance_to(instant to);
  status advance_days(std::int64_t days) {
    return advance_to(clk_.now().plus_seconds(days * seconds_per_day));
  }

  // -- crashes ------------------------------------------------------------
  /// After the n-th successful commit (1-based) every in-memory state is
  /// dropped (aggregates, queued inputs, gateway calls not yet made) and the
  /// harness recovers from the store, as a restarted process would.
  void crash_after_commit(std::int64_t n) { crash_at_ = n; }
  std::int64_t commits() const { return commits_; }
  bool crashed() const { return crashed_; }
  /// Drops all in-memory state and recovers now.
  status crash_and_recover();

  // -- observing ----------------------------------------------------------
  /// The live aggregate (activating it from the store when needed).
  result<subscription_aggregate> aggregate(const subscription_id& sub);
  result<subscription_state> state(const subscription_id& sub) {
    auto a = aggregate(sub);
    if (!a)
      return a.error();
    return a->sub;
  }
  std::vector<invoice_record> invoices(const subscription_id& sub);
  std::vector<saga_record> sagas();
  std::int64_t balance(account a, const char* currency = "USD");
  /// Every stored gateway key collected at most once, and the like.
  std::vector<std::string> gateway_keys() const;

private:
  struct pending_input {
    subscription_id sub;
    subscription_input in;
  };

  status process_queue();
  status process_one(const pending_input& p, bool first, status* first_result);
  result<subscription_aggregate*> activate(const subscription_id& sub);
  void execute(const subscription_id& sub, const gateway_call_request& call);
  status recover();
  std::optional<instant> next_due();
  status deliver_due(instant now);
  status deliver_event(const gateway_event& e);

  store& st_;
  manual_clock clk_;
  rng gen_;
  std::unique_ptr<sandbox_gateway> gw_;
  memory_plan_catalog catalog_;
  billing_env env_;
  tenant_id tenant_;
  std::map<subscription_id, subscription_aggregate> live_;
  std::set<subscription_id> known_; // every subscription ever created
  std::deque<pending_input> queue_;
  std::map<std::string, subscription_id> key_owner_; // charge key -> sub
  std::set<std::string> keys_;
  std::int64_t commits_ = 0;
  std::int64_t crash_at_ = 0;
  bool crashed_ = false;
};

/// §9 invariants over everything the store holds for the harness's tenant;
/// an empty result means they all hold.
std::vector<std::string> check_invariants(billing_harness& h);

/// The same invariants from the store alone (charge keys from the stored
/// payment attempts): for runs not driven by the harness, e.g. the actors.
std::vector<std::string> check_invariants(store& db, const tenant_id& tenant,
                                          const sandbox_gateway& gw);

} // namespace recur::testing
