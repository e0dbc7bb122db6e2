// The pure parts under the billing routes: per-tenant billing environments
// (plan catalogs from stored versions, reloaded when told), test clocks and
// the store view that keeps the wall-clock timer service off test tenants.

#include <gtest/gtest.h>

#include "api/tenant_env.hpp"
#include "api/test_clocks.hpp"
#include "persistence/memory_store.hpp"
#include "sagas/catalog_codec.hpp"

namespace {

using namespace recur;
using namespace recur::api;

const tenant_id live_tenant{"ten_live"};
const tenant_id test_tenant{"ten_test"};

plan_version monthly(std::int32_t version, std::int64_t amount_minor,
                     std::int64_t effective_s) {
  return plan_version{version,
                      instant{effective_s},
                      currency::of("USD"),
                      billing_interval{interval_unit::month, 1},
                      14,
                      pricing::flat(amount_minor),
                      {}};
}

class billing_parts : public testing::Test {
protected:
  void SetUp() override {
    ASSERT_TRUE(db_.create_tenant({live_tenant, "Live", std::string(64, 'a'),
                                   false, instant{1'000}}));
    ASSERT_TRUE(db_.create_tenant({test_tenant, "Test", std::string(64, 'b'),
                                   true, instant{5'000}}));
  }

  void add_plan(const tenant_id& t, const std::string& id, plan_version v) {
    const plan_version_record rec{plan_id{id}, v.version, v.effective_at,
                                  plan_version_to_json(v)};
    ASSERT_TRUE(db_.add_plan_version(t, rec));
  }

  void schedule(const tenant_id& t, const std::string& id, std::int64_t due_s) {
    unit_of_work w;
    w.tenant = t;
    w.timers_to_schedule.push_back(
      {id, "sub_1", "retry", instant{due_s}, R"({"subscription":"sub_1"})"});
    ASSERT_TRUE(db_.commit(w));
  }

  memory_store db_;
  manual_clock wall_{instant{1'000'000}};
};

TEST_F(billing_parts, a_tenants_catalog_holds_its_stored_plan_versions) {
  add_plan(live_tenant, "pro", monthly(1, 3000, 0));
  add_plan(live_tenant, "pro", monthly(2, 4000, 100));
  add_plan(test_tenant, "other", monthly(1, 10, 0));
  tenant_envs envs{db_};
  const auto* env = envs.env_for(live_tenant);
  ASSERT_NE(env, nullptr);
  auto v1 = env->plans->version(plan_id{"pro"}, 1);
  ASSERT_TRUE(v1);
  EXPECT_EQ(v1->base.flat_amount_minor, 3000);
  auto now = env->plans->current(plan_id{"pro"}, instant{200});
  ASSERT_TRUE(now);
  EXPECT_EQ(now->version, 2);
  // Another tenant's plan is not in it.
  EXPECT_EQ(env->plans->current(plan_id{"other"}, instant{200}).code(),
            errc::not_found);
}

TEST_F(billing_parts, a_new_version_is_seen_after_invalidate_and_not_before) {
  add_plan(live_tenant, "pro", monthly(1, 3000, 0));
  tenant_envs envs{db_};
  const auto* env = envs.env_for(live_tenant);
  ASSERT_NE(env, nullptr);
  add_plan(live_tenant, "team", monthly(1, 9000, 0));
  EXPECT_EQ(envs.env_for(live_tenant), env); // cached: no reload
  EXPECT_EQ(envs.loads(), 1U);
  EXPECT_FALSE(env->plans->current(plan_id{"team"}, instant{10}));
  envs.invalidate(live_tenant);
  EXPECT_EQ(envs.env_for(live_tenant), env); // same object, new catalog
  EXPECT_EQ(envs.loads(), 2U);
  EXPECT_TRUE(env->plans->current(plan_id{"team"}, instant{10}));
}

TEST_F(billing_parts, only_test_mode_tenants_have_a_test_clock) {
  test_clocks clocks{db_, wall_};
  EXPECT_EQ(clocks.clock_for(live_tenant), nullptr);
  recur::clock* own = clocks.clock_for(test_tenant);
  ASSERT_NE(own, nullptr);
  EXPECT_EQ(own->now(), instant{5'000}); // starts at the tenant's creation
  auto t = db_.get_tenant(test_tenant);
  ASSERT_TRUE(t);
  clocks.clock_of(*t).set(instant{9'000});
  EXPECT_EQ(own->now(), instant{9'000});
  EXPECT_EQ(clocks.now_for(*t), instant{9'000});
  auto l = db_.get_tenant(live_tenant);
  ASSERT_TRUE(l);
  EXPECT_EQ(clocks.now_for(*l), wall_.now());
  EXPECT_EQ(clocks.clock_for(tenant_id{"ten_unknown"}), nullptr);
}

TEST_F(billing_parts, the_wall_clock_view_of_the_store_never_claims_test_timers) {
  schedule(live_tenant, "tm_live", 10);
  schedule(test_tenant, "tm_test", 5);
  auto view = make_live_timers_store(db_);
  auto claimed = view->claim_due_timers(instant{100}, 10, 30, "service");
  ASSERT_TRUE(claimed);
  ASSERT_EQ(claimed->size(), 1U);
  EXPECT_EQ(claimed->at(0).timer.id, "tm_live");
  // The test tenant's timer is still there for its test clock.
  store::timer_claim_scope scope;
  scope.tenant = test_tenant;
  auto own = view->claim_due_timers_in(scope, instant{100}, 10, 30, "clock");
  ASSERT_TRUE(own);
  ASSERT_EQ(own->size(), 1U);
  EXPECT_EQ(own->at(0).timer.id, "tm_test");
  // Everything else goes through to the store.
  EXPECT_TRUE(view->get_tenant(test_tenant));
}

} // namespace
