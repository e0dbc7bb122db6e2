#pragma once
/// recurd's command line: flags, their environment variables and defaults.

#include <cstddef>
#include <cstdint>
#include <functional>
#include <optional>
#include <span>
#include <string>
#include <string_view>

#include "domain/error.hpp"
#include "gateways/sandbox_gateway.hpp" // sandbox_config (header only here)

namespace recur::api {

/// An IP literal and a TCP port to listen on.
struct listen_address {
  std::string host = "127.0.0.1";
  std::uint16_t port = 8080;
};

/// Where domain events go: librdkafka's mock cluster inside recurd, nowhere,
/// or a real cluster's bootstrap servers.
struct kafka_setting {
  enum class mode : std::uint8_t { embedded, none, external };
  mode kind = mode::embedded;
  std::string bootstrap_servers; // external: "host:port[,host:port…]"
};

/// What recurd was asked to do. A flag wins over its environment variable.
struct options {
  std::string db_conninfo; // --db / RECUR_DB, required
  listen_address listen;   // --listen / RECUR_LISTEN
  kafka_setting kafka;     // --kafka / RECUR_KAFKA, default embedded
  /// The admin key: RECUR_ADMIN_KEY (never a flag: argv is visible to every
  /// local user). --admin-key-file names a file holding it instead and wins;
  /// main reads it with read_admin_key_file. Empty: no admin key.
  std::string admin_key;
  std::string admin_key_file;
  std::int64_t rate_limit_per_s = 100; // --rate-limit / RECUR_RATE_LIMIT
  std::int64_t rate_burst = 200;       // --rate-burst / RECUR_RATE_BURST
  /// --http-threads / RECUR_HTTP_THREADS: HTTP handler threads. A durable
  /// command holds one until its group commit, so this bounds the commands
  /// in flight; GETs answered from memory need far fewer.
  std::size_t http_threads = 64;
  /// --db-pool / RECUR_DB_POOL: PostgreSQL working connections.
  std::size_t db_pool = 4;
  /// --db-lanes / RECUR_DB_LANES: group-commit writer threads, each with its
  /// own connection; a subscription's units always go to the same one.
  std::size_t db_lanes = 1;
  /// --read-cache / RECUR_READ_CACHE: subscriptions whose read model recurd
  /// keeps in memory for GETs and command pre-reads (the row and its rendered
  /// body, ~1.5 KiB for a typical subscription); 0 turns the cache off, as
  /// a second process writing the same database requires
  /// (api/subscription_cache.hpp).
  std::size_t read_cache_entries = 65'536;
  /// The in-process sandbox gateway's seeded faults (gateways/
  /// sandbox_gateway.hpp), for failure drills against a running recurd:
  /// --sandbox-timeout-ppm, --sandbox-timeout-after-commit-ppm,
  /// --sandbox-decline-soft-ppm, --sandbox-pending-ppm (each 0..1000000,
  /// default 0) and --sandbox-settle-delay-s (default 60), each also as
  /// RECUR_SANDBOX_…; only the fault fields and the settle delay are read.
  sandbox_config sandbox;
  /// --sandbox-seed / RECUR_SANDBOX_SEED: the sandboxes' generator seed, so
  /// that a drill replays; unset: recurd's start time.
  std::optional<std::uint64_t> sandbox_seed;
  bool show_help = false;
  bool show_version = false;
};

inline constexpr std::size_t min_admin_key_bytes = 16;
inline constexpr std::size_t max_admin_key_bytes = 1024;
inline constexpr std::int64_t max_rate_per_s = 1'000'000;
inline constexpr std::int64_t max_http_threads = 1024;
inline constexpr std::int64_t max_db_pool = 64;
inline constexpr std::int64_t max_db_lanes = 16;
inline constexpr std::int64_t max_read_cache_entries = 16'777'216;

/// Reads one environment variable; std::nullopt when unset.
using env_lookup = std::function<std::optional<std::string>(std::string_view)>;

/// Parses argv (without argv[0]). Errors are `invalid_argument` with a
/// one-line detail that names the offending option or variable.
result<options> parse_options(std::span<const std::string_view> args,
                              const env_lookup& env);

/// Parses "host:port" or "[v6]:port" with a port in 1..65535. The host must be
/// an IP literal or "localhost" (mapped to 127.0.0.1).
result<listen_address> parse_listen(std::string_view value);

/// Parses "embedded", "none" or "host:port[,host:port…]" (host: a DNS name
/// or an IP literal, [v6] in brackets).
result<kafka_setting> parse_kafka(std::string_view value);

/// Checks an admin key: min_admin_key_bytes..max_admin_key_bytes of
/// printable ASCII without spaces.
status check_admin_key(std::string_view key);

/// Reads the admin key from a file (at most max_admin_key_bytes, trailing
/// whitespace dropped) and checks it. Errors name --admin-key-file.
result<std::string> read_admin_key_file(const std::string& path);

/// The --help text: every option with its default and environment variable.
std::string usage();

} // namespace recur::api
