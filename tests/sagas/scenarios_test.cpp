// Issue 4's lifecycle scenarios on the in-memory store, and the crash
// matrix: every scenario crashed after each of its commits, recovered from
// the store, and compared with the clean run.

#include <gtest/gtest.h>

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
