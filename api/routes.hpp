#pragma once
/// What route files build their handlers from, and the registrars of the
/// routes this library serves. A later feature adds its routes in a file of
/// its own with a function of the same shape, passed to the app through
/// `app_config::extra_routes`.

#include <functional>
#include <optional>
#include <string>

#include "api/metrics.hpp"
#include "api/router.hpp"
#include "domain/clock.hpp"
#include "domain/error.hpp"
#include "sagas/store.hpp"

namespace recur {
class orchestrator;
} // namespace recur

namespace recur::api {

class tenant_envs;
class test_clocks;

/// Shared by every route; everything in it outlives the app.
struct services {
  store& db;
  const clock& clk;
  metrics_registry& metrics;
  /// The time a tenant lives in: its test clock in test mode, once test
  /// clocks exist; the server's clock otherwise.
  std::function<instant(const tenant_record&)> now_for;
  /// The subscription actors, the tenants' billing settings and test clocks;
  /// set by the billing routes' registrar (`billing_routes`). The routes of
  /// subscriptions, invoices, sagas and the test clock need them; the plan
  /// routes tell `envs` about new versions when it is set.
  orchestrator* orch = nullptr;
  tenant_envs* envs = nullptr;
  test_clocks* clocks = nullptr;
};

using route_registrar = std::function<void(router&, services&)>;

/// POST /v1/tenants; PUT and GET /v1/gateways/{gateway}.
void add_tenant_routes(router& r, services& s);
/// POST /v1/plans, GET /v1/plans, GET /v1/plans/{id}.
void add_catalog_routes(router& r, services& s);
/// POST /v1/customers, GET and PATCH /v1/customers/{id}.
void add_customer_routes(router& r, services& s);
/// POST /v1/usage.
void add_usage_routes(router& r, services& s);
/// GET /v1/ledger/balance, GET /v1/reconciliation.
void add_ledger_routes(router& r, services& s);

/// POST/GET /v1/subscriptions, GET /v1/subscriptions/{id} and its events,
/// POST /v1/subscriptions/{id}/{cancel|pause|resume|change-plan}.
void add_subscription_routes(router& r, services& s);
/// GET /v1/invoices, GET /v1/invoices/{id}, POST /v1/invoices/{id}/{pay|void}.
void add_invoice_routes(router& r, services& s);
/// GET /v1/sagas, GET /v1/sagas/{id}, POST /v1/sagas/{id}/{retry|compensate}.
void add_saga_routes(router& r, services& s);
/// POST /v1/test-clock/advance.
void add_test_clock_routes(router& r, services& s);

/// What the billing routes run on; everything must outlive the app.
struct billing_parts {
  orchestrator* orch = nullptr;
  tenant_envs* envs = nullptr;
  test_clocks* clocks = nullptr;
};

/// One registrar for app_config::extra_routes: sets `services::orch`, `envs`
/// and `clocks` from `parts` and adds the subscription, invoice, saga and
/// test-clock routes.
route_registrar billing_routes(billing_parts parts);

// -- stored documents other routes read ---------------------------------------

/// A customer's fields: `customer_record::data_json` is
/// {"email","name","payment_method","currency","created_at"} with
/// payment_method and currency null when unset.
struct customer_fields {
  std::string email;
  std::string name;
  std::optional<std::string> payment_method; // a gateway token
  std::optional<std::string> currency;       // ISO-4217 code
  instant created_at;
};

/// Reads a stored customer (`invalid_argument` for a document not written by
/// this API).
result<customer_fields> read_customer(const customer_record& c);

/// The gateways `PUT /v1/gateways/{gateway}` accepts.
bool is_known_gateway(std::string_view gateway);

} // namespace recur::api
