// Test clocks and the store view of the wall-clock timer service.

#include "api/test_clocks.hpp"

#include <cassert>

#include <spdlog/spdlog.h>

#include "persistence/forwarding_store.hpp"

namespace recur::api {

// -- test clocks ----------------------------------------------------------------

test_clocks::entry& test_clocks::remember(const tenant_record& t) {
  std::unique_lock lock{mutex_};
  auto [it, fresh] = tenants_.try_emplace(t.id.value);
  if (fresh) {
    if (t.test_mode)
      it->second.clk = std::make_unique<test_clock>(t.created_at);
    it->second.advancing = std::make_unique<std::mutex>();
  }
  return it->second;
}

clock* test_clocks::clock_for(const tenant_id& t) {
  {
    std::shared_lock lock{mutex_};
    if (auto it = tenants_.find(t.value); it != tenants_.end())
      return it->second.clk.get();
  }
  auto rec = db_.get_tenant(t);
  if (!rec) {
    spdlog::warn("event=test_clock_lookup_failed tenant={} error=\"{}\"",
                 t.value, rec.error().detail);
    return nullptr;
  }
  return remember(*rec).clk.get();
}

instant test_clocks::now_for(const tenant_record& t) {
  if (!t.test_mode)
    return wall_.now();
  return clock_of(t).now();
}

test_clock& test_clocks::clock_of(const tenant_record& t) {
  assert(t.test_mode);
  {
    std::shared_lock lock{mutex_};
    if (auto it = tenants_.find(t.id.value);
        it != tenants_.end() && it->second.clk)
      return *it->second.clk;
  }
  return *remember(t).clk;
}

std::mutex& test_clocks::advance_lock(const tenant_id& t) {
  std::unique_lock lock{mutex_};
  auto& e = tenants_[t.value];
  if (!e.advancing)
    e.advancing = std::make_unique<std::mutex>();
  return *e.advancing;
}

// -- the store view of the wall-clock timer service --------------------------

namespace {

class live_timers_store final : public forwarding_store {
public:
  using forwarding_store::forwarding_store;

  result<std::vector<claimed_timer>>
  claim_due_timers(instant now, std::size_t limit, std::int64_t lease_s,
                   const std::string& claimer) override {
    timer_claim_scope scope;
    scope.skip_test_tenants = true;
    return target().claim_due_timers_in(scope, now, limit, lease_s, claimer);
  }
};

} // namespace

std::unique_ptr<store> make_live_timers_store(store& inner) {
  return std::make_unique<live_timers_store>(inner);
}

} // namespace recur::api
