#pragma once
/// The payment gateway port: charge, look up by idempotency key and refund,
/// with Stripe's idempotency semantics. Adapters live in gateways/.

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "domain/error.hpp"
#include "domain/ids.hpp"
#include "domain/money.hpp"
#include "domain/time.hpp"

namespace recur {

/// soft: the same card may succeed later (retry per policy).
/// hard: the customer must act (new card, issuer call); go straight to dunning.
/// Stripe decline codes are mapped by `classify_decline` (workflows/).
enum class decline_class : std::uint8_t { soft, hard };

// -- charges ------------------------------------------------------------------

/// Limits every adapter enforces (Stripe's own idempotency key limit is 255).
inline constexpr std::size_t idempotency_key_size_max = 255;

/// A request to collect `amount` from a customer's payment method. The key is
/// deterministic (e.g. "inv_42/attempt-2"), so re-sending after a crash or a
/// timeout can never collect twice.
struct charge_request {
  std::string idempotency_key;
  tenant_id tenant;
  customer_id customer;
  std::string payment_method; // token, e.g. "pm_card_visa"
  money amount;               // positive
  std::string description;

  friend bool operator==(const charge_request&, const charge_request&)
    = default;
};

/// `unknown`: the call timed out or its answer was lost, so the charge may or
/// may not have happened. The caller resolves it with `retrieve(key)` (or the
/// gateway's webhook), never by charging again under a new key.
enum class charge_status : std::uint8_t {
  succeeded,
  pending,
  declined,
  unknown
};

std::string_view to_string(charge_status s) noexcept;

/// What the gateway answered. `charge_id` is empty when `unknown`;
/// `decline_code` and `decline` are meaningful only when `declined`.
struct charge_result {
  charge_status status = charge_status::unknown;
  std::string charge_id;
  std::string decline_code; // Stripe decline code, e.g. "insufficient_funds"
  /// The adapter's verdict on whether a retry may help: `classify_decline`
  /// of the code for card declines; hard for request errors only the
  /// customer can fix (an unknown or detached payment method). Persist and
  /// use this field; do not re-derive it from the code.
  decline_class decline{};

  friend bool operator==(const charge_result&, const charge_result&) = default;
};

// -- refunds ------------------------------------------------------------------

struct refund_request {
  std::string idempotency_key;
  std::string charge_id;
  money amount; // positive, at most what is still unrefunded

  friend bool operator==(const refund_request&, const refund_request&)
    = default;
};

struct refund_result {
  std::string refund_id;
  money amount;

  friend bool operator==(const refund_result&, const refund_result&) = default;
};

// -- asynchronous events ------------------------------------------------------

/// What a gateway tells us later (as a signed webhook, see issue 5):
/// "payment_intent.succeeded", "payment_intent.payment_failed",
/// "charge.refunded". `idempotency_key` is the key of the request that caused
/// it (the refund's key for "charge.refunded"). Consumers de-duplicate by
/// `id` and apply events by their meaning, whatever order they arrive in.
struct gateway_event {
  std::string id;
  std::string type;
  tenant_id tenant;
  std::string idempotency_key;
  std::string charge_id;
  money amount;
  std::string decline_code; // payment_failed only
  instant created;

  friend bool operator==(const gateway_event&, const gateway_event&) = default;
};

// -- the port -----------------------------------------------------------------

/// A payment gateway. Every call with an external effect carries an
/// idempotency key, with Stripe's semantics:
///  - the same key with an equal request returns the first answer the gateway
///    produced and never charges (or refunds) twice;
///  - the same key with a different request (any field) is
///    `idempotency_conflict`, and nothing happens.
///
/// Outcomes of a charge are values, not errors: succeeded, pending (settles
/// later; a webhook follows), declined (soft/hard), unknown (resolve by
/// `retrieve`). `charge` returns an error only when nothing was charged for
/// sure:
///  - `idempotency_conflict`: the key was used for a different request;
///  - `invalid_argument`: a malformed request (empty or over-long key, empty
///    payment method, non-positive amount);
///  - `unavailable`: the request certainly never reached the gateway
///    (connection refused, outage); retry later with the same key.
/// Anything uncertain is `charge_status::unknown`, never an error.
///
/// Implementations are thread-safe: several actors call one gateway.
class payment_gateway {
public:
  virtual ~payment_gateway() = default;

  virtual result<charge_result> charge(const charge_request& req) = 0;

  /// The charge's current state by its key (a pending charge may have settled
  /// since). `not_found` when the gateway never processed that key: nothing
  /// was charged, and charging again with the same key is safe.
  virtual result<charge_result> retrieve(const std::string& idempotency_key)
    = 0;

  /// `retrieve` for the tenant that made the charge: a gateway that routes by
  /// tenant (gateways/tenant_gateways.hpp) asks that tenant's gateway. The
  /// default ignores the tenant. (A name of its own, not an overload, so
  /// that adapters overriding `retrieve` do not hide it.)
  virtual result<charge_result>
  retrieve_for_tenant(const tenant_id& tenant,
                      const std::string& idempotency_key) {
    static_cast<void>(tenant);
    return retrieve(idempotency_key);
  }

  /// Refunds part or all of a succeeded charge. Errors: `not_found` (no such
  /// charge), `invalid_transition` (the charge has not succeeded),
  /// `currency_mismatch`, `invalid_argument` (non-positive amount, or more
  /// than is still unrefunded), `idempotency_conflict`, `unavailable`.
  virtual result<refund_result> refund(const refund_request& req) = 0;

  /// `refund` for the tenant that made the charge (empty: not known, as
  /// `refund(req)`). The default ignores the tenant.
  virtual result<refund_result>
  refund_for_tenant(const tenant_id& tenant, const refund_request& req) {
    static_cast<void>(tenant);
    return refund(req);
  }

  /// Stable adapter name, as in /v1/webhooks/{gateway}: "sandbox", "stripe".
  virtual std::string_view name() const = 0;
};

} // namespace recur
