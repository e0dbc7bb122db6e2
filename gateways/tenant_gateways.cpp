#include "gateways/tenant_gateways.hpp"

#include <deque>
#include <map>
#include <mutex>
#include <optional>
#include <utility>

#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>

namespace recur {

namespace {

using json = nlohmann::json;

error bad(std::string detail) {
  return make_error(errc::invalid_argument, std::move(detail));
}

} // namespace

status validate(const tenant_gateways_config& c) {
  if (!c.stripe_config_for)
    return bad("stripe_config_for: required");
  if (!c.sandbox_for)
    return bad("sandbox_for: required");
  if (c.stripe_adapters_max == 0)
    return bad("stripe_adapters_max: must be positive");
  if (c.remembered_charges_max == 0)
    return bad("remembered_charges_max: must be positive");
  return {};
}

result<std::optional<stripe_config>>
stripe_config_from_json(std::string_view config_json,
                        const stripe_config& defaults) {
  const json doc = json::parse(config_json, nullptr, false);
  if (doc.is_discarded() || !doc.is_object())
    return bad("stripe config: not a JSON object");
  const auto key = doc.find("api_key");
  if (key == doc.end() || key->is_null())
    return std::optional<stripe_config>{};
  if (!key->is_string())
    return bad("stripe config: api_key must be a string");
  stripe_config out = defaults;
  out.secret_key = key->get<std::string>();
  if (const auto url = doc.find("base_url");
      url != doc.end() && !url->is_null()) {
    if (!url->is_string())
      return bad("stripe config: base_url must be a string");
    out.base_url = url->get<std::string>();
  }
  // validate() names the field but never echoes the key's value.
  if (auto st = validate(out); !st)
    return bad("stripe config: " + st.error().detail);
  return std::optional<stripe_config>{std::move(out)};
}

// -- the router ---------------------------------------------------------------

struct tenant_gateways::impl {
  struct adapter {
    std::string config_json; // what it was built from
    std::shared_ptr<stripe_gateway> gateway;
  };

  /// A tenant's gateway for one call: the Stripe adapter is shared so that a
  /// config change while the call runs cannot destroy it under the call.
  struct chosen {
    payment_gateway* gateway = nullptr;
    std::shared_ptr<stripe_gateway> keep_alive;
  };

  explicit impl(tenant_gateways_config c) : config(std::move(c)) {}

  result<chosen> choose(const tenant_id& t) {
    auto cfg = config.stripe_config_for(t);
    if (!cfg)
      return make_error(errc::unavailable,
                        "the tenant's gateway config cannot be read: "
                          + cfg.error().detail);
    if (!*cfg)
      return chosen{&config.sandbox_for(t), nullptr};
    std::lock_guard lock{mutex};
    auto it = adapters.find(t.value);
    if (it != adapters.end() && it->second.config_json == **cfg)
      return chosen{it->second.gateway.get(), it->second.gateway};
    auto parsed = stripe_config_from_json(**cfg, config.stripe_defaults);
    if (!parsed) {
      spdlog::warn("event=tenant_gateway_invalid tenant={} gateway=stripe "
                   "error=\"{}\"",
                   t.value, parsed.error().detail);
      return make_error(errc::unavailable,
                        "the tenant's stripe config is not usable ("
                          + parsed.error().detail
                          + "): fix it with PUT /v1/gateways/stripe");
    }
    if (!*parsed)
      return chosen{&config.sandbox_for(t), nullptr};
    if (it == adapters.end() && adapters.size() >= config.stripe_adapters_max)
      adapters.erase(adapters.begin()); // rebuilt on its tenant's next call
    auto gw = std::make_shared<stripe_gateway>(std::move(**parsed));
    adapters.insert_or_assign(t.value, adapter{**cfg, gw});
    spdlog::info("event=tenant_gateway_built tenant={} gateway=stripe",
                 t.value);
    return chosen{gw.get(), gw};
  }

  /// The tenant's gateway other than `current`: its sandbox when `current`
  /// is a Stripe adapter, else the Stripe adapter it last used in this
  /// process (nullopt: none known).
  std::optional<chosen> other_than(const tenant_id& t,
                                   const payment_gateway* current) {
    auto& sandbox = config.sandbox_for(t);
    if (current != &sandbox)
      return chosen{&sandbox, nullptr};
    std::lock_guard lock{mutex};
    auto it = adapters.find(t.value);
    if (it == adapters.end())
      return std::nullopt;
    return chosen{it->second.gateway.get(), it->second.gateway};
  }

  void remember(const std::string& charge_id, const tenant_id& t) {
    if (charge_id.empty() || t.empty())
      return;
    std::lock_guard lock{mutex};
    auto [it, fresh] = charge_tenants.insert_or_assign(charge_id, t);
    if (!fresh)
      return;
    charge_order.push_back(charge_id);
    while (charge_order.size() > config.remembered_charges_max) {
      charge_tenants.erase(charge_order.front());
      charge_order.pop_front();
    }
  }

  tenant_id tenant_of_charge(const std::string& charge_id) {
    std::lock_guard lock{mutex};
    auto it = charge_tenants.find(charge_id);
    return it == charge_tenants.end() ? tenant_id{} : it->second;
  }

  void remember(const result<charge_result>& r, const tenant_id& t) {
    if (r)
      remember(r->charge_id, t);
  }

  tenant_gateways_config config;
  std::mutex mutex;
  std::map<std::string, adapter, std::less<>> adapters; // by tenant
  std::map<std::string, tenant_id, std::less<>> charge_tenants;
  std::deque<std::string> charge_order; // oldest first
};

tenant_gateways::tenant_gateways(tenant_gateways_config config) {
  RECUR_ASSERT(validate(config).has_value());
  impl_ = std::make_unique<impl>(std::move(config));
}

tenant_gateways::~tenant_gateways() = default;

result<charge_result> tenant_gateways::charge(const charge_request& req) {
  auto gw = impl_->choose(req.tenant);
  if (!gw)
    return gw.error();
  auto r = gw->gateway->charge(req);
  impl_->remember(r, req.tenant);
  return r;
}

result<charge_result>
tenant_gateways::retrieve(const std::string& idempotency_key) {
  return impl_->config.sandbox_for(tenant_id{}).retrieve(idempotency_key);
}

result<charge_result>
tenant_gateways::retrieve_for_tenant(const tenant_id& tenant,
                                     const std::string& idempotency_key) {
  if (tenant.empty())
    return retrieve(idempotency_key);
  auto gw = impl_->choose(tenant);
  if (!gw)
    return gw.error();
  auto r = gw->gateway->retrieve(idempotency_key);
  if (!r && r.code() == errc::not_found) {
    // The key may have been charged before the tenant switched gateways:
    // "not found here" must not become a second charge, so the other
    // gateway the tenant may have used answers too.
    if (auto previous = impl_->other_than(tenant, gw->gateway)) {
      auto there = previous->gateway->retrieve(idempotency_key);
      if (there || there.code() != errc::not_found) {
        spdlog::info("event=gateway_retrieve_elsewhere tenant={} key={} "
                     "gateway={} found={}",
                     tenant.value, idempotency_key, previous->gateway->name(),
                     there.has_value());
        r = std::move(there);
      }
    }
  }
  impl_->remember(r, tenant);
  return r;
}

result<refund_result> tenant_gateways::refund(const refund_request& req) {
  return refund_for_tenant(tenant_id{}, req);
}

result<refund_result>
tenant_gateways::refund_for_tenant(const tenant_id& tenant,
                                   const refund_request& req) {
  if (impl_->config.sandbox_for_charge && req.charge_id.starts_with("ch_sbx_"))
    return impl_->config.sandbox_for_charge(req.charge_id).refund(req);
  const tenant_id t = tenant.empty() ? impl_->tenant_of_charge(req.charge_id)
                                     : tenant;
  if (t.empty())
    return impl_->config.sandbox_for(tenant_id{}).refund(req);
  auto gw = impl_->choose(t);
  if (!gw)
    return gw.error();
  return gw->gateway->refund(req);
}

result<std::string> tenant_gateways::gateway_name_for(const tenant_id& t) {
  auto gw = impl_->choose(t);
  if (!gw)
    return gw.error();
  return std::string{gw->gateway->name()};
}

} // namespace recur
