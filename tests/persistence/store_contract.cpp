// The store contract: what every implementation of recur::store must do,
// checked through the port only. Each backend's test executable compiles this
// file and instantiates `store_contract` with a harness of its own.
//
// Choices the port leaves open, fixed here so that the backends agree:
// - Keys are per tenant: two tenants may use the same subscription, saga,
//   invoice, timer, ledger, inbox, idempotency, usage or customer ids without
//   colliding (a global key would let one tenant block or probe another).
// - An update of a row that does not exist for that tenant (saga, invoice,
//   attempt, customer, idempotency completion, saga step, timer completion) is
//   `not_found`, and fails the whole unit of work.
// - Completing a timer that is not pending (never scheduled, already completed
//   or cancelled) is `not_found`: a second firing cannot commit its effects.
// - A completed timer id stays taken (scheduling it again changes nothing);
//   a cancelled timer id can be scheduled again.
// - Reads of lists (events, steps, timers, attempts, ledger, plan versions)
//   for an unknown key return an empty list, never `not_found`.
// - Outbox positions and audit seqs increase in commit order; the suite never
//   assumes where they start or that they have no gaps.
// - JSON fields hold JSON in the canonical text form PostgreSQL's jsonb prints
//   (`{"n": 1}`), so that both backends return it byte for byte.

#include "tests/persistence/store_contract.hpp"

#include <algorithm>
#include <atomic>
#include <optional>
#include <string>
#include <thread>
#include <utility>
#include <vector>

using namespace recur;

namespace {

// -- result helpers -----------------------------------------------------------

/// "ok" or the error's code name: what tests compare.
template <class T>
std::string code_of(const result<T>& r) {
  return r ? std::string{"ok"} : std::string{to_string(r.code())};
}

/// The code and detail of a failed result, for failure messages.
template <class T>
std::string explain(const result<T>& r) {
  return r ? std::string{"ok"}
           : std::string{to_string(r.code())} + ": " + r.error().detail;
}

constexpr std::size_t pages_max = 100; // a paging loop that never ends fails

/// Every item of a paged listing, fetched `limit` at a time; fails the test if
/// a page is larger than `limit` or the cursor never runs out.
template <class T, class Fetch>
std::vector<T> all_pages(Fetch fetch, std::size_t limit) {
  std::vector<T> out;
  std::string cursor;
  for (std::size_t i = 0; i < pages_max; ++i) {
    result<page<T>> p = fetch(cursor, limit);
    if (!p) {
      ADD_FAILURE() << "page " << i << ": " << explain(p);
      return out;
    }
    EXPECT_LE(p->items.size(), limit);
    out.insert(out.end(), p->items.begin(), p->items.end());
    if (p->next_cursor.empty())
      return out;
    cursor = p->next_cursor;
  }
  ADD_FAILURE() << "pagination did not end after " << pages_max << " pages";
  return out;
}

template <class T, class Key>
std::vector<std::string> ids_of(const std::vector<T>& items, Key key) {
  std::vector<std::string> out;
  out.reserve(items.size());
  for (const T& x : items)
    out.push_back(key(x));
  return out;
}

std::vector<std::string> sorted(std::vector<std::string> v) {
  std::sort(v.begin(), v.end());
  return v;
}

std::string hex64(char c) {
  return std::string(64, c);
}

} // namespace

// -- fixture ------------------------------------------------------------------

void store_contract::SetUp() {
  harness_ = GetParam()();
  ASSERT_NE(harness_, nullptr);
  ASSERT_TRUE(db().create_tenant(tenant(tenant_a(), hex64('a'))));
  ASSERT_TRUE(db().create_tenant(tenant(tenant_b(), hex64('b'))));
}

void store_contract::TearDown() {
  harness_.reset();
}

tenant_record store_contract::tenant(const tenant_id& id,
                                     std::string key_hash) {
  return tenant_record{id, "Tenant " + id.value, std::move(key_hash), false,
                       at(0)};
}

event_append store_contract::append(const std::string& sub,
                                    std::int64_t expected_version, int count,
                                    std::int64_t first_at_s) {
  event_append a{subscription_id{sub}, expected_version, {}};
  for (int i = 0; i < count; ++i) {
    const std::int64_t seq = expected_version + i + 1;
    a.events.push_back(new_event{"e" + std::to_string(seq),
                                 R"({"seq": )" + std::to_string(seq) + "}",
                                 at(first_at_s + i)});
  }
  return a;
}

snapshot_record store_contract::snapshot(const std::string& sub,
                                         std::int64_t seq) {
  return snapshot_record{subscription_id{sub}, seq,
                         R"({"upto": )" + std::to_string(seq) + "}", at(seq)};
}

saga_record store_contract::saga(const std::string& id, const std::string& type,
                                 std::int64_t created_at_s,
                                 const std::string& sub) {
  saga_record s;
  s.id = saga_id{id};
  s.type = type;
  s.subscription = subscription_id{sub};
  s.data_json = R"({"n": 0})";
  s.created_at = at(created_at_s);
  s.updated_at = at(created_at_s);
  return s;
}

saga_update store_contract::saga_move(const std::string& id,
                                      std::int64_t expected_version,
                                      saga_status status, std::int32_t step) {
  return saga_update{saga_id{id},
                     expected_version,
                     status,
                     step,
                     R"({"step": )" + std::to_string(step) + "}",
                     at(1000 + step)};
}

saga_step_record store_contract::saga_step(const std::string& saga,
                                           std::int32_t step,
                                           const std::string& name) {
  return saga_step_record{saga_id{saga}, 0,    step,          step_kind::action,
                          name,          "ok", "did " + name, at(step)};
}

timer_record
store_contract::timer(const std::string& id, const std::string& owner,
                      const std::string& kind, std::int64_t due_at_s) {
  return timer_record{id, owner, kind, at(due_at_s),
                      R"({"due": )" + std::to_string(due_at_s) + "}"};
}

outbox_message store_contract::message(const std::string& id,
                                       const std::string& key) {
  return outbox_message{
    id,   key, "subscription.activated", key, R"({"id": ")" + id + R"("})",
    at(0)};
}

invoice_record store_contract::invoice(const std::string& id,
                                       const std::string& sub,
                                       const std::string& key) {
  invoice_record r;
  r.id = invoice_id{id};
  r.subscription = subscription_id{sub};
  r.idempotency_key = key;
  r.status = "open";
  r.currency = "USD";
  r.total_minor = 1000;
  r.amount_due_minor = 1000;
  r.period_start = at(0);
  r.period_end = at(30 * seconds_per_day);
  r.lines_json = "[]";
  r.created_at = at(0);
  r.updated_at = at(0);
  return r;
}

invoice_update store_contract::invoice_move(const std::string& id,
                                            std::int64_t expected_version,
                                            const std::string& status) {
  return invoice_update{invoice_id{id}, expected_version, status, 1000,
                        at(500)};
}

payment_attempt_record
store_contract::attempt(const std::string& id, const std::string& invoice,
                        const std::string& key, std::int32_t attempt_no) {
  payment_attempt_record r;
  r.id = payment_attempt_id{id};
  r.invoice = invoice_id{invoice};
  r.idempotency_key = key;
  r.attempt_no = attempt_no;
  r.status = "pending";
  r.amount_minor = 1000;
  r.currency = "USD";
  r.created_at = at(attempt_no);
  r.updated_at = at(attempt_no);
  return r;
}

payment_attempt_update
store_contract::attempt_move(const std::string& id,
                             std::int64_t expected_version,
                             const std::string& status) {
  return payment_attempt_update{payment_attempt_id{id}, expected_version,
                                status,
                                status == "failed" ? "insufficient_funds" : "",
                                at(600), ""};
}

ledger_append store_contract::ledger_tx(const std::string& id,
                                        const std::string& subject,
                                        std::int64_t amount_minor,
                                        const std::string& currency_code) {
  const currency cur = currency::of(currency_code);
  auto tx = ledger_transaction::make(
    "memo " + id,
    {posting{account::receivable, entry_side::debit, money{amount_minor, cur}},
     posting{account::revenue, entry_side::credit, money{amount_minor, cur}}});
  RECUR_ASSERT(tx.has_value());
  return ledger_append{id, std::move(tx).value(), at(0), subject};
}

audit_entry store_contract::audit(const std::string& action,
                                  std::int64_t at_s) {
  return audit_entry{"system", action, "sub_1", "{}", at(at_s)};
}

customer_record store_contract::customer(const std::string& id,
                                         const std::string& data_json) {
  return customer_record{customer_id{id}, data_json, 0, at(0)};
}

plan_version_record store_contract::plan_version(const std::string& plan,
                                                 std::int32_t version) {
  return plan_version_record{plan_id{plan}, version,
                             at(std::int64_t{version} * 100),
                             R"({"version": )" + std::to_string(version) + "}"};
}

subscription_row
store_contract::subscription(const std::string& id, const std::string& customer,
                             const std::string& status, std::int64_t version) {
  return subscription_row{subscription_id{id},
                          customer_id{customer},
                          plan_id{"plan_basic"},
                          status,
                          version,
                          R"({"v": )" + std::to_string(version) + "}",
                          at(version)};
}

usage_event store_contract::usage(const std::string& id, const std::string& sub,
                                  const std::string& meter,
                                  std::int64_t quantity, std::int64_t at_s) {
  return usage_event{id, subscription_id{sub}, meter, quantity, at(at_s)};
}

inbox_entry store_contract::inbox(const std::string& gateway,
                                  const std::string& event_id) {
  return inbox_entry{gateway, event_id, at(0)};
}

commit_receipt store_contract::commit_ok(const unit_of_work& w) {
  auto r = db().commit(w);
  if (!r) {
    ADD_FAILURE() << "commit failed: " << explain(r);
    return {};
  }
  return std::move(r).value();
}

void store_contract::commit_fails(const unit_of_work& w, errc code) {
  auto r = db().commit(w);
  EXPECT_EQ(code_of(r), to_string(code)) << explain(r);
}

// == event store ==============================================================

TEST_P(store_contract,
       the_first_append_is_at_version_zero_and_numbers_from_one) {
  auto w = work(tenant_a());
  w.events.push_back(append("sub_1", 0, 3));
  auto receipt = commit_ok(w);
  ASSERT_EQ(receipt.event_versions, std::vector<std::int64_t>{3});

  auto events = db().load_events(tenant_a(), subscription_id{"sub_1"}, 1);
  ASSERT_TRUE(events) << explain(events);
  ASSERT_EQ(events->size(), 3U);
  for (std::int64_t i = 0; i < 3; ++i) {
    const event_record& e = (*events)[static_cast<std::size_t>(i)];
    EXPECT_EQ(e.subscription.value, "sub_1");
    EXPECT_EQ(e.seq, i + 1);
    EXPECT_EQ(e.type, "e" + std::to_string(i + 1));
    EXPECT_EQ(e.payload_json, R"({"seq": )" + std::to_string(i + 1) + "}");
    EXPECT_EQ(e.recorded_at, at(i));
  }
}

TEST_P(store_contract, later_appends_continue_the_seqs_without_gaps) {
  auto w1 = work(tenant_a());
  w1.events.push_back(append("sub_1", 0, 2));
  commit_ok(w1);
  auto w2 = work(tenant_a());
  w2.events.push_back(append("sub_1", 2, 3));
  EXPECT_EQ(commit_ok(w2).event_versions, std::vector<std::int64_t>{5});

  auto events = db().load_events(tenant_a(), subscription_id{"sub_1"}, 1);
  ASSERT_TRUE(events) << explain(events);
  std::vector<std::int64_t> seqs;
  for (const auto& e : *events)
    seqs.push_back(e.seq);
  EXPECT_EQ(seqs, (std::vector<std::int64_t>{1, 2, 3, 4, 5}));
}

TEST_P(store_contract,
       a_stale_expected_version_fails_and_writes_nothing_of_the_unit) {
  auto w1 = work(tenant_a());
  w1.events.push_back(append("sub_1", 0, 2));
  commit_ok(w1);

  // A writer that loaded version 1 lost the race: nothing it carries lands.
  auto w2 = work(tenant_a());
  w2.events.push_back(append("sub_1", 1, 1));
  w2.subscriptions.push_back(subscription("sub_1", "cus_1", "active", 2));
  w2.new_sagas.push_back(saga("sg_1", "invoice", 0));
  w2.timers_to_schedule.push_back(timer("tm_1", "sub_1", "period_end", 10));
  w2.new_invoices.push_back(invoice("inv_1", "sub_1", "key_1"));
  w2.ledger.push_back(ledger_tx("tx_1", "inv_1", 1000));
  w2.outbox.push_back(message("msg_1"));
  w2.audit.push_back(audit("subscription.change", 1));
  w2.inbox.push_back(inbox("stripe", "evt_1"));
  commit_fails(w2, errc::version_conflict);

  auto events = db().load_events(tenant_a(), subscription_id{"sub_1"}, 1);
  ASSERT_TRUE(events);
  EXPECT_EQ(events->size(), 2U);
  EXPECT_EQ(
    code_of(db().get_subscription(tenant_a(), subscription_id{"sub_1"})),
    "not_found");
  EXPECT_EQ(code_of(db().get_saga(tenant_a(), saga_id{"sg_1"})), "not_found");
  EXPECT_EQ(code_of(db().get_invoice(tenant_a(), invoice_id{"inv_1"})),
            "not_found");
  auto timers = db().list_timers(tenant_a(), "sub_1");
  ASSERT_TRUE(timers);
  EXPECT_TRUE(timers->empty());
  auto ledger = db().load_ledger(tenant_a(), "inv_1");
  ASSERT_TRUE(ledger);
  EXPECT_TRUE(ledger->empty());
  auto outbox = db().fetch_unpublished(0, 10);
  ASSERT_TRUE(outbox);
  EXPECT_TRUE(outbox->empty());
  auto audit_page = db().list_audit(tenant_a(), "", 10);
  ASSERT_TRUE(audit_page);
  EXPECT_TRUE(audit_page->items.empty());
  auto seen = db().inbox_contains(tenant_a(), "stripe", "evt_1");
  ASSERT_TRUE(seen);
  EXPECT_FALSE(*seen);
}

TEST_P(store_contract, an_expected_version_ahead_of_the_stream_is_a_conflict) {
  auto w0 = work(tenant_a());
  w0.events.push_back(append("sub_1", 3, 1));
  commit_fails(w0, errc::version_conflict);

  auto w1 = work(tenant_a());
  w1.events.push_back(append("sub_1", 0, 1));
  commit_ok(w1);
  auto w2 = work(tenant_a());
  w2.events.push_back(append("sub_1", 2, 1));
  commit_fails(w2, errc::version_conflict);

  auto history = db().load_history(tenant_a(), subscription_id{"sub_1"});
  ASSERT_TRUE(history);
  EXPECT_EQ(history->version, 1);
}

TEST_P(store_contract,
       two_appends_in_one_unit_chain_and_each_reports_its_version) {
  auto w = work(tenant_a());
  w.events.push_back(append("sub_1", 0, 2));
  w.events.push_back(append("sub_2", 0, 1));
  w.events.push_back(append("sub_1", 2, 1));
  EXPECT_EQ(commit_ok(w).event_versions, (std::vector<std::int64_t>{2, 1, 3}));

  auto h1 = db().load_history(tenant_a(), subscription_id{"sub_1"});
  auto h2 = db().load_history(tenant_a(), subscription_id{"sub_2"});
  ASSERT_TRUE(h1);
  ASSERT_TRUE(h2);
  EXPECT_EQ(h1->version, 3);
  EXPECT_EQ(h2->version, 1);
}

TEST_P(store_contract, load_events_starts_at_the_given_seq) {
  auto w = work(tenant_a());
  w.events.push_back(append("sub_1", 0, 5));
  commit_ok(w);

  auto from3 = db().load_events(tenant_a(), subscription_id{"sub_1"}, 3);
  ASSERT_TRUE(from3) << explain(from3);
  ASSERT_EQ(from3->size(), 3U);
  EXPECT_EQ(from3->front().seq, 3);
  EXPECT_EQ(from3->back().seq, 5);

  auto past_end = db().load_events(tenant_a(), subscription_id{"sub_1"}, 6);
  ASSERT_TRUE(past_end);
  EXPECT_TRUE(past_end->empty());
  auto unknown = db().load_events(tenant_a(), subscription_id{"sub_9"}, 1);
  ASSERT_TRUE(unknown);
  EXPECT_TRUE(unknown->empty());
}

TEST_P(store_contract, history_without_a_snapshot_is_every_event) {
  auto w = work(tenant_a());
  w.events.push_back(append("sub_1", 0, 4));
  commit_ok(w);

  auto h = db().load_history(tenant_a(), subscription_id{"sub_1"});
  ASSERT_TRUE(h) << explain(h);
  EXPECT_FALSE(h->snapshot.has_value());
  EXPECT_EQ(h->tail.size(), 4U);
  EXPECT_EQ(h->version, 4);

  auto none = db().load_history(tenant_a(), subscription_id{"sub_9"});
  ASSERT_TRUE(none) << explain(none);
  EXPECT_FALSE(none->snapshot.has_value());
  EXPECT_TRUE(none->tail.empty());
  EXPECT_EQ(none->version, 0);
}

TEST_P(store_contract,
       history_is_the_latest_snapshot_plus_the_events_after_it) {
  // One event per unit, a snapshot whenever the policy says so: at 3 and 6.
  const snapshot_policy policy{3};
  for (std::int64_t v = 0; v < 7; ++v) {
    auto w = work(tenant_a());
    w.events.push_back(append("sub_1", v, 1, v));
    if (policy.due(v, v + 1))
      w.snapshots.push_back(snapshot("sub_1", v + 1));
    commit_ok(w);
  }

  auto h = db().load_history(tenant_a(), subscription_id{"sub_1"});
  ASSERT_TRUE(h) << explain(h);
  ASSERT_TRUE(h->snapshot.has_value());
  EXPECT_EQ(h->snapshot->seq, 6);
  EXPECT_EQ(h->snapshot->state_json, R"({"upto": 6})");
  EXPECT_EQ(h->snapshot->taken_at, at(6));
  ASSERT_EQ(h->tail.size(), 1U);
  EXPECT_EQ(h->tail[0].seq, 7);
  EXPECT_EQ(h->version, 7);
}

TEST_P(store_contract, a_snapshot_at_the_last_event_leaves_an_empty_tail) {
  auto w = work(tenant_a());
  w.events.push_back(append("sub_1", 0, 4));
  w.snapshots.push_back(snapshot("sub_1", 4));
  commit_ok(w);

  auto h = db().load_history(tenant_a(), subscription_id{"sub_1"});
  ASSERT_TRUE(h) << explain(h);
  ASSERT_TRUE(h->snapshot.has_value());
  EXPECT_EQ(h->snapshot->seq, 4);
  EXPECT_TRUE(h->tail.empty());
  EXPECT_EQ(h->version, 4);
}

TEST_P(store_contract,
       the_snapshot_policy_is_due_when_an_append_crosses_a_multiple) {
  const snapshot_policy every3{3};
  EXPECT_FALSE(every3.due(0, 2));
  EXPECT_TRUE(every3.due(2, 3));
  EXPECT_TRUE(every3.due(1, 7));
  EXPECT_FALSE(every3.due(3, 5));
  EXPECT_FALSE(snapshot_policy{0}.due(0, 100));
}

// == sagas ====================================================================

TEST_P(store_contract, a_new_saga_is_stored_at_version_one) {
  auto w = work(tenant_a());
  auto s = saga("sg_1", "invoice", 5);
  s.version = 42; // the store assigns versions, whatever the caller says
  w.new_sagas.push_back(s);
  commit_ok(w);

  auto got = db().get_saga(tenant_a(), saga_id{"sg_1"});
  ASSERT_TRUE(got) << explain(got);
  EXPECT_EQ(got->type, "invoice");
  EXPECT_EQ(got->subscription.value, "sub_1");
  EXPECT_EQ(got->status, saga_status::running);
  EXPECT_EQ(got->step, 0);
  EXPECT_EQ(got->version, 1);
  EXPECT_EQ(got->data_json, R"({"n": 0})");
  EXPECT_EQ(got->created_at, at(5));
  EXPECT_EQ(got->updated_at, at(5));
}

TEST_P(store_contract, a_saga_update_at_the_current_version_moves_it_on) {
  auto w1 = work(tenant_a());
  w1.new_sagas.push_back(saga("sg_1", "invoice", 0));
  commit_ok(w1);
  auto w2 = work(tenant_a());
  w2.saga_updates.push_back(saga_move("sg_1", 1, saga_status::waiting, 2));
  commit_ok(w2);

  auto got = db().get_saga(tenant_a(), saga_id{"sg_1"});
  ASSERT_TRUE(got) << explain(got);
  EXPECT_EQ(got->status, saga_status::waiting);
  EXPECT_EQ(got->step, 2);
  EXPECT_EQ(got->version, 2);
  EXPECT_EQ(got->data_json, R"({"step": 2})");
  EXPECT_EQ(got->updated_at, at(1002));
  EXPECT_EQ(got->created_at, at(0));
}

TEST_P(store_contract, a_saga_update_at_a_stale_version_is_a_conflict) {
  auto w1 = work(tenant_a());
  w1.new_sagas.push_back(saga("sg_1", "invoice", 0));
  commit_ok(w1);
  auto w2 = work(tenant_a());
  w2.saga_updates.push_back(saga_move("sg_1", 1, saga_status::running, 1));
  commit_ok(w2);

  auto stale = work(tenant_a());
  stale.saga_updates.push_back(saga_move("sg_1", 1, saga_status::failed, 9));
  stale.saga_steps.push_back(saga_step("sg_1", 9, "late"));
  commit_fails(stale, errc::version_conflict);

  auto got = db().get_saga(tenant_a(), saga_id{"sg_1"});
  ASSERT_TRUE(got);
  EXPECT_EQ(got->version, 2);
  EXPECT_EQ(got->step, 1);
  EXPECT_EQ(got->status, saga_status::running);
  auto steps = db().load_saga_steps(tenant_a(), saga_id{"sg_1"});
  ASSERT_TRUE(steps);
  EXPECT_TRUE(steps->empty());
}

TEST_P(store_contract, updating_an_unknown_saga_is_not_found) {
  auto w = work(tenant_a());
  w.saga_updates.push_back(saga_move("sg_9", 1, saga_status::running, 1));
  commit_fails(w, errc::not_found);
  EXPECT_EQ(code_of(db().get_saga(tenant_a(), saga_id{"sg_9"})), "not_found");
}

TEST_P(store_contract, a_duplicate_saga_id_is_already_exists) {
  auto w1 = work(tenant_a());
  w1.new_sagas.push_back(saga("sg_1", "invoice", 0));
  commit_ok(w1);
  auto w2 = work(tenant_a());
  w2.new_sagas.push_back(saga("sg_1", "dunning", 1));
  w2.outbox.push_back(message("msg_1"));
  commit_fails(w2, errc::already_exists);

  auto got = db().get_saga(tenant_a(), saga_id{"sg_1"});
  ASSERT_TRUE(got);
  EXPECT_EQ(got->type, "invoice");
  auto outbox = db().fetch_unpublished(0, 10);
  ASSERT_TRUE(outbox);
  EXPECT_TRUE(outbox->empty());
}

TEST_P(store_contract, saga_steps_get_seqs_one_to_n_in_append_order) {
  auto w1 = work(tenant_a());
  w1.new_sagas.push_back(saga("sg_1", "invoice", 0));
  w1.saga_steps.push_back(saga_step("sg_1", 0, "issue_invoice"));
  w1.saga_steps.push_back(saga_step("sg_1", 1, "charge"));
  commit_ok(w1);
  auto w2 = work(tenant_a());
  auto comp = saga_step("sg_1", 1, "refund");
  comp.kind = step_kind::compensation;
  comp.outcome = "declined_soft";
  comp.seq = 77; // assigned by the store
  w2.saga_steps.push_back(comp);
  commit_ok(w2);

  auto steps = db().load_saga_steps(tenant_a(), saga_id{"sg_1"});
  ASSERT_TRUE(steps) << explain(steps);
  ASSERT_EQ(steps->size(), 3U);
  const std::vector<std::string> names{"issue_invoice", "charge", "refund"};
  for (std::size_t i = 0; i < 3; ++i) {
    EXPECT_EQ((*steps)[i].seq, static_cast<std::int64_t>(i + 1));
    EXPECT_EQ((*steps)[i].name, names[i]);
    EXPECT_EQ((*steps)[i].saga.value, "sg_1");
  }
  const saga_step_record& last = (*steps)[2];
  EXPECT_EQ(last.step, 1);
  EXPECT_EQ(last.kind, step_kind::compensation);
  EXPECT_EQ(last.outcome, "declined_soft");
  EXPECT_EQ(last.detail, "did refund");
  EXPECT_EQ(last.at, at(1));
}

TEST_P(store_contract,
       interleaved_steps_of_two_sagas_keep_each_order_and_a_failed_unit_adds_none) {
  auto w1 = work(tenant_a());
  w1.new_sagas.push_back(saga("sg_1", "invoice", 0));
  w1.new_sagas.push_back(saga("sg_2", "dunning", 0));
  w1.saga_steps.push_back(saga_step("sg_1", 0, "a1"));
  w1.saga_steps.push_back(saga_step("sg_2", 0, "b1"));
  w1.saga_steps.push_back(saga_step("sg_1", 1, "a2"));
  commit_ok(w1);
  // Steps for both, then one for a saga that does not exist: nothing stays.
  auto w2 = work(tenant_a());
  w2.saga_steps.push_back(saga_step("sg_2", 1, "b2"));
  w2.saga_steps.push_back(saga_step("sg_1", 2, "a3"));
  w2.saga_steps.push_back(saga_step("sg_2", 2, "b3"));
  w2.saga_steps.push_back(saga_step("sg_9", 0, "x"));
  commit_fails(w2, errc::not_found);

  auto names = [&](const char* id) {
    std::vector<std::string> out;
    auto steps = db().load_saga_steps(tenant_a(), saga_id{id});
    EXPECT_TRUE(steps) << explain(steps);
    if (steps)
      for (const auto& st : *steps)
        out.push_back(std::to_string(st.seq) + ":" + st.name);
    return out;
  };
  EXPECT_EQ(names("sg_1"), (std::vector<std::string>{"1:a1", "2:a2"}));
  EXPECT_EQ(names("sg_2"), (std::vector<std::string>{"1:b1"}));
}

TEST_P(store_contract,
       steps_of_an_unknown_saga_are_not_found_and_listed_empty) {
  auto w = work(tenant_a());
  w.saga_steps.push_back(saga_step("sg_9", 0, "charge"));
  commit_fails(w, errc::not_found);
  auto steps = db().load_saga_steps(tenant_a(), saga_id{"sg_9"});
  ASSERT_TRUE(steps) << explain(steps);
  EXPECT_TRUE(steps->empty());
}

TEST_P(store_contract, list_sagas_filters_by_status_and_type) {
  auto w = work(tenant_a());
  w.new_sagas.push_back(saga("sg_1", "invoice", 1));
  w.new_sagas.push_back(saga("sg_2", "dunning", 2));
  w.new_sagas.push_back(saga("sg_3", "invoice", 3));
  commit_ok(w);
  auto move = work(tenant_a());
  move.saga_updates.push_back(saga_move("sg_3", 1, saga_status::completed, 4));
  commit_ok(move);

  auto key = [](const saga_record& s) { return s.id.value; };
  auto list = [&](saga_filter f) {
    return ids_of(all_pages<saga_record>(
                    [&](const std::string& c, std::size_t n) {
                      return db().list_sagas(tenant_a(), f, c, n);
                    },
                    10),
                  key);
  };
  using v = std::vector<std::string>;
  EXPECT_EQ(list({}), (v{"sg_1", "sg_2", "sg_3"}));
  EXPECT_EQ(list({saga_status::running, std::nullopt}), (v{"sg_1", "sg_2"}));
  EXPECT_EQ(list({std::nullopt, "invoice"}), (v{"sg_1", "sg_3"}));
  EXPECT_EQ(list({saga_status::completed, "invoice"}), (v{"sg_3"}));
  EXPECT_EQ(list({saga_status::failed, std::nullopt}), v{});
}

TEST_P(store_contract,
       list_sagas_pages_by_creation_without_duplicates_or_gaps) {
  // Created out of id order, with ties on created_at broken by id.
  auto w = work(tenant_a());
  const std::vector<std::pair<std::string, std::int64_t>> made{
    {"sg_g", 1}, {"sg_a", 3}, {"sg_c", 2}, {"sg_b", 2},
    {"sg_f", 5}, {"sg_e", 4}, {"sg_d", 4}};
  for (const auto& [id, created] : made)
    w.new_sagas.push_back(saga(id, "invoice", created));
  commit_ok(w);

  for (std::size_t limit : {1U, 2U, 3U, 7U, 50U}) {
    auto all = all_pages<saga_record>(
      [&](const std::string& c, std::size_t n) {
        return db().list_sagas(tenant_a(), {}, c, n);
      },
      limit);
    EXPECT_EQ(ids_of(all, [](const saga_record& s) { return s.id.value; }),
              (std::vector<std::string>{"sg_g", "sg_b", "sg_c", "sg_a", "sg_d",
                                        "sg_e", "sg_f"}))
      << "limit " << limit;
  }
}

TEST_P(store_contract,
       unfinished_sagas_are_found_across_tenants_in_tenant_and_id_order) {
  auto wa = work(tenant_a());
  wa.new_sagas.push_back(saga("sg_3", "invoice", 0));
  wa.new_sagas.push_back(saga("sg_1", "invoice", 0));
  wa.new_sagas.push_back(saga("sg_2", "dunning", 0));
  commit_ok(wa);
  auto wb = work(tenant_b());
  wb.new_sagas.push_back(saga("sg_5", "invoice", 0));
  wb.new_sagas.push_back(saga("sg_4", "invoice", 0));
  commit_ok(wb);
  // Finished ones are not recovered; waiting and compensating ones are.
  auto fa = work(tenant_a());
  fa.saga_updates.push_back(saga_move("sg_2", 1, saga_status::completed, 3));
  fa.saga_updates.push_back(saga_move("sg_3", 1, saga_status::compensating, 1));
  commit_ok(fa);
  auto fb = work(tenant_b());
  fb.saga_updates.push_back(saga_move("sg_4", 1, saga_status::failed, 1));
  fb.saga_updates.push_back(saga_move("sg_5", 1, saga_status::waiting, 1));
  commit_ok(fb);

  for (std::size_t limit : {1U, 2U, 10U}) {
    auto all = all_pages<store::tenant_saga>(
      [&](const std::string& c, std::size_t n) {
        return db().find_unfinished_sagas(c, n);
      },
      limit);
    EXPECT_EQ(
      ids_of(all,
             [](const store::tenant_saga& s) {
               return s.tenant.value + "/" + s.saga.id.value;
             }),
      (std::vector<std::string>{"ten_a/sg_1", "ten_a/sg_3", "ten_b/sg_5"}))
      << "limit " << limit;
  }
}

TEST_P(store_contract,
       operational_stats_count_every_tenants_sagas_by_type_and_status_and_due_timers) {
  auto wa = work(tenant_a());
  wa.new_sagas.push_back(saga("sg_1", "invoice", 0));
  wa.new_sagas.push_back(saga("sg_2", "invoice", 0));
  wa.new_sagas.push_back(saga("sg_3", "dunning", 0));
  wa.timers_to_schedule.push_back(timer("tm_1", "sub_1", "period_end", 10));
  wa.timers_to_schedule.push_back(timer("tm_2", "sub_1", "retry", 50));
  wa.timers_to_schedule.push_back(timer("tm_3", "sub_1", "retry", 500));
  commit_ok(wa);
  auto wb = work(tenant_b());
  wb.new_sagas.push_back(saga("sg_4", "invoice", 0));
  wb.timers_to_schedule.push_back(timer("tm_4", "sub_9", "trial_end", 20));
  commit_ok(wb);
  auto fa = work(tenant_a());
  fa.saga_updates.push_back(saga_move("sg_1", 1, saga_status::completed, 3));
  fa.timers_to_complete.push_back("tm_1"); // completed: neither pending nor due
  commit_ok(fa);
  // A leased timer is still due until it completes.
  ASSERT_TRUE(db().claim_due_timers(at(100), 1, 600, "c").has_value());

  auto stats = db().operational_stats(at(100));
  ASSERT_TRUE(stats.has_value()) << explain(stats);
  using count = store::saga_count;
  EXPECT_EQ(stats->sagas,
            (std::vector<count>{{"dunning", saga_status::running, 1},
                                {"invoice", saga_status::completed, 1},
                                {"invoice", saga_status::running, 2}}));
  EXPECT_EQ(stats->timers_pending, 3);
  EXPECT_EQ(stats->timers_due, 2); // tm_2 and tm_4 (one leased); tm_3 at 500
  auto earlier = db().operational_stats(at(20));
  ASSERT_TRUE(earlier.has_value());
  EXPECT_EQ(earlier->timers_due, 1);
}

// == timers ===================================================================

TEST_P(store_contract, scheduling_an_existing_timer_id_changes_nothing) {
  auto w1 = work(tenant_a());
  w1.timers_to_schedule.push_back(timer("tm_1", "sub_1", "period_end", 10));
  commit_ok(w1);
  auto w2 = work(tenant_a());
  w2.timers_to_schedule.push_back(timer("tm_1", "sub_2", "trial_end", 99));
  commit_ok(w2);

  auto timers = db().list_timers(tenant_a(), "sub_1");
  ASSERT_TRUE(timers) << explain(timers);
  ASSERT_EQ(timers->size(), 1U);
  EXPECT_EQ(timers->at(0).id, "tm_1");
  EXPECT_EQ(timers->at(0).kind, "period_end");
  EXPECT_EQ(timers->at(0).due_at, at(10));
  EXPECT_EQ(timers->at(0).payload_json, R"({"due": 10})");
  auto other = db().list_timers(tenant_a(), "sub_2");
  ASSERT_TRUE(other);
  EXPECT_TRUE(other->empty());
}

TEST_P(store_contract, list_timers_shows_an_owners_pending_timers_by_due_time) {
  auto w = work(tenant_a());
  w.timers_to_schedule.push_back(timer("tm_b", "sub_1", "retry", 30));
  w.timers_to_schedule.push_back(timer("tm_a", "sub_1", "period_end", 20));
  w.timers_to_schedule.push_back(timer("tm_c", "sub_2", "period_end", 10));
  commit_ok(w);

  auto timers = db().list_timers(tenant_a(), "sub_1");
  ASSERT_TRUE(timers) << explain(timers);
  EXPECT_EQ(ids_of(*timers, [](const timer_record& t) { return t.id; }),
            (std::vector<std::string>{"tm_a", "tm_b"}));
}

TEST_P(store_contract, claim_takes_due_timers_oldest_first_up_to_the_limit) {
  auto wa = work(tenant_a());
  wa.timers_to_schedule.push_back(timer("tm_3", "sub_1", "retry", 30));
  wa.timers_to_schedule.push_back(timer("tm_1", "sub_1", "period_end", 10));
  wa.timers_to_schedule.push_back(timer("tm_late", "sub_1", "retry", 500));
  commit_ok(wa);
  auto wb = work(tenant_b());
  wb.timers_to_schedule.push_back(timer("tm_2", "sub_7", "trial_end", 20));
  commit_ok(wb);

  auto first = db().claim_due_timers(at(100), 2, 60, "claimer_1");
  ASSERT_TRUE(first) << explain(first);
  ASSERT_EQ(first->size(), 2U);
  EXPECT_EQ(first->at(0).timer.id, "tm_1");
  EXPECT_EQ(first->at(0).tenant, tenant_a());
  EXPECT_EQ(first->at(0).timer.owner, "sub_1");
  EXPECT_EQ(first->at(0).timer.kind, "period_end");
  EXPECT_EQ(first->at(0).timer.due_at, at(10));
  EXPECT_EQ(first->at(0).timer.payload_json, R"({"due": 10})");
  EXPECT_EQ(first->at(0).lease_until, at(160));
  EXPECT_EQ(first->at(1).timer.id, "tm_2");
  EXPECT_EQ(first->at(1).tenant, tenant_b());

  auto second = db().claim_due_timers(at(100), 10, 60, "claimer_2");
  ASSERT_TRUE(second) << explain(second);
  ASSERT_EQ(second->size(), 1U); // tm_late is not due
  EXPECT_EQ(second->at(0).timer.id, "tm_3");
}

TEST_P(store_contract,
       scoped_claims_take_one_tenants_timers_or_skip_test_mode_tenants) {
  auto test_tenant = tenant(tenant_id{"ten_test_clock"}, hex64('c'));
  test_tenant.test_mode = true;
  ASSERT_TRUE(db().create_tenant(test_tenant));
  auto wa = work(tenant_a());
  wa.timers_to_schedule.push_back(timer("tm_a", "sub_1", "retry", 10));
  commit_ok(wa);
  auto wb = work(tenant_b());
  wb.timers_to_schedule.push_back(timer("tm_b", "sub_2", "retry", 30));
  commit_ok(wb);
  auto wt = work(test_tenant.id);
  wt.timers_to_schedule.push_back(timer("tm_t2", "sub_3", "retry", 40));
  wt.timers_to_schedule.push_back(timer("tm_t1", "sub_3", "trial_end", 20));
  wt.timers_to_schedule.push_back(timer("tm_t3", "sub_3", "retry", 900));
  commit_ok(wt);

  store::timer_claim_scope live;
  live.skip_test_tenants = true;
  auto wall = db().claim_due_timers_in(live, at(100), 10, 60, "service");
  ASSERT_TRUE(wall) << explain(wall);
  ASSERT_EQ(wall->size(), 2U);
  EXPECT_EQ(wall->at(0).timer.id, "tm_a");
  EXPECT_EQ(wall->at(1).timer.id, "tm_b");

  store::timer_claim_scope one;
  one.tenant = test_tenant.id;
  auto first = db().claim_due_timers_in(one, at(100), 1, 60, "test-clock");
  ASSERT_TRUE(first) << explain(first);
  ASSERT_EQ(first->size(), 1U);
  EXPECT_EQ(first->at(0).timer.id, "tm_t1"); // oldest first
  EXPECT_EQ(first->at(0).tenant, test_tenant.id);
  EXPECT_EQ(first->at(0).lease_until, at(160));
  auto rest = db().claim_due_timers_in(one, at(100), 10, 60, "test-clock");
  ASSERT_TRUE(rest) << explain(rest);
  ASSERT_EQ(rest->size(), 1U); // tm_t1 is leased, tm_t3 not due
  EXPECT_EQ(rest->at(0).timer.id, "tm_t2");
  // The unscoped claim still sees every tenant: nothing is left but
  // tm_t3, which is not due.
  auto all = db().claim_due_timers(at(100), 10, 60, "other");
  ASSERT_TRUE(all) << explain(all);
  EXPECT_TRUE(all->empty());
}

TEST_P(store_contract, a_leased_timer_is_not_claimed_again_and_stays_pending) {
  auto w = work(tenant_a());
  w.timers_to_schedule.push_back(timer("tm_1", "sub_1", "retry", 10));
  commit_ok(w);

  auto first = db().claim_due_timers(at(20), 10, 30, "claimer_1");
  ASSERT_TRUE(first);
  ASSERT_EQ(first->size(), 1U);
  auto during = db().claim_due_timers(at(40), 10, 30, "claimer_2");
  ASSERT_TRUE(during) << explain(during);
  EXPECT_TRUE(during->empty());

  auto pending = db().list_timers(tenant_a(), "sub_1");
  ASSERT_TRUE(pending);
  EXPECT_EQ(pending->size(), 1U);
}

TEST_P(store_contract, a_crashed_claimers_timer_is_claimable_after_the_lease) {
  auto w = work(tenant_a());
  w.timers_to_schedule.push_back(timer("tm_1", "sub_1", "retry", 10));
  commit_ok(w);

  // claimer_1 leases it until 50 and dies without completing it.
  auto first = db().claim_due_timers(at(20), 10, 30, "claimer_1");
  ASSERT_TRUE(first);
  ASSERT_EQ(first->size(), 1U);
  EXPECT_EQ(first->at(0).lease_until, at(50));

  auto after = db().claim_due_timers(at(51), 10, 30, "claimer_2");
  ASSERT_TRUE(after) << explain(after);
  ASSERT_EQ(after->size(), 1U);
  EXPECT_EQ(after->at(0).timer.id, "tm_1");
  EXPECT_EQ(after->at(0).lease_until, at(81));

  auto complete = work(tenant_a());
  complete.timers_to_complete.push_back("tm_1");
  commit_ok(complete);
  auto later = db().claim_due_timers(at(1000), 10, 30, "claimer_3");
  ASSERT_TRUE(later);
  EXPECT_TRUE(later->empty());
}

TEST_P(store_contract, a_completed_timer_is_neither_pending_nor_rearmed) {
  auto w = work(tenant_a());
  w.timers_to_schedule.push_back(timer("tm_1", "sub_1", "period_end", 10));
  commit_ok(w);
  auto done = work(tenant_a());
  done.timers_to_complete.push_back("tm_1");
  commit_ok(done);

  auto again = work(tenant_a());
  again.timers_to_schedule.push_back(timer("tm_1", "sub_1", "period_end", 10));
  commit_ok(again);

  auto pending = db().list_timers(tenant_a(), "sub_1");
  ASSERT_TRUE(pending);
  EXPECT_TRUE(pending->empty());
  auto claimed = db().claim_due_timers(at(100), 10, 30, "claimer_1");
  ASSERT_TRUE(claimed);
  EXPECT_TRUE(claimed->empty());
}

TEST_P(store_contract, completing_a_timer_that_is_not_pending_fails_the_unit) {
  auto w = work(tenant_a());
  w.timers_to_schedule.push_back(timer("tm_1", "sub_1", "retry", 10));
  commit_ok(w);
  auto first = work(tenant_a());
  first.timers_to_complete.push_back("tm_1");
  first.outbox.push_back(message("msg_1"));
  commit_ok(first);

  // A second firing of the same timer must not commit its effects again.
  auto second = work(tenant_a());
  second.timers_to_complete.push_back("tm_1");
  second.outbox.push_back(message("msg_2"));
  commit_fails(second, errc::not_found);
  auto never = work(tenant_a());
  never.timers_to_complete.push_back("tm_9");
  commit_fails(never, errc::not_found);

  auto outbox = db().fetch_unpublished(0, 10);
  ASSERT_TRUE(outbox);
  ASSERT_EQ(outbox->size(), 1U);
  EXPECT_EQ(outbox->at(0).message.id, "msg_1");
}

TEST_P(store_contract, cancel_by_owner_and_kind_leaves_other_kinds_and_owners) {
  auto w = work(tenant_a());
  w.timers_to_schedule.push_back(timer("tm_1", "sub_1", "period_end", 10));
  w.timers_to_schedule.push_back(timer("tm_2", "sub_1", "retry", 20));
  w.timers_to_schedule.push_back(timer("tm_3", "sub_1", "retry", 30));
  w.timers_to_schedule.push_back(timer("tm_4", "sub_2", "retry", 40));
  commit_ok(w);
  auto cancel = work(tenant_a());
  cancel.timers_to_cancel.push_back(timer_cancel{"sub_1", "retry"});
  commit_ok(cancel);

  auto key = [](const timer_record& t) { return t.id; };
  auto sub1 = db().list_timers(tenant_a(), "sub_1");
  auto sub2 = db().list_timers(tenant_a(), "sub_2");
  ASSERT_TRUE(sub1);
  ASSERT_TRUE(sub2);
  EXPECT_EQ(ids_of(*sub1, key), std::vector<std::string>{"tm_1"});
  EXPECT_EQ(ids_of(*sub2, key), std::vector<std::string>{"tm_4"});
  auto claimed = db().claim_due_timers(at(100), 10, 30, "claimer_1");
  ASSERT_TRUE(claimed);
  std::vector<std::string> ids;
  for (const auto& c : *claimed)
    ids.push_back(c.timer.id);
  EXPECT_EQ(ids, (std::vector<std::string>{"tm_1", "tm_4"}));
}

TEST_P(store_contract, cancel_with_no_kind_cancels_every_timer_of_the_owner) {
  auto w = work(tenant_a());
  w.timers_to_schedule.push_back(timer("tm_1", "sub_1", "period_end", 10));
  w.timers_to_schedule.push_back(timer("tm_2", "sub_1", "retry", 20));
  w.timers_to_schedule.push_back(timer("tm_3", "sub_2", "retry", 30));
  commit_ok(w);
  auto cancel = work(tenant_a());
  cancel.timers_to_cancel.push_back(timer_cancel{"sub_1", ""});
  cancel.timers_to_cancel.push_back(timer_cancel{"sub_nobody", ""});
  commit_ok(cancel);

  auto sub1 = db().list_timers(tenant_a(), "sub_1");
  auto sub2 = db().list_timers(tenant_a(), "sub_2");
  ASSERT_TRUE(sub1);
  ASSERT_TRUE(sub2);
  EXPECT_TRUE(sub1->empty());
  EXPECT_EQ(sub2->size(), 1U);
  auto done = work(tenant_a());
  done.timers_to_complete.push_back("tm_1");
  commit_fails(done, errc::not_found);
}

TEST_P(store_contract, a_cancelled_timer_id_can_be_scheduled_again) {
  auto w = work(tenant_a());
  w.timers_to_schedule.push_back(timer("tm_1", "sub_1", "period_end", 10));
  commit_ok(w);
  auto cancel = work(tenant_a());
  cancel.timers_to_cancel.push_back(timer_cancel{"sub_1", "period_end"});
  commit_ok(cancel);
  auto again = work(tenant_a());
  again.timers_to_schedule.push_back(timer("tm_1", "sub_1", "period_end", 15));
  commit_ok(again);

  auto pending = db().list_timers(tenant_a(), "sub_1");
  ASSERT_TRUE(pending);
  ASSERT_EQ(pending->size(), 1U);
  EXPECT_EQ(pending->at(0).due_at, at(15));
}

// == outbox ===================================================================

TEST_P(store_contract,
       outbox_messages_get_increasing_positions_in_commit_order) {
  auto w1 = work(tenant_a());
  w1.outbox.push_back(message("msg_1", "sub_1"));
  w1.outbox.push_back(message("msg_2", "sub_1"));
  commit_ok(w1);
  auto w2 = work(tenant_b());
  w2.outbox.push_back(message("msg_3", "sub_2"));
  commit_ok(w2);

  auto rows = db().fetch_unpublished(0, 10);
  ASSERT_TRUE(rows) << explain(rows);
  ASSERT_EQ(rows->size(), 3U);
  EXPECT_EQ(rows->at(0).message.id, "msg_1");
  EXPECT_EQ(rows->at(1).message.id, "msg_2");
  EXPECT_EQ(rows->at(2).message.id, "msg_3");
  EXPECT_LT(rows->at(0).position, rows->at(1).position);
  EXPECT_LT(rows->at(1).position, rows->at(2).position);
  EXPECT_EQ(rows->at(0).tenant, tenant_a());
  EXPECT_EQ(rows->at(2).tenant, tenant_b());
  const outbox_record& r = rows->at(0);
  EXPECT_EQ(r.message.key, "sub_1");
  EXPECT_EQ(r.message.type, "subscription.activated");
  EXPECT_EQ(r.message.subject, "sub_1");
  EXPECT_EQ(r.message.data_json, R"({"id": "msg_1"})");
  EXPECT_EQ(r.message.time, at(0));
  EXPECT_FALSE(r.published_at.has_value());
}

TEST_P(store_contract, fetch_unpublished_honours_after_position_and_limit) {
  auto w = work(tenant_a());
  for (int i = 1; i <= 5; ++i)
    w.outbox.push_back(message("msg_" + std::to_string(i)));
  commit_ok(w);

  auto all = db().fetch_unpublished(0, 10);
  ASSERT_TRUE(all);
  ASSERT_EQ(all->size(), 5U);
  auto first2 = db().fetch_unpublished(0, 2);
  ASSERT_TRUE(first2);
  ASSERT_EQ(first2->size(), 2U);
  EXPECT_EQ(first2->at(1).message.id, "msg_2");
  auto rest = db().fetch_unpublished(first2->at(1).position, 10);
  ASSERT_TRUE(rest);
  ASSERT_EQ(rest->size(), 3U);
  EXPECT_EQ(rest->at(0).message.id, "msg_3");
  auto none = db().fetch_unpublished(all->back().position, 10);
  ASSERT_TRUE(none);
  EXPECT_TRUE(none->empty());
}

TEST_P(store_contract, published_messages_are_no_longer_fetched) {
  auto w = work(tenant_a());
  for (int i = 1; i <= 4; ++i)
    w.outbox.push_back(message("msg_" + std::to_string(i)));
  commit_ok(w);
  auto all = db().fetch_unpublished(0, 10);
  ASSERT_TRUE(all);
  ASSERT_EQ(all->size(), 4U);

  const std::vector<std::int64_t> done{all->at(0).position,
                                       all->at(2).position};
  ASSERT_TRUE(db().mark_published(done, at(100)));
  auto left = db().fetch_unpublished(0, 10);
  ASSERT_TRUE(left);
  EXPECT_EQ(ids_of(*left, [](const outbox_record& r) { return r.message.id; }),
            (std::vector<std::string>{"msg_2", "msg_4"}));
  // Publishing twice is harmless: the relay may repeat after a crash.
  ASSERT_TRUE(db().mark_published(done, at(200)));
  auto again = db().fetch_unpublished(0, 10);
  ASSERT_TRUE(again);
  EXPECT_EQ(again->size(), 2U);
}

// == inbox ====================================================================

TEST_P(store_contract, the_inbox_records_processed_gateway_events) {
  auto w = work(tenant_a());
  w.inbox.push_back(inbox("stripe", "evt_1"));
  commit_ok(w);

  auto seen = db().inbox_contains(tenant_a(), "stripe", "evt_1");
  auto other_id = db().inbox_contains(tenant_a(), "stripe", "evt_2");
  auto other_gw = db().inbox_contains(tenant_a(), "adyen", "evt_1");
  ASSERT_TRUE(seen) << explain(seen);
  ASSERT_TRUE(other_id);
  ASSERT_TRUE(other_gw);
  EXPECT_TRUE(*seen);
  EXPECT_FALSE(*other_id);
  EXPECT_FALSE(*other_gw);

  auto gw2 = work(tenant_a()); // the same event id from another gateway
  gw2.inbox.push_back(inbox("adyen", "evt_1"));
  commit_ok(gw2);
}

/// A unit that fails at its last step (a duplicate ledger id) after
/// touching every kind of row leaves each as it was.
TEST_P(store_contract, a_unit_failing_at_its_last_step_leaves_every_row_as_it_was) {
  auto w1 = work(tenant_a());
  w1.events.push_back(append("sub_1", 0, 1));
  w1.subscriptions.push_back(subscription("sub_1", "cus_1", "active", 1));
  w1.new_sagas.push_back(saga("sg_1", "invoice", 0));
  w1.saga_steps.push_back(saga_step("sg_1", 0, "a1"));
  w1.new_invoices.push_back(invoice("inv_1", "sub_1", "key_1"));
  w1.new_attempts.push_back(attempt("pa_1", "inv_1", "inv_1/1", 1));
  w1.timers_to_schedule.push_back(timer("tm_1", "sub_1", "period_end", 100));
  w1.ledger.push_back(ledger_tx("tx_1", "inv_1", 1000));
  commit_ok(w1);

  auto w2 = work(tenant_a());
  w2.events.push_back(append("sub_1", 1, 1));
  w2.subscriptions.push_back(subscription("sub_1", "cus_1", "past_due", 2));
  w2.subscriptions.push_back(subscription("sub_2", "cus_2", "active", 1));
  w2.new_sagas.push_back(saga("sg_2", "dunning", 0));
  w2.saga_updates.push_back(saga_move("sg_1", 1, saga_status::waiting, 2));
  w2.saga_steps.push_back(saga_step("sg_1", 1, "a2"));
  w2.saga_steps.push_back(saga_step("sg_2", 0, "b1"));
  w2.timers_to_schedule.push_back(timer("tm_2", "sub_1", "retry", 200));
  w2.timers_to_complete.push_back("tm_1");
  w2.new_invoices.push_back(invoice("inv_2", "sub_1", "key_2"));
  w2.invoice_updates.push_back(invoice_move("inv_1", 1, "paid"));
  w2.new_attempts.push_back(attempt("pa_2", "inv_2", "inv_2/1", 1));
  w2.attempt_updates.push_back(attempt_move("pa_1", 1, "failed"));
  w2.outbox.push_back(message("msg_1"));
  w2.ledger.push_back(ledger_tx("tx_2", "inv_2", 700));
  w2.ledger.push_back(ledger_tx("tx_1", "inv_1", 1)); // already there
  commit_fails(w2, errc::already_exists);

  auto h = db().load_history(tenant_a(), subscription_id{"sub_1"});
  ASSERT_TRUE(h);
  EXPECT_EQ(h->version, 1);
  auto subs = db().list_subscriptions(tenant_a(), std::nullopt, std::nullopt,
                                      "", 10);
  ASSERT_TRUE(subs) << explain(subs);
  ASSERT_EQ(subs->items.size(), 1U);
  EXPECT_EQ(subs->items[0].status, "active");
  EXPECT_EQ(subs->items[0].data_json, R"({"v": 1})");
  auto sg1 = db().get_saga(tenant_a(), saga_id{"sg_1"});
  ASSERT_TRUE(sg1) << explain(sg1);
  EXPECT_EQ(sg1->version, 1);
  EXPECT_EQ(sg1->data_json, R"({"n": 0})");
  EXPECT_EQ(code_of(db().get_saga(tenant_a(), saga_id{"sg_2"})), "not_found");
  auto steps = db().load_saga_steps(tenant_a(), saga_id{"sg_1"});
  ASSERT_TRUE(steps);
  ASSERT_EQ(steps->size(), 1U);
  EXPECT_EQ(steps->at(0).name, "a1");
  auto timers = db().list_timers(tenant_a(), "sub_1");
  ASSERT_TRUE(timers);
  ASSERT_EQ(timers->size(), 1U);
  EXPECT_EQ(timers->at(0).id, "tm_1");
  auto inv1 = db().get_invoice(tenant_a(), invoice_id{"inv_1"});
  ASSERT_TRUE(inv1);
  EXPECT_EQ(inv1->status, "open");
  EXPECT_EQ(inv1->version, 1);
  EXPECT_EQ(code_of(db().get_invoice(tenant_a(), invoice_id{"inv_2"})),
            "not_found");
  EXPECT_EQ(code_of(db().find_invoice_by_key(tenant_a(), "key_2")),
            "not_found");
  auto pa1 = db().get_attempt(tenant_a(), payment_attempt_id{"pa_1"});
  ASSERT_TRUE(pa1);
  EXPECT_EQ(pa1->status, "pending");
  EXPECT_EQ(code_of(db().get_attempt(tenant_a(), payment_attempt_id{"pa_2"})),
            "not_found");
  auto outbox = db().fetch_unpublished(0, 10);
  ASSERT_TRUE(outbox);
  EXPECT_TRUE(outbox->empty());
  auto l1 = db().load_ledger(tenant_a(), "inv_1");
  ASSERT_TRUE(l1);
  EXPECT_EQ(l1->size(), 2U);
  auto l2 = db().load_ledger(tenant_a(), "inv_2");
  ASSERT_TRUE(l2);
  EXPECT_TRUE(l2->empty());
  // And the rolled-back ids are free again.
  auto w3 = work(tenant_a());
  w3.new_sagas.push_back(saga("sg_2", "dunning", 0));
  w3.new_invoices.push_back(invoice("inv_2", "sub_1", "key_2"));
  w3.new_attempts.push_back(attempt("pa_2", "inv_2", "inv_2/1", 1));
  w3.ledger.push_back(ledger_tx("tx_2", "inv_2", 700));
  commit_ok(w3);
}

TEST_P(store_contract, a_duplicate_inbox_entry_rolls_back_the_whole_unit) {
  auto w1 = work(tenant_a());
  w1.inbox.push_back(inbox("stripe", "evt_1"));
  w1.events.push_back(append("sub_1", 0, 1));
  commit_ok(w1);

  auto w2 = work(tenant_a());
  w2.inbox.push_back(inbox("stripe", "evt_1"));
  w2.events.push_back(append("sub_1", 1, 1));
  w2.outbox.push_back(message("msg_1"));
  w2.ledger.push_back(ledger_tx("tx_1", "sub_1", 500));
  commit_fails(w2, errc::already_exists);

  auto h = db().load_history(tenant_a(), subscription_id{"sub_1"});
  ASSERT_TRUE(h);
  EXPECT_EQ(h->version, 1);
  auto outbox = db().fetch_unpublished(0, 10);
  ASSERT_TRUE(outbox);
  EXPECT_TRUE(outbox->empty());
  auto ledger = db().load_ledger(tenant_a(), "sub_1");
  ASSERT_TRUE(ledger);
  EXPECT_TRUE(ledger->empty());
}

TEST_P(store_contract, two_equal_inbox_entries_in_one_unit_are_already_exists) {
  auto w = work(tenant_a());
  w.inbox.push_back(inbox("stripe", "evt_1"));
  w.inbox.push_back(inbox("stripe", "evt_1"));
  commit_fails(w, errc::already_exists);
  auto seen = db().inbox_contains(tenant_a(), "stripe", "evt_1");
  ASSERT_TRUE(seen);
  EXPECT_FALSE(*seen);
}

// == idempotency keys =========================================================

TEST_P(store_contract, a_new_idempotency_key_is_reserved_then_in_flight) {
  auto first = db().begin_idempotent(tenant_a(), "idem_1", hex64('1'), at(0));
  ASSERT_TRUE(first) << explain(first);
  EXPECT_EQ(first->state, idempotency_state::new_request);

  auto again = db().begin_idempotent(tenant_a(), "idem_1", hex64('1'), at(5));
  ASSERT_TRUE(again) << explain(again);
  EXPECT_EQ(again->state, idempotency_state::in_flight);
}

TEST_P(store_contract, a_stored_response_is_replayed_with_its_status_and_body) {
  ASSERT_TRUE(db().begin_idempotent(tenant_a(), "idem_1", hex64('1'), at(0)));
  auto w = work(tenant_a());
  w.idempotency_responses.push_back(
    idempotency_record{"idem_1", hex64('1'), 201, R"({"id": "sub_1"})", at(1)});
  w.events.push_back(append("sub_1", 0, 1));
  commit_ok(w);

  auto replay = db().begin_idempotent(tenant_a(), "idem_1", hex64('1'), at(9));
  ASSERT_TRUE(replay) << explain(replay);
  EXPECT_EQ(replay->state, idempotency_state::replay);
  ASSERT_TRUE(replay->stored.has_value());
  EXPECT_EQ(replay->stored->key, "idem_1");
  EXPECT_EQ(replay->stored->request_sha256_hex, hex64('1'));
  EXPECT_EQ(replay->stored->response_status, 201);
  EXPECT_EQ(replay->stored->response_body, R"({"id": "sub_1"})");
}

TEST_P(store_contract,
       the_same_key_with_another_request_is_an_idempotency_conflict) {
  ASSERT_TRUE(db().begin_idempotent(tenant_a(), "idem_1", hex64('1'), at(0)));
  EXPECT_EQ(
    code_of(db().begin_idempotent(tenant_a(), "idem_1", hex64('2'), at(1))),
    "idempotency_conflict");

  auto w = work(tenant_a());
  w.idempotency_responses.push_back(
    idempotency_record{"idem_1", hex64('1'), 200, "{}", at(1)});
  commit_ok(w);
  EXPECT_EQ(
    code_of(db().begin_idempotent(tenant_a(), "idem_1", hex64('2'), at(2))),
    "idempotency_conflict");
}

TEST_P(store_contract, completing_an_unreserved_or_foreign_key_fails_the_unit) {
  auto unreserved = work(tenant_a());
  unreserved.idempotency_responses.push_back(
    idempotency_record{"idem_9", hex64('1'), 200, "{}", at(1)});
  unreserved.events.push_back(append("sub_1", 0, 1));
  commit_fails(unreserved, errc::not_found);

  ASSERT_TRUE(db().begin_idempotent(tenant_a(), "idem_1", hex64('1'), at(0)));
  auto other_hash = work(tenant_a());
  other_hash.idempotency_responses.push_back(
    idempotency_record{"idem_1", hex64('2'), 200, "{}", at(1)});
  commit_fails(other_hash, errc::idempotency_conflict);

  auto h = db().load_history(tenant_a(), subscription_id{"sub_1"});
  ASSERT_TRUE(h);
  EXPECT_EQ(h->version, 0);
  auto still = db().begin_idempotent(tenant_a(), "idem_1", hex64('1'), at(2));
  ASSERT_TRUE(still);
  EXPECT_EQ(still->state, idempotency_state::in_flight);
}

TEST_P(store_contract,
       completing_a_key_twice_is_already_exists_and_rolls_back) {
  ASSERT_TRUE(db().begin_idempotent(tenant_a(), "idem_1", hex64('1'), at(0)));
  auto w1 = work(tenant_a());
  w1.idempotency_responses.push_back(
    idempotency_record{"idem_1", hex64('1'), 201, R"({"n": 1})", at(1)});
  commit_ok(w1);

  auto w2 = work(tenant_a());
  w2.idempotency_responses.push_back(
    idempotency_record{"idem_1", hex64('1'), 500, R"({"n": 2})", at(2)});
  w2.outbox.push_back(message("msg_1"));
  commit_fails(w2, errc::already_exists);

  auto replay = db().begin_idempotent(tenant_a(), "idem_1", hex64('1'), at(3));
  ASSERT_TRUE(replay);
  ASSERT_TRUE(replay->stored.has_value());
  EXPECT_EQ(replay->stored->response_status, 201);
  EXPECT_EQ(replay->stored->response_body, R"({"n": 1})");
  auto outbox = db().fetch_unpublished(0, 10);
  ASSERT_TRUE(outbox);
  EXPECT_TRUE(outbox->empty());
}

// == usage ====================================================================

TEST_P(store_contract, usage_is_deduplicated_by_id_within_and_across_calls) {
  const std::vector<usage_event> first{
    usage("u_1", "sub_1", "api_calls", 10, 0),
    usage("u_2", "sub_1", "api_calls", 20, 1),
    usage("u_1", "sub_1", "api_calls", 10, 0)};
  auto r1 = db().record_usage(tenant_a(), first);
  ASSERT_TRUE(r1) << explain(r1);
  EXPECT_EQ(r1->accepted, 2);
  EXPECT_EQ(r1->duplicates, 1);

  const std::vector<usage_event> second{
    usage("u_2", "sub_1", "api_calls", 20, 1),
    usage("u_3", "sub_1", "api_calls", 5, 2)};
  auto r2 = db().record_usage(tenant_a(), second);
  ASSERT_TRUE(r2) << explain(r2);
  EXPECT_EQ(r2->accepted, 1);
  EXPECT_EQ(r2->duplicates, 1);

  auto sum = db().sum_usage(tenant_a(), subscription_id{"sub_1"}, "api_calls",
                            at(0), at(100));
  ASSERT_TRUE(sum) << explain(sum);
  EXPECT_EQ(*sum, 35);
}

TEST_P(store_contract, sum_usage_counts_from_inclusive_to_exclusive_per_meter) {
  const std::vector<usage_event> events{
    usage("u_1", "sub_1", "api_calls", 1, 9),
    usage("u_2", "sub_1", "api_calls", 10, 10),
    usage("u_3", "sub_1", "api_calls", 100, 19),
    usage("u_4", "sub_1", "api_calls", 1000, 20),
    usage("u_5", "sub_1", "storage_gb", 7, 15),
    usage("u_6", "sub_2", "api_calls", 3, 15)};
  ASSERT_TRUE(db().record_usage(tenant_a(), events));

  auto sum = [&](const std::string& sub, const std::string& meter) {
    auto r = db().sum_usage(tenant_a(), subscription_id{sub}, meter, at(10),
                            at(20));
    EXPECT_TRUE(r) << explain(r);
    return r ? *r : -1;
  };
  EXPECT_EQ(sum("sub_1", "api_calls"), 110);
  EXPECT_EQ(sum("sub_1", "storage_gb"), 7);
  EXPECT_EQ(sum("sub_2", "api_calls"), 3);
  EXPECT_EQ(sum("sub_1", "seats"), 0);
}

TEST_P(store_contract,
       a_negative_usage_quantity_is_refused_and_records_nothing) {
  const std::vector<usage_event> events{
    usage("u_1", "sub_1", "api_calls", 10, 0),
    usage("u_2", "sub_1", "api_calls", -1, 0)};
  EXPECT_EQ(code_of(db().record_usage(tenant_a(), events)),
            "constraint_violation");
  auto sum = db().sum_usage(tenant_a(), subscription_id{"sub_1"}, "api_calls",
                            at(0), at(100));
  ASSERT_TRUE(sum);
  EXPECT_EQ(*sum, 0);
}

// == invoices and payment attempts ============================================

TEST_P(store_contract,
       a_new_invoice_is_stored_at_version_one_and_found_by_key) {
  auto w = work(tenant_a());
  w.new_invoices.push_back(invoice("inv_1", "sub_1", "ten_a/sub_1/2024-03-01"));
  commit_ok(w);

  auto got = db().get_invoice(tenant_a(), invoice_id{"inv_1"});
  ASSERT_TRUE(got) << explain(got);
  EXPECT_EQ(got->version, 1);
  EXPECT_EQ(got->subscription.value, "sub_1");
  EXPECT_EQ(got->status, "open");
  EXPECT_EQ(got->currency, "USD");
  EXPECT_EQ(got->total_minor, 1000);
  EXPECT_EQ(got->amount_due_minor, 1000);
  EXPECT_EQ(got->amount_paid_minor, 0);
  EXPECT_EQ(got->period_start, at(0));
  EXPECT_EQ(got->period_end, at(30 * seconds_per_day));
  EXPECT_EQ(got->lines_json, "[]");
  auto by_key = db().find_invoice_by_key(tenant_a(), "ten_a/sub_1/2024-03-01");
  ASSERT_TRUE(by_key) << explain(by_key);
  EXPECT_EQ(by_key->id.value, "inv_1");
  EXPECT_EQ(code_of(db().find_invoice_by_key(tenant_a(), "nope")), "not_found");
  EXPECT_EQ(code_of(db().get_invoice(tenant_a(), invoice_id{"inv_9"})),
            "not_found");
}

TEST_P(store_contract, a_duplicate_invoice_id_or_key_is_already_exists) {
  auto w = work(tenant_a());
  w.new_invoices.push_back(invoice("inv_1", "sub_1", "key_1"));
  commit_ok(w);

  auto same_id = work(tenant_a());
  same_id.new_invoices.push_back(invoice("inv_1", "sub_1", "key_2"));
  commit_fails(same_id, errc::already_exists);
  auto same_key = work(tenant_a());
  same_key.new_invoices.push_back(invoice("inv_2", "sub_1", "key_1"));
  commit_fails(same_key, errc::already_exists);

  EXPECT_EQ(code_of(db().get_invoice(tenant_a(), invoice_id{"inv_2"})),
            "not_found");
  EXPECT_EQ(code_of(db().find_invoice_by_key(tenant_a(), "key_2")),
            "not_found");
  // The first invoice and its key are untouched by either failure.
  auto kept = db().find_invoice_by_key(tenant_a(), "key_1");
  ASSERT_TRUE(kept) << explain(kept);
  EXPECT_EQ(kept->id.value, "inv_1");
  EXPECT_EQ(code_of(db().get_invoice(tenant_a(), invoice_id{"inv_1"})), "ok");
}

TEST_P(store_contract,
       an_invoice_update_bumps_the_version_and_a_stale_one_conflicts) {
  auto w = work(tenant_a());
  w.new_invoices.push_back(invoice("inv_1", "sub_1", "key_1"));
  commit_ok(w);
  auto pay = work(tenant_a());
  pay.invoice_updates.push_back(invoice_move("inv_1", 1, "paid"));
  commit_ok(pay);

  auto got = db().get_invoice(tenant_a(), invoice_id{"inv_1"});
  ASSERT_TRUE(got);
  EXPECT_EQ(got->version, 2);
  EXPECT_EQ(got->status, "paid");
  EXPECT_EQ(got->amount_paid_minor, 1000);
  EXPECT_EQ(got->updated_at, at(500));
  EXPECT_EQ(got->total_minor, 1000);

  auto stale = work(tenant_a());
  stale.invoice_updates.push_back(invoice_move("inv_1", 1, "void"));
  commit_fails(stale, errc::version_conflict);
  auto unknown = work(tenant_a());
  unknown.invoice_updates.push_back(invoice_move("inv_9", 1, "void"));
  commit_fails(unknown, errc::not_found);
  auto after = db().get_invoice(tenant_a(), invoice_id{"inv_1"});
  ASSERT_TRUE(after);
  EXPECT_EQ(after->status, "paid");
  EXPECT_EQ(after->version, 2);
}

TEST_P(store_contract, list_invoices_filters_by_subscription_across_pages) {
  auto w = work(tenant_a());
  for (int i = 1; i <= 5; ++i) {
    const std::string n = std::to_string(i);
    w.new_invoices.push_back(
      invoice("inv_" + n, i % 2 == 1 ? "sub_1" : "sub_2", "key_" + n));
  }
  commit_ok(w);

  auto key = [](const invoice_record& r) { return r.id.value; };
  auto list = [&](std::optional<subscription_id> s, std::size_t limit) {
    return sorted(ids_of(all_pages<invoice_record>(
                           [&](const std::string& c, std::size_t n) {
                             return db().list_invoices(tenant_a(), s, c, n);
                           },
                           limit),
                         key));
  };
  using v = std::vector<std::string>;
  for (std::size_t limit : {1U, 2U, 10U}) {
    EXPECT_EQ(list(std::nullopt, limit),
              (v{"inv_1", "inv_2", "inv_3", "inv_4", "inv_5"}));
    EXPECT_EQ(list(subscription_id{"sub_1"}, limit),
              (v{"inv_1", "inv_3", "inv_5"}));
    EXPECT_EQ(list(subscription_id{"sub_9"}, limit), v{});
  }
}

TEST_P(store_contract, payment_attempts_are_versioned_with_unique_keys) {
  auto w = work(tenant_a());
  w.new_invoices.push_back(invoice("inv_1", "sub_1", "key_1"));
  w.new_attempts.push_back(attempt("pa_2", "inv_1", "inv_1/2", 2));
  w.new_attempts.push_back(attempt("pa_1", "inv_1", "inv_1/1", 1));
  commit_ok(w);

  auto got = db().get_attempt(tenant_a(), payment_attempt_id{"pa_1"});
  ASSERT_TRUE(got) << explain(got);
  EXPECT_EQ(got->version, 1);
  EXPECT_EQ(got->invoice.value, "inv_1");
  EXPECT_EQ(got->idempotency_key, "inv_1/1");
  EXPECT_EQ(got->status, "pending");
  EXPECT_EQ(got->amount_minor, 1000);

  auto dup_key = work(tenant_a());
  dup_key.new_attempts.push_back(attempt("pa_3", "inv_1", "inv_1/1", 3));
  commit_fails(dup_key, errc::already_exists);
  auto dup_id = work(tenant_a());
  dup_id.new_attempts.push_back(attempt("pa_1", "inv_1", "inv_1/3", 3));
  commit_fails(dup_id, errc::already_exists);

  auto fail = work(tenant_a());
  fail.attempt_updates.push_back(attempt_move("pa_1", 1, "failed"));
  commit_ok(fail);
  auto stale = work(tenant_a());
  stale.attempt_updates.push_back(attempt_move("pa_1", 1, "succeeded"));
  commit_fails(stale, errc::version_conflict);
  auto unknown = work(tenant_a());
  unknown.attempt_updates.push_back(attempt_move("pa_9", 1, "failed"));
  commit_fails(unknown, errc::not_found);

  auto after = db().get_attempt(tenant_a(), payment_attempt_id{"pa_1"});
  ASSERT_TRUE(after);
  EXPECT_EQ(after->version, 2);
  EXPECT_EQ(after->status, "failed");
  EXPECT_EQ(after->decline_code, "insufficient_funds");
  EXPECT_EQ(after->updated_at, at(600));
  auto list = db().list_attempts(tenant_a(), invoice_id{"inv_1"});
  ASSERT_TRUE(list) << explain(list);
  EXPECT_EQ(ids_of(*list,
                   [](const payment_attempt_record& a) { return a.id.value; }),
            (std::vector<std::string>{"pa_1", "pa_2"}));
  EXPECT_EQ(code_of(db().get_attempt(tenant_a(), payment_attempt_id{"pa_3"})),
            "not_found");
}

TEST_P(store_contract,
       an_attempt_is_found_by_the_charge_id_its_outcome_recorded) {
  auto w = work(tenant_a());
  w.new_invoices.push_back(invoice("inv_1", "sub_1", "key_1"));
  w.new_attempts.push_back(attempt("pa_1", "inv_1", "inv_1/1", 1));
  w.new_attempts.push_back(attempt("pa_2", "inv_1", "inv_1/2", 2));
  commit_ok(w);
  auto fresh = db().get_attempt(tenant_a(), payment_attempt_id{"pa_1"});
  ASSERT_TRUE(fresh) << explain(fresh);
  EXPECT_EQ(fresh->charge_id, "");
  EXPECT_EQ(code_of(db().find_attempt_by_charge(tenant_a(), "ch_1")),
            "not_found");

  auto pending = work(tenant_a());
  auto move = attempt_move("pa_1", 1, "pending");
  move.charge_id = "ch_1";
  pending.attempt_updates.push_back(move);
  commit_ok(pending);
  // An update without a charge id keeps the one recorded.
  auto settled = work(tenant_a());
  settled.attempt_updates.push_back(attempt_move("pa_1", 2, "succeeded"));
  commit_ok(settled);
  auto got = db().find_attempt_by_charge(tenant_a(), "ch_1");
  ASSERT_TRUE(got) << explain(got);
  EXPECT_EQ(got->id.value, "pa_1");
  EXPECT_EQ(got->invoice.value, "inv_1");
  EXPECT_EQ(got->charge_id, "ch_1");
  EXPECT_EQ(got->status, "succeeded");
  auto listed = db().list_attempts(tenant_a(), invoice_id{"inv_1"});
  ASSERT_TRUE(listed) << explain(listed);
  EXPECT_EQ(listed->front().charge_id, "ch_1");
  // Ids are not unique (a sandbox that restarted counts again): the
  // attempt written last wins.
  auto later = work(tenant_a());
  auto other = attempt_move("pa_2", 1, "succeeded");
  other.charge_id = "ch_1";
  other.updated_at = at(900);
  later.attempt_updates.push_back(other);
  commit_ok(later);
  auto newest = db().find_attempt_by_charge(tenant_a(), "ch_1");
  ASSERT_TRUE(newest) << explain(newest);
  EXPECT_EQ(newest->id.value, "pa_2");
  // Another tenant does not see it; an empty id names nothing.
  EXPECT_EQ(code_of(db().find_attempt_by_charge(tenant_b(), "ch_1")),
            "not_found");
  EXPECT_EQ(code_of(db().find_attempt_by_charge(tenant_a(), "")),
            "not_found");
}

// == ledger ===================================================================

TEST_P(store_contract, a_ledger_append_writes_one_entry_per_posting) {
  auto w = work(tenant_a());
  w.ledger.push_back(ledger_tx("tx_1", "inv_1", 1500));
  commit_ok(w);

  auto entries = db().load_ledger(tenant_a(), "inv_1");
  ASSERT_TRUE(entries) << explain(entries);
  ASSERT_EQ(entries->size(), 2U);
  const ledger_entry_record& dr = entries->at(0);
  const ledger_entry_record& cr = entries->at(1);
  EXPECT_EQ(dr.transaction_id, "tx_1");
  EXPECT_EQ(dr.account_name, account::receivable);
  EXPECT_EQ(dr.side, entry_side::debit);
  EXPECT_EQ(dr.amount_minor, 1500);
  EXPECT_EQ(dr.currency, "USD");
  EXPECT_EQ(dr.memo, "memo tx_1");
  EXPECT_EQ(dr.subject, "inv_1");
  EXPECT_EQ(dr.at, at(0));
  EXPECT_EQ(cr.account_name, account::revenue);
  EXPECT_EQ(cr.side, entry_side::credit);
  EXPECT_EQ(cr.amount_minor, 1500);
  EXPECT_LT(dr.line, cr.line);
}

TEST_P(store_contract, a_duplicate_ledger_transaction_id_is_already_exists) {
  auto w1 = work(tenant_a());
  w1.ledger.push_back(ledger_tx("tx_1", "inv_1", 1500));
  commit_ok(w1);
  auto w2 = work(tenant_a());
  w2.ledger.push_back(ledger_tx("tx_1", "inv_1", 999));
  commit_fails(w2, errc::already_exists);
  auto w3 = work(tenant_a()); // the same id twice in one unit
  w3.ledger.push_back(ledger_tx("tx_2", "inv_1", 1));
  w3.ledger.push_back(ledger_tx("tx_2", "inv_1", 1));
  commit_fails(w3, errc::already_exists);

  auto entries = db().load_ledger(tenant_a(), "inv_1");
  ASSERT_TRUE(entries);
  ASSERT_EQ(entries->size(), 2U);
  EXPECT_EQ(entries->at(0).amount_minor, 1500);
}

TEST_P(store_contract,
       ledger_balances_are_debit_positive_per_account_and_currency) {
  auto w = work(tenant_a());
  w.ledger.push_back(ledger_tx("tx_1", "inv_1", 1000, "USD"));
  w.ledger.push_back(ledger_tx("tx_2", "inv_2", 250, "USD"));
  w.ledger.push_back(ledger_tx("tx_3", "inv_3", 700, "EUR"));
  commit_ok(w);

  auto balances = db().ledger_balances(tenant_a());
  ASSERT_TRUE(balances) << explain(balances);
  std::vector<std::string> got;
  for (const account_balance& b : *balances) {
    if (b.balance_minor != 0)
      got.push_back(std::string{to_string(b.account_name)} + " " + b.currency
                    + " " + std::to_string(b.balance_minor));
  }
  EXPECT_EQ(sorted(got), sorted({"receivable USD 1250", "revenue USD -1250",
                                 "receivable EUR 700", "revenue EUR -700"}));
}

TEST_P(store_contract, load_ledger_returns_a_subjects_entries_in_append_order) {
  auto w1 = work(tenant_a());
  w1.ledger.push_back(ledger_tx("tx_b", "inv_1", 100));
  w1.ledger.push_back(ledger_tx("tx_x", "inv_2", 300));
  commit_ok(w1);
  auto w2 = work(tenant_a());
  w2.ledger.push_back(ledger_tx("tx_a", "inv_1", 200));
  commit_ok(w2);

  auto entries = db().load_ledger(tenant_a(), "inv_1");
  ASSERT_TRUE(entries) << explain(entries);
  EXPECT_EQ(
    ids_of(*entries,
           [](const ledger_entry_record& e) { return e.transaction_id; }),
    (std::vector<std::string>{"tx_b", "tx_b", "tx_a", "tx_a"}));
  auto none = db().load_ledger(tenant_a(), "inv_9");
  ASSERT_TRUE(none);
  EXPECT_TRUE(none->empty());
}

// == audit ====================================================================

TEST_P(store_contract, audit_entries_are_listed_in_order_across_pages) {
  for (int u = 0; u < 3; ++u) {
    auto w = work(tenant_a());
    for (int i = 0; i < 3; ++i)
      w.audit.push_back(
        audit("action_" + std::to_string(u * 3 + i), u * 3 + i));
    commit_ok(w);
  }

  for (std::size_t limit : {1U, 4U, 9U, 100U}) {
    auto all = all_pages<audit_record>(
      [&](const std::string& c, std::size_t n) {
        return db().list_audit(tenant_a(), c, n);
      },
      limit);
    ASSERT_EQ(all.size(), 9U) << "limit " << limit;
    for (std::size_t i = 0; i < all.size(); ++i) {
      EXPECT_EQ(all[i].entry.action, "action_" + std::to_string(i));
      if (i > 0) {
        EXPECT_LT(all[i - 1].seq, all[i].seq);
      }
    }
    EXPECT_EQ(all[0].entry.actor, "system");
    EXPECT_EQ(all[0].entry.subject, "sub_1");
    EXPECT_EQ(all[0].entry.detail_json, "{}");
    EXPECT_EQ(all[8].entry.at, at(8));
  }
}

// == tenants, customers, plans ================================================

TEST_P(store_contract, tenants_are_created_once_and_found_by_key_hash) {
  auto got = db().get_tenant(tenant_a());
  ASSERT_TRUE(got) << explain(got);
  EXPECT_EQ(got->name, "Tenant ten_a");
  EXPECT_EQ(got->api_key_sha256_hex, hex64('a'));
  EXPECT_FALSE(got->test_mode);
  EXPECT_EQ(got->created_at, at(0));

  auto c = tenant(tenant_id{"ten_c"}, hex64('c'));
  c.test_mode = true;
  ASSERT_TRUE(db().create_tenant(c));
  auto by_key = db().find_tenant_by_key_hash(hex64('c'));
  ASSERT_TRUE(by_key) << explain(by_key);
  EXPECT_EQ(by_key->id.value, "ten_c");
  EXPECT_TRUE(by_key->test_mode);

  EXPECT_EQ(code_of(db().create_tenant(tenant(tenant_a(), hex64('d')))),
            "already_exists");
  EXPECT_EQ(code_of(db().create_tenant(tenant(tenant_id{"ten_d"}, hex64('a')))),
            "already_exists");
  EXPECT_EQ(code_of(db().find_tenant_by_key_hash(hex64('d'))), "not_found");
  EXPECT_EQ(code_of(db().get_tenant(tenant_id{"ten_d"})), "not_found");
}

TEST_P(store_contract,
       customers_are_created_at_version_one_and_updated_in_turn) {
  auto created = db().put_customer(tenant_a(), customer("cus_1", R"({"n": 1})"),
                                   0);
  ASSERT_TRUE(created) << explain(created);
  EXPECT_EQ(created->version, 1);
  auto updated = db().put_customer(tenant_a(), customer("cus_1", R"({"n": 2})"),
                                   1);
  ASSERT_TRUE(updated) << explain(updated);
  EXPECT_EQ(updated->version, 2);

  auto got = db().get_customer(tenant_a(), customer_id{"cus_1"});
  ASSERT_TRUE(got) << explain(got);
  EXPECT_EQ(got->version, 2);
  EXPECT_EQ(got->data_json, R"({"n": 2})");
  EXPECT_EQ(got->updated_at, at(0));
  EXPECT_EQ(code_of(db().get_customer(tenant_a(), customer_id{"cus_9"})),
            "not_found");
}

TEST_P(store_contract, a_stale_customer_put_is_a_conflict_and_changes_nothing) {
  ASSERT_TRUE(
    db().put_customer(tenant_a(), customer("cus_1", R"({"n": 1})"), 0));
  ASSERT_TRUE(
    db().put_customer(tenant_a(), customer("cus_1", R"({"n": 2})"), 1));

  EXPECT_EQ(
    code_of(db().put_customer(tenant_a(), customer("cus_1", R"({"n": 3})"), 1)),
    "version_conflict");
  EXPECT_EQ(
    code_of(db().put_customer(tenant_a(), customer("cus_1", R"({"n": 3})"), 0)),
    "version_conflict");
  EXPECT_EQ(
    code_of(db().put_customer(tenant_a(), customer("cus_9", R"({"n": 3})"), 4)),
    "not_found");
  auto got = db().get_customer(tenant_a(), customer_id{"cus_1"});
  ASSERT_TRUE(got);
  EXPECT_EQ(got->data_json, R"({"n": 2})");
  EXPECT_EQ(got->version, 2);
}

TEST_P(store_contract, plan_versions_are_immutable_and_listed_in_order) {
  ASSERT_TRUE(db().add_plan_version(tenant_a(), plan_version("plan_x", 2)));
  ASSERT_TRUE(db().add_plan_version(tenant_a(), plan_version("plan_x", 1)));
  auto changed = plan_version("plan_x", 1);
  changed.data_json = R"({"version": 99})";
  EXPECT_EQ(code_of(db().add_plan_version(tenant_a(), changed)),
            "already_exists");

  auto versions = db().list_plan_versions(tenant_a(), plan_id{"plan_x"});
  ASSERT_TRUE(versions) << explain(versions);
  ASSERT_EQ(versions->size(), 2U);
  EXPECT_EQ(versions->at(0).version, 1);
  EXPECT_EQ(versions->at(0).data_json, R"({"version": 1})");
  EXPECT_EQ(versions->at(0).effective_at, at(100));
  EXPECT_EQ(versions->at(1).version, 2);
  auto none = db().list_plan_versions(tenant_a(), plan_id{"plan_9"});
  ASSERT_TRUE(none);
  EXPECT_TRUE(none->empty());
}

TEST_P(store_contract, list_plans_shows_the_latest_version_of_each_plan_paged) {
  for (const auto& [plan, n] : std::vector<std::pair<std::string, int>>{
         {"plan_c", 1}, {"plan_a", 3}, {"plan_d", 2}, {"plan_b", 1}})
    for (int v = 1; v <= n; ++v)
      ASSERT_TRUE(db().add_plan_version(tenant_a(), plan_version(plan, v)));

  for (std::size_t limit : {1U, 3U, 10U}) {
    auto all = all_pages<plan_version_record>(
      [&](const std::string& c, std::size_t n) {
        return db().list_plans(tenant_a(), c, n);
      },
      limit);
    EXPECT_EQ(ids_of(all,
                     [](const plan_version_record& p) {
                       return p.plan.value + "@" + std::to_string(p.version);
                     }),
              (std::vector<std::string>{"plan_a@3", "plan_b@1", "plan_c@1",
                                        "plan_d@2"}))
      << "limit " << limit;
  }
}

// == subscription read model ==================================================

TEST_P(store_contract, the_read_model_is_upserted_in_the_unit_of_work) {
  auto w1 = work(tenant_a());
  w1.events.push_back(append("sub_1", 0, 1));
  w1.subscriptions.push_back(subscription("sub_1", "cus_1", "trialing", 1));
  commit_ok(w1);
  auto w2 = work(tenant_a());
  w2.events.push_back(append("sub_1", 1, 1));
  w2.subscriptions.push_back(subscription("sub_1", "cus_1", "active", 2));
  commit_ok(w2);

  auto got = db().get_subscription(tenant_a(), subscription_id{"sub_1"});
  ASSERT_TRUE(got) << explain(got);
  EXPECT_EQ(got->customer.value, "cus_1");
  EXPECT_EQ(got->plan.value, "plan_basic");
  EXPECT_EQ(got->status, "active");
  EXPECT_EQ(got->version, 2);
  EXPECT_EQ(got->data_json, R"({"v": 2})");
  EXPECT_EQ(got->updated_at, at(2));
  EXPECT_EQ(
    code_of(db().get_subscription(tenant_a(), subscription_id{"sub_9"})),
    "not_found");
}

TEST_P(store_contract,
       list_subscriptions_filters_by_status_and_customer_across_pages) {
  auto w = work(tenant_a());
  w.subscriptions.push_back(subscription("sub_1", "cus_1", "active", 1));
  w.subscriptions.push_back(subscription("sub_2", "cus_2", "active", 1));
  w.subscriptions.push_back(subscription("sub_3", "cus_1", "canceled", 1));
  w.subscriptions.push_back(subscription("sub_4", "cus_1", "active", 1));
  w.subscriptions.push_back(subscription("sub_5", "cus_3", "past_due", 1));
  commit_ok(w);

  auto list = [&](std::optional<std::string> st, std::optional<customer_id> c,
                  std::size_t limit) {
    return sorted(ids_of(all_pages<subscription_row>(
                           [&](const std::string& cur, std::size_t n) {
                             return db().list_subscriptions(tenant_a(), st, c,
                                                            cur, n);
                           },
                           limit),
                         [](const subscription_row& r) { return r.id.value; }));
  };
  using v = std::vector<std::string>;
  for (std::size_t limit : {1U, 2U, 10U}) {
    EXPECT_EQ(list(std::nullopt, std::nullopt, limit),
              (v{"sub_1", "sub_2", "sub_3", "sub_4", "sub_5"}));
    EXPECT_EQ(list("active", std::nullopt, limit),
              (v{"sub_1", "sub_2", "sub_4"}));
    EXPECT_EQ(list(std::nullopt, customer_id{"cus_1"}, limit),
              (v{"sub_1", "sub_3", "sub_4"}));
    EXPECT_EQ(list("active", customer_id{"cus_1"}, limit),
              (v{"sub_1", "sub_4"}));
    EXPECT_EQ(list("paused", std::nullopt, limit), v{});
  }
}

// == units of work ============================================================

TEST_P(store_contract, an_empty_unit_of_work_commits) {
  auto r = db().commit(work(tenant_a()));
  ASSERT_TRUE(r) << explain(r);
  EXPECT_TRUE(r->event_versions.empty());
}

TEST_P(store_contract,
       a_unit_commits_all_its_parts_or_none_when_its_last_part_fails) {
  auto base = work(tenant_a());
  base.events.push_back(append("sub_1", 0, 2));
  base.new_sagas.push_back(saga("sg_1", "invoice", 0));
  base.new_invoices.push_back(invoice("inv_1", "sub_1", "key_1"));
  base.new_attempts.push_back(attempt("pa_1", "inv_1", "inv_1/1"));
  base.timers_to_schedule.push_back(timer("tm_old", "sub_1", "retry", 10));
  base.timers_to_schedule.push_back(timer("tm_fire", "sub_2", "retry", 10));
  base.ledger.push_back(ledger_tx("tx_0", "inv_1", 100));
  commit_ok(base);
  ASSERT_TRUE(db().begin_idempotent(tenant_a(), "idem_1", hex64('1'), at(0)));

  // Every kind of part, then a ledger id that is already taken.
  auto w = work(tenant_a());
  w.inbox.push_back(inbox("stripe", "evt_1"));
  w.idempotency_responses.push_back(
    idempotency_record{"idem_1", hex64('1'), 200, "{}", at(1)});
  w.events.push_back(append("sub_1", 2, 2));
  w.snapshots.push_back(snapshot("sub_1", 4));
  w.subscriptions.push_back(subscription("sub_1", "cus_1", "active", 4));
  w.new_sagas.push_back(saga("sg_2", "dunning", 1));
  w.saga_updates.push_back(saga_move("sg_1", 1, saga_status::waiting, 1));
  w.saga_steps.push_back(saga_step("sg_1", 0, "issue_invoice"));
  w.timers_to_schedule.push_back(timer("tm_new", "sub_1", "period_end", 20));
  w.timers_to_cancel.push_back(timer_cancel{"sub_1", "retry"});
  w.timers_to_complete.push_back("tm_fire");
  w.new_invoices.push_back(invoice("inv_2", "sub_1", "key_2"));
  w.invoice_updates.push_back(invoice_move("inv_1", 1, "paid"));
  w.new_attempts.push_back(attempt("pa_2", "inv_1", "inv_1/2", 2));
  w.attempt_updates.push_back(attempt_move("pa_1", 1, "succeeded"));
  w.ledger.push_back(ledger_tx("tx_1", "inv_1", 200));
  w.outbox.push_back(message("msg_1"));
  w.audit.push_back(audit("invoice.pay", 1));
  w.ledger.push_back(ledger_tx("tx_0", "inv_1", 300));
  commit_fails(w, errc::already_exists);

  const auto& t = tenant_a();
  auto seen = db().inbox_contains(t, "stripe", "evt_1");
  ASSERT_TRUE(seen);
  EXPECT_FALSE(*seen);
  auto idem = db().begin_idempotent(t, "idem_1", hex64('1'), at(2));
  ASSERT_TRUE(idem);
  EXPECT_EQ(idem->state, idempotency_state::in_flight);
  auto h = db().load_history(t, subscription_id{"sub_1"});
  ASSERT_TRUE(h);
  EXPECT_EQ(h->version, 2);
  EXPECT_FALSE(h->snapshot.has_value());
  EXPECT_EQ(code_of(db().get_subscription(t, subscription_id{"sub_1"})),
            "not_found");
  EXPECT_EQ(code_of(db().get_saga(t, saga_id{"sg_2"})), "not_found");
  auto sg1 = db().get_saga(t, saga_id{"sg_1"});
  ASSERT_TRUE(sg1);
  EXPECT_EQ(sg1->version, 1);
  auto steps = db().load_saga_steps(t, saga_id{"sg_1"});
  ASSERT_TRUE(steps);
  EXPECT_TRUE(steps->empty());
  auto timers1 = db().list_timers(t, "sub_1");
  auto timers2 = db().list_timers(t, "sub_2");
  ASSERT_TRUE(timers1);
  ASSERT_TRUE(timers2);
  auto timer_key = [](const timer_record& r) { return r.id; };
  EXPECT_EQ(ids_of(*timers1, timer_key), std::vector<std::string>{"tm_old"});
  EXPECT_EQ(ids_of(*timers2, timer_key), std::vector<std::string>{"tm_fire"});
  EXPECT_EQ(code_of(db().get_invoice(t, invoice_id{"inv_2"})), "not_found");
  auto inv1 = db().get_invoice(t, invoice_id{"inv_1"});
  ASSERT_TRUE(inv1);
  EXPECT_EQ(inv1->version, 1);
  EXPECT_EQ(code_of(db().get_attempt(t, payment_attempt_id{"pa_2"})),
            "not_found");
  auto pa1 = db().get_attempt(t, payment_attempt_id{"pa_1"});
  ASSERT_TRUE(pa1);
  EXPECT_EQ(pa1->status, "pending");
  auto ledger = db().load_ledger(t, "inv_1");
  ASSERT_TRUE(ledger);
  EXPECT_EQ(ledger->size(), 2U);
  auto outbox = db().fetch_unpublished(0, 10);
  ASSERT_TRUE(outbox);
  EXPECT_TRUE(outbox->empty());
  auto audit_page = db().list_audit(t, "", 10);
  ASSERT_TRUE(audit_page);
  EXPECT_TRUE(audit_page->items.empty());

  // Without the duplicate, every part lands together.
  w.ledger.pop_back();
  auto receipt = commit_ok(w);
  EXPECT_EQ(receipt.event_versions, std::vector<std::int64_t>{4});
  auto seen2 = db().inbox_contains(t, "stripe", "evt_1");
  ASSERT_TRUE(seen2);
  EXPECT_TRUE(*seen2);
  auto idem2 = db().begin_idempotent(t, "idem_1", hex64('1'), at(2));
  ASSERT_TRUE(idem2);
  EXPECT_EQ(idem2->state, idempotency_state::replay);
  auto h2 = db().load_history(t, subscription_id{"sub_1"});
  ASSERT_TRUE(h2);
  EXPECT_EQ(h2->version, 4);
  ASSERT_TRUE(h2->snapshot.has_value());
  EXPECT_EQ(h2->snapshot->seq, 4);
  EXPECT_TRUE(db().get_subscription(t, subscription_id{"sub_1"}));
  EXPECT_TRUE(db().get_saga(t, saga_id{"sg_2"}));
  auto steps2 = db().load_saga_steps(t, saga_id{"sg_1"});
  ASSERT_TRUE(steps2);
  EXPECT_EQ(steps2->size(), 1U);
  auto timers1b = db().list_timers(t, "sub_1");
  auto timers2b = db().list_timers(t, "sub_2");
  ASSERT_TRUE(timers1b);
  ASSERT_TRUE(timers2b);
  EXPECT_EQ(ids_of(*timers1b, timer_key), std::vector<std::string>{"tm_new"});
  EXPECT_TRUE(timers2b->empty());
  EXPECT_TRUE(db().get_invoice(t, invoice_id{"inv_2"}));
  auto inv1b = db().get_invoice(t, invoice_id{"inv_1"});
  ASSERT_TRUE(inv1b);
  EXPECT_EQ(inv1b->status, "paid");
  EXPECT_TRUE(db().get_attempt(t, payment_attempt_id{"pa_2"}));
  auto ledger2 = db().load_ledger(t, "inv_1");
  ASSERT_TRUE(ledger2);
  EXPECT_EQ(ledger2->size(), 4U);
  auto outbox2 = db().fetch_unpublished(0, 10);
  ASSERT_TRUE(outbox2);
  EXPECT_EQ(outbox2->size(), 1U);
  auto audit2 = db().list_audit(t, "", 10);
  ASSERT_TRUE(audit2);
  EXPECT_EQ(audit2->items.size(), 1U);
}

TEST_P(store_contract, commit_many_gives_each_unit_its_own_result) {
  std::vector<unit_of_work> works;
  auto ok1 = work(tenant_a());
  ok1.events.push_back(append("sub_1", 0, 2));
  ok1.outbox.push_back(message("msg_1"));
  works.push_back(ok1);
  auto bad = work(tenant_b()); // fails on its last part
  bad.events.push_back(append("sub_2", 0, 1));
  bad.outbox.push_back(message("msg_bad"));
  bad.saga_updates.push_back(saga_move("sg_9", 1, saga_status::failed, 1));
  works.push_back(bad);
  auto chained = work(tenant_a()); // sees ok1's events
  chained.events.push_back(append("sub_1", 2, 1));
  chained.outbox.push_back(message("msg_2"));
  works.push_back(chained);
  auto lost = work(tenant_a()); // raced ok1 and lost
  lost.events.push_back(append("sub_1", 0, 1));
  lost.outbox.push_back(message("msg_lost"));
  works.push_back(lost);

  auto results = db().commit_many(works);
  ASSERT_EQ(results.size(), 4U);
  ASSERT_TRUE(results[0]) << explain(results[0]);
  EXPECT_EQ(results[0]->event_versions, std::vector<std::int64_t>{2});
  EXPECT_EQ(code_of(results[1]), "not_found");
  ASSERT_TRUE(results[2]) << explain(results[2]);
  EXPECT_EQ(results[2]->event_versions, std::vector<std::int64_t>{3});
  EXPECT_EQ(code_of(results[3]), "version_conflict");

  auto h1 = db().load_history(tenant_a(), subscription_id{"sub_1"});
  auto h2 = db().load_history(tenant_b(), subscription_id{"sub_2"});
  ASSERT_TRUE(h1);
  ASSERT_TRUE(h2);
  EXPECT_EQ(h1->version, 3);
  EXPECT_EQ(h2->version, 0);
  auto outbox = db().fetch_unpublished(0, 10);
  ASSERT_TRUE(outbox);
  EXPECT_EQ(ids_of(*outbox,
                   [](const outbox_record& r) { return r.message.id; }),
            (std::vector<std::string>{"msg_1", "msg_2"}));
}

TEST_P(store_contract, commit_many_of_nothing_returns_nothing) {
  EXPECT_TRUE(db().commit_many({}).empty());
}

// == tenant isolation =========================================================

namespace {

/// Everything tenant A owns in the isolation tests.
void expect_tenant_a_unchanged(store& db, const tenant_id& a) {
  auto h = db.load_history(a, subscription_id{"sub_1"});
  ASSERT_TRUE(h) << explain(h);
  EXPECT_EQ(h->version, 2);
  auto sg = db.get_saga(a, saga_id{"sg_1"});
  ASSERT_TRUE(sg) << explain(sg);
  EXPECT_EQ(sg->version, 1);
  EXPECT_EQ(sg->status, saga_status::running);
  auto steps = db.load_saga_steps(a, saga_id{"sg_1"});
  ASSERT_TRUE(steps);
  EXPECT_EQ(steps->size(), 1U);
  auto timers = db.list_timers(a, "sub_1");
  ASSERT_TRUE(timers);
  EXPECT_EQ(timers->size(), 2U);
  auto inv = db.get_invoice(a, invoice_id{"inv_1"});
  ASSERT_TRUE(inv);
  EXPECT_EQ(inv->version, 1);
  EXPECT_EQ(inv->status, "open");
  auto pa = db.get_attempt(a, payment_attempt_id{"pa_1"});
  ASSERT_TRUE(pa);
  EXPECT_EQ(pa->version, 1);
  auto cus = db.get_customer(a, customer_id{"cus_1"});
  ASSERT_TRUE(cus);
  EXPECT_EQ(cus->version, 1);
  EXPECT_EQ(cus->data_json, R"({"owner": "a"})");
  auto plans = db.list_plan_versions(a, plan_id{"plan_1"});
  ASSERT_TRUE(plans);
  ASSERT_EQ(plans->size(), 1U);
  EXPECT_EQ(plans->at(0).data_json, R"({"version": 1})");
  auto sub = db.get_subscription(a, subscription_id{"sub_1"});
  ASSERT_TRUE(sub);
  EXPECT_EQ(sub->status, "active");
  auto ledger = db.load_ledger(a, "inv_1");
  ASSERT_TRUE(ledger);
  EXPECT_EQ(ledger->size(), 2U);
  auto audit_page = db.list_audit(a, "", 10);
  ASSERT_TRUE(audit_page);
  EXPECT_EQ(audit_page->items.size(), 1U);
  auto idem = db.begin_idempotent(a, "idem_1", hex64('1'), {});
  ASSERT_TRUE(idem);
  EXPECT_EQ(idem->state, idempotency_state::in_flight);
  auto usage_sum = db.sum_usage(a, subscription_id{"sub_1"}, "api_calls",
                                instant{0}, instant{1'000'000'000'000});
  ASSERT_TRUE(usage_sum);
  EXPECT_EQ(*usage_sum, 10);
}

} // namespace

TEST_P(store_contract, tenant_b_reads_nothing_of_tenant_a) {
  auto w = work(tenant_a());
  w.inbox.push_back(inbox("stripe", "evt_1"));
  w.events.push_back(append("sub_1", 0, 2));
  w.snapshots.push_back(snapshot("sub_1", 2));
  w.subscriptions.push_back(subscription("sub_1", "cus_1", "active", 2));
  w.new_sagas.push_back(saga("sg_1", "invoice", 0));
  w.saga_steps.push_back(saga_step("sg_1", 0, "issue_invoice"));
  w.timers_to_schedule.push_back(timer("tm_1", "sub_1", "period_end", 10));
  w.new_invoices.push_back(invoice("inv_1", "sub_1", "key_1"));
  w.new_attempts.push_back(attempt("pa_1", "inv_1", "inv_1/1"));
  w.ledger.push_back(ledger_tx("tx_1", "inv_1", 100));
  w.audit.push_back(audit("subscription.create", 0));
  commit_ok(w);
  ASSERT_TRUE(db().put_customer(tenant_a(), customer("cus_1", "{}"), 0));
  ASSERT_TRUE(db().add_plan_version(tenant_a(), plan_version("plan_1", 1)));
  ASSERT_TRUE(db().record_usage(
    tenant_a(),
    std::vector<usage_event>{usage("u_1", "sub_1", "api_calls", 10, 0)}));
  ASSERT_TRUE(db().begin_idempotent(tenant_a(), "idem_1", hex64('1'), at(0)));

  const tenant_id b = tenant_b();
  auto events = db().load_events(b, subscription_id{"sub_1"}, 1);
  ASSERT_TRUE(events);
  EXPECT_TRUE(events->empty());
  auto h = db().load_history(b, subscription_id{"sub_1"});
  ASSERT_TRUE(h);
  EXPECT_EQ(h->version, 0);
  EXPECT_FALSE(h->snapshot.has_value());
  EXPECT_EQ(code_of(db().get_subscription(b, subscription_id{"sub_1"})),
            "not_found");
  auto subs = db().list_subscriptions(b, std::nullopt, std::nullopt, "", 10);
  ASSERT_TRUE(subs);
  EXPECT_TRUE(subs->items.empty());
  EXPECT_EQ(code_of(db().get_saga(b, saga_id{"sg_1"})), "not_found");
  auto steps = db().load_saga_steps(b, saga_id{"sg_1"});
  ASSERT_TRUE(steps);
  EXPECT_TRUE(steps->empty());
  auto sagas = db().list_sagas(b, {}, "", 10);
  ASSERT_TRUE(sagas);
  EXPECT_TRUE(sagas->items.empty());
  auto timers = db().list_timers(b, "sub_1");
  ASSERT_TRUE(timers);
  EXPECT_TRUE(timers->empty());
  EXPECT_EQ(code_of(db().get_invoice(b, invoice_id{"inv_1"})), "not_found");
  EXPECT_EQ(code_of(db().find_invoice_by_key(b, "key_1")), "not_found");
  auto invoices = db().list_invoices(b, std::nullopt, "", 10);
  ASSERT_TRUE(invoices);
  EXPECT_TRUE(invoices->items.empty());
  EXPECT_EQ(code_of(db().get_attempt(b, payment_attempt_id{"pa_1"})),
            "not_found");
  auto attempts = db().list_attempts(b, invoice_id{"inv_1"});
  ASSERT_TRUE(attempts);
  EXPECT_TRUE(attempts->empty());
  auto ledger = db().load_ledger(b, "inv_1");
  ASSERT_TRUE(ledger);
  EXPECT_TRUE(ledger->empty());
  auto balances = db().ledger_balances(b);
  ASSERT_TRUE(balances);
  for (const auto& bal : *balances)
    EXPECT_EQ(bal.balance_minor, 0);
  auto audit_page = db().list_audit(b, "", 10);
  ASSERT_TRUE(audit_page);
  EXPECT_TRUE(audit_page->items.empty());
  auto seen = db().inbox_contains(b, "stripe", "evt_1");
  ASSERT_TRUE(seen);
  EXPECT_FALSE(*seen);
  EXPECT_EQ(code_of(db().get_customer(b, customer_id{"cus_1"})), "not_found");
  auto versions = db().list_plan_versions(b, plan_id{"plan_1"});
  ASSERT_TRUE(versions);
  EXPECT_TRUE(versions->empty());
  auto plans = db().list_plans(b, "", 10);
  ASSERT_TRUE(plans);
  EXPECT_TRUE(plans->items.empty());
  auto sum = db().sum_usage(b, subscription_id{"sub_1"}, "api_calls", at(-10),
                            at(10));
  ASSERT_TRUE(sum);
  EXPECT_EQ(*sum, 0);
}

TEST_P(store_contract, tenant_b_changes_nothing_of_tenant_a) {
  auto w = work(tenant_a());
  w.events.push_back(append("sub_1", 0, 2));
  w.subscriptions.push_back(subscription("sub_1", "cus_1", "active", 2));
  w.new_sagas.push_back(saga("sg_1", "invoice", 0));
  w.saga_steps.push_back(saga_step("sg_1", 0, "issue_invoice"));
  w.timers_to_schedule.push_back(timer("tm_1", "sub_1", "period_end", 10));
  w.timers_to_schedule.push_back(timer("tm_2", "sub_1", "retry", 20));
  w.new_invoices.push_back(invoice("inv_1", "sub_1", "key_1"));
  w.new_attempts.push_back(attempt("pa_1", "inv_1", "inv_1/1"));
  w.ledger.push_back(ledger_tx("tx_1", "inv_1", 100));
  w.audit.push_back(audit("subscription.create", 0));
  commit_ok(w);
  ASSERT_TRUE(
    db().put_customer(tenant_a(), customer("cus_1", R"({"owner": "a"})"), 0));
  ASSERT_TRUE(db().add_plan_version(tenant_a(), plan_version("plan_1", 1)));
  ASSERT_TRUE(db().record_usage(
    tenant_a(),
    std::vector<usage_event>{usage("u_1", "sub_1", "api_calls", 10, 0)}));
  ASSERT_TRUE(db().begin_idempotent(tenant_a(), "idem_1", hex64('1'), at(0)));

  // Updates of A's rows by id, as B: none of them exists for B.
  const tenant_id b = tenant_b();
  auto upd = [&](auto fill) {
    auto u = work(b);
    fill(u);
    commit_fails(u, errc::not_found);
  };
  upd([&](unit_of_work& u) {
    u.saga_updates.push_back(saga_move("sg_1", 1, saga_status::failed, 1));
  });
  upd([&](unit_of_work& u) {
    u.saga_steps.push_back(saga_step("sg_1", 1, "x"));
  });
  upd([&](unit_of_work& u) { u.timers_to_complete.push_back("tm_1"); });
  upd([&](unit_of_work& u) {
    u.invoice_updates.push_back(invoice_move("inv_1", 1, "void"));
  });
  upd([&](unit_of_work& u) {
    u.attempt_updates.push_back(attempt_move("pa_1", 1, "failed"));
  });
  upd([&](unit_of_work& u) {
    u.idempotency_responses.push_back(
      idempotency_record{"idem_1", hex64('1'), 200, "{}", at(1)});
  });
  auto cancel = work(b);
  cancel.timers_to_cancel.push_back(timer_cancel{"sub_1", ""});
  commit_ok(cancel);
  EXPECT_EQ(
    code_of(db().put_customer(b, customer("cus_1", R"({"owner": "b"})"), 1)),
    "not_found");

  expect_tenant_a_unchanged(db(), tenant_a());
}

TEST_P(store_contract, tenants_have_separate_key_spaces) {
  // A takes ids in every table; B then uses the very same ids as its own.
  auto fill = [&](const tenant_id& t, const std::string& who) {
    auto w = work(t);
    w.inbox.push_back(inbox("stripe", "evt_1"));
    w.events.push_back(append("sub_1", 0, who == "a" ? 2 : 1));
    w.subscriptions.push_back(subscription("sub_1", "cus_1", who, 1));
    w.new_sagas.push_back(saga("sg_1", who, 0));
    w.timers_to_schedule.push_back(timer("tm_1", "sub_1", who, 10));
    w.new_invoices.push_back(invoice("inv_1", "sub_1", "key_1"));
    w.new_attempts.push_back(attempt("pa_1", "inv_1", "inv_1/1"));
    w.ledger.push_back(ledger_tx("tx_1", "inv_1", who == "a" ? 100 : 7));
    commit_ok(w);
    auto cus = db().put_customer(
      t, customer("cus_1", R"({"owner": ")" + who + R"("})"), 0);
    EXPECT_TRUE(cus) << explain(cus);
    auto plan = db().add_plan_version(t, plan_version("plan_1", 1));
    EXPECT_TRUE(plan) << explain(plan);
    auto used = db().record_usage(
      t, std::vector<usage_event>{
           usage("u_1", "sub_1", "api_calls", who == "a" ? 10 : 3, 0)});
    ASSERT_TRUE(used) << explain(used);
    EXPECT_EQ(used->accepted, 1);
    auto idem = db().begin_idempotent(t, "idem_1", hex64(who[0]), at(0));
    ASSERT_TRUE(idem) << explain(idem);
    EXPECT_EQ(idem->state, idempotency_state::new_request);
  };
  fill(tenant_a(), "a");
  fill(tenant_b(), "b");

  for (const auto& [t, who] : {std::pair{tenant_a(), std::string{"a"}},
                               std::pair{tenant_b(), std::string{"b"}}}) {
    auto h = db().load_history(t, subscription_id{"sub_1"});
    ASSERT_TRUE(h);
    EXPECT_EQ(h->version, who == "a" ? 2 : 1);
    auto sg = db().get_saga(t, saga_id{"sg_1"});
    ASSERT_TRUE(sg);
    EXPECT_EQ(sg->type, who);
    auto sub = db().get_subscription(t, subscription_id{"sub_1"});
    ASSERT_TRUE(sub);
    EXPECT_EQ(sub->status, who);
    auto timers = db().list_timers(t, "sub_1");
    ASSERT_TRUE(timers);
    ASSERT_EQ(timers->size(), 1U);
    EXPECT_EQ(timers->at(0).kind, who);
    auto ledger = db().load_ledger(t, "inv_1");
    ASSERT_TRUE(ledger);
    ASSERT_EQ(ledger->size(), 2U);
    EXPECT_EQ(ledger->at(0).amount_minor, who == "a" ? 100 : 7);
    auto cus = db().get_customer(t, customer_id{"cus_1"});
    ASSERT_TRUE(cus);
    EXPECT_EQ(cus->data_json, R"({"owner": ")" + who + R"("})");
    auto sum = db().sum_usage(t, subscription_id{"sub_1"}, "api_calls", at(0),
                              at(1));
    ASSERT_TRUE(sum);
    EXPECT_EQ(*sum, who == "a" ? 10 : 3);
  }
  // Completing B's timer leaves A's pending.
  auto done = work(tenant_b());
  done.timers_to_complete.push_back("tm_1");
  commit_ok(done);
  auto a_timers = db().list_timers(tenant_a(), "sub_1");
  ASSERT_TRUE(a_timers);
  EXPECT_EQ(a_timers->size(), 1U);
}

// -- concurrency (both backends are called from many threads) -----------------

// Writers race on one stream with optimistic appends, retrying on conflict:
// every append lands exactly once, the seqs stay contiguous, and the only
// failure a racing append may see is version_conflict.
TEST_P(store_contract, concurrent_writers_each_land_every_append_exactly_once) {
  constexpr int writers = 4;
  constexpr int appends_per_writer = 200;
  constexpr int retries_max = 1000; // per append: a broken store fails fast
  std::atomic<int> failures{0};
  std::vector<std::thread> threads;
  threads.reserve(writers);
  for (int w = 0; w < writers; ++w) {
    threads.emplace_back([this, &failures, w] {
      for (int i = 0; i < appends_per_writer; ++i) {
        for (int attempt = 0;; ++attempt) {
          if (attempt == retries_max) {
            ++failures;
            return;
          }
          auto h = db().load_history(tenant_a(), subscription_id{"sub_1"});
          auto u = work(tenant_a());
          u.events.push_back(
            event_append{subscription_id{"sub_1"},
                         h ? h->version : 0,
                         {new_event{std::to_string(w), "{}", at(i)}}});
          auto r = db().commit(u);
          if (r)
            break;
          if (r.code() != errc::version_conflict) {
            ADD_FAILURE() << to_string(r.code()) << ": " << r.error().detail;
            ++failures;
            return;
          }
        }
      }
    });
  }
  for (auto& t : threads)
    t.join();
  ASSERT_EQ(failures.load(), 0);

  auto events = db().load_events(tenant_a(), subscription_id{"sub_1"}, 1);
  ASSERT_TRUE(events);
  ASSERT_EQ(events->size(),
            static_cast<std::size_t>(writers * appends_per_writer));
  std::vector<int> per_writer(writers, 0);
  for (std::size_t i = 0; i < events->size(); ++i) {
    EXPECT_EQ((*events)[i].seq, static_cast<std::int64_t>(i + 1));
    ++per_writer[static_cast<std::size_t>(std::stoi((*events)[i].type))];
  }
  for (int count : per_writer)
    EXPECT_EQ(count, appends_per_writer);
}

// Claimers race for the same due timers: no timer goes to two of them, and
// together they get every one.
TEST_P(store_contract, concurrent_claimers_never_share_a_timer) {
  constexpr int timers = 500;
  auto w = work(tenant_a());
  for (int i = 0; i < timers; ++i)
    w.timers_to_schedule.push_back(
      timer("tm_" + std::to_string(i), "sub_1", "retry", i));
  commit_ok(w);

  constexpr int claimers = 4;
  std::vector<std::vector<std::string>> got(claimers);
  std::vector<std::thread> threads;
  threads.reserve(claimers);
  for (int c = 0; c < claimers; ++c) {
    threads.emplace_back([this, &got, c] {
      // Each round claims something or ends: at most `timers` rounds.
      for (int round = 0; round < timers; ++round) {
        auto batch = db().claim_due_timers(at(timers), 7, 60, "c");
        if (!batch || batch->empty())
          return;
        for (const auto& t : *batch)
          got[static_cast<std::size_t>(c)].push_back(t.timer.id);
      }
    });
  }
  for (auto& t : threads)
    t.join();

  std::vector<std::string> all;
  for (const auto& g : got)
    all.insert(all.end(), g.begin(), g.end());
  std::sort(all.begin(), all.end());
  EXPECT_EQ(all.size(), static_cast<std::size_t>(timers));
  EXPECT_EQ(std::adjacent_find(all.begin(), all.end()), all.end());
}

// == gateway configs ==========================================================

TEST_P(store_contract, a_gateway_config_reads_back_and_a_second_put_replaces_it) {
  ASSERT_TRUE(db().put_gateway_config(
    tenant_a(), {"stripe", R"({"webhook_secret": "whsec_1"})", at(0)}));
  auto first = db().get_gateway_config(tenant_a(), "stripe");
  ASSERT_TRUE(first) << explain(first);
  EXPECT_EQ(first->gateway, "stripe");
  EXPECT_EQ(first->config_json, R"({"webhook_secret": "whsec_1"})");
  EXPECT_EQ(first->updated_at, at(0));

  ASSERT_TRUE(db().put_gateway_config(
    tenant_a(), {"stripe", R"({"webhook_secret": "whsec_2"})", at(60)}));
  auto second = db().get_gateway_config(tenant_a(), "stripe");
  ASSERT_TRUE(second) << explain(second);
  EXPECT_EQ(second->config_json, R"({"webhook_secret": "whsec_2"})");
  EXPECT_EQ(second->updated_at, at(60));
}

TEST_P(store_contract, gateway_configs_are_per_gateway_and_per_tenant) {
  ASSERT_TRUE(db().put_gateway_config(
    tenant_a(), {"stripe", R"({"webhook_secret": "a"})", at(0)}));
  EXPECT_EQ(code_of(db().get_gateway_config(tenant_a(), "sandbox")),
            "not_found");
  EXPECT_EQ(code_of(db().get_gateway_config(tenant_b(), "stripe")),
            "not_found");
  ASSERT_TRUE(db().put_gateway_config(
    tenant_b(), {"stripe", R"({"webhook_secret": "b"})", at(1)}));
  EXPECT_EQ(db().get_gateway_config(tenant_a(), "stripe")->config_json,
            R"({"webhook_secret": "a"})");
  EXPECT_EQ(db().get_gateway_config(tenant_b(), "stripe")->config_json,
            R"({"webhook_secret": "b"})");
}

// == releasing idempotency keys ===============================================

TEST_P(store_contract, a_released_reservation_can_be_reserved_again) {
  ASSERT_TRUE(db().begin_idempotent(tenant_a(), "idem_1", hex64('1'), at(0)));
  auto released = db().release_idempotent(tenant_a(), "idem_1", hex64('1'));
  ASSERT_TRUE(released) << explain(released);
  auto again = db().begin_idempotent(tenant_a(), "idem_1", hex64('2'), at(1));
  ASSERT_TRUE(again) << explain(again);
  EXPECT_EQ(again->state, idempotency_state::new_request);
}

TEST_P(store_contract, only_an_unanswered_reservation_of_the_same_request_is_released) {
  EXPECT_EQ(code_of(db().release_idempotent(tenant_a(), "nope", hex64('1'))),
            "not_found");
  ASSERT_TRUE(db().begin_idempotent(tenant_a(), "idem_1", hex64('1'), at(0)));
  EXPECT_EQ(code_of(db().release_idempotent(tenant_a(), "idem_1", hex64('2'))),
            "idempotency_conflict");
  EXPECT_EQ(code_of(db().release_idempotent(tenant_b(), "idem_1", hex64('1'))),
            "not_found");
  auto w = work(tenant_a());
  w.idempotency_responses.push_back(
    idempotency_record{"idem_1", hex64('1'), 201, R"({"id": "x"})", at(1)});
  commit_ok(w);
  EXPECT_EQ(code_of(db().release_idempotent(tenant_a(), "idem_1", hex64('1'))),
            "already_exists");
  auto replay = db().begin_idempotent(tenant_a(), "idem_1", hex64('1'), at(2));
  ASSERT_TRUE(replay) << explain(replay);
  EXPECT_EQ(replay->state, idempotency_state::replay);
  ASSERT_TRUE(replay->stored);
  EXPECT_EQ(replay->stored->response_body, R"({"id": "x"})");
}

// -- claim order by availability ----------------------------------------------
// A claim takes timers in the order they became claimable: a timer never
// leased at its due time, one whose lease lapsed at the lease's end.

TEST_P(store_contract, a_lapsed_lease_queues_the_timer_at_its_lease_end) {
  auto w = work(tenant_a());
  w.timers_to_schedule.push_back(timer("tm_early", "sub_1", "retry", 10));
  w.timers_to_schedule.push_back(timer("tm_later", "sub_2", "retry", 40));
  commit_ok(w);
  // tm_early is leased until 50 and its claimer dies; tm_later fell due at
  // 40, before that lease ended, so it waited longer.
  auto first = db().claim_due_timers(at(20), 1, 30, "claimer_1");
  ASSERT_TRUE(first) << explain(first);
  ASSERT_EQ(first->size(), 1U);
  EXPECT_EQ(first->at(0).timer.id, "tm_early");

  auto one = db().claim_due_timers(at(60), 1, 30, "claimer_2");
  ASSERT_TRUE(one) << explain(one);
  ASSERT_EQ(one->size(), 1U);
  EXPECT_EQ(one->at(0).timer.id, "tm_later");
  EXPECT_EQ(one->at(0).lease_until, at(90));
  auto next = db().claim_due_timers(at(60), 10, 30, "claimer_2");
  ASSERT_TRUE(next) << explain(next);
  ASSERT_EQ(next->size(), 1U);
  EXPECT_EQ(next->at(0).timer.id, "tm_early");
  EXPECT_EQ(next->at(0).timer.due_at, at(10)); // its due time is unchanged
}

TEST_P(store_contract, a_batch_of_claims_comes_in_availability_order) {
  auto w = work(tenant_a());
  w.timers_to_schedule.push_back(timer("tm_1", "sub_1", "retry", 10));
  w.timers_to_schedule.push_back(timer("tm_2", "sub_2", "retry", 45));
  w.timers_to_schedule.push_back(timer("tm_3", "sub_3", "retry", 70));
  commit_ok(w);
  ASSERT_TRUE(db().claim_due_timers(at(20), 1, 30, "claimer_1")); // tm_1 → 50

  auto all = db().claim_due_timers(at(100), 10, 30, "claimer_2");
  ASSERT_TRUE(all) << explain(all);
  std::vector<std::string> ids;
  for (const auto& c : *all)
    ids.push_back(c.timer.id);
  EXPECT_EQ(ids, (std::vector<std::string>{"tm_2", "tm_1", "tm_3"}));
}

TEST_P(store_contract, many_leased_timers_do_not_hide_a_claimable_one) {
  auto w = work(tenant_a());
  for (int i = 0; i < 300; ++i)
    w.timers_to_schedule.push_back(timer(
      "tm_busy_" + std::to_string(i), "sub_" + std::to_string(i), "retry", 10));
  commit_ok(w);
  auto busy = db().claim_due_timers(at(20), 300, 1000, "claimer_1");
  ASSERT_TRUE(busy) << explain(busy);
  ASSERT_EQ(busy->size(), 300U);

  auto late = work(tenant_b());
  late.timers_to_schedule.push_back(timer("tm_free", "sub_x", "retry", 30));
  commit_ok(late);
  auto got = db().claim_due_timers(at(40), 1, 2000, "claimer_2");
  ASSERT_TRUE(got) << explain(got);
  ASSERT_EQ(got->size(), 1U);
  EXPECT_EQ(got->at(0).timer.id, "tm_free");
  EXPECT_EQ(got->at(0).tenant, tenant_b());
  auto none = db().claim_due_timers(at(1019), 10, 30, "claimer_3");
  ASSERT_TRUE(none);
  EXPECT_TRUE(none->empty()); // every lease still holds (until 1020)
  auto back = db().claim_due_timers(at(1020), 500, 30, "claimer_3");
  ASSERT_TRUE(back);
  EXPECT_EQ(back->size(), 300U);
}

TEST_P(store_contract, a_completed_leased_timer_leaves_the_claim_order) {
  auto w = work(tenant_a());
  w.timers_to_schedule.push_back(timer("tm_1", "sub_1", "retry", 10));
  w.timers_to_schedule.push_back(timer("tm_2", "sub_2", "retry", 10));
  commit_ok(w);
  ASSERT_TRUE(db().claim_due_timers(at(20), 10, 30, "claimer_1"));
  auto done = work(tenant_a());
  done.timers_to_complete.push_back("tm_1");
  commit_ok(done);
  auto cancel = work(tenant_a());
  cancel.timers_to_cancel.push_back(timer_cancel{"sub_2", ""});
  commit_ok(cancel);
  auto after = db().claim_due_timers(at(100), 10, 30, "claimer_2");
  ASSERT_TRUE(after) << explain(after);
  EXPECT_TRUE(after->empty());

  // A cancelled id scheduled again is claimable at its new due time, with no
  // trace of its old lease.
  auto again = work(tenant_a());
  again.timers_to_schedule.push_back(timer("tm_2", "sub_2", "retry", 90));
  commit_ok(again);
  auto rearmed = db().claim_due_timers(at(100), 10, 30, "claimer_3");
  ASSERT_TRUE(rearmed) << explain(rearmed);
  ASSERT_EQ(rearmed->size(), 1U);
  EXPECT_EQ(rearmed->at(0).timer.id, "tm_2");
  EXPECT_EQ(rearmed->at(0).timer.due_at, at(90));
  EXPECT_EQ(rearmed->at(0).lease_until, at(130));
}
