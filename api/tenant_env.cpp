// Per-tenant billing environments (tenant_env.hpp).

#include "api/tenant_env.hpp"

#include <mutex>

#include <spdlog/spdlog.h>

#include "sagas/catalog_codec.hpp"

namespace recur::api {

// -- shared_plan_catalog ------------------------------------------------------

result<plan_version> shared_plan_catalog::version(const plan_id& plan,
                                                  std::int32_t version) const {
  std::shared_lock lock{mutex_};
  return plans_.version(plan, version);
}

result<plan_version> shared_plan_catalog::current(const plan_id& plan,
                                                  instant at) const {
  std::shared_lock lock{mutex_};
  return plans_.current(plan, at);
}

void shared_plan_catalog::replace(memory_plan_catalog next) {
  std::unique_lock lock{mutex_};
  plans_ = std::move(next);
}

result<memory_plan_catalog> load_plan_catalog(store& db, const tenant_id& t) {
  memory_plan_catalog out;
  std::string cursor;
  std::size_t plans = 0;
  do {
    auto page = db.list_plans(t, cursor, 100);
    if (!page)
      return page.error();
    for (const auto& latest : page->items) {
      if (++plans > max_cached_plans)
        return make_error(errc::invalid_argument,
                          "tenant has more than "
                            + std::to_string(max_cached_plans) + " plans");
      auto versions = db.list_plan_versions(t, latest.plan);
      if (!versions)
        return versions.error();
      for (const auto& rec : *versions) {
        auto v = plan_version_from_json(rec.data_json);
        if (!v)
          return make_error(errc::storage_error,
                            "plan " + rec.plan.value + " version "
                              + std::to_string(rec.version)
                              + " is unreadable: " + v.error().detail);
        if (auto st = out.add(rec.plan, std::move(*v)); !st)
          return st.error();
      }
    }
    cursor = page->next_cursor;
  } while (!cursor.empty());
  return out;
}

// -- tenant_envs --------------------------------------------------------------

tenant_envs::entry& tenant_envs::entry_of(const tenant_id& t) {
  {
    std::shared_lock lock{mutex_};
    if (auto it = tenants_.find(t.value); it != tenants_.end())
      return *it->second;
  }
  std::unique_lock lock{mutex_};
  auto& slot = tenants_[t.value];
  if (!slot) {
    slot = std::make_unique<entry>();
    slot->env.plans = &slot->catalog; // ladder: the engine's default
  }
  return *slot;
}

const billing_env* tenant_envs::env_for(const tenant_id& t) {
  auto& e = entry_of(t);
  if (e.loaded.load(std::memory_order_acquire)
      == e.generation.load(std::memory_order_acquire))
    return &e.env;
  std::lock_guard loading{e.loading}; // one load at a time per tenant
  const auto wanted = e.generation.load(std::memory_order_acquire);
  if (e.loaded.load(std::memory_order_acquire) == wanted)
    return &e.env; // another thread loaded it meanwhile
  auto catalog = load_plan_catalog(db_, t);
  if (!catalog) {
    spdlog::error("event=plan_catalog_load_failed tenant={} error=\"{}\"",
                  t.value, catalog.error().detail);
    return e.loaded.load() == 0 ? nullptr : &e.env; // stale beats nothing
  }
  e.catalog.replace(std::move(*catalog));
  e.loaded.store(wanted, std::memory_order_release);
  loads_.fetch_add(1, std::memory_order_relaxed);
  return &e.env;
}

void tenant_envs::invalidate(const tenant_id& t) {
  entry_of(t).generation.fetch_add(1, std::memory_order_acq_rel);
}

} // namespace recur::api
