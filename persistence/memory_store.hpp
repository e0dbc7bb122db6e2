#pragma once
/// The store port kept in process memory: the same contract as PostgreSQL,
/// for unit tests and deterministic simulation (it never reads a clock).
///
/// Thread-safe behind one mutex. A unit of work is applied step by step with
/// an undo journal and rolled back as a whole when any step fails, so a failed
/// commit leaves nothing behind. Page sizes are clamped to `page_limit_max`.

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include <sched.h>

#include "sagas/store.hpp"

namespace recur {

class memory_store final : public store {
public:
  /// Largest page or batch one read returns, whatever the caller asks for.
  static constexpr std::size_t page_limit_max = 1000;

  memory_store();
  ~memory_store() override;
  memory_store(const memory_store&) = delete;
  memory_store& operator=(const memory_store&) = delete;

  // -- writes -----------------------------------------------------------------

  result<commit_receipt> commit(const unit_of_work& work) override;
  /// Moves the unit's rows into the tables instead of copying them.
  result<commit_receipt> commit_owned(unit_of_work&& work) override;
  std::vector<result<commit_receipt>>
  commit_many(std::span<const unit_of_work> works) override;

  // -- tenants and catalogue --------------------------------------------------

  status create_tenant(const tenant_record& t) override;
  result<tenant_record>
  find_tenant_by_key_hash(const std::string& api_key_sha256_hex) override;
  result<tenant_record> get_tenant(const tenant_id& t) override;
  result<customer_record> put_customer(const tenant_id& t,
                                       const customer_record& c,
                                       std::int64_t expected_version) override;
  result<customer_record> get_customer(const tenant_id& t,
                                       const customer_id& id) override;
  status add_plan_version(const tenant_id& t,
                          const plan_version_record& v) override;
  result<std::vector<plan_version_record>>
  list_plan_versions(const tenant_id& t, const plan_id& plan) override;
  result<page<plan_version_record>> list_plans(const tenant_id& t,
                                               const std::string& cursor,
                                               std::size_t limit) override;
  result<subscription_row> get_subscription(const tenant_id& t,
                                            const subscription_id& id) override;
  result<page<subscription_row>>
  list_subscriptions(const tenant_id& t, std::optional<std::string> status,
                     std::optional<customer_id> customer,
                     const std::string& cursor, std::size_t limit) override;

  // -- event store ------------------------------------------------------------

  result<std::vector<event_record>> load_events(const tenant_id& t,
                                                const subscription_id& s,
                                                std::int64_t from_seq) override;
  result<subscription_history> load_history(const tenant_id& t,
                                            const subscription_id& s) override;

  // -- sagas ------------------------------------------------------------------

  result<saga_record> get_saga(const tenant_id& t, const saga_id& id) override;
  result<std::vector<saga_step_record>>
  load_saga_steps(const tenant_id& t, const saga_id& id) override;
  result<page<saga_record>> list_sagas(const tenant_id& t, const saga_filter& f,
                                       const std::string& cursor,
                                       std::size_t limit) override;

  // -- timers, invoices, attempts, ledger, usage, audit -----------------------

  result<std::vector<timer_record>>
  list_timers(const tenant_id& t, const std::string& owner) override;
  result<bool> timer_pending(const tenant_id& t, const std::string& owner,
                             const std::string& id) override;
  result<invoice_record> get_invoice(const tenant_id& t,
                                     const invoice_id& id) override;
  result<invoice_record>
  find_invoice_by_key(const tenant_id& t,
                      const std::string& idempotency_key) override;
  result<page<invoice_record>>
  list_invoices(const tenant_id& t, std::optional<subscription_id> s,
                const std::string& cursor, std::size_t limit) override;
  result<payment_attempt_record>
  get_attempt(const tenant_id& t, const payment_attempt_id& id) override;
  result<std::vector<payment_attempt_record>>
  list_attempts(const tenant_id& t, const invoice_id& invoice) override;
  result<payment_attempt_record>
  find_attempt_by_charge(const tenant_id& t,
                         const std::string& charge_id) override;
  result<std::vector<ledger_entry_record>>
  load_ledger(const tenant_id& t, const std::string& subject) override;
  result<std::vector<account_balance>>
  ledger_balances(const tenant_id& t) override;
  result<usage_receipt> record_usage(const tenant_id& t,
                                     std::span<const usage_event> u) override;
  result<std::int64_t> sum_usage(const tenant_id& t, const subscription_id& s,
                                 const std::string& meter, instant from,
                                 instant to) override;
  result<page<audit_record>> list_audit(const tenant_id& t,
                                        const std::string& cursor,
                                        std::size_t limit) override;
  result<bool> inbox_contains(const tenant_id& t, const std::string& gateway,
                              const std::string& event_id) override;

  // -- HTTP idempotency keys --------------------------------------------------

  result<idempotency_outcome>
  begin_idempotent(const tenant_id& t, const std::string& key,
                   const std::string& request_sha256_hex, instant now) override;

  // -- system (cross-tenant) --------------------------------------------------

  result<page<tenant_saga>> find_unfinished_sagas(const std::string& cursor,
                                                  std::size_t limit) override;
  result<std::vector<claimed_timer>>
  claim_due_timers(instant now, std::size_t limit, std::int64_t lease_s,
                   const std::string& claimer) override;
  result<std::vector<claimed_timer>>
  claim_due_timers_in(const timer_claim_scope& scope, instant now,
                      std::size_t limit, std::int64_t lease_s,
                      const std::string& claimer) override;
  result<std::vector<outbox_record>>
  fetch_unpublished(std::int64_t after_position, std::size_t limit) override;
  status mark_published(std::span<const std::int64_t> positions,
                        instant at) override;

  // -- gateway configs --------------------------------------------------------

  status put_gateway_config(const tenant_id& t,
                            const gateway_config_record& c) override;
  result<gateway_config_record>
  get_gateway_config(const tenant_id& t, const std::string& gateway) override;

  // -- HTTP idempotency keys, continued ---------------------------------------

  status release_idempotent(const tenant_id& t, const std::string& key,
                            const std::string& request_sha256_hex) override;

  // -- operational figures ----------------------------------------------------

  result<operational_figures> operational_stats(instant now) override;

private:
  struct tables;

  /// A test-and-test-and-set spin lock that yields the CPU after a bounded
  /// spin. Commits hold it for microseconds; on two cores a waiter that
  /// sleeps on a futex (glibc's mutex, adaptive or not) pays a hypervisor
  /// round trip to sleep and another to be woken, and its worker's whole
  /// queue of actors stalls meanwhile: the renewal bench used 1.67 of 2
  /// cores with it, and 1.95 with this (bench/RESULTS.md, "Spin lock").
  /// After `spins_max` pauses (tens of microseconds) a waiter yields, so a
  /// holder that was preempted gets its core back.
  class spin_lock {
  public:
    static constexpr int spins_max = 4096;

    void lock() noexcept {
      for (;;) {
        if (!locked_.exchange(true, std::memory_order_acquire))
          return;
        for (int i = 0; locked_.load(std::memory_order_relaxed); ++i) {
          if (i == spins_max) {
            sched_yield();
            i = 0;
          }
#if defined(__x86_64__) || defined(__i386__)
          __builtin_ia32_pause();
#endif
        }
      }
    }
    bool try_lock() noexcept {
      return !locked_.load(std::memory_order_relaxed)
             && !locked_.exchange(true, std::memory_order_acquire);
    }
    void unlock() noexcept { locked_.store(false, std::memory_order_release); }

  private:
    std::atomic<bool> locked_{false};
  };

  spin_lock mutex_;
  std::unique_ptr<tables> tables_; // guarded by mutex_
  // (tenant, gateway) -> config; guarded by mutex_
  std::map<std::pair<std::string, std::string>, gateway_config_record>
    gateway_configs_;
};

} // namespace recur
