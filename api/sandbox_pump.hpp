#pragma once
/// Settlement of the sandbox gateway's asynchronous payments: the sandboxes
/// of a process (one shared by live tenants, one per test-mode tenant on that
/// tenant's test clock) and a thread that polls their events and delivers
/// them as signed webhooks (gateways/sandbox_webhooks.hpp). recurd pumps to
/// its own /v1/webhooks/sandbox/{tenant}; recur-gateway-sim to the URL it
/// was given.

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "domain/clock.hpp"
#include "domain/error.hpp"
#include "domain/payment_gateway.hpp"
#include "gateways/sandbox_gateway.hpp"
#include "gateways/sandbox_webhooks.hpp"

namespace recur::api {

// -- the sandboxes ------------------------------------------------------------

struct sandbox_pool_config {
  const clock* wall = nullptr; // required: the shared sandbox's clock
  /// Tenant `t`'s own clock (a test clock), or nullptr for the wall clock.
  /// Null function: every tenant shares the wall-clock sandbox.
  std::function<const clock*(const tenant_id&)> clock_for;
  std::uint64_t seed = 1;
  sandbox_config sandbox;
  /// Tenants with a sandbox of their own; more share the wall-clock one
  /// (logged), since a sandbox is never dropped (it holds their charges).
  std::size_t own_sandboxes_max = 10'000;
};

/// The sandboxes of one process. A tenant with a clock of its own (a
/// test-mode tenant) gets its own sandbox on that clock, so that its
/// pending charges settle when its test clock passes their settle time;
/// everyone else shares one sandbox on the wall clock. Sandboxes live as
/// long as the pool (references stay valid).
///
/// Every sandbox numbers its charges from "ch_sbx_1", so the charge ids of
/// an own sandbox are renamed "ch_sbx_t<slot>_<n>" (answers and events
/// alike): ids stay unique in the process, and `for_charge` finds the
/// sandbox of a charge from its id alone (a refund names no tenant).
/// Thread-safe.
class sandbox_pool {
public:
  /// Asserts a wall clock and a valid sandbox config.
  explicit sandbox_pool(sandbox_pool_config config);
  ~sandbox_pool();

  sandbox_pool(const sandbox_pool&) = delete;
  sandbox_pool& operator=(const sandbox_pool&) = delete;

  /// The sandbox of tenant `t` (the shared one for an empty id).
  payment_gateway& for_tenant(const tenant_id& t);

  /// The sandbox that made charge `charge_id` (by its id; the shared one
  /// for ids it does not know).
  payment_gateway& for_charge(std::string_view charge_id);

  /// The wall-clock sandbox live tenants share.
  sandbox_gateway& shared();

  /// Calls `f` with every sandbox, the clock it settles by and the prefix
  /// its charge ids are renamed to ("" for the shared one: unchanged), the
  /// shared one first, then the others in the order they were created.
  void for_each(const std::function<void(sandbox_gateway&, const clock&,
                                         std::string_view)>& f) const;

  /// "ch_sbx_<n>" → `prefix` + "<n>" (others unchanged; "" keeps it).
  static std::string renamed_charge_id(std::string_view charge_id,
                                       std::string_view prefix);

private:
  struct impl;
  std::unique_ptr<impl> impl_;
};

// -- the pump -----------------------------------------------------------------

struct sandbox_pump_config {
  /// Delivery: url (with "{tenant}"), secret or secret_for, seed, fault
  /// rates, delays (sandbox_webhooks.hpp).
  sandbox_webhook_config webhooks;
  /// Time between two rounds of the thread.
  std::chrono::milliseconds interval{200};
  /// Makes event ids unique across runs of the process: "evt_sbx_7" becomes
  /// "evt_" + prefix + "_sbx_7" (a sandbox numbers its events from 1 again
  /// after a restart, and the endpoint would drop those as replays). Empty:
  /// ids unchanged.
  std::string event_id_prefix;
  /// Applied to each event after the prefix (recur-gateway-sim renames
  /// charge ids to PaymentIntent ids). Optional.
  std::function<void(gateway_event&)> rewrite;
  /// Events polled per sandbox and round at most are all of them; the
  /// sender's queued_max bounds what waits.
};

inline constexpr std::chrono::milliseconds pump_interval_min{10};
inline constexpr std::chrono::milliseconds pump_interval_max{60'000};

/// `invalid_argument` naming the field (the webhooks' own, or the
/// interval out of [pump_interval_min, pump_interval_max]).
status validate(const sandbox_pump_config& c);

/// What one round did.
struct pump_round {
  std::size_t events = 0;     // polled from the sandboxes
  std::size_t deliveries = 0; // HTTP requests made
  std::size_t accepted = 0;   // answered 2xx
  std::size_t refused = 0;    // answered 4xx (forgeries are meant to be)
  std::size_t failed = 0;     // 5xx or no answer (dropped, not retried)
};

/// Running totals of every round.
struct pump_totals {
  std::uint64_t rounds = 0;
  std::uint64_t events = 0;
  std::uint64_t deliveries = 0;
  std::uint64_t accepted = 0;
  std::uint64_t refused = 0;
  std::uint64_t failed = 0;
};

/// Polls every sandbox of a pool by its own clock, plans the events as
/// webhooks (seeded faults) and delivers what is due by the wall clock,
/// which also signs them (the endpoint verifies against real time, whatever
/// the tenant's clock). `start` runs rounds on a thread every `interval`;
/// `pump_once` runs one on the caller's thread (tests). Rounds never
/// overlap.
class sandbox_pump {
public:
  /// Checks the config. `pool` and `wall` must outlive the pump.
  static result<std::unique_ptr<sandbox_pump>>
  create(sandbox_pool& pool, const clock& wall, sandbox_pump_config config);

  /// Stops the thread if it runs.
  ~sandbox_pump();

  sandbox_pump(const sandbox_pump&) = delete;
  sandbox_pump& operator=(const sandbox_pump&) = delete;

  /// Starts the thread (once; later calls do nothing).
  void start();

  /// Stops and joins the thread after the round under way. Idempotent.
  void stop();

  pump_round pump_once();

  pump_totals totals() const;

  /// Deliveries planned and not yet due.
  std::size_t queued() const;

  struct impl;

private:
  explicit sandbox_pump(std::unique_ptr<impl> p);
  std::unique_ptr<impl> impl_;
};

} // namespace recur::api
