// Issue 4's lifecycle scenarios on PostgreSQL: every scenario on a migrated,
// empty database of its own, its digest compared with the in-memory store's
// (same seed, same start), and the crash matrix (crash after every commit,
// recover from the store, finish, same digest) for every scenario.

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <iterator>
#include <memory>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include <gtest/gtest.h>

#include "persistence/forwarding_store.hpp"
#include "persistence/memory_store.hpp"
#include "persistence/pg_store.hpp"
#include "scenarios.hpp"
#include "tests/persistence/pg_testdb.hpp"

namespace recur::testing {
namespace {

constexpr std::uint64_t seed = 42;

using steady = std::chrono::steady_clock;

double seconds_since(steady::time_point t0) {
  return std::chrono::duration<double>(steady::now() - t0).count();
}

/// `d` (a digest()) with its ledger-balance lines sorted. The store port
/// leaves the order of ledger_balances() open (the contract suite sorts before
/// comparing): the memory store lists accounts in enum order, PostgreSQL by
/// account name, and digest() prints them as listed.
std::string canonical(const std::string& d) {
  std::vector<std::string> lines;
  std::istringstream in{d};
  for (std::string line; std::getline(in, line);)
    lines.push_back(line);
  // The balances are the lines right before "collected=…" that are neither a
  // subscription line (" period=") nor an invoice line (indented).
  auto collected = std::find_if(lines.begin(), lines.end(), [](const auto& l) {
    return l.rfind("collected=", 0) == 0;
  });
  auto first = collected;
  while (first != lines.begin()) {
    const auto& l = *std::prev(first);
    if (l.empty() || l.front() == ' ' || l.find(" period=") != l.npos)
      break;
    --first;
  }
  std::sort(first, collected);
  std::string out;
  for (const auto& l : lines)
    out += l + '\n';
  return out;
}

/// A migrated, empty PostgreSQL database and a store over it.
struct pg_database {
  std::unique_ptr<pgtest::scratch_db> db;
  std::unique_ptr<store> st;

  bool open(pgtest::db_kind kind) {
    db = pgtest::scratch_db::create(kind);
    if (!db)
      return false; // create() has already reported why
    auto opened = open_pg_store(db->config());
    if (!opened) {
      ADD_FAILURE() << "open_pg_store: " << opened.error().detail;
      return false;
    }
    st = std::move(*opened);
    return true;
  }

  ~pg_database() { st.reset(); } // close connections before the db goes
};

/// What one run of a scenario leaves behind.
struct run_result {
  std::string digest;
  std::int64_t commits = 0;
  bool crashed = false;
};

/// Runs `s` on `st`, crashing after commit `crash_at` when it is > 0.
run_result run_on(store& st, const scenario& s, std::int64_t crash_at = 0) {
  billing_harness h(st, scenario_start(), seed);
  if (crash_at > 0)
    h.crash_after_commit(crash_at);
  s.run(h);
  return {canonical(digest(h)), h.commits(), h.crashed()};
}

run_result run_in_memory(const scenario& s) {
  memory_store st;
  return run_on(st, s);
}

std::string param_name(const ::testing::TestParamInfo<scenario>& i) {
  return i.param.name;
}

/// Refuses every commit carrying an inbox entry while `fail_inbox`.
class inbox_failing_store final : public forwarding_store {
public:
  using forwarding_store::forwarding_store;
  bool fail_inbox = false;
  std::vector<inbox_entry> refused;

  result<commit_receipt> commit(const unit_of_work& w) override {
    if (fail_inbox && !w.inbox.empty()) {
      refused.insert(refused.end(), w.inbox.begin(), w.inbox.end());
      return make_error(errc::unavailable, "store down");
    }
    return forwarding_store::commit(w);
  }
};

TEST(webhook_inbox_pgtest,
     the_inbox_row_and_the_payment_commit_together_and_a_replay_commits_nothing) {
  pg_database pg;
  ASSERT_TRUE(pg.open(pgtest::db_kind::pooled));
  inbox_failing_store st{*pg.st};
  billing_harness h(st, scenario_start(), seed);
  h.add_flat_plan("basic", 1, 3000);
  const subscription_id sub{"sub_1"};
  auto created = h.send(sub, sub_in::create{customer_id{"cus_1"},
                                            plan_id{"basic"}, 1,
                                            "pm_sandbox_async", 0});
  ASSERT_TRUE(created.has_value()) << created.error().detail;
  st.fail_inbox = true;
  EXPECT_FALSE(h.advance_days(1).has_value());
  ASSERT_EQ(st.refused.size(), 1U);
  const auto event_id = st.refused[0].event_id;
  EXPECT_FALSE(*pg.st->inbox_contains(h.tenant(), "sandbox", event_id));
  EXPECT_EQ(h.invoices(sub).at(0).status, "open");
  st.fail_inbox = false;
  const auto c = h.gateway().charges().at(0);
  const gateway_event e{.id = event_id,
                        .type = "payment_intent.succeeded",
                        .tenant = h.tenant(),
                        .idempotency_key = c.idempotency_key,
                        .charge_id = c.charge_id,
                        .amount = c.amount,
                        .decline_code = {},
                        .created = h.clock().now()};
  auto applied = h.deliver(e);
  ASSERT_TRUE(applied.has_value()) << applied.error().detail;
  EXPECT_TRUE(*pg.st->inbox_contains(h.tenant(), "sandbox", event_id));
  EXPECT_EQ(h.invoices(sub).at(0).status, "paid");
  auto by_charge = pg.st->find_attempt_by_charge(h.tenant(), c.charge_id);
  ASSERT_TRUE(by_charge.has_value()) << by_charge.error().detail;
  EXPECT_EQ(by_charge->idempotency_key, c.idempotency_key);
  const auto version = h.state(sub)->version;
  auto replay = h.deliver(e);
  ASSERT_FALSE(replay.has_value());
  EXPECT_EQ(replay.error().code, errc::already_exists);
  EXPECT_EQ(h.state(sub)->version, version);
  EXPECT_TRUE(check_invariants(h).empty());
}

TEST(scenario_digest, canonical_form_only_reorders_the_ledger_balances) {
  const std::string d = "sub_1 active basic 1 credit=0 entitled=1 period=1-2 "
                        "live=0\n"
                        "  inv_b paid 3000 3000 3000\n"
                        "  inv_a paid 3000 3000 3000\n"
                        "receivable USD 0\n"
                        "deferred_revenue USD -6000\n"
                        "cash USD 6000\n"
                        "collected=6000 refunded=0\n"
                        "sub_1/invoice/2 completed\n"
                        "sub_1/invoice/1 completed\n";
  EXPECT_EQ(canonical(d), "sub_1 active basic 1 credit=0 entitled=1 "
                          "period=1-2 live=0\n"
                          "  inv_b paid 3000 3000 3000\n"
                          "  inv_a paid 3000 3000 3000\n"
                          "cash USD 6000\n"
                          "deferred_revenue USD -6000\n"
                          "receivable USD 0\n"
                          "collected=6000 refunded=0\n"
                          "sub_1/invoice/2 completed\n"
                          "sub_1/invoice/1 completed\n");
}

// -- every scenario, checked step by step and equal to the memory run -------

class scenario_pgtest : public ::testing::TestWithParam<scenario> {};

TEST_P(scenario_pgtest, runs_with_invariants_and_matches_memory) {
  const auto mem = run_in_memory(GetParam());
  ASSERT_FALSE(HasFailure()) << "the scenario fails in memory already";
  pg_database pg;
  ASSERT_TRUE(pg.open(pgtest::db_kind::fresh));
  const auto t0 = steady::now();
  const auto on_pg = run_on(*pg.st, GetParam());
  const auto took = seconds_since(t0);
  EXPECT_EQ(on_pg.digest, mem.digest)
    << "PostgreSQL (left) and memory (right) differ";
  EXPECT_EQ(on_pg.commits, mem.commits);
  EXPECT_FALSE(on_pg.crashed);
  RecordProperty("commits", static_cast<int>(on_pg.commits));
  std::printf("[ timing ] %s: %lld commits, %.2f s on PostgreSQL\n",
              GetParam().name.c_str(), static_cast<long long>(on_pg.commits),
              took);
}

INSTANTIATE_TEST_SUITE_P(pg, scenario_pgtest,
                         ::testing::ValuesIn(all_scenarios(true)), param_name);

// -- the crash matrix ---------------------------------------------------------

/// For every commit k of the clean run: a migrated, empty database, crash
/// right after commit k (every aggregate, queued input and unsent gateway call
/// dropped), recover from what PostgreSQL holds, finish; the digest equals
/// the clean run's, and the scenario's own assertions and invariants (no key
/// collected twice, every saga finished or waiting on a timer) hold.
///
/// Each k gets a pooled database: pg_testdb empties it when it is taken,
/// which is cheaper than cloning and dropping one per k.
class scenario_crash_matrix_pgtest : public ::testing::TestWithParam<scenario> {
};

TEST_P(scenario_crash_matrix_pgtest,
       crash_after_every_commit_matches_clean_run) {
  const auto clean = run_in_memory(GetParam());
  ASSERT_FALSE(HasFailure()) << "the scenario fails in memory already";
  ASSERT_GE(clean.commits, 1);
  const auto t0 = steady::now();
  for (std::int64_t k = 1; k <= clean.commits; ++k) {
    pg_database pg;
    ASSERT_TRUE(pg.open(pgtest::db_kind::pooled)) << "k=" << k;
    const auto r = run_on(*pg.st, GetParam(), k);
    EXPECT_TRUE(r.crashed) << "k=" << k;
    EXPECT_EQ(r.digest, clean.digest) << "crash after commit " << k;
    if (HasFailure())
      break; // one failing k is enough to read
  }
  const auto took = seconds_since(t0);
  RecordProperty("commits", static_cast<int>(clean.commits));
  std::printf("[ timing ] crash matrix %s: %lld runs, %.2f s (%.3f s/run)\n",
              GetParam().name.c_str(), static_cast<long long>(clean.commits),
              took, took / static_cast<double>(clean.commits));
}

// Every scenario, not just the three the issue names: on a pooled database a
// run costs about 0.05 s (0.1 s for the longest), ~9 s for the whole matrix.
INSTANTIATE_TEST_SUITE_P(pg, scenario_crash_matrix_pgtest,
                         ::testing::ValuesIn(all_scenarios(true)), param_name);

} // namespace
} // namespace recur::testing
