// The in-memory store: the store contract, plus what only it promises (page
// clamping, cursor checks, thread safety under concurrent writers).

#include "persistence/memory_store.hpp"

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <thread>
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

// Writers race on one stream with optimistic appends, retrying on conflict:
// every append lands exactly once and the seqs stay contiguous.
TEST(memory_store, concurrent_writers_each_land_every_append_exactly_once) {
  memory_store db;
  constexpr int writers = 4;
  constexpr int appends_per_writer = 200;
  constexpr int retries_max = 1000; // per append: a broken store fails fast
  std::atomic<int> gave_up{0};
  std::vector<std::thread> threads;
  threads.reserve(writers);
  for (int w = 0; w < writers; ++w) {
    threads.emplace_back([&db, &gave_up, w] {
      for (int i = 0; i < appends_per_writer; ++i) {
        int attempt = 0;
        for (; attempt < retries_max; ++attempt) {
          auto h = db.load_history(tenant, subscription_id{"sub_1"});
          unit_of_work u;
          u.tenant = tenant;
          u.events.push_back(
            event_append{subscription_id{"sub_1"},
                         h ? h->version : 0,
                         {new_event{std::to_string(w), "{}", instant{i}}}});
          if (db.commit(u))
            break;
        }
        if (attempt == retries_max) {
          ++gave_up;
          return;
        }
      }
    });
  }
  for (auto& t : threads)
    t.join();
  ASSERT_EQ(gave_up.load(), 0);

  auto events = db.load_events(tenant, subscription_id{"sub_1"}, 1);
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

// Claimers race for the same due timers: no timer goes to two of them.
TEST(memory_store, concurrent_claimers_never_share_a_timer) {
  memory_store db;
  constexpr int timers = 500;
  unit_of_work w;
  w.tenant = tenant;
  for (int i = 0; i < timers; ++i)
    w.timers_to_schedule.push_back(timer_record{
      "tm_" + std::to_string(i), "sub_1", "retry", instant{i}, "{}"});
  ASSERT_TRUE(db.commit(w));

  constexpr int claimers = 4;
  std::vector<std::vector<std::string>> got(claimers);
  std::vector<std::thread> threads;
  threads.reserve(claimers);
  for (int c = 0; c < claimers; ++c) {
    threads.emplace_back([&db, &got, c] {
      // Each round claims something or ends: at most `timers` rounds.
      for (int round = 0; round < timers; ++round) {
        auto batch = db.claim_due_timers(instant{timers}, 7, 60, "c");
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

} // namespace
