// Test clocks and the store view of the wall-clock timer service.

#include "api/test_clocks.hpp"

#include <cassert>

#include <spdlog/spdlog.h>

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

class live_timers_store final : public store {
public:
  explicit live_timers_store(store& inner) : inner_(inner) {}

  result<commit_receipt> commit(const unit_of_work& w) override {
    return inner_.commit(w);
  }
  std::vector<result<commit_receipt>>
  commit_many(std::span<const unit_of_work> ws) override {
    return inner_.commit_many(ws);
  }
  status create_tenant(const tenant_record& t) override {
    return inner_.create_tenant(t);
  }
  result<tenant_record> find_tenant_by_key_hash(const std::string& h) override {
    return inner_.find_tenant_by_key_hash(h);
  }
  result<tenant_record> get_tenant(const tenant_id& t) override {
    return inner_.get_tenant(t);
  }
  result<customer_record> put_customer(const tenant_id& t,
                                       const customer_record& c,
                                       std::int64_t v) override {
    return inner_.put_customer(t, c, v);
  }
  result<customer_record> get_customer(const tenant_id& t,
                                       const customer_id& id) override {
    return inner_.get_customer(t, id);
  }
  status add_plan_version(const tenant_id& t,
                          const plan_version_record& v) override {
    return inner_.add_plan_version(t, v);
  }
  result<std::vector<plan_version_record>>
  list_plan_versions(const tenant_id& t, const plan_id& p) override {
    return inner_.list_plan_versions(t, p);
  }
  result<page<plan_version_record>>
  list_plans(const tenant_id& t, const std::string& c, std::size_t n) override {
    return inner_.list_plans(t, c, n);
  }
  result<subscription_row> get_subscription(const tenant_id& t,
                                            const subscription_id& s) override {
    return inner_.get_subscription(t, s);
  }
  result<page<subscription_row>>
  list_subscriptions(const tenant_id& t, std::optional<std::string> st,
                     std::optional<customer_id> c, const std::string& cur,
                     std::size_t n) override {
    return inner_.list_subscriptions(t, std::move(st), std::move(c), cur, n);
  }
  result<std::vector<event_record>> load_events(const tenant_id& t,
                                                const subscription_id& s,
                                                std::int64_t from) override {
    return inner_.load_events(t, s, from);
  }
  result<subscription_history> load_history(const tenant_id& t,
                                            const subscription_id& s) override {
    return inner_.load_history(t, s);
  }
  result<saga_record> get_saga(const tenant_id& t, const saga_id& id) override {
    return inner_.get_saga(t, id);
  }
  result<std::vector<saga_step_record>>
  load_saga_steps(const tenant_id& t, const saga_id& id) override {
    return inner_.load_saga_steps(t, id);
  }
  result<page<saga_record>> list_sagas(const tenant_id& t, const saga_filter& f,
                                       const std::string& c,
                                       std::size_t n) override {
    return inner_.list_sagas(t, f, c, n);
  }
  result<std::vector<timer_record>>
  list_timers(const tenant_id& t, const std::string& owner) override {
    return inner_.list_timers(t, owner);
  }
  result<invoice_record> get_invoice(const tenant_id& t,
                                     const invoice_id& id) override {
    return inner_.get_invoice(t, id);
  }
  result<invoice_record> find_invoice_by_key(const tenant_id& t,
                                             const std::string& k) override {
    return inner_.find_invoice_by_key(t, k);
  }
  result<page<invoice_record>>
  list_invoices(const tenant_id& t, std::optional<subscription_id> s,
                const std::string& c, std::size_t n) override {
    return inner_.list_invoices(t, std::move(s), c, n);
  }
  result<payment_attempt_record>
  get_attempt(const tenant_id& t, const payment_attempt_id& id) override {
    return inner_.get_attempt(t, id);
  }
  result<std::vector<payment_attempt_record>>
  list_attempts(const tenant_id& t, const invoice_id& i) override {
    return inner_.list_attempts(t, i);
  }
  result<std::vector<ledger_entry_record>>
  load_ledger(const tenant_id& t, const std::string& s) override {
    return inner_.load_ledger(t, s);
  }
  result<std::vector<account_balance>>
  ledger_balances(const tenant_id& t) override {
    return inner_.ledger_balances(t);
  }
  result<usage_receipt> record_usage(const tenant_id& t,
                                     std::span<const usage_event> u) override {
    return inner_.record_usage(t, u);
  }
  result<std::int64_t> sum_usage(const tenant_id& t, const subscription_id& s,
                                 const std::string& m, instant from,
                                 instant to) override {
    return inner_.sum_usage(t, s, m, from, to);
  }
  result<page<audit_record>>
  list_audit(const tenant_id& t, const std::string& c, std::size_t n) override {
    return inner_.list_audit(t, c, n);
  }
  result<bool> inbox_contains(const tenant_id& t, const std::string& g,
                              const std::string& e) override {
    return inner_.inbox_contains(t, g, e);
  }
  result<idempotency_outcome>
  begin_idempotent(const tenant_id& t, const std::string& k,
                   const std::string& h, instant now) override {
    return inner_.begin_idempotent(t, k, h, now);
  }
  result<page<tenant_saga>> find_unfinished_sagas(const std::string& c,
                                                  std::size_t n) override {
    return inner_.find_unfinished_sagas(c, n);
  }
  result<std::vector<outbox_record>> fetch_unpublished(std::int64_t after,
                                                       std::size_t n) override {
    return inner_.fetch_unpublished(after, n);
  }
  status mark_published(std::span<const std::int64_t> p, instant at) override {
    return inner_.mark_published(p, at);
  }
  result<std::vector<claimed_timer>>
  claim_due_timers(instant now, std::size_t limit, std::int64_t lease_s,
                   const std::string& claimer) override {
    timer_claim_scope scope;
    scope.skip_test_tenants = true;
    return inner_.claim_due_timers_in(scope, now, limit, lease_s, claimer);
  }
  result<std::vector<claimed_timer>>
  claim_due_timers_in(const timer_claim_scope& scope, instant now,
                      std::size_t limit, std::int64_t lease_s,
                      const std::string& claimer) override {
    return inner_.claim_due_timers_in(scope, now, limit, lease_s, claimer);
  }
  status put_gateway_config(const tenant_id& t,
                            const gateway_config_record& c) override {
    return inner_.put_gateway_config(t, c);
  }
  result<gateway_config_record>
  get_gateway_config(const tenant_id& t, const std::string& g) override {
    return inner_.get_gateway_config(t, g);
  }
  status release_idempotent(const tenant_id& t, const std::string& k,
                            const std::string& h) override {
    return inner_.release_idempotent(t, k, h);
  }

private:
  store& inner_;
};

} // namespace

std::unique_ptr<store> make_live_timers_store(store& inner) {
  return std::make_unique<live_timers_store>(inner);
}

} // namespace recur::api
