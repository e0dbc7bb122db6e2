#include "gateways/stripe_gateway.hpp"

#include <algorithm>
#include <cctype>
#include <chrono>
#include <optional>

#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>

#include "workflows/retry_policy.hpp"

namespace recur {

namespace {

namespace net = boost::asio;
namespace ssl = boost::asio::ssl;
namespace beast = boost::beast;
namespace http = boost::beast::http;
using tcp = boost::asio::ip::tcp;
using json = nlohmann::json;
using ms = std::chrono::milliseconds;

constexpr std::size_t response_size_min_bytes = 4096;
constexpr std::uint32_t response_header_limit_bytes = 16'384;
constexpr char user_agent[] = "recur/0.1 (stripe_gateway)";

// -- base URL -----------------------------------------------------------------

struct base_url {
  bool tls = false;
  std::string host;        // without brackets for IPv6 literals
  std::string port;        // always set: "443", "80" or the given one
  std::string host_header; // Host: as the URL spelled it
  std::string prefix;      // "" or "/something", no trailing '/'
};

bool host_char(char c) {
  return std::isalnum(static_cast<unsigned char>(c)) != 0 || c == '.'
         || c == '-' || c == '_';
}

result<base_url> parse_base_url(std::string_view url) {
  auto bad = [](std::string why) {
    return make_error(errc::invalid_argument, "base_url: " + std::move(why));
  };
  base_url out;
  if (url.starts_with("https://")) {
    out.tls = true;
    url.remove_prefix(8);
  } else if (url.starts_with("http://")) {
    url.remove_prefix(7);
  } else {
    return bad("must start with http:// or https://");
  }
  if (url.find_first_of("?#") != std::string_view::npos)
    return bad("must not have a query or fragment");
  const std::size_t slash = url.find('/');
  const std::string_view authority = url.substr(0, slash);
  std::string_view path = slash == std::string_view::npos ? std::string_view{}
                                                          : url.substr(slash);
  while (!path.empty() && path.back() == '/')
    path.remove_suffix(1);
  out.prefix = std::string{path};
  out.host_header = std::string{authority};
  std::string_view host = authority;
  std::string_view port;
  if (authority.starts_with('[')) {
    const std::size_t close = authority.find(']');
    if (close == std::string_view::npos)
      return bad("unterminated IPv6 literal");
    host = authority.substr(1, close - 1);
    const std::string_view rest = authority.substr(close + 1);
    if (!rest.empty()) {
      if (rest.front() != ':')
        return bad("junk after the IPv6 literal");
      port = rest.substr(1);
    }
    if (host.empty()
        || host.find_first_not_of("0123456789abcdefABCDEF:.")
             != std::string_view::npos)
      return bad("bad IPv6 literal");
  } else {
    const std::size_t colon = authority.find(':');
    if (colon != std::string_view::npos) {
      host = authority.substr(0, colon);
      port = authority.substr(colon + 1);
    }
    if (host.empty() || !std::all_of(host.begin(), host.end(), host_char))
      return bad("bad host");
  }
  if (port.empty() && authority.ends_with(':'))
    return bad("empty port");
  if (!port.empty()) {
    if (port.size() > 5
        || port.find_first_not_of("0123456789") != std::string_view::npos
        || std::stoi(std::string{port}) < 1
        || std::stoi(std::string{port}) > 65535)
      return bad("bad port");
  }
  out.host = std::string{host};
  out.port = port.empty() ? (out.tls ? "443" : "80") : std::string{port};
  return out;
}

// -- Stripe's JSON ------------------------------------------------------------

std::string str(const json& obj, const char* name) {
  if (!obj.is_object())
    return {};
  const auto it = obj.find(name);
  return it != obj.end() && it->is_string() ? it->get<std::string>()
                                            : std::string{};
}

/// Stripe's error object, fields "" when absent.
struct stripe_error {
  std::string type;
  std::string code;
  std::string decline_code;
  std::string message;
  std::string payment_intent_id;
};

stripe_error read_error(const std::string& body) {
  const json doc = json::parse(body, nullptr, false);
  if (doc.is_discarded() || !doc.is_object() || !doc.contains("error"))
    return {};
  const json& e = doc["error"];
  stripe_error out{str(e, "type"),
                   str(e, "code"),
                   str(e, "decline_code"),
                   str(e, "message"),
                   {}};
  if (e.is_object() && e.contains("payment_intent"))
    out.payment_intent_id = str(e["payment_intent"], "id");
  return out;
}

/// decline_code when Stripe gives one (card declines), else the error code
/// ("expired_card", "incorrect_cvc"), else a generic decline.
std::string decline_code_of(const std::string& decline,
                            const std::string& code) {
  if (!decline.empty())
    return decline;
  if (!code.empty())
    return code;
  return "generic_decline";
}

charge_result declined(std::string id, std::string code) {
  const decline_class cls = classify_decline(code);
  return {charge_status::declined, std::move(id), std::move(code), cls};
}

/// A PaymentIntent's state as the port tells it; nullopt when unreadable or
/// a state we do not know (the caller reports unknown).
std::optional<charge_result> from_payment_intent(const json& pi) {
  const std::string id = str(pi, "id");
  const std::string status = str(pi, "status");
  if (id.empty() || status.empty())
    return std::nullopt;
  if (status == "succeeded")
    return charge_result{charge_status::succeeded, id, {}, {}};
  if (status == "processing" || status == "requires_action"
      || status == "requires_capture" || status == "requires_confirmation")
    return charge_result{charge_status::pending, id, {}, {}};
  if (status == "requires_payment_method") {
    const json empty = json::object();
    const auto it = pi.find("last_payment_error");
    const json& err = it != pi.end() && it->is_object() ? *it : empty;
    return declined(id, decline_code_of(str(err, "decline_code"),
                                        str(err, "code")));
  }
  if (status == "canceled")
    return charge_result{charge_status::declined, id, "canceled",
                         decline_class::hard};
  return std::nullopt;
}

// -- requests -----------------------------------------------------------------

status check_key(const std::string& key) {
  if (key.empty())
    return make_error(errc::invalid_argument, "idempotency key is empty");
  if (key.size() > idempotency_key_size_max)
    return make_error(errc::invalid_argument,
                      "idempotency key is longer than 255 characters");
  // It travels in a header: a CR or LF would forge headers of its own.
  for (char c : key) {
    if (c < ' ' || c > '~')
      return make_error(errc::invalid_argument,
                        "idempotency key must be printable ASCII");
  }
  return {};
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

/// A value inside single quotes of Stripe's search query language.
std::string search_quote(std::string_view s) {
  std::string out = "'";
  for (char c : s) {
    if (c == '\'' || c == '\\')
      out += '\\';
    out += c;
  }
  out += '\'';
  return out;
}

// -- transport ----------------------------------------------------------------

/// not_sent: the request certainly never left (nothing can have happened).
/// lost: it may have reached Stripe, but no complete answer came back.
enum class transport : std::uint8_t { answered, not_sent, lost };

struct http_answer {
  transport outcome = transport::not_sent;
  unsigned status = 0;
  std::string body;
  std::string detail;     // why, when not answered
  std::string request_id; // Stripe's Request-Id: what its support asks for
};

http_answer failed(transport outcome, std::string detail) {
  return {outcome, 0, {}, std::move(detail), {}};
}

using request = http::request<http::string_body>;

/// Runs the context until the operation started before it completes.
void run(net::io_context& ioc) {
  ioc.restart();
  ioc.run();
}

} // namespace

// -- form encoding ------------------------------------------------------------

std::string percent_encode(std::string_view s) {
  static constexpr char hex[] = "0123456789ABCDEF";
  std::string out;
  out.reserve(s.size());
  for (char ch : s) {
    const auto c = static_cast<unsigned char>(ch);
    if (std::isalnum(c) != 0 || c == '-' || c == '.' || c == '_' || c == '~') {
      out += ch;
    } else {
      out += '%';
      out += hex[c >> 4];
      out += hex[c & 0x0f];
    }
  }
  return out;
}

std::string form_encode(const form_fields& fields) {
  std::string out;
  for (const auto& [key, value] : fields) {
    if (!out.empty())
      out += '&';
    out += percent_encode(key);
    out += '=';
    out += percent_encode(value);
  }
  return out;
}

// -- configuration ------------------------------------------------------------

status validate(const stripe_config& c) {
  if (auto url = parse_base_url(c.base_url); !url)
    return url.error();
  if (c.secret_key.empty())
    return make_error(errc::invalid_argument, "secret_key: is empty");
  for (char ch : c.secret_key) {
    if (ch <= ' ' || ch > '~')
      return make_error(errc::invalid_argument,
                        "secret_key: must be printable ASCII");
  }
  for (char ch : c.stripe_version) {
    if (ch < ' ' || ch > '~')
      return make_error(errc::invalid_argument,
                        "stripe_version: must be printable ASCII");
  }
  if (c.connect_timeout_ms <= 0 || c.connect_timeout_ms > stripe_timeout_ms_max)
    return make_error(errc::invalid_argument,
                      "connect_timeout_ms: must be in (0, 300000]");
  if (c.read_timeout_ms <= 0 || c.read_timeout_ms > stripe_timeout_ms_max)
    return make_error(errc::invalid_argument,
                      "read_timeout_ms: must be in (0, 300000]");
  if (c.response_size_max_bytes < response_size_min_bytes
      || c.response_size_max_bytes > stripe_response_size_max_bytes)
    return make_error(errc::invalid_argument,
                      "response_size_max_bytes: must be in [4 KiB, 16 MiB]");
  return {};
}

// -- impl ---------------------------------------------------------------------

struct stripe_gateway::impl {
  stripe_config config;
  base_url url;
  // https only. Streams need it non-const; OpenSSL makes connections from one
  // SSL_CTX safely on many threads, and nothing changes it after construction.
  mutable std::optional<ssl::context> tls;

  explicit impl(stripe_config c) : config(std::move(c)) {
    auto parsed = parse_base_url(config.base_url);
    RECUR_ASSERT(parsed.has_value());
    url = std::move(*parsed);
    if (url.tls) {
      tls.emplace(ssl::context::tls_client);
      tls->set_verify_mode(ssl::verify_peer);
      boost::system::error_code ec;
      if (config.ca_file.empty())
        tls->set_default_verify_paths(ec);
      else
        tls->load_verify_file(config.ca_file, ec);
      if (ec)
        spdlog::warn("event=stripe_tls_ca_failed ca_file=\"{}\" error=\"{}\"",
                     config.ca_file, ec.message());
    }
  }

  request make_request(http::verb verb, std::string_view path,
                       const std::string& idempotency_key,
                       std::string body) const {
    request req{verb, url.prefix + std::string{path}, 11};
    req.set(http::field::host, url.host_header);
    req.set(http::field::authorization, "Bearer " + config.secret_key);
    req.set(http::field::user_agent, user_agent);
    req.set(http::field::accept, "application/json");
    if (!config.stripe_version.empty())
      req.set("Stripe-Version", config.stripe_version);
    if (!idempotency_key.empty())
      req.set("Idempotency-Key", idempotency_key);
    if (verb == http::verb::post) {
      req.set(http::field::content_type, "application/x-www-form-urlencoded");
      req.body() = std::move(body);
    }
    req.keep_alive(false);
    req.prepare_payload();
    return req;
  }

  /// Sends over a connected stream and reads the answer; every failure from
  /// here on is `lost`.
  template <class Stream>
  http_answer send(net::io_context& ioc, Stream& stream, request& req) const {
    auto& lowest = beast::get_lowest_layer(stream);
    lowest.expires_after(ms{config.read_timeout_ms});
    beast::error_code ec;
    http::async_write(stream, req,
                      [&](beast::error_code e, std::size_t) { ec = e; });
    run(ioc);
    if (ec)
      return failed(transport::lost, "write: " + ec.message());
    beast::flat_buffer buffer;
    http::response_parser<http::string_body> parser;
    parser.body_limit(config.response_size_max_bytes);
    parser.header_limit(response_header_limit_bytes);
    http::async_read(stream, buffer, parser,
                     [&](beast::error_code e, std::size_t) { ec = e; });
    run(ioc);
    beast::error_code ignored;
    lowest.socket().shutdown(tcp::socket::shutdown_both, ignored);
    lowest.close();
    if (ec || !parser.is_done())
      return failed(transport::lost, "read: " + ec.message());
    auto res = parser.release();
    return {transport::answered,
            res.result_int(),
            std::move(res.body()),
            {},
            std::string{res["Request-Id"]}};
  }

  http_answer exchange(request& req) const {
    net::io_context ioc{1};
    tcp::resolver resolver{ioc};
    beast::error_code ec;
    tcp::resolver::results_type endpoints;
    bool resolved = false;
    resolver.async_resolve(url.host, url.port,
                           [&](beast::error_code e,
                               tcp::resolver::results_type r) {
                             ec = e;
                             endpoints = std::move(r);
                             resolved = true;
                           });
    ioc.run_for(ms{config.connect_timeout_ms});
    if (!resolved) {
      resolver.cancel();
      run(ioc);
      return failed(transport::not_sent, "resolve: timed out");
    }
    if (ec)
      return failed(transport::not_sent, "resolve: " + ec.message());
    if (!url.tls) {
      beast::tcp_stream stream{ioc};
      if (auto refused = connect(ioc, stream, endpoints))
        return *refused;
      return send(ioc, stream, req);
    }
    beast::ssl_stream<beast::tcp_stream> stream{ioc, *tls};
    if (!SSL_set_tlsext_host_name(stream.native_handle(), url.host.c_str()))
      return failed(transport::not_sent, "tls: cannot set SNI");
    stream.set_verify_callback(ssl::host_name_verification{url.host});
    if (auto refused = connect(ioc, beast::get_lowest_layer(stream), endpoints))
      return *refused;
    stream.async_handshake(ssl::stream_base::client,
                           [&](beast::error_code e) { ec = e; });
    run(ioc);
    if (ec)
      return failed(transport::not_sent, "tls handshake: " + ec.message());
    return send(ioc, stream, req);
  }

  std::optional<http_answer>
  connect(net::io_context& ioc, beast::tcp_stream& stream,
          const tcp::resolver::results_type& endpoints) const {
    beast::error_code ec;
    stream.expires_after(ms{config.connect_timeout_ms});
    stream.async_connect(endpoints, [&](beast::error_code e,
                                        const tcp::endpoint&) { ec = e; });
    run(ioc);
    if (ec)
      return failed(transport::not_sent, "connect: " + ec.message());
    return std::nullopt;
  }

  /// One call, logged as one line.
  http_answer call(std::string_view op, http::verb verb, std::string_view path,
                   const std::string& key, std::string body = {}) const {
    request req = make_request(verb, path, key, std::move(body));
    const auto start = std::chrono::steady_clock::now();
    http_answer answer = exchange(req);
    const auto elapsed_ms
      = std::chrono::duration_cast<ms>(std::chrono::steady_clock::now() - start)
          .count();
    if (answer.outcome == transport::answered)
      spdlog::info("event=stripe_call op={} key=\"{}\" http_status={} "
                   "request_id={} elapsed_ms={}",
                   op, key, answer.status, answer.request_id, elapsed_ms);
    else
      spdlog::warn("event=stripe_call_failed op={} key=\"{}\" sent={} "
                   "error=\"{}\" elapsed_ms={}",
                   op, key, answer.outcome == transport::lost, answer.detail,
                   elapsed_ms);
    return answer;
  }
};

// -- construction -------------------------------------------------------------

stripe_gateway::stripe_gateway(stripe_config config) {
  RECUR_ASSERT(validate(config).has_value());
  impl_ = std::make_unique<impl>(std::move(config));
}

stripe_gateway::~stripe_gateway() = default;

// -- payment_gateway ----------------------------------------------------------

namespace {

error stripe_failure(errc code, const http_answer& a, const stripe_error& e) {
  std::string detail = "stripe answered " + std::to_string(a.status);
  if (!e.type.empty())
    detail += " " + e.type;
  if (!e.code.empty())
    detail += " (" + e.code + ")";
  if (!e.message.empty())
    detail += ": " + e.message;
  return make_error(code, std::move(detail));
}

error unavailable(const http_answer& a) {
  return make_error(errc::unavailable, "stripe unreachable: " + a.detail);
}

bool refused_before_work(unsigned status) {
  return status == 401 || status == 403 || status == 429;
}

result<charge_result> charge_outcome(const http_answer& a) {
  if (a.outcome == transport::not_sent)
    return unavailable(a);
  if (a.outcome == transport::lost)
    return charge_result{};
  if (a.status >= 200 && a.status < 300) {
    const json pi = json::parse(a.body, nullptr, false);
    return from_payment_intent(pi).value_or(charge_result{});
  }
  const stripe_error e = read_error(a.body);
  if (e.type == "idempotency_error")
    return stripe_failure(errc::idempotency_conflict, a, e);
  if (a.status == 402 || e.type == "card_error")
    return declined(e.payment_intent_id,
                    decline_code_of(e.decline_code, e.code));
  if (a.status == 400 && e.code == "resource_missing")
    return charge_result{charge_status::declined, e.payment_intent_id,
                         "resource_missing", decline_class::hard};
  if (refused_before_work(a.status))
    return stripe_failure(errc::unavailable, a, e);
  if (a.status >= 500 || a.status == 409)
    return charge_result{};
  return stripe_failure(errc::invalid_argument, a, e);
}

} // namespace

result<charge_result> stripe_gateway::charge(const charge_request& req) {
  if (auto s = check_key(req.idempotency_key); !s)
    return s.error();
  if (req.payment_method.empty())
    return make_error(errc::invalid_argument, "payment method is empty");
  if (!req.amount.is_positive())
    return make_error(errc::invalid_argument, "charge amount must be positive");
  form_fields form{
    {"amount", std::to_string(req.amount.amount_minor())},
    {"currency", lower(req.amount.currency().code())},
  };
  if (!req.customer.empty())
    form.emplace_back("customer", req.customer.value);
  form.emplace_back("payment_method", req.payment_method);
  form.emplace_back("confirm", "true");
  form.emplace_back("off_session", "true");
  if (!req.description.empty())
    form.emplace_back("description", req.description);
  form.emplace_back("metadata[idempotency_key]", req.idempotency_key);
  form.emplace_back("metadata[tenant_id]", req.tenant.value);
  const http_answer a = impl_->call("charge", http::verb::post,
                                    "/v1/payment_intents", req.idempotency_key,
                                    form_encode(form));
  return charge_outcome(a);
}

result<charge_result>
stripe_gateway::retrieve(const std::string& idempotency_key) {
  if (auto s = check_key(idempotency_key); !s)
    return s.error();
  const std::string query = "metadata['idempotency_key']:"
                            + search_quote(idempotency_key);
  const std::string path = "/v1/payment_intents/search?query="
                           + percent_encode(query);
  const http_answer a = impl_->call("retrieve", http::verb::get, path,
                                    std::string{});
  if (a.outcome != transport::answered)
    return unavailable(a);
  if (a.status < 200 || a.status >= 300) {
    const stripe_error e = read_error(a.body);
    if (a.status == 400 || a.status == 404)
      return stripe_failure(errc::invalid_argument, a, e);
    return stripe_failure(errc::unavailable, a, e);
  }
  const json doc = json::parse(a.body, nullptr, false);
  if (doc.is_discarded() || !doc.is_object() || !doc.contains("data")
      || !doc["data"].is_array())
    return make_error(errc::unavailable, "stripe search: unreadable answer");
  const json& data = doc["data"];
  if (data.empty())
    return make_error(errc::not_found, "no payment with idempotency key '"
                                         + idempotency_key + "'");
  if (data.size() > 1)
    spdlog::warn("event=stripe_duplicate_key key=\"{}\" payment_intents={}",
                 idempotency_key, data.size());
  auto found = from_payment_intent(data.front());
  if (!found)
    return make_error(errc::unavailable,
                      "stripe search: unreadable PaymentIntent");
  return *found;
}

result<refund_result> stripe_gateway::refund(const refund_request& req) {
  if (auto s = check_key(req.idempotency_key); !s)
    return s.error();
  if (req.charge_id.empty())
    return make_error(errc::invalid_argument, "charge id is empty");
  if (!req.amount.is_positive())
    return make_error(errc::invalid_argument, "refund amount must be positive");
  form_fields form{
    {req.charge_id.starts_with("pi_") ? "payment_intent" : "charge",
     req.charge_id},
    {"amount", std::to_string(req.amount.amount_minor())},
    {"metadata[idempotency_key]", req.idempotency_key},
  };
  const http_answer a = impl_->call("refund", http::verb::post, "/v1/refunds",
                                    req.idempotency_key, form_encode(form));
  if (a.outcome != transport::answered)
    return unavailable(a);
  if (a.status >= 200 && a.status < 300) {
    const json doc = json::parse(a.body, nullptr, false);
    const std::string id = str(doc, "id");
    if (id.empty())
      return make_error(errc::unavailable, "stripe refund: unreadable answer");
    // Stripe refunds exactly the amount asked, in the charge's currency;
    // its answer says which, and wins when readable.
    money amount = req.amount;
    const auto cur = currency::from_code(upper(str(doc, "currency")));
    if (cur && doc.contains("amount") && doc["amount"].is_number_integer())
      amount = money{doc["amount"].get<std::int64_t>(), *cur};
    return refund_result{id, amount};
  }
  const stripe_error e = read_error(a.body);
  if (e.type == "idempotency_error")
    return stripe_failure(errc::idempotency_conflict, a, e);
  if (refused_before_work(a.status) || a.status >= 500 || a.status == 409)
    return stripe_failure(errc::unavailable, a, e);
  if (e.code == "resource_missing" || a.status == 404)
    return stripe_failure(errc::not_found, a, e);
  if (e.code == "payment_intent_unexpected_state")
    return stripe_failure(errc::invalid_transition, a, e);
  return stripe_failure(errc::invalid_argument, a, e);
}

} // namespace recur
