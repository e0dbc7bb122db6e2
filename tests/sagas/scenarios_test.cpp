// Issue 4's lifecycle scenarios on the in-memory store, and the crash
// matrix: every scenario crashed after each of its commits, recovered from
// the store, and compared with the clean run.

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "persistence/memory_store.hpp"
#include "scenarios.hpp"

namespace recur::testing {
namespace {

class scenario_test : public ::testing::TestWithParam<scenario> {};

TEST_P(scenario_test, runs_with_invariants) {
  memory_store st;
  billing_harness h(st, scenario_start(), 42);
  GetParam().run(h);
}

/// Invoice lines and outbox data are written without a JSON DOM on the hot
/// paths: each must be exactly what nlohmann prints for it (sorted keys,
/// compact), as the rest of the stored JSON is.
TEST_P(scenario_test, stored_invoice_lines_and_outbox_data_are_canonical_json) {
  memory_store st;
  billing_harness h(st, scenario_start(), 42);
  GetParam().run(h);
  std::size_t invoices = 0;
  auto subs = st.list_subscriptions(h.tenant(), std::nullopt, std::nullopt,
                                    "", 1000);
  ASSERT_TRUE(subs);
  const std::vector<subscription_row> rows = subs->items;
  for (const auto& sub : rows)
    for (const auto& inv : h.invoices(sub.id)) {
      ++invoices;
      auto j = nlohmann::json::parse(inv.lines_json);
      ASSERT_TRUE(j.is_array()) << inv.lines_json;
      EXPECT_EQ(j.dump(), inv.lines_json);
    }
  auto out = st.fetch_unpublished(0, 100000);
  ASSERT_TRUE(out);
  for (const auto& r : *out) {
    auto j = nlohmann::json::parse(r.message.data_json);
    EXPECT_EQ(j.dump(), r.message.data_json) << r.message.type;
    EXPECT_EQ(j.value("subscription", ""), r.message.key) << r.message.type;
  }
  RecordProperty("invoices", static_cast<int>(invoices));
}

/// The crash matrix: for every commit k of the clean run, crash right after
/// it (drop every aggregate, queued input and unsent gateway call), recover
/// from the store, finish; the digest equals the clean run's and no gateway
/// key was collected twice (check_invariants inside each scenario).
TEST_P(scenario_test, crash_after_every_commit) {
  std::string clean;
  std::int64_t commits = 0;
  {
    memory_store st;
    billing_harness h(st, scenario_start(), 42);
    GetParam().run(h);
    clean = digest(h);
    commits = h.commits();
  }
  ASSERT_GE(commits, 1);
  RecordProperty("commits", static_cast<int>(commits));
  for (std::int64_t k = 1; k <= commits; ++k) {
    SCOPED_TRACE("crash after commit " + std::to_string(k));
    memory_store st;
    billing_harness h(st, scenario_start(), 42);
    h.crash_after_commit(k);
    GetParam().run(h);
    EXPECT_TRUE(h.crashed()) << "k=" << k;
    EXPECT_EQ(digest(h), clean) << "crash after commit " << k;
    if (::testing::Test::HasFailure())
      break; // one failing k is enough to read
  }
}

INSTANTIATE_TEST_SUITE_P(
  memory, scenario_test, ::testing::ValuesIn(all_scenarios(true)),
  [](const ::testing::TestParamInfo<scenario>& i) { return i.param.name; });

} // namespace
} // namespace recur::testing
