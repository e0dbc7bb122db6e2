#include "api/options.hpp"

#include <arpa/inet.h>

#include <array>
#include <charconv>

namespace recur::api {

namespace {

error bad(std::string detail) {
  return make_error(errc::invalid_argument, std::move(detail));
}

bool is_ip_literal(const std::string& host) {
  std::array<unsigned char, 16> buf{};
  return inet_pton(AF_INET, host.c_str(), buf.data()) == 1
         || inet_pton(AF_INET6, host.c_str(), buf.data()) == 1;
}

// Values given on the command line; unset ones fall back to the environment.
struct raw_values {
  std::optional<std::string> db;
  std::optional<std::string> listen;
};

// The flags that take a value, each with its environment variable.
struct value_flag {
  std::string_view name;
  std::string_view env;
  std::optional<std::string> raw_values::*slot;
};
constexpr value_flag db_flag{"--db", "RECUR_DB", &raw_values::db};
constexpr value_flag listen_flag{"--listen", "RECUR_LISTEN",
                                 &raw_values::listen};

status take_value(const value_flag& flag, std::string value, raw_values& out) {
  if (value.empty())
    return bad("option " + std::string{flag.name} + " must not be empty");
  out.*flag.slot = std::move(value);
  return {};
}

// Reads "--flag value" or "--flag=value" at args[i]; advances i past a
// separate value. Returns false when args[i] is not a value flag.
result<bool> read_value_flag(std::span<const std::string_view> args,
                             std::size_t& i, raw_values& out) {
  for (const auto& flag : {db_flag, listen_flag}) {
    const auto arg = args[i];
    if (arg == flag.name) {
      if (i + 1 >= args.size())
        return bad("option " + std::string{flag.name} + " needs a value");
      if (auto st = take_value(flag, std::string{args[++i]}, out); !st)
        return st.error();
      return true;
    }
    if (arg.size() > flag.name.size() && arg.starts_with(flag.name)
        && arg[flag.name.size()] == '=') {
      auto value = std::string{arg.substr(flag.name.size() + 1)};
      if (auto st = take_value(flag, std::move(value), out); !st)
        return st.error();
      return true;
    }
  }
  return false;
}

result<raw_values> scan(std::span<const std::string_view> args) {
  raw_values out;
  for (std::size_t i = 0; i < args.size(); ++i) {
    auto matched = read_value_flag(args, i, out);
    if (!matched)
      return matched.error();
    if (*matched)
      continue;
    const auto arg = std::string{args[i]};
    if (arg.starts_with("-"))
      return bad("unknown option '" + arg + "' (see recurd --help)");
    return bad("unexpected argument '" + arg + "' (see recurd --help)");
  }
  return out;
}

// Env values are only consulted, and only validated, when no flag was given.
std::optional<std::string> from_env(const env_lookup& env,
                                    std::string_view name) {
  auto value = env(name);
  if (value && value->empty())
    return std::nullopt;
  return value;
}

} // namespace

result<listen_address> parse_listen(std::string_view value) {
  const auto colon = value.rfind(':');
  if (colon == std::string_view::npos || colon == 0)
    return bad("expected host:port, got '" + std::string{value} + "'");
  auto host = std::string{value.substr(0, colon)};
  const auto port_text = value.substr(colon + 1);
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']')
    host = host.substr(1, host.size() - 2);
  if (host == "localhost")
    host = "127.0.0.1";
  if (!is_ip_literal(host))
    return bad("host must be an IP address or localhost, got '"
               + std::string{value} + "'");
  unsigned port = 0;
  const auto* end = port_text.data() + port_text.size();
  const auto [ptr, ec] = std::from_chars(port_text.data(), end, port);
  if (ec != std::errc{} || ptr != end || port == 0 || port > 65535)
    return bad("port must be 1..65535, got '" + std::string{value} + "'");
  return listen_address{std::move(host), static_cast<std::uint16_t>(port)};
}

result<options> parse_options(std::span<const std::string_view> args,
                              const env_lookup& env) {
  options opts;
  for (const auto arg : args) {
    opts.show_help = opts.show_help || arg == "--help" || arg == "-h";
    opts.show_version = opts.show_version || arg == "--version";
  }
  if (opts.show_help || opts.show_version)
    return opts;
  auto raw = scan(args);
  if (!raw)
    return raw.error();
  const bool listen_from_flag = raw->listen.has_value();
  auto db = raw->db ? raw->db : from_env(env, db_flag.env);
  auto listen = listen_from_flag ? raw->listen : from_env(env, listen_flag.env);
  if (!db)
    return bad("option --db (or RECUR_DB) is required: a libpq connection "
               "string such as \"host=/run/postgresql dbname=recur\"");
  opts.db_conninfo = std::move(*db);
  if (listen) {
    auto addr = parse_listen(*listen);
    if (!addr)
      return bad((listen_from_flag ? "option --listen: "
                                   : "environment variable RECUR_LISTEN: ")
                 + addr.error().detail);
    opts.listen = std::move(*addr);
  }
  return opts;
}

std::string usage() {
  return "Usage: recurd --db <conninfo> [--listen <host:port>]\n"
         "\n"
         "Recur's server. This build serves GET /healthz and GET /readyz.\n"
         "\n"
         "Options (a flag wins over its environment variable):\n"
         "  --db <conninfo>       libpq connection string or postgresql:// "
         "URI\n"
         "                        env RECUR_DB; required, no default\n"
         "  --listen <host:port>  address to serve HTTP on (IP literal or "
         "localhost)\n"
         "                        env RECUR_LISTEN; default 127.0.0.1:8080\n"
         "  --version             print the version and exit\n"
         "  -h, --help            print this help and exit\n"
         "\n"
         "Exit codes: 0 stopped by SIGINT/SIGTERM, 1 start-up failure "
         "(database,\n"
         "listen address), 2 bad command line.\n";
}

} // namespace recur::api
