#include "persistence/pg_store.hpp"

#include <algorithm>
#include <array>
#include <condition_variable>
#include <deque>
#include <mutex>

#include "persistence/pg_commit.hpp"
#include "persistence/pg_detail.hpp"
#include "persistence/pg_migrations.hpp"

namespace recur {

namespace {

using pg::exec;
using pg::statement;

constexpr std::size_t page_max = 1000;          // rows per page of a list call
constexpr std::size_t usage_batch_max = 10'000; // events per record_usage
constexpr std::size_t claim_max = 10'000;       // timers per claim
constexpr std::size_t positions_max = 10'000;   // positions per mark_published
// Events per load: snapshots keep a tail far shorter; a longer one is an
// error rather than an unbounded read.
constexpr std::int64_t events_max = 100'000;
// Activations answered by one history read; reads in flight at once, at
// most one per tenant (pg_store::load_history). One read per tenant: the
// renewal run (one tenant) measured 1,822-1,877 renewals/s with one and
// 1,577-1,592 with two in flight, whose batches were half as large and whose
// statements competed for the server (bench/RESULTS.md).
constexpr std::size_t history_batch_max = 64;
constexpr std::size_t history_readers_max = 4;
constexpr std::size_t pool_size_max = 64;
constexpr std::int32_t max_retries_max = 20;
constexpr int connect_timeout_s = 5;

// -- column lists and row decoders --------------------------------------------

const std::string tenant_cols
  = "tenant_id, name, api_key_sha256_hex, test_mode,"
    " extract(epoch FROM created_at)::bigint";

tenant_record tenant_of(const pqxx::row& r) {
  return {tenant_id{r[0].as<std::string>()}, r[1].as<std::string>(),
          r[2].as<std::string>(), r[3].as<bool>(), pg::as_instant(r[4])};
}

const std::string customer_cols
  = "customer_id, data_json, version, extract(epoch FROM updated_at)::bigint";

customer_record customer_of(const pqxx::row& r) {
  return {customer_id{r[0].as<std::string>()}, r[1].as<std::string>(),
          r[2].as<std::int64_t>(), pg::as_instant(r[3])};
}

const std::string plan_cols
  = "plan_id, version, extract(epoch FROM effective_at)::bigint, data_json";

plan_version_record plan_of(const pqxx::row& r) {
  return {plan_id{r[0].as<std::string>()}, r[1].as<std::int32_t>(),
          pg::as_instant(r[2]), r[3].as<std::string>()};
}

const std::string subscription_cols
  = "subscription_id, customer_id, plan_id, status, version, data_json,"
    " extract(epoch FROM updated_at)::bigint";

subscription_row subscription_of(const pqxx::row& r) {
  return {subscription_id{r[0].as<std::string>()},
          customer_id{r[1].as<std::string>()},
          plan_id{r[2].as<std::string>()},
          r[3].as<std::string>(),
          r[4].as<std::int64_t>(),
          r[5].as<std::string>(),
          pg::as_instant(r[6])};
}

const std::string event_cols = "subscription_id, seq, type, payload_json,"
                               " extract(epoch FROM recorded_at)::bigint";

event_record event_of(const pqxx::row& r) {
  return {subscription_id{r[0].as<std::string>()}, r[1].as<std::int64_t>(),
          r[2].as<std::string>(), r[3].as<std::string>(), pg::as_instant(r[4])};
}

const std::string saga_cols
  = "saga_id, type, subscription_id, status, step, version, data_json,"
    " extract(epoch FROM created_at)::bigint,"
    " extract(epoch FROM updated_at)::bigint";

saga_record saga_of(const pqxx::row& r, pqxx::row::size_type at = 0) {
  saga_record s;
  s.id = saga_id{r[at].as<std::string>()};
  s.type = r[at + 1].as<std::string>();
  s.subscription = subscription_id{r[at + 2].as<std::string>()};
  auto st = saga_status_from_string(r[at + 3].as<std::string>());
  s.status = st ? *st : saga_status::failed; // the CHECK admits only these
  s.step = r[at + 4].as<std::int32_t>();
  s.version = r[at + 5].as<std::int64_t>();
  s.data_json = r[at + 6].as<std::string>();
  s.created_at = pg::as_instant(r[at + 7]);
  s.updated_at = pg::as_instant(r[at + 8]);
  return s;
}

const std::string step_cols = "saga_id, seq, step, kind, name, outcome, detail,"
                              " extract(epoch FROM at)::bigint";

saga_step_record step_of(const pqxx::row& r) {
  return {saga_id{r[0].as<std::string>()},
          r[1].as<std::int64_t>(),
          r[2].as<std::int32_t>(),
          r[3].as<std::string>() == "compensation" ? step_kind::compensation
                                                   : step_kind::action,
          r[4].as<std::string>(),
          r[5].as<std::string>(),
          r[6].as<std::string>(),
          pg::as_instant(r[7])};
}

const std::string timer_cols
  = "timer_id, owner, kind, extract(epoch FROM due_at)::bigint, payload_json";

timer_record timer_of(const pqxx::row& r) {
  return {r[0].as<std::string>(), r[1].as<std::string>(),
          r[2].as<std::string>(), pg::as_instant(r[3]), r[4].as<std::string>()};
}

const std::string invoice_cols
  = "invoice_id, subscription_id, idempotency_key, status, currency,"
    " total_minor, amount_due_minor, amount_paid_minor,"
    " extract(epoch FROM period_start)::bigint,"
    " extract(epoch FROM period_end)::bigint, lines_json, version,"
    " extract(epoch FROM created_at)::bigint,"
    " extract(epoch FROM updated_at)::bigint";

invoice_record invoice_of(const pqxx::row& r) {
  invoice_record i;
  i.id = invoice_id{r[0].as<std::string>()};
  i.subscription = subscription_id{r[1].as<std::string>()};
  i.idempotency_key = r[2].as<std::string>();
  i.status = r[3].as<std::string>();
  i.currency = r[4].as<std::string>();
  i.total_minor = r[5].as<std::int64_t>();
  i.amount_due_minor = r[6].as<std::int64_t>();
  i.amount_paid_minor = r[7].as<std::int64_t>();
  i.period_start = pg::as_instant(r[8]);
  i.period_end = pg::as_instant(r[9]);
  i.lines_json = r[10].as<std::string>();
  i.version = r[11].as<std::int64_t>();
  i.created_at = pg::as_instant(r[12]);
  i.updated_at = pg::as_instant(r[13]);
  return i;
}

const std::string attempt_cols
  = "attempt_id, invoice_id, idempotency_key, attempt_no, status,"
    " amount_minor, currency, decline_code, version,"
    " extract(epoch FROM created_at)::bigint,"
    " extract(epoch FROM updated_at)::bigint, charge_id";

payment_attempt_record attempt_of(const pqxx::row& r) {
  payment_attempt_record a;
  a.id = payment_attempt_id{r[0].as<std::string>()};
  a.invoice = invoice_id{r[1].as<std::string>()};
  a.idempotency_key = r[2].as<std::string>();
  a.attempt_no = r[3].as<std::int32_t>();
  a.status = r[4].as<std::string>();
  a.amount_minor = r[5].as<std::int64_t>();
  a.currency = r[6].as<std::string>();
  a.decline_code = r[7].as<std::string>();
  a.version = r[8].as<std::int64_t>();
  a.created_at = pg::as_instant(r[9]);
  a.updated_at = pg::as_instant(r[10]);
  a.charge_id = r[11].as<std::string>();
  return a;
}

account account_from(const std::string& name) {
  for (std::size_t i = 0; i < account_count; ++i) {
    const auto a = static_cast<account>(i);
    if (to_string(a) == name)
      return a;
  }
  throw pg::typed_failure{
    make_error(errc::storage_error, "unknown ledger account '" + name + "'")};
}

const std::string ledger_cols
  = "transaction_id, line, account, side, amount_minor, currency, memo,"
    " subject, extract(epoch FROM at)::bigint";

ledger_entry_record ledger_of(const pqxx::row& r) {
  return {r[0].as<std::string>(),
          r[1].as<std::int32_t>(),
          account_from(r[2].as<std::string>()),
          r[3].as<std::string>() == "debit" ? entry_side::debit
                                            : entry_side::credit,
          r[4].as<std::int64_t>(),
          r[5].as<std::string>(),
          r[6].as<std::string>(),
          r[7].as<std::string>(),
          pg::as_instant(r[8])};
}

const std::string outbox_cols
  = "tenant_id, position, message_id, partition_key, type, subject,"
    " data_json, extract(epoch FROM occurred_at)::bigint,"
    " extract(epoch FROM published_at)::bigint";

outbox_record outbox_of(const pqxx::row& r) {
  outbox_record o;
  o.tenant = tenant_id{r[0].as<std::string>()};
  o.position = r[1].as<std::int64_t>();
  o.message = {r[2].as<std::string>(), r[3].as<std::string>(),
               r[4].as<std::string>(), r[5].as<std::string>(),
               r[6].as<std::string>(), pg::as_instant(r[7])};
  if (!r[8].is_null())
    o.published_at = pg::as_instant(r[8]);
  return o;
}

// -- statements ---------------------------------------------------------------

statement sql(std::string name, std::string text) {
  return {std::move(name), std::move(text)};
}

// System calls: SECURITY DEFINER functions (migration 0007), no tenant set.
const statement create_tenant_q
  = sql("create_tenant",
        "SELECT recur_create_tenant($1, $2, $3, $4, to_timestamp($5))");
const statement find_tenant_by_key_q
  = sql("find_tenant_by_key",
        "SELECT " + tenant_cols + " FROM recur_find_tenant_by_key_hash($1)");
const statement unfinished_sagas_q
  = sql("unfinished_sagas", "SELECT tenant_id, " + saga_cols
                              + " FROM recur_find_unfinished_sagas($1, $2, "
                                "$3, $4)");
const statement claim_timers_q
  = sql("claim_timers",
        "SELECT tenant_id, " + timer_cols
          + ", extract(epoch FROM lease_until)::bigint"
            " FROM recur_claim_due_timers(to_timestamp($1), $2, $3, $4)");
const statement fetch_unpublished_q
  = sql("fetch_unpublished",
        "SELECT " + outbox_cols + " FROM recur_fetch_unpublished($1, $2)");
const statement mark_published_q
  = sql("mark_published",
        "SELECT recur_mark_published($1::bigint[], to_timestamp($2))");
const statement saga_counts_q
  = sql("saga_counts", "SELECT type, status, n FROM recur_saga_counts()");
const statement timer_counts_q
  = sql("timer_counts",
        "SELECT pending, due FROM recur_timer_counts(to_timestamp($1))");

// Tenant-scoped reads in one round trip: functions (migration 0013) that set
// app.tenant_id themselves, called in autocommit; row-level security binds
// them as it binds the statements below.
const statement scoped_get_tenant_q
  = sql("scoped_get_tenant",
        "SELECT " + tenant_cols + " FROM scoped_get_tenant($1)");
const statement scoped_get_customer_q
  = sql("scoped_get_customer",
        "SELECT " + customer_cols + " FROM scoped_get_customer($1, $2)");
const statement scoped_get_subscription_q
  = sql("scoped_get_subscription", "SELECT " + subscription_cols
                                     + " FROM scoped_get_subscription($1, $2)");
const statement scoped_get_invoice_q
  = sql("scoped_get_invoice",
        "SELECT " + invoice_cols + " FROM scoped_get_invoice($1, $2)");
const statement scoped_get_saga_q = sql(
  "scoped_get_saga", "SELECT " + saga_cols + " FROM scoped_get_saga($1, $2)");
const statement scoped_get_attempt_q
  = sql("scoped_get_attempt",
        "SELECT " + attempt_cols + " FROM scoped_get_attempt($1, $2)");
const statement scoped_find_attempt_by_charge_q
  = sql("scoped_find_attempt_by_charge",
        "SELECT " + attempt_cols
          + " FROM scoped_find_attempt_by_charge($1, $2)");
const statement scoped_get_gateway_config_q
  = sql("scoped_get_gateway_config",
        "SELECT gateway, config_json, extract(epoch FROM updated_at)::bigint"
        " FROM scoped_get_gateway_config($1, $2)");
// Per position in $2 (1-based): kind 0, the latest snapshot; kind 1, the
// events after it, in seq order.
const statement scoped_load_histories_q
  = sql("scoped_load_histories",
        "SELECT pos, kind, seq, type, body, extract(epoch FROM at)::bigint"
        " FROM scoped_load_histories($1, $2::text[], $3)");

// Tenant-scoped: row-level security adds tenant_id = app.tenant_id; the
// explicit tenant_id = $1 lets the planner use the primary keys.
const statement insert_customer_q
  = sql("insert_customer",
        "INSERT INTO customers (tenant_id, customer_id, data_json, version,"
        " updated_at) VALUES ($1, $2, $3, 1, to_timestamp($4))");
const statement update_customer_q
  = sql("update_customer",
        "UPDATE customers SET data_json = $3, version = version + 1,"
        " updated_at = to_timestamp($4)"
        " WHERE tenant_id = $1 AND customer_id = $2 AND version = $5"
        " RETURNING version");
const statement get_customer_q = sql("get_customer",
                                     "SELECT " + customer_cols
                                       + " FROM customers WHERE tenant_id = $1"
                                         " AND customer_id = $2");
const statement insert_plan_q = sql(
  "insert_plan", "INSERT INTO plans (tenant_id, plan_id, version, effective_at,"
                 " data_json) VALUES ($1, $2, $3, to_timestamp($4), $5)");
const statement plan_versions_q
  = sql("plan_versions", "SELECT " + plan_cols
                           + " FROM plans WHERE tenant_id = $1 AND plan_id = $2"
                             " ORDER BY version");
const statement list_plans_q
  = sql("list_plans", "SELECT DISTINCT ON (plan_id) " + plan_cols
                        + " FROM plans WHERE tenant_id = $1 AND plan_id > $2"
                          " ORDER BY plan_id, version DESC LIMIT $3");
const statement list_subscriptions_q
  = sql("list_subscriptions",
        "SELECT " + subscription_cols
          + " FROM subscriptions WHERE tenant_id = $1"
            " AND (NOT $2::boolean OR status = $3)"
            " AND (NOT $4::boolean OR customer_id = $5)"
            " AND subscription_id > $6 ORDER BY subscription_id LIMIT $7");
const statement load_events_q
  = sql("load_events", "SELECT " + event_cols
                         + " FROM subscription_events WHERE tenant_id = $1"
                           " AND subscription_id = $2 AND seq >= $3"
                           " ORDER BY seq LIMIT $4");
const statement saga_steps_q = sql("saga_steps",
                                   "SELECT " + step_cols
                                     + " FROM saga_steps WHERE tenant_id = $1"
                                       " AND saga_id = $2 ORDER BY seq");
const statement list_sagas_q
  = sql("list_sagas", "SELECT " + saga_cols
                        + " FROM sagas WHERE tenant_id = $1"
                          " AND (NOT $2::boolean OR status = $3)"
                          " AND (NOT $4::boolean OR type = $5)"
                          " AND (NOT $6::boolean OR (created_at, saga_id)"
                          "      > (to_timestamp($7), $8::text))"
                          " ORDER BY created_at, saga_id LIMIT $9");
const statement list_timers_q
  = sql("list_timers", "SELECT " + timer_cols
                         + " FROM timers WHERE tenant_id = $1 AND owner = $2"
                           " AND state = 'pending' ORDER BY due_at, timer_id");
const statement invoice_by_key_q = sql("invoice_by_key",
                                       "SELECT " + invoice_cols
                                         + " FROM invoices WHERE tenant_id = $1"
                                           " AND idempotency_key = $2");
const statement list_invoices_q = sql(
  "list_invoices", "SELECT " + invoice_cols
                     + " FROM invoices WHERE tenant_id = $1"
                       " AND (NOT $2::boolean OR subscription_id = $3)"
                       " AND invoice_id > $4 ORDER BY invoice_id LIMIT $5");
const statement list_attempts_q
  = sql("list_attempts", "SELECT " + attempt_cols
                           + " FROM payment_attempts WHERE tenant_id = $1"
                             " AND invoice_id = $2"
                             " ORDER BY attempt_no, attempt_id");
const statement load_ledger_q
  = sql("load_ledger", "SELECT " + ledger_cols
                         + " FROM ledger_entries WHERE tenant_id = $1"
                           " AND subject = $2 ORDER BY entry_seq");
const statement ledger_balances_q
  = sql("ledger_balances",
        "SELECT account, currency,"
        " sum(CASE side WHEN 'debit' THEN amount_minor ELSE -amount_minor END)"
        "::bigint FROM ledger_entries WHERE tenant_id = $1"
        " GROUP BY account, currency ORDER BY account, currency");
const statement record_usage_q = sql(
  "record_usage",
  "INSERT INTO usage_events (tenant_id, usage_id, subscription_id, meter,"
  " quantity, at) SELECT $1, u.id, u.s, u.m, u.q, to_timestamp(u.t)"
  " FROM unnest($2::text[], $3::text[], $4::text[], $5::bigint[],"
  " $6::bigint[]) AS u(id, s, m, q, t) ON CONFLICT DO NOTHING RETURNING 1");
const statement sum_usage_q = sql(
  "sum_usage", "SELECT coalesce(sum(quantity), 0)::bigint FROM usage_events"
               " WHERE tenant_id = $1 AND subscription_id = $2 AND meter = $3"
               " AND at >= to_timestamp($4) AND at < to_timestamp($5)");
const statement list_audit_q = sql(
  "list_audit", "SELECT seq, actor, action, subject, detail_json,"
                " extract(epoch FROM at)::bigint FROM audit_log"
                " WHERE tenant_id = $1 AND seq > $2 ORDER BY seq LIMIT $3");
const statement inbox_contains_q
  = sql("inbox_contains",
        "SELECT EXISTS (SELECT 1 FROM processed_webhooks WHERE tenant_id = $1"
        " AND gateway = $2 AND event_id = $3)");
const statement reserve_key_q
  = sql("reserve_key",
        "INSERT INTO idempotency_keys (tenant_id, idempotency_key,"
        " request_sha256_hex, created_at) VALUES ($1, $2, $3, to_timestamp($4))"
        " ON CONFLICT DO NOTHING RETURNING 1");
const statement find_key_q = sql(
  "find_key", "SELECT idempotency_key, request_sha256_hex, response_status,"
              " response_body, extract(epoch FROM created_at)::bigint"
              " FROM idempotency_keys WHERE tenant_id = $1"
              " AND idempotency_key = $2");

// -- helpers ------------------------------------------------------------------

template <class T>
result<T> not_found(const std::string& what) {
  return make_error(errc::not_found, what + " not found");
}

// Pages hold 1..page_max rows whatever the caller asks: a zero limit still
// makes progress, a huge one cannot pull a whole table.
std::size_t page_limit(std::size_t limit) {
  return std::clamp<std::size_t>(limit, 1, page_max);
}

// Rows fetched with LIMIT limit+1: the extra row only says there is more.
template <class T, class Decode, class Key>
page<T> page_of(const pqxx::result& rows, std::size_t limit, Decode decode,
                Key key_of) {
  page<T> p;
  for (std::size_t i = 0; i < rows.size() && i < limit; ++i)
    p.items.push_back(decode(rows[i]));
  if (rows.size() > limit && !p.items.empty())
    p.next_cursor = key_of(p.items.back());
  return p;
}

// "<length>:<first><second>": a cursor of two strings that may hold anything.
std::string pair_cursor(const std::string& first, const std::string& second) {
  return std::to_string(first.size()) + ":" + first + second;
}

bool all_digits(std::string_view s) {
  return std::all_of(s.begin(), s.end(),
                     [](char c) { return c >= '0' && c <= '9'; });
}

result<std::pair<std::string, std::string>>
parse_pair_cursor(const std::string& cursor) {
  const auto colon = cursor.find(':');
  if (colon == std::string::npos || colon == 0 || colon > 9
      || !all_digits(std::string_view{cursor}.substr(0, colon)))
    return make_error(errc::invalid_argument, "malformed cursor");
  const std::size_t n = std::stoul(cursor.substr(0, colon));
  if (n > cursor.size() - colon - 1)
    return make_error(errc::invalid_argument, "malformed cursor");
  return std::pair{cursor.substr(colon + 1, n), cursor.substr(colon + 1 + n)};
}

// A signed decimal that fits an int64 comfortably (at most 18 digits).
result<std::int64_t> parse_int(const std::string& text) {
  const std::size_t sign = !text.empty() && text[0] == '-' ? 1 : 0;
  const auto digits = std::string_view{text}.substr(sign);
  if (digits.empty() || digits.size() > 18 || !all_digits(digits))
    return make_error(errc::invalid_argument, "malformed cursor");
  return static_cast<std::int64_t>(std::stoll(text));
}

result<std::int64_t> parse_int_cursor(const std::string& cursor) {
  if (cursor.empty())
    return std::int64_t{0};
  return parse_int(cursor);
}

// A saga cursor: (created_at, id) of the last saga of the previous page.
result<std::pair<std::int64_t, std::string>>
parse_saga_cursor(const std::string& cursor) {
  auto parsed = parse_pair_cursor(cursor);
  if (!parsed)
    return parsed.error();
  auto at = parse_int(parsed->first);
  if (!at)
    return at.error();
  return std::pair{*at, std::move(parsed->second)};
}

bool is_uri(const std::string& conninfo) {
  return conninfo.rfind("postgresql://", 0) == 0
         || conninfo.rfind("postgres://", 0) == 0;
}

// A bounded dial: libpq waits forever for an unroutable host by default.
std::string with_connect_timeout(const std::string& conninfo) {
  if (is_uri(conninfo) || conninfo.find("connect_timeout") != std::string::npos)
    return conninfo;
  return conninfo + " connect_timeout=" + std::to_string(connect_timeout_s);
}

// -- the store ----------------------------------------------------------------

class pg_store final : public store {
public:
  pg_store(const pg_store_config& config, std::string app_conninfo)
    : pool_(std::move(app_conninfo), config.pool_size, config.borrow_timeout),
      batch_max_(config.commit_batch_max) {
    policy_.max_retries = config.max_retries;
    policy_.backoff_min = config.retry_backoff_min;
    policy_.backoff_max = config.retry_backoff_max;
  }

  status probe();

  // -- writes -----------------------------------------------------------------

  result<commit_receipt> commit(const unit_of_work& work) override {
    return std::move(commit_many(std::span{&work, 1}).front());
  }

  std::vector<result<commit_receipt>>
  commit_many(std::span<const unit_of_work> works) override {
    return pg::commit_units(pool_, policy_, works, batch_max_);
  }

  // -- tenants and catalogue --------------------------------------------------

  status create_tenant(const tenant_record& t) override;
  result<tenant_record>
  find_tenant_by_key_hash(const std::string& api_key_sha256_hex) override;
  result<tenant_record> get_tenant(const tenant_id& t) override;
  result<customer_record> put_customer(const tenant_id& t,
                                       const customer_record& c,
                                       std::int64_t expected_version) override;
  result<customer_record> get_customer(const tenant_id& t,
                                       const customer_id& id) override;
  status add_plan_version(const tenant_id& t,
                          const plan_version_record& v) override;
  result<std::vector<plan_version_record>>
  list_plan_versions(const tenant_id& t, const plan_id& plan) override;
  result<page<plan_version_record>> list_plans(const tenant_id& t,
                                               const std::string& cursor,
                                               std::size_t limit) override;
  result<subscription_row> get_subscription(const tenant_id& t,
                                            const subscription_id& id) override;
  result<page<subscription_row>>
  list_subscriptions(const tenant_id& t, std::optional<std::string> status,
                     std::optional<customer_id> customer,
                     const std::string& cursor, std::size_t limit) override;

  // -- event store ------------------------------------------------------------

  result<std::vector<event_record>> load_events(const tenant_id& t,
                                                const subscription_id& s,
                                                std::int64_t from_seq) override;
  result<subscription_history> load_history(const tenant_id& t,
                                            const subscription_id& s) override;

  // -- sagas ------------------------------------------------------------------

  result<saga_record> get_saga(const tenant_id& t, const saga_id& id) override;
  result<std::vector<saga_step_record>>
  load_saga_steps(const tenant_id& t, const saga_id& id) override;
  result<page<saga_record>> list_sagas(const tenant_id& t, const saga_filter& f,
                                       const std::string& cursor,
                                       std::size_t limit) override;

  // -- timers, invoices, attempts, ledger, usage, audit -----------------------

  result<std::vector<timer_record>>
  list_timers(const tenant_id& t, const std::string& owner) override;
  result<invoice_record> get_invoice(const tenant_id& t,
                                     const invoice_id& id) override;
  result<invoice_record>
  find_invoice_by_key(const tenant_id& t,
                      const std::string& idempotency_key) override;
  result<page<invoice_record>>
  list_invoices(const tenant_id& t, std::optional<subscription_id> s,
                const std::string& cursor, std::size_t limit) override;
  result<payment_attempt_record>
  get_attempt(const tenant_id& t, const payment_attempt_id& id) override;
  result<std::vector<payment_attempt_record>>
  list_attempts(const tenant_id& t, const invoice_id& invoice) override;
  result<payment_attempt_record>
  find_attempt_by_charge(const tenant_id& t,
                         const std::string& charge_id) override;
  result<std::vector<ledger_entry_record>>
  load_ledger(const tenant_id& t, const std::string& subject) override;
  result<std::vector<account_balance>>
  ledger_balances(const tenant_id& t) override;
  result<usage_receipt> record_usage(const tenant_id& t,
                                     std::span<const usage_event> u) override;
  result<std::int64_t> sum_usage(const tenant_id& t, const subscription_id& s,
                                 const std::string& meter, instant from,
                                 instant to) override;
  result<page<audit_record>> list_audit(const tenant_id& t,
                                        const std::string& cursor,
                                        std::size_t limit) override;
  result<bool> inbox_contains(const tenant_id& t, const std::string& gateway,
                              const std::string& event_id) override;
  result<idempotency_outcome>
  begin_idempotent(const tenant_id& t, const std::string& key,
                   const std::string& request_sha256_hex, instant now) override;

  // -- system -----------------------------------------------------------------

  result<page<tenant_saga>> find_unfinished_sagas(const std::string& cursor,
                                                  std::size_t limit) override;
  result<std::vector<claimed_timer>>
  claim_due_timers(instant now, std::size_t limit, std::int64_t lease_s,
                   const std::string& claimer) override;
  result<std::vector<outbox_record>>
  fetch_unpublished(std::int64_t after_position, std::size_t limit) override;
  status mark_published(std::span<const std::int64_t> positions,
                        instant at) override;

  // -- gateway configs --------------------------------------------------------

  status put_gateway_config(const tenant_id& t,
                            const gateway_config_record& c) override;
  result<gateway_config_record>
  get_gateway_config(const tenant_id& t, const std::string& gateway) override;

  // -- HTTP idempotency keys, continued ---------------------------------------

  status release_idempotent(const tenant_id& t, const std::string& key,
                            const std::string& request_sha256_hex) override;

  // -- operational figures ----------------------------------------------------

  result<operational_figures> operational_stats(instant now) override;

  // -- scoped timer claims ----------------------------------------------------

  result<std::vector<claimed_timer>>
  claim_due_timers_in(const timer_claim_scope& scope, instant now,
                      std::size_t limit, std::int64_t lease_s,
                      const std::string& claimer) override;

private:
  using txn = pqxx::transaction_base;

  /// Events with seq >= from_seq, at most events_max of them.
  result<std::vector<event_record>>
  events_from(pg::connection& c, txn& tx, const tenant_id& t,
              const subscription_id& s, std::int64_t from_seq);

  /// One transaction scoped to tenant `t`: `f(connection&, txn&, op_context&)`
  /// returns result<T>; it commits when f returns a value.
  template <class T, class F>
  result<T> in_tenant(const tenant_id& t, F&& f) {
    if (t.empty())
      return make_error(errc::invalid_argument, "empty tenant id");
    return pg::run<T>(pool_, policy_,
                      [&](pg::connection& c, pg::op_context& ctx) -> result<T> {
                        pg::tenant_transaction tx{c, t.value};
                        auto r = f(c, tx.tx(), ctx);
                        if (r)
                          tx.commit();
                        return r;
                      });
  }

  /// One transaction with no tenant set: only the SECURITY DEFINER system
  /// functions can see rows in it.
  template <class T, class F>
  result<T> in_system(F&& f) {
    return pg::run<T>(pool_, policy_,
                      [&](pg::connection& c, pg::op_context& ctx) -> result<T> {
                        pqxx::work tx{c.conn};
                        auto r = f(c, tx, ctx);
                        if (r)
                          tx.commit();
                        return r;
                      });
  }

  /// One statement in autocommit, no transaction block: a single round trip.
  /// Only for reads (retrying one after a lost connection is harmless) that
  /// are tenant-scoped by a scoped_* function or go through a SECURITY
  /// DEFINER system function.
  template <class T, class F>
  result<T> in_autocommit(F&& f) {
    return pg::run<T>(pool_, policy_,
                      [&](pg::connection& c, pg::op_context& ctx) -> result<T> {
                        pqxx::nontransaction tx{c.conn};
                        return f(c, tx, ctx);
                      });
  }

  /// The first row of scoped_* function statement `s` (tenant first)
  /// decoded, or not_found; one round trip.
  template <class T, class Decode, class... Args>
  result<T> one_scoped(const tenant_id& t, const statement& s, const char* what,
                       Decode decode, Args&&... args) {
    if (t.empty())
      return make_error(errc::invalid_argument, "empty tenant id");
    return in_autocommit<T>(
      [&](pg::connection& c, txn& tx, pg::op_context&) -> result<T> {
        const auto rows = exec(c, tx, s, t.value, args...);
        if (rows.empty())
          return not_found<T>(what);
        return decode(rows[0]);
      });
  }

  /// The first row of `s` decoded, or not_found.
  template <class T, class Decode, class... Args>
  result<T> one(const tenant_id& t, const statement& s, const char* what,
                Decode decode, Args&&... args) {
    return in_tenant<T>(
      t, [&](pg::connection& c, txn& tx, pg::op_context&) -> result<T> {
        const auto rows = exec(c, tx, s, t.value, args...);
        if (rows.empty())
          return not_found<T>(what);
        return decode(rows[0]);
      });
  }

  /// Every row of `s` decoded.
  template <class T, class Decode, class... Args>
  result<std::vector<T>>
  all(const tenant_id& t, const statement& s, Decode decode, Args&&... args) {
    return in_tenant<std::vector<T>>(
      t,
      [&](pg::connection& c, txn& tx,
          pg::op_context&) -> result<std::vector<T>> {
        std::vector<T> out;
        for (const auto& row : exec(c, tx, s, t.value, args...))
          out.push_back(decode(row));
        return out;
      });
  }

  /// An activation waiting in load_history: answered by a read in flight,
  /// or handed the lead of the next one.
  struct history_wait {
    const tenant_id* tenant;
    const subscription_id* subscription;
    std::optional<result<subscription_history>> answer;
    bool lead = false;
  };

  /// One read of the histories of `batch` (all of one tenant), in batch
  /// order.
  std::vector<result<subscription_history>>
  read_histories(const tenant_id& t, const std::vector<history_wait*>& batch);

  pg::pool pool_;
  pg::retry_policy policy_;
  std::size_t batch_max_;
  std::mutex reads_m_;
  std::condition_variable reads_cv_;
  std::deque<history_wait*> reads_waiting_;  // guarded by reads_m_
  std::vector<tenant_id> reads_in_flight_;   // their tenants; reads_m_
};

status pg_store::probe() {
  auto r = in_system<bool>(
    [](pg::connection&, txn& tx, pg::op_context&) -> result<bool> {
      return tx
        .exec("SELECT rolsuper OR rolbypassrls FROM pg_roles"
              " WHERE rolname = current_user")[0][0]
        .as<bool>();
    });
  if (!r)
    return r.error();
  if (*r)
    return make_error(errc::invalid_argument,
                      "the working role bypasses row-level security (superuser "
                      "or BYPASSRLS): give app_conninfo a role like recur_app");
  return {};
}

// -- tenants and catalogue ----------------------------------------------------

status pg_store::create_tenant(const tenant_record& t) {
  if (t.id.empty())
    return make_error(errc::invalid_argument, "empty tenant id");
  auto r = in_system<bool>(
    [&](pg::connection& c, txn& tx, pg::op_context& ctx) -> result<bool> {
      ctx.expect(errc::already_exists, "create tenant");
      exec(c, tx, create_tenant_q, t.id.value, t.name, t.api_key_sha256_hex,
           t.test_mode, t.created_at.unix_s);
      return true;
    });
  if (!r)
    return r.error();
  return {};
}

result<tenant_record>
pg_store::find_tenant_by_key_hash(const std::string& api_key_sha256_hex) {
  return in_autocommit<tenant_record>(
    [&](pg::connection& c, txn& tx, pg::op_context&) -> result<tenant_record> {
      const auto rows = exec(c, tx, find_tenant_by_key_q, api_key_sha256_hex);
      if (rows.empty())
        return not_found<tenant_record>("tenant with that API key");
      return tenant_of(rows[0]);
    });
}

result<tenant_record> pg_store::get_tenant(const tenant_id& t) {
  return one_scoped<tenant_record>(t, scoped_get_tenant_q, "tenant", tenant_of);
}

result<customer_record> pg_store::put_customer(const tenant_id& t,
                                               const customer_record& c,
                                               std::int64_t expected_version) {
  return in_tenant<customer_record>(
    t,
    [&](pg::connection& conn, txn& tx,
        pg::op_context& ctx) -> result<customer_record> {
      auto out = c;
      if (expected_version == 0) {
        ctx.expect(errc::version_conflict, "create customer");
        exec(conn, tx, insert_customer_q, t.value, c.id.value, c.data_json,
             c.updated_at.unix_s);
        out.version = 1;
        return out;
      }
      const auto rows = exec(conn, tx, update_customer_q, t.value, c.id.value,
                             c.data_json, c.updated_at.unix_s,
                             expected_version);
      if (!rows.empty()) {
        out.version = rows[0][0].as<std::int64_t>();
        return out;
      }
      if (exec(conn, tx, get_customer_q, t.value, c.id.value).empty())
        return not_found<customer_record>("customer '" + c.id.value + "'");
      return make_error(errc::version_conflict,
                        "customer '" + c.id.value + "' was changed meanwhile");
    });
}

result<customer_record> pg_store::get_customer(const tenant_id& t,
                                               const customer_id& id) {
  return one_scoped<customer_record>(t, scoped_get_customer_q, "customer",
                                     customer_of, id.value);
}

status pg_store::add_plan_version(const tenant_id& t,
                                  const plan_version_record& v) {
  auto r = in_tenant<bool>(
    t, [&](pg::connection& c, txn& tx, pg::op_context& ctx) -> result<bool> {
      ctx.expect(errc::already_exists, "add plan version");
      exec(c, tx, insert_plan_q, t.value, v.plan.value, v.version,
           v.effective_at.unix_s, v.data_json);
      return true;
    });
  if (!r)
    return r.error();
  return {};
}

result<std::vector<plan_version_record>>
pg_store::list_plan_versions(const tenant_id& t, const plan_id& plan) {
  return all<plan_version_record>(t, plan_versions_q, plan_of, plan.value);
}

result<page<plan_version_record>>
pg_store::list_plans(const tenant_id& t, const std::string& cursor,
                     std::size_t limit) {
  const auto n = page_limit(limit);
  return in_tenant<page<plan_version_record>>(
    t,
    [&](pg::connection& c, txn& tx,
        pg::op_context&) -> result<page<plan_version_record>> {
      const auto rows = exec(c, tx, list_plans_q, t.value, cursor, n + 1);
      return page_of<plan_version_record>(rows, n, plan_of, [](const auto& p) {
        return p.plan.value;
      });
    });
}

result<subscription_row> pg_store::get_subscription(const tenant_id& t,
                                                    const subscription_id& id) {
  return one_scoped<subscription_row>(t, scoped_get_subscription_q,
                                      "subscription", subscription_of,
                                      id.value);
}

result<page<subscription_row>>
pg_store::list_subscriptions(const tenant_id& t,
                             std::optional<std::string> status,
                             std::optional<customer_id> customer,
                             const std::string& cursor, std::size_t limit) {
  const auto n = page_limit(limit);
  return in_tenant<page<subscription_row>>(
    t,
    [&](pg::connection& c, txn& tx,
        pg::op_context&) -> result<page<subscription_row>> {
      const auto rows
        = exec(c, tx, list_subscriptions_q, t.value, status.has_value(),
               status.value_or(""), customer.has_value(),
               customer ? customer->value : std::string{}, cursor, n + 1);
      return page_of<subscription_row>(
        rows, n, subscription_of, [](const auto& s) { return s.id.value; });
    });
}

// -- event store --------------------------------------------------------------

result<std::vector<event_record>>
pg_store::events_from(pg::connection& c, txn& tx, const tenant_id& t,
                      const subscription_id& s, std::int64_t from_seq) {
  const auto rows = exec(c, tx, load_events_q, t.value, s.value, from_seq,
                         events_max + 1);
  if (static_cast<std::int64_t>(rows.size()) > events_max)
    return make_error(errc::storage_error, "more than "
                                             + std::to_string(events_max)
                                             + " events to load for " + s.value
                                             + ": take snapshots");
  std::vector<event_record> out;
  out.reserve(rows.size());
  for (const auto& row : rows)
    out.push_back(event_of(row));
  return out;
}

result<std::vector<event_record>>
pg_store::load_events(const tenant_id& t, const subscription_id& s,
                      std::int64_t from_seq) {
  return in_tenant<std::vector<event_record>>(
    t,
    [&](pg::connection& c, txn& tx,
        pg::op_context&) -> result<std::vector<event_record>> {
      return events_from(c, tx, t, s, from_seq);
    });
}

// Group reads. An activation leads a read when none of its tenant is in
// flight and fewer than history_readers_max are; any other waits. A leader
// takes every waiting activation of its tenant (up to history_batch_max) into
// its read, answers them all, and hands the lead on to the longest-waiting
// activations that may now lead. Under a burst of activations on many
// threads, one statement answers tens of them; a lone activation still reads
// at once, and one tenant's burst does not hold up another's reads.
result<subscription_history> pg_store::load_history(const tenant_id& t,
                                                    const subscription_id& s) {
  if (t.empty())
    return make_error(errc::invalid_argument, "empty tenant id");
  history_wait me{&t, &s, std::nullopt};
  std::unique_lock lock{reads_m_};
  const auto may_lead = [this](const tenant_id& x) {
    return reads_in_flight_.size() < history_readers_max
           && std::find(reads_in_flight_.begin(), reads_in_flight_.end(), x)
                == reads_in_flight_.end();
  };
  if (may_lead(t)) {
    reads_in_flight_.push_back(t);
  } else {
    reads_waiting_.push_back(&me);
    reads_cv_.wait(lock, [&] { return me.answer.has_value() || me.lead; });
    if (me.answer)
      return std::move(*me.answer);
  }
  std::vector<history_wait*> batch{&me};
  for (auto it = reads_waiting_.begin();
       it != reads_waiting_.end() && batch.size() < history_batch_max;) {
    if (*(*it)->tenant == t) {
      batch.push_back(*it);
      it = reads_waiting_.erase(it);
    } else {
      ++it;
    }
  }
  lock.unlock();
  std::vector<result<subscription_history>> answers;
  try {
    answers = read_histories(t, batch);
  } catch (const std::exception& e) { // the followers must be answered
    answers.assign(batch.size(),
                   make_error(errc::storage_error,
                              std::string{"history read: "} + e.what()));
  }
  lock.lock();
  for (std::size_t i = 1; i < batch.size(); ++i)
    batch[i]->answer = std::move(answers[i]);
  std::erase(reads_in_flight_, t);
  for (auto it = reads_waiting_.begin(); it != reads_waiting_.end();) {
    if (may_lead(*(*it)->tenant)) {
      (*it)->lead = true;
      reads_in_flight_.push_back(*(*it)->tenant);
      it = reads_waiting_.erase(it);
    } else {
      ++it;
    }
  }
  lock.unlock();
  reads_cv_.notify_all();
  return std::move(answers.front());
}

std::vector<result<subscription_history>>
pg_store::read_histories(const tenant_id& t,
                         const std::vector<history_wait*>& batch) {
  pg::array_builder ids{batch.size() * 24};
  for (const auto* w : batch)
    ids.add(w->subscription->value);
  const std::string id_array = ids.take();
  // One round trip for the batch: autocommit, one statement.
  auto read = in_autocommit<std::vector<result<subscription_history>>>(
    [&](pg::connection& c, txn& tx, pg::op_context&)
      -> result<std::vector<result<subscription_history>>> {
      const auto rows
        = exec(c, tx, scoped_load_histories_q, t.value, id_array,
               events_max + 1);
      std::vector<subscription_history> hs(batch.size());
      for (const auto& r : rows) {
        const auto pos = r[0].as<std::int64_t>();
        if (pos < 1 || pos > static_cast<std::int64_t>(batch.size()))
          return make_error(errc::storage_error,
                            "history row for position " + std::to_string(pos)
                              + " of " + std::to_string(batch.size()));
        auto& h = hs[static_cast<std::size_t>(pos - 1)];
        const auto& s = *batch[static_cast<std::size_t>(pos - 1)]->subscription;
        if (r[1].as<int>() == 0) {
          h.snapshot = snapshot_record{s, r[2].as<std::int64_t>(),
                                       r[4].as<std::string>(),
                                       pg::as_instant(r[5])};
          continue;
        }
        h.tail.push_back(event_record{s, r[2].as<std::int64_t>(),
                                      r[3].as<std::string>(),
                                      r[4].as<std::string>(),
                                      pg::as_instant(r[5])});
      }
      std::vector<result<subscription_history>> out;
      out.reserve(hs.size());
      for (std::size_t i = 0; i < hs.size(); ++i) {
        auto& h = hs[i];
        if (static_cast<std::int64_t>(h.tail.size()) > events_max) {
          out.emplace_back(make_error(
            errc::storage_error, "more than " + std::to_string(events_max)
                                   + " events to load for "
                                   + batch[i]->subscription->value
                                   + ": take snapshots"));
          continue;
        }
        const std::int64_t after = h.snapshot ? h.snapshot->seq : 0;
        h.version = h.tail.empty() ? after : h.tail.back().seq;
        out.emplace_back(std::move(h));
      }
      return out;
    });
  if (!read)
    return std::vector<result<subscription_history>>(batch.size(),
                                                     read.error());
  return std::move(*read);
}

// -- sagas --------------------------------------------------------------------

result<saga_record> pg_store::get_saga(const tenant_id& t, const saga_id& id) {
  return one_scoped<saga_record>(
    t, scoped_get_saga_q, "saga", [](const pqxx::row& r) { return saga_of(r); },
    id.value);
}

result<std::vector<saga_step_record>>
pg_store::load_saga_steps(const tenant_id& t, const saga_id& id) {
  return all<saga_step_record>(t, saga_steps_q, step_of, id.value);
}

result<page<saga_record>>
pg_store::list_sagas(const tenant_id& t, const saga_filter& f,
                     const std::string& cursor, std::size_t limit) {
  const auto n = page_limit(limit);
  std::pair<std::int64_t, std::string> after{0, ""};
  if (!cursor.empty()) {
    auto parsed = parse_saga_cursor(cursor);
    if (!parsed)
      return parsed.error();
    after = std::move(*parsed);
  }
  return in_tenant<page<saga_record>>(
    t,
    [&](pg::connection& c, txn& tx,
        pg::op_context&) -> result<page<saga_record>> {
      const auto rows = exec(c, tx, list_sagas_q, t.value, f.status.has_value(),
                             std::string{f.status ? to_string(*f.status) : ""},
                             f.type.has_value(), f.type.value_or(""),
                             !cursor.empty(), after.first, after.second, n + 1);
      return page_of<saga_record>(
        rows, n, [](const pqxx::row& r) { return saga_of(r); },
        [](const saga_record& s) {
          return pair_cursor(std::to_string(s.created_at.unix_s), s.id.value);
        });
    });
}

// -- timers, invoices, attempts, ledger, usage, audit -------------------------

result<std::vector<timer_record>>
pg_store::list_timers(const tenant_id& t, const std::string& owner) {
  return all<timer_record>(t, list_timers_q, timer_of, owner);
}

result<invoice_record> pg_store::get_invoice(const tenant_id& t,
                                             const invoice_id& id) {
  return one_scoped<invoice_record>(t, scoped_get_invoice_q, "invoice",
                                    invoice_of, id.value);
}

result<invoice_record>
pg_store::find_invoice_by_key(const tenant_id& t,
                              const std::string& idempotency_key) {
  return one<invoice_record>(t, invoice_by_key_q, "invoice", invoice_of,
                             idempotency_key);
}

result<page<invoice_record>>
pg_store::list_invoices(const tenant_id& t, std::optional<subscription_id> s,
                        const std::string& cursor, std::size_t limit) {
  const auto n = page_limit(limit);
  return in_tenant<page<invoice_record>>(
    t,
    [&](pg::connection& c, txn& tx,
        pg::op_context&) -> result<page<invoice_record>> {
      const auto rows = exec(c, tx, list_invoices_q, t.value, s.has_value(),
                             s ? s->value : std::string{}, cursor, n + 1);
      return page_of<invoice_record>(rows, n, invoice_of,
                                     [](const auto& i) { return i.id.value; });
    });
}

result<payment_attempt_record>
pg_store::get_attempt(const tenant_id& t, const payment_attempt_id& id) {
  return one_scoped<payment_attempt_record>(t, scoped_get_attempt_q,
                                            "payment attempt", attempt_of,
                                            id.value);
}

result<std::vector<payment_attempt_record>>
pg_store::list_attempts(const tenant_id& t, const invoice_id& invoice) {
  return all<payment_attempt_record>(t, list_attempts_q, attempt_of,
                                     invoice.value);
}

result<payment_attempt_record>
pg_store::find_attempt_by_charge(const tenant_id& t,
                                 const std::string& charge_id) {
  return one_scoped<payment_attempt_record>(
    t, scoped_find_attempt_by_charge_q, "payment attempt with that charge id",
    attempt_of, charge_id);
}

result<std::vector<ledger_entry_record>>
pg_store::load_ledger(const tenant_id& t, const std::string& subject) {
  return all<ledger_entry_record>(t, load_ledger_q, ledger_of, subject);
}

result<std::vector<account_balance>>
pg_store::ledger_balances(const tenant_id& t) {
  return all<account_balance>(t, ledger_balances_q, [](const pqxx::row& r) {
    return account_balance{account_from(r[0].as<std::string>()),
                           r[1].as<std::string>(), r[2].as<std::int64_t>()};
  });
}

result<usage_receipt> pg_store::record_usage(const tenant_id& t,
                                             std::span<const usage_event> u) {
  if (u.size() > usage_batch_max)
    return make_error(errc::invalid_argument,
                      "more than " + std::to_string(usage_batch_max)
                        + " usage events in one call");
  if (u.empty())
    return usage_receipt{};
  pg::array_builder id, sub, meter, quantity, at;
  for (const auto& e : u) {
    id.add(e.id);
    sub.add(e.subscription.value);
    meter.add(e.meter);
    quantity.add(e.quantity);
    at.add(e.at);
  }
  const std::array<std::string, 5> arrays{id.take(), sub.take(), meter.take(),
                                          quantity.take(), at.take()};
  return in_tenant<usage_receipt>(
    t,
    [&](pg::connection& c, txn& tx,
        pg::op_context& ctx) -> result<usage_receipt> {
      ctx.expect(errc::constraint_violation, "record usage");
      const auto inserted = exec(c, tx, record_usage_q, t.value, arrays[0],
                                 arrays[1], arrays[2], arrays[3], arrays[4]);
      const auto accepted = static_cast<std::int64_t>(inserted.size());
      return usage_receipt{accepted,
                           static_cast<std::int64_t>(u.size()) - accepted};
    });
}

result<std::int64_t>
pg_store::sum_usage(const tenant_id& t, const subscription_id& s,
                    const std::string& meter, instant from, instant to) {
  return in_tenant<std::int64_t>(
    t,
    [&](pg::connection& c, txn& tx, pg::op_context&) -> result<std::int64_t> {
      return exec(c, tx, sum_usage_q, t.value, s.value, meter, from.unix_s,
                  to.unix_s)[0][0]
        .as<std::int64_t>();
    });
}

result<page<audit_record>> pg_store::list_audit(const tenant_id& t,
                                                const std::string& cursor,
                                                std::size_t limit) {
  const auto n = page_limit(limit);
  auto after = parse_int_cursor(cursor);
  if (!after)
    return after.error();
  return in_tenant<page<audit_record>>(
    t,
    [&](pg::connection& c, txn& tx,
        pg::op_context&) -> result<page<audit_record>> {
      const auto rows = exec(c, tx, list_audit_q, t.value, *after, n + 1);
      return page_of<audit_record>(
        rows, n,
        [](const pqxx::row& r) {
          return audit_record{r[0].as<std::int64_t>(),
                              {r[1].as<std::string>(), r[2].as<std::string>(),
                               r[3].as<std::string>(), r[4].as<std::string>(),
                               pg::as_instant(r[5])}};
        },
        [](const audit_record& a) { return std::to_string(a.seq); });
    });
}

result<bool> pg_store::inbox_contains(const tenant_id& t,
                                      const std::string& gateway,
                                      const std::string& event_id) {
  return in_tenant<bool>(
    t, [&](pg::connection& c, txn& tx, pg::op_context&) -> result<bool> {
      return exec(c, tx, inbox_contains_q, t.value, gateway, event_id)[0][0]
        .as<bool>();
    });
}

result<idempotency_outcome>
pg_store::begin_idempotent(const tenant_id& t, const std::string& key,
                           const std::string& request_sha256_hex, instant now) {
  return in_tenant<idempotency_outcome>(
    t,
    [&](pg::connection& c, txn& tx,
        pg::op_context&) -> result<idempotency_outcome> {
      if (!exec(c, tx, reserve_key_q, t.value, key, request_sha256_hex,
                now.unix_s)
             .empty())
        return idempotency_outcome{idempotency_state::new_request, {}};
      const auto rows = exec(c, tx, find_key_q, t.value, key);
      const auto& r = rows.at(0);
      if (r[1].as<std::string>() != request_sha256_hex)
        return make_error(errc::idempotency_conflict,
                          "idempotency key '" + key
                            + "' was used with another request");
      if (r[2].is_null())
        return idempotency_outcome{idempotency_state::in_flight, {}};
      return idempotency_outcome{
        idempotency_state::replay,
        idempotency_record{r[0].as<std::string>(), r[1].as<std::string>(),
                           r[2].as<std::int32_t>(), r[3].as<std::string>(),
                           pg::as_instant(r[4])}};
    });
}

// -- system -------------------------------------------------------------------

result<page<store::tenant_saga>>
pg_store::find_unfinished_sagas(const std::string& cursor, std::size_t limit) {
  const auto n = page_limit(limit);
  std::pair<std::string, std::string> after;
  if (!cursor.empty()) {
    auto parsed = parse_pair_cursor(cursor);
    if (!parsed)
      return parsed.error();
    after = *parsed;
  }
  return in_system<page<tenant_saga>>(
    [&](pg::connection& c, txn& tx,
        pg::op_context&) -> result<page<tenant_saga>> {
      const auto rows = exec(c, tx, unfinished_sagas_q, cursor.empty(),
                             after.first, after.second, n + 1);
      return page_of<tenant_saga>(
        rows, n,
        [](const pqxx::row& r) {
          return tenant_saga{tenant_id{r[0].as<std::string>()}, saga_of(r, 1)};
        },
        [](const tenant_saga& s) {
          return pair_cursor(s.tenant.value, s.saga.id.value);
        });
    });
}

result<std::vector<claimed_timer>>
pg_store::claim_due_timers(instant now, std::size_t limit, std::int64_t lease_s,
                           const std::string& claimer) {
  if (lease_s <= 0)
    return make_error(errc::invalid_argument, "a lease must last some time");
  if (limit == 0)
    return std::vector<claimed_timer>{};
  const auto n = static_cast<std::int64_t>(std::min(limit, claim_max));
  return in_system<std::vector<claimed_timer>>(
    [&](pg::connection& c, txn& tx,
        pg::op_context&) -> result<std::vector<claimed_timer>> {
      std::vector<claimed_timer> out;
      for (const auto& r :
           exec(c, tx, claim_timers_q, now.unix_s, n, lease_s, claimer)) {
        timer_record timer{r[1].as<std::string>(), r[2].as<std::string>(),
                           r[3].as<std::string>(), pg::as_instant(r[4]),
                           r[5].as<std::string>()};
        out.push_back({tenant_id{r[0].as<std::string>()}, std::move(timer),
                       pg::as_instant(r[6])});
      }
      return out;
    });
}

result<std::vector<outbox_record>>
pg_store::fetch_unpublished(std::int64_t after_position, std::size_t limit) {
  if (limit == 0)
    return std::vector<outbox_record>{};
  const auto n = page_limit(limit);
  return in_system<std::vector<outbox_record>>(
    [&](pg::connection& c, txn& tx,
        pg::op_context&) -> result<std::vector<outbox_record>> {
      std::vector<outbox_record> out;
      for (const auto& r : exec(c, tx, fetch_unpublished_q, after_position, n))
        out.push_back(outbox_of(r));
      return out;
    });
}

status pg_store::mark_published(std::span<const std::int64_t> positions,
                                instant at) {
  if (positions.size() > positions_max)
    return make_error(errc::invalid_argument, "more than "
                                                + std::to_string(positions_max)
                                                + " positions in one call");
  if (positions.empty())
    return {};
  pg::array_builder list;
  for (const auto p : positions)
    list.add(p);
  const auto literal = list.take();
  auto r = in_system<bool>(
    [&](pg::connection& c, txn& tx, pg::op_context&) -> result<bool> {
      exec(c, tx, mark_published_q, literal, at.unix_s);
      return true;
    });
  if (!r)
    return r.error();
  return {};
}

status validate(const pg_store_config& config) {
  if (config.conninfo.empty())
    return make_error(errc::invalid_argument, "empty conninfo");
  if (config.pool_size == 0 || config.pool_size > pool_size_max)
    return make_error(errc::invalid_argument,
                      "pool_size must be in 1.."
                        + std::to_string(pool_size_max));
  if (config.max_retries < 0 || config.max_retries > max_retries_max)
    return make_error(errc::invalid_argument,
                      "max_retries must be in 0.."
                        + std::to_string(max_retries_max));
  if (config.commit_batch_max == 0)
    return make_error(errc::invalid_argument,
                      "commit_batch_max must be positive");
  return {};
}

// -- gateway configs (migration 0008) -----------------------------------------

const statement put_gateway_config_q = sql(
  "put_gateway_config",
  "INSERT INTO gateway_configs (tenant_id, gateway, config_json, updated_at)"
  " VALUES ($1, $2, $3, to_timestamp($4)) ON CONFLICT (tenant_id, gateway)"
  " DO UPDATE SET config_json = EXCLUDED.config_json,"
  " updated_at = EXCLUDED.updated_at");
// Deletes only an unanswered reservation of the same request.
const statement release_key_q
  = sql("release_key",
        "DELETE FROM idempotency_keys WHERE tenant_id = $1"
        " AND idempotency_key = $2 AND request_sha256_hex = $3"
        " AND response_status IS NULL RETURNING 1");

gateway_config_record gateway_config_of(const pqxx::row& r) {
  return {r[0].as<std::string>(), r[1].as<std::string>(),
          pg::as_instant(r[2])};
}

status pg_store::put_gateway_config(const tenant_id& t,
                                    const gateway_config_record& c) {
  if (c.gateway.empty())
    return make_error(errc::invalid_argument, "empty gateway");
  auto r = in_tenant<bool>(
    t, [&](pg::connection& conn, txn& tx, pg::op_context& ctx) -> result<bool> {
      ctx.expect(errc::already_exists, "put gateway config");
      exec(conn, tx, put_gateway_config_q, t.value, c.gateway, c.config_json,
           c.updated_at.unix_s);
      return true;
    });
  if (!r)
    return r.error();
  return {};
}

result<gateway_config_record>
pg_store::get_gateway_config(const tenant_id& t, const std::string& gateway) {
  return one_scoped<gateway_config_record>(t, scoped_get_gateway_config_q,
                                           "gateway config", gateway_config_of,
                                           gateway);
}

result<store::operational_figures> pg_store::operational_stats(instant now) {
  return in_system<operational_figures>(
    [&](pg::connection& c, txn& tx,
        pg::op_context&) -> result<operational_figures> {
      operational_figures out;
      for (const auto& r : exec(c, tx, saga_counts_q)) {
        auto st = saga_status_from_string(r[1].as<std::string>());
        if (!st)
          return st.error();
        out.sagas.push_back(
          saga_count{r[0].as<std::string>(), *st, r[2].as<std::int64_t>()});
      }
      const auto t = exec(c, tx, timer_counts_q, now.unix_s);
      out.timers_pending = t[0][0].as<std::int64_t>();
      out.timers_due = t[0][1].as<std::int64_t>();
      return out;
    });
}

status pg_store::release_idempotent(const tenant_id& t, const std::string& key,
                                    const std::string& request_sha256_hex) {
  auto r = in_tenant<bool>(
    t, [&](pg::connection& c, txn& tx, pg::op_context&) -> result<bool> {
      if (!exec(c, tx, release_key_q, t.value, key, request_sha256_hex)
             .empty())
        return true;
      const auto rows = exec(c, tx, find_key_q, t.value, key);
      if (rows.empty())
        return make_error(errc::not_found,
                          "idempotency key '" + key + "' not found");
      if (rows[0][1].as<std::string>() != request_sha256_hex)
        return make_error(errc::idempotency_conflict,
                          "idempotency key '" + key
                            + "' belongs to another request");
      return make_error(errc::already_exists,
                        "idempotency key '" + key + "' holds an answer");
    });
  if (!r)
    return r.error();
  return {};
}

// Scoped claims (migration 0009): one tenant's timers (test clocks) or
// every tenant's but test-mode ones' (the wall-clock timer service).
const statement claim_scoped_timers_q
  = sql("claim_scoped_timers",
        "SELECT tenant_id, " + timer_cols
          + ", extract(epoch FROM lease_until)::bigint"
            " FROM recur_claim_scoped_timers($1, $2, to_timestamp($3), $4,"
            " $5, $6)");

result<std::vector<claimed_timer>>
pg_store::claim_due_timers_in(const timer_claim_scope& scope, instant now,
                              std::size_t limit, std::int64_t lease_s,
                              const std::string& claimer) {
  if (lease_s <= 0)
    return make_error(errc::invalid_argument, "a lease must last some time");
  if (limit == 0)
    return std::vector<claimed_timer>{};
  const auto n = static_cast<std::int64_t>(std::min(limit, claim_max));
  const std::string tenant = scope.tenant ? scope.tenant->value : "";
  return in_system<std::vector<claimed_timer>>(
    [&](pg::connection& c, txn& tx,
        pg::op_context&) -> result<std::vector<claimed_timer>> {
      std::vector<claimed_timer> out;
      for (const auto& r :
           exec(c, tx, claim_scoped_timers_q, tenant, scope.skip_test_tenants,
                now.unix_s, n, lease_s, claimer)) {
        timer_record timer{r[1].as<std::string>(), r[2].as<std::string>(),
                           r[3].as<std::string>(), pg::as_instant(r[4]),
                           r[5].as<std::string>()};
        out.push_back({tenant_id{r[0].as<std::string>()}, std::move(timer),
                       pg::as_instant(r[6])});
      }
      return out;
    });
}

} // namespace

result<std::string> pg_app_conninfo(const pg_store_config& config) {
  if (!config.app_conninfo.empty())
    return with_connect_timeout(config.app_conninfo);
  if (is_uri(config.conninfo))
    return make_error(errc::invalid_argument,
                      "conninfo is a URI: give app_conninfo explicitly");
  return with_connect_timeout(config.conninfo + " user=recur_app");
}

result<std::unique_ptr<store>> open_pg_store(const pg_store_config& config) {
  if (auto ok = validate(config); !ok)
    return ok.error();
  auto app = pg_app_conninfo(config);
  if (!app)
    return app.error();
  auto migrated = apply_pg_migrations(with_connect_timeout(config.conninfo),
                                      pg_embedded_migrations());
  if (!migrated)
    return migrated.error();
  auto s = std::make_unique<pg_store>(config, std::move(*app));
  if (auto ok = s->probe(); !ok)
    return ok.error();
  return std::unique_ptr<store>{std::move(s)};
}

} // namespace recur
