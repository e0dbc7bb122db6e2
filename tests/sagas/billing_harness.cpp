#include "billing_harness.hpp"

#include <algorithm>

#include <nlohmann/json.hpp>

#include "workflows/invoice_state.hpp"

namespace recur::testing {

namespace {

sandbox_config quiet_sandbox() {
  sandbox_config c;
  return c;
}

} // namespace

billing_harness::billing_harness(store& st, instant start, std::uint64_t seed,
                                 tenant_id tenant)
  : st_(st),
    clk_(start),
    gen_(seed),
    gw_(std::make_unique<sandbox_gateway>(clk_, seed, quiet_sandbox())),
    tenant_(std::move(tenant)) {
  env_.plans = &catalog_;
  (void)st_.create_tenant(tenant_record{tenant_, "harness tenant",
                                        "hash-" + tenant_.value, true, start});
}

void billing_harness::add_flat_plan(const std::string& plan,
                                    std::int32_t version,
                                    std::int64_t amount_minor,
                                    std::int32_t trial_days, interval_unit unit,
                                    const char* currency) {
  plan_version v{version,
                 instant{0},
                 currency::of(currency),
                 billing_interval{unit, 1},
                 trial_days,
                 pricing::flat(amount_minor),
                 {}};
  if (version > 1)
    v.effective_at = clk_.now();
  auto st = catalog_.add(plan_id{plan}, v);
  RECUR_ASSERT(st.has_value());
}

// -- activation and recovery --------------------------------------------------

result<subscription_aggregate*>
billing_harness::activate(const subscription_id& sub) {
  if (auto it = live_.find(sub); it != live_.end())
    return &it->second;
  auto agg = load_subscription(st_, tenant_, sub);
  if (!agg)
    return agg.error();
  return &(live_[sub] = std::move(*agg));
}

status billing_harness::recover() {
  live_.clear();
  // Webhooks not yet acknowledged are delivered again by the gateway (the
  // inbox makes that harmless); everything else queued is lost.
  std::deque<pending_input> redelivered;
  for (auto& p : queue_)
    if (std::holds_alternative<sub_in::gateway_notice>(p.in))
      redelivered.push_back(std::move(p));
  queue_ = std::move(redelivered);
  std::string cursor;
  std::set<subscription_id> subs;
  do {
    auto pg = st_.find_unfinished_sagas(cursor, 500);
    if (!pg)
      return pg.error();
    for (const auto& ts : pg->items)
      if (ts.tenant == tenant_)
        subs.insert(ts.saga.subscription);
    cursor = pg->next_cursor;
  } while (!cursor.empty());
  for (const auto& sub : subs) {
    auto a = activate(sub);
    if (!a)
      return a.error();
    for (const auto& call : resume_calls(**a, env_))
      execute(sub, call);
  }
  return process_queue();
}

status billing_harness::crash_and_recover() {
  crashed_ = true;
  return recover();
}

// -- driving ------------------------------------------------------------------

void billing_harness::execute(const subscription_id& sub,
                              const gateway_call_request& call) {
  sub_in::gateway_done done;
  done.saga = call.saga;
  done.step = call.step;
  done.action_key = call.action_key;
  using op = gateway_call_request::op;
  if (call.kind == op::refund) {
    keys_.insert(call.refund->idempotency_key);
    auto r = gw_->refund(*call.refund);
    if (r)
      done.refund = *r;
    else
      done.failure = r.error();
  } else {
    const auto& req = *call.charge;
    keys_.insert(req.idempotency_key);
    key_owner_[req.idempotency_key] = sub;
    result<charge_result> r = make_error(errc::not_found, "");
    if (call.kind == op::resolve) {
      r = gw_->retrieve(req.idempotency_key);
      if (!r && r.error().code == errc::not_found)
        r = gw_->charge(req); // never processed: charging under it is safe
    } else {
      r = gw_->charge(req);
    }
    if (r)
      done.charge = *r;
    else
      done.failure = r.error();
  }
  queue_.push_back({sub, std::move(done)});
}

status billing_harness::process_one(const pending_input& p, bool first,
                                    status* first_result) {
  auto a = activate(p.sub);
  if (!a)
    return a.error();
  auto d = handle(**a, tenant_, p.sub, p.in, env_, clk_.now(), gen_);
  if (!d) {
    if (first) {
      *first_result = d.error();
      return {};
    }
    return d.error();
  }
  if (!d->work.empty()) {
    auto c = st_.commit(d->work);
    if (!c) {
      // The aggregate may be stale (e.g. a conflict): drop it and re-read.
      live_.erase(p.sub);
      if (first) {
        *first_result = c.error();
        return {};
      }
      return c.error();
    }
    ++commits_;
  }
  known_.insert(p.sub);
  **a = std::move(d->next);
  if (crash_at_ > 0 && commits_ == crash_at_ && !d->work.empty()) {
    crash_at_ = 0;
    return crash_and_recover();
  }
  for (const auto& call : d->calls)
    execute(p.sub, call);
  return {};
}

status billing_harness::process_queue() {
  while (!queue_.empty()) {
    auto p = std::move(queue_.front());
    queue_.pop_front();
    status ignored;
    if (auto st = process_one(p, false, &ignored); !st)
      return st;
  }
  return {};
}

status billing_harness::send(const subscription_id& sub,
                             const subscription_input& in) {
  if (auto st = process_queue(); !st)
    return st;
  status result;
  if (auto st = process_one({sub, in}, true, &result); !st)
    return st;
  if (auto st = process_queue(); !st)
    return st;
  return result;
}

status billing_harness::deliver_event(const gateway_event& e) {
  // Routed as the webhook endpoint routes it, recorded in the inbox with
  // its effects.
  auto route = route_gateway_event(st_, tenant_, e);
  if (!route)
    return route.error();
  sub_in::gateway_notice n{e, "sandbox", {}, std::nullopt};
  subscription_id target;
  if (*route) {
    target = (*route)->subscription;
    n.invoice = (*route)->invoice;
  } else if (auto it = key_owner_.find(e.idempotency_key);
             it != key_owner_.end()) {
    target = it->second;
  } else {
    return {}; // names nothing of this tenant
  }
  if (e.type == "charge.refunded")
    for (const auto& r : gw_->refunds())
      if (r.idempotency_key == e.idempotency_key)
        n.ref_id = r.refund_id;
  queue_.push_back({target, std::move(n)});
  return {};
}

std::optional<instant> billing_harness::next_due() {
  std::optional<instant> best;
  auto consider = [&](const std::string& owner) {
    auto ts = st_.list_timers(tenant_, owner);
    if (!ts)
      return;
    for (const auto& t : *ts)
      if (!best || t.due_at < *best)
        best = t.due_at;
  };
  for (const auto& sub : known_) {
    consider(sub.value);
    auto a = activate(sub);
    if (!a)
      continue;
    for (const auto& [id, s] : (*a)->sagas)
      consider(id);
  }
  return best;
}

status billing_harness::deliver_due(instant now) {
  for (const auto& e : gw_->poll_events(now))
    if (auto st = deliver_event(e); !st)
      return st;
  if (auto st = process_queue(); !st)
    return st;
  for (;;) {
    auto claimed = st_.claim_due_timers(now, 1000, 60, "harness");
    if (!claimed)
      return claimed.error();
    if (claimed->empty())
      return {};
    for (const auto& c : *claimed) {
      auto p = nlohmann::json::parse(c.timer.payload_json, nullptr, false);
      if (!p.is_object() || !p.contains("subscription"))
        continue;
      queue_.push_back({subscription_id{p["subscription"].get<std::string>()},
                        sub_in::timer_due{c.timer}});
    }
    if (auto st = process_queue(); !st)
      return st;
  }
}

status billing_harness::advance_to(instant to) {
  if (auto st = process_queue(); !st)
    return st;
  for (;;) {
    auto next = next_due();
    // Async payments settle on the gateway's own schedule: look hourly
    // while any saga waits for a webhook.
    bool webhook_wait = false;
    for (auto& [sub, a] : live_)
      for (auto& [id, s] : a.sagas)
        if (s.timer && s.timer->wait_kind == "webhook")
          webhook_wait = true;
    instant step = to;
    if (next && *next < step)
      step = *next;
    if (webhook_wait && clk_.now().plus_seconds(seconds_per_hour) < step)
      step = clk_.now().plus_seconds(seconds_per_hour);
    if (clk_.now() < step)
      clk_.set(step);
    if (auto st = deliver_due(clk_.now()); !st)
      return st;
    if (!(clk_.now() < to)) {
      auto again = next_due();
      if (!again || to < *again)
        return {};
    }
  }
}

// -- observing ----------------------------------------------------------------

result<subscription_aggregate>
billing_harness::aggregate(const subscription_id& sub) {
  auto a = activate(sub);
  if (!a)
    return a.error();
  return **a;
}

namespace {

std::vector<invoice_record> all_invoices(store& db, const tenant_id& t,
                                         const subscription_id& sub) {
  std::vector<invoice_record> out;
  std::string cursor;
  do {
    auto pg = db.list_invoices(t, sub, cursor, 200);
    if (!pg)
      break;
    out.insert(out.end(), pg->items.begin(), pg->items.end());
    cursor = pg->next_cursor;
  } while (!cursor.empty());
  return out;
}

std::vector<saga_record> all_sagas(store& db, const tenant_id& t) {
  std::vector<saga_record> out;
  std::string cursor;
  do {
    auto pg = db.list_sagas(t, saga_filter{}, cursor, 200);
    if (!pg)
      break;
    out.insert(out.end(), pg->items.begin(), pg->items.end());
    cursor = pg->next_cursor;
  } while (!cursor.empty());
  return out;
}

std::int64_t cash_balance(store& db, const tenant_id& t, const char* cur) {
  auto b = db.ledger_balances(t);
  if (!b)
    return 0;
  for (const auto& x : *b)
    if (x.account_name == account::cash && x.currency == cur)
      return x.balance_minor;
  return 0;
}

/// "No invoice collected twice" over a set of charge keys
/// (<invoice>/attempt-<n>).
void check_keys(const sandbox_gateway& gw, const std::set<std::string>& keys,
                std::vector<std::string>& breaches) {
  std::map<std::string, int> collected;
  for (const auto& key : keys) {
    if (gw.times_collected(key) > 1)
      breaches.push_back("key collected twice: " + key);
    auto at = key.rfind("/attempt-");
    if (at != std::string::npos && gw.times_collected(key) == 1)
      if (++collected[key.substr(0, at)] > 1)
        breaches.push_back("invoice collected twice: " + key.substr(0, at));
  }
}

} // namespace

std::vector<invoice_record>
billing_harness::invoices(const subscription_id& sub) {
  auto out = all_invoices(st_, tenant_, sub);
  std::sort(out.begin(), out.end(), [](const auto& a, const auto& b) {
    return std::tie(a.period_start.unix_s, a.id.value)
           < std::tie(b.period_start.unix_s, b.id.value);
  });
  return out;
}

std::vector<saga_record> billing_harness::sagas() {
  return all_sagas(st_, tenant_);
}

std::int64_t billing_harness::balance(account a, const char* cur) {
  auto b = st_.ledger_balances(tenant_);
  if (!b)
    return 0;
  for (const auto& x : *b)
    if (x.account_name == a && x.currency == cur)
      return x.balance_minor;
  return 0;
}

std::vector<std::string> billing_harness::gateway_keys() const {
  return {keys_.begin(), keys_.end()};
}

// -- invariants ---------------------------------------------------------------


std::vector<std::string> check_invariants(billing_harness& h) {
  auto breaches = check_invariants(h.db(), h.tenant(), h.gateway());
  auto keys = h.gateway_keys();
  check_keys(h.gateway(), {keys.begin(), keys.end()}, breaches);
  return breaches;
}

std::vector<std::string> check_invariants(store& db, const tenant_id& tenant,
                                          const sandbox_gateway& gw) {
  std::vector<std::string> breaches;
  auto subs = db.list_subscriptions(tenant, std::nullopt, std::nullopt, "",
                                    10'000);
  if (!subs)
    return {"subscriptions unreadable"};
  // Charge keys from the stored payment attempts.
  std::set<std::string> keys;
  for (const auto& row : subs->items)
    for (const auto& inv : all_invoices(db, tenant, row.id))
      if (auto attempts = db.list_attempts(tenant, inv.id))
        for (const auto& a : *attempts)
          keys.insert(a.idempotency_key);
  check_keys(gw, keys, breaches);
  // Every ledger transaction balances: so do the totals per currency.
  auto bal = db.ledger_balances(tenant);
  if (!bal) {
    breaches.push_back("ledger unreadable");
  } else {
    std::map<std::string, std::int64_t> per_currency;
    for (const auto& b : *bal)
      per_currency[b.currency] += b.balance_minor;
    for (const auto& [c, sum] : per_currency)
      if (sum != 0)
        breaches.push_back("ledger does not balance in " + c);
  }
  // Cash in the ledger is what the gateway collected minus refunds, minus
  // what disputes hold back.
  auto usd = currency::of("USD");
  auto cash = cash_balance(db, tenant, "USD");
  if (bal)
    for (const auto& b : *bal)
      if (b.account_name == account::disputes && b.currency == "USD")
        cash += b.balance_minor;
  auto net_collected = gw.total_collected(usd).amount_minor()
                       - gw.total_refunded(usd).amount_minor();
  if (cash != net_collected)
    breaches.push_back("cash " + std::to_string(cash) + " != collected "
                       + std::to_string(net_collected));
  // Sagas end completed or compensated, or wait on a durable timer.
  std::set<std::string> live_sagas;
  for (const auto& s : all_sagas(db, tenant)) {
    if (s.status == saga_status::failed)
      breaches.push_back("saga failed: " + s.id.value);
    if (is_finished(s.status))
      continue;
    live_sagas.insert(s.id.value);
    auto timers = db.list_timers(tenant, s.id.value);
    if (s.status != saga_status::waiting || !timers || timers->empty())
      breaches.push_back("saga " + s.id.value + " is "
                         + std::string{to_string(s.status)}
                         + " without a pending timer");
  }
  // Every invoice is terminal, or owned by a live saga / the incomplete
  // expiry; and the subscription's state agrees with its invoices.
  for (const auto& row : subs->items) {
    auto agg = load_subscription(db, tenant, row.id);
    if (!agg || !agg->exists()) {
      breaches.push_back("unreadable subscription " + row.id.value);
      continue;
    }
    const auto* st = &agg->sub;
    if (row.status != to_string(st->life.status))
      breaches.push_back("read model disagrees for " + row.id.value);
    int open = 0;
    int uncollectible = 0;
    for (const auto& inv : all_invoices(db, tenant, row.id)) {
      if (inv.status == "uncollectible")
        ++uncollectible;
      if (inv.status != "open")
        continue;
      ++open;
      bool owned = false;
      for (const auto& [id, type] : st->sagas)
        if (live_sagas.contains(id))
          owned = true;
      if (st->life.status == sub_status::incomplete) {
        auto timers = db.list_timers(tenant, row.id.value);
        owned = owned || (timers && !timers->empty());
      }
      if (!owned)
        breaches.push_back("open invoice " + inv.id.value
                           + " owned by no live saga");
    }
    auto status = st->life.status;
    if ((status == sub_status::past_due || status == sub_status::suspended)
        && open == 0)
      breaches.push_back(row.id.value + " is " + row.status
                         + " with nothing open");
    if (status == sub_status::canceled
        && st->life.cancel == cancel_reason::nonpayment && uncollectible == 0)
      breaches.push_back(row.id.value + " canceled for nonpayment without a "
                                        "written-off invoice");
    if (status == sub_status::suspended && st->entitled)
      breaches.push_back(row.id.value + " suspended but entitled");
    if (status == sub_status::active && !st->entitled)
      breaches.push_back(row.id.value + " active but not entitled");
  }
  return breaches;
}

} // namespace recur::testing
