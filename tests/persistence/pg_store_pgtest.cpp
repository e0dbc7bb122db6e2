// What only the PostgreSQL store promises: migrations (once, also under
// concurrent start-up, and refusing edited ones), start-up checks, typed and
// retried faults, and group commit of many units in one transaction.

#include <algorithm>
#include <atomic>
#include <chrono>
#include <latch>
#include <memory>
#include <optional>
#include <regex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>
#include <pqxx/pqxx>

#include "persistence/group_commit.hpp"
#include "persistence/pg_commit.hpp"
#include "persistence/pg_detail.hpp"
#include "persistence/pg_migrations.hpp"
#include "persistence/pg_store.hpp"
#include "tests/persistence/pg_testdb.hpp"

namespace {

using namespace recur;
using pgtest::db_kind;
using pgtest::scratch_db;

const tenant_id tenant_a{"ten_a"};
const tenant_id tenant_b{"ten_b"};

template <class T>
std::string code_of(const result<T>& r) {
  return r ? std::string{"ok"}
           : std::string{to_string(r.code())} + " (" + r.error().detail + ")";
}

std::int64_t scalar(const std::string& conninfo, const std::string& sql) {
  pqxx::connection c{conninfo};
  pqxx::nontransaction tx{c};
  return tx.exec(sql)[0][0].as<std::int64_t>();
}

std::unique_ptr<store> open_ok(const pg_store_config& config) {
  auto opened = open_pg_store(config);
  EXPECT_TRUE(opened) << code_of(opened);
  return opened ? std::move(*opened) : nullptr;
}

unit_of_work append_one(const tenant_id& t, const std::string& sub,
                        std::int64_t expected) {
  unit_of_work w;
  w.tenant = t;
  w.events.push_back(
    {subscription_id{sub}, expected, {{"e", R"({"n": 1})", instant{1}}}});
  return w;
}

saga_update move(const std::string& id, std::int64_t expected,
                 std::int32_t step) {
  return {saga_id{id}, expected, saga_status::running, step, "{}", {}};
}

// -- migrations ---------------------------------------------------------------

const std::vector<pg_migration> side_effects{
  {1, "hits", "CREATE TABLE hits (n integer)"},
  {2, "hit", "INSERT INTO hits VALUES (1)"},
  {3, "slow", "SELECT pg_sleep(0.05); INSERT INTO hits VALUES (2)"}};

TEST(pg_migrations, the_embedded_migrations_are_numbered_one_to_n) {
  const auto list = pg_embedded_migrations();
  ASSERT_FALSE(list.empty());
  for (std::size_t i = 0; i < list.size(); ++i) {
    EXPECT_EQ(list[i].version, static_cast<std::int32_t>(i + 1));
    EXPECT_FALSE(list[i].name.empty());
    EXPECT_FALSE(list[i].sql.empty());
  }
}

TEST(pg_migrations, a_fresh_database_gets_each_migration_once_with_a_record) {
  auto db = scratch_db::create(db_kind::empty);
  ASSERT_NE(db, nullptr);
  const auto list = pg_embedded_migrations();
  auto first = apply_pg_migrations(db->conninfo(), list);
  ASSERT_TRUE(first) << code_of(first);
  EXPECT_EQ(*first, list.size());

  pqxx::connection c{db->conninfo()};
  pqxx::nontransaction tx{c};
  const auto rows = tx.exec("SELECT version, name, checksum, applied_at::text"
                            " FROM schema_migrations ORDER BY version");
  ASSERT_EQ(rows.size(), list.size());
  for (std::size_t i = 0; i < list.size(); ++i) {
    const auto r = rows[static_cast<pqxx::result::size_type>(i)];
    EXPECT_EQ(r[0].as<std::int32_t>(), list[i].version);
    EXPECT_EQ(r[1].as<std::string>(), std::string{list[i].name});
    EXPECT_EQ(r[2].as<std::string>().size(), 64U); // sha256, hex
  }

  auto again = apply_pg_migrations(db->conninfo(), list);
  ASSERT_TRUE(again) << code_of(again);
  EXPECT_EQ(*again, 0U);
  const auto after = tx.exec("SELECT version, applied_at::text FROM"
                             " schema_migrations ORDER BY version");
  ASSERT_EQ(after.size(), rows.size());
  for (pqxx::result::size_type i = 0; i < after.size(); ++i)
    EXPECT_EQ(after[i][1].as<std::string>(), rows[i][3].as<std::string>());
}

TEST(pg_migrations, opening_the_store_again_is_a_no_op) {
  auto db = scratch_db::create(db_kind::empty);
  ASSERT_NE(db, nullptr);
  auto first = open_ok(db->config());
  ASSERT_NE(first, nullptr);
  const auto applied = scalar(db->conninfo(),
                              "SELECT count(*) FROM schema_migrations");
  EXPECT_EQ(applied,
            static_cast<std::int64_t>(pg_embedded_migrations().size()));
  auto second = open_ok(db->config());
  ASSERT_NE(second, nullptr);
  EXPECT_EQ(scalar(db->conninfo(), "SELECT count(*) FROM schema_migrations"),
            applied);
}

TEST(pg_migrations, concurrent_runners_apply_each_migration_exactly_once) {
  auto db = scratch_db::create(db_kind::empty);
  ASSERT_NE(db, nullptr);
  constexpr int runners = 4;
  std::latch start{runners};
  std::vector<result<std::size_t>> results(runners, std::size_t{0});
  std::vector<std::thread> threads;
  threads.reserve(runners);
  for (int i = 0; i < runners; ++i)
    threads.emplace_back([&, i] {
      start.arrive_and_wait();
      results[static_cast<std::size_t>(i)] = apply_pg_migrations(db->conninfo(),
                                                                 side_effects);
    });
  for (auto& t : threads)
    t.join();

  std::size_t total = 0;
  for (const auto& r : results) {
    ASSERT_TRUE(r) << code_of(r);
    total += *r;
  }
  EXPECT_EQ(total, side_effects.size());
  EXPECT_EQ(scalar(db->conninfo(), "SELECT count(*) FROM hits"), 2);
  EXPECT_EQ(scalar(db->conninfo(), "SELECT count(*) FROM schema_migrations"),
            3);
}

TEST(pg_migrations, two_stores_starting_at_once_both_open) {
  auto db = scratch_db::create(db_kind::empty);
  ASSERT_NE(db, nullptr);
  std::latch start{2};
  std::vector<std::string> codes(2);
  std::vector<std::thread> threads;
  for (std::size_t i = 0; i < 2; ++i)
    threads.emplace_back([&, i] {
      start.arrive_and_wait();
      codes[i] = code_of(open_pg_store(db->config()));
    });
  for (auto& t : threads)
    t.join();
  EXPECT_EQ(codes[0], "ok");
  EXPECT_EQ(codes[1], "ok");
  EXPECT_EQ(scalar(db->conninfo(), "SELECT count(*) FROM schema_migrations"),
            static_cast<std::int64_t>(pg_embedded_migrations().size()));
}

TEST(pg_migrations, a_migration_edited_after_it_ran_stops_the_start_up) {
  auto db = scratch_db::create(db_kind::empty);
  ASSERT_NE(db, nullptr);
  ASSERT_TRUE(apply_pg_migrations(db->conninfo(), side_effects));
  auto edited = side_effects;
  edited[1].sql = "INSERT INTO hits VALUES (42)";
  auto r = apply_pg_migrations(db->conninfo(), edited);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.code(), errc::storage_error);
  EXPECT_NE(r.error().detail.find("0002_hit was changed"), std::string::npos)
    << r.error().detail;
}

TEST(pg_migrations, an_edited_embedded_migration_fails_open_pg_store) {
  auto db = scratch_db::create(db_kind::fresh);
  ASSERT_NE(db, nullptr);
  {
    pqxx::connection c{db->conninfo()};
    pqxx::nontransaction{c}.exec(
      "UPDATE schema_migrations SET checksum = 'x' WHERE version = 3");
  }
  auto opened = open_pg_store(db->config());
  ASSERT_FALSE(opened);
  EXPECT_EQ(opened.code(), errc::storage_error);
}

TEST(pg_migrations, a_failing_migration_is_rolled_back_and_not_recorded) {
  auto db = scratch_db::create(db_kind::empty);
  ASSERT_NE(db, nullptr);
  const std::vector<pg_migration> list{
    {1, "ok", "CREATE TABLE a (n integer)"},
    {2, "broken", "CREATE TABLE b (n integer); SELECT 1 / 0"},
    {3, "never", "CREATE TABLE c (n integer)"}};
  auto r = apply_pg_migrations(db->conninfo(), list);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.code(), errc::storage_error);
  EXPECT_NE(r.error().detail.find("0002_broken"), std::string::npos);
  EXPECT_EQ(scalar(db->conninfo(), "SELECT count(*) FROM schema_migrations"),
            1);
  EXPECT_EQ(scalar(db->conninfo(),
                   "SELECT count(*) FROM pg_tables WHERE tablename IN"
                   " ('b', 'c')"),
            0);
}

TEST(pg_migrations, versions_must_increase) {
  const std::vector<pg_migration> list{{2, "b", "SELECT 1"},
                                       {1, "a", "SELECT 1"}};
  EXPECT_EQ(apply_pg_migrations("dbname=never_used", list).code(),
            errc::invalid_argument);
}

// -- opening the store --------------------------------------------------------

TEST(pg_store_open, an_unreachable_server_is_unavailable) {
  pg_store_config c;
  c.conninfo = "host=/nonexistent/socket/dir port=1 dbname=x user=x";
  EXPECT_EQ(open_pg_store(c).code(), errc::unavailable);
}

TEST(pg_store_open, a_uri_needs_an_explicit_app_conninfo) {
  pg_store_config c;
  c.conninfo = "postgresql://postgres@localhost/recur";
  EXPECT_EQ(pg_app_conninfo(c).code(), errc::invalid_argument);
  c.app_conninfo = "postgresql://recur_app@localhost/recur";
  ASSERT_TRUE(pg_app_conninfo(c));
  EXPECT_EQ(pg_app_conninfo(c).value(), c.app_conninfo);
}

TEST(pg_store_open, the_working_role_defaults_to_recur_app) {
  pg_store_config c;
  c.conninfo = "host=/run port=5432 dbname=recur user=postgres";
  auto app = pg_app_conninfo(c);
  ASSERT_TRUE(app);
  EXPECT_NE(app->find("user=recur_app"), std::string::npos);
  EXPECT_NE(app->find("connect_timeout="), std::string::npos);
}

TEST(pg_store_open, a_working_role_that_bypasses_rls_is_refused) {
  auto db = scratch_db::create();
  ASSERT_NE(db, nullptr);
  auto c = db->config();
  c.app_conninfo = db->conninfo(); // the superuser
  EXPECT_EQ(open_pg_store(c).code(), errc::invalid_argument);
}

TEST(pg_store_open, bad_settings_are_invalid_arguments) {
  auto db = scratch_db::create();
  ASSERT_NE(db, nullptr);
  auto c = db->config();
  c.pool_size = 0;
  EXPECT_EQ(open_pg_store(c).code(), errc::invalid_argument);
  c = db->config();
  c.max_retries = -1;
  EXPECT_EQ(open_pg_store(c).code(), errc::invalid_argument);
}

// -- faults -------------------------------------------------------------------

/// A fresh database whose audit_log inserts fail with `sqlstate` (or kill
/// their own session, for "kill") the first `times` times: nextval() is not
/// rolled back, so the budget survives the failed transactions.
class faults : public ::testing::Test {
protected:
  void SetUp() override {
    db_ = scratch_db::create(db_kind::fresh);
    ASSERT_NE(db_, nullptr);
  }

  void inject(const std::string& sqlstate, int times) {
    const auto act = sqlstate == "kill"
                       ? std::string{"PERFORM pg_terminate_backend("
                                     "pg_backend_pid()); PERFORM pg_sleep(5);"}
                       : "RAISE EXCEPTION 'injected' USING ERRCODE = '"
                           + sqlstate + "';";
    pqxx::connection c{db_->conninfo()};
    pqxx::nontransaction{c}.exec(
      "CREATE SEQUENCE fault_calls;"
      "CREATE FUNCTION fault() RETURNS trigger LANGUAGE plpgsql"
      " SECURITY DEFINER AS $$ BEGIN"
      " IF nextval('fault_calls') <= "
      + std::to_string(times) + " THEN " + act
      + " END IF; RETURN NEW; END $$;"
        "CREATE TRIGGER fault BEFORE INSERT ON audit_log"
        " FOR EACH ROW EXECUTE FUNCTION fault();"
        "GRANT USAGE ON SEQUENCE fault_calls TO recur_app;");
  }

  std::int64_t fault_calls() {
    return scalar(db_->conninfo(), "SELECT last_value FROM fault_calls");
  }

  unit_of_work audited(const std::string& sub, std::int64_t expected) {
    auto w = append_one(tenant_a, sub, expected);
    w.audit.push_back({"system", "append", sub, "{}", {}});
    w.outbox.push_back({"msg_" + sub, sub, "t", sub, "{}", {}});
    return w;
  }

  std::int64_t version_of(store& s, const std::string& sub) {
    auto h = s.load_history(tenant_a, subscription_id{sub});
    EXPECT_TRUE(h) << code_of(h);
    return h ? h->version : -1;
  }

  std::unique_ptr<scratch_db> db_;
};

TEST_F(faults, a_serialization_failure_is_retried_and_the_unit_lands_once) {
  inject("40001", 2);
  auto s = open_ok(db_->config());
  ASSERT_NE(s, nullptr);
  auto r = s->commit(audited("sub_1", 0));
  ASSERT_TRUE(r) << code_of(r);
  EXPECT_EQ(fault_calls(), 3); // two failures, then the run that committed
  EXPECT_EQ(version_of(*s, "sub_1"), 1);
  EXPECT_EQ(scalar(db_->conninfo(), "SELECT count(*) FROM audit_log"), 1);
}

TEST_F(faults, a_deadlock_is_retried_too) {
  inject("40P01", 1);
  auto s = open_ok(db_->config());
  ASSERT_NE(s, nullptr);
  ASSERT_TRUE(s->commit(audited("sub_1", 0)));
  EXPECT_EQ(fault_calls(), 2);
  EXPECT_EQ(version_of(*s, "sub_1"), 1);
}

TEST_F(faults,
       faults_that_outlast_the_retries_are_unavailable_and_write_nothing) {
  inject("40001", 1000);
  auto c = db_->config();
  c.max_retries = 3;
  auto s = open_ok(c);
  ASSERT_NE(s, nullptr);
  auto r = s->commit(audited("sub_1", 0));
  ASSERT_FALSE(r);
  EXPECT_EQ(r.code(), errc::unavailable);
  EXPECT_EQ(fault_calls(), 4); // the first run and three retries
  EXPECT_EQ(version_of(*s, "sub_1"), 0);
  EXPECT_EQ(scalar(db_->conninfo(), "SELECT count(*) FROM outbox"), 0);
}

TEST_F(faults, a_session_killed_mid_unit_leaves_nothing_and_is_replaced) {
  inject("kill", 1);
  auto c = db_->config();
  c.pool_size = 1;
  auto s = open_ok(c);
  ASSERT_NE(s, nullptr);
  auto r = s->commit(audited("sub_1", 0));
  ASSERT_TRUE(r) << code_of(r);
  EXPECT_EQ(fault_calls(), 2);
  EXPECT_EQ(version_of(*s, "sub_1"), 1);
  EXPECT_EQ(scalar(db_->conninfo(), "SELECT count(*) FROM outbox"), 1);
}

TEST_F(faults, a_constraint_violation_is_not_retried) {
  inject("23514", 1);
  auto s = open_ok(db_->config());
  ASSERT_NE(s, nullptr);
  EXPECT_EQ(s->commit(audited("sub_1", 0)).code(), errc::constraint_violation);
  EXPECT_EQ(fault_calls(), 1);
  EXPECT_EQ(version_of(*s, "sub_1"), 0);
}

TEST_F(faults, a_batch_with_a_killed_session_lands_every_unit_once) {
  inject("kill", 1);
  auto s = open_ok(db_->config());
  ASSERT_NE(s, nullptr);
  std::vector<unit_of_work> works;
  works.reserve(20);
  for (int i = 0; i < 20; ++i)
    works.push_back(audited("sub_" + std::to_string(i), 0));
  for (const auto& r : s->commit_many(works))
    EXPECT_TRUE(r) << code_of(r);
  EXPECT_EQ(scalar(db_->conninfo(), "SELECT count(*) FROM subscription_events"),
            20);
  EXPECT_EQ(scalar(db_->conninfo(), "SELECT count(*) FROM audit_log"), 20);
}

TEST(pg_store_faults, an_idle_connection_killed_from_outside_is_replaced) {
  auto db = scratch_db::create();
  ASSERT_NE(db, nullptr);
  auto c = db->config();
  c.pool_size = 1;
  auto s = open_ok(c);
  ASSERT_NE(s, nullptr);
  ASSERT_TRUE(s->commit(append_one(tenant_a, "sub_1", 0)));

  pqxx::connection admin{db->conninfo()};
  const auto others = "SELECT count(*) FROM pg_stat_activity WHERE datname = "
                      + admin.quote(db->name()) + " AND usename = 'recur_app'";
  pqxx::nontransaction{admin}.exec(
    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = "
    + admin.quote(db->name()) + " AND usename = 'recur_app'");
  for (int i = 0; i < 500; ++i) {
    if (pqxx::nontransaction{admin}.exec(others)[0][0].as<int>() == 0)
      break;
    std::this_thread::sleep_for(std::chrono::milliseconds{10});
  }

  auto r = s->commit(append_one(tenant_a, "sub_1", 1));
  ASSERT_TRUE(r) << code_of(r);
  EXPECT_EQ(r->event_versions, std::vector<std::int64_t>{2});
}

// -- group commit -------------------------------------------------------------

class batches : public ::testing::Test {
protected:
  void SetUp() override {
    db_ = scratch_db::create();
    ASSERT_NE(db_, nullptr);
    store_ = open_ok(db_->config());
    ASSERT_NE(store_, nullptr);
  }

  // How many transactions wrote the rows of `table` (the superuser reads
  // each row's xmin).
  std::int64_t writers_of(const std::string& table) {
    return scalar(db_->conninfo(),
                  "SELECT count(DISTINCT xmin::text) FROM " + table);
  }

  std::unique_ptr<scratch_db> db_;
  std::unique_ptr<store> store_;
};

TEST_F(batches, a_batch_of_many_tenants_commits_in_one_transaction) {
  std::vector<unit_of_work> works;
  for (int i = 0; i < 64; ++i) {
    auto w = append_one(tenant_id{"ten_" + std::to_string(i % 3)},
                        "sub_" + std::to_string(i), 0);
    w.outbox.push_back({"msg_" + std::to_string(i), "k", "t", "s", "{}", {}});
    works.push_back(std::move(w));
  }
  const auto results = store_->commit_many(works);
  ASSERT_EQ(results.size(), works.size());
  for (const auto& r : results) {
    ASSERT_TRUE(r) << code_of(r);
    EXPECT_EQ(r->event_versions, std::vector<std::int64_t>{1});
  }
  EXPECT_EQ(writers_of("subscription_events"), 1);
  EXPECT_EQ(writers_of("outbox"), 1);
  auto outbox = store_->fetch_unpublished(0, 100);
  ASSERT_TRUE(outbox);
  EXPECT_EQ(outbox->size(), 64U);
}

TEST_F(batches, batches_over_the_limit_are_split_into_transactions) {
  auto c = db_->config();
  c.commit_batch_max = 4;
  auto s = open_ok(c);
  ASSERT_NE(s, nullptr);
  std::vector<unit_of_work> works;
  works.reserve(10);
  for (int i = 0; i < 10; ++i)
    works.push_back(append_one(tenant_a, "sub_" + std::to_string(i), 0));
  for (const auto& r : s->commit_many(works))
    ASSERT_TRUE(r) << code_of(r);
  EXPECT_EQ(writers_of("subscription_events"), 3);
}

TEST_F(batches, a_failing_unit_costs_a_few_transactions_not_one_per_unit) {
  std::vector<unit_of_work> works;
  works.reserve(16);
  for (int i = 0; i < 16; ++i)
    works.push_back(append_one(tenant_a, "sub_" + std::to_string(i), 0));
  works[5].saga_updates.push_back(move("sg_unknown", 1, 1));
  const auto results = store_->commit_many(works);
  for (std::size_t i = 0; i < results.size(); ++i) {
    if (i == 5)
      EXPECT_EQ(results[i].code(), errc::not_found);
    else
      EXPECT_TRUE(results[i]) << i << ": " << code_of(results[i]);
  }
  EXPECT_EQ(scalar(db_->conninfo(), "SELECT count(*) FROM subscription_events"),
            15);
  // Halving: {0-3}, {4}, {6-7}, {8-15} rather than 15 single commits.
  EXPECT_EQ(writers_of("subscription_events"), 4);
}

TEST_F(batches, units_that_move_the_same_rows_apply_in_order_in_one_batch) {
  auto make = [&] {
    unit_of_work w;
    w.tenant = tenant_a;
    return w;
  };
  std::vector<unit_of_work> works(5, make());
  works[0].new_sagas.push_back({saga_id{"sg_1"},
                                "invoice",
                                subscription_id{"sub_1"},
                                saga_status::running,
                                0,
                                1,
                                "{}",
                                {},
                                {}});
  works[0].events = append_one(tenant_a, "sub_1", 0).events;
  works[1].saga_updates.push_back(move("sg_1", 1, 1));
  works[1].events = append_one(tenant_a, "sub_1", 1).events;
  works[2].saga_updates.push_back(move("sg_1", 2, 2));
  works[2].timers_to_schedule.push_back({"tm_1", "sg_1", "retry", {}, "{}"});
  works[3].timers_to_cancel.push_back({"sg_1", ""});
  works[4].timers_to_schedule.push_back({"tm_1", "sg_1", "retry", {}, "{}"});
  works[4].subscriptions.push_back({subscription_id{"sub_1"},
                                    customer_id{"cus_1"},
                                    plan_id{"p"},
                                    "active",
                                    2,
                                    "{}",
                                    {}});
  for (const auto& r : store_->commit_many(works))
    ASSERT_TRUE(r) << code_of(r);

  auto sg = store_->get_saga(tenant_a, saga_id{"sg_1"});
  ASSERT_TRUE(sg);
  EXPECT_EQ(sg->version, 3);
  EXPECT_EQ(sg->step, 2);
  auto timers = store_->list_timers(tenant_a, "sg_1");
  ASSERT_TRUE(timers);
  EXPECT_EQ(timers->size(), 1U); // cancelled, then armed again
  auto h = store_->load_history(tenant_a, subscription_id{"sub_1"});
  ASSERT_TRUE(h);
  EXPECT_EQ(h->version, 2);
  EXPECT_EQ(writers_of("subscription_events"), 1); // chunks, one transaction
}

TEST_F(batches, a_unit_that_moves_one_row_twice_applies_both_moves) {
  unit_of_work w;
  w.tenant = tenant_a;
  w.new_sagas.push_back({saga_id{"sg_1"},
                         "invoice",
                         subscription_id{"sub_1"},
                         saga_status::running,
                         0,
                         1,
                         "{}",
                         {},
                         {}});
  w.saga_updates.push_back(move("sg_1", 1, 1));
  w.saga_updates.push_back(move("sg_1", 2, 2));
  for (const char* status : {"trialing", "active"})
    w.subscriptions.push_back({subscription_id{"sub_1"},
                               customer_id{"cus_1"},
                               plan_id{"p"},
                               status,
                               1,
                               "{}",
                               {}});
  w.timers_to_schedule.push_back({"tm_1", "sub_1", "first", {}, "{}"});
  w.timers_to_schedule.push_back({"tm_1", "sub_1", "second", {}, "{}"});
  ASSERT_TRUE(store_->commit(w));

  auto sg = store_->get_saga(tenant_a, saga_id{"sg_1"});
  ASSERT_TRUE(sg);
  EXPECT_EQ(sg->version, 3);
  auto sub = store_->get_subscription(tenant_a, subscription_id{"sub_1"});
  ASSERT_TRUE(sub);
  EXPECT_EQ(sub->status, "active"); // the last upsert wins
  auto timers = store_->list_timers(tenant_a, "sub_1");
  ASSERT_TRUE(timers);
  ASSERT_EQ(timers->size(), 1U);
  EXPECT_EQ(timers->at(0).kind, "first"); // the second schedule is a no-op

  unit_of_work twice;
  twice.tenant = tenant_a;
  twice.timers_to_complete = {"tm_1", "tm_1"};
  EXPECT_EQ(store_->commit(twice).code(), errc::not_found);
}

// The relay reads "position > the last one seen" while writers commit: a
// position allocated by a transaction that commits late must not be skipped.
TEST_F(batches, a_relay_that_follows_positions_misses_no_message) {
  constexpr int writers = 4;
  constexpr int commits = 40;
  auto c = db_->config();
  c.pool_size = writers + 1;
  auto s = open_ok(c);
  ASSERT_NE(s, nullptr);
  std::atomic<int> writing{writers};
  std::vector<std::thread> threads;
  threads.reserve(writers);
  for (int w = 0; w < writers; ++w)
    threads.emplace_back([&, w] {
      for (int i = 0; i < commits; ++i) {
        unit_of_work u;
        u.tenant = tenant_id{"ten_" + std::to_string(w)};
        const auto id = std::to_string(w) + "/" + std::to_string(i);
        u.outbox.push_back({id, "k", "t", "s", "{}", {}});
        EXPECT_TRUE(s->commit(u));
      }
      --writing;
    });
  std::set<std::string> seen;
  std::int64_t after = 0;
  for (int round = 0; round < 100'000; ++round) {
    const bool last = writing == 0;
    auto batch = s->fetch_unpublished(after, 7);
    ASSERT_TRUE(batch) << code_of(batch);
    for (const auto& m : *batch) {
      EXPECT_TRUE(seen.insert(m.message.id).second) << m.message.id;
      after = m.position;
    }
    if (last && batch->empty())
      break;
  }
  for (auto& t : threads)
    t.join();
  EXPECT_EQ(seen.size(), static_cast<std::size_t>(writers * commits));
  auto left = s->fetch_unpublished(0, 1000);
  ASSERT_TRUE(left);
  EXPECT_EQ(left->size(), seen.size()); // none published yet: all still there
}

// -- writer lanes -------------------------------------------------------------

TEST_F(batches, two_writer_lanes_keep_each_subscription_in_order) {
  group_commit_config cfg;
  cfg.lanes = 2;
  cfg.max_wait_us = 0;
  cfg.max_batch_units = 64;
  cfg.queue_limit_units = 10'000;
  constexpr int threads = 4;
  constexpr int subs_per_thread = 5;
  constexpr int steps = 30;
  constexpr int total = threads * subs_per_thread * steps;
  std::atomic<int> ok{0};
  std::atomic<int> failed{0};
  {
    group_commit_writer writer{*store_, cfg};
    std::vector<std::thread> pool;
    pool.reserve(threads);
    for (int t = 0; t < threads; ++t)
      pool.emplace_back([&, t] {
        // Never waiting for an answer: each unit expects the previous one of
        // its subscription to be stored before it, whichever lane runs it.
        for (int i = 0; i < steps; ++i)
          for (int s = 0; s < subs_per_thread; ++s) {
            const auto sub = "sub_" + std::to_string(t) + "_"
                             + std::to_string(s);
            auto w = append_one(tenant_id{t % 2 == 0 ? "ten_a" : "ten_b"}, sub,
                                i);
            w.outbox.push_back(
              {sub + "/" + std::to_string(i), sub, "t", sub, "{}", {}});
            w.timers_to_schedule.push_back(
              {sub + "/tm/" + std::to_string(i), sub, "k", instant{100}, "{}"});
            EXPECT_TRUE(writer.submit(std::move(w), [&](auto r) {
              (r ? ok : failed).fetch_add(1);
            }));
          }
      });
    for (auto& t : pool)
      t.join();
    writer.stop();
    EXPECT_GE(writer.stats().batches, 2u);
  }
  EXPECT_EQ(failed.load(), 0);
  EXPECT_EQ(ok.load(), total);
  EXPECT_EQ(scalar(db_->conninfo(), "SELECT count(*) FROM subscription_events"),
            total);
  // Per subscription, seqs 1..steps (the contiguity trigger refuses gaps).
  EXPECT_EQ(scalar(db_->conninfo(),
                   "SELECT count(*) FROM (SELECT subscription_id FROM"
                   " subscription_events GROUP BY subscription_id HAVING"
                   " max(seq) = "
                     + std::to_string(steps)
                     + " AND count(*) = " + std::to_string(steps) + ") x"),
            threads * subs_per_thread);
  // The outbox got every message once, positions in commit order (the
  // advisory lock serialises the lanes' outbox writes): a relay following
  // positions sees all of them.
  std::set<std::string> seen;
  std::int64_t after = 0;
  for (int page = 0; page < 1'000; ++page) {
    auto batch = store_->fetch_unpublished(after, 500);
    ASSERT_TRUE(batch) << code_of(batch);
    if (batch->empty())
      break;
    for (const auto& m : *batch) {
      EXPECT_TRUE(seen.insert(m.message.id).second) << m.message.id;
      EXPECT_GT(m.position, after);
      after = m.position;
    }
  }
  EXPECT_EQ(seen.size(), static_cast<std::size_t>(total));
}

// -- plans --------------------------------------------------------------------

// The plans of the statements a call runs, as auto_explain reports them to
// the client (it is part of PostgreSQL's contrib, which the server package
// ships).
class plan_log : public pqxx::errorhandler {
public:
  explicit plan_log(pqxx::connection_base& c) : pqxx::errorhandler(c) {}
  bool operator()(const char msg[]) noexcept override {
    text += msg;
    return true;
  }
  std::string text;
};

std::vector<std::int64_t> rows_removed_by_filter(const std::string& plans) {
  std::vector<std::int64_t> out;
  const std::regex removed{R"(Rows Removed by Filter: (\d+))"};
  for (std::sregex_iterator it{plans.begin(), plans.end(), removed}, end;
       it != end; ++it)
    out.push_back(std::stoll((*it)[1].str()));
  return out;
}

TEST_F(batches, a_claim_does_not_walk_over_leased_timers) {
  unit_of_work w;
  w.tenant = tenant_a;
  for (int i = 0; i < 2'000; ++i)
    w.timers_to_schedule.push_back({"tm_busy_" + std::to_string(i),
                                    "sub_" + std::to_string(i), "retry",
                                    instant{10}, "{}"});
  ASSERT_TRUE(store_->commit(w));
  auto busy = store_->claim_due_timers(instant{20}, 5'000, 1'000, "c1");
  ASSERT_TRUE(busy) << code_of(busy);
  ASSERT_EQ(busy->size(), 2'000U);
  unit_of_work late;
  late.tenant = tenant_b;
  late.timers_to_schedule.push_back(
    {"tm_free", "sub_x", "retry", instant{30}, "{}"});
  ASSERT_TRUE(store_->commit(late));

  pqxx::connection admin{db_->conninfo()};
  plan_log plans{admin};
  pqxx::nontransaction tx{admin};
  tx.exec("LOAD 'auto_explain'");
  tx.exec("SET auto_explain.log_min_duration = 0");
  tx.exec("SET auto_explain.log_analyze = on");
  tx.exec("SET auto_explain.log_nested_statements = on");
  tx.exec("SET client_min_messages = log");
  const auto got = tx.exec(
    "SELECT timer_id FROM recur_claim_due_timers(to_timestamp(40), 10, 30,"
    " 'c2')");
  ASSERT_EQ(got.size(), 1U);
  EXPECT_EQ(got[0][0].as<std::string>(), "tm_free");
  EXPECT_NE(plans.text.find("timers_available"), std::string::npos)
    << plans.text;
  for (const auto n : rows_removed_by_filter(plans.text))
    EXPECT_LT(n, 10) << plans.text; // the old scan skipped all 2,000
}

TEST_F(batches, the_batch_settings_make_an_update_probe_by_key) {
  // Ten thousand invoices with statistics, as a live database has them.
  pqxx::connection admin{db_->conninfo()};
  pqxx::nontransaction{admin}.exec(
    "INSERT INTO invoices (tenant_id, invoice_id, subscription_id,"
    " idempotency_key, status, currency, total_minor, amount_due_minor,"
    " amount_paid_minor, period_start, period_end, lines_json, version,"
    " created_at, updated_at)"
    " SELECT 'ten_a', 'in_' || g, 'sub_' || g, 'key_' || g, 'open', 'USD',"
    " 100, 100, 0, now(), now(), '[]', 1, now(), now()"
    " FROM generate_series(1, 10000) g");
  pqxx::nontransaction{admin}.exec("ANALYZE invoices");

  // A batch's invoice update for 400 of them (the statement of
  // pg_commit.cpp, with its array as a literal, as a custom plan sees it).
  std::string ids = "{";
  for (int i = 0; i < 400; ++i)
    ids += (i > 0 ? ",in_" : "in_") + std::to_string(1 + i * 23);
  ids += "}";
  const std::string from = " FROM unnest('" + ids + "'::text[]) AS u(id)";
  const std::string update
    = "EXPLAIN UPDATE invoices x SET status = 'paid', version = x.version + 1"
      + from + " WHERE x.tenant_id = 'ten_a' AND x.invoice_id = u.id";
  auto plan_of = [&](bool batch_settings) {
    pqxx::work tx{admin};
    tx.exec("SET LOCAL ROLE recur_app");
    tx.exec("SELECT set_config('app.tenant_id', 'ten_a', true)");
    if (batch_settings)
      tx.exec(pg::batch_settings_sql);
    std::string plan;
    for (const auto& row : tx.exec(update))
      plan += row[0].as<std::string>() + "\n";
    return plan;
  };
  // By default the planner hashes the whole table for 400 keys: O(table)
  // per batch. With the batch's settings it probes the primary key: O(batch).
  const auto by_default = plan_of(false);
  EXPECT_NE(by_default.find("Seq Scan on invoices"), std::string::npos)
    << by_default;
  const auto in_a_batch = plan_of(true);
  EXPECT_NE(in_a_batch.find("Index Scan using invoices_pkey"),
            std::string::npos)
    << in_a_batch;
  EXPECT_EQ(in_a_batch.find("Seq Scan"), std::string::npos) << in_a_batch;
}

// -- group reads of histories -------------------------------------------------

// A history as the test below wrote it: sub_<i> of ten_a has 1 + i % 4
// events, and a snapshot at the last-but-one when i % 3 == 0 and there are
// two or more; ten_b's sub_0 has seven events and no snapshot; sub_none has
// nothing in either tenant.
struct written_history {
  std::int64_t events = 0;
  std::int64_t snapshot_at = 0; // 0: none
};

written_history history_of(const tenant_id& t, const std::string& sub) {
  if (sub == "sub_none")
    return {};
  if (t == tenant_b)
    return {7, 0};
  const int i = std::stoi(sub.substr(4));
  const std::int64_t n = 1 + i % 4;
  return {n, (i % 3 == 0 && n >= 2) ? n - 1 : 0};
}

std::string payload_of(const tenant_id& t, const std::string& sub,
                       std::int64_t seq) {
  return R"({"t":")" + t.value + R"(","s":")" + sub + R"(","q":)"
         + std::to_string(seq) + "}";
}

// Holds every history read on a lock of `snapshots` until release(), and
// counts the reads that wait on it.
class held_reads {
public:
  explicit held_reads(const std::string& admin_conninfo)
    : admin_(admin_conninfo), locker_(admin_conninfo), lock_(locker_) {
    lock_.exec("LOCK TABLE snapshots IN ACCESS EXCLUSIVE MODE");
  }

  int in_flight() {
    pqxx::nontransaction q{admin_};
    return q
      .exec("SELECT count(*) FROM pg_stat_activity WHERE datname ="
            " current_database() AND wait_event_type = 'Lock' AND query LIKE"
            " '%scoped_load_histories%'")[0][0]
      .as<int>();
  }

  void release() { lock_.commit(); }

  /// Ends the sessions of the reads that wait on the lock; how many.
  int kill_waiting() {
    pqxx::nontransaction q{admin_};
    return q
      .exec("SELECT count(*) FILTER (WHERE pg_terminate_backend(pid))"
            " FROM pg_stat_activity WHERE datname = current_database() AND"
            " wait_event_type = 'Lock' AND"
            " query LIKE '%scoped_load_histories%'")[0][0]
      .as<int>();
  }

private:
  pqxx::connection admin_;
  pqxx::connection locker_;
  pqxx::work lock_;
};

// Concurrent activations are answered by a few statements, each with its own
// subscription's history and no other tenant's rows. The first read of each
// tenant is held on a lock while 30 more activations arrive: those wait in
// the store instead of sending statements of their own (one read in flight
// per tenant), and are then answered by one more read per tenant (four reads
// in all: 32 without batching).
TEST(pg_history_reads, concurrent_activations_share_a_few_reads) {
  auto db = scratch_db::create(db_kind::fresh);
  ASSERT_TRUE(db);
  {
    pqxx::connection c{db->conninfo()};
    pqxx::nontransaction tx{c};
    tx.exec("DO $$ BEGIN EXECUTE format('ALTER DATABASE %I SET"
            " track_functions = ''pl''', current_database()); END $$");
  }
  auto writer = open_ok(db->config());
  ASSERT_NE(writer, nullptr);
  std::vector<unit_of_work> works;
  auto write = [&](const tenant_id& t, const std::string& sub) {
    const auto h = history_of(t, sub);
    unit_of_work w;
    w.tenant = t;
    event_append a{subscription_id{sub}, 0, {}};
    for (std::int64_t q = 1; q <= h.events; ++q)
      a.events.push_back({"e" + std::to_string(q), payload_of(t, sub, q),
                          instant{100 + q}});
    w.events.push_back(std::move(a));
    if (h.snapshot_at > 0)
      w.snapshots.push_back({subscription_id{sub}, h.snapshot_at,
                             "snap:" + sub, instant{50}});
    works.push_back(std::move(w));
  };
  for (int i = 0; i < 24; ++i)
    write(tenant_a, "sub_" + std::to_string(i));
  write(tenant_b, "sub_0");
  for (const auto& r : writer->commit_many(works))
    ASSERT_TRUE(r) << code_of(r);

  std::vector<std::pair<tenant_id, std::string>> asks;
  for (int k = 0; k < 28; ++k) // sub_0 … sub_3 are asked twice
    asks.emplace_back(tenant_a, "sub_" + std::to_string(k % 24));
  asks.emplace_back(tenant_a, "sub_none");
  asks.emplace_back(tenant_b, "sub_0"); // the same id as ten_a's sub_0
  asks.emplace_back(tenant_b, "sub_0");
  asks.emplace_back(tenant_b, "sub_none");

  auto reader_config = db->config();
  reader_config.pool_size = 8; // room for more reads than the store allows
  auto reader = open_ok(reader_config);
  ASSERT_NE(reader, nullptr);
  held_reads held{db->conninfo()};

  std::vector<std::optional<result<subscription_history>>> got(asks.size());
  std::atomic<int> entered{0};
  std::vector<std::thread> threads;
  threads.reserve(asks.size());
  for (std::size_t k = 0; k < asks.size(); ++k)
    threads.emplace_back([&, k] {
      entered.fetch_add(1);
      got[k] = reader->load_history(asks[k].first,
                                    subscription_id{asks[k].second});
    });
  for (int i = 0; i < 500 && (entered.load() < 32 || held.in_flight() < 2); ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  // Time for every thread that has entered to queue in the store: a late one
  // would lead a read of its own after the release (five calls, not four).
  std::this_thread::sleep_for(std::chrono::milliseconds(500));
  EXPECT_EQ(entered.load(), 32);
  EXPECT_EQ(held.in_flight(), 2); // one per tenant; the other 30 wait
  held.release();
  for (auto& th : threads)
    th.join();

  for (std::size_t k = 0; k < asks.size(); ++k) {
    const auto& [t, sub] = asks[k];
    SCOPED_TRACE(t.value + "/" + sub);
    ASSERT_TRUE(got[k].has_value());
    const auto& h = *got[k];
    ASSERT_TRUE(h) << code_of(h);
    const auto want = history_of(t, sub);
    EXPECT_EQ(h->version, want.events);
    ASSERT_EQ(h->snapshot.has_value(), want.snapshot_at > 0);
    if (h->snapshot) {
      EXPECT_EQ(h->snapshot->subscription.value, sub);
      EXPECT_EQ(h->snapshot->seq, want.snapshot_at);
      EXPECT_EQ(h->snapshot->state_json, "snap:" + sub);
      EXPECT_EQ(h->snapshot->taken_at.unix_s, 50);
    }
    ASSERT_EQ(static_cast<std::int64_t>(h->tail.size()),
              want.events - want.snapshot_at);
    for (std::size_t j = 0; j < h->tail.size(); ++j) {
      const auto& e = h->tail[j];
      const std::int64_t q
        = want.snapshot_at + 1 + static_cast<std::int64_t>(j);
      EXPECT_EQ(e.subscription.value, sub);
      EXPECT_EQ(e.seq, q);
      EXPECT_EQ(e.type, "e" + std::to_string(q));
      EXPECT_EQ(e.payload_json, payload_of(t, sub, q));
      EXPECT_EQ(e.recorded_at.unix_s, 100 + q);
    }
  }

  // Each closed session reports its function calls as it exits.
  reader.reset();
  writer.reset();
  pqxx::connection admin{db->conninfo()};
  for (int i = 0; i < 500; ++i) {
    pqxx::nontransaction q{admin};
    if (q.exec("SELECT count(*) FROM pg_stat_activity WHERE datname ="
               " current_database() AND usename <> current_user")[0][0]
          .as<int>()
        == 0)
      break;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  pqxx::nontransaction q{admin};
  const auto calls
    = q.exec("SELECT coalesce(sum(calls), 0) FROM pg_stat_user_functions"
             " WHERE funcname = 'scoped_load_histories'")[0][0]
        .as<std::int64_t>();
  EXPECT_EQ(calls, 4); // the held reads, then one more per tenant
}

// Reads of different tenants run side by side, at most four at once: one
// tenant's burst of activations does not queue another's behind it.
TEST(pg_history_reads, tenants_read_side_by_side_at_most_four_at_once) {
  auto db = scratch_db::create();
  ASSERT_TRUE(db);
  auto config = db->config();
  config.pool_size = 8;
  auto reader = open_ok(config);
  ASSERT_NE(reader, nullptr);
  held_reads held{db->conninfo()};
  constexpr int tenants = 6;
  std::vector<std::optional<result<subscription_history>>> got(tenants);
  std::vector<std::thread> threads;
  threads.reserve(tenants);
  for (int k = 0; k < tenants; ++k)
    threads.emplace_back([&, k] {
      got[k] = reader->load_history(tenant_id{"ten_" + std::to_string(k)},
                                    subscription_id{"sub_none"});
    });
  for (int i = 0; i < 500 && held.in_flight() < 4; ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  std::this_thread::sleep_for(std::chrono::milliseconds(500));
  EXPECT_EQ(held.in_flight(), 4);
  held.release();
  for (auto& th : threads)
    th.join();
  for (const auto& h : got) {
    ASSERT_TRUE(h.has_value());
    ASSERT_TRUE(*h) << code_of(*h);
    EXPECT_EQ((*h)->version, 0);
    EXPECT_FALSE((*h)->snapshot);
    EXPECT_TRUE((*h)->tail.empty());
  }
}

// A read whose session dies is retried on a new connection, and every
// activation waiting on it is answered.
TEST(pg_history_reads, a_read_killed_in_flight_is_retried_for_all_its_waiters) {
  auto db = scratch_db::create();
  ASSERT_TRUE(db);
  auto writer = open_ok(db->config());
  ASSERT_NE(writer, nullptr);
  for (const auto& r : writer->commit_many(std::vector{
         append_one(tenant_a, "sub_1", 0), append_one(tenant_a, "sub_2", 0)}))
    ASSERT_TRUE(r) << code_of(r);
  auto reader = open_ok(db->config());
  ASSERT_NE(reader, nullptr);
  held_reads held{db->conninfo()};
  constexpr int asks = 8;
  std::vector<std::optional<result<subscription_history>>> got(asks);
  std::atomic<int> entered{0};
  std::vector<std::thread> threads;
  threads.reserve(asks);
  for (int k = 0; k < asks; ++k)
    threads.emplace_back([&, k] {
      entered.fetch_add(1);
      got[k] = reader->load_history(
        tenant_a, subscription_id{k % 2 == 0 ? "sub_1" : "sub_none"});
    });
  for (int i = 0; i < 500 && (entered.load() < asks || held.in_flight() < 1);
       ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
  ASSERT_EQ(held.in_flight(), 1);
  EXPECT_EQ(held.kill_waiting(), 1);
  held.release();
  for (auto& th : threads)
    th.join();
  for (int k = 0; k < asks; ++k) {
    SCOPED_TRACE(k);
    ASSERT_TRUE(got[k].has_value());
    ASSERT_TRUE(*got[k]) << code_of(*got[k]);
    EXPECT_EQ((*got[k])->version, k % 2 == 0 ? 1 : 0);
    EXPECT_EQ((*got[k])->tail.size(), k % 2 == 0 ? 1U : 0U);
  }
}

} // namespace

namespace {

// The batch statements carry each column as one text[] literal built by
// pg::array_builder: every string must come back from the server unchanged,
// whatever quotes, backslashes, braces, commas and newlines it holds.
TEST(pg_array_literal, strings_round_trip_through_the_server_unchanged) {
  auto db = scratch_db::create();
  ASSERT_TRUE(db);
  const std::vector<std::string> values{
    "",
    "plain",
    R"({"detail":{"a":"b\"c"},"state":"x\\y"})",
    "\"",
    "\\",
    "\\\"",
    "ends with backslash \\",
    "{a,b}",
    "NULL",
    "line\nbreak\ttab, comma",
    std::string(5000, '"') + "tail",
    "ünïcødé ✓"};
  pg::array_builder b;
  for (const auto& v : values)
    b.add(v);
  pqxx::connection c{db->conninfo()};
  pqxx::work w{c};
  const auto rows = w.exec_params(
    "SELECT x FROM unnest($1::text[]) WITH ORDINALITY AS u(x, n) ORDER BY n",
    b.take());
  ASSERT_EQ(rows.size(), values.size());
  for (std::size_t i = 0; i < values.size(); ++i) {
    ASSERT_FALSE(rows[i][0].is_null()) << i;
    EXPECT_EQ(rows[i][0].as<std::string>(), values[i]) << i;
  }
}

} // namespace
