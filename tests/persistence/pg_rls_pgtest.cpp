// Tenant isolation enforced by PostgreSQL itself: raw SQL sessions as the
// service's role (recur_app) that set app.tenant_id to tenant A try to read
// and change tenant B's rows in every table; the role's privileges; the
// SECURITY DEFINER system functions; and the ledger's balance trigger.

#include <memory>
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <pqxx/pqxx>

#include "persistence/pg_store.hpp"
#include "tests/persistence/pg_testdb.hpp"

namespace {

using namespace recur;

const tenant_id tenant_a{"ten_a"};
const tenant_id tenant_b{"ten_b"};

// Every table of the schema: a new table must be added here, and the test
// `the_table_list_covers_every_table` fails until it is.
const std::vector<std::string> all_tables{"audit_log",
                                          "customers",
                                          "gateway_configs",
                                          "idempotency_keys",
                                          "invoices",
                                          "ledger_entries",
                                          "outbox",
                                          "payment_attempts",
                                          "plans",
                                          "processed_webhooks",
                                          "saga_steps",
                                          "sagas",
                                          "snapshots",
                                          "subscription_events",
                                          "subscriptions",
                                          "tenants",
                                          "timers",
                                          "usage_events"};

/// "ok", or the SQLSTATE the statements failed with.
template <class F>
std::string sqlstate_of(F&& f) {
  try {
    f();
    return "ok";
  } catch (const pqxx::insufficient_privilege&) {
    return "42501"; // libpqxx 6.4 throws this one without its SQLSTATE
  } catch (const pqxx::sql_error& e) {
    return e.sqlstate();
  }
}

std::string app_conninfo(const pgtest::scratch_db& db) {
  return db.conninfo() + " user=recur_app";
}

ledger_append balanced(const std::string& id, std::int64_t amount_minor) {
  const currency usd = currency::of("USD");
  auto tx = ledger_transaction::make(
    "memo",
    {posting{account::receivable, entry_side::debit, money{amount_minor, usd}},
     posting{account::revenue, entry_side::credit, money{amount_minor, usd}}});
  return ledger_append{id, std::move(tx).value(), instant{0}, "inv_1"};
}

// One row (or more) in every table for tenant `t`, through the store.
void seed(store& s, const tenant_id& t, char key) {
  ASSERT_TRUE(s.create_tenant({t, "Tenant", std::string(64, key), false, {}}));
  unit_of_work w;
  w.tenant = t;
  w.inbox.push_back({"stripe", "evt_1", {}});
  w.events.push_back({subscription_id{"sub_1"}, 0, {{"created", "{}", {}}}});
  w.snapshots.push_back({subscription_id{"sub_1"}, 1, "{}", {}});
  w.subscriptions.push_back({subscription_id{"sub_1"},
                             customer_id{"cus_1"},
                             plan_id{"plan_1"},
                             "active",
                             1,
                             "{}",
                             {}});
  w.new_sagas.push_back({saga_id{"sg_1"},
                         "invoice",
                         subscription_id{"sub_1"},
                         saga_status::running,
                         0,
                         1,
                         "{}",
                         {},
                         {}});
  w.saga_steps.push_back(
    {saga_id{"sg_1"}, 0, 0, step_kind::action, "issue", "ok", "", {}});
  w.timers_to_schedule.push_back({"tm_1", "sub_1", "retry", {}, "{}"});
  invoice_record inv;
  inv.id = invoice_id{"inv_1"};
  inv.subscription = subscription_id{"sub_1"};
  inv.idempotency_key = "key_1";
  inv.status = "open";
  inv.currency = "USD";
  w.new_invoices.push_back(inv);
  payment_attempt_record pa;
  pa.id = payment_attempt_id{"pa_1"};
  pa.invoice = inv.id;
  pa.idempotency_key = "inv_1/1";
  pa.status = "pending";
  pa.currency = "USD";
  w.new_attempts.push_back(pa);
  w.ledger.push_back(balanced("tx_1", 100));
  w.outbox.push_back({"msg_" + t.value, "sub_1", "t", "sub_1", "{}", {}});
  w.audit.push_back({"system", "seed", "sub_1", "{}", {}});
  ASSERT_TRUE(s.commit(w));
  ASSERT_TRUE(s.put_customer(t, {customer_id{"cus_1"}, "{}", 0, {}}, 0));
  ASSERT_TRUE(s.add_plan_version(t, {plan_id{"plan_1"}, 1, {}, "{}"}));
  const std::vector<usage_event> used{
    {"u_1", subscription_id{"sub_1"}, "api_calls", 1, {}}};
  ASSERT_TRUE(s.record_usage(t, used));
  ASSERT_TRUE(s.begin_idempotent(t, "idem_1", std::string(64, '1'), {}));
  ASSERT_TRUE(s.put_gateway_config(t, {"stripe", "{}", {}}));
}

std::int64_t count_rows(pqxx::connection& c, const std::string& table,
                        const std::string& where = "true") {
  pqxx::work tx{c};
  return tx
    .exec("SELECT count(*) FROM " + tx.quote_name(table) + " WHERE "
          + where)[0][0]
    .as<std::int64_t>();
}

/// Both tenants seeded through the store in a pooled database.
class seeded : public ::testing::Test {
protected:
  void SetUp() override {
    db_ = pgtest::scratch_db::create();
    ASSERT_NE(db_, nullptr);
    auto opened = open_pg_store(db_->config());
    ASSERT_TRUE(opened) << opened.error().detail;
    store_ = std::move(*opened);
    seed(*store_, tenant_a, 'a');
    seed(*store_, tenant_b, 'b');
    admin_ = std::make_unique<pqxx::connection>(db_->conninfo());
  }

  void TearDown() override {
    store_.reset();
    admin_.reset();
  }

  std::unique_ptr<pgtest::scratch_db> db_;
  std::unique_ptr<store> store_;
  std::unique_ptr<pqxx::connection> admin_; // superuser: sees every row
};

/// Per table: a session of tenant A tries everything on tenant B's rows.
class isolation : public seeded,
                  public ::testing::WithParamInterface<std::string> {
protected:
  // A transaction of recur_app scoped to tenant A, rolled back at the end.
  template <class F>
  std::string as_tenant_a(F&& f) {
    pqxx::connection app{app_conninfo(*db_)};
    return sqlstate_of([&] {
      pqxx::work tx{app};
      tx.exec("SELECT set_config('app.tenant_id', 'ten_a', true)");
      f(tx);
    });
  }

  // One of B's rows as JSON, read by the superuser.
  std::string row_of_b() {
    pqxx::work tx{*admin_};
    const auto r = tx.exec("SELECT row_to_json(x)::text FROM "
                           + tx.quote_name(GetParam())
                           + " x WHERE tenant_id = 'ten_b' LIMIT 1");
    return r.empty() ? std::string{} : r[0][0].as<std::string>();
  }

  // The columns an INSERT may name (not the generated ones).
  std::string insertable_columns() {
    pqxx::work tx{*admin_};
    std::string cols;
    for (const auto& r :
         tx.exec_params("SELECT quote_ident(column_name) FROM"
                        " information_schema.columns WHERE table_schema ="
                        " 'public' AND table_name = $1 AND is_generated ="
                        " 'NEVER' ORDER BY ordinal_position",
                        GetParam()))
      cols += (cols.empty() ? "" : ", ") + r[0].as<std::string>();
    return cols;
  }

  bool app_may(const std::string& privilege) {
    pqxx::work tx{*admin_};
    return tx
      .exec_params("SELECT has_table_privilege('recur_app', $1, $2)",
                   "public." + GetParam(), privilege)[0][0]
      .as<bool>();
  }
};

TEST_P(isolation, tenant_a_reads_only_its_own_rows) {
  const auto& table = GetParam();
  ASSERT_GT(count_rows(*admin_, table, "tenant_id = 'ten_b'"), 0)
    << "the seed left " << table << " without rows of B";
  std::int64_t own = -1, foreign = -1;
  EXPECT_EQ(as_tenant_a([&](pqxx::work& tx) {
              own
                = tx.exec("SELECT count(*) FROM " + tx.quote_name(table))[0][0]
                    .as<std::int64_t>();
              foreign = tx.exec("SELECT count(*) FROM " + tx.quote_name(table)
                                + " WHERE tenant_id <> 'ten_a'")[0][0]
                          .as<std::int64_t>();
            }),
            "ok");
  EXPECT_GT(own, 0);
  EXPECT_EQ(foreign, 0);
}

TEST_P(isolation, a_session_that_set_no_tenant_sees_nothing) {
  pqxx::connection app{app_conninfo(*db_)};
  EXPECT_EQ(count_rows(app, GetParam()), 0);
}

TEST_P(isolation, tenant_a_updates_and_deletes_none_of_b_rows) {
  const auto& table = GetParam();
  const auto q = admin_->quote_name(table);
  const auto b_before = count_rows(*admin_, table, "tenant_id = 'ten_b'");
  const bool may_update = app_may("UPDATE");
  pqxx::result::size_type updated = 0, own_updated = 0, deleted = 0;
  const auto update = as_tenant_a([&](pqxx::work& tx) {
    updated = tx.exec("UPDATE " + q
                      + " SET tenant_id = tenant_id WHERE tenant_id = 'ten_b'")
                .affected_rows();
    own_updated
      = tx.exec("UPDATE " + q + " SET tenant_id = tenant_id").affected_rows();
  });
  if (may_update) {
    EXPECT_EQ(update, "ok");
    EXPECT_EQ(updated, 0U);
    EXPECT_GT(own_updated, 0U); // the same statement does reach A's rows
    // Moving A's rows over to B breaks the policy's WITH CHECK.
    EXPECT_EQ(as_tenant_a([&](pqxx::work& tx) {
                tx.exec("UPDATE " + q + " SET tenant_id = 'ten_b'");
              }),
              "42501");
  } else {
    EXPECT_EQ(update, "42501"); // insufficient_privilege
  }
  const auto del = as_tenant_a([&](pqxx::work& tx) {
    deleted = tx.exec("DELETE FROM " + q + " WHERE tenant_id = 'ten_b'")
                .affected_rows();
  });
  EXPECT_TRUE(del == "42501" || (del == "ok" && deleted == 0U)) << del;
  EXPECT_EQ(count_rows(*admin_, table, "tenant_id = 'ten_b'"), b_before);
}

TEST_P(isolation, tenant_a_cannot_insert_a_row_of_b) {
  const auto& table = GetParam();
  const auto json = row_of_b();
  ASSERT_FALSE(json.empty());
  const auto cols = insertable_columns();
  const auto b_before = count_rows(*admin_, table, "tenant_id = 'ten_b'");
  EXPECT_EQ(as_tenant_a([&](pqxx::work& tx) {
              const auto q = tx.quote_name(table);
              tx.exec_params("INSERT INTO " + q + " (" + cols + ") SELECT "
                               + cols + " FROM json_populate_record(NULL::" + q
                               + ", $1::json)",
                             json);
            }),
            "42501"); // row-level security (or no INSERT privilege at all)
  EXPECT_EQ(count_rows(*admin_, table, "tenant_id = 'ten_b'"), b_before);
}

INSTANTIATE_TEST_SUITE_P(every_table, isolation,
                         ::testing::ValuesIn(all_tables),
                         [](const auto& info) { return info.param; });

// -- the schema ---------------------------------------------------------------

TEST_F(seeded, the_table_list_covers_every_table) {
  pqxx::work tx{*admin_};
  std::vector<std::string> found;
  for (const auto& r : tx.exec("SELECT tablename FROM pg_tables WHERE"
                               " schemaname = 'public' AND tablename <>"
                               " 'schema_migrations' ORDER BY tablename"))
    found.push_back(r[0].as<std::string>());
  EXPECT_EQ(found, all_tables);
}

TEST_F(seeded,
       every_table_has_row_level_security_and_a_key_that_starts_with_tenant) {
  pqxx::work tx{*admin_};
  // One row per table that breaks a rule, naming the rule.
  const auto bad = tx.exec(R"(
SELECT c.relname,
       c.relrowsecurity AS rls,
       NOT c.relforcerowsecurity AS not_forced,
       EXISTS (SELECT 1 FROM pg_policy p WHERE p.polrelid = c.oid
               AND p.polname = 'tenant_isolation') AS policy,
       EXISTS (SELECT 1 FROM pg_attribute a WHERE a.attrelid = c.oid
               AND a.attname = 'tenant_id' AND a.attnotnull) AS tenant_not_null,
       EXISTS (SELECT 1 FROM pg_constraint k WHERE k.conrelid = c.oid
               AND k.conname = c.relname || '_tenant_set') AS tenant_not_empty,
       EXISTS (SELECT 1 FROM pg_index i JOIN pg_attribute a
                 ON a.attrelid = i.indrelid AND a.attnum = i.indkey[0]
               WHERE i.indrelid = c.oid AND i.indisprimary
                 AND a.attname = 'tenant_id') AS key_starts_with_tenant
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE n.nspname = 'public' AND c.relkind = 'r'
  AND c.relname <> 'schema_migrations'
ORDER BY c.relname)");
  ASSERT_EQ(bad.size(), all_tables.size());
  for (const auto& r : bad) {
    SCOPED_TRACE(r[0].as<std::string>());
    EXPECT_TRUE(r["rls"].as<bool>());
    EXPECT_TRUE(r["not_forced"].as<bool>());
    EXPECT_TRUE(r["policy"].as<bool>());
    EXPECT_TRUE(r["tenant_not_null"].as<bool>());
    EXPECT_TRUE(r["tenant_not_empty"].as<bool>());
    EXPECT_TRUE(r["key_starts_with_tenant"].as<bool>());
  }
}

TEST_F(seeded, the_app_role_is_no_superuser_has_no_bypassrls_and_owns_nothing) {
  pqxx::work tx{*admin_};
  const auto role = tx.exec("SELECT rolsuper, rolbypassrls, rolcanlogin FROM"
                            " pg_roles WHERE rolname = 'recur_app'");
  ASSERT_EQ(role.size(), 1U);
  EXPECT_FALSE(role[0][0].as<bool>());
  EXPECT_FALSE(role[0][1].as<bool>());
  EXPECT_TRUE(role[0][2].as<bool>());
  EXPECT_EQ(tx.exec("SELECT count(*) FROM pg_class WHERE relowner ="
                    " 'recur_app'::regrole")[0][0]
              .as<int>(),
            0);
  EXPECT_EQ(tx.exec("SELECT count(*) FROM pg_proc WHERE proowner ="
                    " 'recur_app'::regrole")[0][0]
              .as<int>(),
            0);
}

TEST_F(seeded, the_store_works_as_the_app_role) {
  // The store's working connections are recur_app sessions.
  ASSERT_TRUE(store_->get_tenant(tenant_a));
  pqxx::work tx{*admin_};
  EXPECT_GE(tx.exec_params("SELECT count(*) FROM pg_stat_activity WHERE"
                           " datname = $1 AND usename = 'recur_app'",
                           db_->name())[0][0]
              .as<int>(),
            1);
}

TEST_F(seeded, system_functions_are_security_definer_with_a_pinned_path) {
  pqxx::work tx{*admin_};
  const auto fns = tx.exec(R"(
SELECT p.proname, p.prosecdef,
       coalesce(array_to_string(p.proconfig, ','), '') AS config,
       pg_get_userbyid(p.proowner) AS owner,
       has_function_privilege('recur_app', p.oid, 'EXECUTE') AS app_may,
       EXISTS (SELECT 1 FROM aclexplode(p.proacl) a WHERE a.grantee = 0)
         AS public_may
FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
WHERE n.nspname = 'public' AND p.proname LIKE 'recur\_%'
ORDER BY p.proname)");
  // 0007's six, recur_claim_scoped_timers (0009), recur_saga_counts and
  // recur_timer_counts (0014).
  ASSERT_EQ(fns.size(), 9U);
  for (const auto& f : fns) {
    SCOPED_TRACE(f[0].as<std::string>());
    EXPECT_TRUE(f["prosecdef"].as<bool>());
    EXPECT_EQ(f["config"].as<std::string>(), "search_path=pg_catalog, pg_temp");
    EXPECT_NE(f["owner"].as<std::string>(), "recur_app");
    EXPECT_TRUE(f["app_may"].as<bool>());
    EXPECT_FALSE(f["public_may"].as<bool>());
  }
}

// -- one-round-trip reads (migration 0013) -----------------------------------

TEST_F(seeded, scoped_read_functions_run_as_the_caller_and_only_the_app_may) {
  pqxx::work tx{*admin_};
  const auto fns = tx.exec(R"(
SELECT p.proname, p.prosecdef,
       pg_get_userbyid(p.proowner) AS owner,
       has_function_privilege('recur_app', p.oid, 'EXECUTE') AS app_may,
       EXISTS (SELECT 1 FROM aclexplode(p.proacl) a WHERE a.grantee = 0)
         AS public_may
FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
WHERE n.nspname = 'public' AND p.proname LIKE 'scoped\_%'
ORDER BY p.proname)");
  ASSERT_EQ(fns.size(), 9U);
  for (const auto& f : fns) {
    SCOPED_TRACE(f[0].as<std::string>());
    EXPECT_FALSE(f["prosecdef"].as<bool>()); // row-level security binds them
    EXPECT_NE(f["owner"].as<std::string>(), "recur_app");
    EXPECT_TRUE(f["app_may"].as<bool>());
    EXPECT_FALSE(f["public_may"].as<bool>());
  }
}

TEST_F(seeded, one_round_trip_reads_do_not_see_another_tenants_rows) {
  // Rows that exist for tenant B only.
  unit_of_work w;
  w.tenant = tenant_b;
  w.events.push_back({subscription_id{"sub_b"}, 0, {{"created", "{}", {}}}});
  w.snapshots.push_back({subscription_id{"sub_b"}, 1, "{\"b\":1}", {}});
  w.subscriptions.push_back({subscription_id{"sub_b"}, customer_id{"cus_b"},
                             plan_id{"plan_1"}, "active", 1, "{}", {}});
  w.new_sagas.push_back({saga_id{"sg_b"}, "invoice", subscription_id{"sub_b"},
                         saga_status::running, 0, 1, "{}", {}, {}});
  invoice_record inv;
  inv.id = invoice_id{"inv_b"};
  inv.subscription = subscription_id{"sub_b"};
  inv.idempotency_key = "key_b";
  inv.status = "open";
  inv.currency = "USD";
  w.new_invoices.push_back(inv);
  payment_attempt_record pa;
  pa.id = payment_attempt_id{"pa_b"};
  pa.invoice = inv.id;
  pa.idempotency_key = "inv_b/1";
  pa.status = "pending";
  pa.currency = "USD";
  w.new_attempts.push_back(pa);
  w.attempt_updates.push_back({pa.id, 1, "pending", "", {}, "ch_b"});
  ASSERT_TRUE(store_->commit(w));
  ASSERT_TRUE(store_->put_customer(tenant_b, {customer_id{"cus_b"}, "{}", 0, {}},
                                   0));
  ASSERT_TRUE(store_->put_gateway_config(tenant_b, {"gw_b", "{}", {}}));

  EXPECT_TRUE(store_->get_subscription(tenant_b, subscription_id{"sub_b"}));
  EXPECT_TRUE(store_->get_saga(tenant_b, saga_id{"sg_b"}));
  EXPECT_TRUE(store_->get_invoice(tenant_b, invoice_id{"inv_b"}));
  EXPECT_TRUE(store_->get_customer(tenant_b, customer_id{"cus_b"}));
  EXPECT_TRUE(store_->get_attempt(tenant_b, payment_attempt_id{"pa_b"}));
  EXPECT_TRUE(store_->find_attempt_by_charge(tenant_b, "ch_b"));
  EXPECT_TRUE(store_->get_gateway_config(tenant_b, "gw_b"));
  const auto of_b = store_->load_history(tenant_b, subscription_id{"sub_b"});
  ASSERT_TRUE(of_b);
  ASSERT_TRUE(of_b->snapshot.has_value());
  EXPECT_EQ(of_b->snapshot->state_json, "{\"b\":1}");
  EXPECT_EQ(of_b->version, 1);

  const auto not_found = [](const auto& r) {
    return !r && r.error().code == errc::not_found;
  };
  EXPECT_TRUE(
    not_found(store_->get_subscription(tenant_a, subscription_id{"sub_b"})));
  EXPECT_TRUE(not_found(store_->get_saga(tenant_a, saga_id{"sg_b"})));
  EXPECT_TRUE(not_found(store_->get_invoice(tenant_a, invoice_id{"inv_b"})));
  EXPECT_TRUE(not_found(store_->get_customer(tenant_a, customer_id{"cus_b"})));
  EXPECT_TRUE(
    not_found(store_->get_attempt(tenant_a, payment_attempt_id{"pa_b"})));
  EXPECT_TRUE(not_found(store_->find_attempt_by_charge(tenant_a, "ch_b")));
  EXPECT_TRUE(not_found(store_->get_gateway_config(tenant_a, "gw_b")));
  EXPECT_TRUE(not_found(store_->get_tenant(tenant_id{"ten_nobody"})));
  const auto of_a = store_->load_history(tenant_a, subscription_id{"sub_b"});
  ASSERT_TRUE(of_a);
  EXPECT_FALSE(of_a->snapshot.has_value());
  EXPECT_TRUE(of_a->tail.empty());
  EXPECT_EQ(of_a->version, 0);
}

TEST_F(seeded, row_level_security_not_the_functions_filter_keeps_b_out) {
  // A body that forgets the tenant filter still returns only A's sub_1 (both
  // tenants have one): the policy filters the invoker's query.
  {
    pqxx::work tx{*admin_};
    tx.exec(R"(
CREATE OR REPLACE FUNCTION scoped_get_subscription(p_tenant text, p_id text)
RETURNS SETOF public.subscriptions
LANGUAGE plpgsql SECURITY INVOKER SET search_path = pg_catalog, pg_temp AS $$
BEGIN
  PERFORM set_config('app.tenant_id', p_tenant, true);
  RETURN QUERY SELECT * FROM public.subscriptions r WHERE r.subscription_id = p_id;
END $$)");
    tx.commit();
  }
  pqxx::connection app{app_conninfo(*db_)};
  pqxx::nontransaction tx{app};
  const auto rows = tx.exec(
    "SELECT tenant_id FROM scoped_get_subscription('ten_a', 'sub_1')");
  ASSERT_EQ(rows.size(), 1U);
  EXPECT_EQ(rows[0][0].as<std::string>(), "ten_a");
  EXPECT_TRUE(store_->get_subscription(tenant_a, subscription_id{"sub_1"}));
}

TEST_F(seeded, a_scoped_read_leaves_no_tenant_set_after_its_statement) {
  pqxx::connection app{app_conninfo(*db_)};
  pqxx::nontransaction tx{app};
  EXPECT_EQ(tx.exec("SELECT count(*) FROM scoped_get_subscription('ten_a',"
                    " 'sub_1')")[0][0]
              .as<int>(),
            1);
  EXPECT_EQ(tx.exec("SELECT count(*) FROM subscriptions")[0][0].as<int>(), 0);
  EXPECT_EQ(tx.exec("SELECT count(*) FROM scoped_load_histories('ten_a',"
                    " ARRAY['sub_1'], 10)")[0][0]
              .as<int>(),
            1); // the seed's snapshot, at its only event
  EXPECT_EQ(tx.exec("SELECT count(*) FROM snapshots")[0][0].as<int>(), 0);
}

// -- the ledger ---------------------------------------------------------------

class ledger_trigger : public seeded {
protected:
  // Inserts one ledger line (tenant, tx, line, side, amount, currency).
  static void line(pqxx::work& tx, const std::string& tenant,
                   const std::string& id, int n, const std::string& side,
                   std::int64_t amount, const std::string& cur = "USD") {
    tx.exec_params("INSERT INTO ledger_entries (tenant_id, transaction_id,"
                   " line, account, side, amount_minor, currency, memo,"
                   " subject, at) VALUES ($1, $2, $3, 'cash', $4, $5, $6, '',"
                   " 'raw', now())",
                   tenant, id, n, side, amount, cur);
  }

  static void as_tenant(pqxx::work& tx, const std::string& tenant) {
    tx.exec_params("SELECT set_config('app.tenant_id', $1, true)", tenant);
  }

  std::int64_t raw_rows() {
    return count_rows(*admin_, "ledger_entries", "subject = 'raw'");
  }
};

TEST_F(ledger_trigger, a_balanced_raw_transaction_commits) {
  pqxx::connection app{app_conninfo(*db_)};
  EXPECT_EQ(sqlstate_of([&] {
              pqxx::work tx{app};
              as_tenant(tx, "ten_a");
              line(tx, "ten_a", "raw_1", 1, "debit", 100);
              line(tx, "ten_a", "raw_1", 2, "credit", 100);
              tx.commit();
            }),
            "ok");
  EXPECT_EQ(raw_rows(), 2);
}

TEST_F(ledger_trigger, an_unbalanced_raw_transaction_is_refused_at_commit) {
  pqxx::connection app{app_conninfo(*db_)};
  EXPECT_EQ(sqlstate_of([&] {
              pqxx::work tx{app};
              as_tenant(tx, "ten_a");
              line(tx, "ten_a", "raw_1", 1, "debit", 100);
              line(tx, "ten_a", "raw_1", 2, "credit", 99);
              tx.commit();
            }),
            "23514"); // check_violation, raised at commit
  // Not even the superuser may post one.
  EXPECT_EQ(sqlstate_of([&] {
              pqxx::work tx{*admin_};
              line(tx, "ten_a", "raw_2", 1, "debit", 100);
              tx.commit();
            }),
            "23514");
  EXPECT_EQ(raw_rows(), 0);
}

TEST_F(ledger_trigger, balance_is_per_currency) {
  pqxx::connection app{app_conninfo(*db_)};
  EXPECT_EQ(sqlstate_of([&] {
              pqxx::work tx{app};
              as_tenant(tx, "ten_a");
              line(tx, "ten_a", "raw_1", 1, "debit", 100, "USD");
              line(tx, "ten_a", "raw_1", 2, "credit", 100, "EUR");
              tx.commit();
            }),
            "23514");
  EXPECT_EQ(raw_rows(), 0);
}

// Group commit carries several tenants in one transaction; at commit only
// the last one is set, and the check must still see the first one's rows.
TEST_F(ledger_trigger, the_check_sees_every_tenant_of_a_shared_transaction) {
  pqxx::connection app{app_conninfo(*db_)};
  EXPECT_EQ(sqlstate_of([&] {
              pqxx::work tx{app};
              as_tenant(tx, "ten_a");
              line(tx, "ten_a", "raw_1", 1, "debit", 100);
              as_tenant(tx, "ten_b");
              line(tx, "ten_b", "raw_2", 1, "debit", 5);
              line(tx, "ten_b", "raw_2", 2, "credit", 5);
              tx.commit();
            }),
            "23514");
  EXPECT_EQ(raw_rows(), 0);
}

TEST_F(ledger_trigger, the_app_role_cannot_update_or_delete_ledger_entries) {
  pqxx::connection app{app_conninfo(*db_)};
  const auto before = count_rows(*admin_, "ledger_entries");
  EXPECT_EQ(sqlstate_of([&] {
              pqxx::work tx{app};
              as_tenant(tx, "ten_a");
              tx.exec("UPDATE ledger_entries SET amount_minor = 1");
            }),
            "42501");
  EXPECT_EQ(sqlstate_of([&] {
              pqxx::work tx{app};
              as_tenant(tx, "ten_a");
              tx.exec("DELETE FROM ledger_entries");
            }),
            "42501");
  EXPECT_EQ(count_rows(*admin_, "ledger_entries"), before);
  EXPECT_EQ(count_rows(*admin_, "ledger_entries", "amount_minor = 1"), 0);
}

// -- the per-statement balance check (migration 0010) -------------------------
// The store asks for it with recur.ledger_check = 'statement': each statement
// is checked at its end, for every ledger transaction it touched.

class ledger_statement_check : public ledger_trigger {
protected:
  static void per_statement(pqxx::work& tx) {
    tx.exec("SELECT set_config('recur.ledger_check', 'statement', true)");
  }

  // Every line of ledger transaction `id` in one INSERT: debits of 100 and
  // credits of `credit` minor units.
  static void lines(pqxx::work& tx, const std::string& tenant,
                    const std::string& id, std::int64_t credit,
                    int first_line = 1) {
    tx.exec_params(
      "INSERT INTO ledger_entries (tenant_id, transaction_id,"
      " line, account, side, amount_minor, currency, memo,"
      " subject, at) VALUES"
      " ($1, $2, $3, 'cash', 'debit', 100, 'USD', '', 'raw', now()),"
      " ($1, $2, $3 + 1, 'cash', 'credit', $4, 'USD', '', 'raw',"
      "  now())",
      tenant, id, first_line, credit);
  }
};

TEST_F(ledger_statement_check, a_balanced_statement_commits) {
  pqxx::connection app{app_conninfo(*db_)};
  EXPECT_EQ(sqlstate_of([&] {
              pqxx::work tx{app};
              per_statement(tx);
              as_tenant(tx, "ten_a");
              lines(tx, "ten_a", "raw_1", 100);
              lines(tx, "ten_a", "raw_2", 100);
              tx.commit();
            }),
            "ok");
  EXPECT_EQ(raw_rows(), 4);
}

TEST_F(ledger_statement_check, an_unbalanced_statement_fails_at_once) {
  pqxx::connection app{app_conninfo(*db_)};
  bool reached_commit = false;
  EXPECT_EQ(sqlstate_of([&] {
              pqxx::work tx{app};
              per_statement(tx);
              as_tenant(tx, "ten_a");
              lines(tx, "ten_a", "raw_1", 99);
              reached_commit = true;
              tx.commit();
            }),
            "23514");
  EXPECT_FALSE(reached_commit);
  EXPECT_EQ(raw_rows(), 0);
}

TEST_F(ledger_statement_check,
       it_is_stricter_a_transaction_may_not_span_statements) {
  pqxx::connection app{app_conninfo(*db_)};
  EXPECT_EQ(sqlstate_of([&] {
              pqxx::work tx{app};
              per_statement(tx);
              as_tenant(tx, "ten_a");
              line(tx, "ten_a", "raw_1", 1, "debit", 100);
              line(tx, "ten_a", "raw_1", 2, "credit", 100);
              tx.commit();
            }),
            "23514");
  EXPECT_EQ(raw_rows(), 0);
}

TEST_F(ledger_statement_check, a_later_statement_that_unbalances_is_refused) {
  pqxx::connection app{app_conninfo(*db_)};
  EXPECT_EQ(sqlstate_of([&] {
              pqxx::work tx{app};
              per_statement(tx);
              as_tenant(tx, "ten_a");
              lines(tx, "ten_a", "raw_1", 100);
              line(tx, "ten_a", "raw_1", 3, "debit", 7);
              tx.commit();
            }),
            "23514");
  EXPECT_EQ(raw_rows(), 0);
}

TEST_F(ledger_statement_check,
       lines_added_after_turning_it_off_are_checked_at_commit) {
  pqxx::connection app{app_conninfo(*db_)};
  EXPECT_EQ(sqlstate_of([&] {
              pqxx::work tx{app};
              per_statement(tx);
              as_tenant(tx, "ten_a");
              lines(tx, "ten_a", "raw_1", 100);
              tx.exec("SELECT set_config('recur.ledger_check', '', true)");
              line(tx, "ten_a", "raw_1", 3, "debit", 7); // deferred check
              tx.commit();
            }),
            "23514");
  EXPECT_EQ(raw_rows(), 0);
}

TEST_F(ledger_statement_check, it_sees_every_tenant_of_a_shared_transaction) {
  pqxx::connection app{app_conninfo(*db_)};
  EXPECT_EQ(sqlstate_of([&] {
              pqxx::work tx{app};
              per_statement(tx);
              as_tenant(tx, "ten_a");
              lines(tx, "ten_a", "raw_1", 100);
              as_tenant(tx, "ten_b");
              lines(tx, "ten_b", "raw_1", 100);
              tx.commit();
            }),
            "ok");
  EXPECT_EQ(raw_rows(), 4);
  // The same id in another tenant is another ledger transaction: an
  // unbalanced one there is refused although ten_a's balances.
  EXPECT_EQ(sqlstate_of([&] {
              pqxx::work tx{app};
              per_statement(tx);
              as_tenant(tx, "ten_b");
              lines(tx, "ten_b", "raw_2", 100);
              as_tenant(tx, "ten_a");
              lines(tx, "ten_a", "raw_2", 1);
              tx.commit();
            }),
            "23514");
  EXPECT_EQ(raw_rows(), 4);
}

// -- saga steps and their saga (migration 0011) -------------------------------
// Checked once per statement instead of a foreign key that locked the saga
// row for every step; the refusals are the foreign key's.

class saga_step_check : public seeded {
protected:
  // Inserts one step of saga `saga` as tenant `tenant`, as the app role.
  std::string step_of(const std::string& tenant, const std::string& saga,
                      int seq = 2) {
    pqxx::connection app{app_conninfo(*db_)};
    return sqlstate_of([&] {
      pqxx::work tx{app};
      tx.exec_params("SELECT set_config('app.tenant_id', $1, true)", tenant);
      tx.exec_params("INSERT INTO saga_steps (tenant_id, saga_id, seq, step,"
                     " kind, name, outcome, detail, at) VALUES"
                     " ($1, $2, $3, 0, 'action', 'raw', 'ok', '', now())",
                     tenant, saga, seq);
      tx.commit();
    });
  }

  std::int64_t raw_steps() {
    return count_rows(*admin_, "saga_steps", "name = 'raw'");
  }
};

TEST_F(saga_step_check, a_step_of_an_existing_saga_goes_in) {
  EXPECT_EQ(step_of("ten_a", "sg_1"), "ok");
  EXPECT_EQ(raw_steps(), 1);
}

TEST_F(saga_step_check, a_step_of_a_missing_saga_is_a_foreign_key_violation) {
  EXPECT_EQ(step_of("ten_a", "sg_404"), "23503");
  EXPECT_EQ(raw_steps(), 0);
}

TEST_F(saga_step_check, another_tenants_saga_id_does_not_count) {
  {
    pqxx::work tx{*admin_};
    tx.exec("DELETE FROM saga_steps WHERE tenant_id = 'ten_a'");
    tx.exec("DELETE FROM sagas WHERE tenant_id = 'ten_a'");
    tx.commit();
  }
  EXPECT_EQ(step_of("ten_a", "sg_1"), "23503"); // only ten_b has an sg_1
  EXPECT_EQ(raw_steps(), 0);
}

TEST_F(saga_step_check, one_missing_saga_fails_the_whole_statement) {
  pqxx::connection app{app_conninfo(*db_)};
  EXPECT_EQ(sqlstate_of([&] {
              pqxx::work tx{app};
              tx.exec("SELECT set_config('app.tenant_id', 'ten_a', true)");
              tx.exec(
                "INSERT INTO saga_steps (tenant_id, saga_id, seq, step,"
                " kind, name, outcome, detail, at) VALUES"
                " ('ten_a', 'sg_1', 2, 0, 'action', 'raw', 'ok', '', now()),"
                " ('ten_a', 'sg_2', 1, 0, 'action', 'raw', 'ok', '', now())");
              tx.commit();
            }),
            "23503");
  EXPECT_EQ(raw_steps(), 0);
}

TEST_F(saga_step_check, a_saga_with_steps_cannot_be_deleted_or_rekeyed) {
  // Not even by the superuser, as with the foreign key.
  EXPECT_EQ(sqlstate_of([&] {
              pqxx::work tx{*admin_};
              tx.exec("DELETE FROM sagas WHERE tenant_id = 'ten_a'"
                      " AND saga_id = 'sg_1'");
              tx.commit();
            }),
            "23503");
  EXPECT_EQ(sqlstate_of([&] {
              pqxx::work tx{*admin_};
              tx.exec("UPDATE sagas SET saga_id = 'sg_moved'"
                      " WHERE tenant_id = 'ten_a' AND saga_id = 'sg_1'");
              tx.commit();
            }),
            "23503");
  EXPECT_EQ(count_rows(*admin_, "sagas", "saga_id = 'sg_1'"), 2);
  // Other updates of it go through (the store moves sagas on all the time).
  EXPECT_EQ(sqlstate_of([&] {
              pqxx::work tx{*admin_};
              tx.exec("UPDATE sagas SET step = 3 WHERE tenant_id = 'ten_a'"
                      " AND saga_id = 'sg_1'");
              tx.commit();
            }),
            "ok");
}

TEST_F(saga_step_check, a_saga_without_steps_can_be_deleted) {
  {
    pqxx::work tx{*admin_};
    tx.exec("INSERT INTO sagas (tenant_id, saga_id, type, subscription_id,"
            " status, step, version, data_json, created_at, updated_at)"
            " VALUES ('ten_a', 'sg_bare', 'invoice', 'sub_1', 'running', 0, 1,"
            " '{}', now(), now())");
    tx.commit();
  }
  EXPECT_EQ(sqlstate_of([&] {
              pqxx::work tx{*admin_};
              tx.exec("DELETE FROM sagas WHERE saga_id = 'sg_bare'");
              tx.commit();
            }),
            "ok");
  EXPECT_EQ(count_rows(*admin_, "sagas", "saga_id = 'sg_bare'"), 0);
}

} // namespace
