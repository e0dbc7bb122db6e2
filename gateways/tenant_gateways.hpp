#pragma once
/// A payment gateway that routes every call to the gateway its tenant chose:
/// a Stripe-API adapter for tenants with a "stripe" config carrying an
/// api_key (PUT /v1/gateways/stripe), the sandbox for everyone else.

#include <cstddef>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "domain/error.hpp"
#include "domain/payment_gateway.hpp"
#include "gateways/stripe_gateway.hpp"

namespace recur {

struct tenant_gateways_config {
  /// The tenant's "stripe" gateway config (the JSON object of
  /// gateway_config_record::config_json), nullopt when it has none. An
  /// error means it cannot be known now: the call answers `unavailable`
  /// and nothing is sent anywhere. Required; called on every gateway call,
  /// so that a changed config takes effect at once.
  std::function<result<std::optional<std::string>>(const tenant_id&)>
    stripe_config_for;
  /// The sandbox that serves tenant `t` (an empty id: calls that name no
  /// tenant). The reference must stay valid while this object lives.
  /// Required.
  std::function<payment_gateway&(const tenant_id&)> sandbox_for;
  /// Optional: the sandbox that made charge `charge_id` (the sandbox's ids
  /// start "ch_sbx_"). Refunds of such ids go there whatever the tenant's
  /// gateway is now, so that a tenant who moved to Stripe can still refund
  /// what the sandbox collected.
  std::function<payment_gateway&(std::string_view charge_id)>
    sandbox_for_charge;
  /// Timeouts and limits of the Stripe adapters built; base_url and
  /// secret_key come from each tenant's config.
  stripe_config stripe_defaults;
  /// Stripe adapters kept (one per tenant); one more evicts another.
  std::size_t stripe_adapters_max = 10'000;
  /// charge id → tenant entries remembered for refunds that name no tenant
  /// (see refund()); one more evicts the oldest.
  std::size_t remembered_charges_max = 100'000;
};

/// `invalid_argument` naming the field: a missing function, a limit of 0.
status validate(const tenant_gateways_config& c);

/// Which adapter a tenant's "stripe" config selects: nullopt (the sandbox)
/// when it has no api_key (a config that only sets the webhook secret);
/// else the Stripe config, base_url defaulting to Stripe's. An unreadable
/// config, or one `validate(stripe_config)` refuses, is `invalid_argument`.
result<std::optional<stripe_config>>
stripe_config_from_json(std::string_view config_json,
                        const stripe_config& defaults);

/// Routes by tenant. The tenant of a call:
///  - charge: the request's tenant;
///  - retrieve_for_tenant / refund_for_tenant: the tenant given;
///  - retrieve(key) with no tenant: the sandbox of the empty tenant id;
///  - refunds of sandbox charge ids ("ch_sbx_…") with `sandbox_for_charge`
///    set: that sandbox;
///  - refund(req) (or refund_for_tenant with an empty tenant): the tenant
///    whose charge answer (or retrieve) last named req.charge_id in this
///    process, else the sandbox of the empty tenant id. After a restart a
///    Stripe charge's refund is only routed right when the caller names
///    the tenant.
///
/// A tenant that switches gateways keeps its charges where they were made:
/// retrieve asks the current gateway and, when that one does not know the
/// key, the other one the tenant may have used (its sandbox after a move to
/// Stripe; after a move back, the Stripe adapter it used in this process),
/// so that a key charged before the switch is found instead of charged
/// again. After a restart, a key charged at Stripe before a move back to
/// the sandbox is only found by naming it at Stripe (the old config is
/// gone).
///
/// A tenant's Stripe adapter is built on first use and rebuilt when its
/// config changes (the old one finishes the calls it has). A config that
/// selects Stripe but is invalid answers `unavailable` (nothing was sent):
/// fixing the config lets a retry under the same key through.
///
/// The secret key never appears in a log line or an error. Thread-safe.
class tenant_gateways final : public payment_gateway {
public:
  /// Asserts `validate(config)`.
  explicit tenant_gateways(tenant_gateways_config config);
  ~tenant_gateways() override;

  tenant_gateways(const tenant_gateways&) = delete;
  tenant_gateways& operator=(const tenant_gateways&) = delete;

  // -- payment_gateway --------------------------------------------------------

  result<charge_result> charge(const charge_request& req) override;
  result<charge_result> retrieve(const std::string& idempotency_key) override;
  result<charge_result>
  retrieve_for_tenant(const tenant_id& tenant,
                      const std::string& idempotency_key) override;
  result<refund_result> refund(const refund_request& req) override;
  result<refund_result> refund_for_tenant(const tenant_id& tenant,
                                          const refund_request& req) override;
  /// "tenant": the adapter that served a call tells its own name
  /// (`gateway_name_for`).
  std::string_view name() const override { return "tenant"; }

  // -- inspection -------------------------------------------------------------

  /// "stripe" or "sandbox": where a call of tenant `t` goes now.
  result<std::string> gateway_name_for(const tenant_id& t);

private:
  struct impl;
  std::unique_ptr<impl> impl_;
};

} // namespace recur
