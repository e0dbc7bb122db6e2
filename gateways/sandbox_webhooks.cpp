#include "gateways/sandbox_webhooks.hpp"

#include <cctype>
#include <charconv>
#include <deque>
#include <map>
#include <mutex>
#include <random>
#include <utility>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>

#include "gateways/webhook_signature.hpp"

namespace recur {

namespace {

namespace net = boost::asio;
namespace beast = boost::beast;
namespace http = boost::beast::http;
using tcp = boost::asio::ip::tcp;
using json = nlohmann::ordered_json;

/// A forged copy is signed with this when it is not the endpoint's secret.
constexpr std::string_view forged_secret = "whsec_forged_by_the_sandbox";
constexpr std::string_view stripe_api_version = "2024-06-20";
constexpr std::size_t response_body_max = 64 * 1024;
constexpr std::size_t forgery_kinds = 4;

struct parsed_url {
  std::string host;
  std::string port;
  std::string target;
};

result<parsed_url> parse_url(std::string_view url) {
  constexpr std::string_view scheme = "http://";
  if (!url.starts_with(scheme))
    return make_error(errc::invalid_argument,
                      "url: must start with http:// (the sandbox speaks "
                      "plain HTTP)");
  url.remove_prefix(scheme.size());
  const auto slash = url.find('/');
  const auto authority = url.substr(0, slash);
  parsed_url out;
  out.target = slash == std::string_view::npos ? "/"
                                               : std::string{url.substr(slash)};
  const auto colon = authority.rfind(':');
  out.host = std::string{authority.substr(0, colon)};
  out.port = colon == std::string_view::npos
               ? "80"
               : std::string{authority.substr(colon + 1)};
  unsigned port = 0;
  const auto* end = out.port.data() + out.port.size();
  const auto [p, ec] = std::from_chars(out.port.data(), end, port);
  if (out.host.empty() || ec != std::errc{} || p != end || port == 0
      || port > 65535)
    return make_error(errc::invalid_argument, "url: needs host:port");
  return out;
}

std::string lower(std::string_view s) {
  std::string out{s};
  for (char& c : out)
    c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

json metadata(const gateway_event& e) {
  return {{"idempotency_key", e.idempotency_key},
          {"tenant_id", e.tenant.value}};
}

json event_object(const gateway_event& e, std::string_view refund_id) {
  const auto amount = e.amount.amount_minor();
  const auto cur = lower(e.amount.currency().code());
  if (e.type == "payment_intent.succeeded"
      || e.type == "payment_intent.payment_failed") {
    const bool ok = e.type == "payment_intent.succeeded";
    json pi{{"id", e.charge_id},
            {"object", "payment_intent"},
            {"amount", amount},
            {"currency", cur},
            {"status", ok ? "succeeded" : "requires_payment_method"},
            {"metadata", metadata(e)}};
    if (!ok)
      pi["last_payment_error"]
        = {{"type", "card_error"},
           {"code", "card_declined"},
           {"decline_code",
            e.decline_code.empty() ? "generic_decline" : e.decline_code}};
    return pi;
  }
  if (e.type == "charge.refunded") {
    const std::string re = refund_id.empty() ? "re_" + e.id
                                             : std::string{refund_id};
    json refund{{"id", re},
                {"object", "refund"},
                {"amount", amount},
                {"currency", cur},
                {"charge", e.charge_id},
                {"payment_intent", e.charge_id},
                {"status", "succeeded"},
                {"metadata", metadata(e)}};
    return {{"id", e.charge_id},
            {"object", "charge"},
            {"payment_intent", e.charge_id},
            {"amount_refunded", amount},
            {"currency", cur},
            {"refunded", true},
            {"refunds",
             {{"object", "list"}, {"data", json::array({std::move(refund)})}}}};
  }
  if (e.type == "charge.dispute.created")
    return {{"id", "dp_" + e.id},     {"object", "dispute"},
            {"charge", e.charge_id},  {"payment_intent", e.charge_id},
            {"amount", amount},       {"currency", cur},
            {"reason", "fraudulent"}, {"status", "needs_response"},
            {"metadata", metadata(e)}};
  return {{"id", e.charge_id}, {"object", e.type}};
}

/// Multiply-shift range reduction of the top 32 bits of the raw output: a
/// value in [0, bound) that is the same on every standard library.
std::uint64_t below(std::uint64_t raw, std::uint64_t bound) {
  RECUR_ASSERT(bound > 0 && bound <= (std::uint64_t{1} << 32));
  return ((raw >> 32) * bound) >> 32;
}

struct planned {
  webhook_delivery d;
  std::string signed_body; // what the signature covers (tampered: not d.body)
  std::string secret;      // the tenant's
};

std::string replace_all(std::string s, std::string_view from,
                        std::string_view to) {
  for (auto at = s.find(from); at != std::string::npos;
       at = s.find(from, at + to.size()))
    s.replace(at, from.size(), to);
  return s;
}

struct answer {
  unsigned status = 0;
  std::string body;
  std::optional<error> failure;
};

} // namespace

std::string_view to_string(forgery_kind k) noexcept {
  switch (k) {
    case forgery_kind::wrong_secret:
      return "wrong_secret";
    case forgery_kind::tampered_body:
      return "tampered_body";
    case forgery_kind::stale_timestamp:
      return "stale_timestamp";
    case forgery_kind::unsigned_body:
      return "unsigned_body";
  }
  return "unknown";
}

status validate(const sandbox_webhook_config& c) {
  if (auto url = parse_url(c.url); !url)
    return url.error();
  if (c.secret.empty() && !c.secret_for)
    return make_error(errc::invalid_argument,
                      "secret: must not be empty (or set secret_for)");
  for (auto [name, v] : {std::pair{"duplicate_ppm", c.duplicate_ppm},
                         std::pair{"reorder_ppm", c.reorder_ppm},
                         std::pair{"forge_ppm", c.forge_ppm}})
    if (v > ppm_max)
      return make_error(errc::invalid_argument,
                        std::string{name} + ": at most 1000000");
  if (c.delay_s < 0 || c.delay_s > settle_delay_s_max || c.delay_jitter_s < 0
      || c.delay_jitter_s > settle_delay_s_max)
    return make_error(errc::invalid_argument,
                      "delay_s, delay_jitter_s: 0..30 days");
  if (c.stale_by_s <= stripe_signature_tolerance_s
      || c.stale_by_s > stripe_signature_tolerance_s_max)
    return make_error(errc::invalid_argument, "stale_by_s: 301..86400");
  if (c.queued_max == 0)
    return make_error(errc::invalid_argument, "queued_max: must be positive");
  if (c.connect_timeout.count() <= 0 || c.read_timeout.count() <= 0)
    return make_error(errc::invalid_argument, "timeouts: must be positive");
  return {};
}

std::string stripe_event_json(const gateway_event& e,
                              std::string_view refund_id) {
  const json doc{{"id", e.id},
                 {"object", "event"},
                 {"api_version", stripe_api_version},
                 {"created", e.created.unix_s},
                 {"livemode", false},
                 {"type", e.type},
                 {"data", {{"object", event_object(e, refund_id)}}}};
  return doc.dump(-1, ' ', false, json::error_handler_t::replace);
}

struct sandbox_webhook_sender::impl {
  sandbox_webhook_config config;
  parsed_url url;
  const clock* signer = nullptr;
  mutable std::mutex mutex;
  std::mt19937_64 rng;
  std::deque<planned> queue;
  std::map<std::string, std::string> refund_ids; // by refund key

  bool draw(std::uint32_t ppm) { return below(rng(), ppm_max) < ppm; }

  /// The tenant's secret; nullopt: its events are not sent.
  std::optional<std::string> secret_of(const tenant_id& t) const {
    if (config.secret_for)
      return config.secret_for(t);
    return config.secret;
  }

  planned real(const gateway_event& e, instant due,
               const std::string& secret) const {
    auto it = refund_ids.find(e.idempotency_key);
    std::string body = stripe_event_json(
      e, it == refund_ids.end() ? std::string_view{} : it->second);
    return planned{
      webhook_delivery{e.id, e.tenant,
                       replace_all(url.target, "{tenant}", e.tenant.value),
                       e.type, body, std::nullopt, false, due},
      body, secret};
  }

  planned forgery(const gateway_event& e, instant due, forgery_kind k,
                  const std::string& secret) const {
    planned p = real(e, due, secret);
    p.d.forged = k;
    if (k == forgery_kind::tampered_body) {
      // The signature of the real body over a body that asks for more.
      gateway_event more = e;
      more.amount = money{e.amount.amount_minor() + 100, e.amount.currency()};
      p.d.body = stripe_event_json(more);
    }
    return p;
  }

  std::string signature(const planned& p) const {
    const instant now = signer->now();
    const std::string_view secret = p.secret;
    if (!p.d.forged)
      return sign_stripe_payload(secret, now, p.signed_body);
    switch (*p.d.forged) {
      case forgery_kind::wrong_secret:
        return sign_stripe_payload(forged_secret, now, p.signed_body);
      case forgery_kind::tampered_body:
        return sign_stripe_payload(secret, now, p.signed_body);
      case forgery_kind::stale_timestamp:
        return sign_stripe_payload(secret, now.plus_seconds(-config.stale_by_s),
                                   p.signed_body);
      case forgery_kind::unsigned_body:
        return {};
    }
    return {};
  }

  answer post(const std::string& target, const std::string& body,
              const std::string& sig) const;
};

answer sandbox_webhook_sender::impl::post(const std::string& target,
                                          const std::string& body,
                                          const std::string& sig) const {
  http::request<http::string_body> req{http::verb::post, target, 11};
  req.set(http::field::host, url.host + ":" + url.port);
  req.set(http::field::user_agent,
          "Stripe/1.0 (+https://stripe.com/docs/webhooks)");
  req.set(http::field::content_type, "application/json; charset=utf-8");
  if (!sig.empty())
    req.set(std::string{stripe_signature_header}, sig);
  req.keep_alive(false);
  req.body() = body;
  req.prepare_payload();
  net::io_context ioc{1};
  beast::tcp_stream stream{ioc};
  beast::error_code ec;
  tcp::resolver resolver{ioc};
  tcp::resolver::results_type endpoints;
  resolver.async_resolve(url.host, url.port,
                         [&](beast::error_code e,
                             tcp::resolver::results_type r) {
                           ec = e;
                           endpoints = std::move(r);
                         });
  ioc.run_for(config.connect_timeout);
  if (ec || endpoints.empty())
    return {0, {}, make_error(errc::unavailable, "resolve: " + ec.message())};
  ioc.restart();
  stream.expires_after(config.connect_timeout);
  stream.async_connect(endpoints, [&](beast::error_code e,
                                      const tcp::endpoint&) { ec = e; });
  ioc.run();
  if (ec)
    return {0, {}, make_error(errc::unavailable, "connect: " + ec.message())};
  ioc.restart();
  stream.expires_after(config.read_timeout);
  http::async_write(stream, req,
                    [&](beast::error_code e, std::size_t) { ec = e; });
  ioc.run();
  if (ec)
    return {0, {}, make_error(errc::unavailable, "write: " + ec.message())};
  ioc.restart();
  beast::flat_buffer buffer;
  http::response_parser<http::string_body> parser;
  parser.body_limit(response_body_max);
  http::async_read(stream, buffer, parser,
                   [&](beast::error_code e, std::size_t) { ec = e; });
  ioc.run();
  beast::error_code ignored;
  stream.socket().shutdown(tcp::socket::shutdown_both, ignored);
  if (ec || !parser.is_done())
    return {0, {}, make_error(errc::unavailable, "read: " + ec.message())};
  auto res = parser.release();
  return {res.result_int(), std::move(res.body()), std::nullopt};
}

sandbox_webhook_sender::sandbox_webhook_sender(std::unique_ptr<impl> p)
  : impl_(std::move(p)) {}

sandbox_webhook_sender::~sandbox_webhook_sender() = default;

result<std::unique_ptr<sandbox_webhook_sender>>
sandbox_webhook_sender::create(sandbox_webhook_config config,
                               const clock& signing_clock) {
  if (auto ok = validate(config); !ok)
    return ok.error();
  auto p = std::make_unique<impl>();
  p->url = *parse_url(config.url);
  p->rng.seed(config.seed);
  p->config = std::move(config);
  p->signer = &signing_clock;
  return std::unique_ptr<sandbox_webhook_sender>{
    new sandbox_webhook_sender{std::move(p)}};
}

status sandbox_webhook_sender::enqueue(std::span<const gateway_event> events,
                                       instant now) {
  std::lock_guard lock{impl_->mutex};
  impl& s = *impl_;
  // Worst case three deliveries per event (forgery, real, duplicate).
  if (events.size() > s.config.queued_max
      || s.queue.size() + 3 * events.size() > s.config.queued_max)
    return make_error(errc::invalid_argument,
                      "sandbox webhooks: more than queued_max deliveries "
                      "waiting");
  struct group {
    std::vector<planned> items;
    bool reorder = false;
  };
  std::vector<group> groups;
  std::vector<planned> duplicates;
  for (const auto& e : events) {
    const bool dup = s.draw(s.config.duplicate_ppm);
    const bool reorder = s.draw(s.config.reorder_ppm);
    const bool forge = s.draw(s.config.forge_ppm);
    const auto kind = static_cast<forgery_kind>(below(s.rng(), forgery_kinds));
    const auto jitter = static_cast<std::int64_t>(
      below(s.rng(), static_cast<std::uint64_t>(s.config.delay_jitter_s) + 1));
    const instant due = now.plus_seconds(s.config.delay_s + jitter);
    const auto secret = s.secret_of(e.tenant);
    if (!secret || secret->empty()) {
      spdlog::warn("event=sandbox_webhook_skipped event_id={} tenant={} "
                   "reason=\"no webhook secret\"",
                   e.id, e.tenant.value);
      continue;
    }
    group g;
    g.reorder = reorder;
    if (forge)
      g.items.push_back(s.forgery(e, due, kind, *secret));
    g.items.push_back(s.real(e, due, *secret));
    if (dup) {
      planned copy = g.items.back();
      copy.d.duplicate = true;
      duplicates.push_back(std::move(copy));
    }
    groups.push_back(std::move(g));
  }
  for (std::size_t i = 0; i + 1 < groups.size(); ++i)
    if (groups[i].reorder) {
      std::swap(groups[i], groups[i + 1]);
      ++i; // a swapped pair stays swapped
    }
  for (auto& g : groups)
    for (auto& p : g.items)
      s.queue.push_back(std::move(p));
  for (auto& p : duplicates)
    s.queue.push_back(std::move(p));
  return {};
}

std::vector<delivery_outcome> sandbox_webhook_sender::deliver_due(instant now) {
  std::vector<planned> due;
  {
    std::lock_guard lock{impl_->mutex};
    std::deque<planned> later;
    for (auto& p : impl_->queue)
      (p.d.due <= now ? due.emplace_back(std::move(p))
                      : later.emplace_back(std::move(p)));
    impl_->queue = std::move(later);
  }
  std::vector<delivery_outcome> out;
  out.reserve(due.size());
  for (auto& p : due) {
    const answer a = impl_->post(p.d.target, p.d.body, impl_->signature(p));
    spdlog::info("event=sandbox_webhook_sent event_id={} tenant={} type={} "
                 "forged={} duplicate={} http_status={}{}",
                 p.d.event_id, p.d.tenant.value, p.d.type,
                 p.d.forged ? to_string(*p.d.forged) : "no", p.d.duplicate,
                 a.status,
                 a.failure ? " error=\"" + a.failure->detail + "\"" : "");
    out.push_back(
      delivery_outcome{std::move(p.d), a.status, a.failure, a.body});
  }
  return out;
}

std::vector<delivery_outcome> sandbox_webhook_sender::pump(sandbox_gateway& gw,
                                                           instant now) {
  const auto events = gw.poll_events(now);
  {
    std::lock_guard lock{impl_->mutex};
    for (const auto& r : gw.refunds())
      impl_->refund_ids.insert_or_assign(r.idempotency_key, r.refund_id);
  }
  if (auto queued = enqueue(events, now); !queued)
    spdlog::warn("event=sandbox_webhooks_dropped count={} error=\"{}\"",
                 events.size(), queued.error().detail);
  return deliver_due(now);
}

std::size_t sandbox_webhook_sender::queued() const {
  std::lock_guard lock{impl_->mutex};
  return impl_->queue.size();
}

const sandbox_webhook_config& sandbox_webhook_sender::config() const noexcept {
  return impl_->config;
}

} // namespace recur
