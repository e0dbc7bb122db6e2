// recur-gateway-sim's REST mapping (Stripe's shapes, as stripe_gateway.cpp
// reads them), its webhook pump and its command line.
//
// Stripe's answers, per sandbox outcome (stripe_gateway.hpp maps them back):
//   succeeded / pending  → 200 PaymentIntent, status succeeded / processing
//   declined             → 402 card_error (code or decline_code = the
//                          sandbox's code, payment_intent attached), except
//                          resource_missing: 400 invalid_request_error
//   unknown (timeout)    → 500 api_error (Stripe's "may or may not have
//                          happened"; the charge is resolved by search)
//   idempotency_conflict → 400 idempotency_error
//   invalid_argument     → 400 invalid_request_error
//   unavailable (outage) → 503 api_error

#include "api/gateway_sim.hpp"

#include <charconv>
#include <map>
#include <mutex>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>

#include "api/router.hpp"

namespace recur::api {

namespace {

using ojson = nlohmann::ordered_json;

error bad(std::string detail) {
  return make_error(errc::invalid_argument, std::move(detail));
}

std::string lower(std::string_view s) {
  std::string out{s};
  for (char& c : out)
    c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

std::string upper(std::string_view s) {
  std::string out{s};
  for (char& c : out)
    c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  return out;
}

http_response stripe_json(unsigned status, const ojson& body) {
  return http_response{status, "application/json", body.dump(), {}};
}

/// Stripe's error body: {"error": {type, code?, decline_code?, message, …}}.
http_response stripe_error(unsigned status, std::string_view type,
                           std::string_view code, std::string message,
                           ojson extra = ojson::object()) {
  ojson e = {{"type", type}};
  if (!code.empty())
    e["code"] = code;
  e["message"] = std::move(message);
  for (auto& [k, v] : extra.items())
    e[k] = v;
  return stripe_json(status, {{"error", std::move(e)}});
}

http_response from_error(const error& e) {
  switch (e.code) {
    case errc::idempotency_conflict:
      return stripe_error(400, "idempotency_error", {},
                          "Keys for idempotent requests can only be used with "
                          "the same parameters they were first used with: "
                            + e.detail);
    case errc::not_found:
      return stripe_error(404, "invalid_request_error", "resource_missing",
                          e.detail);
    case errc::invalid_transition:
      return stripe_error(400, "invalid_request_error",
                          "payment_intent_unexpected_state", e.detail);
    case errc::unavailable:
      return stripe_error(503, "api_error", {}, e.detail);
    default:
      return stripe_error(400, "invalid_request_error", {}, e.detail);
  }
}

std::optional<std::int64_t> parse_int(std::string_view s) {
  std::int64_t n = 0;
  const auto* end = s.data() + s.size();
  const auto [ptr, ec] = std::from_chars(s.data(), end, n);
  if (ec != std::errc{} || ptr != end)
    return std::nullopt;
  return n;
}

/// The value of metadata['idempotency_key']:'K' (Stripe's search syntax, with
/// \' and \\ escapes), or nullopt for any other query.
std::optional<std::string> searched_key(std::string_view query) {
  constexpr std::string_view head = "metadata['idempotency_key']:'";
  if (!query.starts_with(head) || query.size() < head.size() + 1
      || query.back() != '\'')
    return std::nullopt;
  const auto inner = query.substr(head.size(), query.size() - head.size() - 1);
  std::string out;
  for (std::size_t i = 0; i < inner.size(); ++i) {
    char c = inner[i];
    if (c == '\\') {
      if (++i == inner.size())
        return std::nullopt;
      c = inner[i];
    } else if (c == '\'') {
      return std::nullopt;
    }
    out += c;
  }
  return out;
}

/// What the sim remembers of a charge it processed (the sandbox keeps the
/// outcome; Stripe's answers also show the request).
struct charge_info {
  charge_request request;
  instant created;
};

/// Codes Stripe reports as the error's code (no decline_code).
bool is_error_code_decline(std::string_view code) {
  return code == "expired_card" || code == "incorrect_cvc"
         || code == "processing_error" || code == "incorrect_number";
}

// The key's length is not secret; its bytes are compared in constant time.
bool constant_time_equal(std::string_view a, std::string_view b) {
  if (a.size() != b.size())
    return false;
  unsigned char diff = 0;
  for (std::size_t i = 0; i < a.size(); ++i)
    diff |= static_cast<unsigned char>(a[i] ^ b[i]);
  return diff == 0;
}

} // namespace

// -- ids ----------------------------------------------------------------------

std::string payment_intent_id_of(std::string_view charge_id) {
  return charge_id.starts_with("ch_") ? "pi_" + std::string{charge_id.substr(3)}
                                      : std::string{charge_id};
}

std::string charge_id_of(std::string_view payment_intent_id) {
  return payment_intent_id.starts_with("pi_")
           ? "ch_" + std::string{payment_intent_id.substr(3)}
           : std::string{payment_intent_id};
}

// -- configuration ------------------------------------------------------------

namespace {

sandbox_pump_config pump_config_of(const gateway_sim_config& c) {
  sandbox_pump_config p;
  p.webhooks.url = c.webhook_url;
  p.webhooks.secret = c.webhook_secret;
  p.webhooks.seed = c.seed;
  p.webhooks.duplicate_ppm = c.duplicate_ppm;
  p.webhooks.reorder_ppm = c.reorder_ppm;
  p.webhooks.forge_ppm = c.forge_ppm;
  p.webhooks.delay_s = c.delay_s;
  p.webhooks.delay_jitter_s = c.delay_jitter_s;
  p.interval = c.pump_interval;
  p.event_id_prefix = c.event_id_prefix;
  p.rewrite = [](gateway_event& e) {
    e.charge_id = payment_intent_id_of(e.charge_id);
  };
  return p;
}

} // namespace

status validate(const gateway_sim_config& c) {
  if (c.api_key.empty() || c.api_key.size() > 256)
    return bad("api_key: must be 1..256 characters");
  for (const char ch : c.api_key)
    if (ch < 0x21 || ch > 0x7e)
      return bad("api_key: must be printable ASCII without spaces");
  if (auto st = validate(c.sandbox); !st)
    return bad("sandbox: " + st.error().detail);
  if (c.form_fields_max == 0)
    return bad("form_fields_max: must be positive");
  for (const char ch : c.event_id_prefix)
    if (!std::isalnum(static_cast<unsigned char>(ch)))
      return bad("event_id_prefix: letters and digits only");
  if (c.webhook_url.empty())
    return {};
  if (c.webhook_secret.empty())
    return bad("webhook_secret: required with a webhook URL");
  return validate(pump_config_of(c));
}

// -- the service --------------------------------------------------------------

struct gateway_sim::impl {
  impl(gateway_sim_config c, const clock& k)
    : config(std::move(c)),
      clk(k),
      pool(sandbox_pool_config{&k, nullptr, config.seed, config.sandbox}) {
    add_routes();
  }

  void add_routes() {
    auto add = [this](std::string method, std::string pattern,
                      http_response (impl::*fn)(request_context&)) {
      routes.add(
        route{std::move(method), std::move(pattern), auth_kind::none,
              [this, fn](request_context& ctx) { return (this->*fn)(ctx); },
              route_doc{}, false, nullptr});
    };
    add("POST", "/v1/payment_intents", &impl::create_payment_intent);
    add("GET", "/v1/payment_intents/search", &impl::search_payment_intents);
    add("POST", "/v1/refunds", &impl::create_refund);
    add("GET", "/sim/charges", &impl::list_charges);
  }

  http_response handle(const http_request& req) {
    if (req.path() == "/healthz")
      return stripe_json(200, {{"ok", true}});
    const auto auth = req.header("Authorization");
    if (!auth.starts_with("Bearer ")
        || !constant_time_equal(auth.substr(7), config.api_key))
      return stripe_error(401, "invalid_request_error", {},
                          "Invalid API Key provided");
    const auto m = routes.match(req.method, req.path());
    if (m.found == nullptr)
      return stripe_error(404, "invalid_request_error", {},
                          "Unrecognized request URL (" + req.method + ": "
                            + std::string{req.path()}
                            + "): the simulator speaks a subset of Stripe's "
                              "API (see recur-gateway-sim --help)");
    auto query = parse_query(req.target, config.form_fields_max);
    if (!query)
      return stripe_error(400, "invalid_request_error", {},
                          "malformed query string");
    request_context ctx{req, m.path_params, std::move(*query), std::nullopt,
                        clk.now()};
    return m.found->handler(ctx);
  }

  // -- the PaymentIntent ------------------------------------------------------

  ojson payment_intent(const charge_result& r, const charge_info* info) {
    ojson pi = {{"id", payment_intent_id_of(r.charge_id)},
                {"object", "payment_intent"}};
    if (info != nullptr) {
      const auto& q = info->request;
      pi["amount"] = q.amount.amount_minor();
      pi["currency"] = lower(q.amount.currency().code());
      pi["created"] = info->created.unix_s;
      pi["customer"] = q.customer.empty() ? ojson(nullptr)
                                          : ojson(q.customer.value);
      pi["description"] = q.description.empty() ? ojson(nullptr)
                                                : ojson(q.description);
      pi["payment_method"] = q.payment_method;
      pi["metadata"] = {{"idempotency_key", q.idempotency_key},
                        {"tenant_id", q.tenant.value}};
    }
    pi["livemode"] = false;
    switch (r.status) {
      case charge_status::succeeded:
        pi["status"] = "succeeded";
        break;
      case charge_status::pending:
      case charge_status::unknown:
        pi["status"] = "processing";
        break;
      case charge_status::declined: {
        pi["status"] = "requires_payment_method";
        ojson err = {{"type", "card_error"}};
        if (is_error_code_decline(r.decline_code)) {
          err["code"] = r.decline_code;
        } else {
          err["code"] = "card_declined";
          err["decline_code"] = r.decline_code;
        }
        err["message"] = "Your card was declined.";
        pi["last_payment_error"] = std::move(err);
        break;
      }
    }
    return pi;
  }

  std::optional<charge_info> info_of_key(const std::string& key) {
    std::lock_guard lock{mutex};
    auto it = charges.find(key);
    if (it == charges.end())
      return std::nullopt;
    return it->second;
  }

  std::optional<std::string> key_of_charge(const std::string& charge_id) {
    std::lock_guard lock{mutex};
    auto it = charge_keys.find(charge_id);
    if (it == charge_keys.end())
      return std::nullopt;
    return it->second;
  }

  void remember(const charge_request& q, const charge_result& r) {
    if (r.charge_id.empty())
      return; // never processed (a lost request)
    std::lock_guard lock{mutex};
    if (charges.size() >= sandbox_charges_max)
      return;
    charges.try_emplace(q.idempotency_key, charge_info{q, clk.now()});
    charge_keys.try_emplace(r.charge_id, q.idempotency_key);
  }

  // -- POST /v1/payment_intents -----------------------------------------------

  std::optional<param_list> form(const request_context& ctx) {
    return parse_query("?" + ctx.req.body, config.form_fields_max);
  }

  static std::string field(const param_list& f, std::string_view name) {
    for (const auto& [k, v] : f)
      if (k == name)
        return v;
    return {};
  }

  http_response create_payment_intent(request_context& ctx) {
    auto f = form(ctx);
    if (!f)
      return stripe_error(400, "invalid_request_error", {},
                          "malformed form body (or more than "
                            + std::to_string(config.form_fields_max)
                            + " fields)");
    const std::string key{ctx.req.header("Idempotency-Key")};
    if (key.empty())
      return stripe_error(400, "invalid_request_error", {},
                          "the simulator needs an Idempotency-Key header");
    if (field(*f, "confirm") != "true")
      return stripe_error(400, "invalid_request_error", "parameter_missing",
                          "the simulator only creates confirmed "
                          "PaymentIntents (confirm=true)",
                          {{"param", "confirm"}});
    const auto amount = parse_int(field(*f, "amount"));
    if (!amount || *amount <= 0)
      return stripe_error(400, "invalid_request_error",
                          "parameter_invalid_integer",
                          "amount must be a positive integer",
                          {{"param", "amount"}});
    const auto cur = currency::from_code(upper(field(*f, "currency")));
    if (!cur)
      return stripe_error(400, "invalid_request_error", "parameter_invalid",
                          "unknown currency", {{"param", "currency"}});
    const charge_request q{key,
                           tenant_id{field(*f, "metadata[tenant_id]")},
                           customer_id{field(*f, "customer")},
                           field(*f, "payment_method"),
                           money{*amount, *cur},
                           field(*f, "description")};
    auto r = sandbox().charge(q);
    if (!r)
      return from_error(r.error());
    remember(q, *r);
    const auto info = info_of_key(key);
    const charge_info* ip = info ? &*info : nullptr;
    switch (r->status) {
      case charge_status::succeeded:
      case charge_status::pending:
        return stripe_json(200, payment_intent(*r, ip));
      case charge_status::unknown:
        return stripe_error(500, "api_error", {},
                            "An unknown error occurred (the simulator lost "
                            "this answer: search by idempotency key)");
      case charge_status::declined:
        break;
    }
    if (r->decline_code == "resource_missing")
      return stripe_error(400, "invalid_request_error", "resource_missing",
                          "No such PaymentMethod: '" + q.payment_method + "'",
                          {{"param", "payment_method"}});
    ojson extra = ojson::object();
    if (!is_error_code_decline(r->decline_code))
      extra["decline_code"] = r->decline_code;
    extra["payment_intent"] = payment_intent(*r, ip);
    return stripe_error(402, "card_error",
                        is_error_code_decline(r->decline_code)
                          ? r->decline_code
                          : std::string{"card_declined"},
                        "Your card was declined.", std::move(extra));
  }

  // -- GET /v1/payment_intents/search -----------------------------------------

  http_response search_payment_intents(request_context& ctx) {
    const auto query = ctx.query_value("query");
    const auto key = query ? searched_key(*query) : std::nullopt;
    if (!key)
      return stripe_error(400, "invalid_request_error", "parameter_invalid",
                          "the simulator searches by "
                          "metadata['idempotency_key']:'<key>' only",
                          {{"param", "query"}});
    ojson page = {{"object", "search_result"},
                  {"url", "/v1/payment_intents/search"},
                  {"has_more", false},
                  {"data", ojson::array()}};
    auto r = sandbox().retrieve(*key);
    if (!r && r.code() != errc::not_found)
      return from_error(r.error());
    if (r) {
      const auto info = info_of_key(*key);
      page["data"].push_back(payment_intent(*r, info ? &*info : nullptr));
    }
    return stripe_json(200, page);
  }

  // -- POST /v1/refunds -------------------------------------------------------

  http_response create_refund(request_context& ctx) {
    auto f = form(ctx);
    if (!f)
      return stripe_error(400, "invalid_request_error", {},
                          "malformed form body");
    const std::string key{ctx.req.header("Idempotency-Key")};
    if (key.empty())
      return stripe_error(400, "invalid_request_error", {},
                          "the simulator needs an Idempotency-Key header");
    std::string target = field(*f, "payment_intent");
    if (target.empty())
      target = field(*f, "charge");
    if (target.empty())
      return stripe_error(400, "invalid_request_error", "parameter_missing",
                          "payment_intent or charge is required");
    const auto amount = parse_int(field(*f, "amount"));
    if (!amount || *amount <= 0)
      return stripe_error(400, "invalid_request_error", "parameter_missing",
                          "the simulator needs a positive amount",
                          {{"param", "amount"}});
    const std::string charge_id = charge_id_of(target);
    const auto charge_key = key_of_charge(charge_id);
    const auto info = charge_key ? info_of_key(*charge_key) : std::nullopt;
    if (!info)
      return stripe_error(404, "invalid_request_error", "resource_missing",
                          "No such payment_intent: '" + target + "'");
    const auto cur = info->request.amount.currency();
    auto r
      = sandbox().refund(refund_request{key, charge_id, money{*amount, cur}});
    if (!r)
      return from_error(r.error());
    return stripe_json(
      200, {{"id", r->refund_id},
            {"object", "refund"},
            {"amount", r->amount.amount_minor()},
            {"currency", lower(r->amount.currency().code())},
            {"payment_intent", payment_intent_id_of(charge_id)},
            {"charge", payment_intent_id_of(charge_id)},
            {"status", "succeeded"},
            {"metadata",
             {{"idempotency_key", field(*f, "metadata[idempotency_key]")}}}});
  }

  // -- GET /sim/charges -------------------------------------------------------

  http_response list_charges(request_context&) {
    constexpr std::size_t shown_max = 10'000;
    const auto all = sandbox().charges();
    ojson data = ojson::array();
    const std::size_t first = all.size() > shown_max ? all.size() - shown_max
                                                     : 0;
    for (std::size_t i = first; i < all.size(); ++i) {
      const auto& c = all[i];
      data.push_back({{"id", payment_intent_id_of(c.charge_id)},
                      {"idempotency_key", c.idempotency_key},
                      {"tenant_id", c.tenant.value},
                      {"customer", c.customer.value},
                      {"payment_method", c.payment_method},
                      {"amount", c.amount.amount_minor()},
                      {"currency", lower(c.amount.currency().code())},
                      {"status", std::string{to_string(c.status)}},
                      {"decline_code", c.decline_code},
                      {"amount_refunded", c.refunded.amount_minor()},
                      {"times_collected", c.times_collected},
                      {"created", c.created.unix_s}});
    }
    return stripe_json(200, {{"object", "list"},
                             {"total_count", all.size()},
                             {"data", std::move(data)}});
  }

  sandbox_gateway& sandbox() { return pool.shared(); }

  gateway_sim_config config;
  const clock& clk;
  sandbox_pool pool;
  std::unique_ptr<sandbox_pump> pump; // null without a webhook URL
  router routes;
  std::mutex mutex;
  std::map<std::string, charge_info, std::less<>> charges;     // by key
  std::map<std::string, std::string, std::less<>> charge_keys; // id → key
};

result<std::unique_ptr<gateway_sim>>
gateway_sim::create(gateway_sim_config config, const clock& clk) {
  if (auto st = validate(config); !st)
    return st.error();
  auto p = std::make_unique<impl>(std::move(config), clk);
  if (!p->config.webhook_url.empty()) {
    auto pump = sandbox_pump::create(p->pool, clk, pump_config_of(p->config));
    if (!pump)
      return pump.error();
    p->pump = std::move(*pump);
  }
  return std::unique_ptr<gateway_sim>{new gateway_sim{std::move(p)}};
}

gateway_sim::gateway_sim(std::unique_ptr<impl> p) : impl_(std::move(p)) {}

gateway_sim::~gateway_sim() {
  stop_webhooks();
}

http_response gateway_sim::handle(const http_request& req) {
  auto resp = impl_->handle(req);
  spdlog::info("event=sim_request method={} path={} status={} key=\"{}\"",
               req.method, std::string{req.path()}, resp.status,
               std::string{req.header("Idempotency-Key")});
  return resp;
}

http_handler gateway_sim::handler() {
  return [this](const http_request& req) { return handle(req); };
}

void gateway_sim::start_webhooks() {
  if (impl_->pump)
    impl_->pump->start();
}

void gateway_sim::stop_webhooks() {
  if (impl_->pump)
    impl_->pump->stop();
}

pump_round gateway_sim::pump_once() {
  if (impl_->pump)
    return impl_->pump->pump_once();
  pump_round r;
  r.events = sandbox().poll_events(impl_->clk.now()).size();
  if (r.events > 0)
    spdlog::info("event=sim_events_dropped count={} reason=no_webhook_url",
                 r.events);
  return r;
}

sandbox_gateway& gateway_sim::sandbox() {
  return impl_->sandbox();
}

} // namespace recur::api
