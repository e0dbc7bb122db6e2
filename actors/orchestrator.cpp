// The orchestrator facade (orchestrator.hpp): one actor system with the
// store writer, the gateway actor, the registry and the timer service.

#include "actors/orchestrator.hpp"

#include <thread>
#include <utility>

#include <caf/all.hpp>
#include <spdlog/spdlog.h>

#include "actors/gateway_actor_impl.hpp"
#include "actors/store_writer_impl.hpp"
#include "actors/subscription_actor_impl.hpp"
#include "actors/timer_service_impl.hpp"

namespace recur {

struct orchestrator::impl {
  orchestrator_config cfg;
  runtime_counters counters;
  runtime_context ctx;
  caf::actor_system_config sys_cfg;
  std::unique_ptr<caf::actor_system> sys;
  caf::actor writer;
  caf::actor gateway;
  caf::actor registry;
  caf::actor timers;

  ~impl() {
    if (!sys)
      return;
    // Timers first (nothing new arrives), then the registry (it stops the
    // subscription actors), then what they call.
    for (auto* h : {&timers, &registry, &gateway, &writer})
      if (*h)
        caf::anon_send_exit(*h, caf::exit_reason::user_shutdown);
    sys.reset(); // waits for every actor
  }
};

namespace {

status validate(const orchestrator_config& c) {
  if (c.db == nullptr)
    return make_error(errc::invalid_argument, "orchestrator: db is required");
  if (c.clk == nullptr)
    return make_error(errc::invalid_argument, "orchestrator: clk is required");
  if (c.gateway == nullptr)
    return make_error(errc::invalid_argument,
                      "orchestrator: gateway is required");
  if (!c.env_for)
    return make_error(errc::invalid_argument,
                      "orchestrator: env_for is required");
  if (c.idle_passivation_ms < 0)
    return make_error(errc::invalid_argument,
                      "orchestrator: idle_passivation_ms must be >= 0");
  if (c.threads > 256)
    return make_error(errc::invalid_argument,
                      "orchestrator: threads must be <= 256");
  return validate(c.gateway_actor);
}

command_reply unavailable(std::string detail) {
  return command_reply{make_error(errc::unavailable, std::move(detail)), {}};
}

} // namespace

orchestrator::orchestrator(std::unique_ptr<impl> p) : impl_{std::move(p)} {}

orchestrator::~orchestrator() = default;

result<std::unique_ptr<orchestrator>>
orchestrator::start(orchestrator_config cfg) {
  if (auto st = validate(cfg); !st)
    return st.error();
  auto p = std::make_unique<impl>();
  p->cfg = std::move(cfg);
  auto& c = p->cfg;
  p->ctx.db = c.db;
  p->ctx.clk = c.clk;
  p->ctx.env_for = c.env_for;
  p->ctx.seed = c.seed;
  p->ctx.idle_passivation_ms = c.idle_passivation_ms;
  p->ctx.counters = &p->counters;
  p->ctx.commit_in_actor = c.commit_in_actor;
  p->ctx.clock_for = c.clock_for;
  const auto threads = c.threads > 0
                         ? c.threads
                         : std::max<std::size_t>(
                             2, std::thread::hardware_concurrency());
  p->sys_cfg.set("scheduler.max-threads", threads);
  p->sys_cfg.set("logger.file-verbosity", caf::atom("quiet"));
  p->sys_cfg.set("logger.console-verbosity", caf::atom("quiet"));
  p->sys = std::make_unique<caf::actor_system>(p->sys_cfg);
  p->writer = spawn_store_writer(*p->sys, *c.db, c.writer);
  p->gateway = spawn_gateway_actor(*p->sys, *c.gateway, *c.clk, c.gateway_actor);
  p->registry = spawn_registry(*p->sys, &p->ctx, p->writer, p->gateway);
  if (c.run_timer_service)
    p->timers = spawn_timer_service(*p->sys, *c.db, *c.clk, p->registry,
                                    c.timers);
  std::unique_ptr<orchestrator> o{new orchestrator{std::move(p)}};
  if (o->impl_->cfg.recover_on_start) {
    auto n = o->recover();
    if (!n)
      return n.error();
  }
  spdlog::info("event=orchestrator_started threads={} timer_service={} "
               "commit_in_actor={}",
               threads, o->impl_->cfg.run_timer_service,
               o->impl_->cfg.commit_in_actor);
  return o;
}

void orchestrator::submit(subscription_command cmd, reply_fn done,
                          std::chrono::milliseconds timeout) {
  // A short-lived actor waits for the answer, so that no caller thread
  // blocks and `done` runs exactly once (answer, error or timeout).
  auto& sys = *impl_->sys;
  auto registry = impl_->registry;
  sys.spawn([registry, cmd = std::move(cmd), done = std::move(done),
             timeout](caf::event_based_actor* self) mutable {
    self->request(registry, timeout, std::move(cmd))
      .then(
        [self, done](command_reply& r) {
          done(std::move(r));
          self->quit();
        },
        [self, done](caf::error& e) {
          done(unavailable("orchestrator: " + to_string(e)));
          self->quit();
        });
  });
}

std::future<command_reply>
orchestrator::call(subscription_command cmd, std::chrono::milliseconds timeout) {
  auto promise = std::make_shared<std::promise<command_reply>>();
  auto fut = promise->get_future();
  submit(
    std::move(cmd),
    [promise](command_reply r) { promise->set_value(std::move(r)); }, timeout);
  return fut;
}

result<std::size_t> orchestrator::fire_due(instant now, std::size_t limit,
                                           std::chrono::milliseconds timeout) {
  auto claimed = impl_->cfg.db->claim_due_timers(
    now, limit, impl_->cfg.timers.lease_s, "orchestrator.fire_due");
  if (!claimed)
    return claimed.error();
  caf::scoped_actor self{*impl_->sys};
  std::size_t answered = 0;
  for (auto& t : *claimed)
    self->request(impl_->registry, timeout, timer_due_atom::value, std::move(t))
      .receive([&](const command_reply&) { ++answered; },
               [&](caf::error& e) {
                 spdlog::warn("event=fire_due_unanswered error={}",
                              to_string(e));
               });
  if (answered != claimed->size())
    return make_error(errc::unavailable,
                      "orchestrator: " + std::to_string(claimed->size() - answered)
                        + " timers were not handled in time");
  return claimed->size();
}

status orchestrator::settle(std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  // Two consecutive zero readings a moment apart: a message between the
  // registry and an actor is counted, so zero means nothing is under way.
  int zeros = 0;
  while (std::chrono::steady_clock::now() < deadline) {
    if (impl_->counters.in_progress.load(std::memory_order_acquire) == 0) {
      if (++zeros == 2)
        return {};
    } else {
      zeros = 0;
    }
    std::this_thread::sleep_for(std::chrono::microseconds{500});
  }
  return make_error(errc::unavailable, "orchestrator: not settled in time");
}

result<std::uint64_t> orchestrator::recover() {
  caf::scoped_actor self{*impl_->sys};
  result<std::uint64_t> out = make_error(errc::unavailable, "no answer");
  self->request(impl_->registry, std::chrono::seconds{60}, recover_atom::value)
    .receive([&](std::uint64_t n) { out = n; },
             [&](caf::error& e) {
               out = make_error(errc::unavailable,
                                "orchestrator: recovery: " + to_string(e));
             });
  return out;
}

const runtime_counters& orchestrator::counters() const noexcept {
  return impl_->counters;
}

registry_stats orchestrator::stats() {
  caf::scoped_actor self{*impl_->sys};
  registry_stats out;
  self->request(impl_->registry, std::chrono::seconds{10}, stats_atom::value)
    .receive([&](registry_stats& s) { out = s; }, [](caf::error&) {});
  return out;
}

} // namespace recur
