#pragma once
/// The store contract suite's fixture: every backend of `recur::store` runs the
/// same TEST_P cases by instantiating `store_contract` with a harness factory.
///
/// Usage in a backend's test file (which also compiles store_contract.cpp):
///
///   INSTANTIATE_TEST_SUITE_P(memory, store_contract,
///     ::testing::Values(harness_factory{[] { return make_my_harness(); }}));
///
/// Each test gets a fresh, EMPTY store from the factory; SetUp then creates
/// the two tenants every test uses (`tenant_a`, `tenant_b`) through the port,
/// so backends with foreign keys to the tenants table work unchanged.

#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include <gtest/gtest.h>

#include "sagas/store.hpp"

/// One fresh, EMPTY store per test; destroyed at the end of the test.
struct store_harness {
  virtual ~store_harness() = default;
  virtual recur::store& get() = 0;
};

using harness_factory = std::function<std::unique_ptr<store_harness>()>;

class store_contract : public ::testing::TestWithParam<harness_factory> {
protected:
  void SetUp() override;
  void TearDown() override;

  recur::store& db() { return harness_->get(); }
  store_harness& harness() { return *harness_; }

  // -- tenants created by SetUp ----------------------------------------------

  static recur::tenant_id tenant_a() { return recur::tenant_id{"ten_a"}; }
  static recur::tenant_id tenant_b() { return recur::tenant_id{"ten_b"}; }
  static recur::tenant_record tenant(const recur::tenant_id& id,
                                     std::string key_hash);

  // -- record builders (deterministic: times are offsets from `t0`) -----------

  static recur::instant t0() { return recur::utc(2024, 3, 1); }
  static recur::instant at(std::int64_t offset_s) {
    return t0().plus_seconds(offset_s);
  }

  static recur::unit_of_work work(const recur::tenant_id& t) {
    recur::unit_of_work w;
    w.tenant = t;
    return w;
  }
  static recur::event_append append(const std::string& sub,
                                    std::int64_t expected_version, int count,
                                    std::int64_t first_at_s = 0);
  static recur::snapshot_record snapshot(const std::string& sub,
                                         std::int64_t seq);
  static recur::saga_record saga(const std::string& id, const std::string& type,
                                 std::int64_t created_at_s,
                                 const std::string& sub = "sub_1");
  static recur::saga_update
  saga_move(const std::string& id, std::int64_t expected_version,
            recur::saga_status status, std::int32_t step);
  static recur::saga_step_record saga_step(const std::string& saga,
                                           std::int32_t step,
                                           const std::string& name);
  static recur::timer_record
  timer(const std::string& id, const std::string& owner,
        const std::string& kind, std::int64_t due_at_s);
  static recur::outbox_message message(const std::string& id,
                                       const std::string& key = "sub_1");
  static recur::invoice_record invoice(const std::string& id,
                                       const std::string& sub,
                                       const std::string& key);
  static recur::invoice_update invoice_move(const std::string& id,
                                            std::int64_t expected_version,
                                            const std::string& status);
  static recur::payment_attempt_record
  attempt(const std::string& id, const std::string& invoice,
          const std::string& key, std::int32_t attempt_no = 1);
  static recur::payment_attempt_update
  attempt_move(const std::string& id, std::int64_t expected_version,
               const std::string& status);
  /// DR receivable / CR revenue `amount_minor` in `currency_code`.
  static recur::ledger_append
  ledger_tx(const std::string& id, const std::string& subject,
            std::int64_t amount_minor,
            const std::string& currency_code = "USD");
  static recur::audit_entry audit(const std::string& action, std::int64_t at_s);
  static recur::customer_record customer(const std::string& id,
                                         const std::string& data_json);
  static recur::plan_version_record plan_version(const std::string& plan,
                                                 std::int32_t version);
  static recur::subscription_row
  subscription(const std::string& id, const std::string& customer,
               const std::string& status, std::int64_t version);
  static recur::usage_event usage(const std::string& id, const std::string& sub,
                                  const std::string& meter,
                                  std::int64_t quantity, std::int64_t at_s);
  static recur::inbox_entry inbox(const std::string& gateway,
                                  const std::string& event_id);

  // -- helpers that assert as they go -----------------------------------------

  /// Commits and fails the test (returning an empty receipt) on an error.
  recur::commit_receipt commit_ok(const recur::unit_of_work& w);
  /// Commits and checks it fails with `code`.
  void commit_fails(const recur::unit_of_work& w, recur::errc code);

private:
  std::unique_ptr<store_harness> harness_;
};
