#pragma once
/// Parses a verified Stripe webhook event (JSON) into the gateway port's
/// `gateway_event`, plus what Stripe tells about disputes and refunds.

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <variant>

#include "domain/error.hpp"
#include "domain/payment_gateway.hpp"

namespace recur {

/// Stripe's payloads are small; the webhook endpoint's body limit is larger.
inline constexpr std::size_t stripe_event_size_max = 512 * 1024;

/// Ids and metadata values longer than this are not Stripe's (metadata
/// values are at most 500 characters there).
inline constexpr std::size_t stripe_field_size_max = 500;

/// What `charge.dispute.created` adds to the event. Stripe does not copy the
/// payment's metadata to a dispute, so the consumer finds the payment by
/// `gateway_event::charge_id` (the PaymentIntent id when Stripe names one).
struct stripe_dispute {
  std::string dispute_id;        // "dp_..."
  std::string stripe_charge_id;  // "ch_..."
  std::string payment_intent_id; // "pi_...", empty when Stripe names none
  std::string reason;            // e.g. "fraudulent"
  std::string status;            // e.g. "needs_response"

  friend bool operator==(const stripe_dispute&, const stripe_dispute&)
    = default;
};

/// An event Recur acts on.
///
/// `event.type` is Recur's vocabulary (the sandbox's): Stripe's type, except
/// that `refund.created` becomes "charge.refunded" (both report one refund).
/// `event.charge_id` is what `stripe_gateway::charge` returned: the
/// PaymentIntent id ("pi_...") whenever the object names one, else Stripe's
/// charge id. `event.tenant` comes from `metadata.tenant_id` when present;
/// the webhook URL's tenant is authoritative and a different metadata tenant
/// must be rejected by the caller.
struct stripe_event {
  gateway_event event;
  std::string stripe_type; // as Stripe sent it
  decline_class decline{}; // payment_failed: classify_decline(decline_code)
  std::string refund_id;   // charge.refunded: "re_..."
  std::optional<stripe_dispute> dispute; // charge.dispute.created

  friend bool operator==(const stripe_event&, const stripe_event&) = default;
};

/// An authentic event Recur has no use for: an unknown type, or a payment
/// intent Recur did not make (no `metadata.idempotency_key`). The endpoint answers
/// 200, so that Stripe stops retrying, and logs `reason`.
struct ignored_stripe_event {
  std::string id;
  std::string type;
  std::string reason;

  friend bool
  operator==(const ignored_stripe_event&, const ignored_stripe_event&)
    = default;
};

using parsed_stripe_event = std::variant<stripe_event, ignored_stripe_event>;

// clang-format off
/// Parses `{"id","type","created","data":{"object":{...}}}`.
///
/// | Stripe type                   | data.object   | amount                | idempotency_key
/// |-------------------------------|---------------|-----------------------|--------------------------------
/// | payment_intent.succeeded      | PaymentIntent | amount                | metadata.idempotency_key
/// | payment_intent.payment_failed | PaymentIntent | amount                | metadata.idempotency_key
/// | charge.refunded               | Charge        | refunds.data[0].amount| refunds.data[0].metadata.idempotency_key
/// | refund.created                | Refund        | amount                | metadata.idempotency_key
/// | charge.dispute.created        | Dispute       | amount                | metadata.idempotency_key, or ""
///
/// payment_failed's decline code is `last_payment_error.decline_code`, or its
/// `code` when Stripe gives no decline code (e.g. "expired_card").
/// charge.refunded reads the newest refund (Stripe lists them newest first);
/// API versions from 2022-11-15 no longer include the list, and such an event
/// is ignored: subscribe to refund.created instead (it carries the Refund).
/// refund.created with status "failed" or "canceled" is ignored. A refund
/// without metadata.idempotency_key (made in the gateway's dashboard) is an
/// event with an empty key: the consumer routes it by `charge_id`.
///
/// Amounts must be JSON integers (minor units) and positive; currencies are
/// ISO-4217 codes in any case (Stripe sends "usd"). Errors: `invalid_argument`
/// whose detail names the field (e.g. "data.object.amount: must be an
/// integer"), for malformed JSON, a missing or mistyped field, an unknown
/// currency, or a body over `stripe_event_size_max`.
// clang-format on
result<parsed_stripe_event> parse_stripe_event(std::string_view json);

} // namespace recur
