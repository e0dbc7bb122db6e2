#pragma once
/// Test clocks: the time of each test-mode tenant, moved only by
/// `POST /v1/test-clock/advance`, and the store view that keeps the
/// wall-clock timer service away from those tenants' timers.
///
/// A test-mode tenant's clock starts at the tenant's creation time and is
/// kept in memory: after a restart of recurd it starts again from the
/// tenant's creation time (timers already fired stay fired; timers due
/// between that time and the old clock fire on the next advance).

#include <atomic>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <shared_mutex>
#include <string>

#include "domain/clock.hpp"
#include "domain/error.hpp"
#include "sagas/store.hpp"

namespace recur::api {

/// A clock that many threads may read while one sets it.
class test_clock final : public clock {
public:
  explicit test_clock(instant start) : now_s_(start.unix_s) {}

  instant now() const override {
    return instant{now_s_.load(std::memory_order_acquire)};
  }
  void set(instant t) { now_s_.store(t.unix_s, std::memory_order_release); }

private:
  std::atomic<std::int64_t> now_s_;
};

/// The clocks of test-mode tenants, created on first use. Thread-safe.
class test_clocks {
public:
  /// `db` and `wall` must outlive this.
  test_clocks(store& db, const clock& wall) : db_(db), wall_(wall) {}

  /// Tenant `t`'s test clock, or nullptr when it is not in test mode (or
  /// cannot be read now: then the wall clock is used and nothing cached).
  /// For orchestrator_config::clock_for.
  clock* clock_for(const tenant_id& t);

  /// The tenant's time: its test clock in test mode, else the wall clock.
  /// For app_config::now_for.
  instant now_for(const tenant_record& t);

  /// The clock of a test-mode tenant (asserts t.test_mode), created at
  /// t.created_at if new.
  test_clock& clock_of(const tenant_record& t);

  /// Held while one advance of tenant `t` runs, so that advances of one
  /// tenant never interleave.
  std::mutex& advance_lock(const tenant_id& t);

private:
  struct entry {
    std::unique_ptr<test_clock> clk; // null: not a test-mode tenant
    std::unique_ptr<std::mutex> advancing;
  };
  entry& remember(const tenant_record& t);

  store& db_;
  const clock& wall_;
  std::shared_mutex mutex_;
  std::map<std::string, entry, std::less<>> tenants_;
};

/// A store that forwards every call to `inner`, except that the unscoped
/// `claim_due_timers` skips test-mode tenants (it becomes
/// `claim_due_timers_in({.skip_test_tenants = true}, …)`). recurd gives it
/// to the orchestrator, so that neither its timer service nor its fire_due
/// fires a test-mode tenant's timer by wall time. `inner` must outlive it.
std::unique_ptr<store> make_live_timers_store(store& inner);

} // namespace recur::api
