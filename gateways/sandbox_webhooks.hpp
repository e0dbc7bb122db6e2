#pragma once
/// Delivers the sandbox gateway's events to recurd the way Stripe would:
/// Stripe-shaped event JSON, signed with `Stripe-Signature`, POSTed over HTTP
/// to the webhook URL — with seeded duplicates, reordering, delays and forged
/// signatures, so that tests and simulations can prove the endpoint holds.
///
///   sandbox_webhook_config c;
///   c.url = "http://127.0.0.1:8080/v1/webhooks/sandbox/t_1";
///   c.secret = "whsec_...";
///   c.duplicate_ppm = 200'000;
///   auto sender = sandbox_webhook_sender::create(c, clock);
///   (*sender)->pump(gateway, clock.now()); // poll, plan, deliver what is due
///
/// Deterministic: every event planned draws exactly five numbers from one
/// seeded std::mt19937_64 (duplicate, reorder, forge, forgery kind, delay
/// jitter), in this order, whatever the rates; so a seed and a sequence of
/// events give the same deliveries. Beast stays in the .cpp.

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "domain/clock.hpp"
#include "domain/error.hpp"
#include "domain/payment_gateway.hpp"
#include "gateways/sandbox_gateway.hpp"

namespace recur {

/// How a forged delivery is wrong. Each one must be refused (400).
enum class forgery_kind : std::uint8_t {
  wrong_secret,    // signed with another secret
  tampered_body,   // the real signature over a body changed afterwards
  stale_timestamp, // the real secret, but signed stale_by_s in the past
  unsigned_body,   // no Stripe-Signature header at all
};

std::string_view to_string(forgery_kind k) noexcept;

struct sandbox_webhook_config {
  /// "http://host:port/path": the webhook endpoint (plain HTTP, loopback in
  /// practice), e.g. ".../v1/webhooks/sandbox/t_1". Every "{tenant}" in the
  /// path is replaced by the event's tenant, so that one sender serves every
  /// tenant of a recurd: ".../v1/webhooks/sandbox/{tenant}". Required.
  std::string url;
  /// The endpoint secret the tenant configured (PUT /v1/gateways/sandbox).
  std::string secret;
  /// Optional: the secret of each tenant (wins over `secret`); nullopt for a
  /// tenant without one: its events are dropped (logged), as Stripe sends
  /// nothing to an endpoint that is not configured.
  std::function<std::optional<std::string>(const tenant_id&)> secret_for;
  std::uint64_t seed = 1;
  /// Each in parts per million of planned events (0..1,000,000).
  /// duplicate: the event is delivered a second time after the batch.
  std::uint32_t duplicate_ppm = 0;
  /// reorder: the event swaps places with the next one of its batch.
  std::uint32_t reorder_ppm = 0;
  /// forge: a forged copy (of a seeded forgery_kind) goes out just before
  /// the real delivery, which still follows.
  std::uint32_t forge_ppm = 0;
  /// Every delivery waits delay_s plus a seeded 0..delay_jitter_s after it
  /// was planned (0..30 days each).
  std::int64_t delay_s = 0;
  std::int64_t delay_jitter_s = 0;
  /// How far in the past a stale_timestamp forgery is signed (> 300).
  std::int64_t stale_by_s = 3'600;
  std::chrono::milliseconds connect_timeout{2'000};
  std::chrono::milliseconds read_timeout{30'000};
  /// Deliveries waiting at once; planning more fails (a runaway test).
  std::size_t queued_max = 100'000;
};

/// `invalid_argument` naming the field: a url that is not http://host:port/…,
/// an empty secret without secret_for, a rate over ppm_max, a delay out of
/// range, queued_max 0.
status validate(const sandbox_webhook_config& c);

/// The Stripe event JSON (`{id, object, api_version, created, livemode,
/// type, data: {object}}`) that `parse_stripe_event` reads back into `e`:
/// payment_intent.* → a PaymentIntent (id = charge_id, metadata
/// idempotency_key and tenant_id, last_payment_error for failures);
/// charge.refunded → a Charge with refunds.data[0] the Refund (`refund_id`,
/// or "re_" + event id when empty); charge.dispute.created → a Dispute;
/// other types → an object of that type that the parser ignores.
std::string stripe_event_json(const gateway_event& e,
                              std::string_view refund_id = {});

/// One planned HTTP delivery.
struct webhook_delivery {
  std::string event_id;
  tenant_id tenant;
  std::string target; // the request target (path) it went to
  std::string type;
  std::string body;
  std::optional<forgery_kind> forged; // set: this copy must be refused
  bool duplicate = false;             // a second copy of a real delivery
  instant due;
};

/// What became of one delivery.
struct delivery_outcome {
  webhook_delivery delivery;
  unsigned http_status = 0;     // 0: no answer (failure says why)
  std::optional<error> failure; // transport error (`unavailable`)
  std::string response_body;
};

class sandbox_webhook_sender {
public:
  /// Checks the config. `signing_clock` stamps signatures (t=) at send time:
  /// it must be the clock the endpoint verifies against (real time for
  /// recurd, even for test-mode tenants); it must outlive the sender.
  static result<std::unique_ptr<sandbox_webhook_sender>>
  create(sandbox_webhook_config config, const clock& signing_clock);

  ~sandbox_webhook_sender();
  sandbox_webhook_sender(const sandbox_webhook_sender&) = delete;
  sandbox_webhook_sender& operator=(const sandbox_webhook_sender&) = delete;

  /// Plans deliveries for `events` (in the order given) applying the seeded
  /// faults; they become due at `now` + delay. Refund events name the
  /// refund id learnt by pump() for their key, else "re_" + event id. Fails
  /// with
  /// `invalid_argument` when the queue would exceed queued_max (nothing is
  /// planned then).
  status enqueue(std::span<const gateway_event> events, instant now);

  /// Sends every planned delivery due by `now`, in plan order, one HTTP
  /// request each (a new connection per request; failures are reported,
  /// not retried: a delivery is dropped after its one try).
  std::vector<delivery_outcome> deliver_due(instant now);

  /// poll_events(now) of `gw` + enqueue + deliver_due(now). Refund events
  /// carry the sandbox's refund ids.
  std::vector<delivery_outcome> pump(sandbox_gateway& gw, instant now);

  /// Deliveries planned and not yet sent.
  std::size_t queued() const;

  const sandbox_webhook_config& config() const noexcept;

  struct impl;

private:
  explicit sandbox_webhook_sender(std::unique_ptr<impl> p);
  std::unique_ptr<impl> impl_;
};

} // namespace recur
