// The subscription engine (see subscription.hpp): lifecycle transitions, the
// hosted sagas' local actions, and the unit of work one input produces.

#include <algorithm>
#include <charconv>
#include <memory>
#include <set>
#include <utility>

#include <nlohmann/json.hpp>

#include "domain/proration.hpp"
#include "sagas/json_writer.hpp"
#include "sagas/subscription.hpp"
#include "workflows/invoice_state.hpp"
#include "workflows/payment_attempt.hpp"

namespace recur {

namespace {

using nlohmann::json;
using std::int32_t;
using std::int64_t;
using std::string;

// -- saga definitions ---------------------------------------------------------

/// Shared, immutable: the fixed definitions are built once, and a feed takes
/// a reference count instead of copying every step's names.
using def_ptr = std::shared_ptr<const saga_definition>;

def_ptr shared(saga_definition d) {
  return std::make_shared<const saga_definition>(std::move(d));
}

const def_ptr& invoice_def() {
  static const def_ptr d = shared(saga_definition{"invoice",
                                 {{"issue_invoice", "void_invoice"},
                                  {"post_receivable", "reverse_receivable"},
                                  {"charge", "refund_charge"},
                                  {"settle", ""}},
                                 default_retry_policy()});
  return d;
}

const def_ptr& payment_def() {
  static const def_ptr d = shared(saga_definition{
    "payment", {{"charge", "refund_charge"}, {"settle", ""}},
    default_retry_policy()});
  return d;
}

const def_ptr& suspension_def() {
  static const def_ptr d = shared(saga_definition{"suspension",
                                 {{"revoke_entitlements", "restore_entitlements"},
                                  {"notify_suspended", ""},
                                  {"await_reinstatement", ""}},
                                 default_retry_policy()});
  return d;
}

const def_ptr& plan_change_def() {
  static const def_ptr d = shared(saga_definition{"plan_change",
                                 {{"issue_proration", "void_proration"},
                                  {"charge", "refund_charge"},
                                  {"settle", ""},
                                  {"switch_plan", "revert_plan"}},
                                 default_retry_policy()});
  return d;
}

const def_ptr& cancellation_def() {
  static const def_ptr d = shared(saga_definition{"cancellation",
                                 {{"credit_unused", ""},
                                  {"refund_credit", ""},
                                  {"close_open_invoices", ""},
                                  {"revoke_entitlements", ""}},
                                 default_retry_policy()});
  return d;
}

/// Dunning steps are derived from the tenant's ladder when dunning starts and
/// kept in the saga's data ("steps"), so a ladder edited later does not
/// reshape a running saga: "await@3;retry_payment@3;notify_in_app@3;…".
string dunning_steps(const dunning_ladder& ladder) {
  string out;
  auto add = [&out](std::string_view name, int32_t day) {
    if (!out.empty())
      out += ';';
    out += string{name} + "@" + std::to_string(day);
  };
  for (const auto& st : ladder.steps) {
    if (st.day_offset > 0)
      add("await", st.day_offset);
    for (auto a : st.actions)
      add(to_string(a), st.day_offset);
  }
  return out;
}

def_ptr dunning_def(const string& steps) {
  saga_definition d{"dunning", {}, default_retry_policy()};
  std::size_t pos = 0;
  while (pos < steps.size()) {
    auto end = steps.find(';', pos);
    if (end == string::npos)
      end = steps.size();
    auto name = steps.substr(pos, end - pos);
    d.steps.push_back(
      {name, name.starts_with("suspend@") ? "lift_suspension" : ""});
    pos = end + 1;
  }
  return shared(std::move(d));
}

/// "retry_payment@7" -> ("retry_payment", 7).
std::pair<string, int32_t> split_at(const string& name) {
  auto at = name.find('@');
  if (at == string::npos)
    return {name, 0};
  int32_t day = 0;
  std::from_chars(name.data() + at + 1, name.data() + name.size(), day);
  return {name.substr(0, at), day};
}

result<def_ptr> definition_by(const string& type,
                              const std::map<string, string>& data) {
  if (type == "invoice")
    return invoice_def();
  if (type == "payment")
    return payment_def();
  if (type == "suspension")
    return suspension_def();
  if (type == "plan_change")
    return plan_change_def();
  if (type == "cancellation")
    return cancellation_def();
  if (type == "dunning") {
    auto it = data.find("steps");
    if (it == data.end())
      return make_error(errc::invalid_argument, "dunning saga without steps");
    return dunning_def(it->second);
  }
  return make_error(errc::invalid_argument, "unknown saga type " + type);
}

result<def_ptr> definition_of(const saga_state& s) {
  return definition_by(s.type, s.data);
}

string data_or(const saga_state& s, const string& k, string fallback = {}) {
  auto it = s.data.find(k);
  return it == s.data.end() ? fallback : it->second;
}

int64_t to_i64(const string& s) {
  int64_t v = 0;
  std::from_chars(s.data(), s.data() + s.size(), v);
  return v;
}

/// The executor's key of the action the saga has in flight, if any.
std::optional<saga_cmd::execute_action> in_flight_action(const saga_state& s) {
  if (s.version == 0 || is_finished(s.status))
    return std::nullopt;
  auto def = definition_of(s);
  if (!def)
    return std::nullopt;
  for (auto& c : resume(**def, s))
    if (auto* a = std::get_if<saga_cmd::execute_action>(&c))
      return *a;
  if (s.status == saga_status::waiting && s.timer && s.timer->kind == "timeout") {
    auto attempt = s.attempts.at(s.step);
    const auto& name = (*def)->steps.at(s.step).action;
    return saga_cmd::execute_action{s.step, name, attempt,
                                    action_key(s.id, s.step, name, attempt)};
  }
  return std::nullopt;
}

/// The call for saga `s`'s current charge: key, payment method and amount
/// were fixed in its data when the attempt was first issued, so a re-issue
/// (resolve, or after recovery) asks for exactly the same charge.
gateway_call_request charge_call(const subscription_state& sub,
                                 const saga_state& s, int32_t step,
                                 const string& action_key,
                                 gateway_call_request::op kind) {
  gateway_call_request call;
  call.kind = kind;
  call.saga = s.id.value;
  call.step = step;
  call.action_key = action_key;
  call.charge = charge_request{
    data_or(s, "charge_key"),
    sub.tenant,
    sub.customer,
    data_or(s, "charge_pm"),
    money{to_i64(data_or(s, "charge_amount")), currency::of(sub.currency)},
    "invoice " + data_or(s, s.type == "dunning" ? "charging" : "invoice")};
  return call;
}

/// A refund under the executor's key of the action or compensation.
gateway_call_request refund_call(const subscription_state& sub,
                                 const saga_state& s, int32_t step,
                                 const string& key, string charge_id,
                                 int64_t amount_minor) {
  gateway_call_request call;
  call.kind = gateway_call_request::op::refund;
  call.saga = s.id.value;
  call.step = step;
  call.action_key = key;
  call.refund = refund_request{key, std::move(charge_id),
                               money{amount_minor, currency::of(sub.currency)}};
  return call;
}

// -- one run of the engine ----------------------------------------------------

/// A local action's outcome, fed back into the executor; nullopt when an
/// external call was issued (its outcome comes later).
using local_outcome = std::optional<saga_input>;

struct run {
  const billing_env& env;
  instant now;
  rng& gen;
  subscription_aggregate agg;
  const subscription_aggregate& before;
  unit_of_work w;
  std::vector<gateway_call_request> calls;
  std::vector<string> touched;
  std::set<string> new_sagas;
  std::map<string, saga_state> finished;
  std::vector<std::pair<string, json>> events; // type, detail
  int32_t outbox_n = 0;

  subscription_state& sub() { return agg.sub; }
  /// The subscription's currency, looked up again only when its code
  /// changed (currency::of searches the ISO table).
  currency cur() const {
    if (!cur_ || cur_->code() != agg.sub.currency)
      cur_ = currency::of(agg.sub.currency);
    return *cur_;
  }
  mutable std::optional<currency> cur_;
  money m(int64_t minor) const { return money{minor, cur()}; }

  // -- bookkeeping --------------------------------------------------------

  void event(string type, json detail = json::object()) {
    events.emplace_back(std::move(type), std::move(detail));
  }

  void outbox(string id, string type, json data) {
    data["subscription"] = agg.sub.id.value;
    outbox_text(std::move(id), std::move(type), data.dump());
  }

  /// `outbox` for data already written (with its "subscription" member):
  /// the hot paths write it with json_writer, keys in sorted order.
  void outbox_text(string id, string type, string data_json) {
    // Event ids are unique across tenants: subscription ids are per tenant.
    w.outbox.push_back(outbox_message{agg.sub.tenant.value + "/" + id,
                                      agg.sub.id.value,
                                      std::move(type), agg.sub.id.value,
                                      std::move(data_json), now});
  }

  open_invoice* find_open(const string& inv) {
    for (auto& o : agg.sub.open_invoices)
      if (o.id.value == inv)
        return &o;
    return nullptr;
  }

  void drop_open(const string& inv) {
    std::erase_if(agg.sub.open_invoices,
                  [&](const open_invoice& o) { return o.id.value == inv; });
  }

  saga_state* saga(const string& id) {
    auto it = agg.sagas.find(id);
    return it == agg.sagas.end() ? nullptr : &it->second;
  }

  /// The oldest live saga of `type`.
  saga_state* live(const string& type) {
    saga_state* best = nullptr;
    for (const auto& [id, t] : agg.sub.sagas)
      if (t == type)
        if (auto* s = saga(id);
            s != nullptr && (best == nullptr || s->created_at < best->created_at))
          best = s;
    return best;
  }

  void invoice_status(open_invoice& o, invoice_status st, int64_t paid) {
    w.invoice_updates.push_back(invoice_update{
      o.id, o.version, string{to_string(st)}, paid, now});
    ++o.version;
  }

  status ledger(string tx_id, result<ledger_transaction> tx, string subject) {
    if (!tx) {
      // Nothing to post (every leg zero) is not a failure.
      if (tx.error().code == errc::invalid_argument)
        return {};
      return tx.error();
    }
    w.ledger.push_back(
      ledger_append{std::move(tx_id), std::move(*tx), now, std::move(subject)});
    return {};
  }

  // -- sagas --------------------------------------------------------------

  status start_saga(const string& type, std::map<string, string> data) {
    auto id = agg.sub.id.value + "/" + type + "/"
              + std::to_string(++agg.sub.saga_seq);
    auto def = definition_by(type, data);
    if (!def)
      return def.error();
    auto s = new_saga(**def, saga_id{id}, agg.sub.id, now);
    s.data = std::move(data);
    agg.sagas[id] = std::move(s);
    agg.sub.sagas[id] = type;
    new_sagas.insert(id);
    return feed(id, saga_in::start{});
  }

  status feed(const string id, const saga_input& in) { // by value: callers pass ids that live in the saga erased on finish
    auto* s = saga(id);
    if (s == nullptr)
      return make_error(errc::not_found, "no live saga " + id);
    auto def = definition_of(*s);
    if (!def)
      return def.error();
    auto prev_timer = s->timer;
    // Moved in: on an error the whole input fails and this copy of the
    // aggregate is dropped.
    auto d = step(**def, std::move(*s), in, saga_context{now, gen});
    if (!d)
      return d.error();
    *s = std::move(d->state);
    if (std::find(touched.begin(), touched.end(), id) == touched.end())
      touched.push_back(id);
    for (auto& rec : d->log)
      w.saga_steps.push_back(std::move(rec));
    for (const auto& c : d->commands) {
      if (auto* a = std::get_if<saga_cmd::execute_action>(&c)) {
        auto out = act(id, *a);
        if (!out)
          return out.error();
        if (*out) {
          if (auto st = feed(id, **out); !st)
            return st;
        }
      } else if (auto* k = std::get_if<saga_cmd::execute_compensation>(&c)) {
        auto out = compensate(id, *k);
        if (!out)
          return out.error();
        if (*out) {
          if (auto st = feed(id, **out); !st)
            return st;
        }
      } else if (auto* t = std::get_if<saga_cmd::arm_timer>(&c)) {
        auto rec = t->timer;
        json p = json::parse(rec.payload_json, nullptr, false);
        if (!p.is_object())
          p = json::object();
        p["subscription"] = agg.sub.id.value;
        p["saga"] = id;
        rec.payload_json = p.dump();
        w.timers_to_schedule.push_back(std::move(rec));
      } else if (std::holds_alternative<saga_cmd::cancel_timers>(c)) {
        // Complete the one timer the saga had armed (by id: a cancel by
        // owner would also hit a timer armed later in this unit of work).
        if (prev_timer)
          w.timers_to_complete.push_back(prev_timer->id);
        prev_timer.reset();
      } else if (std::holds_alternative<saga_cmd::saga_finished>(c)) {
        auto* done = saga(id);
        if (done != nullptr) {
          for (auto& o : agg.sub.open_invoices)
            if (o.collecting_saga == id)
              o.collecting_saga.clear();
          finished[id] = std::move(*done); // erased at once
          agg.sagas.erase(id);
          agg.sub.sagas.erase(id);
        }
        return {};
      }
    }
    return {};
  }

  // -- lifecycle ----------------------------------------------------------

  status fire(trigger t, json detail = json::object()) {
    const bool creating = t == trigger::create_with_trial
                          || t == trigger::create_without_trial;
    auto tr = creating ? apply_new(t) : apply(agg.sub.life, t);
    if (!tr)
      return tr.error();
    auto from = agg.sub.life;
    agg.sub.life = tr->to;
    detail["trigger"] = to_string(t);
    detail["from"] = to_string(from);
    detail["to"] = to_string(tr->to);
    event(event_type(from, t), detail);
    if (t == trigger::period_end && tr->to.status != sub_status::canceled)
      roll_period();
    if (tr->to.status == sub_status::canceled)
      agg.sub.entitled = false;
    for (auto e : tr->effects)
      if (auto st = run_effect(e); !st)
        return st;
    return {};
  }

  string event_type(const lifecycle_state& from, trigger t) const {
    const auto& to = agg.sub.life;
    switch (t) {
      case trigger::create_with_trial:
      case trigger::create_without_trial: return "subscription.created";
      case trigger::period_end:
        return to.status == sub_status::canceled ? "subscription.canceled"
                                                 : "subscription.renewed";
      case trigger::change_plan: return "subscription.plan_change_started";
      case trigger::schedule_cancel_at_period_end:
        return "subscription.cancel_scheduled";
      case trigger::unschedule_cancel_at_period_end:
        return "subscription.cancel_unscheduled";
      default: break;
    }
    if (to.status == from.status)
      return "subscription.updated";
    switch (to.status) {
      case sub_status::active:
        return from.status == sub_status::suspended ? "subscription.reinstated"
               : from.status == sub_status::paused  ? "subscription.resumed"
                                                    : "subscription.activated";
      case sub_status::past_due: return "subscription.past_due";
      case sub_status::suspended: return "subscription.suspended";
      case sub_status::paused: return "subscription.paused";
      case sub_status::canceled: return "subscription.canceled";
      default: return "subscription.updated";
    }
  }

  void roll_period() {
    auto anchor = make_billing_anchor(agg.sub.anchor, agg.sub.interval);
    RECUR_ASSERT(anchor.has_value());
    agg.sub.period = period_containing(*anchor, agg.sub.period.end);
  }

  string lifecycle_timer_id(std::string_view kind, instant due) const {
    return agg.sub.id.value + "/" + string{kind} + "/"
           + std::to_string(due.unix_s);
  }

  void arm_lifecycle(std::string_view kind, instant due) {
    string p;
    json_writer{p}.begin_object().member("subscription", agg.sub.id.value)
      .end_object();
    w.timers_to_schedule.push_back(timer_record{lifecycle_timer_id(kind, due),
                                                agg.sub.id.value, string{kind},
                                                due, std::move(p)});
  }

  status run_effect(effect e) {
    switch (e) {
      case effect::arm_trial_end_timer:
        arm_lifecycle("trial_end", *agg.sub.trial_end);
        return {};
      case effect::arm_period_end_timer:
        arm_lifecycle("period_end", agg.sub.period.end);
        return {};
      case effect::arm_incomplete_expiry_timer:
        arm_lifecycle("incomplete_expiry",
                      now.plus_seconds(incomplete_expiry_s));
        return {};
      case effect::cancel_lifecycle_timers:
        lifecycle_cancel_at = w.timers_to_schedule.size();
        return {};
      case effect::start_invoice_saga: return start_invoice_saga();
      case effect::void_open_invoice: return void_idle_open_invoices();
      case effect::start_dunning_saga: return start_dunning();
      case effect::end_dunning_saga: return end_saga("dunning", "invoices paid");
      case effect::start_plan_change_saga:
        return {}; // started by the command handler, which has the target
      case effect::start_suspension_saga: return start_saga("suspension", {});
      case effect::compensate_suspension: {
        auto* s = live("suspension");
        if (s == nullptr)
          return {};
        return feed(s->id.value, saga_in::abort_requested{"invoices paid"});
      }
      case effect::mark_invoice_uncollectible: return write_off_open_invoices();
      case effect::post_bad_debt:
        return {}; // posted with each written-off invoice above
      case effect::start_cancellation_saga:
        return start_saga("cancellation", {});
    }
    return {};
  }

  /// Ends a live saga of `type` unless it has an external call in flight
  /// (then it finishes on its own when the outcome arrives).
  status end_saga(const string& type, const string& reason) {
    auto* s = live(type);
    if (s == nullptr || s->status != saga_status::waiting)
      return {};
    if (s->timer && s->timer->kind == "timeout"
        && s->timer->wait_kind != "schedule"
        && s->timer->wait_kind != "reinstatement")
      return {}; // a charge outcome is still awaited
    return feed(s->id.value, saga_in::finish_early{reason});
  }

  // -- invoices -----------------------------------------------------------

  status start_invoice_saga() {
    const auto& p = agg.sub.period;
    auto inv = "inv_" + agg.sub.id.value + "_" + std::to_string(p.start.unix_s);
    return start_saga("invoice",
                      {{"invoice", inv},
                       {"period_start", std::to_string(p.start.unix_s)},
                       {"period_end", std::to_string(p.end.unix_s)}});
  }

  /// Issues an invoice with `lines` (applying the customer's credit); adds
  /// it to the open invoices unless nothing is due.
  result<open_invoice> issue(const string& inv, const string& key,
                             std::vector<invoice_line_input> lines,
                             billing_period covers) {
    auto computed = draft_invoice(cur(), std::move(lines), env.terms, env.taxes);
    if (!computed)
      return computed.error();
    int64_t total = computed->total.amount_minor();
    int64_t credit_used = std::clamp<int64_t>(agg.sub.credit_minor, 0,
                                              std::max<int64_t>(total, 0));
    agg.sub.credit_minor -= credit_used;
    int64_t due = std::max<int64_t>(total, 0) - credit_used;
    // What nlohmann would print for these objects: keys in sorted order.
    string lines_text;
    lines_text.reserve(128 * (computed->lines.size() + 1));
    json_writer lines_j{lines_text};
    lines_j.begin_array();
    for (const auto& l : computed->lines)
      lines_j.begin_object()
        .member("amount", l.amount.amount_minor())
        .member("description", l.description)
        .member("kind", to_string(l.kind))
        .member("net", l.net.amount_minor())
        .member("quantity", l.quantity)
        .member("tax", l.tax.amount_minor())
        .end_object();
    if (credit_used > 0)
      lines_j.begin_object()
        .member("amount", -credit_used)
        .member("kind", "credit_applied")
        .end_object();
    lines_j.end_array();
    invoice_record rec{invoice_id{inv},
                       agg.sub.id,
                       key,
                       string{to_string(invoice_status::open)},
                       agg.sub.currency,
                       total,
                       due,
                       0,
                       covers.start,
                       covers.end,
                       std::move(lines_text),
                       1,
                       now,
                       now};
    w.new_invoices.push_back(std::move(rec));
    string data;
    json_writer{data}
      .begin_object()
      .member("amount_due", due)
      .member("currency", agg.sub.currency)
      .member("invoice", inv)
      .member("subscription", agg.sub.id.value)
      .member("total", total)
      .end_object();
    outbox_text(inv + "/invoice.created", "invoice.created", std::move(data));
    open_invoice o{invoice_id{inv},
                   1,
                   due,
                   computed->net_total.amount_minor(),
                   computed->tax_total.amount_minor(),
                   0,
                   {},
                   covers.start,
                   covers.end};
    agg.sub.open_invoices.push_back(o);
    return o;
  }

  status void_invoice(const string& inv, bool reverse_receivable) {
    auto* o = find_open(inv);
    if (o == nullptr)
      return {};
    invoice_status(*o, invoice_status::voided, 0);
    if (reverse_receivable)
      if (auto st = reverse_receivable_of(*o); !st)
        return st;
    outbox(inv + "/invoice.voided", "invoice.voided", {{"invoice", inv}});
    drop_open(inv);
    return {};
  }

  status reverse_receivable_of(const open_invoice& o) {
    return ledger(o.id.value + "/issued/reversal",
                  credit_note(m(o.net_minor), m(o.tax_minor),
                              "invoice voided"),
                  o.id.value);
  }

  status void_idle_open_invoices() {
    std::vector<string> ids;
    for (const auto& o : agg.sub.open_invoices)
      if (o.collecting_saga.empty())
        ids.push_back(o.id.value);
    for (const auto& id : ids)
      if (auto st = void_invoice(id, true); !st)
        return st;
    return {};
  }

  status write_off_open_invoices() {
    std::vector<string> ids;
    for (const auto& o : agg.sub.open_invoices)
      if (o.collecting_saga.empty())
        ids.push_back(o.id.value);
    for (const auto& id : ids) {
      auto* o = find_open(id);
      invoice_status(*o, invoice_status::uncollectible, 0);
      if (auto st = ledger(id + "/write_off",
                           write_off(m(o->amount_due_minor), "bad debt"), id);
          !st)
        return st;
      outbox(id + "/invoice.uncollectible", "invoice.uncollectible",
             {{"invoice", id}, {"amount", o->amount_due_minor}});
      drop_open(id);
    }
    return {};
  }

  /// Records a collected payment of an open invoice.
  status settle_paid(const string& inv, const string& charge_id) {
    auto* o = find_open(inv);
    if (o == nullptr)
      return {};
    invoice_status(*o, invoice_status::paid, o->amount_due_minor);
    if (auto st = ledger(inv + "/payment",
                         payment_received(m(o->amount_due_minor)), inv);
        !st)
      return st;
    string data;
    json_writer{data}
      .begin_object()
      .member("amount_paid", o->amount_due_minor)
      .member("currency", agg.sub.currency)
      .member("invoice", inv)
      .member("subscription", agg.sub.id.value)
      .end_object();
    outbox_text(inv + "/invoice.paid", "invoice.paid", std::move(data));
    if (o->period_start == agg.sub.period.start
        && o->period_end == agg.sub.period.end)
      agg.sub.last_paid = paid_invoice{o->id,         o->amount_due_minor,
                                       o->net_minor,  o->tax_minor,
                                       charge_id,     o->period_start,
                                       o->period_end};
    drop_open(inv);
    return after_payment();
  }

  /// Once nothing is left to collect, a subscription in arrears recovers.
  status after_payment() {
    if (!agg.sub.open_invoices.empty())
      return {};
    auto st = agg.sub.life.status;
    if (st == sub_status::incomplete || st == sub_status::past_due
        || st == sub_status::suspended)
      return fire(trigger::invoice_paid);
    return {};
  }

  /// A period invoice that could not be collected goes to dunning.
  status hand_to_dunning(const string& inv) {
    auto st = agg.sub.life.status;
    if (st == sub_status::canceled)
      return void_invoice(inv, true);
    if (st == sub_status::incomplete)
      return {}; // the incomplete-expiry timer decides
    if (auto* d = live("dunning")) {
      auto list = data_or(*d, "invoices");
      d->data["invoices"] = list.empty() ? inv : list + "," + inv;
      if (std::find(touched.begin(), touched.end(), d->id.value)
          == touched.end())
        touched.push_back(d->id.value);
      return {};
    }
    pending_dunning_invoice = inv;
    if (st == sub_status::active)
      return fire(trigger::invoice_payment_failed, {{"invoice", inv}});
    // Past due or suspended without a live dunning saga (it ended): start one.
    return start_dunning();
  }

  string pending_dunning_invoice;
  /// Where in timers_to_schedule the lifecycle timers were cancelled.
  std::optional<std::size_t> lifecycle_cancel_at;
  std::optional<timer_record> fired; // the timer this input delivers

  /// The store applies schedules before cancels, so a cancel by owner would
  /// also hit a timer armed after it in this unit of work: cancel only the
  /// lifecycle kinds not armed again afterwards (an old timer of a re-armed
  /// kind is recognised as stale when it fires) and drop the ones armed
  /// before the cancel.
  void settle_lifecycle_cancel() {
    if (!lifecycle_cancel_at)
      return;
    const auto& owner = agg.sub.id.value;
    std::set<string> rearmed;
    std::vector<timer_record> kept;
    for (std::size_t i = 0; i < w.timers_to_schedule.size(); ++i) {
      auto& t = w.timers_to_schedule[i];
      if (t.owner == owner && i < *lifecycle_cancel_at)
        continue;
      if (t.owner == owner)
        rearmed.insert(t.kind);
      kept.push_back(std::move(t));
    }
    w.timers_to_schedule = std::move(kept);
    for (std::string_view kind : {"trial_end", "period_end", "incomplete_expiry"})
      if (!rearmed.contains(string{kind})) {
        w.timers_to_cancel.push_back(timer_cancel{owner, string{kind}});
        // The store cancels before it completes: the fired timer is gone
        // with the cancel, completing it too would find nothing.
        if (fired && fired->owner == owner && fired->kind == kind)
          std::erase(w.timers_to_complete, fired->id);
      }
  }

  status start_dunning() {
    auto ladder = env.ladder ? *env.ladder : default_dunning_ladder(cur());
    std::map<string, string> data{{"steps", dunning_steps(ladder)},
                                  {"invoices", pending_dunning_invoice},
                                  {"started_at", std::to_string(now.unix_s)}};
    if (ladder.sms_min_amount
        && ladder.sms_min_amount->currency() == cur())
      data["sms_min"] = std::to_string(ladder.sms_min_amount->amount_minor());
    return start_saga("dunning", std::move(data));
  }

  // -- charges --------------------------------------------------------------

  /// Issues (or re-issues) the charge of `inv` for saga action `a`.
  local_outcome charge(const string& saga_id, const saga_cmd::execute_action& a,
                       const string& inv) {
    auto* s = saga(saga_id);
    auto* o = find_open(inv);
    if (o == nullptr)
      return saga_in::action_succeeded{"invoice no longer open",
                                       {{"collected", "0"}, {"skipped", "1"}}};
    if (o->amount_due_minor == 0)
      return saga_in::action_succeeded{"nothing to collect",
                                       {{"collected", "1"}, {"charge_id", ""}}};
    if (!o->collecting_saga.empty() && o->collecting_saga != saga_id)
      return saga_in::action_succeeded{"another saga is collecting",
                                       {{"collected", "0"}, {"skipped", "1"}}};
    if (agg.sub.payment_method.empty())
      return saga_in::action_succeeded{
        "no payment method", {{"collected", "0"}, {"decline", "hard"}}};
    auto kind = gateway_call_request::op::resolve;
    if (data_or(*s, "charge_exec_key") != a.idempotency_key) {
      ++o->attempts;
      auto key = inv + "/attempt-" + std::to_string(o->attempts);
      auto attempt_id = inv + "/pa-" + std::to_string(o->attempts);
      s->data["charge_exec_key"] = a.idempotency_key;
      s->data["charge_key"] = key;
      s->data["attempt_id"] = attempt_id;
      s->data["attempt_version"] = "1";
      s->data["charge_amount"] = std::to_string(o->amount_due_minor);
      s->data["charge_pm"] = agg.sub.payment_method;
      w.new_attempts.push_back(payment_attempt_record{
        payment_attempt_id{attempt_id}, o->id, key, o->attempts,
        string{to_string(attempt_status::pending)}, o->amount_due_minor,
        agg.sub.currency, "", 1, now, now, ""});
      kind = gateway_call_request::op::charge;
    }
    o->collecting_saga = saga_id;
    auto call = charge_call(agg.sub, *s, a.step, a.idempotency_key, kind);
    calls.push_back(std::move(call));
    return std::nullopt;
  }

  /// `charge_id`: the gateway's id of the payment, recorded on the attempt
  /// so that events naming only it (disputes) find their way back.
  void attempt_update(saga_state& s, attempt_status st, const string& code,
                      const string& charge_id = {}) {
    auto v = to_i64(data_or(s, "attempt_version", "1"));
    w.attempt_updates.push_back(payment_attempt_update{
      payment_attempt_id{data_or(s, "attempt_id")}, v, string{to_string(st)},
      code, now, charge_id});
    s.data["attempt_version"] = std::to_string(v + 1);
  }

  /// Maps a charge outcome of saga `s` (whose current action is a charge)
  /// to the executor's input, per saga type.
  result<saga_input> charge_outcome(saga_state& s, const charge_result& r) {
    const auto inv = data_or(s, s.type == "dunning" ? "charging" : "invoice");
    const bool dunning = s.type == "dunning";
    const bool strict = s.type == "plan_change"; // fail rather than dun
    switch (r.status) {
      case charge_status::succeeded: {
        attempt_update(s, attempt_status::succeeded, "", r.charge_id);
        if (auto* o = find_open(inv))
          o->collecting_saga.clear();
        if (dunning) {
          if (auto st = settle_paid(inv, r.charge_id); !st)
            return st.error();
          return saga_input{saga_in::action_succeeded{"paid " + inv, {}}};
        }
        return saga_input{saga_in::action_succeeded{
          "charged " + r.charge_id,
          {{"collected", "1"}, {"charge_id", r.charge_id}}}};
      }
      case charge_status::pending:
        attempt_update(s, attempt_status::pending, "", r.charge_id);
        return saga_input{saga_in::action_pending{"webhook",
                                                  env.pending_timeout_s}};
      case charge_status::unknown:
        attempt_update(s, attempt_status::unknown, "", r.charge_id);
        return saga_input{saga_in::action_pending{"resolve",
                                                  env.unknown_timeout_s}};
      case charge_status::declined: break;
    }
    const bool hard = r.decline == decline_class::hard;
    attempt_update(s, hard ? attempt_status::failed_hard
                           : attempt_status::failed_soft,
                   r.decline_code);
    if (auto* o = find_open(inv))
      o->collecting_saga.clear();
    outbox(data_or(s, "charge_key") + "/failed", "invoice.payment_failed",
           {{"invoice", inv}, {"decline_code", r.decline_code},
            {"decline", hard ? "hard" : "soft"}});
    if (dunning)
      return saga_input{saga_in::action_succeeded{"declined " + r.decline_code, {}}};
    if (s.type == "payment") // the customer is waiting: no retries
      return saga_input{saga_in::action_succeeded{
        "declined " + r.decline_code, {{"collected", "0"}}}};
    const auto& policy = env.retry;
    bool spent = s.attempts.at(s.step) >= policy.max_attempts;
    if (!hard && !spent)
      return saga_input{saga_in::action_failed_retryable{r.decline_code}};
    if (strict)
      return saga_input{saga_in::action_failed_permanent{r.decline_code}};
    return saga_input{saga_in::action_succeeded{
      "declined " + r.decline_code,
      {{"collected", "0"}, {"decline", hard ? "hard" : "soft"}}}};
  }

  // -- local actions --------------------------------------------------------

  result<local_outcome> act(const string& saga_id,
                            const saga_cmd::execute_action& a) {
    auto* sp = saga(saga_id);
    RECUR_ASSERT(sp != nullptr);
    auto& s = *sp;
    auto [name, day] = split_at(a.name);
    const auto inv = data_or(s, "invoice");

    if (name == "issue_invoice") {
      if (find_open(inv) != nullptr)
        return local_outcome{saga_in::action_succeeded{"already issued", {}}};
      auto pv = env.plans->version(agg.sub.plan, agg.sub.plan_version);
      if (!pv)
        return pv.error();
      billing_period covers{instant{to_i64(data_or(s, "period_start"))},
                            instant{to_i64(data_or(s, "period_end"))}};
      auto lines = period_lines(period_charges{&*pv, agg.sub.quantity, covers,
                                               {}, std::nullopt});
      if (!lines)
        return lines.error();
      auto key = agg.sub.tenant.value + "/" + agg.sub.id.value + "/"
                 + std::to_string(covers.start.unix_s);
      auto o = issue(inv, key, std::move(*lines), covers);
      if (!o)
        return o.error();
      return local_outcome{saga_in::action_succeeded{
        "issued " + inv + " due " + std::to_string(o->amount_due_minor), {}}};
    }
    if (name == "post_receivable") {
      auto* o = find_open(inv);
      if (o != nullptr)
        if (auto st = ledger(inv + "/issued",
                             invoice_issued(m(o->net_minor), m(o->tax_minor)),
                             inv);
            !st)
          return st.error();
      return local_outcome{saga_in::action_succeeded{"receivable posted", {}}};
    }
    if (name == "charge")
      return charge(saga_id, a, inv);
    if (name == "settle") {
      if (data_or(s, "skipped") == "1")
        return local_outcome{saga_in::action_succeeded{"nothing to settle", {}}};
      if (data_or(s, "collected") == "1") {
        if (auto st = settle_paid(inv, data_or(s, "charge_id")); !st)
          return st.error();
        return local_outcome{saga_in::action_succeeded{"paid", {}}};
      }
      if (s.type == "invoice")
        if (auto st = hand_to_dunning(inv); !st)
          return st.error();
      return local_outcome{saga_in::action_succeeded{"not collected", {}}};
    }
    if (name == "await" || name == "await_reinstatement") {
      instant due = name == "await"
                      ? instant{to_i64(data_or(s, "started_at"))}.plus_seconds(
                          int64_t{day} * seconds_per_day)
                      : instant{to_i64(data_or(s, "await_until", "0"))};
      if (name == "await_reinstatement" && data_or(s, "await_until").empty()) {
        due = now.plus_seconds(400 * seconds_per_day);
        s.data["await_until"] = std::to_string(due.unix_s);
      }
      if (now >= due)
        return local_outcome{saga_in::action_succeeded{"due", {}}};
      return local_outcome{saga_in::action_pending{
        name == "await" ? "schedule" : "reinstatement",
        seconds_between(now, due)}};
    }
    if (name == "retry_payment") {
      // The oldest of the dunning saga's invoices that is still open.
      string target;
      auto list = data_or(s, "invoices");
      std::size_t pos = 0;
      while (pos <= list.size() && target.empty()) {
        auto end = list.find(',', pos);
        if (end == string::npos)
          end = list.size();
        auto id = list.substr(pos, end - pos);
        if (!id.empty() && find_open(id) != nullptr)
          target = id;
        pos = end + 1;
      }
      if (target.empty())
        return local_outcome{saga_in::action_succeeded{"nothing open", {}}};
      s.data["charging"] = target;
      return charge(saga_id, a, target);
    }
    if (name == "notify_email" || name == "notify_in_app"
        || name == "notify_sms" || name == "notify_suspended") {
      int64_t owed = 0;
      for (const auto& o : agg.sub.open_invoices)
        owed += o.amount_due_minor;
      if (name == "notify_sms" && !data_or(s, "sms_min").empty()
          && owed < to_i64(data_or(s, "sms_min")))
        return local_outcome{
          saga_in::action_succeeded{"sms skipped: below threshold", {}}};
      outbox(a.idempotency_key, "notification.requested",
             {{"channel", name}, {"amount_due", owed},
              {"currency", agg.sub.currency}, {"saga", saga_id}});
      return local_outcome{saga_in::action_succeeded{"requested", {}}};
    }
    if (name == "suspend") {
      if (agg.sub.life.status != sub_status::past_due)
        return local_outcome{saga_in::action_succeeded{"not past due", {}}};
      if (auto st = fire(trigger::dunning_suspend); !st)
        return st.error();
      return local_outcome{saga_in::action_succeeded{"suspended", {}}};
    }
    if (name == "cancel_and_write_off") {
      if (agg.sub.life.status != sub_status::suspended)
        return local_outcome{saga_in::action_succeeded{"not suspended", {}}};
      if (auto st = fire(trigger::dunning_exhausted); !st)
        return st.error();
      if (auto* sus = live("suspension");
          sus != nullptr && sus->status == saga_status::waiting)
        if (auto st = feed(sus->id.value,
                           saga_in::finish_early{"canceled for nonpayment"});
            !st)
          return st.error();
      return local_outcome{saga_in::action_succeeded{"canceled", {}}};
    }
    if (name == "revoke_entitlements") {
      agg.sub.entitled = false;
      outbox(a.idempotency_key, "entitlements.revoked", json::object());
      return local_outcome{saga_in::action_succeeded{"revoked", {}}};
    }
    if (name == "issue_proration")
      return issue_proration(s);
    if (name == "switch_plan") {
      agg.sub.plan = plan_id{data_or(s, "to_plan")};
      agg.sub.plan_version = static_cast<int32_t>(to_i64(data_or(s, "to_version")));
      agg.sub.quantity = to_i64(data_or(s, "to_quantity"));
      event("subscription.plan_changed",
            {{"plan", agg.sub.plan.value}, {"version", agg.sub.plan_version},
             {"quantity", agg.sub.quantity}});
      return local_outcome{saga_in::action_succeeded{"switched", {}}};
    }
    if (name == "credit_unused")
      return credit_unused(s);
    if (name == "refund_credit") {
      auto total = to_i64(data_or(s, "credit_total", "0"));
      auto charge_id = data_or(s, "credit_charge");
      if (total <= 0 || charge_id.empty())
        return local_outcome{saga_in::action_succeeded{"nothing to refund", {}}};
      calls.push_back(
        refund_call(agg.sub, s, a.step, a.idempotency_key, charge_id, total));
      return local_outcome{std::nullopt};
    }
    if (name == "close_open_invoices") {
      if (auto st = void_idle_open_invoices(); !st)
        return st.error();
      return local_outcome{saga_in::action_succeeded{"closed", {}}};
    }
    return make_error(errc::invalid_argument, "unknown saga action " + a.name);
  }

  result<local_outcome> issue_proration(saga_state& s) {
    auto from = env.plans->version(agg.sub.plan, agg.sub.plan_version);
    if (!from)
      return from.error();
    auto to = env.plans->version(plan_id{data_or(s, "to_plan")},
                                 static_cast<int32_t>(
                                   to_i64(data_or(s, "to_version"))));
    if (!to)
      return to.error();
    auto lines = plan_change_lines(
      plan_change{&*from, agg.sub.quantity, &*to,
                  to_i64(data_or(s, "to_quantity")), agg.sub.period, now});
    if (!lines)
      return lines.error();
    auto computed = draft_invoice(cur(), *lines, env.terms, env.taxes);
    if (!computed)
      return computed.error();
    auto inv = data_or(s, "invoice");
    if (computed->total.amount_minor() > 0) {
      auto o = issue(inv, inv, std::move(*lines), agg.sub.period);
      if (!o)
        return o.error();
      if (auto st = ledger(inv + "/issued",
                           invoice_issued(m(o->net_minor), m(o->tax_minor)),
                           inv);
          !st)
        return st.error();
      return local_outcome{saga_in::action_succeeded{
        "proration invoice " + inv, {{"charged", "1"}}}};
    }
    // A downgrade: a credit note, kept as the customer's credit balance and
    // applied to the next invoices.
    auto net = -computed->net_total.amount_minor();
    auto tax = -computed->tax_total.amount_minor();
    if (auto st = ledger(inv + "/credit", credit_note(m(net), m(tax)),
                         agg.sub.id.value);
        !st)
      return st.error();
    agg.sub.credit_minor += net + tax;
    outbox(inv + "/credit_note.issued", "credit_note.issued",
           {{"credit_note", inv}, {"amount", net + tax},
            {"currency", agg.sub.currency}});
    return local_outcome{saga_in::action_succeeded{
      "credit note " + std::to_string(net + tax),
      {{"invoice", ""}, {"credit", std::to_string(net + tax)},
       {"credit_net", std::to_string(net)},
       {"credit_tax", std::to_string(tax)}}}};
  }

  result<local_outcome> credit_unused(saga_state& s) {
    const auto& lp = agg.sub.last_paid;
    if (!lp || lp->paid_minor <= 0 || !(lp->period_start <= now)
        || !(now < lp->period_end))
      return local_outcome{saga_in::action_succeeded{"nothing to credit", {}}};
    billing_period p{lp->period_start, lp->period_end};
    auto net = unused_credit(m(lp->net_minor), p, now);
    auto tax = unused_credit(m(lp->tax_minor), p, now);
    if (!net)
      return net.error();
    if (!tax)
      return tax.error();
    int64_t n = -net->amount_minor();
    int64_t t = -tax->amount_minor();
    int64_t total = std::min(n + t, lp->paid_minor);
    if (total <= 0)
      return local_outcome{saga_in::action_succeeded{"nothing to credit", {}}};
    auto id = s.id.value + "/credit";
    if (auto st = ledger(id, credit_note(m(n), m(t), "cancellation credit"),
                         lp->id.value);
        !st)
      return st.error();
    outbox(id, "credit_note.issued",
           {{"credit_note", id}, {"invoice", lp->id.value}, {"amount", total},
            {"currency", agg.sub.currency}});
    s.data["credit_charge"] = lp->charge_id;
    if (lp->charge_id.empty())
      agg.sub.credit_minor += total; // nothing to refund to: keep as credit
    return local_outcome{saga_in::action_succeeded{
      "credit " + std::to_string(total),
      {{"credit_total", lp->charge_id.empty() ? "0" : std::to_string(total)},
       {"credit_invoice", lp->id.value}}}};
  }

  // -- compensations ------------------------------------------------------

  result<local_outcome> compensate(const string& saga_id,
                                   const saga_cmd::execute_compensation& c) {
    auto* sp = saga(saga_id);
    RECUR_ASSERT(sp != nullptr);
    auto& s = *sp;
    const auto inv = data_or(s, "invoice");
    if (c.name == "void_invoice" || c.name == "void_proration") {
      if (c.name == "void_proration" && inv.empty()) {
        // Undo a credit note.
        auto n = to_i64(data_or(s, "credit_net", "0"));
        auto t = to_i64(data_or(s, "credit_tax", "0"));
        if (n + t > 0) {
          if (auto st = ledger(s.id.value + "/credit/reversal",
                               invoice_issued(m(n), m(t), "credit withdrawn"),
                               agg.sub.id.value);
              !st)
            return st.error();
          agg.sub.credit_minor -= n + t;
        }
        return local_outcome{saga_in::compensation_succeeded{"credit withdrawn"}};
      }
      if (auto st = void_invoice(inv, c.name == "void_proration"); !st)
        return st.error();
      return local_outcome{saga_in::compensation_succeeded{"voided"}};
    }
    if (c.name == "reverse_receivable") {
      // void_invoice (the next compensation) only changes the status; the
      // receivable is reversed here, once.
      if (auto* o = find_open(inv))
        if (auto st = reverse_receivable_of(*o); !st)
          return st.error();
      return local_outcome{saga_in::compensation_succeeded{"reversed"}};
    }
    if (c.name == "refund_charge") {
      // The charge step completed only if it collected; plan changes and
      // payments fail before that. A collected charge is refunded in full.
      if (data_or(s, "collected") != "1" || data_or(s, "charge_id").empty())
        return local_outcome{saga_in::compensation_succeeded{"nothing to refund"}};
      calls.push_back(refund_call(agg.sub, s, c.step, c.idempotency_key,
                                  data_or(s, "charge_id"),
                                  to_i64(data_or(s, "charge_amount"))));
      return local_outcome{std::nullopt};
    }
    if (c.name == "restore_entitlements") {
      agg.sub.entitled = true;
      outbox(c.idempotency_key, "entitlements.restored", json::object());
      return local_outcome{saga_in::compensation_succeeded{"restored"}};
    }
    if (c.name == "lift_suspension") {
      if (auto* sus = live("suspension"))
        if (sus->status == saga_status::waiting)
          if (auto st = feed(sus->id.value,
                             saga_in::abort_requested{"dunning undone"});
              !st)
            return st.error();
      return local_outcome{saga_in::compensation_succeeded{"lifted"}};
    }
    if (c.name == "revert_plan") {
      agg.sub.plan = plan_id{data_or(s, "from_plan")};
      agg.sub.plan_version
        = static_cast<int32_t>(to_i64(data_or(s, "from_version")));
      agg.sub.quantity = to_i64(data_or(s, "from_quantity"));
      return local_outcome{saga_in::compensation_succeeded{"reverted"}};
    }
    return make_error(errc::invalid_argument,
                      "unknown compensation " + c.name);
  }

  // -- gateway outcomes -----------------------------------------------------

  status on_gateway(const sub_in::gateway_done& g) {
    auto* s = saga(g.saga);
    if (s == nullptr)
      return {}; // the saga finished meanwhile: stale
    auto def = definition_of(*s);
    if (!def)
      return def.error();
    if (s->status == saga_status::compensating) {
      auto comp = compensation_key(s->id, s->step,
                                   (*def)->steps.at(s->step).compensation);
      if (comp != g.action_key)
        return {};
      if (g.failure) {
        if (g.failure->code == errc::unavailable) // tried again later
          return feed(g.saga,
                      saga_in::compensation_failed_retryable{g.failure->detail});
        return feed(g.saga, saga_in::compensation_failed{g.failure->detail});
      }
      if (g.refund)
        if (auto st = ledger(g.action_key, refund_issued(g.refund->amount),
                             data_or(*s, "invoice"));
            !st)
          return st;
      return feed(g.saga, saga_in::compensation_succeeded{"refunded"});
    }
    auto cur_action = in_flight_action(*s);
    if (!cur_action || cur_action->idempotency_key != g.action_key)
      return {}; // not what the saga waits for
    auto [name, day] = split_at(cur_action->name);
    (void)day;
    if (name == "refund_credit") {
      if (g.failure) {
        if (g.failure->code == errc::unavailable)
          return feed(g.saga, saga_in::action_failed_retryable{g.failure->detail});
        return feed(g.saga, saga_in::action_failed_permanent{g.failure->detail});
      }
      // Paying the customer's credit back: DR receivable / CR cash.
      auto amt = g.refund ? g.refund->amount : m(0);
      if (amt.is_positive()) {
        auto tx = ledger_transaction::make(
          "credit refunded",
          {posting{account::receivable, entry_side::debit, amt},
           posting{account::cash, entry_side::credit, amt}});
        if (auto st = ledger(g.action_key, std::move(tx),
                             data_or(*s, "credit_invoice"));
            !st)
          return st;
      }
      return feed(g.saga, saga_in::action_succeeded{"refunded", {}});
    }
    // A charge. An error means nothing was charged: unavailable is a soft
    // failure (retry later), anything else only the customer can fix.
    if (g.failure) {
      charge_result r;
      r.status = charge_status::declined;
      r.decline = g.failure->code == errc::unavailable ? decline_class::soft
                                                       : decline_class::hard;
      r.decline_code = string{to_string(g.failure->code)};
      auto in = charge_outcome(*s, r);
      if (!in)
        return in.error();
      return feed(g.saga, *in);
    }
    if (!g.charge)
      return make_error(errc::invalid_argument, "gateway_done without result");
    auto in = charge_outcome(*s, *g.charge);
    if (!in)
      return in.error();
    if (s->type == "dunning"
        && std::holds_alternative<saga_in::action_succeeded>(*in)
        && g.charge->status == charge_status::succeeded) {
      // Paid: dunning ends here, without its remaining notices. The
      // lifecycle (invoice_paid) may already have ended it.
      if (saga(g.saga) == nullptr)
        return {};
      if (agg.sub.open_invoices.empty() || !has_dunned_open(*saga(g.saga)))
        return feed(g.saga, saga_in::finish_early{"paid"});
    }
    return feed(g.saga, *in);
  }

  bool has_dunned_open(const saga_state& d) {
    auto list = data_or(d, "invoices");
    for (const auto& o : agg.sub.open_invoices)
      if (list.find(o.id.value) != string::npos)
        return true;
    return false;
  }

  /// A payment outcome: completes the charge in flight under its key.
  status on_payment_notice(const gateway_event& e) {
    // The saga whose in-flight charge has this key.
    for (auto& [id, s] : agg.sagas) {
      if (data_or(s, "charge_key") != e.idempotency_key)
        continue;
      auto a = in_flight_action(s);
      // Only while that very charge is in flight: a late or duplicate event
      // about a charge already resolved must not complete a later step.
      if (!a || a->idempotency_key != data_or(s, "charge_exec_key"))
        return {};
      sub_in::gateway_done g;
      g.saga = id;
      g.step = a->step;
      g.action_key = a->idempotency_key;
      charge_result r;
      r.charge_id = e.charge_id;
      if (e.type == "payment_intent.succeeded") {
        r.status = charge_status::succeeded;
      } else {
        r.status = charge_status::declined;
        r.decline_code = e.decline_code;
        r.decline = classify_decline(e.decline_code);
      }
      g.charge = r;
      return on_gateway(g);
    }
    return {};
  }

  /// The key of the refund saga `s` has in flight (a refund_charge
  /// compensation or a refund_credit action), or "".
  static string refund_in_flight(const saga_state& s) {
    auto def = definition_of(s);
    if (!def || s.step < 0
        || static_cast<std::size_t>(s.step) >= (*def)->steps.size())
      return {};
    const auto& st = (*def)->steps.at(s.step);
    if (s.status == saga_status::compensating
        && st.compensation == "refund_charge")
      return compensation_key(s.id, s.step, st.compensation);
    if (auto a = in_flight_action(s);
        a && split_at(a->name).first == "refund_credit")
      return a->idempotency_key;
    return {};
  }

  status on_refund_notice(const sub_in::gateway_notice& n) {
    const auto& e = n.event;
    if (!e.idempotency_key.empty()) {
      // A refund a live saga waits for: this is its outcome.
      for (auto& [id, s] : agg.sagas)
        if (refund_in_flight(s) == e.idempotency_key) {
          sub_in::gateway_done g;
          g.saga = id;
          g.step = s.step;
          g.action_key = e.idempotency_key;
          g.refund
            = refund_result{n.ref_id.empty() ? e.id : n.ref_id, e.amount};
          return on_gateway(g);
        }
      // A refund Recur asked for and no longer waits for: it was posted
      // when its call returned.
      if (e.idempotency_key.starts_with(agg.sub.id.value + "/"))
        return {};
    }
    return money_out_at_gateway(n, false);
  }

  /// A refund made at the gateway (`dispute` false) or a dispute opened
  /// there: money left the merchant's balance for a charge of ours. The
  /// invoice stays as it is (paid stays paid, as in Stripe); the ledger and
  /// an event record it, once per refund/dispute id.
  status money_out_at_gateway(const sub_in::gateway_notice& n, bool dispute) {
    const auto& e = n.event;
    if (e.amount.currency() != cur() || !e.amount.is_positive())
      return {}; // not a payment of this subscription's
    std::optional<invoice_id> inv = n.invoice;
    if (!inv && agg.sub.last_paid && !e.charge_id.empty()
        && agg.sub.last_paid->charge_id == e.charge_id)
      inv = agg.sub.last_paid->id;
    if (!inv)
      return {}; // no payment of ours is known by that charge
    const string id = n.ref_id.empty() ? e.id : n.ref_id;
    const string ref = (dispute ? "dispute:" : "refund:") + id;
    auto& refs = agg.sub.gateway_refs;
    if (std::find(refs.begin(), refs.end(), ref) != refs.end())
      return {};
    refs.push_back(ref);
    if (refs.size() > gateway_refs_max) {
      const auto drop
        = static_cast<std::ptrdiff_t>(refs.size() - gateway_refs_max);
      refs.erase(refs.begin(), refs.begin() + drop);
    }
    const string tx = inv->value + (dispute ? "/dispute/" : "/refund/") + id;
    json data{{"invoice", inv->value},
              {"charge_id", e.charge_id},
              {"amount", e.amount.amount_minor()},
              {"currency", agg.sub.currency}};
    if (dispute) {
      // The gateway withholds the disputed amount until the dispute is
      // decided: DR disputes / CR cash.
      auto t = ledger_transaction::make(
        "dispute " + id,
        {posting{account::disputes, entry_side::debit, e.amount},
         posting{account::cash, entry_side::credit, e.amount}});
      if (auto st = ledger(tx, std::move(t), inv->value); !st)
        return st;
      data["dispute_id"] = id;
      outbox(tx, "invoice.disputed", std::move(data));
    } else {
      if (auto st = ledger(tx, refund_issued(e.amount, "refund " + id),
                           inv->value);
          !st)
        return st;
      data["refund_id"] = id;
      outbox(tx, "payment.refunded", std::move(data));
    }
    // What a cancellation could still credit back shrinks by as much.
    if (auto& lp = agg.sub.last_paid; lp && lp->id == *inv)
      lp->paid_minor
        = std::max<int64_t>(lp->paid_minor - e.amount.amount_minor(), 0);
    return {};
  }

  /// Records the event in the inbox, in this unit of work, then applies it
  /// by its meaning.
  status on_notice(const sub_in::gateway_notice& n) {
    const auto& e = n.event;
    if (!n.gateway.empty())
      w.inbox.push_back(inbox_entry{n.gateway, e.id, now});
    if (!agg.exists())
      return {}; // nothing to apply it to: only the inbox entry commits
    if (e.type == "payment_intent.succeeded"
        || e.type == "payment_intent.payment_failed")
      return on_payment_notice(e);
    if (e.type == "charge.refunded")
      return on_refund_notice(n);
    if (e.type == "charge.dispute.created")
      return money_out_at_gateway(n, true);
    return {};
  }

  // -- invoice void and operator commands ----------------------------------

  /// Ends the collection of open invoice `inv` (no charge of it in flight):
  /// the invoice saga retrying it finishes early, a plan change it belongs
  /// to is compensated (which voids it), dunning forgets it.
  status end_collection_of(const string& inv) {
    std::vector<string> ids;
    for (const auto& [id, type] : agg.sub.sagas)
      ids.push_back(id);
    for (const auto& id : ids) {
      auto* s = saga(id);
      if (s == nullptr)
        continue;
      if (s->type == "dunning") {
        auto list = data_or(*s, "invoices");
        string kept;
        std::size_t pos = 0;
        while (pos <= list.size()) {
          auto end = list.find(',', pos);
          if (end == string::npos)
            end = list.size();
          auto x = list.substr(pos, end - pos);
          if (!x.empty() && x != inv)
            kept += (kept.empty() ? "" : ",") + x;
          pos = end + 1;
        }
        if (kept != list) {
          s->data["invoices"] = kept;
          if (std::find(touched.begin(), touched.end(), id) == touched.end())
            touched.push_back(id);
        }
        continue;
      }
      if (data_or(*s, "invoice") != inv || s->status != saga_status::waiting)
        continue;
      if (s->type == "plan_change") {
        if (auto st = feed(id, saga_in::abort_requested{"invoice voided"}); !st)
          return st;
      } else if (s->type == "invoice" || s->type == "payment") {
        if (auto st = feed(id, saga_in::finish_early{"invoice voided"}); !st)
          return st;
      }
    }
    return {};
  }

  /// After an invoice closed without being paid: with nothing left to
  /// collect, dunning ends; a subscription in arrears recovers and an
  /// incomplete one expires (Stripe: voiding the last open invoice).
  status after_invoice_closed() {
    if (auto* d = live("dunning"); d != nullptr && !has_dunned_open(*d))
      if (auto st = end_saga("dunning", "invoices closed"); !st)
        return st;
    if (!agg.sub.open_invoices.empty())
      return {};
    switch (agg.sub.life.status) {
      case sub_status::incomplete: return fire(trigger::incomplete_expired);
      case sub_status::past_due:
      case sub_status::suspended:
        return fire(trigger::invoice_paid, {{"cause", "invoice_voided"}});
      default: return {};
    }
  }

  status on_void(const sub_in::void_invoice& v) {
    const auto& inv = v.invoice.value;
    auto* o = find_open(inv);
    if (o == nullptr)
      return make_error(errc::invalid_transition,
                        "invoice " + inv + " is not open");
    if (!o->collecting_saga.empty())
      return make_error(errc::invalid_transition,
                        "a charge of " + inv + " is in flight");
    if (auto st = end_collection_of(inv); !st)
      return st;
    if (auto st = void_invoice(inv, true); !st) // no-op if a compensation did
      return st;
    return after_invoice_closed();
  }

  /// The live saga an operator command names, or why it cannot take one.
  result<saga_state*> operated(const saga_id& id) {
    auto* s = saga(id.value);
    if (s == nullptr)
      return make_error(errc::invalid_transition,
                        "saga " + id.value + " is not live");
    if (s->status == saga_status::running
        || s->status == saga_status::compensating)
      return make_error(errc::invalid_transition,
                        "saga " + id.value + " has a call in flight");
    RECUR_ASSERT(s->status == saga_status::waiting && s->timer.has_value());
    return s;
  }

  status on_retry_saga(const sub_in::retry_saga& r) {
    auto s = operated(r.saga);
    if (!s)
      return s.error();
    const auto timer = *(*s)->timer;
    if (timer.kind == "timeout"
        && (timer.wait_kind == "schedule"
            || timer.wait_kind == "reinstatement"))
      return make_error(errc::invalid_transition,
                        "saga " + r.saga.value
                          + " waits on its schedule, not on a retry (to "
                            "collect now: POST /v1/invoices/{id}/pay)");
    // As if its timer fired now: a retry runs the next attempt under a new
    // key, a pending outcome is asked for under the same key, a failed
    // compensation runs again under its key. The timer is completed.
    return feed(r.saga.value, saga_in::timer_fired{timer.id});
  }

  status on_compensate_saga(const sub_in::compensate_saga& c) {
    auto s = operated(c.saga);
    if (!s)
      return s.error();
    const auto& type = (*s)->type;
    if (type != "invoice" && type != "plan_change" && type != "payment")
      return make_error(errc::invalid_transition,
                        "a " + type
                          + " saga is undone by the lifecycle, not by an "
                            "operator: pay or void its invoices");
    const auto& timer = *(*s)->timer;
    if (timer.kind == "compensation_retry")
      return make_error(errc::invalid_transition,
                        "saga " + c.saga.value + " is compensating already");
    if (timer.kind == "timeout")
      return make_error(errc::invalid_transition,
                        "saga " + c.saga.value
                          + " awaits a charge outcome: retry it to ask the "
                            "gateway, then compensate");
    if (auto st = feed(c.saga.value, saga_in::abort_requested{"operator"}); !st)
      return st;
    return after_invoice_closed();
  }

  // -- commands -----------------------------------------------------------

  status on_create(const sub_in::create& c, const tenant_id& tenant,
                   const subscription_id& id) {
    if (agg.exists())
      return make_error(errc::already_exists,
                        "subscription " + id.value + " exists");
    if (c.quantity < 1)
      return make_error(errc::invalid_argument, "quantity must be >= 1");
    if (c.customer.empty())
      return make_error(errc::invalid_argument, "customer is required");
    auto pv = env.plans->current(c.plan, now);
    if (!pv)
      return pv.error();
    int32_t trial = c.trial_days.value_or(pv->trial_days);
    if (trial < 0 || trial > max_trial_days)
      return make_error(errc::invalid_argument, "trial_days out of range");
    auto& s = agg.sub;
    s.tenant = tenant;
    s.id = id;
    s.customer = c.customer;
    s.plan = c.plan;
    s.plan_version = pv->version;
    s.quantity = c.quantity;
    s.currency = string{pv->currency.code()};
    s.payment_method = c.payment_method;
    s.interval = pv->interval;
    s.created_at = now;
    if (trial > 0) {
      s.trial_end = now.plus_seconds(int64_t{trial} * seconds_per_day);
      s.anchor = *s.trial_end;
      s.period = billing_period{now, *s.trial_end};
      return fire(trigger::create_with_trial, {{"trial_days", trial}});
    }
    s.anchor = now;
    auto anchor = make_billing_anchor(s.anchor, s.interval);
    if (!anchor)
      return anchor.error();
    s.period = period_at(*anchor, 0);
    return fire(trigger::create_without_trial);
  }

  status on_timer(const timer_record& t) {
    fired = t;
    w.timers_to_complete.push_back(t.id);
    if (t.owner != agg.sub.id.value) {
      // A saga's timer.
      auto* s = saga(t.owner);
      if (s == nullptr || !s->timer || s->timer->id != t.id)
        return {}; // stale: the saga moved on
      return feed(t.owner, saga_in::timer_fired{t.id});
    }
    auto& s = agg.sub;
    if (t.kind == "trial_end") {
      if (s.life.status != sub_status::trialing)
        return {};
      auto tr = s.payment_method.empty()
                  ? trigger::trial_end_without_payment_method
                  : trigger::trial_end_with_payment_method;
      // The first paid period starts at the trial's end.
      auto anchor = make_billing_anchor(s.anchor, s.interval);
      if (!anchor)
        return anchor.error();
      s.period = period_at(*anchor, 0);
      return fire(tr);
    }
    if (t.kind == "period_end") {
      if (t.due_at != s.period.end)
        return {}; // stale (an old period's timer)
      auto st = fire(trigger::period_end);
      if (!st && st.error().code == errc::invalid_transition)
        return {}; // e.g. canceled meanwhile
      return st;
    }
    if (t.kind == "incomplete_expiry") {
      if (s.life.status != sub_status::incomplete)
        return {};
      for (const auto& o : s.open_invoices)
        if (!o.collecting_saga.empty()) {
          // A charge of the first invoice is still in flight: look again
          // in an hour rather than void what may be paid.
          arm_lifecycle("incomplete_expiry", now.plus_seconds(seconds_per_hour));
          return {};
        }
      return fire(trigger::incomplete_expired);
    }
    return {};
  }

  status on_change_plan(const sub_in::change_plan& c) {
    if (c.quantity < 1)
      return make_error(errc::invalid_argument, "quantity must be >= 1");
    if (auto* pc = live("plan_change"))
      return make_error(errc::invalid_transition,
                        "a plan change is in progress: " + pc->id.value);
    auto to = env.plans->current(c.plan, now);
    if (!to)
      return to.error();
    if (to->currency != cur())
      return make_error(errc::currency_mismatch,
                        "plan " + c.plan.value + " is priced in another currency");
    if (!(to->interval == agg.sub.interval))
      return make_error(errc::invalid_argument,
                        "plan change across billing intervals is not supported");
    if (c.plan == agg.sub.plan && to->version == agg.sub.plan_version
        && c.quantity == agg.sub.quantity)
      return make_error(errc::invalid_argument, "already on that plan");
    if (auto st = fire(trigger::change_plan,
                       {{"plan", c.plan.value}, {"quantity", c.quantity}});
        !st)
      return st;
    auto inv = "inv_" + agg.sub.id.value + "_pc"
               + std::to_string(agg.sub.saga_seq + 1);
    return start_saga("plan_change",
                      {{"invoice", inv},
                       {"from_plan", agg.sub.plan.value},
                       {"from_version", std::to_string(agg.sub.plan_version)},
                       {"from_quantity", std::to_string(agg.sub.quantity)},
                       {"to_plan", c.plan.value},
                       {"to_version", std::to_string(to->version)},
                       {"to_quantity", std::to_string(c.quantity)}});
  }

  status on_pay(const sub_in::pay_invoice& p) {
    auto* o = find_open(p.invoice.value);
    if (o == nullptr)
      return make_error(errc::invalid_transition,
                        "invoice " + p.invoice.value + " is not open");
    if (!o->collecting_saga.empty())
      return make_error(errc::invalid_transition,
                        "a payment of " + p.invoice.value + " is in flight");
    if (auto* pay = live("payment"))
      return make_error(errc::invalid_transition,
                        "a payment is in progress: " + pay->id.value);
    return start_saga("payment", {{"invoice", p.invoice.value}});
  }

  status dispatch(const subscription_input& in, const tenant_id& tenant,
                  const subscription_id& id) {
    if (!std::holds_alternative<sub_in::create>(in)
        && !std::holds_alternative<sub_in::gateway_notice>(in) && !agg.exists())
      return make_error(errc::not_found, "no subscription " + id.value);
    return std::visit(
      [&](const auto& x) -> status {
        using T = std::decay_t<decltype(x)>;
        if constexpr (std::is_same_v<T, sub_in::create>) {
          return on_create(x, tenant, id);
        } else if constexpr (std::is_same_v<T, sub_in::cancel>) {
          return fire(x.at_period_end ? trigger::schedule_cancel_at_period_end
                                      : trigger::cancel_immediately);
        } else if constexpr (std::is_same_v<T, sub_in::uncancel>) {
          return fire(trigger::unschedule_cancel_at_period_end);
        } else if constexpr (std::is_same_v<T, sub_in::pause>) {
          return fire(trigger::pause);
        } else if constexpr (std::is_same_v<T, sub_in::resume>) {
          if (agg.sub.life.pause == pause_reason::trial_ended) {
            // Billing restarts now.
            agg.sub.anchor = now;
            auto anchor = make_billing_anchor(now, agg.sub.interval);
            if (!anchor)
              return anchor.error();
            agg.sub.period = period_at(*anchor, 0);
          }
          return fire(trigger::resume);
        } else if constexpr (std::is_same_v<T, sub_in::change_plan>) {
          return on_change_plan(x);
        } else if constexpr (std::is_same_v<T, sub_in::update_payment_method>) {
          if (x.token.empty() || x.token.size() > 255)
            return make_error(errc::invalid_argument,
                              "payment method token must be 1..255 bytes");
          if (agg.sub.life.status == sub_status::canceled)
            return make_error(errc::invalid_transition,
                              "subscription is canceled");
          agg.sub.payment_method = x.token;
          event("subscription.payment_method_updated", json::object());
          return {};
        } else if constexpr (std::is_same_v<T, sub_in::pay_invoice>) {
          return on_pay(x);
        } else if constexpr (std::is_same_v<T, sub_in::timer_due>) {
          if (!x.pending)
            return {}; // gone from the store: nothing to do or complete
          return on_timer(x.timer);
        } else if constexpr (std::is_same_v<T, sub_in::gateway_done>) {
          return on_gateway(x);
        } else if constexpr (std::is_same_v<T, sub_in::gateway_notice>) {
          return on_notice(x);
        } else if constexpr (std::is_same_v<T, sub_in::void_invoice>) {
          return on_void(x);
        } else if constexpr (std::is_same_v<T, sub_in::retry_saga>) {
          return on_retry_saga(x);
        } else {
          static_assert(std::is_same_v<T, sub_in::compensate_saga>);
          return on_compensate_saga(x);
        }
      },
      in);
  }

  // -- the unit of work -----------------------------------------------------

  void finish_work() {
    settle_lifecycle_cancel();
    // A fired timer is completed once, however many paths let go of it.
    std::set<string> seen;
    std::erase_if(w.timers_to_complete,
                  [&](const string& id) { return !seen.insert(id).second; });
    // Sagas: one insert or one update each, whatever number of decisions.
    auto persist = [&](saga_state& s) {
      if (new_sagas.contains(s.id.value)) {
        s.version = 1;
        w.new_sagas.push_back(to_record(s));
      } else {
        auto stored = before.sagas.find(s.id.value);
        RECUR_ASSERT(stored != before.sagas.end());
        s.version = stored->second.version + 1;
        w.saga_updates.push_back(to_update(s));
      }
    };
    for (const auto& id : touched) {
      if (auto it = agg.sagas.find(id); it != agg.sagas.end())
        persist(it->second);
      else if (auto f = finished.find(id); f != finished.end())
        persist(f->second);
    }
    // Saga log seq is assigned per saga by the store in list order.
    std::stable_sort(w.saga_steps.begin(), w.saga_steps.end(),
                     [](const auto& a, const auto& b) {
                       return a.saga.value < b.saga.value;
                     });
    bool changed = !(agg.sub == before.sub);
    if (events.empty() && changed)
      event("subscription.updated");
    if (events.empty())
      return;
    auto& s = agg.sub;
    auto v0 = before.sub.version;
    s.updated_at = now;
    s.version = v0 + static_cast<int64_t>(events.size());
    auto state = to_json(s);
    event_append app{s.id, v0, {}};
    int64_t seq = v0;
    for (auto& [type, detail] : events) {
      ++seq;
      // {"detail":…,"state":…} without re-parsing the state text.
      string payload;
      auto detail_text = detail.dump();
      payload.reserve(detail_text.size() + state.size() + 22);
      payload.append("{\"detail\":").append(detail_text)
        .append(",\"state\":").append(state).append("}");
      app.events.push_back(new_event{type, std::move(payload), now});
      if (type != "subscription.updated") {
        detail["status"] = to_string(s.life.status);
        outbox(s.id.value + "/" + std::to_string(seq), type, detail);
      }
    }
    w.events.push_back(std::move(app));
    if (snapshot_policy{}.due(v0, s.version))
      w.snapshots.push_back(snapshot_record{s.id, s.version, state, now});
    w.subscriptions.push_back(subscription_row{
      s.id, s.customer, s.plan, string{to_string(s.life.status)}, s.version,
      state, now}); // a copy: exactly its size (the text's reserve may
                    // have doubled), which the store keeps
  }
};

} // namespace

result<saga_definition> saga_definition_for(const std::string& type,
                                            const subscription_state& sub,
                                            const billing_env& env) {
  std::map<std::string, std::string> data;
  if (type == "dunning")
    data["steps"] = dunning_steps(
      env.ladder ? *env.ladder
                 : default_dunning_ladder(currency::of(sub.currency)));
  auto def = definition_by(type, data);
  if (!def)
    return def.error();
  return **def;
}

result<subscription_decision> handle(const subscription_aggregate& current,
                                     const tenant_id& tenant,
                                     const subscription_id& id,
                                     const subscription_input& input,
                                     const billing_env& env, instant now,
                                     rng& gen) {
  RECUR_ASSERT(env.plans != nullptr);
  run r{env, now, gen, current, current, {}, {}, {}, {}, {}, {}, 0, {}, {}, {}, {}};
  r.w.tenant = tenant;
  if (auto st = r.dispatch(input, tenant, id); !st)
    return st.error();
  r.finish_work();
  return subscription_decision{std::move(r.agg), std::move(r.w),
                               std::move(r.calls), std::move(r.touched)};
}

std::vector<gateway_call_request>
resume_calls(const subscription_aggregate& agg, const billing_env& env) {
  (void)env;
  std::vector<gateway_call_request> out;
  for (const auto& [id, s] : agg.sagas) {
    auto def = definition_of(s);
    if (!def)
      continue;
    for (const auto& c : resume(**def, s)) {
      if (auto* a = std::get_if<saga_cmd::execute_action>(&c)) {
        auto [name, day] = split_at(a->name);
        (void)day;
        if (name == "charge" || name == "retry_payment") {
          if (data_or(s, "charge_exec_key") != a->idempotency_key)
            continue; // never issued: the executor re-runs it
          out.push_back(charge_call(agg.sub, s, a->step, a->idempotency_key,
                                    gateway_call_request::op::resolve));
        } else if (name == "refund_credit") {
          out.push_back(refund_call(agg.sub, s, a->step, a->idempotency_key,
                                    data_or(s, "credit_charge"),
                                    to_i64(data_or(s, "credit_total", "0"))));
        }
      } else if (auto* k = std::get_if<saga_cmd::execute_compensation>(&c)) {
        if (k->name == "refund_charge" && data_or(s, "collected") == "1"
            && !data_or(s, "charge_id").empty()) {
          out.push_back(refund_call(agg.sub, s, k->step, k->idempotency_key,
                                    data_or(s, "charge_id"),
                                    to_i64(data_or(s, "charge_amount"))));
        }
      }
    }
  }
  return out;
}

} // namespace recur
