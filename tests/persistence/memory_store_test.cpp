// The in-memory store: the store contract, plus what only it promises (page
// clamping, cursor and lease checks; concurrency is in the contract).

#include "persistence/memory_store.hpp"

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "tests/persistence/store_contract.hpp"

namespace {

using namespace recur;

struct memory_harness final : store_harness {
  memory_store db;
  recur::store& get() override { return db; }
};

INSTANTIATE_TEST_SUITE_P(memory, store_contract,
                         ::testing::Values(harness_factory{
                           [] { return std::make_unique<memory_harness>(); }}));

const tenant_id tenant{"ten_a"};

unit_of_work work_with_audit(int count) {
  unit_of_work w;
  w.tenant = tenant;
  for (int i = 0; i < count; ++i)
    w.audit.push_back(audit_entry{"system", "a", "s", "{}", instant{i}});
  return w;
}

TEST(memory_store, pages_are_clamped_to_the_page_limit) {
  memory_store db;
  const auto n = static_cast<int>(memory_store::page_limit_max) + 5;
  ASSERT_TRUE(db.commit(work_with_audit(n)));

  auto first = db.list_audit(tenant, "", 1'000'000);
  ASSERT_TRUE(first);
  EXPECT_EQ(first->items.size(), memory_store::page_limit_max);
  ASSERT_FALSE(first->next_cursor.empty());
  auto rest = db.list_audit(tenant, first->next_cursor, 1'000'000);
  ASSERT_TRUE(rest);
  EXPECT_EQ(rest->items.size(), 5U);
  EXPECT_TRUE(rest->next_cursor.empty());
}

TEST(memory_store, a_zero_limit_still_makes_progress) {
  memory_store db;
  ASSERT_TRUE(db.commit(work_with_audit(2)));
  auto p = db.list_audit(tenant, "", 0);
  ASSERT_TRUE(p);
  EXPECT_EQ(p->items.size(), 1U);
  EXPECT_FALSE(p->next_cursor.empty());
}

TEST(memory_store, a_malformed_cursor_is_an_invalid_argument) {
  memory_store db;
  EXPECT_EQ(db.list_audit(tenant, "x", 10).code(), errc::invalid_argument);
  EXPECT_EQ(db.list_sagas(tenant, {}, "nocolon", 10).code(),
            errc::invalid_argument);
  EXPECT_EQ(db.find_unfinished_sagas("99:ab", 10).code(),
            errc::invalid_argument);
}

TEST(memory_store, a_lease_must_last_some_time) {
  memory_store db;
  EXPECT_EQ(db.claim_due_timers(instant{0}, 10, 0, "c").code(),
            errc::invalid_argument);
}

TEST(memory_store, a_snapshot_past_the_stream_is_a_constraint_violation) {
  memory_store db;
  unit_of_work w;
  w.tenant = tenant;
  w.events.push_back(event_append{
    subscription_id{"sub_1"}, 0, {new_event{"e", "{}", instant{0}}}});
  w.snapshots.push_back(snapshot_record{subscription_id{"sub_1"}, 2, "{}", {}});
  EXPECT_EQ(db.commit(w).code(), errc::constraint_violation);
  auto h = db.load_history(tenant, subscription_id{"sub_1"});
  ASSERT_TRUE(h);
  EXPECT_EQ(h->version, 0);
}

} // namespace
