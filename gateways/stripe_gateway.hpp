#pragma once
/// A payment gateway that speaks Stripe's REST API (PaymentIntents, search,
/// refunds) over HTTP/1.1; Boost.Beast and OpenSSL stay in the .cpp file.

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "domain/payment_gateway.hpp"

namespace recur {

// -- configuration ------------------------------------------------------------

/// Where and how to reach Stripe. Every wait and size is bounded.
struct stripe_config {
  /// "https://api.stripe.com", or "http://127.0.0.1:12111" for a fake or
  /// stripe-mock; a path prefix ("http://host:port/stripe") is kept.
  std::string base_url = "https://api.stripe.com";
  /// The secret API key ("sk_live_...", "sk_test_..."), sent as Bearer.
  std::string secret_key;
  /// Sent as `Stripe-Version` when not empty; empty uses the account's
  /// default version. Events are parsed per stripe_events.hpp.
  std::string stripe_version;
  /// https only: a PEM CA bundle to trust instead of the system's.
  std::string ca_file;
  /// Resolving, connecting and (https) the TLS handshake.
  std::int64_t connect_timeout_ms = 5'000;
  /// Sending the request and reading the whole answer.
  std::int64_t read_timeout_ms = 30'000;
  std::size_t response_size_max_bytes = 1'048'576;
};

inline constexpr std::int64_t stripe_timeout_ms_max = 300'000;
inline constexpr std::size_t stripe_response_size_max_bytes = 16'777'216;

/// `invalid_argument` naming the field unless the base URL is
/// http(s)://host[:port][/prefix], the secret key is non-empty and printable
/// ASCII, the timeouts are in (0, stripe_timeout_ms_max] and the response
/// size in [4 KiB, stripe_response_size_max_bytes].
status validate(const stripe_config& c);

// -- form encoding ------------------------------------------------------------

using form_fields = std::vector<std::pair<std::string, std::string>>;

/// application/x-www-form-urlencoded, in the order given: every byte outside
/// A-Z a-z 0-9 - . _ ~ is percent-encoded (upper-case hex), keys included
/// ("metadata[k]" → "metadata%5Bk%5D"), space as %20.
std::string form_encode(const form_fields& fields);

/// Percent-encodes one component the same way.
std::string percent_encode(std::string_view s);

// -- the adapter --------------------------------------------------------------

// clang-format off
/// Stripe's REST API behind the gateway port.
///
/// charge → `POST /v1/payment_intents` with `Idempotency-Key: <key>` and the
/// form fields amount, currency (lower-case), customer (when not empty),
/// payment_method, confirm=true, off_session=true, description (when not
/// empty), metadata[idempotency_key], metadata[tenant_id]. Stripe does not
/// echo the header in events or search, hence the metadata. `charge_id` is
/// the PaymentIntent id ("pi_..."). Stripe needs `customer` to be its own
/// customer id (the one the payment method is attached to).
///
/// | Stripe's answer                                      | charge()
/// |------------------------------------------------------|---------------------------
/// | 200, status succeeded                                | succeeded
/// | 200, processing / requires_action / requires_capture | pending (a webhook follows)
/// |   / requires_confirmation                            |
/// | 200, requires_payment_method                         | declined, last_payment_error's code
/// | 200, canceled                                        | declined "canceled", hard
/// | 402 card_error                                       | declined: decline_code, else code;
/// |                                                      |   classify_decline
/// | 400 resource_missing (no such payment method or      | declined "resource_missing", hard
/// |   customer)                                          |   (only the customer can fix it)
/// | idempotency_error (400 or 409)                       | error idempotency_conflict
/// | other 400 / 404 / 4xx                                | error invalid_argument
/// | 401, 403, 429                                        | error unavailable (nothing was done)
/// | 5xx, timeout or lost connection after sending,       | unknown (Stripe replays a saved 500
/// |   an unreadable or oversized answer, 409 other       |   for the same key: resolve with
/// |                                                      |   retrieve or the webhook)
/// | refused, unresolvable, connect timeout, TLS failure  | error unavailable (never sent)
///
/// retrieve(key) → `GET /v1/payment_intents/search?query=metadata['idempotency_key']:'<key>'`
/// and maps the PaymentIntent as above; an empty result is not_found. Stripe's
/// search is eventually consistent (about a minute behind): a charge made
/// moments ago may be not_found, and charging again with the same key is then
/// still safe for the 24 hours Stripe keeps idempotency keys. 400 or 404 is
/// invalid_argument; any other failure is unavailable (a GET changes nothing).
///
/// refund → `POST /v1/refunds` with `Idempotency-Key` and payment_intent
/// (ids "pi_...") or charge (others), amount, metadata[idempotency_key].
/// resource_missing → not_found; idempotency_error → idempotency_conflict;
/// payment_intent_unexpected_state → invalid_transition; other 4xx →
/// invalid_argument; 401/403/429, 5xx and every transport failure
/// → unavailable (retrying under the same key cannot refund twice).
///
/// https uses OpenSSL with the system's CAs (or `ca_file`), peer and host
/// name verification and SNI. One connection per call (`Connection: close`),
/// so calls from many threads are independent: thread-safe.
///
/// Requests the port calls malformed (an empty, over-long or non-printable
/// key, an empty payment method or charge id, a non-positive amount) are
/// `invalid_argument` and never sent.
// clang-format on
class stripe_gateway final : public payment_gateway {
public:
  /// Asserts `validate(config)`.
  explicit stripe_gateway(stripe_config config);
  ~stripe_gateway() override;

  stripe_gateway(const stripe_gateway&) = delete;
  stripe_gateway& operator=(const stripe_gateway&) = delete;

  // -- payment_gateway --------------------------------------------------------

  result<charge_result> charge(const charge_request& req) override;
  result<charge_result> retrieve(const std::string& idempotency_key) override;
  result<refund_result> refund(const refund_request& req) override;
  std::string_view name() const override { return "stripe"; }

private:
  struct impl;
  std::unique_ptr<impl> impl_;
};

} // namespace recur
