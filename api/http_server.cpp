#include "api/http_server.hpp"

#include <algorithm>
#include <array>
#include <atomic>
#include <chrono>
#include <future>
#include <optional>
#include <strings.h>
#include <thread>

#include <boost/asio.hpp>
#include <boost/asio/thread_pool.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <spdlog/spdlog.h>

#include "api/problem.hpp"

#ifndef RECUR_VERSION
#  define RECUR_VERSION "0.0.0"
#endif

namespace recur::api {

// -- http_request
// ---------------------------------------------------------------

std::string_view http_request::path() const {
  const std::string_view t{target};
  return t.substr(0, t.find('?'));
}

std::string_view http_request::header(std::string_view name) const {
  for (const auto& [key, value] : headers)
    if (key.size() == name.size()
        && strncasecmp(key.data(), name.data(), name.size()) == 0)
      return value;
  return {};
}

namespace {

namespace beast = boost::beast;
namespace http = beast::http;
namespace net = boost::asio;
using tcp = net::ip::tcp;
using beast_request = http::request<http::string_body>;
using beast_response = http::response<http::string_body>;

// What the acceptor and every session share; sessions keep it alive.
struct shared_state {
  http_server_config config;
  http_handler handler;
  std::atomic<std::size_t> connections{0};
  std::atomic<std::size_t> in_flight{0};
  // The blocking handlers' pool; set by start(), which joins it in stop()
  // after the I/O threads (so no session posts to it once it is gone).
  net::thread_pool* pool = nullptr;
};

http_request to_plain(beast_request&& req) {
  http_request out;
  out.method = std::string{req.method_string()};
  out.target = std::string{req.target()};
  for (const auto& field : req)
    out.headers.emplace_back(std::string{field.name_string()},
                             std::string{field.value()});
  out.body = std::move(req.body());
  return out;
}

beast_response to_beast(http_response&& plain, unsigned version,
                        bool keep_alive, bool head) {
  beast_response res;
  res.result(plain.status);
  res.version(version);
  res.set(http::field::server, "recurd/" RECUR_VERSION);
  res.set(http::field::content_type, plain.content_type);
  for (auto& [name, value] : plain.headers)
    res.insert(name, value);
  res.body() = std::move(plain.body);
  res.keep_alive(keep_alive);
  res.prepare_payload();
  if (head)
    res.body().clear(); // Content-Length still announces the GET size
  return res;
}

// One connection: read a request, answer it, repeat while keep-alive holds.
class session : public std::enable_shared_from_this<session> {
public:
  session(tcp::socket&& socket, std::shared_ptr<shared_state> state)
    : stream_(std::move(socket)), state_(std::move(state)) {}

  ~session() { state_->connections.fetch_sub(1); }

  void start() {
    net::dispatch(stream_.get_executor(),
                  beast::bind_front_handler(&session::read,
                                            shared_from_this()));
  }

private:
  void read() {
    const auto& cfg = state_->config;
    parser_.emplace();
    parser_->body_limit(cfg.body_limit_bytes);
    parser_->header_limit(static_cast<std::uint32_t>(cfg.header_limit_bytes));
    // The timeout covers idle keep-alive time too: a silent client is dropped.
    stream_.expires_after(std::chrono::seconds(cfg.read_timeout_s));
    http::async_read(stream_, buffer_, *parser_,
                     beast::bind_front_handler(&session::on_read,
                                               shared_from_this()));
  }

  void on_read(beast::error_code ec, std::size_t) {
    if (ec == http::error::end_of_stream)
      return close();
    if (ec == http::error::body_limit)
      return reject(413, "payload_too_large", "Payload Too Large",
                    "request bodies are limited to "
                      + std::to_string(state_->config.body_limit_bytes)
                      + " bytes");
    if (ec == http::error::header_limit)
      return reject(431, "request_header_fields_too_large",
                    "Request Header Fields Too Large",
                    "request headers are limited to "
                      + std::to_string(state_->config.header_limit_bytes)
                      + " bytes");
    if (ec
        && ec.category()
             == http::make_error_code(http::error::bad_target).category()
        && ec != http::error::partial_message)
      return reject(400, "bad_request", "Bad Request", ec.message());
    if (ec)
      return; // timeout, reset, shutdown: nobody to answer
    serve(parser_->release());
  }

  // The fast handler answers on this I/O thread when it can; otherwise the
  // request goes to the pool and its answer comes back to this thread.
  void serve(beast_request&& req) {
    state_->in_flight.fetch_add(1);
    started_ = std::chrono::steady_clock::now();
    version_ = req.version();
    keep_alive_ = req.keep_alive();
    head_ = req.method() == http::verb::head;
    plain_req_ = to_plain(std::move(req));
    if (state_->config.fast_handler) {
      if (auto fast = call_fast_handler(plain_req_))
        return finish(std::move(*fast));
    }
    net::post(*state_->pool, [self = shared_from_this()] {
      auto res = self->call_handler(self->plain_req_);
      net::post(self->stream_.get_executor(),
                [self, res = std::move(res)]() mutable {
                  self->finish(std::move(res));
                });
    });
  }

  void finish(http_response&& plain_res) {
    const auto elapsed = std::chrono::steady_clock::now() - started_;
    // Debug, not info: at thousands of requests a second an access-log line
    // per request is a formatted write to stderr under spdlog's sink lock,
    // serialising the pool threads (the app logs every 5xx as a warning).
    spdlog::debug(
      "event=http_request method={} target={} status={} "
      "duration_us={}",
      plain_req_.method, plain_req_.target, plain_res.status,
      std::chrono::duration_cast<std::chrono::microseconds>(elapsed).count());
    write(to_beast(std::move(plain_res), version_, keep_alive_, head_), false);
  }

  http_response call_handler(const http_request& req) {
    try {
      return state_->handler(req);
    } catch (const std::exception& e) {
      spdlog::error("event=http_handler_failed target={} error=\"{}\"",
                    req.target, e.what());
      return problem_response(500, "internal_error", "Internal Server Error",
                              "the server failed to answer this request");
    }
  }

  std::optional<http_response> call_fast_handler(const http_request& req) {
    try {
      return state_->config.fast_handler(req);
    } catch (const std::exception& e) {
      spdlog::error("event=http_handler_failed target={} error=\"{}\"",
                    req.target, e.what());
      return problem_response(500, "internal_error", "Internal Server Error",
                              "the server failed to answer this request");
    }
  }

  // Answers a request that could not be read and closes the connection; the
  // unread rest of the request is drained first so the client sees the
  // answer instead of a reset.
  void reject(unsigned status, std::string_view type, std::string_view title,
              const std::string& detail) {
    auto res = to_beast(problem_response(status, type, title, detail), 11,
                        false, false);
    spdlog::info("event=http_rejected status={} type={}", status, type);
    write(std::move(res), true);
  }

  // `rejected`: the answer to a request that was never served (and so never
  // counted in flight); the connection is drained and closed after it.
  void write(beast_response&& res, bool rejected) {
    res_ = std::move(res);
    // A fresh deadline: the read's may be nearly spent by an idle client.
    stream_.expires_after(std::chrono::seconds(state_->config.read_timeout_s));
    http::async_write(stream_, res_,
                      beast::bind_front_handler(&session::on_write,
                                                shared_from_this(), rejected));
  }

  void on_write(bool rejected, beast::error_code ec, std::size_t) {
    if (!rejected)
      state_->in_flight.fetch_sub(1);
    if (ec)
      return;
    if (rejected)
      return drain();
    if (!res_.keep_alive())
      return close();
    read();
  }

  void drain() {
    beast::error_code ignored;
    stream_.socket().shutdown(tcp::socket::shutdown_send, ignored);
    stream_.expires_after(std::chrono::seconds(state_->config.drain_timeout_s));
    stream_.async_read_some(net::buffer(drain_buf_),
                            beast::bind_front_handler(&session::on_drain,
                                                      shared_from_this()));
  }

  void on_drain(beast::error_code ec, std::size_t n) {
    drained_bytes_ += n;
    // Bounded: a client that keeps sending is cut off with a reset.
    if (ec || drained_bytes_ > 4 * state_->config.body_limit_bytes)
      return;
    stream_.async_read_some(net::buffer(drain_buf_),
                            beast::bind_front_handler(&session::on_drain,
                                                      shared_from_this()));
  }

  void close() {
    beast::error_code ignored;
    stream_.socket().shutdown(tcp::socket::shutdown_send, ignored);
  }

  beast::tcp_stream stream_;
  beast::flat_buffer buffer_;
  std::optional<http::request_parser<http::string_body>> parser_;
  beast_response res_;
  std::shared_ptr<shared_state> state_;
  std::array<char, 16'384> drain_buf_{};
  std::size_t drained_bytes_ = 0;
  // The request being served (read by the pool thread while it runs).
  http_request plain_req_;
  std::chrono::steady_clock::time_point started_;
  unsigned version_ = 11;
  bool keep_alive_ = false;
  bool head_ = false;
};

} // namespace

// -- http_server
// ------------------------------------------------------------------

struct http_server::impl {
  using io_guard = net::executor_work_guard<net::io_context::executor_type>;

  impl(std::shared_ptr<shared_state> s, std::size_t io_threads)
    : state(std::move(s)) {
    for (std::size_t i = 0; i < std::max<std::size_t>(1, io_threads); ++i) {
      // One thread runs each loop: no strands, no scheduler shared by all.
      ios.push_back(std::make_unique<net::io_context>(1));
      guards.emplace_back(net::make_work_guard(*ios.back()));
    }
    acceptor.emplace(*ios.front());
    retry_timer.emplace(*ios.front());
  }

  // The loop of the next connection, round robin.
  net::io_context& next_io() {
    return *ios[next_loop++ % ios.size()];
  }

  void accept() {
    acceptor->async_accept(next_io(), [this](beast::error_code ec,
                                             tcp::socket socket) {
      if (ec == net::error::operation_aborted)
        return;
      if (ec) {
        // E.g. out of file descriptors: back off instead of spinning.
        spdlog::warn("event=http_accept_failed error=\"{}\"", ec.message());
        retry_timer->expires_after(std::chrono::milliseconds(100));
        retry_timer->async_wait([this](beast::error_code wait_ec) {
          if (!wait_ec)
            accept();
        });
        return;
      }
      admit(std::move(socket));
      accept();
    });
  }

  void admit(tcp::socket socket) {
    if (state->connections.fetch_add(1) >= state->config.max_connections) {
      state->connections.fetch_sub(1);
      spdlog::warn("event=http_connection_refused reason=max_connections");
      return; // the socket closes here
    }
    std::make_shared<session>(std::move(socket), state)->start();
  }

  void close_acceptor() {
    beast::error_code ignored;
    retry_timer->cancel();
    acceptor->close(ignored);
  }

  // Declared first so it outlives the loops and the sessions they hold.
  std::shared_ptr<shared_state> state;
  std::vector<std::unique_ptr<net::io_context>> ios;
  std::vector<io_guard> guards;
  // The acceptor and its retry timer live on the first loop.
  std::optional<tcp::acceptor> acceptor;
  std::optional<net::steady_timer> retry_timer;
  std::size_t next_loop = 0; // only the first loop's thread touches it
  std::vector<std::thread> threads;
  // Declared after the loops: destroyed first, with any session a task it
  // never ran still holds, while those sessions' loops exist.
  std::optional<net::thread_pool> pool;
  std::uint16_t port = 0;
  bool stopped = false;
};

http_server::http_server(http_server_config config, http_handler handler)
  : impl_(std::make_unique<impl>(std::make_shared<shared_state>(),
                                 config.io_threads)) {
  impl_->state->config = std::move(config);
  impl_->state->handler = std::move(handler);
}

http_server::~http_server() {
  try {
    stop();
  } catch (const std::exception& e) {
    // Only a failing thread join lands here; nothing is left to save.
    spdlog::error("event=http_server_stop_failed error=\"{}\"", e.what());
  }
}

status http_server::start() {
  const auto& cfg = impl_->state->config;
  RECUR_ASSERT(impl_->threads.empty() && cfg.threads > 0);
  beast::error_code ec;
  const auto address = net::ip::make_address(cfg.host, ec);
  if (ec)
    return make_error(errc::invalid_argument,
                      "invalid listen address '" + cfg.host + "'");
  const tcp::endpoint endpoint{address, cfg.port};
  auto& acceptor = *impl_->acceptor;
  acceptor.open(endpoint.protocol(), ec);
  if (!ec)
    acceptor.set_option(net::socket_base::reuse_address(true), ec);
  if (!ec)
    acceptor.bind(endpoint, ec);
  if (!ec)
    acceptor.listen(net::socket_base::max_listen_connections, ec);
  if (ec)
    return make_error(errc::invalid_argument, "cannot listen on " + cfg.host
                                                + ":" + std::to_string(cfg.port)
                                                + ": " + ec.message());
  impl_->port = acceptor.local_endpoint().port();
  impl_->pool.emplace(cfg.threads);
  impl_->state->pool = &*impl_->pool;
  impl_->accept();
  for (auto& ioc : impl_->ios)
    impl_->threads.emplace_back([&ioc] { ioc->run(); });
  return {};
}

std::uint16_t http_server::port() const {
  return impl_->port;
}

void http_server::stop() {
  if (impl_->stopped)
    return;
  impl_->stopped = true;
  if (impl_->threads.empty()) {
    impl_->close_acceptor();
    return;
  }
  // The acceptor lives on the first loop; close it there, then let requests
  // in flight finish before the loops and the pool stop.
  std::promise<void> closed;
  net::post(*impl_->ios.front(), [&] {
    impl_->close_acceptor();
    closed.set_value();
  });
  closed.get_future().wait();
  const auto deadline
    = std::chrono::steady_clock::now()
      + std::chrono::seconds(impl_->state->config.drain_timeout_s);
  while (impl_->state->in_flight.load() > 0
         && std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  impl_->guards.clear();
  for (auto& ioc : impl_->ios)
    ioc->stop();
  for (auto& t : impl_->threads)
    t.join();
  // Handlers still running finish (each is bounded by its own timeouts);
  // queued ones are dropped, as the loops dropped theirs.
  impl_->pool->stop();
  impl_->pool->join();
}

} // namespace recur::api
