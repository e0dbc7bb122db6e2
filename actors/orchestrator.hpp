#pragma once
/// The orchestrator: the whole CAF layer behind one CAF-free object, for the
/// composition root (recurd), the API and the benchmarks.
///
/// It owns an actor system with the store writer, one gateway actor, the
/// registry of subscription actors and (optionally) the durable timer
/// service, all wired to the store, clock and gateway it is given. Everything
/// it is given must outlive it.
///
///   orchestrator_config cfg;  cfg.db = &store; cfg.clk = &clock; ...
///   auto orch = orchestrator::start(std::move(cfg));
///   auto reply = (*orch)->call({tenant, sub, sub_in::pause{}}).get();
///
/// Thread-safe: any thread may submit; callbacks run on a CAF thread and
/// must not block.

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <future>
#include <memory>
#include <string>

#include "actors/gateway_actor.hpp"
#include "actors/store_writer.hpp"
#include "actors/subscription_runtime.hpp"
#include "actors/timer_service.hpp"
#include "domain/clock.hpp"
#include "domain/error.hpp"
#include "domain/payment_gateway.hpp"
#include "sagas/store.hpp"

namespace recur {

struct orchestrator_config {
  store* db = nullptr;                 // required
  clock* clk = nullptr;                // required
  payment_gateway* gateway = nullptr;  // required
  /// The tenant's billing settings (see runtime_context::env_for); required.
  std::function<const billing_env*(const tenant_id&)> env_for;
  std::uint64_t seed = 1;
  std::int64_t idle_passivation_ms = 60'000; // 0: never passivate
  /// A tenant's own clock (test-mode tenants), or nullptr for `clk`.
  std::function<clock*(const tenant_id&)> clock_for;
  /// true: subscription actors commit to the store themselves (stores whose
  /// commits never wait on I/O only; see runtime_context::commit_in_actor).
  bool commit_in_actor = false;
  /// CAF scheduler threads; 0: the hardware's.
  std::size_t threads = 0;
  store_writer_config writer;
  gateway_actor_config gateway_actor;
  /// false: no timer service runs; timers fire only through `fire_due`.
  bool run_timer_service = true;
  timer_service_config timers;
  /// Resume unfinished sagas (re-issue in-flight gateway calls) at start.
  bool recover_on_start = true;
};

class orchestrator {
public:
  /// Validates the config (`invalid_argument` naming the field), starts the
  /// actors and, if asked, runs start-up recovery.
  static result<std::unique_ptr<orchestrator>> start(orchestrator_config cfg);

  /// Stops the timer service, then the registry (and with it every
  /// subscription actor), the gateway actor and the writer; waits for them.
  ~orchestrator();

  orchestrator(const orchestrator&) = delete;
  orchestrator& operator=(const orchestrator&) = delete;

  using reply_fn = std::function<void(command_reply)>;

  /// Sends one input to its subscription's actor (activating it); `done` is
  /// called once with the reply, after the input's unit of work committed
  /// (or with the reason nothing changed). `timeout` bounds the wait; after
  /// it the reply is `unavailable` (the input may still commit later).
  void submit(subscription_command cmd, reply_fn done,
              std::chrono::milliseconds timeout = std::chrono::seconds{30});

  /// `submit` as a future.
  std::future<command_reply>
  call(subscription_command cmd,
       std::chrono::milliseconds timeout = std::chrono::seconds{30});

  /// Claims up to `limit` timers due at `now` and delivers them, as the timer
  /// service would, waiting (up to `timeout`) until each has been handled;
  /// returns how many were delivered. For test clocks and tests.
  result<std::size_t>
  fire_due(instant now, std::size_t limit = 10'000,
           std::chrono::milliseconds timeout = std::chrono::seconds{30});

  /// Blocks until no subscription actor has an input, commit or gateway call
  /// in progress (nothing left to settle), or the timeout passes (then
  /// `unavailable`). For test clocks and tests.
  status settle(std::chrono::milliseconds timeout = std::chrono::seconds{30});

  /// Activates every subscription with an unfinished saga; returns how many.
  result<std::uint64_t> recover();

  const runtime_counters& counters() const noexcept;
  registry_stats stats();

private:
  struct impl;
  explicit orchestrator(std::unique_ptr<impl> p);
  std::unique_ptr<impl> impl_;
};

} // namespace recur
