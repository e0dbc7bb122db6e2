#pragma once
/// The subscription engine: one pure function that moves a subscription and
/// the sagas it hosts on by one input, and says what to persist and which
/// gateway calls to make once that is committed.
///
/// Design (see also actors/README.md):
/// - A subscription hosts its sagas: the actor that serialises a
///   subscription's commands also runs its invoice, dunning, suspension,
///   plan-change, cancellation and payment sagas, so a saga never races its
///   own subscription and no database lock is needed.
/// - `handle` is pure: (aggregate, input, environment, clock reading, seeded
///   generator) -> (new aggregate, one unit of work, gateway calls, reply).
///   Local saga actions (issue an invoice, post to the ledger, notify,
///   revoke entitlements, …) run inside `handle`; external ones (charge,
///   resolve, refund) come out as calls, and their outcome comes back as a
///   `gateway_done` input. Everything one input changes commits in one unit
///   of work, so a crash leaves either all of it or none of it.
/// - Every external effect carries a deterministic idempotency key: charges
///   `<invoice>/attempt-<n>`, refunds `<saga>/<step>/<name>/c` or
///   `<saga>/<step>/<name>/a<n>`, outbox ids `<subscription>/<seq>/<i>`.
/// - Events carry the whole subscription state after the change, so
///   activation reads the snapshot or the last event and nothing else.

#include <cstddef>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <variant>
#include <vector>

#include "domain/billing.hpp"
#include "domain/catalog.hpp"
#include "domain/clock.hpp"
#include "domain/error.hpp"
#include "domain/ids.hpp"
#include "domain/interval.hpp"
#include "domain/payment_gateway.hpp"
#include "domain/period.hpp"
#include "domain/tax.hpp"
#include "domain/time.hpp"
#include "sagas/saga.hpp"
#include "sagas/store.hpp"
#include "workflows/dunning.hpp"
#include "workflows/lifecycle.hpp"
#include "workflows/retry_policy.hpp"

namespace recur {

// -- the aggregate --------------------------------------------------------------

/// How many applied refund/dispute ids a subscription remembers. An older
/// one seen again would post under the same ledger id, which the store
/// refuses (`already_exists`): still applied once.
inline constexpr std::size_t gateway_refs_max = 64;

/// An invoice the subscription still has to collect (status open).
struct open_invoice {
  invoice_id id;
  std::int64_t version = 1;      // the stored invoice row's version
  std::int64_t amount_due_minor = 0;
  std::int64_t net_minor = 0;
  std::int64_t tax_minor = 0;
  std::int32_t attempts = 0;     // charge attempts made so far (keys 1..n)
  std::string collecting_saga;   // saga with a charge of it in flight, or ""
  instant period_start;
  instant period_end;

  friend bool operator==(const open_invoice&, const open_invoice&) = default;
};

/// The last paid invoice of the current period: what a cancellation credits.
struct paid_invoice {
  invoice_id id;
  std::int64_t paid_minor = 0;
  std::int64_t net_minor = 0;
  std::int64_t tax_minor = 0;
  std::string charge_id; // empty when nothing was charged (zero invoice)
  instant period_start;
  instant period_end;

  friend bool operator==(const paid_invoice&, const paid_invoice&) = default;
};

struct subscription_state {
  tenant_id tenant;
  subscription_id id;
  customer_id customer;
  plan_id plan;
  std::int32_t plan_version = 0;
  std::int64_t quantity = 1;
  std::string currency; // ISO code of the plan version
  std::string payment_method; // token; empty: none on file
  lifecycle_state life;
  billing_interval interval;
  instant anchor;          // billing periods are counted from here
  billing_period period;   // current period (the trial while trialing)
  std::optional<instant> trial_end;
  bool entitled = true;    // false while suspended or canceled
  std::int64_t credit_minor = 0; // customer credit applied to next invoices
  std::vector<open_invoice> open_invoices; // oldest first
  std::optional<paid_invoice> last_paid;
  /// Refund and dispute ids applied from gateway events (prefixed
  /// "refund:" / "dispute:"), newest last, at most gateway_refs_max: a
  /// second event about the same refund or dispute changes nothing.
  std::vector<std::string> gateway_refs;
  std::map<std::string, std::string> sagas; // live saga id -> type
  std::int64_t saga_seq = 0;                // saga ids <sub>/<type>/<n>
  std::int64_t version = 0;                 // last event seq
  instant created_at;
  instant updated_at;

  friend bool operator==(const subscription_state&, const subscription_state&)
    = default;
};

/// Everything a subscription actor holds: its state and its live sagas.
struct subscription_aggregate {
  subscription_state sub;
  std::map<std::string, saga_state> sagas; // live (unfinished) sagas by id
  bool exists() const noexcept { return sub.version > 0; }
};

std::string to_json(const subscription_state& s);
result<subscription_state> subscription_from_json(std::string_view json);

/// The state from the store's history: the last event's state, or the
/// snapshot's when no event follows it.
result<subscription_state>
subscription_from_history(const subscription_history& h);

/// Where a gateway event belongs: its subscription and, when known, the
/// invoice its charge paid.
struct gateway_event_route {
  subscription_id subscription;
  std::optional<invoice_id> invoice;
};

/// Routes a gateway event by what it names, in this order: a charge key
/// "<invoice>/attempt-<n>" → that invoice; another key → the saga it starts
/// with ("<subscription>/<type>/<n>/…", refunds Recur made); else, or when
/// the key names nothing of this tenant, the charge id → the payment
/// attempt that has it → its invoice (disputes and refunds made at the
/// gateway carry no key of ours). The invoice is filled by charge id too
/// for refunds and disputes routed by a saga key. nullopt: nothing of this
/// tenant matches; store errors other than `not_found` are returned.
result<std::optional<gateway_event_route>>
route_gateway_event(store& db, const tenant_id& t, const gateway_event& e);

/// Activation: the state from the history and the live sagas named by its
/// saga map (finished ones are dropped). A subscription with no events gives
/// an empty aggregate (`exists()` false).
result<subscription_aggregate> load_subscription(store& db, const tenant_id& t,
                                                 const subscription_id& id);

// -- inputs -------------------------------------------------------------------

namespace sub_in {

struct create {
  customer_id customer;
  plan_id plan;
  std::int64_t quantity = 1;
  std::string payment_method;
  std::optional<std::int32_t> trial_days; // default: the plan version's
};
struct cancel {
  bool at_period_end = false;
};
struct uncancel {}; // withdraw a scheduled cancel_at_period_end
struct pause {};
struct resume {};
struct change_plan {
  plan_id plan;
  std::int64_t quantity = 1;
};
struct update_payment_method {
  std::string token;
};
/// Collect an open invoice now (customer pays, e.g. after a new card).
struct pay_invoice {
  invoice_id invoice;
};
/// A durable timer of this subscription or one of its sagas fell due.
struct timer_due {
  timer_record timer;
  /// false: the store no longer has the timer pending (cancelled or
  /// completed after it was claimed): the input changes nothing, and the
  /// timer is not completed again.
  bool pending = true;
};
/// The outcome of a gateway call issued earlier by saga `saga`.
struct gateway_done {
  std::string saga;
  std::int32_t step = 0;
  std::string action_key; // the executor's key of the action/compensation
  std::optional<charge_result> charge;
  std::optional<refund_result> refund;
  std::optional<error> failure;
};
/// A gateway event (webhook) about one of this subscription's charges.
/// Applied by its meaning, whatever the order of arrival: a payment outcome
/// completes the charge a saga has in flight with that key; a refund Recur
/// asked for completes the refund in flight, or changes nothing (it was
/// accounted when its call returned); a refund made at the gateway (no key
/// of ours) posts DR refunds / CR cash and `payment.refunded`, the invoice
/// staying paid (as Stripe does); a dispute posts DR disputes / CR cash and
/// `invoice.disputed`, and leaves the lifecycle alone (the merchant
/// answers it at the gateway; losing it changes nothing more here, winning
/// it comes back as a payment). Refund and dispute ids already applied
/// (`subscription_state::gateway_refs`) change nothing.
struct gateway_notice {
  gateway_event event;
  /// With event.id, the inbox key: the entry commits in the same unit of
  /// work as the event's effects (alone when it changes nothing), so a
  /// redelivery finds it. Empty: no inbox entry (a caller that de-duplicates
  /// on its own).
  std::string gateway;
  /// charge.refunded: the gateway's refund id; charge.dispute.created: the
  /// dispute id. Empty: the event id stands for it.
  std::string ref_id;
  /// The invoice the event's charge paid, when the router found it (by the
  /// charge key or the charge id: see route_gateway_event).
  std::optional<invoice_id> invoice;
};
/// Voids an open invoice with no charge in flight (else
/// `invalid_transition`): its collection ends (the invoice saga retrying it
/// finishes early, a plan change it belongs to is compensated, dunning
/// forgets it), the receivable is reversed, `invoice.voided` goes out.
/// With nothing left to collect, a past_due or suspended subscription
/// recovers (active, entitlements restored) and an incomplete one expires
/// (canceled, incomplete_expired), as Stripe does when the last open
/// invoice is voided.
struct void_invoice {
  invoice_id invoice;
};
/// Operator: run the next attempt of a saga waiting on a retry/backoff
/// timer now (a new attempt key: a charged key is never reused), or ask
/// the gateway now for a charge outcome it waits on (the same key).
/// `invalid_transition` for a saga that is finished, has a call in flight,
/// or waits on its schedule (dunning: pay the invoice instead).
struct retry_saga {
  saga_id saga;
};
/// Operator: abort a live invoice, payment or plan-change saga and run its
/// compensations (void the invoice, reverse the receivable, revert the
/// plan). `invalid_transition` when it is finished, has a charge in flight,
/// is already compensating, or is of a type whose undo is the lifecycle's
/// (dunning, suspension, cancellation: pay or void the invoice instead).
struct compensate_saga {
  saga_id saga;
};

} // namespace sub_in

using subscription_input
  = std::variant<sub_in::create, sub_in::cancel, sub_in::uncancel,
                 sub_in::pause, sub_in::resume, sub_in::change_plan,
                 sub_in::update_payment_method, sub_in::pay_invoice,
                 sub_in::timer_due, sub_in::gateway_done,
                 sub_in::gateway_notice, sub_in::void_invoice,
                 sub_in::retry_saga, sub_in::compensate_saga>;

/// "create", "cancel", … for logs and audit.
std::string_view input_name(const subscription_input& in) noexcept;

// -- environment --------------------------------------------------------------

/// Plan versions by (plan, version), and the version in force at an instant.
class plan_catalog {
public:
  virtual ~plan_catalog() = default;
  virtual result<plan_version> version(const plan_id& plan,
                                       std::int32_t version) const
    = 0;
  virtual result<plan_version> current(const plan_id& plan, instant at) const
    = 0;
};

/// A catalog held in memory (tests, simulations, and the actor layer's cache).
class memory_plan_catalog final : public plan_catalog {
public:
  status add(const plan_id& plan, plan_version v);
  result<plan_version> version(const plan_id& plan,
                               std::int32_t version) const override;
  result<plan_version> current(const plan_id& plan, instant at) const override;

private:
  std::map<plan_id, std::vector<plan_version>> plans_;
};

/// The tenant's billing settings.
struct billing_env {
  const plan_catalog* plans = nullptr;
  billing_terms terms{tax_profile{"", true}, tax_mode::exclusive, {}};
  tax_table taxes;
  std::optional<dunning_ladder> ladder; // default_dunning_ladder(currency)
  retry_policy retry = default_retry_policy();
  /// How long a pending (async) charge waits for its webhook before the
  /// saga asks the gateway by key; and the wait after an unknown outcome.
  std::int64_t pending_timeout_s = 3'600;
  std::int64_t unknown_timeout_s = 60;
  std::string gateway = "sandbox";
};

// -- outputs ------------------------------------------------------------------

/// A gateway call to make after the unit of work committed; its outcome goes
/// back in as `sub_in::gateway_done` with the same saga/step/action_key.
struct gateway_call_request {
  enum class op : std::uint8_t { charge, resolve, refund };
  op kind = op::charge;
  std::string saga;
  std::int32_t step = 0;
  std::string action_key;
  std::optional<charge_request> charge; // charge, resolve
  std::optional<refund_request> refund; // refund

  friend bool operator==(const gateway_call_request&,
                         const gateway_call_request&)
    = default;
};

struct subscription_decision {
  subscription_aggregate next; // adopt once `work` committed
  unit_of_work work;           // empty when nothing changed
  std::vector<gateway_call_request> calls;
  /// Sagas this input started, moved or finished (for logs and tests).
  std::vector<std::string> touched_sagas;
};

/// Moves the subscription on by one input. Commands that the lifecycle
/// forbids are `invalid_transition` and change nothing; bad arguments are
/// `invalid_argument` / `not_found` (unknown plan) / `currency_mismatch`;
/// commands to a subscription that does not exist are `not_found`, and
/// `create` of one that exists is `already_exists`. Stale inputs (a timer or
/// gateway outcome a saga no longer waits for) are not errors: the decision
/// then only completes the timer, or is empty.
result<subscription_decision> handle(const subscription_aggregate& current,
                                     const tenant_id& tenant,
                                     const subscription_id& id,
                                     const subscription_input& input,
                                     const billing_env& env, instant now,
                                     rng& gen);

/// The gateway calls to re-issue after recovery: for every live saga whose
/// persisted state has a charge/resolve/refund in flight. (Timers are durable
/// and need nothing.)
std::vector<gateway_call_request>
resume_calls(const subscription_aggregate& agg, const billing_env& env);

/// The definitions of the hosted saga types: "invoice", "dunning",
/// "suspension", "plan_change", "cancellation", "payment".
result<saga_definition> saga_definition_for(const std::string& type,
                                            const subscription_state& sub,
                                            const billing_env& env);

} // namespace recur
