#pragma once
/// `POST /v1/webhooks/{gateway}/{tenant_id}`: gateway events signed with
/// Stripe's scheme, verified, de-duplicated by event id and handed to the
/// subscription they are about as `sub_in::gateway_notice`.
///
/// The composition root registers it with one line per app:
///
///   app_config.extra_routes.push_back([&](router& r, services& s) {
///     add_webhook_routes(r, s.db, s.clk,
///                        [o = orch.get()](subscription_command c, auto done) {
///                          o->submit(std::move(c), std::move(done));
///                        });
///   });
///
/// What a delivery gets (the body is read raw, exactly as sent):
///
/// | case                                              | answer
/// |---------------------------------------------------|-----------------------
/// | unknown gateway, malformed tenant id, no config   | 404 not_found
/// | config without a webhook_secret                   | 400 invalid_signature
/// | unsigned, tampered, wrong secret, stale (±300 s)  | 400 invalid_signature
/// | signed but not a Stripe event we can read         | 400 invalid_event
/// | metadata.tenant_id names another tenant           | 400 invalid_event
/// | a type Recur does not use, a payment it did not   | 200 {"received":true,
/// |   make, or one it cannot find (no such invoice)   |   "ignored":true}
/// | an event id already processed (inbox), or one    | 200 {"received":true,
/// |   whose commit the inbox refused (a concurrent    |   "duplicate":true}
/// |   delivery won)                                   |
/// | applied (or refused by the engine by its meaning) | 200 {"received":true}
/// | the subscription did not answer in time, store    | 503 unavailable (the
/// |   unavailable                                     |   gateway retries)
///
/// Atomic inbox: the route does not write the inbox. The subscription's
/// engine puts the (gateway, event id) entry in the unit of work that
/// applies the event (`sub_in::gateway_notice::gateway`), alone when the
/// event changes nothing, so the entry and the effects commit together or
/// not at all; a crash in between cannot let a redelivery apply it twice
/// nor lose it. `inbox_contains` before dispatching is the fast answer for
/// a replay.
///
/// Routing (`route_gateway_event`): charge events by their key
/// "<invoice>/attempt-<n>" → invoice → subscription; refunds Recur made by
/// their key "<saga>/<step>/<name>/…" → saga → subscription; disputes and
/// refunds made at the gateway (no key of ours: Stripe copies no metadata
/// to disputes, a dashboard refund has none) by their charge id → the
/// payment attempt that recorded it → invoice → subscription. An event
/// that names nothing of this tenant (e.g. a dispute whose charge outcome
/// has not been recorded yet) is answered 200 ignored, logged
/// `event=webhook_unroutable` and not put in the inbox, so a redelivery is
/// applied once the payment is known.
///
/// Events are never dropped for looking old: the engine applies them by
/// meaning (a late or duplicate outcome of a charge no longer in flight
/// changes nothing; a refund or dispute id already booked changes nothing).

#include <chrono>
#include <cstdint>
#include <functional>
#include <optional>

#include "actors/subscription_runtime.hpp"
#include "api/metrics.hpp"
#include "api/router.hpp"
#include "domain/clock.hpp"
#include "domain/error.hpp"
#include "domain/payment_gateway.hpp"
#include "sagas/store.hpp"

namespace recur::api {

/// Sends one input to its subscription and calls back once with the reply,
/// after the input's unit of work committed (`orchestrator::submit`).
using command_dispatch = std::function<void(
  subscription_command, std::function<void(command_reply)>)>;

struct webhook_options {
  /// Signature timestamp tolerance, either direction (§8: 300 s).
  std::int64_t tolerance_s = 300;
  /// How long a delivery waits for its subscription's reply before 503.
  std::chrono::milliseconds reply_timeout{30'000};
  /// Optional: counts deliveries in recur_webhooks_total{gateway,outcome}
  /// (outcome: applied, duplicate, ignored, unroutable, invalid_signature,
  /// invalid_event, not_found, unavailable). Registered once per call.
  metrics_registry* metrics = nullptr;
};

/// Registers `POST /v1/webhooks/{gateway}/{tenant_id}` (auth_kind::none: the
/// signature is the authentication; not idempotent by Idempotency-Key: the
/// inbox de-duplicates by event id). `db`, `clk` and whatever `dispatch`
/// captures must outlive the router. `clk` is the server's clock: signatures
/// are checked against real time, also for tenants on a test clock.
void add_webhook_routes(router& r, store& db, const clock& clk,
                        command_dispatch dispatch,
                        webhook_options options = {});

/// The subscription a gateway event is about (route_gateway_event without
/// the invoice): nullopt when the event names nothing this tenant has.
/// Store errors other than `not_found` are returned.
result<std::optional<subscription_id>>
find_event_subscription(store& db, const tenant_id& t, const gateway_event& e);

} // namespace recur::api
