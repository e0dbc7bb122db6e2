#include "persistence/pg_commit.hpp"

#include <algorithm>
#include <map>
#include <optional>
#include <string>
#include <unordered_map>
#include <unordered_set>

namespace recur::pg {

const char* const batch_settings_sql
  = "SELECT set_config('plan_cache_mode', 'force_custom_plan', true),"
    " set_config('random_page_cost', '1.1', true),"
    " set_config('recur.ledger_check', 'statement', true)";

namespace {

using unit_ptrs = std::vector<const unit_of_work*>;

// -- statements ---------------------------------------------------------------
//
// One statement per table per chunk of units: every column travels as one
// array parameter and unnest() turns the arrays back into rows.
//
// Updates by row address. An UPDATE joined to its keys leaves the planner
// free to hash the whole table for a few hundred keys, and it does so when
// its statistics are missing or stale (a table that grew since its last
// ANALYZE looks like a few rows per tenant): O(table) per batch, 50-90 ms a
// statement at 100,000 rows. So each key is first looked up by a correlated
// subquery, which can only be a primary-key probe, and the UPDATE reads the
// rows it found by ctid (a TID scan): O(batch) whatever the statistics. The
// key and version are compared again on the row itself: a row updated by
// another transaction after the look-up has a new address and is then not
// updated at all, which the caller reports as a stale version.

const statement insert_inbox{"uow_inbox", R"(
INSERT INTO processed_webhooks (tenant_id, gateway, event_id, received_at)
SELECT $1, u.g, u.e, to_timestamp(u.t)
FROM unnest($2::text[], $3::text[], $4::bigint[]) AS u(g, e, t))"};

// Completes keys reserved by the same request and not answered yet; any other
// key is left alone and so is missing from RETURNING.
const statement complete_idempotency{"uow_idempotency", R"(
UPDATE idempotency_keys x SET response_status = u.s, response_body = u.b
FROM unnest($2::text[], $3::text[], $4::integer[], $5::text[])
  AS u(k, h, s, b)
WHERE x.tenant_id = $1 AND x.idempotency_key = u.k
  AND x.request_sha256_hex = u.h AND x.response_status IS NULL
RETURNING x.idempotency_key)"};

const statement find_idempotency{"uow_idempotency_find", R"(
SELECT idempotency_key, request_sha256_hex FROM idempotency_keys
WHERE tenant_id = $1 AND idempotency_key = ANY ($2::text[]))"};

const statement insert_events{"uow_events", R"(
INSERT INTO subscription_events
  (tenant_id, subscription_id, seq, type, payload_json, recorded_at)
SELECT $1, u.s, u.q, u.y, u.p, to_timestamp(u.t)
FROM unnest($2::text[], $3::bigint[], $4::text[], $5::text[], $6::bigint[])
  AS u(s, q, y, p, t))"};

// Appends of no events still assert the version they expect.
const statement check_versions{"uow_event_versions", R"(
SELECT u.s FROM unnest($2::text[], $3::bigint[]) AS u(s, e)
WHERE coalesce((SELECT max(v.seq) FROM subscription_events v
                WHERE v.tenant_id = $1 AND v.subscription_id = u.s), 0) <> u.e)"};

const statement insert_snapshots{"uow_snapshots", R"(
INSERT INTO snapshots (tenant_id, subscription_id, seq, state_json, taken_at)
SELECT $1, u.s, u.q, u.j, to_timestamp(u.t)
FROM unnest($2::text[], $3::bigint[], $4::text[], $5::bigint[])
  AS u(s, q, j, t)
ON CONFLICT DO NOTHING)"};

const statement upsert_subscriptions{"uow_subscriptions", R"(
INSERT INTO subscriptions (tenant_id, subscription_id, customer_id, plan_id,
  status, version, data_json, updated_at)
SELECT $1, u.s, u.c, u.p, u.st, u.v, u.d, to_timestamp(u.t)
FROM unnest($2::text[], $3::text[], $4::text[], $5::text[], $6::bigint[],
            $7::text[], $8::bigint[]) AS u(s, c, p, st, v, d, t)
ON CONFLICT (tenant_id, subscription_id) DO UPDATE
  SET customer_id = excluded.customer_id, plan_id = excluded.plan_id,
      status = excluded.status, version = excluded.version,
      data_json = excluded.data_json, updated_at = excluded.updated_at)"};

const statement insert_sagas{"uow_sagas", R"(
INSERT INTO sagas (tenant_id, saga_id, type, subscription_id, status, step,
  version, data_json, created_at, updated_at)
SELECT $1, u.id, u.y, u.s, u.st, u.n, 1, u.d, to_timestamp(u.c),
       to_timestamp(u.t)
FROM unnest($2::text[], $3::text[], $4::text[], $5::text[], $6::integer[],
            $7::text[], $8::bigint[], $9::bigint[])
  AS u(id, y, s, st, n, d, c, t))"};

// Updates find their rows by address (see "Updates by row address" above).
const statement update_sagas{"uow_saga_updates", R"(
WITH v AS (
  SELECT u.*, (SELECT s.ctid FROM sagas s
               WHERE s.tenant_id = $1 AND s.saga_id = u.id) AS row_id
  FROM unnest($2::text[], $3::bigint[], $4::text[], $5::integer[], $6::text[],
              $7::bigint[]) AS u(id, e, st, n, d, t))
UPDATE sagas x
SET status = v.st, step = v.n, version = x.version + 1, data_json = v.d,
    updated_at = to_timestamp(v.t)
FROM v
WHERE x.ctid = ANY (ARRAY(SELECT v.row_id FROM v)) AND x.ctid = v.row_id
  AND x.tenant_id = $1 AND x.saga_id = v.id AND x.version = v.e
RETURNING x.saga_id)"};

const statement find_sagas{"uow_sagas_find", R"(
SELECT saga_id FROM sagas WHERE tenant_id = $1 AND saga_id = ANY ($2::text[]))"};

const statement insert_saga_steps{"uow_saga_steps", R"(
INSERT INTO saga_steps (tenant_id, saga_id, seq, step, kind, name, outcome,
  detail, at)
SELECT $1, u.id,
       coalesce((SELECT max(x.seq) FROM saga_steps x
                 WHERE x.tenant_id = $1 AND x.saga_id = u.id), 0)
         + row_number() OVER (PARTITION BY u.id ORDER BY u.o),
       u.n, u.k, u.nm, u.oc, u.d, to_timestamp(u.t)
FROM unnest($2::text[], $3::integer[], $4::text[], $5::text[], $6::text[],
            $7::text[], $8::bigint[]) WITH ORDINALITY
  AS u(id, n, k, nm, oc, d, t, o))"};

// A pending or completed id stays as it is; a cancelled one is armed again.
const statement insert_timers{"uow_timers", R"(
INSERT INTO timers AS x (tenant_id, timer_id, owner, kind, due_at,
  payload_json)
SELECT $1, u.id, u.o, u.k, to_timestamp(u.t), u.p
FROM unnest($2::text[], $3::text[], $4::text[], $5::bigint[], $6::text[])
  AS u(id, o, k, t, p)
ON CONFLICT (tenant_id, timer_id) DO UPDATE
  SET owner = excluded.owner, kind = excluded.kind, due_at = excluded.due_at,
      payload_json = excluded.payload_json, state = 'pending',
      lease_until = NULL, claimed_by = NULL
  WHERE x.state = 'cancelled')"};

// OFFSET 0 keeps the lateral subquery a per-owner probe of timers_by_owner
// (a subquery the planner may not pull up into a join it could hash).
const statement cancel_timers_q{"uow_timers_cancel", R"(
UPDATE timers x SET state = 'cancelled', lease_until = NULL
WHERE x.ctid = ANY (ARRAY(
  SELECT p.row_id
  FROM unnest($2::text[], $3::text[]) AS u(o, k)
  CROSS JOIN LATERAL (
    SELECT t.ctid AS row_id FROM timers t
    WHERE t.tenant_id = $1 AND t.state = 'pending' AND t.owner = u.o
      AND (u.k = '' OR t.kind = u.k)
    OFFSET 0) p))
  AND x.tenant_id = $1 AND x.state = 'pending')"};

const statement complete_timers_q{"uow_timers_complete", R"(
UPDATE timers x SET state = 'completed', lease_until = NULL
WHERE x.ctid = ANY (ARRAY(
  SELECT (SELECT t.ctid FROM timers t
          WHERE t.tenant_id = $1 AND t.timer_id = u.id)
  FROM unnest($2::text[]) AS u(id)))
  AND x.tenant_id = $1 AND x.timer_id = ANY ($2::text[])
  AND x.state = 'pending'
RETURNING x.timer_id)"};

const statement insert_invoices{"uow_invoices", R"(
INSERT INTO invoices (tenant_id, invoice_id, subscription_id, idempotency_key,
  status, currency, total_minor, amount_due_minor, amount_paid_minor,
  period_start, period_end, lines_json, version, created_at, updated_at)
SELECT $1, u.id, u.s, u.k, u.st, u.c, u.tot, u.due, u.paid,
       to_timestamp(u.ps), to_timestamp(u.pe), u.l, 1, to_timestamp(u.ca),
       to_timestamp(u.ua)
FROM unnest($2::text[], $3::text[], $4::text[], $5::text[], $6::text[],
            $7::bigint[], $8::bigint[], $9::bigint[], $10::bigint[],
            $11::bigint[], $12::text[], $13::bigint[], $14::bigint[])
  AS u(id, s, k, st, c, tot, due, paid, ps, pe, l, ca, ua))"};

const statement update_invoices{"uow_invoice_updates", R"(
WITH v AS (
  SELECT u.*, (SELECT i.ctid FROM invoices i
               WHERE i.tenant_id = $1 AND i.invoice_id = u.id) AS row_id
  FROM unnest($2::text[], $3::bigint[], $4::text[], $5::bigint[],
              $6::bigint[]) AS u(id, e, st, paid, t))
UPDATE invoices x
SET status = v.st, amount_paid_minor = v.paid, version = x.version + 1,
    updated_at = to_timestamp(v.t)
FROM v
WHERE x.ctid = ANY (ARRAY(SELECT v.row_id FROM v)) AND x.ctid = v.row_id
  AND x.tenant_id = $1 AND x.invoice_id = v.id AND x.version = v.e
RETURNING x.invoice_id)"};

const statement find_invoices{"uow_invoices_find", R"(
SELECT invoice_id FROM invoices
WHERE tenant_id = $1 AND invoice_id = ANY ($2::text[]))"};

const statement insert_attempts{"uow_attempts", R"(
INSERT INTO payment_attempts (tenant_id, attempt_id, invoice_id,
  idempotency_key, attempt_no, status, amount_minor, currency, decline_code,
  version, created_at, updated_at)
SELECT $1, u.id, u.i, u.k, u.n, u.st, u.a, u.c, u.dc, 1, to_timestamp(u.ca),
       to_timestamp(u.ua)
FROM unnest($2::text[], $3::text[], $4::text[], $5::integer[], $6::text[],
            $7::bigint[], $8::text[], $9::text[], $10::bigint[], $11::bigint[])
  AS u(id, i, k, n, st, a, c, dc, ca, ua))"};

const statement update_attempts{"uow_attempt_updates", R"(
WITH v AS (
  SELECT u.*, (SELECT a.ctid FROM payment_attempts a
               WHERE a.tenant_id = $1 AND a.attempt_id = u.id) AS row_id
  FROM unnest($2::text[], $3::bigint[], $4::text[], $5::text[], $6::bigint[],
              $7::text[])
    AS u(id, e, st, dc, t, ch))
UPDATE payment_attempts x
SET status = v.st, decline_code = v.dc, version = x.version + 1,
    updated_at = to_timestamp(v.t),
    charge_id = CASE WHEN v.ch = '' THEN x.charge_id ELSE v.ch END
FROM v
WHERE x.ctid = ANY (ARRAY(SELECT v.row_id FROM v)) AND x.ctid = v.row_id
  AND x.tenant_id = $1 AND x.attempt_id = v.id AND x.version = v.e
RETURNING x.attempt_id)"};

const statement find_attempts{"uow_attempts_find", R"(
SELECT attempt_id FROM payment_attempts
WHERE tenant_id = $1 AND attempt_id = ANY ($2::text[]))"};

const statement insert_ledger{"uow_ledger", R"(
INSERT INTO ledger_entries (tenant_id, transaction_id, line, account, side,
  amount_minor, currency, memo, subject, at)
SELECT $1, u.x, u.l, u.a, u.s, u.m, u.c, u.memo, u.subj, to_timestamp(u.t)
FROM unnest($2::text[], $3::integer[], $4::text[], $5::text[], $6::bigint[],
            $7::text[], $8::text[], $9::text[], $10::bigint[])
  AS u(x, l, a, s, m, c, memo, subj, t))"};

// Held until commit, so that outbox positions are allocated in commit order
// and a relay reading "position > last seen" never skips a late committer.
// Transactions that write no outbox message never take it. The key is
// "recurout" in ASCII.
const statement lock_outbox{
  "uow_outbox_lock", "SELECT pg_advisory_xact_lock(8243104049053791604)"};

const statement insert_outbox{"uow_outbox", R"(
INSERT INTO outbox (tenant_id, message_id, partition_key, type, subject,
  data_json, occurred_at)
SELECT $1, u.id, u.k, u.y, u.s, u.d, to_timestamp(u.t)
FROM unnest($2::text[], $3::text[], $4::text[], $5::text[], $6::text[],
            $7::bigint[]) WITH ORDINALITY AS u(id, k, y, s, d, t, o)
ORDER BY u.o)"};

const statement insert_audit{"uow_audit", R"(
INSERT INTO audit_log (tenant_id, actor, action, subject, detail_json, at)
SELECT $1, u.a, u.c, u.s, u.d, to_timestamp(u.t)
FROM unnest($2::text[], $3::text[], $4::text[], $5::text[], $6::bigint[])
  WITH ORDINALITY AS u(a, c, s, d, t, o)
ORDER BY u.o)"};

// Settings for the rest of the batch's transaction, in one round trip.
//
// Plans. Every statement of a batch touches a few hundred rows by key; the
// right plan is one index probe per key, O(batch), whatever the table size.
// Two things made the planner scan whole tables instead, O(table) per batch:
// - plan_cache_mode: a prepared statement settles on a generic plan after
//   five runs and keeps it for the connection's life, so plans made while
//   the tables were nearly empty stayed. Custom plans see the actual arrays
//   and the tables' current statistics; planning costs well under a
//   millisecond per statement, and a batch runs about a dozen.
// - random_page_cost: at its default (4, disks that seek) a few hundred
//   probes look dearer than hashing a 10,000-row table; the pages a batch
//   touches are the hot end of each table, in memory. 1.1 is the usual value
//   for SSDs and cached data; it applies to this transaction only.
// Neither helps before the tables' first ANALYZE: without statistics the
// planner takes a tenant for a sliver of a table (a fresh database loaded
// faster than autovacuum's first pass; bench/renewal_bench --after-setup).
//
// recur.ledger_check: every line of a ledger transaction travels in one
// statement here (writer::ledger), so the balance is checked once per
// statement rather than once per line at commit (migration 0010).
const statement batch_settings{"uow_settings", batch_settings_sql};

// -- chunking -----------------------------------------------------------------

// Keys of the rows a unit touches where the outcome depends on the order of
// units (an update after an insert, a cancel after a schedule, two upserts of
// one row). Units that share none can share statements; the others go to the
// next chunk, which runs after.
std::vector<std::string> order_keys(const unit_of_work& w) {
  std::vector<std::string> keys;
  for (const auto& r : w.idempotency_responses)
    keys.push_back("k:" + r.key);
  for (const auto& s : w.subscriptions)
    keys.push_back("r:" + s.id.value);
  for (const auto& s : w.new_sagas)
    keys.push_back("s:" + s.id.value);
  for (const auto& u : w.saga_updates)
    keys.push_back("s:" + u.id.value);
  for (const auto& t : w.timers_to_schedule) {
    keys.push_back("t:" + t.id);
    keys.push_back("o:" + t.owner);
  }
  for (const auto& c : w.timers_to_cancel)
    keys.push_back("o:" + c.owner);
  for (const auto& id : w.timers_to_complete)
    keys.push_back("t:" + id);
  for (const auto& i : w.new_invoices)
    keys.push_back("i:" + i.id.value);
  for (const auto& u : w.invoice_updates)
    keys.push_back("i:" + u.id.value);
  for (const auto& a : w.new_attempts)
    keys.push_back("a:" + a.id.value);
  for (const auto& u : w.attempt_updates)
    keys.push_back("a:" + u.id.value);
  for (const auto& e : w.events)
    if (e.events.empty())
      keys.push_back("e:" + e.subscription.value);
  return keys;
}

std::vector<unit_ptrs> chunks_of(const unit_ptrs& units) {
  std::vector<unit_ptrs> chunks(1);
  std::unordered_set<std::string> taken;
  for (const auto* w : units) {
    auto keys = order_keys(*w);
    // A unit's own keys may repeat (a saga created and moved on in one unit):
    // only clashes with earlier units matter.
    const bool clash = std::any_of(keys.begin(), keys.end(), [&](auto& k) {
      return taken.count(k) != 0;
    });
    if (clash) {
      chunks.emplace_back();
      taken.clear();
    }
    chunks.back().push_back(w);
    taken.insert(keys.begin(), keys.end());
  }
  return chunks;
}

// -- the writer ---------------------------------------------------------------

/// Pointers to the items of one list member across a chunk, in unit order.
template <class T>
std::vector<const T*>
gather(const unit_ptrs& chunk, std::vector<T> unit_of_work::*list) {
  std::vector<const T*> out;
  for (const auto* w : chunk)
    for (const auto& x : w->*list)
      out.push_back(&x);
  return out;
}

/// Splits items into rounds in which no key repeats, keeping the order of
/// items with equal keys: an upsert or update statement touches a row at most
/// once, so a unit that moves a row twice needs one statement per move.
template <class T, class Key>
std::vector<std::vector<const T*>>
rounds_of(const std::vector<const T*>& items, Key key_of) {
  std::vector<std::vector<const T*>> rounds;
  std::unordered_map<std::string, std::size_t> seen; // key -> occurrences
  for (const auto* x : items) {
    const auto r = seen[key_of(*x)]++;
    if (r == rounds.size())
      rounds.emplace_back();
    rounds[r].push_back(x);
  }
  return rounds;
}

/// Applies chunks of one tenant's units inside one transaction, in the order
/// of unit_of_work's fields. Throws on any failure (the caller rolls back).
class writer {
public:
  writer(connection& c, pqxx::transaction_base& tx, op_context& ctx)
    : c_(c), tx_(tx), ctx_(ctx) {}

  void apply(const std::string& tenant, const unit_ptrs& chunk) {
    tenant_ = &tenant;
    inbox(gather(chunk, &unit_of_work::inbox));
    for (const auto& round :
         rounds_of(gather(chunk, &unit_of_work::idempotency_responses),
                   [](auto& r) { return r.key; }))
      idempotency(round);
    events(gather(chunk, &unit_of_work::events));
    snapshots(gather(chunk, &unit_of_work::snapshots));
    for (const auto& round :
         rounds_of(gather(chunk, &unit_of_work::subscriptions),
                   [](auto& s) { return s.id.value; }))
      subscriptions(round);
    new_sagas(gather(chunk, &unit_of_work::new_sagas));
    for (const auto& round :
         rounds_of(gather(chunk, &unit_of_work::saga_updates),
                   [](auto& u) { return u.id.value; }))
      saga_updates(round);
    saga_steps(gather(chunk, &unit_of_work::saga_steps));
    for (const auto& round :
         rounds_of(gather(chunk, &unit_of_work::timers_to_schedule),
                   [](auto& t) { return t.id; }))
      schedule_timers(round);
    cancel_timers(gather(chunk, &unit_of_work::timers_to_cancel));
    for (const auto& round :
         rounds_of(gather(chunk, &unit_of_work::timers_to_complete),
                   [](auto& id) { return id; }))
      complete_timers(round);
    new_invoices(gather(chunk, &unit_of_work::new_invoices));
    for (const auto& round :
         rounds_of(gather(chunk, &unit_of_work::invoice_updates),
                   [](auto& u) { return u.id.value; }))
      invoice_updates(round);
    new_attempts(gather(chunk, &unit_of_work::new_attempts));
    for (const auto& round :
         rounds_of(gather(chunk, &unit_of_work::attempt_updates),
                   [](auto& u) { return u.id.value; }))
      attempt_updates(round);
    ledger(gather(chunk, &unit_of_work::ledger));
    outbox(gather(chunk, &unit_of_work::outbox));
    audit(gather(chunk, &unit_of_work::audit));
  }

private:
  template <class T>
  using items = std::vector<const T*>;

  template <class... Arrays>
  pqxx::result run(const statement& s, Arrays&... arrays) {
    return exec(c_, tx_, s, *tenant_, arrays.take()...);
  }

  void inbox(const items<inbox_entry>& xs);
  void idempotency(const items<idempotency_record>& xs);
  void events(const items<event_append>& xs);
  void snapshots(const items<snapshot_record>& xs);
  void subscriptions(const items<subscription_row>& xs);
  void new_sagas(const items<saga_record>& xs);
  void saga_updates(const items<saga_update>& xs);
  void saga_steps(const items<saga_step_record>& xs);
  void schedule_timers(const items<timer_record>& xs);
  void cancel_timers(const items<timer_cancel>& xs);
  void complete_timers(const items<std::string>& xs);
  void new_invoices(const items<invoice_record>& xs);
  void invoice_updates(const items<invoice_update>& xs);
  void new_attempts(const items<payment_attempt_record>& xs);
  void attempt_updates(const items<payment_attempt_update>& xs);
  void ledger(const items<ledger_append>& xs);
  void outbox(const items<outbox_message>& xs);
  void audit(const items<audit_entry>& xs);

  void expect_updated(const pqxx::result& updated,
                      const std::vector<std::string>& ids,
                      const statement& find, const char* what);
  void explain_idempotency(const items<idempotency_record>& xs,
                           const pqxx::result& done);

  connection& c_;
  pqxx::transaction_base& tx_;
  op_context& ctx_;
  const std::string* tenant_ = nullptr;
  bool outbox_locked_ = false;
};

void writer::inbox(const items<inbox_entry>& xs) {
  if (xs.empty())
    return;
  array_builder gw, id, at;
  for (const auto* e : xs) {
    gw.add(e->gateway);
    id.add(e->event_id);
    at.add(e->received_at);
  }
  ctx_.expect(errc::already_exists, "inbox entry");
  run(insert_inbox, gw, id, at);
}

void writer::idempotency(const items<idempotency_record>& xs) {
  if (xs.empty())
    return;
  array_builder key, hash, code, body;
  for (const auto* r : xs) {
    key.add(r->key);
    hash.add(r->request_sha256_hex);
    code.add(std::int64_t{r->response_status});
    body.add(r->response_body);
  }
  ctx_.expect(errc::already_exists, "idempotency response");
  const auto done = run(complete_idempotency, key, hash, code, body);
  if (done.size() != xs.size())
    explain_idempotency(xs, done);
}

// Says why a response was not stored: no request reserved the key
// (not_found), another request did (idempotency_conflict), or it already
// holds an answer (already_exists).
void writer::explain_idempotency(const items<idempotency_record>& xs,
                                 const pqxx::result& done) {
  std::unordered_set<std::string> stored;
  for (const auto& row : done)
    stored.insert(row[0].as<std::string>());
  array_builder keys;
  for (const auto* r : xs)
    keys.add(r->key);
  std::unordered_map<std::string, std::string> found; // key -> request hash
  for (const auto& row : exec(c_, tx_, find_idempotency, *tenant_, keys.take()))
    found[row[0].as<std::string>()] = row[1].as<std::string>();
  for (const auto* r : xs) {
    if (stored.count(r->key) != 0)
      continue;
    const auto it = found.find(r->key);
    if (it == found.end())
      throw typed_failure{make_error(
        errc::not_found, "idempotency key '" + r->key + "' is not reserved")};
    if (it->second != r->request_sha256_hex)
      throw typed_failure{make_error(errc::idempotency_conflict,
                                     "idempotency key '" + r->key
                                       + "' belongs to another request")};
    throw typed_failure{
      make_error(errc::already_exists,
                 "idempotency key '" + r->key + "' already has a response")};
  }
}

void writer::events(const items<event_append>& xs) {
  array_builder sub{256}, seq, type, payload{1024}, at;
  array_builder empty_sub, empty_expected;
  bool any = false, any_empty = false;
  for (const auto* a : xs) {
    if (a->events.empty()) {
      empty_sub.add(a->subscription.value);
      empty_expected.add(a->expected_version);
      any_empty = true;
    }
    std::int64_t next = a->expected_version;
    for (const auto& e : a->events) {
      sub.add(a->subscription.value);
      seq.add(++next);
      type.add(e.type);
      payload.add(e.payload_json);
      at.add(e.recorded_at);
      any = true;
    }
  }
  // A duplicate seq means someone appended first (unique key); a gap means
  // the expected version was ahead of the stream (contiguity trigger).
  ctx_.expect(errc::version_conflict, "event append");
  if (any)
    run(insert_events, sub, seq, type, payload, at);
  if (any_empty && !run(check_versions, empty_sub, empty_expected).empty())
    throw typed_failure{make_error(errc::version_conflict,
                                   "event append: stale expected version")};
}

void writer::snapshots(const items<snapshot_record>& xs) {
  if (xs.empty())
    return;
  array_builder sub, seq, state{1024}, at;
  for (const auto* s : xs) {
    sub.add(s->subscription.value);
    seq.add(s->seq);
    state.add(s->state_json);
    at.add(s->taken_at);
  }
  // The foreign key refuses a snapshot of an event that does not exist.
  ctx_.expect(errc::constraint_violation, "snapshot",
              errc::constraint_violation);
  run(insert_snapshots, sub, seq, state, at);
}

void writer::subscriptions(const items<subscription_row>& xs) {
  if (xs.empty())
    return;
  array_builder id, customer, plan, status, version, data{1024}, at;
  for (const auto* s : xs) {
    id.add(s->id.value);
    customer.add(s->customer.value);
    plan.add(s->plan.value);
    status.add(s->status);
    version.add(s->version);
    data.add(s->data_json);
    at.add(s->updated_at);
  }
  ctx_.expect(errc::constraint_violation, "subscription read model");
  run(upsert_subscriptions, id, customer, plan, status, version, data, at);
}

void writer::new_sagas(const items<saga_record>& xs) {
  if (xs.empty())
    return;
  array_builder id, type, sub, status, step, data, created, updated;
  for (const auto* s : xs) {
    id.add(s->id.value);
    type.add(s->type);
    sub.add(s->subscription.value);
    status.add(to_string(s->status));
    step.add(std::int64_t{s->step});
    data.add(s->data_json);
    created.add(s->created_at);
    updated.add(s->updated_at);
  }
  ctx_.expect(errc::already_exists, "new saga");
  run(insert_sagas, id, type, sub, status, step, data, created, updated);
}

void writer::saga_updates(const items<saga_update>& xs) {
  if (xs.empty())
    return;
  array_builder id, expected, status, step, data, at;
  std::vector<std::string> ids;
  for (const auto* u : xs) {
    id.add(u->id.value);
    expected.add(u->expected_version);
    status.add(to_string(u->status));
    step.add(std::int64_t{u->step});
    data.add(u->data_json);
    at.add(u->updated_at);
    ids.push_back(u->id.value);
  }
  ctx_.expect(errc::version_conflict, "saga update");
  const auto updated = run(update_sagas, id, expected, status, step, data, at);
  expect_updated(updated, ids, find_sagas, "saga");
}

void writer::saga_steps(const items<saga_step_record>& xs) {
  if (xs.empty())
    return;
  array_builder saga, step, kind, name, outcome, detail, at;
  for (const auto* s : xs) {
    saga.add(s->saga.value);
    step.add(std::int64_t{s->step});
    kind.add(to_string(s->kind));
    name.add(s->name);
    outcome.add(s->outcome);
    detail.add(s->detail);
    at.add(s->at);
  }
  // Two writers appending to one saga at once: the later one lost the race.
  // A step of a saga that does not exist breaks the foreign key.
  ctx_.expect(errc::version_conflict, "saga step", errc::not_found);
  run(insert_saga_steps, saga, step, kind, name, outcome, detail, at);
}

void writer::schedule_timers(const items<timer_record>& xs) {
  if (xs.empty())
    return;
  array_builder id, owner, kind, due, payload;
  for (const auto* t : xs) {
    id.add(t->id);
    owner.add(t->owner);
    kind.add(t->kind);
    due.add(t->due_at);
    payload.add(t->payload_json);
  }
  ctx_.expect(errc::constraint_violation, "schedule timers");
  run(insert_timers, id, owner, kind, due, payload);
}

void writer::cancel_timers(const items<timer_cancel>& xs) {
  if (xs.empty())
    return;
  array_builder owner, kind;
  for (const auto* c : xs) {
    owner.add(c->owner);
    kind.add(c->kind);
  }
  ctx_.expect(errc::constraint_violation, "cancel timers");
  run(cancel_timers_q, owner, kind);
}

// Completing a timer that is not pending fails the unit: a second firing of
// the same timer must not commit its effects again.
void writer::complete_timers(const items<std::string>& xs) {
  if (xs.empty())
    return;
  array_builder ids;
  for (const auto* id : xs)
    ids.add(*id);
  ctx_.expect(errc::constraint_violation, "complete timers");
  if (run(complete_timers_q, ids).size() != xs.size())
    throw typed_failure{
      make_error(errc::not_found, "completing a timer that is not pending")};
}

void writer::new_invoices(const items<invoice_record>& xs) {
  if (xs.empty())
    return;
  array_builder id, sub, key, status, cur, total, due, paid, start, end,
    lines{1024}, created, updated;
  for (const auto* i : xs) {
    id.add(i->id.value);
    sub.add(i->subscription.value);
    key.add(i->idempotency_key);
    status.add(i->status);
    cur.add(i->currency);
    total.add(i->total_minor);
    due.add(i->amount_due_minor);
    paid.add(i->amount_paid_minor);
    start.add(i->period_start);
    end.add(i->period_end);
    lines.add(i->lines_json);
    created.add(i->created_at);
    updated.add(i->updated_at);
  }
  ctx_.expect(errc::already_exists, "new invoice");
  run(insert_invoices, id, sub, key, status, cur, total, due, paid, start, end,
      lines, created, updated);
}

void writer::invoice_updates(const items<invoice_update>& xs) {
  if (xs.empty())
    return;
  array_builder id, expected, status, paid, at;
  std::vector<std::string> ids;
  for (const auto* u : xs) {
    id.add(u->id.value);
    expected.add(u->expected_version);
    status.add(u->status);
    paid.add(u->amount_paid_minor);
    at.add(u->updated_at);
    ids.push_back(u->id.value);
  }
  ctx_.expect(errc::version_conflict, "invoice update");
  const auto updated = run(update_invoices, id, expected, status, paid, at);
  expect_updated(updated, ids, find_invoices, "invoice");
}

void writer::new_attempts(const items<payment_attempt_record>& xs) {
  if (xs.empty())
    return;
  array_builder id, invoice, key, no, status, amount, cur, decline, created,
    updated;
  for (const auto* a : xs) {
    id.add(a->id.value);
    invoice.add(a->invoice.value);
    key.add(a->idempotency_key);
    no.add(std::int64_t{a->attempt_no});
    status.add(a->status);
    amount.add(a->amount_minor);
    cur.add(a->currency);
    decline.add(a->decline_code);
    created.add(a->created_at);
    updated.add(a->updated_at);
  }
  ctx_.expect(errc::already_exists, "new payment attempt");
  run(insert_attempts, id, invoice, key, no, status, amount, cur, decline,
      created, updated);
}

void writer::attempt_updates(const items<payment_attempt_update>& xs) {
  if (xs.empty())
    return;
  array_builder id, expected, status, decline, at, charge;
  std::vector<std::string> ids;
  for (const auto* u : xs) {
    id.add(u->id.value);
    expected.add(u->expected_version);
    status.add(u->status);
    decline.add(u->decline_code);
    at.add(u->updated_at);
    charge.add(u->charge_id);
    ids.push_back(u->id.value);
  }
  ctx_.expect(errc::version_conflict, "payment attempt update");
  const auto updated
    = run(update_attempts, id, expected, status, decline, at, charge);
  expect_updated(updated, ids, find_attempts, "payment attempt");
}

void writer::ledger(const items<ledger_append>& xs) {
  if (xs.empty())
    return;
  array_builder tx, line, acct, side, amount, cur, memo, subject, at;
  for (const auto* l : xs) {
    std::int64_t n = 0;
    for (const auto& p : l->transaction.postings()) {
      tx.add(l->transaction_id);
      line.add(++n);
      acct.add(to_string(p.account));
      side.add(to_string(p.side));
      amount.add(p.amount.amount_minor());
      cur.add(p.amount.currency().code());
      memo.add(l->transaction.memo());
      subject.add(l->subject);
      at.add(l->at);
    }
  }
  // One statement for every line of every ledger transaction in the chunk:
  // the balance is checked per statement (batch_settings, migration 0010).
  ctx_.expect(errc::already_exists, "ledger transaction");
  run(insert_ledger, tx, line, acct, side, amount, cur, memo, subject, at);
}

void writer::outbox(const items<outbox_message>& xs) {
  if (xs.empty())
    return;
  if (!outbox_locked_) {
    exec(c_, tx_, lock_outbox);
    outbox_locked_ = true;
  }
  array_builder id, key, type, subject, data{1024}, at;
  for (const auto* m : xs) {
    id.add(m->id);
    key.add(m->key);
    type.add(m->type);
    subject.add(m->subject);
    data.add(m->data_json);
    at.add(m->time);
  }
  ctx_.expect(errc::constraint_violation, "outbox");
  run(insert_outbox, id, key, type, subject, data, at);
}

void writer::audit(const items<audit_entry>& xs) {
  if (xs.empty())
    return;
  array_builder actor, action, subject, detail, at;
  for (const auto* a : xs) {
    actor.add(a->actor);
    action.add(a->action);
    subject.add(a->subject);
    detail.add(a->detail_json);
    at.add(a->at);
  }
  ctx_.expect(errc::constraint_violation, "audit");
  run(insert_audit, actor, action, subject, detail, at);
}

// An update that matched fewer rows than it was given either names a row that
// does not exist (not_found) or expected a stale version (version_conflict).
void writer::expect_updated(const pqxx::result& updated,
                            const std::vector<std::string>& ids,
                            const statement& find, const char* what) {
  if (updated.size() == ids.size())
    return;
  array_builder all;
  for (const auto& id : ids)
    all.add(id);
  std::unordered_set<std::string> existing;
  for (const auto& row : exec(c_, tx_, find, *tenant_, all.take()))
    existing.insert(row[0].as<std::string>());
  for (const auto& id : ids)
    if (existing.count(id) == 0)
      throw typed_failure{make_error(
        errc::not_found, std::string{what} + " '" + id + "' does not exist")};
  throw typed_failure{
    make_error(errc::version_conflict,
               std::string{what} + " update: stale expected version")};
}

// -- batches ------------------------------------------------------------------

status validate(const unit_of_work& w) {
  if (w.tenant.empty())
    return make_error(errc::invalid_argument, "unit of work without tenant");
  for (const auto& a : w.events)
    if (a.expected_version < 0)
      return make_error(errc::invalid_argument, "negative expected version for "
                                                  + a.subscription.value);
  return {};
}

commit_receipt receipt_of(const unit_of_work& w) {
  commit_receipt r;
  r.event_versions.reserve(w.events.size());
  for (const auto& a : w.events)
    r.event_versions.push_back(a.expected_version
                               + static_cast<std::int64_t>(a.events.size()));
  return r;
}

// Units grouped by tenant, tenants in order of first appearance; the order of
// units within a tenant is kept (across tenants it cannot matter).
std::vector<std::pair<std::string, unit_ptrs>>
by_tenant(std::span<const unit_of_work> works,
          std::span<const std::size_t> picked) {
  std::vector<std::pair<std::string, unit_ptrs>> groups;
  std::map<std::string, std::size_t> index;
  for (const auto i : picked) {
    const auto& t = works[i].tenant.value;
    auto [it, fresh] = index.emplace(t, groups.size());
    if (fresh)
      groups.emplace_back(t, unit_ptrs{});
    groups[it->second].second.push_back(&works[i]);
  }
  return groups;
}

result<bool> write_batch(connection& c, op_context& ctx,
                         std::span<const unit_of_work> works,
                         std::span<const std::size_t> picked) {
  const auto groups = by_tenant(works, picked);
  ctx.expect(errc::storage_error, "begin");
  tenant_transaction tx{c, groups.front().first};
  exec(c, tx.tx(), batch_settings);
  writer w{c, tx.tx(), ctx};
  for (std::size_t g = 0; g < groups.size(); ++g) {
    const auto& [tenant, units] = groups[g];
    ctx.expect(errc::storage_error, "set tenant");
    if (g > 0)
      tx.switch_to(tenant);
    for (const auto& chunk : chunks_of(units))
      w.apply(tenant, chunk);
  }
  ctx.expect(errc::already_exists, "commit");
  tx.commit();
  return true;
}

void commit_batch(pool& p, const retry_policy& policy,
                  std::span<const unit_of_work> works,
                  std::span<const std::size_t> picked,
                  std::vector<std::optional<result<commit_receipt>>>& out) {
  auto done = run<bool>(p, policy, [&](connection& c, op_context& ctx) {
    return write_batch(c, ctx, works, picked);
  });
  if (done) {
    for (const auto i : picked)
      out[i] = receipt_of(works[i]);
    return;
  }
  // Nothing of the batch was written. A retryable fault that outlived its
  // retries would fail each unit alike; any other failure belongs to one unit
  // (or a few). Halving finds them in about 2 log2(n) transactions and keeps
  // the order of units, so each result is still as if committed alone.
  if (picked.size() == 1 || done.code() == errc::unavailable) {
    for (const auto i : picked)
      out[i] = done.error();
    return;
  }
  const auto half = picked.size() / 2;
  commit_batch(p, policy, works, picked.first(half), out);
  commit_batch(p, policy, works, picked.subspan(half), out);
}

} // namespace

std::vector<result<commit_receipt>>
commit_units(pool& p, const retry_policy& policy,
             std::span<const unit_of_work> works, std::size_t batch_max) {
  std::vector<std::optional<result<commit_receipt>>> out(works.size());
  std::vector<std::size_t> picked;
  picked.reserve(works.size());
  for (std::size_t i = 0; i < works.size(); ++i) {
    if (auto ok = validate(works[i]); !ok)
      out[i] = ok.error();
    else if (works[i].empty())
      out[i] = commit_receipt{};
    else
      picked.push_back(i);
  }
  const auto step = std::max<std::size_t>(batch_max, 1);
  for (std::size_t at = 0; at < picked.size(); at += step) {
    const auto n = std::min(step, picked.size() - at);
    commit_batch(p, policy, works, std::span{picked}.subspan(at, n), out);
  }
  std::vector<result<commit_receipt>> results;
  results.reserve(out.size());
  for (auto& r : out)
    results.push_back(std::move(*r));
  return results;
}

} // namespace recur::pg
