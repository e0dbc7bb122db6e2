#include "gateways/sandbox_gateway.hpp"

#include <charconv>
#include <deque>
#include <map>
#include <mutex>
#include <optional>
#include <unordered_map>
#include <utility>

#include "domain/flat_index.hpp"
#include "workflows/retry_policy.hpp"

namespace recur {

namespace {

// -- payment method tokens ----------------------------------------------------

/// What a token makes the sandbox do.
enum class behaviour : std::uint8_t {
  succeed,
  decline,
  lose_request,       // pm_sandbox_timeout
  charge_lose_answer, // pm_sandbox_timeout_after_charge
  settle_succeeded,   // pm_sandbox_async
  settle_declined,    // pm_sandbox_async_fail
  flaky,              // pm_sandbox_flaky_N
  unknown_method,
};

struct method_row {
  std::string_view token;
  behaviour what;
  std::string_view decline_code;
};

using enum behaviour;

// Stripe's test PaymentMethods (docs.stripe.com/testing) and our fault tokens.
// clang-format off
constexpr method_row method_table[] = {
  // token                                          behaviour           decline code
  {"pm_card_visa",                                  succeed,            ""},
  {"pm_card_visa_debit",                            succeed,            ""},
  {"pm_card_mastercard",                            succeed,            ""},
  {"pm_card_amex",                                  succeed,            ""},
  {"pm_card_discover",                              succeed,            ""},
  {"pm_card_chargeDeclined",                        decline,            "generic_decline"},
  {"pm_card_chargeDeclinedInsufficientFunds",       decline,            "insufficient_funds"},
  {"pm_card_chargeDeclinedProcessingError",         decline,            "processing_error"},
  {"pm_card_chargeDeclinedVelocityLimitExceeded",   decline,            "card_velocity_exceeded"},
  {"pm_card_chargeDeclinedExpiredCard",             decline,            "expired_card"},
  {"pm_card_chargeDeclinedIncorrectCvc",            decline,            "incorrect_cvc"},
  {"pm_card_chargeDeclinedFraudulent",              decline,            "fraudulent"},
  {"pm_card_chargeDeclinedLostCard",                decline,            "lost_card"},
  {"pm_card_chargeDeclinedStolenCard",              decline,            "stolen_card"},
  {"pm_sandbox_timeout",                            lose_request,       ""},
  {"pm_sandbox_timeout_after_charge",               charge_lose_answer, ""},
  {"pm_sandbox_async",                              settle_succeeded,   ""},
  {"pm_sandbox_async_fail",                         settle_declined,    "insufficient_funds"},
};
// clang-format on

constexpr std::string_view flaky_prefix = "pm_sandbox_flaky_";
constexpr std::string_view unknown_method_code = "resource_missing";
constexpr std::string_view transient_decline_code = "processing_error";

struct method_plan {
  behaviour what = unknown_method;
  std::string_view decline_code = unknown_method_code;
  std::int64_t flaky_n = 0;
};

method_plan plan_for(std::string_view token) {
  for (const method_row& r : method_table) {
    if (r.token == token)
      return {r.what, r.decline_code, 0};
  }
  if (token.starts_with(flaky_prefix)) {
    const std::string_view digits = token.substr(flaky_prefix.size());
    std::int64_t n = 0;
    const auto [end, ec] = std::from_chars(digits.data(),
                                           digits.data() + digits.size(), n);
    if (ec == std::errc{} && end == digits.data() + digits.size() && n >= 1
        && n <= sandbox_flaky_n_max && digits.front() != '0')
      return {flaky, transient_decline_code, n};
  }
  return {};
}

// -- requests -----------------------------------------------------------------

status check_key(const std::string& key) {
  if (key.empty())
    return make_error(errc::invalid_argument, "idempotency key is empty");
  if (key.size() > idempotency_key_size_max)
    return make_error(errc::invalid_argument,
                      "idempotency key is longer than 255 characters");
  return {};
}

status check(const charge_request& req) {
  if (auto s = check_key(req.idempotency_key); !s)
    return s;
  if (req.payment_method.empty())
    return make_error(errc::invalid_argument, "payment method is empty");
  if (!req.amount.is_positive())
    return make_error(errc::invalid_argument, "charge amount must be positive");
  return {};
}

status check(const refund_request& req) {
  if (auto s = check_key(req.idempotency_key); !s)
    return s;
  if (!req.amount.is_positive())
    return make_error(errc::invalid_argument, "refund amount must be positive");
  return {};
}

error conflict(const std::string& key) {
  return make_error(errc::idempotency_conflict,
                    "idempotency key '" + key
                      + "' was used for a different request");
}

charge_result declined(std::string charge_id, std::string_view code,
                       decline_class cls) {
  return {charge_status::declined, std::move(charge_id), std::string{code},
          cls};
}

/// The seeded faults of one charge call: always exactly four draws.
struct fault_draws {
  bool lose_request;
  bool lose_answer;
  bool decline_soft;
  bool pending;
};

} // namespace

// -- state --------------------------------------------------------------------

struct sandbox_gateway::state {
  struct charge_entry {
    charge_request request;
    charge_result first;      // the answer the gateway produced: replays get it
    charge_result current;    // what retrieve tells
    charge_result settles_to; // for a pending charge
    instant created;
    std::int64_t refunded_minor = 0;
    std::int64_t collections = 0;
  };

  struct refund_entry {
    refund_request request;
    refund_result answer;
    instant created;
  };

  /// Due order; ties broken by the order they were caused.
  using due_key = std::pair<instant, std::uint64_t>;

  state(const clock& c, std::uint64_t seed, sandbox_config conf)
    : clk(c), gen(seed), config(conf) {}

  const clock& clk;
  rng gen;
  sandbox_config config;
  mutable std::mutex mu;
  bool available = true;

  // Deques: they grow without moving (or touching twice) what they hold.
  std::deque<charge_entry> charges;
  struct charge_key {
    std::string_view operator()(const charge_entry& e) const {
      return e.request.idempotency_key;
    }
  };
  /// Charges by idempotency key (the entries stay put in the deque). A
  /// charge's id is "ch_sbx_<its place in `charges` + 1>": see index_of.
  flat_index<charge_entry, charge_key> charge_by_key;

  /// The place in `charges` of the charge with id `id`, if there is one.
  std::optional<std::size_t> index_of(std::string_view id) const {
    constexpr std::string_view prefix = "ch_sbx_";
    if (!id.starts_with(prefix))
      return std::nullopt;
    const std::string_view digits = id.substr(prefix.size());
    std::size_t n = 0;
    const auto [end, ec]
      = std::from_chars(digits.data(), digits.data() + digits.size(), n);
    // No leading zero: each id has one spelling (and "ch_sbx_0" none).
    if (ec != std::errc{} || end != digits.data() + digits.size()
        || digits.front() == '0' || n > charges.size())
      return std::nullopt;
    return n - 1;
  }
  std::deque<refund_entry> refunds;
  std::unordered_map<std::string, std::size_t> refund_by_key;
  /// Fresh attempts per tenant + customer + flaky token.
  std::unordered_map<std::string, std::int64_t> flaky_attempts;

  std::map<due_key, std::size_t> settlements; // -> index into charges
  std::map<due_key, gateway_event> events;    // id assigned when polled

  std::uint64_t next_seq = 1;
  std::uint64_t next_event = 1;

  // -- helpers (mu held) ------------------------------------------------------

  fault_draws draw() {
    // Four draws, always, in this order: see sandbox_config.
    const bool a = gen.chance_ppm(config.timeout_ppm);
    const bool b = gen.chance_ppm(config.timeout_after_commit_ppm);
    const bool c = gen.chance_ppm(config.decline_soft_ppm);
    const bool d = gen.chance_ppm(config.pending_ppm);
    return {a, b, c, d};
  }

  void collect(charge_entry& e) {
    ++e.collections;
    RECUR_ASSERT(e.collections == 1);
  }

  void emit(instant due, std::string type, const charge_entry& e,
            std::string key, money amount) {
    RECUR_ASSERT(events.size() < sandbox_queued_events_max);
    gateway_event ev{
      .id = {},
      .type = std::move(type),
      .tenant = e.request.tenant,
      .idempotency_key = std::move(key),
      .charge_id = e.current.charge_id,
      .amount = amount,
      .decline_code = e.current.status == charge_status::declined
                        ? e.current.decline_code
                        : std::string{},
      .created = due,
    };
    events.emplace(due_key{due, next_seq++}, std::move(ev));
  }

  void emit_final(instant due, const charge_entry& e) {
    const bool ok = e.current.status == charge_status::succeeded;
    emit(due, ok ? "payment_intent.succeeded" : "payment_intent.payment_failed",
         e, e.request.idempotency_key, e.request.amount);
  }

  void settle_due(instant now) {
    while (!settlements.empty() && settlements.begin()->first.first <= now) {
      const auto [key, index] = *settlements.begin();
      settlements.erase(settlements.begin());
      charge_entry& e = charges[index];
      RECUR_ASSERT(e.current.status == charge_status::pending);
      e.current = e.settles_to;
      if (e.current.status == charge_status::succeeded)
        collect(e);
      emit_final(key.first, e);
    }
  }

  /// The outcome of a fresh charge, before faults that lose the answer.
  /// nullopt: the token says the request is never processed.
  std::optional<charge_result>
  decide(const charge_request& req, const method_plan& p, const fault_draws& f,
         std::string charge_id, charge_result& settles_to) {
    charge_result ok{charge_status::succeeded, charge_id, {}, {}};
    charge_result pending{charge_status::pending, charge_id, {}, {}};
    auto plain_success = [&]() -> charge_result {
      if (f.decline_soft)
        return declined(charge_id, transient_decline_code,
                        classify_decline(transient_decline_code));
      if (f.pending) {
        settles_to = ok;
        return pending;
      }
      return ok;
    };
    switch (p.what) {
      case succeed:
        return plain_success();
      case decline:
        return declined(charge_id, p.decline_code,
                        classify_decline(p.decline_code));
      case lose_request:
        return std::nullopt;
      case charge_lose_answer:
        return ok;
      case settle_succeeded:
        settles_to = ok;
        return pending;
      case settle_declined:
        settles_to = declined(charge_id, p.decline_code,
                              classify_decline(p.decline_code));
        return pending;
      case flaky: {
        const std::string who = req.tenant.value + '\x1f' + req.customer.value
                                + '\x1f' + req.payment_method;
        if (++flaky_attempts[who] <= p.flaky_n)
          return declined(charge_id, p.decline_code,
                          classify_decline(p.decline_code));
        return plain_success();
      }
      case unknown_method:
        return declined(charge_id, p.decline_code, decline_class::hard);
    }
    RECUR_ASSERT(false);
    return std::nullopt;
  }

  /// Processes a charge under a key the gateway has not seen and returns what
  /// the caller hears: `unknown` when the request or the answer is lost.
  charge_result process(const charge_request& req, const fault_draws& f) {
    RECUR_ASSERT(charges.size() < sandbox_charges_max);
    const method_plan plan = plan_for(req.payment_method);
    std::string charge_id = "ch_sbx_" + std::to_string(charges.size() + 1);
    charge_result settles_to;
    auto answer = decide(req, plan, f, charge_id, settles_to);
    if (!answer)
      return {};
    const instant now = clk.now();
    const std::size_t index = charges.size();
    charges.push_back({req, *answer, *answer, settles_to, now, 0, 0});
    charge_entry& e = charges.back();
    charge_by_key.insert(e); // a fresh key: charge() looked it up
    RECUR_ASSERT(index_of(charge_id) == index);
    // A lost answer is always announced: the webhook may be all that tells.
    const bool answer_lost = f.lose_answer || plan.what == charge_lose_answer;
    switch (answer->status) {
      case charge_status::succeeded:
        collect(e);
        [[fallthrough]];
      case charge_status::declined:
        if (config.events_for_sync_outcomes || answer_lost)
          emit_final(now, e);
        break;
      case charge_status::pending:
        settlements.emplace(
          due_key{now.plus_seconds(config.settle_delay_s), next_seq++}, index);
        break;
      case charge_status::unknown:
        RECUR_ASSERT(false);
    }
    return answer_lost ? charge_result{} : *answer;
  }

  /// Checks every refund rule against the charge; the refund's own key has
  /// been checked already. The charge's place in `charges` when it passes.
  result<std::size_t> refundable(const refund_request& req) const {
    const auto at = index_of(req.charge_id);
    if (!at)
      return make_error(errc::not_found, "no charge '" + req.charge_id + "'");
    const charge_entry& e = charges[*at];
    if (e.current.status != charge_status::succeeded)
      return make_error(errc::invalid_transition,
                        "charge '" + req.charge_id + "' is "
                          + std::string{to_string(e.current.status)}
                          + ", not succeeded");
    if (!(req.amount.currency() == e.request.amount.currency()))
      return make_error(errc::currency_mismatch,
                        "refund in " + std::string{req.amount.currency().code()}
                          + " of a charge in "
                          + std::string{e.request.amount.currency().code()});
    const std::int64_t left = e.request.amount.amount_minor()
                              - e.refunded_minor;
    if (req.amount.amount_minor() > left)
      return make_error(errc::invalid_argument,
                        "refund of " + req.amount.to_display() + " exceeds the "
                          + money{left, req.amount.currency()}.to_display()
                          + " still unrefunded");
    return *at;
  }
};

// -- configuration ------------------------------------------------------------

status validate(const sandbox_config& c) {
  auto bad = [](const char* what) {
    return make_error(errc::invalid_argument, what);
  };
  if (c.timeout_ppm > ppm_max)
    return bad("timeout_ppm must be <= 1000000");
  if (c.timeout_after_commit_ppm > ppm_max)
    return bad("timeout_after_commit_ppm must be <= 1000000");
  if (c.decline_soft_ppm > ppm_max)
    return bad("decline_soft_ppm must be <= 1000000");
  if (c.pending_ppm > ppm_max)
    return bad("pending_ppm must be <= 1000000");
  if (c.settle_delay_s < 0 || c.settle_delay_s > settle_delay_s_max)
    return bad("settle_delay_s must be in [0, 30 days]");
  return {};
}

// -- construction -------------------------------------------------------------

sandbox_gateway::sandbox_gateway(const clock& clk, std::uint64_t seed,
                                 sandbox_config config) {
  RECUR_ASSERT(validate(config).has_value());
  state_ = std::make_unique<state>(clk, seed, config);
}

sandbox_gateway::~sandbox_gateway() = default;

// -- payment_gateway ----------------------------------------------------------

result<charge_result> sandbox_gateway::charge(const charge_request& req) {
  if (auto s = check(req); !s)
    return s.error();
  std::lock_guard guard{state_->mu};
  state& st = *state_;
  if (!st.available)
    return make_error(errc::unavailable, "sandbox gateway is unavailable");
  st.settle_due(st.clk.now());
  const fault_draws f = st.draw();
  if (f.lose_request)
    return charge_result{};
  if (st.refund_by_key.contains(req.idempotency_key))
    return conflict(req.idempotency_key);
  if (const auto* found = st.charge_by_key.find(req.idempotency_key)) {
    const auto& e = *found;
    if (!(e.request == req))
      return conflict(req.idempotency_key);
    return f.lose_answer ? charge_result{} : e.first;
  }
  return st.process(req, f);
}

result<charge_result>
sandbox_gateway::retrieve(const std::string& idempotency_key) {
  std::lock_guard guard{state_->mu};
  state& st = *state_;
  if (!st.available)
    return make_error(errc::unavailable, "sandbox gateway is unavailable");
  st.settle_due(st.clk.now());
  const auto* found = st.charge_by_key.find(idempotency_key);
  if (found == nullptr)
    return make_error(errc::not_found, "no charge with idempotency key '"
                                         + idempotency_key + "'");
  return found->current;
}

result<refund_result> sandbox_gateway::refund(const refund_request& req) {
  if (auto s = check(req); !s)
    return s.error();
  std::lock_guard guard{state_->mu};
  state& st = *state_;
  if (!st.available)
    return make_error(errc::unavailable, "sandbox gateway is unavailable");
  const instant now = st.clk.now();
  st.settle_due(now);
  if (st.charge_by_key.contains(req.idempotency_key))
    return conflict(req.idempotency_key);
  if (auto it = st.refund_by_key.find(req.idempotency_key);
      it != st.refund_by_key.end()) {
    const auto& r = st.refunds[it->second];
    if (!(r.request == req))
      return conflict(req.idempotency_key);
    return r.answer;
  }
  const auto at = st.refundable(req);
  if (!at)
    return at.error();
  RECUR_ASSERT(st.refunds.size() < sandbox_refunds_max);
  auto& charge = st.charges[*at];
  charge.refunded_minor += req.amount.amount_minor();
  refund_result answer{"re_sbx_" + std::to_string(st.refunds.size() + 1),
                       req.amount};
  st.refund_by_key.emplace(req.idempotency_key, st.refunds.size());
  st.refunds.push_back({req, answer, now});
  st.emit(now, "charge.refunded", charge, req.idempotency_key, req.amount);
  return answer;
}

// -- asynchronous events ------------------------------------------------------

std::vector<gateway_event> sandbox_gateway::poll_events(instant now) {
  std::lock_guard guard{state_->mu};
  state& st = *state_;
  st.settle_due(now);
  std::vector<gateway_event> out;
  while (!st.events.empty() && st.events.begin()->first.first <= now) {
    auto node = st.events.extract(st.events.begin());
    node.mapped().id = "evt_sbx_" + std::to_string(st.next_event++);
    out.push_back(std::move(node.mapped()));
  }
  return out;
}

// -- fault control ------------------------------------------------------------

void sandbox_gateway::set_available(bool available) {
  std::lock_guard guard{state_->mu};
  state_->available = available;
}

// -- inspection ---------------------------------------------------------------

std::int64_t sandbox_gateway::times_collected(const std::string& key) const {
  std::lock_guard guard{state_->mu};
  const auto* found = state_->charge_by_key.find(key);
  return found == nullptr ? 0 : found->collections;
}

std::vector<charge_record> sandbox_gateway::charges() const {
  std::lock_guard guard{state_->mu};
  std::vector<charge_record> out;
  out.reserve(state_->charges.size());
  for (const auto& e : state_->charges) {
    const money& amount = e.request.amount;
    out.push_back({
      .idempotency_key = e.request.idempotency_key,
      .tenant = e.request.tenant,
      .customer = e.request.customer,
      .payment_method = e.request.payment_method,
      .amount = amount,
      .status = e.current.status,
      .charge_id = e.current.charge_id,
      .decline_code = e.current.decline_code,
      .created = e.created,
      .refunded = money{e.refunded_minor, amount.currency()},
      .times_collected = e.collections,
    });
  }
  return out;
}

std::vector<refund_record> sandbox_gateway::refunds() const {
  std::lock_guard guard{state_->mu};
  std::vector<refund_record> out;
  out.reserve(state_->refunds.size());
  for (const auto& r : state_->refunds)
    out.push_back({r.request.idempotency_key, r.request.charge_id,
                   r.answer.refund_id, r.answer.amount, r.created});
  return out;
}

money sandbox_gateway::total_collected(const currency& cur) const {
  std::lock_guard guard{state_->mu};
  money total = money::zero(cur);
  for (const auto& e : state_->charges) {
    if (e.collections > 0 && e.request.amount.currency() == cur) {
      auto next = total.plus(e.request.amount);
      RECUR_ASSERT(next.has_value());
      total = *next;
    }
  }
  return total;
}

money sandbox_gateway::total_refunded(const currency& cur) const {
  std::lock_guard guard{state_->mu};
  money total = money::zero(cur);
  for (const auto& r : state_->refunds) {
    if (r.answer.amount.currency() == cur) {
      auto next = total.plus(r.answer.amount);
      RECUR_ASSERT(next.has_value());
      total = *next;
    }
  }
  return total;
}

} // namespace recur
