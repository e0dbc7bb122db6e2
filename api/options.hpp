#pragma once
/// recurd's command line: flags, their environment variables and defaults.

#include <cstdint>
#include <functional>
#include <optional>
#include <span>
#include <string>
#include <string_view>

#include "domain/error.hpp"

namespace recur::api {

/// An IP literal and a TCP port to listen on.
struct listen_address {
  std::string host = "127.0.0.1";
  std::uint16_t port = 8080;
};

/// What recurd was asked to do. A flag wins over its environment variable.
struct options {
  std::string db_conninfo; // --db / RECUR_DB, required
  listen_address listen;   // --listen / RECUR_LISTEN
  bool show_help = false;
  bool show_version = false;
};

/// Reads one environment variable; std::nullopt when unset.
using env_lookup = std::function<std::optional<std::string>(std::string_view)>;

/// Parses argv (without argv[0]). Errors are `invalid_argument` with a
/// one-line detail that names the offending option or variable.
result<options> parse_options(std::span<const std::string_view> args,
                              const env_lookup& env);

/// Parses "host:port" or "[v6]:port" with a port in 1..65535. The host must be
/// an IP literal or "localhost" (mapped to 127.0.0.1).
result<listen_address> parse_listen(std::string_view value);

/// The --help text: every option with its default and environment variable.
std::string usage();

} // namespace recur::api
