#pragma once
/// A small HTTP/1.1 server that hands plain request structs to one handler;
/// Boost.Beast and asio stay inside http_server.cpp.

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "domain/error.hpp"

namespace recur::api {

using header_list = std::vector<std::pair<std::string, std::string>>;

/// One parsed request. `target` is the raw request target, query included.
struct http_request {
  std::string method;
  std::string target;
  header_list headers;
  std::string body;

  /// The path part of `target` (everything before '?').
  std::string_view path() const;

  /// The first header with this name (case-insensitive), or "" if absent.
  std::string_view header(std::string_view name) const;
};

/// What a handler answers. The server adds Content-Length, Server and
/// Connection; `headers` carries anything else (e.g. Allow).
struct http_response {
  unsigned status = 200;
  std::string content_type = "application/json";
  std::string body;
  header_list headers;
};

/// Called on a pool thread, possibly from several threads at once; may
/// block (database reads, durable commits).
using http_handler = std::function<http_response(const http_request&)>;

/// Called on an I/O thread first, if set: answers what it can without
/// blocking (from memory, no I/O, only short locks); std::nullopt hands the
/// request to `http_handler` on the pool. Must not block: every connection
/// of that I/O thread waits meanwhile.
using http_fast_handler
  = std::function<std::optional<http_response>(const http_request&)>;

/// Limits and sizes; every one of them bounds memory or time per client.
struct http_server_config {
  std::string host = "127.0.0.1";
  std::uint16_t port = 8080;
  /// Handlers run on these threads and block on them (PostgreSQL reads,
  /// durable commits: milliseconds each), so the pool is sized for requests
  /// in flight, not for cores: with 2 threads at most 2 commands could wait
  /// for the group commit together, which caps commands at 2 / commit
  /// latency. Idle threads cost only their stacks.
  std::size_t threads = 64;
  /// Threads that read and write sockets, parse requests and run the fast
  /// handler, each with its own event loop and its share of the
  /// connections. Sized for cores: they never block.
  std::size_t io_threads = 2;
  /// Optional; see http_fast_handler.
  http_fast_handler fast_handler;
  std::size_t max_connections = 1024;
  std::size_t body_limit_bytes = 1'048'576; // 1 MiB
  std::size_t header_limit_bytes = 16'384;  // 16 KiB
  std::int64_t read_timeout_s = 30;
  std::int64_t drain_timeout_s = 5;
};

/// Accepts connections until `stop()`: `io_threads` event loops do the
/// socket work and the fast handler, a pool of `threads` runs the (blocking)
/// handler.
///
/// Requests whose body exceeds the limit get 413 and those whose header
/// exceeds it 431, both as problem+json with `Connection: close`; malformed
/// requests get 400. Keep-alive follows HTTP/1.1 rules.
class http_server {
public:
  http_server(http_server_config config, http_handler handler);
  ~http_server();

  http_server(const http_server&) = delete;
  http_server& operator=(const http_server&) = delete;

  /// Binds, listens and starts the pool. Fails with `invalid_argument` when
  /// the address is malformed or cannot be bound.
  status start();

  /// The bound port (useful when the config asked for port 0).
  std::uint16_t port() const;

  /// Stops accepting, waits up to `drain_timeout_s` for requests in flight,
  /// then stops the pool and joins it. Idempotent.
  void stop();

private:
  struct impl;
  std::unique_ptr<impl> impl_;
};

} // namespace recur::api
