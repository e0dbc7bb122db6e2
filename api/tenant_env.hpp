#pragma once
/// Each tenant's billing settings for the subscription actors: a plan
/// catalog built from the tenant's stored plan versions (cached, rebuilt
/// after `POST /v1/plans` adds a version), the default dunning ladder of the
/// plan's currency and the default retry policy.

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <shared_mutex>
#include <string>

#include "domain/error.hpp"
#include "sagas/store.hpp"
#include "sagas/subscription.hpp"

namespace recur::api {

/// Plans a tenant may have in the cache; a tenant with more cannot be
/// loaded (env_for answers nullptr and logs it).
inline constexpr std::size_t max_cached_plans = 10'000;

/// A plan catalog that many actors read while the API replaces it.
class shared_plan_catalog final : public plan_catalog {
public:
  result<plan_version> version(const plan_id& plan,
                               std::int32_t version) const override;
  result<plan_version> current(const plan_id& plan, instant at) const override;
  void replace(memory_plan_catalog next);

private:
  mutable std::shared_mutex mutex_;
  memory_plan_catalog plans_;
};

/// Builds tenant `t`'s catalog from the store (every plan, every version).
result<memory_plan_catalog> load_plan_catalog(store& db, const tenant_id& t);

/// The billing environments of every tenant seen so far. Thread-safe.
class tenant_envs {
public:
  explicit tenant_envs(store& db) : db_(db) {}

  /// Tenant `t`'s environment, loading or reloading its catalog when it is
  /// new or was invalidated; nullptr when the store cannot be read (logged).
  /// The pointer stays valid as long as this object lives.
  const billing_env* env_for(const tenant_id& t);

  /// Tenant `t` has a new plan version: the next env_for reloads.
  void invalidate(const tenant_id& t);

  /// Catalog loads so far (for tests).
  std::uint64_t loads() const noexcept {
    return loads_.load(std::memory_order_relaxed);
  }

private:
  struct entry {
    shared_plan_catalog catalog;
    billing_env env;
    std::atomic<std::uint64_t> generation{1}; // bumped by invalidate
    std::atomic<std::uint64_t> loaded{0};     // the generation loaded
    std::mutex loading;
  };
  entry& entry_of(const tenant_id& t);

  store& db_;
  std::shared_mutex mutex_;
  std::map<std::string, std::unique_ptr<entry>, std::less<>> tenants_;
  std::atomic<std::uint64_t> loads_{0};
};

} // namespace recur::api
