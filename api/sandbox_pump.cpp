#include "api/sandbox_pump.hpp"

#include <condition_variable>
#include <map>
#include <mutex>
#include <thread>
#include <utility>
#include <vector>

#include <spdlog/spdlog.h>

namespace recur::api {

// -- the sandboxes ------------------------------------------------------------

namespace {

constexpr std::string_view sandbox_charge_prefix = "ch_sbx_";

/// A tenant's own sandbox behind the port, its charge ids renamed with the
/// prefix of its slot (see sandbox_pool).
class renamed_sandbox final : public payment_gateway {
public:
  renamed_sandbox(sandbox_gateway& gw, std::string prefix)
    : gw_(gw), prefix_(std::move(prefix)) {}

  result<charge_result> charge(const charge_request& req) override {
    return renamed(gw_.charge(req));
  }
  result<charge_result> retrieve(const std::string& key) override {
    return renamed(gw_.retrieve(key));
  }
  result<refund_result> refund(const refund_request& req) override {
    refund_request inner = req;
    if (req.charge_id.starts_with(prefix_))
      inner.charge_id = std::string{sandbox_charge_prefix}
                        + req.charge_id.substr(prefix_.size());
    return gw_.refund(inner);
  }
  std::string_view name() const override { return "sandbox"; }

private:
  result<charge_result> renamed(result<charge_result> r) const {
    if (r)
      r->charge_id = sandbox_pool::renamed_charge_id(r->charge_id, prefix_);
    return r;
  }

  sandbox_gateway& gw_;
  std::string prefix_;
};

} // namespace

struct sandbox_pool::impl {
  explicit impl(sandbox_pool_config c)
    : config(std::move(c)),
      shared(std::make_unique<sandbox_gateway>(*config.wall, config.seed,
                                               config.sandbox)) {}

  struct own {
    const clock* clk;
    std::string prefix; // "ch_sbx_t<slot>_"
    std::unique_ptr<sandbox_gateway> gateway;
    std::unique_ptr<renamed_sandbox> port;
  };

  sandbox_pool_config config;
  std::unique_ptr<sandbox_gateway> shared;
  mutable std::mutex mutex;
  std::map<std::string, std::size_t, std::less<>> index; // tenant → slot
  std::vector<own> owned;                                // creation order
  bool warned_full = false;
};

sandbox_pool::sandbox_pool(sandbox_pool_config config) {
  RECUR_ASSERT(config.wall != nullptr);
  RECUR_ASSERT(validate(config.sandbox).has_value());
  impl_ = std::make_unique<impl>(std::move(config));
}

sandbox_pool::~sandbox_pool() = default;

sandbox_gateway& sandbox_pool::shared() {
  return *impl_->shared;
}

std::string sandbox_pool::renamed_charge_id(std::string_view charge_id,
                                            std::string_view prefix) {
  if (prefix.empty() || !charge_id.starts_with(sandbox_charge_prefix))
    return std::string{charge_id};
  return std::string{prefix}
         + std::string{charge_id.substr(sandbox_charge_prefix.size())};
}

payment_gateway& sandbox_pool::for_tenant(const tenant_id& t) {
  auto& s = *impl_;
  if (t.empty() || !s.config.clock_for)
    return *s.shared;
  {
    std::lock_guard lock{s.mutex};
    if (auto it = s.index.find(t.value); it != s.index.end())
      return *s.owned[it->second].port;
  }
  // Outside the lock: clock_for may read the store.
  const clock* clk = s.config.clock_for(t);
  if (clk == nullptr)
    return *s.shared;
  std::lock_guard lock{s.mutex};
  if (auto it = s.index.find(t.value); it != s.index.end())
    return *s.owned[it->second].port;
  if (s.owned.size() >= s.config.own_sandboxes_max) {
    if (!s.warned_full)
      spdlog::warn("event=sandbox_pool_full tenants={} detail=\"more tenants "
                   "with a clock of their own share the wall-clock sandbox\"",
                   s.owned.size());
    s.warned_full = true;
    return *s.shared;
  }
  // A seed of its own per tenant, still fixed by the pool's seed.
  const auto seed = s.config.seed ^ std::hash<std::string>{}(t.value);
  const std::size_t slot = s.owned.size() + 1;
  impl::own o{
    clk, std::string{sandbox_charge_prefix} + "t" + std::to_string(slot) + "_",
    std::make_unique<sandbox_gateway>(*clk, seed, s.config.sandbox), nullptr};
  o.port = std::make_unique<renamed_sandbox>(*o.gateway, o.prefix);
  s.owned.push_back(std::move(o));
  s.index.emplace(t.value, s.owned.size() - 1);
  spdlog::info("event=sandbox_created tenant={} clock=own slot={}", t.value,
               slot);
  return *s.owned.back().port;
}

payment_gateway& sandbox_pool::for_charge(std::string_view charge_id) {
  auto& s = *impl_;
  // "ch_sbx_t<slot>_<n>": the slot's sandbox.
  const auto rest = charge_id.substr(
    charge_id.starts_with(sandbox_charge_prefix) ? sandbox_charge_prefix.size()
                                                 : charge_id.size());
  if (!rest.starts_with("t"))
    return *s.shared;
  const auto underscore = rest.find('_');
  std::size_t slot = 0;
  for (std::size_t i = 1; i < underscore && i < rest.size(); ++i) {
    if (rest[i] < '0' || rest[i] > '9' || slot > 1'000'000'000)
      return *s.shared;
    slot = slot * 10 + static_cast<std::size_t>(rest[i] - '0');
  }
  std::lock_guard lock{s.mutex};
  if (underscore == std::string_view::npos || slot == 0
      || slot > s.owned.size())
    return *s.shared;
  return *s.owned[slot - 1].port;
}

void sandbox_pool::for_each(
  const std::function<void(sandbox_gateway&, const clock&, std::string_view)>&
    f) const {
  f(*impl_->shared, *impl_->config.wall, {});
  struct entry {
    sandbox_gateway* gw;
    const clock* clk;
    std::string prefix;
  };
  std::vector<entry> others;
  {
    std::lock_guard lock{impl_->mutex};
    others.reserve(impl_->owned.size());
    for (const auto& o : impl_->owned)
      others.push_back({o.gateway.get(), o.clk, o.prefix});
  }
  for (const auto& e : others)
    f(*e.gw, *e.clk, e.prefix);
}

// -- the pump -----------------------------------------------------------------

status validate(const sandbox_pump_config& c) {
  if (auto st = validate(c.webhooks); !st)
    return st;
  if (c.interval < pump_interval_min || c.interval > pump_interval_max)
    return make_error(errc::invalid_argument,
                      "interval: must be in ["
                        + std::to_string(pump_interval_min.count()) + ", "
                        + std::to_string(pump_interval_max.count()) + "] ms");
  return {};
}

struct sandbox_pump::impl {
  impl(sandbox_pool& p, const clock& w, sandbox_pump_config c,
       std::unique_ptr<sandbox_webhook_sender> s)
    : pool(p), wall(w), config(std::move(c)), sender(std::move(s)) {}

  void rename(gateway_event& e) const {
    if (!config.event_id_prefix.empty())
      e.id = e.id.starts_with("evt_")
               ? "evt_" + config.event_id_prefix + "_" + e.id.substr(4)
               : config.event_id_prefix + "_" + e.id;
    if (config.rewrite)
      config.rewrite(e);
  }

  pump_round round() {
    std::lock_guard one_round{rounds_mutex};
    pump_round r;
    const instant now = wall.now();
    pool.for_each([&](sandbox_gateway& gw, const clock& clk,
                      std::string_view charge_prefix) {
      auto events = gw.poll_events(clk.now());
      if (events.empty())
        return;
      for (auto& e : events) {
        e.charge_id = sandbox_pool::renamed_charge_id(e.charge_id,
                                                      charge_prefix);
        rename(e);
      }
      r.events += events.size();
      if (auto st = sender->enqueue(events, now); !st)
        spdlog::warn("event=sandbox_pump_dropped events={} error=\"{}\"",
                     events.size(), st.error().detail);
    });
    for (const auto& out : sender->deliver_due(now)) {
      ++r.deliveries;
      if (out.http_status >= 200 && out.http_status < 300)
        ++r.accepted;
      else if (out.http_status >= 400 && out.http_status < 500)
        ++r.refused;
      else
        ++r.failed;
    }
    std::lock_guard lock{totals_mutex};
    ++totals.rounds;
    totals.events += r.events;
    totals.deliveries += r.deliveries;
    totals.accepted += r.accepted;
    totals.refused += r.refused;
    totals.failed += r.failed;
    return r;
  }

  void run() {
    std::unique_lock lock{stop_mutex};
    while (!stopping) {
      lock.unlock();
      round();
      lock.lock();
      wake.wait_for(lock, config.interval, [this] { return stopping; });
    }
  }

  sandbox_pool& pool;
  const clock& wall;
  sandbox_pump_config config;
  std::unique_ptr<sandbox_webhook_sender> sender;
  std::mutex rounds_mutex;
  mutable std::mutex totals_mutex;
  pump_totals totals;
  std::mutex stop_mutex;
  std::condition_variable wake;
  bool stopping = false;
  std::thread thread;
};

result<std::unique_ptr<sandbox_pump>>
sandbox_pump::create(sandbox_pool& pool, const clock& wall,
                     sandbox_pump_config config) {
  if (auto st = validate(config); !st)
    return st.error();
  auto sender = sandbox_webhook_sender::create(config.webhooks, wall);
  if (!sender)
    return sender.error();
  return std::unique_ptr<sandbox_pump>{new sandbox_pump{
    std::make_unique<impl>(pool, wall, std::move(config), std::move(*sender))}};
}

sandbox_pump::sandbox_pump(std::unique_ptr<impl> p) : impl_(std::move(p)) {}

sandbox_pump::~sandbox_pump() {
  stop();
}

void sandbox_pump::start() {
  std::lock_guard lock{impl_->stop_mutex};
  if (impl_->thread.joinable() || impl_->stopping)
    return;
  impl_->thread = std::thread{[p = impl_.get()] { p->run(); }};
}

void sandbox_pump::stop() {
  {
    std::lock_guard lock{impl_->stop_mutex};
    impl_->stopping = true;
  }
  impl_->wake.notify_all();
  if (impl_->thread.joinable())
    impl_->thread.join();
}

pump_round sandbox_pump::pump_once() {
  return impl_->round();
}

pump_totals sandbox_pump::totals() const {
  std::lock_guard lock{impl_->totals_mutex};
  return impl_->totals;
}

std::size_t sandbox_pump::queued() const {
  std::lock_guard lock{impl_->rounds_mutex};
  return impl_->sender->queued();
}

} // namespace recur::api
