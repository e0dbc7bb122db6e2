#include "gateways/stripe_gateway.hpp"

#include <atomic>
#include <cctype>
#include <condition_variable>
#include <cstdio>
#include <functional>
#include <map>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <gtest/gtest.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

namespace recur {
namespace {

namespace net = boost::asio;
namespace ssl = boost::asio::ssl;
namespace beast = boost::beast;
namespace http = boost::beast::http;
using tcp = net::ip::tcp;

// -- a fake Stripe on a loopback socket ---------------------------------------

/// What the fake saw: header names lower-cased.
struct seen_request {
  std::string method;
  std::string target;
  std::map<std::string, std::string> headers;
  std::string body;

  std::string header(const std::string& name) const {
    const auto it = headers.find(name);
    return it == headers.end() ? std::string{} : it->second;
  }
};

/// What the fake answers. `hang`: never answer (until the test ends);
/// `drop`: read the request, then close without a word.
struct canned {
  unsigned status = 200;
  std::string body;
  bool hang = false;
  bool drop = false;
};

/// One connection at a time, one request per connection, on its own thread;
/// over TLS when given a server context.
class fake_stripe {
public:
  using handler = std::function<canned(const seen_request&)>;

  explicit fake_stripe(handler h, ssl::context* tls = nullptr)
    : handler_(std::move(h)),
      tls_(tls),
      acceptor_(ioc_, tcp::endpoint{net::ip::make_address("127.0.0.1"), 0}) {
    port_ = acceptor_.local_endpoint().port();
    thread_ = std::thread([this] { serve(); });
  }

  ~fake_stripe() {
    {
      std::lock_guard guard{mu_};
      stopping_ = true;
    }
    released_.notify_all();
    // Wake the blocking accept with a connection of our own.
    net::io_context ioc;
    tcp::socket wake{ioc};
    beast::error_code ec;
    wake.connect({net::ip::make_address("127.0.0.1"), port_}, ec);
    thread_.join();
  }

  std::uint16_t port() const { return port_; }

  std::string url() const {
    return (tls_ ? "https" : "http") + std::string{"://127.0.0.1:"}
           + std::to_string(port_);
  }

  std::vector<seen_request> requests() const {
    std::lock_guard guard{mu_};
    return seen_;
  }

private:
  void serve() {
    while (true) {
      tcp::socket socket{ioc_};
      beast::error_code ec;
      acceptor_.accept(socket, ec);
      {
        std::lock_guard guard{mu_};
        if (stopping_)
          return;
      }
      if (ec)
        continue;
      if (!tls_) {
        handle(socket, socket);
        continue;
      }
      ssl::stream<tcp::socket&> stream{socket, *tls_};
      stream.handshake(ssl::stream_base::server, ec);
      if (!ec)
        handle(stream, socket);
    }
  }

  template <class Stream>
  void handle(Stream& stream, tcp::socket& socket) {
    beast::flat_buffer buffer;
    http::request<http::string_body> req;
    beast::error_code ec;
    http::read(stream, buffer, req, ec);
    if (ec)
      return; // e.g. a TLS ClientHello: never a request
    seen_request seen{std::string{req.method_string()},
                      std::string{req.target()},
                      {},
                      req.body()};
    for (const auto& field : req) {
      std::string name{field.name_string()};
      for (char& c : name)
        c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
      seen.headers[name] = std::string{field.value()};
    }
    {
      std::lock_guard guard{mu_};
      seen_.push_back(seen);
    }
    const canned answer = handler_(seen);
    if (answer.hang) {
      std::unique_lock lock{mu_};
      released_.wait(lock, [this] { return stopping_; });
      return;
    }
    if (answer.drop) {
      socket.shutdown(tcp::socket::shutdown_both, ec);
      return;
    }
    http::response<http::string_body> res{
      static_cast<http::status>(answer.status), 11};
    res.set(http::field::content_type, "application/json");
    res.set("Request-Id", "req_fake");
    res.body() = answer.body;
    res.keep_alive(false);
    res.prepare_payload();
    http::write(stream, res, ec);
    socket.shutdown(tcp::socket::shutdown_both, ec);
  }

  handler handler_;
  ssl::context* tls_;
  net::io_context ioc_;
  tcp::acceptor acceptor_;
  std::uint16_t port_ = 0;
  std::thread thread_;
  mutable std::mutex mu_;
  std::condition_variable released_;
  bool stopping_ = false;
  std::vector<seen_request> seen_;
};

/// A loopback port nobody listens on (bound, then released).
std::uint16_t closed_port() {
  net::io_context ioc;
  tcp::acceptor a{ioc, tcp::endpoint{net::ip::make_address("127.0.0.1"), 0}};
  const auto port = a.local_endpoint().port();
  a.close();
  return port;
}

/// A self-signed certificate for 127.0.0.1 (P-256), made fresh per run.
struct test_certificate {
  std::string cert_pem;
  std::string key_pem;
};

std::string drain(BIO* bio) {
  char* data = nullptr;
  const long size = BIO_get_mem_data(bio, &data);
  std::string out(data, static_cast<std::size_t>(size));
  BIO_free(bio);
  return out;
}

test_certificate self_signed_for_loopback() {
  EVP_PKEY* key = EVP_EC_gen("P-256");
  X509* x = X509_new();
  X509_set_version(x, 2);
  ASN1_INTEGER_set(X509_get_serialNumber(x), 1);
  X509_gmtime_adj(X509_getm_notBefore(x), -60);
  X509_gmtime_adj(X509_getm_notAfter(x), 3600);
  X509_set_pubkey(x, key);
  X509_NAME* name = X509_get_subject_name(x);
  X509_NAME_add_entry_by_txt(
    name, "CN", MBSTRING_ASC,
    reinterpret_cast<const unsigned char*>("fake stripe"), -1, -1, 0);
  X509_set_issuer_name(x, name);
  X509V3_CTX ctx;
  X509V3_set_ctx_nodb(&ctx);
  X509V3_set_ctx(&ctx, x, x, nullptr, nullptr, 0);
  for (auto [nid, value] :
       {std::pair{NID_subject_alt_name, "IP:127.0.0.1"},
        std::pair{NID_basic_constraints, "critical,CA:TRUE"}}) {
    X509_EXTENSION* ext = X509V3_EXT_conf_nid(nullptr, &ctx, nid, value);
    X509_add_ext(x, ext, -1);
    X509_EXTENSION_free(ext);
  }
  X509_sign(x, key, EVP_sha256());
  BIO* cert = BIO_new(BIO_s_mem());
  PEM_write_bio_X509(cert, x);
  BIO* pkey = BIO_new(BIO_s_mem());
  PEM_write_bio_PrivateKey(pkey, key, nullptr, nullptr, 0, nullptr, nullptr);
  X509_free(x);
  EVP_PKEY_free(key);
  return {drain(cert), drain(pkey)};
}

ssl::context server_context(const test_certificate& c) {
  ssl::context ctx{ssl::context::tls_server};
  ctx.use_certificate_chain(net::buffer(c.cert_pem));
  ctx.use_private_key(net::buffer(c.key_pem), ssl::context::pem);
  return ctx;
}

// -- helpers ------------------------------------------------------------------

using fields = std::vector<std::pair<std::string, std::string>>;

int hex_digit(char c) {
  if (c >= '0' && c <= '9')
    return c - '0';
  if (c >= 'A' && c <= 'F')
    return c - 'A' + 10;
  if (c >= 'a' && c <= 'f')
    return c - 'a' + 10;
  ADD_FAILURE() << "bad percent escape";
  return 0;
}

/// A form decoder of the test's own, to check what went over the wire.
std::string percent_decode(std::string_view s) {
  std::string out;
  for (std::size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '%' && i + 2 < s.size()) {
      out += static_cast<char>(hex_digit(s[i + 1]) * 16 + hex_digit(s[i + 2]));
      i += 2;
    } else if (s[i] == '+') {
      out += ' ';
    } else {
      out += s[i];
    }
  }
  return out;
}

fields decode_form(std::string_view body) {
  fields out;
  while (!body.empty()) {
    const std::size_t amp = body.find('&');
    const std::string_view pair = body.substr(0, amp);
    const std::size_t eq = pair.find('=');
    EXPECT_NE(eq, std::string_view::npos) << pair;
    out.emplace_back(percent_decode(pair.substr(0, eq)),
                     percent_decode(pair.substr(eq + 1)));
    if (amp == std::string_view::npos)
      break;
    body.remove_prefix(amp + 1);
  }
  return out;
}

const currency usd = currency::of("USD");

charge_request a_charge(std::string key = "inv_42/attempt-1") {
  return charge_request{.idempotency_key = std::move(key),
                        .tenant = tenant_id{"ten_1"},
                        .customer = customer_id{"cus_1"},
                        .payment_method = "pm_card_visa",
                        .amount = money{1999, usd},
                        .description = "Invoice inv_42 & more"};
}

stripe_config config_for(const std::string& url) {
  stripe_config c;
  c.base_url = url;
  c.secret_key = "sk_test_123";
  c.connect_timeout_ms = 2000;
  c.read_timeout_ms = 2000;
  return c;
}

std::string payment_intent(std::string_view id, std::string_view status) {
  return R"({"id":")" + std::string{id}
         + R"(","object":"payment_intent","amount":1999,"currency":"usd",)"
           R"("status":")"
         + std::string{status}
         + R"(","metadata":{"idempotency_key":"inv_42/attempt-1"}})";
}

canned answer(unsigned status, std::string body) {
  return canned{status, std::move(body), false, false};
}

/// A fake that answers every request the same.
fake_stripe always(canned c) {
  return fake_stripe{[c](const seen_request&) { return c; }};
}

result<charge_result> charge_once(const canned& c) {
  fake_stripe fake{[c](const seen_request&) { return c; }};
  stripe_gateway gw{config_for(fake.url())};
  return gw.charge(a_charge());
}

const fields expected_charge_fields{
  {"amount", "1999"},
  {"currency", "usd"},
  {"customer", "cus_1"},
  {"payment_method", "pm_card_visa"},
  {"confirm", "true"},
  {"off_session", "true"},
  {"description", "Invoice inv_42 & more"},
  {"metadata[idempotency_key]", "inv_42/attempt-1"},
  {"metadata[tenant_id]", "ten_1"},
};

// -- charge -------------------------------------------------------------------

TEST(stripe_gateway, a_charge_posts_the_exact_payment_intent_request) {
  fake_stripe fake{[](const seen_request&) {
    return answer(200, payment_intent("pi_123", "succeeded"));
  }};
  stripe_gateway gw{config_for(fake.url())};
  auto r = gw.charge(a_charge());
  ASSERT_TRUE(r) << r.error().detail;
  EXPECT_EQ(*r, (charge_result{charge_status::succeeded, "pi_123", "", {}}));

  const auto seen = fake.requests();
  ASSERT_EQ(seen.size(), 1u);
  const seen_request& req = seen[0];
  EXPECT_EQ(req.method, "POST");
  EXPECT_EQ(req.target, "/v1/payment_intents");
  EXPECT_EQ(req.header("authorization"), "Bearer sk_test_123");
  EXPECT_EQ(req.header("idempotency-key"), "inv_42/attempt-1");
  EXPECT_EQ(req.header("content-type"), "application/x-www-form-urlencoded");
  EXPECT_EQ(req.header("host"), "127.0.0.1:" + std::to_string(fake.port()));
  EXPECT_EQ(req.header("content-length"), std::to_string(req.body.size()));
  EXPECT_EQ(req.header("stripe-version"), "");
  EXPECT_EQ(decode_form(req.body), expected_charge_fields);
  // Brackets, '/', '&' and spaces are percent-encoded on the wire.
  EXPECT_NE(req.body.find("metadata%5Bidempotency_key%5D=inv_42%2Fattempt-1"),
            std::string::npos)
    << req.body;
  EXPECT_NE(req.body.find("description=Invoice%20inv_42%20%26%20more"),
            std::string::npos)
    << req.body;
}

TEST(stripe_gateway, the_base_path_and_stripe_version_are_honoured) {
  fake_stripe fake{[](const seen_request&) {
    return answer(200, payment_intent("pi_1", "succeeded"));
  }};
  stripe_config c = config_for(fake.url() + "/stripe/");
  c.stripe_version = "2024-06-20";
  stripe_gateway gw{c};
  charge_request req = a_charge();
  req.customer = customer_id{};
  req.description.clear();
  ASSERT_TRUE(gw.charge(req));
  const auto seen = fake.requests();
  ASSERT_EQ(seen.size(), 1u);
  EXPECT_EQ(seen[0].target, "/stripe/v1/payment_intents");
  EXPECT_EQ(seen[0].header("stripe-version"), "2024-06-20");
  // Empty customer and description are left out, not sent empty.
  for (const auto& [key, value] : decode_form(seen[0].body)) {
    EXPECT_NE(key, "customer");
    EXPECT_NE(key, "description");
  }
}

TEST(stripe_gateway, processing_and_requires_action_are_pending) {
  for (const char* status : {"processing", "requires_action"}) {
    auto r = charge_once(answer(200, payment_intent("pi_7", status)));
    ASSERT_TRUE(r) << status;
    EXPECT_EQ(*r, (charge_result{charge_status::pending, "pi_7", "", {}}))
      << status;
  }
}

TEST(stripe_gateway, a_soft_card_decline_is_declined_soft) {
  auto r = charge_once(answer(402, R"({"error":{
    "type":"card_error","code":"card_declined",
    "decline_code":"insufficient_funds",
    "message":"Your card has insufficient funds.",
    "payment_intent":{"id":"pi_9","status":"requires_payment_method"}}})"));
  ASSERT_TRUE(r) << r.error().detail;
  EXPECT_EQ(*r, (charge_result{charge_status::declined, "pi_9",
                               "insufficient_funds", decline_class::soft}));
}

TEST(stripe_gateway, an_expired_card_is_declined_hard) {
  auto r = charge_once(answer(402, R"({"error":{
    "type":"card_error","code":"expired_card",
    "message":"Your card has expired.",
    "payment_intent":{"id":"pi_8"}}})"));
  ASSERT_TRUE(r) << r.error().detail;
  EXPECT_EQ(*r, (charge_result{charge_status::declined, "pi_8", "expired_card",
                               decline_class::hard}));
}

TEST(stripe_gateway, a_missing_payment_method_is_a_hard_decline) {
  auto r = charge_once(answer(400, R"({"error":{
    "type":"invalid_request_error","code":"resource_missing",
    "param":"payment_method","message":"No such PaymentMethod: 'pm_x'"}})"));
  ASSERT_TRUE(r) << r.error().detail;
  EXPECT_EQ(r->status, charge_status::declined);
  EXPECT_EQ(r->decline_code, "resource_missing");
  EXPECT_EQ(r->decline, decline_class::hard);
}

TEST(stripe_gateway, an_idempotency_error_is_a_conflict) {
  for (unsigned status : {409u, 400u}) {
    auto r = charge_once(answer(status, R"({"error":{
      "type":"idempotency_error",
      "message":"Keys for idempotent requests can only be used with the same parameters they were first used with."}})"));
    ASSERT_FALSE(r) << status;
    EXPECT_EQ(r.code(), errc::idempotency_conflict) << status;
    EXPECT_NE(r.error().detail.find("same parameters"), std::string::npos);
  }
}

TEST(stripe_gateway, a_server_error_after_sending_is_unknown) {
  auto r = charge_once(answer(500, R"({"error":{"type":"api_error"}})"));
  ASSERT_TRUE(r) << r.error().detail;
  EXPECT_EQ(*r, charge_result{});
  EXPECT_EQ(r->status, charge_status::unknown);
}

TEST(stripe_gateway, an_unreadable_success_is_unknown) {
  auto r = charge_once(answer(200, "<html>proxy</html>"));
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, charge_status::unknown);
}

TEST(stripe_gateway, a_connection_dropped_after_sending_is_unknown) {
  auto r = charge_once(canned{200, {}, false, true});
  ASSERT_TRUE(r) << r.error().detail;
  EXPECT_EQ(r->status, charge_status::unknown);
}

TEST(stripe_gateway, a_read_timeout_is_unknown) {
  fake_stripe fake{[](const seen_request&) {
    return canned{200, {}, true, false};
  }};
  stripe_config c = config_for(fake.url());
  c.read_timeout_ms = 200;
  stripe_gateway gw{c};
  auto r = gw.charge(a_charge());
  ASSERT_TRUE(r) << r.error().detail;
  EXPECT_EQ(r->status, charge_status::unknown);
  EXPECT_EQ(fake.requests().size(), 1u);
}

TEST(stripe_gateway, a_server_that_is_down_is_unavailable) {
  stripe_gateway gw{
    config_for("http://127.0.0.1:" + std::to_string(closed_port()))};
  auto r = gw.charge(a_charge());
  ASSERT_FALSE(r);
  EXPECT_EQ(r.code(), errc::unavailable);
  EXPECT_NE(r.error().detail.find("connect"), std::string::npos);
}

TEST(stripe_gateway, a_rejected_api_key_or_rate_limit_is_unavailable) {
  for (unsigned status : {401u, 429u}) {
    auto r = charge_once(answer(status, R"({"error":{
      "type":"invalid_request_error","message":"nope"}})"));
    ASSERT_FALSE(r) << status;
    EXPECT_EQ(r.code(), errc::unavailable) << status;
  }
}

TEST(stripe_gateway, another_request_error_is_invalid_argument) {
  auto r = charge_once(answer(400, R"({"error":{
    "type":"invalid_request_error","code":"parameter_invalid_integer",
    "param":"amount","message":"Invalid integer: 19.99"}})"));
  ASSERT_FALSE(r);
  EXPECT_EQ(r.code(), errc::invalid_argument);
  EXPECT_NE(r.error().detail.find("Invalid integer"), std::string::npos);
}

TEST(stripe_gateway, malformed_requests_never_reach_stripe) {
  fake_stripe fake{[](const seen_request&) {
    return answer(200, payment_intent("pi_1", "succeeded"));
  }};
  stripe_gateway gw{config_for(fake.url())};
  charge_request no_key = a_charge("");
  charge_request long_key = a_charge(std::string(256, 'k'));
  charge_request injected = a_charge("k\r\nX-Evil: 1");
  charge_request no_method = a_charge();
  no_method.payment_method.clear();
  charge_request zero = a_charge();
  zero.amount = money{0, usd};
  for (const auto& req : {no_key, long_key, injected, no_method, zero}) {
    auto r = gw.charge(req);
    ASSERT_FALSE(r);
    EXPECT_EQ(r.code(), errc::invalid_argument);
  }
  auto refund = gw.refund({"", "pi_1", money{1, usd}});
  ASSERT_FALSE(refund);
  EXPECT_EQ(refund.code(), errc::invalid_argument);
  auto lookup = gw.retrieve("k\n");
  ASSERT_FALSE(lookup);
  EXPECT_EQ(lookup.code(), errc::invalid_argument);
  EXPECT_TRUE(fake.requests().empty());
}

TEST(stripe_gateway, https_to_a_server_that_does_not_speak_tls_is_unavailable) {
  // The TLS handshake fails, so the request was never sent.
  fake_stripe fake{[](const seen_request&) {
    return answer(200, payment_intent("pi_1", "succeeded"));
  }};
  stripe_gateway gw{
    config_for("https://127.0.0.1:" + std::to_string(fake.port()))};
  auto r = gw.charge(a_charge());
  ASSERT_FALSE(r);
  EXPECT_EQ(r.code(), errc::unavailable);
  EXPECT_TRUE(fake.requests().empty());
}

TEST(stripe_gateway, https_verifies_the_server_against_the_given_ca) {
  const test_certificate cert = self_signed_for_loopback();
  ssl::context tls = server_context(cert);
  fake_stripe fake{[](const seen_request&) {
                     return answer(200, payment_intent("pi_tls", "succeeded"));
                   },
                   &tls};
  const std::string ca_file = ::testing::TempDir() + "recur_fake_stripe_ca_"
                              + std::to_string(fake.port()) + ".pem";
  {
    std::FILE* f = std::fopen(ca_file.c_str(), "w");
    ASSERT_NE(f, nullptr);
    std::fwrite(cert.cert_pem.data(), 1, cert.cert_pem.size(), f);
    std::fclose(f);
  }
  stripe_config c = config_for(fake.url());
  c.ca_file = ca_file;
  stripe_gateway trusting{c};
  auto r = trusting.charge(a_charge());
  ASSERT_TRUE(r) << r.error().detail;
  EXPECT_EQ(r->charge_id, "pi_tls");
  ASSERT_EQ(fake.requests().size(), 1u);
  EXPECT_EQ(fake.requests()[0].header("authorization"), "Bearer sk_test_123");

  // With the system's CAs the self-signed certificate is refused, before a
  // byte of the request (or the API key) is sent.
  stripe_gateway strict{config_for(fake.url())};
  auto refused = strict.charge(a_charge());
  ASSERT_FALSE(refused);
  EXPECT_EQ(refused.code(), errc::unavailable);
  EXPECT_NE(refused.error().detail.find("tls handshake"), std::string::npos);
  EXPECT_EQ(fake.requests().size(), 1u);
  std::remove(ca_file.c_str());
}

TEST(stripe_gateway, concurrent_charges_each_get_their_own_answer) {
  fake_stripe fake{[](const seen_request& req) {
    return answer(200, payment_intent("pi_" + req.header("idempotency-key"),
                                      "succeeded"));
  }};
  stripe_gateway gw{config_for(fake.url())};
  constexpr int threads = 4;
  constexpr int per_thread = 5;
  std::atomic<int> right{0};
  std::vector<std::thread> pool;
  for (int t = 0; t < threads; ++t) {
    pool.emplace_back([&, t] {
      for (int i = 0; i < per_thread; ++i) {
        const std::string key = "k" + std::to_string(t) + "_"
                                + std::to_string(i);
        auto r = gw.charge(a_charge(key));
        if (r && r->status == charge_status::succeeded
            && r->charge_id == "pi_" + key)
          ++right;
      }
    });
  }
  for (auto& th : pool)
    th.join();
  EXPECT_EQ(right.load(), threads * per_thread);
  EXPECT_EQ(fake.requests().size(),
            static_cast<std::size_t>(threads * per_thread));
}

// -- retrieve -----------------------------------------------------------------

TEST(stripe_gateway, retrieve_searches_by_the_metadata_key) {
  fake_stripe fake{[](const seen_request&) {
    return answer(200, R"({"object":"search_result","has_more":false,
      "data":[)" + payment_intent("pi_123", "succeeded")
                         + "]}");
  }};
  stripe_gateway gw{config_for(fake.url())};
  auto r = gw.retrieve("inv_42/attempt-1");
  ASSERT_TRUE(r) << r.error().detail;
  EXPECT_EQ(*r, (charge_result{charge_status::succeeded, "pi_123", "", {}}));

  const auto seen = fake.requests();
  ASSERT_EQ(seen.size(), 1u);
  EXPECT_EQ(seen[0].method, "GET");
  EXPECT_EQ(seen[0].target,
            "/v1/payment_intents/search?query="
            "metadata%5B%27idempotency_key%27%5D%3A%27inv_42%2Fattempt-1%27");
  EXPECT_EQ(percent_decode(seen[0].target),
            "/v1/payment_intents/search?query="
            "metadata['idempotency_key']:'inv_42/attempt-1'");
  EXPECT_EQ(seen[0].header("authorization"), "Bearer sk_test_123");
  EXPECT_EQ(seen[0].header("idempotency-key"), "");
  EXPECT_TRUE(seen[0].body.empty());
}

TEST(stripe_gateway, retrieve_maps_a_failed_payment_to_its_decline) {
  auto fake = always(answer(200, R"({"object":"search_result","data":[{
    "id":"pi_5","status":"requires_payment_method",
    "last_payment_error":{"type":"card_error","code":"card_declined",
                          "decline_code":"lost_card"}}]})"));
  stripe_gateway gw{config_for(fake.url())};
  auto r = gw.retrieve("inv_1/attempt-1");
  ASSERT_TRUE(r) << r.error().detail;
  EXPECT_EQ(*r, (charge_result{charge_status::declined, "pi_5", "lost_card",
                               decline_class::hard}));
}

TEST(stripe_gateway, retrieve_of_an_unknown_key_is_not_found) {
  auto fake = always(answer(200, R"({"object":"search_result","data":[],
                                    "has_more":false})"));
  stripe_gateway gw{config_for(fake.url())};
  auto r = gw.retrieve("it's/a\\key");
  ASSERT_FALSE(r);
  EXPECT_EQ(r.code(), errc::not_found);
  const auto seen = fake.requests();
  ASSERT_EQ(seen.size(), 1u);
  // Quotes and backslashes are escaped inside the search string.
  EXPECT_EQ(
    percent_decode(seen[0].target),
    R"(/v1/payment_intents/search?query=metadata['idempotency_key']:'it\'s/a\\key')");
}

TEST(stripe_gateway, retrieve_failures_are_unavailable) {
  {
    auto fake = always(answer(500, "{}"));
    stripe_gateway gw{config_for(fake.url())};
    auto r = gw.retrieve("k");
    ASSERT_FALSE(r);
    EXPECT_EQ(r.code(), errc::unavailable);
  }
  stripe_gateway down{
    config_for("http://127.0.0.1:" + std::to_string(closed_port()))};
  auto r = down.retrieve("k");
  ASSERT_FALSE(r);
  EXPECT_EQ(r.code(), errc::unavailable);
}

// -- refund -------------------------------------------------------------------

TEST(stripe_gateway, a_refund_posts_the_exact_request) {
  fake_stripe fake{[](const seen_request&) {
    return answer(200, R"({"id":"re_1","object":"refund","amount":500,
      "currency":"usd","payment_intent":"pi_123","status":"succeeded"})");
  }};
  stripe_gateway gw{config_for(fake.url())};
  auto r = gw.refund({"inv_42/refund-1", "pi_123", money{500, usd}});
  ASSERT_TRUE(r) << r.error().detail;
  EXPECT_EQ(*r, (refund_result{"re_1", money{500, usd}}));

  const auto seen = fake.requests();
  ASSERT_EQ(seen.size(), 1u);
  EXPECT_EQ(seen[0].method, "POST");
  EXPECT_EQ(seen[0].target, "/v1/refunds");
  EXPECT_EQ(seen[0].header("authorization"), "Bearer sk_test_123");
  EXPECT_EQ(seen[0].header("idempotency-key"), "inv_42/refund-1");
  EXPECT_EQ(seen[0].header("content-type"),
            "application/x-www-form-urlencoded");
  EXPECT_EQ(decode_form(seen[0].body),
            (fields{{"payment_intent", "pi_123"},
                    {"amount", "500"},
                    {"metadata[idempotency_key]", "inv_42/refund-1"}}));
}

TEST(stripe_gateway, a_refund_of_a_plain_charge_names_the_charge) {
  auto fake
    = always(answer(200, R"({"id":"re_2","amount":100,"currency":"usd"})"));
  stripe_gateway gw{config_for(fake.url())};
  ASSERT_TRUE(gw.refund({"r-2", "ch_77", money{100, usd}}));
  const auto seen = fake.requests();
  ASSERT_EQ(seen.size(), 1u);
  EXPECT_EQ(decode_form(seen[0].body)[0],
            (std::pair<std::string, std::string>{"charge", "ch_77"}));
}

TEST(stripe_gateway, refund_errors_are_typed) {
  struct row {
    canned reply;
    errc expected;
  };
  const row rows[] = {
    {answer(400, R"({"error":{"type":"invalid_request_error",
       "code":"resource_missing","message":"No such payment_intent"}})"),
     errc::not_found},
    {answer(400, R"({"error":{"type":"idempotency_error"}})"),
     errc::idempotency_conflict},
    {answer(400, R"({"error":{"type":"invalid_request_error",
       "code":"charge_already_refunded"}})"),
     errc::invalid_argument},
    {answer(500, "{}"), errc::unavailable},
    {canned{200, {}, false, true}, errc::unavailable},
  };
  for (const row& r : rows) {
    auto fake = always(r.reply);
    stripe_gateway gw{config_for(fake.url())};
    auto got = gw.refund({"r-1", "pi_1", money{100, usd}});
    ASSERT_FALSE(got) << r.reply.status;
    EXPECT_EQ(got.code(), r.expected) << r.reply.status << " " << r.reply.body;
  }
}

// -- configuration and encoding -----------------------------------------------

TEST(stripe_gateway, the_name_is_stripe) {
  stripe_gateway gw{config_for("http://127.0.0.1:1")};
  EXPECT_EQ(gw.name(), "stripe");
}

TEST(stripe_gateway, configurations_are_validated_field_by_field) {
  EXPECT_TRUE(validate(config_for("https://api.stripe.com")));
  EXPECT_TRUE(validate(config_for("http://[::1]:12111/prefix")));
  auto code_for = [](const stripe_config& c) {
    auto s = validate(c);
    return s ? std::string{"ok"} : s.error().detail;
  };
  for (const char* url : {"ftp://x", "api.stripe.com", "http://", "http://:80",
                          "http://host:0", "http://host:99999", "http://host:",
                          "http://ho st", "http://host/?q=1", "http://[::1"}) {
    EXPECT_EQ(code_for(config_for(url)).rfind("base_url:", 0), 0u) << url;
  }
  stripe_config c = config_for("http://127.0.0.1:1");
  c.secret_key.clear();
  EXPECT_EQ(code_for(c), "secret_key: is empty");
  c = config_for("http://127.0.0.1:1");
  c.secret_key = "sk_test\r\nX-Evil: 1";
  EXPECT_EQ(code_for(c), "secret_key: must be printable ASCII");
  c = config_for("http://127.0.0.1:1");
  c.read_timeout_ms = 0;
  EXPECT_EQ(code_for(c).rfind("read_timeout_ms", 0), 0u);
  c = config_for("http://127.0.0.1:1");
  c.connect_timeout_ms = stripe_timeout_ms_max + 1;
  EXPECT_EQ(code_for(c).rfind("connect_timeout_ms", 0), 0u);
  c = config_for("http://127.0.0.1:1");
  c.response_size_max_bytes = 10;
  EXPECT_EQ(code_for(c).rfind("response_size_max_bytes", 0), 0u);
}

TEST(stripe_gateway, form_encoding_escapes_everything_but_unreserved_bytes) {
  EXPECT_EQ(form_encode({{"metadata[k]", "a b&c=d+e/é~._-"}, {"x", ""}}),
            "metadata%5Bk%5D=a%20b%26c%3Dd%2Be%2F%C3%A9~._-&x=");
  EXPECT_EQ(percent_encode("AZaz09"), "AZaz09");
  EXPECT_EQ(decode_form(form_encode({{"k'", "v\n"}})), (fields{{"k'", "v\n"}}));
}

} // namespace
} // namespace recur
