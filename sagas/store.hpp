#pragma once
/// The durable store port: what actors and sagas persist and read back.
/// Implemented by persistence/ for PostgreSQL and in memory, and checked by one
/// contract test suite that runs against both.
///
/// Tenancy: every tenant-scoped call names its tenant, and an implementation
/// must never let a call for tenant A see or change tenant B's rows (the
/// PostgreSQL store enforces it again with row-level security). The calls in
/// the "system" section are the only cross-tenant ones: recovery, the timer
/// service and the outbox relay use them.
///
/// Writes go through a `unit_of_work`: everything in it commits together in
/// one transaction or not at all.

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "domain/error.hpp"
#include "domain/ids.hpp"
#include "domain/ledger.hpp"
#include "domain/time.hpp"

namespace recur {

// -- tenants, customers, plans, subscriptions (read model) --------------------

struct tenant_record {
  tenant_id id;
  std::string name;
  std::string api_key_sha256_hex; // never the key itself
  bool test_mode = false;
  instant created_at;
};

/// A document row keyed by (tenant, id): customers, plan versions and the
/// subscription read model share this shape; `data_json` is the body.
struct customer_record {
  customer_id id;
  std::string data_json;
  std::int64_t version = 0; // 1 after the first put; optimistic concurrency
  instant updated_at;
};

struct plan_version_record {
  plan_id plan;
  std::int32_t version = 0; // 1, 2, 3 … (immutable once written)
  instant effective_at;
  std::string data_json;
};

/// The query side of a subscription, updated in the same unit of work as its
/// events so that lists by status/customer are consistent with them.
struct subscription_row {
  subscription_id id;
  customer_id customer;
  plan_id plan;
  std::string status; // workflows::to_string(sub_status)
  std::int64_t version = 0; // = the last event seq it reflects
  std::string data_json;
  instant updated_at;
};

// -- event store --------------------------------------------------------------

struct new_event {
  std::string type;
  std::string payload_json;
  instant recorded_at;
};

/// Appends `events` at seq expected_version+1, +2, … . If the subscription's
/// current version is not `expected_version` (0 = no events yet), the whole
/// unit of work fails with `version_conflict`.
struct event_append {
  subscription_id subscription;
  std::int64_t expected_version = 0;
  std::vector<new_event> events;
};

struct event_record {
  subscription_id subscription;
  std::int64_t seq = 0; // 1-based, contiguous per subscription
  std::string type;
  std::string payload_json;
  instant recorded_at;
};

struct snapshot_record {
  subscription_id subscription;
  std::int64_t seq = 0; // the state after applying events 1..seq
  std::string state_json;
  instant taken_at;
};

/// Snapshot + the events after it: what activating a subscription loads.
struct subscription_history {
  std::optional<snapshot_record> snapshot;
  std::vector<event_record> tail; // seq > snapshot->seq (or all events)
  std::int64_t version = 0;       // last seq, 0 when nothing is stored
};

/// Callers add a snapshot to the unit of work whenever an append crosses a
/// multiple of `every_events`.
struct snapshot_policy {
  std::int64_t every_events = 100;

  bool due(std::int64_t version_before, std::int64_t version_after) const {
    return every_events > 0
           && version_after / every_events > version_before / every_events;
  }
};

// -- sagas --------------------------------------------------------------------

enum class saga_status : std::uint8_t {
  running,
  waiting,
  compensating,
  completed,
  compensated,
  failed,
};

std::string_view to_string(saga_status s) noexcept;
result<saga_status> saga_status_from_string(std::string_view s);
bool is_finished(saga_status s) noexcept; // completed, compensated, failed

struct saga_record {
  saga_id id;
  std::string type; // "invoice", "dunning", …
  subscription_id subscription;
  saga_status status = saga_status::running;
  std::int32_t step = 0;    // index of the current step
  std::int64_t version = 0; // 1 on creation, +1 per update
  std::string data_json;
  instant created_at;
  instant updated_at;
};

/// Moves a saga on; fails the unit of work with `version_conflict` unless the
/// stored version equals `expected_version`. The new version is expected+1.
struct saga_update {
  saga_id id;
  std::int64_t expected_version = 0;
  saga_status status = saga_status::running;
  std::int32_t step = 0;
  std::string data_json;
  instant updated_at;
};

enum class step_kind : std::uint8_t { action, compensation };
std::string_view to_string(step_kind k) noexcept;

/// One line of a saga's log: the inspection trail.
struct saga_step_record {
  saga_id saga;
  std::int64_t seq = 0; // assigned by the store: 1, 2, … per saga
  std::int32_t step = 0;
  step_kind kind = step_kind::action;
  std::string name;    // "issue_invoice", "charge", …
  std::string outcome; // "ok", "declined_soft", "timeout", …
  std::string detail;  // free text or JSON
  instant at;
};

struct saga_filter {
  std::optional<saga_status> status;
  std::optional<std::string> type;
};

/// Cursor pagination: pass back `next_cursor` to get the next page; an empty
/// cursor starts at the beginning, an empty `next_cursor` means no more.
template <class T>
struct page {
  std::vector<T> items;
  std::string next_cursor;
};

// -- durable timers -----------------------------------------------------------

/// `id` is chosen by the caller and deterministic (e.g.
/// "sub_42/period_end/2024-03-01T00:00:00Z"), so scheduling twice is harmless:
/// the second schedule of an existing id changes nothing.
struct timer_record {
  std::string id;
  std::string owner; // a subscription or saga id
  std::string kind;  // "trial_end", "period_end", "retry", …
  instant due_at;
  std::string payload_json;
};

struct timer_cancel {
  std::string owner;
  std::string kind; // empty: every kind of that owner
};

/// A due timer leased to one claimer until `lease_until`; if the claimer dies
/// without completing it, it becomes claimable again after the lease.
struct claimed_timer {
  tenant_id tenant;
  timer_record timer;
  instant lease_until;
};

// -- outbox, inbox, idempotency, usage ---------------------------------------

/// A domain event for Kafka, written in the same transaction as the change.
struct outbox_message {
  std::string id;   // globally unique event id; consumers de-duplicate on it
  std::string key;  // partition key: the subscription id
  std::string type; // "subscription.activated", …
  std::string subject;
  std::string data_json;
  instant time;
};

struct outbox_record {
  tenant_id tenant;
  std::int64_t position = 0; // global commit order, assigned by the store
  outbox_message message;
  std::optional<instant> published_at;
};

/// A gateway event id recorded in the unit of work that applies it; a second
/// unit of work with the same (gateway, event_id) fails with `already_exists`
/// and so nothing is applied twice.
struct inbox_entry {
  std::string gateway;
  std::string event_id;
  instant received_at;
};

/// The stored answer to an HTTP request made with an Idempotency-Key.
struct idempotency_record {
  std::string key;
  std::string request_sha256_hex;
  std::int32_t response_status = 0;
  std::string response_body;
  instant created_at;
};

enum class idempotency_state : std::uint8_t {
  new_request, // not seen: the key is now reserved for this request hash
  replay,      // seen with the same request: `stored` holds the answer
  in_flight,   // reserved by the same request, no answer stored yet
};

struct idempotency_outcome {
  idempotency_state state = idempotency_state::new_request;
  std::optional<idempotency_record> stored;
};

struct usage_event {
  std::string id; // caller's id: duplicates are ignored
  subscription_id subscription;
  std::string meter;
  std::int64_t quantity = 0; // >= 0
  instant at;
};

struct usage_receipt {
  std::int64_t accepted = 0;
  std::int64_t duplicates = 0;
};

// -- invoices, payment attempts, ledger, audit -------------------------------

struct invoice_record {
  invoice_id id;
  subscription_id subscription;
  std::string idempotency_key; // tenant/sub/period_start: unique per tenant
  std::string status;          // workflows::to_string(invoice_status)
  std::string currency;
  std::int64_t total_minor = 0;
  std::int64_t amount_due_minor = 0;
  std::int64_t amount_paid_minor = 0;
  instant period_start;
  instant period_end;
  std::string lines_json;
  std::int64_t version = 0; // 1 on creation, +1 per update
  instant created_at;
  instant updated_at;
};

struct invoice_update {
  invoice_id id;
  std::int64_t expected_version = 0;
  std::string status;
  std::int64_t amount_paid_minor = 0;
  instant updated_at;
};

struct payment_attempt_record {
  payment_attempt_id id;
  invoice_id invoice;
  std::string idempotency_key; // invoice/attempt-n: unique per tenant
  std::int32_t attempt_no = 1;
  std::string status; // workflows::to_string(attempt_status)
  std::int64_t amount_minor = 0;
  std::string currency;
  std::string decline_code;
  std::int64_t version = 0;
  instant created_at;
  instant updated_at;
  /// The gateway's id of the payment ("ch_…"/"pi_…"), once an outcome
  /// named it; "" before. Unique per tenant when set: refunds and disputes
  /// made at the gateway find their payment by it (find_attempt_by_charge).
  std::string charge_id;
};

struct payment_attempt_update {
  payment_attempt_id id;
  std::int64_t expected_version = 0;
  std::string status;
  std::string decline_code;
  instant updated_at;
  /// Sets the attempt's charge id; "" keeps the one it has.
  std::string charge_id;
};

/// A balanced transaction (domain/ledger.hpp guarantees it) under an id the
/// caller derives deterministically, so a replayed step cannot post twice:
/// a second append of the same id fails with `already_exists`.
struct ledger_append {
  std::string transaction_id;
  ledger_transaction transaction;
  instant at;
  std::string subject; // invoice or subscription id, for reconciliation
};

struct ledger_entry_record {
  std::string transaction_id;
  std::int32_t line = 0;
  account account_name;
  entry_side side;
  std::int64_t amount_minor = 0;
  std::string currency;
  std::string memo;
  std::string subject;
  instant at;
};

/// Debit-positive balance of one account in one currency.
struct account_balance {
  account account_name;
  std::string currency;
  std::int64_t balance_minor = 0;
};

struct audit_entry {
  std::string actor;  // "api-key:…", "system", "operator:…"
  std::string action; // "subscription.cancel", …
  std::string subject;
  std::string detail_json;
  instant at;
};

struct audit_record {
  std::int64_t seq = 0; // assigned by the store, per tenant order
  audit_entry entry;
};

// -- the unit of work ---------------------------------------------------------

/// Everything one step writes, committed atomically for one tenant. Applied in
/// this order: inbox, idempotency, events, snapshots, read model, sagas, saga
/// steps, timers, invoices, attempts, ledger, outbox, audit.
struct unit_of_work {
  tenant_id tenant;
  std::vector<inbox_entry> inbox;
  std::vector<idempotency_record> idempotency_responses; // completes reserved keys
  std::vector<event_append> events;
  std::vector<snapshot_record> snapshots;
  std::vector<subscription_row> subscriptions; // upserts of the read model
  std::vector<saga_record> new_sagas;
  std::vector<saga_update> saga_updates;
  std::vector<saga_step_record> saga_steps; // seq is assigned by the store
  std::vector<timer_record> timers_to_schedule;
  std::vector<timer_cancel> timers_to_cancel;
  std::vector<std::string> timers_to_complete; // ids
  std::vector<invoice_record> new_invoices;
  std::vector<invoice_update> invoice_updates;
  std::vector<payment_attempt_record> new_attempts;
  std::vector<payment_attempt_update> attempt_updates;
  std::vector<ledger_append> ledger;
  std::vector<outbox_message> outbox;
  std::vector<audit_entry> audit;

  bool empty() const noexcept;
};

struct commit_receipt {
  /// For each event_append, in order: the subscription's new version.
  std::vector<std::int64_t> event_versions;
};

/// The one exception to "a failed commit has written nothing": the connection
/// broke while COMMIT was in flight, so the unit may or may not be stored. It
/// is `unavailable` with a detail that starts with this text; the caller must
/// re-read before trying again (a blind retry could write it twice).
inline constexpr std::string_view commit_outcome_unknown
  = "commit outcome unknown";

inline bool is_commit_outcome_unknown(const error& e) {
  return e.code == errc::unavailable
         && e.detail.starts_with(commit_outcome_unknown);
}

// -- gateway configs ----------------------------------------------------------

/// A tenant's settings for one payment gateway ("sandbox", "stripe"), set
/// through `PUT /v1/gateways/{gateway}`. `config_json` is an object:
/// {"webhook_secret": "...", "api_key": "..." (optional),
///  "base_url": "..." (optional)}; the webhook endpoint verifies signatures
/// with its webhook_secret.
struct gateway_config_record {
  std::string gateway;
  std::string config_json;
  instant updated_at;
};

// -- the port -----------------------------------------------------------------

/// Errors every call may return: `unavailable` (the store could not be reached
/// or kept failing with retryable faults after its own retries: the caller may
/// try again later), `storage_error` (anything else). A failed commit has
/// written nothing, unless is_commit_outcome_unknown(its error).
class store {
public:
  virtual ~store() = default;

  // -- writes ---------------------------------------------------------------

  /// All or nothing. Typed failures: `version_conflict` (an event append or an
  /// update with a stale expected version), `already_exists` (a duplicate
  /// saga/invoice/attempt id, idempotency key, inbox entry or ledger id),
  /// `not_found` (an update of a row that does not exist),
  /// `constraint_violation` (data the schema refuses).
  virtual result<commit_receipt> commit(const unit_of_work& work) = 0;

  /// `commit` of a unit of work the caller gives up: a store may take it
  /// apart (move its rows), so it is unspecified afterwards, whatever the
  /// outcome. The default commits a const view of it; the memory store
  /// moves. Stores that wrap another (forwarding_store) must not forward
  /// this past their own `commit`.
  virtual result<commit_receipt> commit_owned(unit_of_work&& work) {
    return commit(work);
  }

  /// Commits several independent units of work; each gets its own result, as
  /// if committed alone in order. Implementations may share one transaction
  /// among the ones that succeed (group commit). The default commits each.
  virtual std::vector<result<commit_receipt>>
  commit_many(std::span<const unit_of_work> works);

  // -- tenants and catalogue ------------------------------------------------

  virtual status create_tenant(const tenant_record& t) = 0; // system
  /// Auth lookup before the tenant is known (system); `not_found` if none.
  virtual result<tenant_record>
  find_tenant_by_key_hash(const std::string& api_key_sha256_hex) = 0;
  virtual result<tenant_record> get_tenant(const tenant_id& t) = 0;

  /// Creates (expected_version 0) or updates a customer; stale → conflict.
  virtual result<customer_record> put_customer(const tenant_id& t,
                                               const customer_record& c,
                                               std::int64_t expected_version)
    = 0;
  virtual result<customer_record> get_customer(const tenant_id& t,
                                               const customer_id& id)
    = 0;

  /// Plan versions are immutable: writing an existing (plan, version) is
  /// `already_exists`.
  virtual status add_plan_version(const tenant_id& t,
                                  const plan_version_record& v)
    = 0;
  virtual result<std::vector<plan_version_record>>
  list_plan_versions(const tenant_id& t, const plan_id& plan) = 0;
  virtual result<page<plan_version_record>>
  list_plans(const tenant_id& t, const std::string& cursor, std::size_t limit)
    = 0; // latest version of each plan, ordered by plan id

  virtual result<subscription_row> get_subscription(const tenant_id& t,
                                                    const subscription_id& id)
    = 0;
  virtual result<page<subscription_row>>
  list_subscriptions(const tenant_id& t, std::optional<std::string> status,
                     std::optional<customer_id> customer,
                     const std::string& cursor, std::size_t limit)
    = 0;

  // -- event store ----------------------------------------------------------

  /// Events with seq >= from_seq, in order.
  virtual result<std::vector<event_record>>
  load_events(const tenant_id& t, const subscription_id& s,
              std::int64_t from_seq)
    = 0;
  /// The latest snapshot plus the events after it.
  virtual result<subscription_history>
  load_history(const tenant_id& t, const subscription_id& s) = 0;

  // -- sagas ----------------------------------------------------------------

  virtual result<saga_record> get_saga(const tenant_id& t, const saga_id& id)
    = 0;
  virtual result<std::vector<saga_step_record>>
  load_saga_steps(const tenant_id& t, const saga_id& id) = 0;
  virtual result<page<saga_record>> list_sagas(const tenant_id& t,
                                               const saga_filter& f,
                                               const std::string& cursor,
                                               std::size_t limit)
    = 0; // ordered by (created_at, id)

  // -- timers, invoices, attempts, ledger, usage, audit ---------------------

  virtual result<std::vector<timer_record>>
  list_timers(const tenant_id& t, const std::string& owner) = 0; // pending only
  /// Whether timer `id` of `owner` is still pending (neither completed nor
  /// cancelled): a claimed timer may have been cancelled before it was
  /// delivered. The default looks through `list_timers`.
  virtual result<bool> timer_pending(const tenant_id& t,
                                     const std::string& owner,
                                     const std::string& id) {
    auto pending = list_timers(t, owner);
    if (!pending)
      return pending.error();
    for (const auto& r : *pending)
      if (r.id == id)
        return true;
    return false;
  }
  virtual result<invoice_record> get_invoice(const tenant_id& t,
                                             const invoice_id& id)
    = 0;
  virtual result<invoice_record>
  find_invoice_by_key(const tenant_id& t, const std::string& idempotency_key)
    = 0;
  virtual result<page<invoice_record>>
  list_invoices(const tenant_id& t, std::optional<subscription_id> s,
                const std::string& cursor, std::size_t limit)
    = 0;
  virtual result<payment_attempt_record>
  get_attempt(const tenant_id& t, const payment_attempt_id& id) = 0;
  virtual result<std::vector<payment_attempt_record>>
  list_attempts(const tenant_id& t, const invoice_id& invoice) = 0;
  /// The attempt whose charge_id is `charge_id` (non-empty), or
  /// `not_found`. Not pure, so that stores written before it (test
  /// doubles) still compile; the default fails with `storage_error`.
  virtual result<payment_attempt_record>
  find_attempt_by_charge(const tenant_id& t, const std::string& charge_id) {
    static_cast<void>(t);
    static_cast<void>(charge_id);
    return make_error(errc::storage_error,
                      "charge id look-ups not supported");
  }
  virtual result<std::vector<ledger_entry_record>>
  load_ledger(const tenant_id& t, const std::string& subject) = 0;
  virtual result<std::vector<account_balance>>
  ledger_balances(const tenant_id& t) = 0;
  virtual result<usage_receipt> record_usage(const tenant_id& t,
                                             std::span<const usage_event> u)
    = 0;
  /// Sum of usage of one meter with at in [from, to).
  virtual result<std::int64_t> sum_usage(const tenant_id& t,
                                         const subscription_id& s,
                                         const std::string& meter,
                                         instant from, instant to)
    = 0;
  virtual result<page<audit_record>> list_audit(const tenant_id& t,
                                                const std::string& cursor,
                                                std::size_t limit)
    = 0;
  virtual result<bool> inbox_contains(const tenant_id& t,
                                      const std::string& gateway,
                                      const std::string& event_id)
    = 0;

  // -- HTTP idempotency keys ------------------------------------------------

  /// Reserves `key` for a request with this hash, or reports what is there:
  /// the same key with another hash is `idempotency_conflict`.
  virtual result<idempotency_outcome>
  begin_idempotent(const tenant_id& t, const std::string& key,
                   const std::string& request_sha256_hex, instant now)
    = 0;

  // -- system (cross-tenant) ------------------------------------------------

  /// Sagas not completed/compensated/failed, across tenants, for recovery;
  /// ordered by (tenant, id), paged by cursor.
  struct tenant_saga {
    tenant_id tenant;
    saga_record saga;
  };
  virtual result<page<tenant_saga>> find_unfinished_sagas(
    const std::string& cursor, std::size_t limit)
    = 0;

  /// Leases up to `limit` timers with due_at <= now that are pending and not
  /// leased (or whose lease expired), for `lease_s` seconds, in the order they
  /// became claimable: a timer never leased at its due time, one whose lease
  /// lapsed at the lease's end (so never-leased timers come oldest due
  /// first); ties by (tenant, timer id). Concurrent claimers never get the
  /// same timer while a lease holds.
  virtual result<std::vector<claimed_timer>>
  claim_due_timers(instant now, std::size_t limit, std::int64_t lease_s,
                   const std::string& claimer)
    = 0;

  /// Unpublished outbox rows with position > after, in position order.
  virtual result<std::vector<outbox_record>>
  fetch_unpublished(std::int64_t after_position, std::size_t limit) = 0;
  virtual status mark_published(std::span<const std::int64_t> positions,
                                instant at)
    = 0;

  // -- gateway configs ------------------------------------------------------
  // These and release_idempotent are not pure, so that stores written before
  // them (test doubles) still compile; the memory and PostgreSQL stores
  // override them. The defaults fail with `storage_error`.

  /// Creates or replaces tenant `t`'s config of `c.gateway`.
  virtual status put_gateway_config(const tenant_id& t,
                                    const gateway_config_record& c) {
    static_cast<void>(t);
    static_cast<void>(c);
    return make_error(errc::storage_error, "gateway configs not supported");
  }

  /// Tenant `t`'s config of `gateway`, or `not_found`.
  virtual result<gateway_config_record>
  get_gateway_config(const tenant_id& t, const std::string& gateway) {
    static_cast<void>(t);
    static_cast<void>(gateway);
    return make_error(errc::storage_error, "gateway configs not supported");
  }

  // -- HTTP idempotency keys, continued ------------------------------------

  /// Gives back a key that `begin_idempotent` reserved for this request hash
  /// and that holds no answer yet (the request failed on our side), so that a
  /// retry with the key runs again. A key that holds an answer is
  /// `already_exists`, one of another request `idempotency_conflict`, an
  /// unknown one `not_found`; none of them changes.
  virtual status release_idempotent(const tenant_id& t, const std::string& key,
                                    const std::string& request_sha256_hex) {
    static_cast<void>(t);
    static_cast<void>(key);
    static_cast<void>(request_sha256_hex);
    return make_error(errc::storage_error,
                      "releasing idempotency keys not supported");
  }

  // -- operational figures (system, for /metrics) --------------------------

  /// How many sagas of one type are in one status, across tenants.
  struct saga_count {
    std::string type;
    saga_status status = saga_status::running;
    std::int64_t count = 0;
    friend bool operator==(const saga_count&, const saga_count&) = default;
  };
  /// What /metrics reports from the store: sagas by (type, status), ordered
  /// by type then status name, only the pairs that occur; pending timers,
  /// and those of them with due_at <= now (leased or not: due and not yet
  /// completed, so a growing figure means the timer service lags).
  struct operational_figures {
    std::vector<saga_count> sagas;
    std::int64_t timers_pending = 0;
    std::int64_t timers_due = 0;
  };
  virtual result<operational_figures> operational_stats(instant now) {
    static_cast<void>(now);
    return make_error(errc::storage_error, "operational stats not supported");
  }

  // -- scoped timer claims (test clocks) -----------------------------------

  /// Which timers `claim_due_timers_in` may take.
  struct timer_claim_scope {
    std::optional<tenant_id> tenant; // set: only this tenant's timers
    bool skip_test_tenants = false;  // true: none of test-mode tenants'
  };

  /// `claim_due_timers` restricted to `scope`: a test clock fires one
  /// tenant's timers by the tenant's own time, and the wall-clock timer
  /// service leaves test-mode tenants' timers alone. Same ordering, leases
  /// and limits as `claim_due_timers`.
  virtual result<std::vector<claimed_timer>>
  claim_due_timers_in(const timer_claim_scope& scope, instant now,
                      std::size_t limit, std::int64_t lease_s,
                      const std::string& claimer) {
    static_cast<void>(scope);
    static_cast<void>(now);
    static_cast<void>(limit);
    static_cast<void>(lease_s);
    static_cast<void>(claimer);
    return make_error(errc::storage_error, "scoped timer claims not supported");
  }
};

} // namespace recur
