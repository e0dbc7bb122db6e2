#pragma once
/// A store that hands every call to another store: decorators derive from it
/// and override only the calls they change (a view with other timer claims,
/// a test store that holds, fails or counts some calls). One place to add a
/// forward when the store port grows, instead of one per decorator.

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "sagas/store.hpp"

namespace recur {

class forwarding_store : public store {
public:
  explicit forwarding_store(store& target) : target_(target) {}
  ~forwarding_store() override = default;

  forwarding_store(const forwarding_store&) = delete;
  forwarding_store& operator=(const forwarding_store&) = delete;

  /// The store every call goes to.
  store& target() const noexcept { return target_; }

  result<commit_receipt> commit(const unit_of_work& w) override {
    return target_.commit(w);
  }
  std::vector<result<commit_receipt>>
  commit_many(std::span<const unit_of_work> ws) override {
    return target_.commit_many(ws);
  }
  status create_tenant(const tenant_record& t) override {
    return target_.create_tenant(t);
  }
  result<tenant_record> find_tenant_by_key_hash(const std::string& h) override {
    return target_.find_tenant_by_key_hash(h);
  }
  result<tenant_record> get_tenant(const tenant_id& t) override {
    return target_.get_tenant(t);
  }
  result<customer_record> put_customer(const tenant_id& t,
                                       const customer_record& c,
                                       std::int64_t v) override {
    return target_.put_customer(t, c, v);
  }
  result<customer_record> get_customer(const tenant_id& t,
                                       const customer_id& id) override {
    return target_.get_customer(t, id);
  }
  status add_plan_version(const tenant_id& t,
                          const plan_version_record& v) override {
    return target_.add_plan_version(t, v);
  }
  result<std::vector<plan_version_record>>
  list_plan_versions(const tenant_id& t, const plan_id& p) override {
    return target_.list_plan_versions(t, p);
  }
  result<page<plan_version_record>>
  list_plans(const tenant_id& t, const std::string& c, std::size_t n) override {
    return target_.list_plans(t, c, n);
  }
  result<subscription_row> get_subscription(const tenant_id& t,
                                            const subscription_id& s) override {
    return target_.get_subscription(t, s);
  }
  result<page<subscription_row>>
  list_subscriptions(const tenant_id& t, std::optional<std::string> st,
                     std::optional<customer_id> c, const std::string& cur,
                     std::size_t n) override {
    return target_.list_subscriptions(t, std::move(st), std::move(c), cur, n);
  }
  result<std::vector<event_record>> load_events(const tenant_id& t,
                                                const subscription_id& s,
                                                std::int64_t from) override {
    return target_.load_events(t, s, from);
  }
  result<subscription_history> load_history(const tenant_id& t,
                                            const subscription_id& s) override {
    return target_.load_history(t, s);
  }
  result<saga_record> get_saga(const tenant_id& t, const saga_id& id) override {
    return target_.get_saga(t, id);
  }
  result<std::vector<saga_step_record>>
  load_saga_steps(const tenant_id& t, const saga_id& id) override {
    return target_.load_saga_steps(t, id);
  }
  result<page<saga_record>> list_sagas(const tenant_id& t, const saga_filter& f,
                                       const std::string& c,
                                       std::size_t n) override {
    return target_.list_sagas(t, f, c, n);
  }
  result<std::vector<timer_record>>
  list_timers(const tenant_id& t, const std::string& owner) override {
    return target_.list_timers(t, owner);
  }
  result<invoice_record> get_invoice(const tenant_id& t,
                                     const invoice_id& id) override {
    return target_.get_invoice(t, id);
  }
  result<invoice_record> find_invoice_by_key(const tenant_id& t,
                                             const std::string& k) override {
    return target_.find_invoice_by_key(t, k);
  }
  result<page<invoice_record>>
  list_invoices(const tenant_id& t, std::optional<subscription_id> s,
                const std::string& c, std::size_t n) override {
    return target_.list_invoices(t, std::move(s), c, n);
  }
  result<payment_attempt_record>
  get_attempt(const tenant_id& t, const payment_attempt_id& id) override {
    return target_.get_attempt(t, id);
  }
  result<payment_attempt_record>
  find_attempt_by_charge(const tenant_id& t,
                         const std::string& charge_id) override {
    return target_.find_attempt_by_charge(t, charge_id);
  }
  result<std::vector<payment_attempt_record>>
  list_attempts(const tenant_id& t, const invoice_id& i) override {
    return target_.list_attempts(t, i);
  }
  result<std::vector<ledger_entry_record>>
  load_ledger(const tenant_id& t, const std::string& s) override {
    return target_.load_ledger(t, s);
  }
  result<std::vector<account_balance>>
  ledger_balances(const tenant_id& t) override {
    return target_.ledger_balances(t);
  }
  result<usage_receipt> record_usage(const tenant_id& t,
                                     std::span<const usage_event> u) override {
    return target_.record_usage(t, u);
  }
  result<std::int64_t> sum_usage(const tenant_id& t, const subscription_id& s,
                                 const std::string& m, instant from,
                                 instant to) override {
    return target_.sum_usage(t, s, m, from, to);
  }
  result<page<audit_record>>
  list_audit(const tenant_id& t, const std::string& c, std::size_t n) override {
    return target_.list_audit(t, c, n);
  }
  result<bool> inbox_contains(const tenant_id& t, const std::string& g,
                              const std::string& e) override {
    return target_.inbox_contains(t, g, e);
  }
  result<idempotency_outcome>
  begin_idempotent(const tenant_id& t, const std::string& k,
                   const std::string& h, instant now) override {
    return target_.begin_idempotent(t, k, h, now);
  }
  result<page<tenant_saga>> find_unfinished_sagas(const std::string& c,
                                                  std::size_t n) override {
    return target_.find_unfinished_sagas(c, n);
  }
  result<std::vector<outbox_record>> fetch_unpublished(std::int64_t after,
                                                       std::size_t n) override {
    return target_.fetch_unpublished(after, n);
  }
  status mark_published(std::span<const std::int64_t> p, instant at) override {
    return target_.mark_published(p, at);
  }
  result<std::vector<claimed_timer>>
  claim_due_timers(instant now, std::size_t limit, std::int64_t lease_s,
                   const std::string& claimer) override {
    return target_.claim_due_timers(now, limit, lease_s, claimer);
  }
  result<std::vector<claimed_timer>>
  claim_due_timers_in(const timer_claim_scope& scope, instant now,
                      std::size_t limit, std::int64_t lease_s,
                      const std::string& claimer) override {
    return target_.claim_due_timers_in(scope, now, limit, lease_s, claimer);
  }
  status put_gateway_config(const tenant_id& t,
                            const gateway_config_record& c) override {
    return target_.put_gateway_config(t, c);
  }
  result<gateway_config_record>
  get_gateway_config(const tenant_id& t, const std::string& g) override {
    return target_.get_gateway_config(t, g);
  }
  status release_idempotent(const tenant_id& t, const std::string& k,
                            const std::string& h) override {
    return target_.release_idempotent(t, k, h);
  }
  result<operational_figures> operational_stats(instant now) override {
    return target_.operational_stats(now);
  }

private:
  store& target_;
};

} // namespace recur
