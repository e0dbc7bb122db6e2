// The subscription read-model cache (api/subscription_cache.hpp): the newest
// version wins whatever the order commits and reads are observed in, the
// cache stays within its bound, a miss goes to the store and fills it, and a
// failed commit sends readers back to the store.

#include <atomic>
#include <memory>
#include <string>

#include <gtest/gtest.h>

#include "api/subscription_cache.hpp"
#include "persistence/memory_store.hpp"

namespace {

using namespace recur;
using recur::api::caching_store;
using recur::api::subscription_cache;

const tenant_id acme{"ten_acme"};

subscription_row row(const std::string& id, std::int64_t version,
                     const std::string& status = "active") {
  subscription_row r;
  r.id = subscription_id{id};
  r.customer = customer_id{"cus_1"};
  r.plan = plan_id{"pro"};
  r.status = status;
  r.version = version;
  r.data_json = R"({"v":)" + std::to_string(version) + "}";
  return r;
}

// A store whose subscriptions are canned rows; counts reads and fails
// commits on demand.
class fake_store : public forwarding_store {
public:
  explicit fake_store(store& inner) : forwarding_store(inner) {}

  result<commit_receipt> commit(const unit_of_work&) override {
    if (fail_commits)
      return make_error(errc::unavailable,
                        std::string{commit_outcome_unknown} + ": test");
    return commit_receipt{};
  }
  result<subscription_row> get_subscription(const tenant_id&,
                                            const subscription_id& id) override {
    ++reads;
    if (!stored || stored->id != id)
      return make_error(errc::not_found, "no subscription " + id.value);
    return *stored;
  }

  std::optional<subscription_row> stored;
  std::atomic<int> reads{0};
  bool fail_commits = false;
};

unit_of_work upsert(const subscription_row& r) {
  unit_of_work w;
  w.tenant = acme;
  w.subscriptions.push_back(r);
  return w;
}

TEST(subscription_cache, a_newer_commit_replaces_and_an_older_one_observed_late_does_not) {
  subscription_cache cache{16};
  cache.committed(acme, row("sub_1", 3));
  cache.committed(acme, row("sub_1", 5, "paused"));
  cache.committed(acme, row("sub_1", 4, "active"));
  auto hit = cache.find(acme, subscription_id{"sub_1"});
  ASSERT_TRUE(hit);
  EXPECT_EQ(hit->row->version, 5);
  EXPECT_EQ(hit->row->status, "paused");
}

TEST(subscription_cache, a_store_read_never_replaces_a_known_row) {
  subscription_cache cache{16};
  cache.committed(acme, row("sub_1", 5));
  const auto token = cache.fill_token(acme, subscription_id{"sub_1"});
  cache.filled(acme, row("sub_1", 4), token); // read before, seen after
  cache.filled(acme, row("sub_1", 6), token); // only commits move a known row
  EXPECT_EQ(cache.find(acme, subscription_id{"sub_1"})->row->version, 5);
}

TEST(subscription_cache, a_read_that_raced_with_a_commit_does_not_enter_even_when_the_commit_was_evicted) {
  subscription_cache cache{1}; // one entry: the next commit evicts it
  const auto token = cache.fill_token(acme, subscription_id{"sub_1"});
  // The store read of sub_1 (version 4) is in flight while version 5 of
  // sub_1 commits and is then evicted by another subscription's commit.
  cache.committed(acme, row("sub_1", 5));
  cache.committed(acme, row("sub_2", 1));
  ASSERT_FALSE(cache.find(acme, subscription_id{"sub_1"}));
  cache.filled(acme, row("sub_1", 4), token);
  EXPECT_FALSE(cache.find(acme, subscription_id{"sub_1"}))
    << "a row older than a commit already answered entered the cache";
  // A read started after the commits fills the miss.
  cache.filled(acme, row("sub_1", 5),
               cache.fill_token(acme, subscription_id{"sub_1"}));
  EXPECT_EQ(cache.find(acme, subscription_id{"sub_1"})->row->version, 5);
}

TEST(subscription_cache, tenants_do_not_share_entries) {
  subscription_cache cache{16};
  cache.committed(acme, row("sub_1", 2));
  EXPECT_FALSE(cache.find(tenant_id{"ten_other"}, subscription_id{"sub_1"}));
}

TEST(subscription_cache, stays_within_its_bound) {
  subscription_cache cache{64};
  for (int i = 0; i < 1000; ++i)
    cache.committed(acme, row("sub_" + std::to_string(i), 1));
  EXPECT_LE(cache.size(), 64u);
  EXPECT_GT(cache.size(), 0u);
  subscription_cache tiny{3};
  for (int i = 0; i < 10; ++i) {
    const subscription_id id{"sub_" + std::to_string(i)};
    tiny.filled(acme, row(id.value, 1), tiny.fill_token(acme, id));
  }
  EXPECT_LE(tiny.size(), 3u);
}

TEST(subscription_cache, a_view_attaches_only_to_the_row_it_was_rendered_from) {
  subscription_cache cache{16};
  cache.committed(acme, row("sub_1", 1));
  auto first = cache.find(acme, subscription_id{"sub_1"});
  cache.committed(acme, row("sub_1", 2));
  cache.set_view(acme, first->row, std::make_shared<const std::string>("v1"));
  EXPECT_EQ(cache.find(acme, subscription_id{"sub_1"})->view, nullptr);
  auto second = cache.find(acme, subscription_id{"sub_1"});
  cache.set_view(acme, second->row, std::make_shared<const std::string>("v2"));
  EXPECT_EQ(*cache.find(acme, subscription_id{"sub_1"})->view, "v2");
}

TEST(caching_store, a_miss_reads_the_store_once_and_then_answers_from_memory) {
  memory_store mem;
  fake_store inner{mem};
  inner.stored = row("sub_1", 7);
  subscription_cache cache{16};
  caching_store cs{inner, cache};
  for (int i = 0; i < 3; ++i) {
    auto r = cs.get_subscription(acme, subscription_id{"sub_1"});
    ASSERT_TRUE(r);
    EXPECT_EQ(r->version, 7);
  }
  EXPECT_EQ(inner.reads.load(), 1);
  // Unknown subscriptions are not cached: each read asks the store.
  EXPECT_EQ(cs.get_subscription(acme, subscription_id{"sub_x"}).code(),
            errc::not_found);
  EXPECT_EQ(cs.get_subscription(acme, subscription_id{"sub_x"}).code(),
            errc::not_found);
  EXPECT_EQ(inner.reads.load(), 3);
}

TEST(caching_store, a_commit_writes_through_so_the_next_read_sees_it_without_the_store) {
  memory_store mem;
  fake_store inner{mem};
  inner.stored = row("sub_1", 1);
  subscription_cache cache{16};
  caching_store cs{inner, cache};
  ASSERT_TRUE(cs.get_subscription(acme, subscription_id{"sub_1"}));
  ASSERT_TRUE(cs.commit(upsert(row("sub_1", 2, "paused"))));
  auto r = cs.get_subscription(acme, subscription_id{"sub_1"});
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, "paused");
  EXPECT_EQ(r->version, 2);
  EXPECT_EQ(inner.reads.load(), 1);
  // commit_many: the later unit of one subscription in a batch wins.
  std::vector<unit_of_work> batch{upsert(row("sub_1", 3, "active")),
                                  upsert(row("sub_1", 4, "canceled"))};
  for (const auto& res : cs.commit_many(batch))
    ASSERT_TRUE(res);
  EXPECT_EQ(cs.get_subscription(acme, subscription_id{"sub_1"})->status,
            "canceled");
}

TEST(caching_store, after_a_failed_commit_reads_go_to_the_store_until_it_shows_that_version) {
  memory_store mem;
  fake_store inner{mem};
  subscription_cache cache{16};
  caching_store cs{inner, cache};
  ASSERT_TRUE(cs.commit(upsert(row("sub_1", 2))));
  inner.fail_commits = true;
  EXPECT_FALSE(cs.commit(upsert(row("sub_1", 3, "paused"))));
  // The store did not take it: every read asks again, and the old row read
  // back does not enter the cache.
  inner.stored = row("sub_1", 2);
  EXPECT_EQ(cs.get_subscription(acme, subscription_id{"sub_1"})->version, 2);
  EXPECT_EQ(cs.get_subscription(acme, subscription_id{"sub_1"})->version, 2);
  EXPECT_EQ(inner.reads.load(), 2);
  // The store shows the version (the outcome was a success after all).
  inner.stored = row("sub_1", 3, "paused");
  EXPECT_EQ(cs.get_subscription(acme, subscription_id{"sub_1"})->status,
            "paused");
  EXPECT_EQ(cs.get_subscription(acme, subscription_id{"sub_1"})->version, 3);
  EXPECT_EQ(inner.reads.load(), 3);
}

} // namespace
