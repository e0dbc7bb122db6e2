#include "api/options.hpp"

#include <limits>

#include <arpa/inet.h>

#include <array>
#include <charconv>
#include <fstream>
#include <iterator>

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
  std::optional<std::string> kafka;
  std::optional<std::string> admin_key_file;
  std::optional<std::string> rate_limit;
  std::optional<std::string> rate_burst;
  std::optional<std::string> http_threads;
  std::optional<std::string> db_pool;
  std::optional<std::string> db_lanes;
  std::optional<std::string> read_cache;
  std::optional<std::string> sandbox_timeout;
  std::optional<std::string> sandbox_timeout_after_commit;
  std::optional<std::string> sandbox_decline_soft;
  std::optional<std::string> sandbox_pending;
  std::optional<std::string> sandbox_settle_delay;
  std::optional<std::string> sandbox_seed;
};

// The flags that take a value, each with its environment variable (empty:
// none).
struct value_flag {
  std::string_view name;
  std::string_view env;
  std::optional<std::string> raw_values::*slot;
};
constexpr value_flag db_flag{"--db", "RECUR_DB", &raw_values::db};
constexpr value_flag listen_flag{"--listen", "RECUR_LISTEN",
                                 &raw_values::listen};
constexpr value_flag kafka_flag{"--kafka", "RECUR_KAFKA", &raw_values::kafka};
constexpr value_flag admin_file_flag{"--admin-key-file", "",
                                     &raw_values::admin_key_file};
constexpr value_flag rate_flag{"--rate-limit", "RECUR_RATE_LIMIT",
                               &raw_values::rate_limit};
constexpr value_flag burst_flag{"--rate-burst", "RECUR_RATE_BURST",
                                &raw_values::rate_burst};
constexpr value_flag http_threads_flag{"--http-threads", "RECUR_HTTP_THREADS",
                                       &raw_values::http_threads};
constexpr value_flag db_pool_flag{"--db-pool", "RECUR_DB_POOL",
                                  &raw_values::db_pool};
constexpr value_flag db_lanes_flag{"--db-lanes", "RECUR_DB_LANES",
                                   &raw_values::db_lanes};
constexpr value_flag read_cache_flag{"--read-cache", "RECUR_READ_CACHE",
                                     &raw_values::read_cache};
constexpr value_flag sandbox_timeout_flag{"--sandbox-timeout-ppm",
                                          "RECUR_SANDBOX_TIMEOUT_PPM",
                                          &raw_values::sandbox_timeout};
constexpr value_flag sandbox_timeout_after_commit_flag{
  "--sandbox-timeout-after-commit-ppm",
  "RECUR_SANDBOX_TIMEOUT_AFTER_COMMIT_PPM",
  &raw_values::sandbox_timeout_after_commit};
constexpr value_flag sandbox_decline_soft_flag{
  "--sandbox-decline-soft-ppm", "RECUR_SANDBOX_DECLINE_SOFT_PPM",
  &raw_values::sandbox_decline_soft};
constexpr value_flag sandbox_pending_flag{"--sandbox-pending-ppm",
                                          "RECUR_SANDBOX_PENDING_PPM",
                                          &raw_values::sandbox_pending};
constexpr value_flag sandbox_settle_flag{"--sandbox-settle-delay-s",
                                         "RECUR_SANDBOX_SETTLE_DELAY_S",
                                         &raw_values::sandbox_settle_delay};
constexpr value_flag sandbox_seed_flag{"--sandbox-seed", "RECUR_SANDBOX_SEED",
                                       &raw_values::sandbox_seed};
constexpr std::array value_flags{db_flag,         listen_flag,  kafka_flag,
                                 admin_file_flag, rate_flag,    burst_flag,
                                 http_threads_flag, db_pool_flag,
                                 db_lanes_flag, read_cache_flag,
                                 sandbox_timeout_flag,
                                 sandbox_timeout_after_commit_flag,
                                 sandbox_decline_soft_flag,
                                 sandbox_pending_flag, sandbox_settle_flag,
                                 sandbox_seed_flag};

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
  for (const auto& flag : value_flags) {
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

// The value of `flag`: from the command line, else from its variable. `where`
// becomes the prefix of an error about the value.
struct sourced {
  std::optional<std::string> value;
  std::string where;
};

sourced resolve(const value_flag& flag, const raw_values& raw,
                const env_lookup& env) {
  if (raw.*flag.slot)
    return {raw.*flag.slot, "option " + std::string{flag.name} + ": "};
  if (flag.env.empty())
    return {std::nullopt, {}};
  return {from_env(env, flag.env),
          "environment variable " + std::string{flag.env} + ": "};
}

result<std::int64_t> parse_count(std::string_view text, std::int64_t min,
                                 std::int64_t max) {
  std::int64_t n = 0;
  const auto* end = text.data() + text.size();
  const auto [ptr, ec] = std::from_chars(text.data(), end, n);
  if (ec != std::errc{} || ptr != end || n < min || n > max)
    return bad("expected an integer in " + std::to_string(min) + ".."
               + std::to_string(max) + ", got '" + std::string{text} + "'");
  return n;
}

bool is_host_name(std::string_view host) {
  if (host.empty() || host.size() > 253)
    return false;
  for (const char c : host)
    if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')
          || (c >= '0' && c <= '9') || c == '.' || c == '-'))
      return false;
  return host.front() != '-' && host.front() != '.';
}

status check_bootstrap_server(std::string_view server) {
  const auto colon = server.rfind(':');
  if (colon == std::string_view::npos || colon == 0)
    return bad("expected embedded, none or host:port, got '"
               + std::string{server} + "'");
  auto host = std::string{server.substr(0, colon)};
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']')
    host = host.substr(1, host.size() - 2);
  if (!is_ip_literal(host) && !is_host_name(host))
    return bad("bad host in '" + std::string{server} + "'");
  if (auto port = parse_count(server.substr(colon + 1), 1, 65535); !port)
    return bad("port must be 1..65535 in '" + std::string{server} + "'");
  return {};
}

// Fills the optional settings of `opts` from `raw` and the environment.
status apply_optional(const raw_values& raw, const env_lookup& env,
                      options& opts) {
  if (auto v = resolve(listen_flag, raw, env); v.value) {
    auto addr = parse_listen(*v.value);
    if (!addr)
      return bad(v.where + addr.error().detail);
    opts.listen = std::move(*addr);
  }
  if (auto v = resolve(kafka_flag, raw, env); v.value) {
    auto k = parse_kafka(*v.value);
    if (!k)
      return bad(v.where + k.error().detail);
    opts.kafka = std::move(*k);
  }
  if (auto v = resolve(rate_flag, raw, env); v.value) {
    auto n = parse_count(*v.value, 0, max_rate_per_s);
    if (!n)
      return bad(v.where + n.error().detail);
    opts.rate_limit_per_s = *n;
  }
  if (auto v = resolve(burst_flag, raw, env); v.value) {
    auto n = parse_count(*v.value, 1, max_rate_per_s);
    if (!n)
      return bad(v.where + n.error().detail);
    opts.rate_burst = *n;
  }
  if (auto v = resolve(http_threads_flag, raw, env); v.value) {
    auto n = parse_count(*v.value, 1, max_http_threads);
    if (!n)
      return bad(v.where + n.error().detail);
    opts.http_threads = static_cast<std::size_t>(*n);
  }
  if (auto v = resolve(db_pool_flag, raw, env); v.value) {
    auto n = parse_count(*v.value, 1, max_db_pool);
    if (!n)
      return bad(v.where + n.error().detail);
    opts.db_pool = static_cast<std::size_t>(*n);
  }
  if (auto v = resolve(db_lanes_flag, raw, env); v.value) {
    auto n = parse_count(*v.value, 1, max_db_lanes);
    if (!n)
      return bad(v.where + n.error().detail);
    opts.db_lanes = static_cast<std::size_t>(*n);
  }
  if (auto v = resolve(read_cache_flag, raw, env); v.value) {
    auto n = parse_count(*v.value, 0, max_read_cache_entries);
    if (!n)
      return bad(v.where + n.error().detail);
    opts.read_cache_entries = static_cast<std::size_t>(*n);
  }
  struct ppm_setting {
    const value_flag& flag;
    std::uint32_t sandbox_config::*field;
  };
  for (const ppm_setting& p :
       {ppm_setting{sandbox_timeout_flag, &sandbox_config::timeout_ppm},
        ppm_setting{sandbox_timeout_after_commit_flag,
                    &sandbox_config::timeout_after_commit_ppm},
        ppm_setting{sandbox_decline_soft_flag, &sandbox_config::decline_soft_ppm},
        ppm_setting{sandbox_pending_flag, &sandbox_config::pending_ppm}}) {
    if (auto v = resolve(p.flag, raw, env); v.value) {
      auto n = parse_count(*v.value, 0, ppm_max);
      if (!n)
        return bad(v.where + n.error().detail);
      opts.sandbox.*p.field = static_cast<std::uint32_t>(*n);
    }
  }
  if (auto v = resolve(sandbox_settle_flag, raw, env); v.value) {
    auto n = parse_count(*v.value, 0, settle_delay_s_max);
    if (!n)
      return bad(v.where + n.error().detail);
    opts.sandbox.settle_delay_s = *n;
  }
  if (auto v = resolve(sandbox_seed_flag, raw, env); v.value) {
    auto n = parse_count(*v.value, 0, std::numeric_limits<std::int64_t>::max());
    if (!n)
      return bad(v.where + n.error().detail);
    opts.sandbox_seed = static_cast<std::uint64_t>(*n);
  }
  if (raw.admin_key_file) {
    opts.admin_key_file = *raw.admin_key_file;
  } else if (auto key = from_env(env, "RECUR_ADMIN_KEY")) {
    if (auto st = check_admin_key(*key); !st)
      return bad("environment variable RECUR_ADMIN_KEY: " + st.error().detail);
    opts.admin_key = std::move(*key);
  }
  return {};
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

result<kafka_setting> parse_kafka(std::string_view value) {
  if (value == "embedded")
    return kafka_setting{kafka_setting::mode::embedded, {}};
  if (value == "none")
    return kafka_setting{kafka_setting::mode::none, {}};
  std::string_view rest = value;
  while (true) {
    const auto comma = rest.find(',');
    if (auto st = check_bootstrap_server(rest.substr(0, comma)); !st)
      return st.error();
    if (comma == std::string_view::npos)
      break;
    rest.remove_prefix(comma + 1);
  }
  return kafka_setting{kafka_setting::mode::external, std::string{value}};
}

status check_admin_key(std::string_view key) {
  if (key.size() < min_admin_key_bytes || key.size() > max_admin_key_bytes)
    return bad("the admin key must be " + std::to_string(min_admin_key_bytes)
               + ".." + std::to_string(max_admin_key_bytes)
               + " characters long");
  for (const char c : key)
    if (c < 0x21 || c > 0x7e)
      return bad("the admin key must be printable ASCII without spaces");
  return {};
}

result<std::string> read_admin_key_file(const std::string& path) {
  std::ifstream in{path, std::ios::binary};
  if (!in)
    return bad("option --admin-key-file: cannot read '" + path + "'");
  std::string key;
  key.resize(max_admin_key_bytes + 2);
  in.read(key.data(), static_cast<std::streamsize>(key.size()));
  key.resize(static_cast<std::size_t>(in.gcount()));
  while (!key.empty()
         && (key.back() == '\n' || key.back() == '\r' || key.back() == ' '
             || key.back() == '\t'))
    key.pop_back();
  if (auto st = check_admin_key(key); !st)
    return bad("option --admin-key-file: '" + path + "': " + st.error().detail);
  return key;
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
  auto db = raw->db ? raw->db : from_env(env, db_flag.env);
  if (!db)
    return bad("option --db (or RECUR_DB) is required: a libpq connection "
               "string such as \"host=/run/postgresql dbname=recur\"");
  opts.db_conninfo = std::move(*db);
  if (auto st = apply_optional(*raw, env, opts); !st)
    return st.error();
  return opts;
}

std::string usage() {
  return "Usage: recurd --db <conninfo> [--listen <host:port>] [--kafka "
         "<embedded|none|host:port>]\n"
         "              [--admin-key-file <path>] [--rate-limit <n>] "
         "[--rate-burst <n>]\n"
         "              [--http-threads <n>] [--db-pool <n>] [--db-lanes <n>]\n"
         "              [--read-cache <n>] [--sandbox-… <n>]\n"
         "\n"
         "Recur's server: the billing API over HTTP (see GET /openapi.json),\n"
         "/healthz, /readyz and /metrics.\n"
         "\n"
         "Options (a flag wins over its environment variable):\n"
         "  --db <conninfo>         libpq connection string or "
         "postgresql:// URI;\n"
         "                          migrations run as this user, requests as "
         "recur_app\n"
         "                          env RECUR_DB; required, no default\n"
         "  --listen <host:port>    address to serve HTTP on (IP literal or "
         "localhost)\n"
         "                          env RECUR_LISTEN; default 127.0.0.1:8080\n"
         "  --kafka <where>         where domain events go: embedded "
         "(librdkafka's mock\n"
         "                          cluster), none, or host:port[,host:port] "
         "of brokers\n"
         "                          env RECUR_KAFKA; default embedded\n"
         "  --admin-key-file <path> file holding the admin key (for POST "
         "/v1/tenants);\n"
         "                          wins over env RECUR_ADMIN_KEY, which holds "
         "the key\n"
         "                          itself (16..1024 printable characters); "
         "default: none,\n"
         "                          and then no tenant can be created\n"
         "  --rate-limit <n>        requests per second per tenant, 0 = "
         "unlimited\n"
         "                          env RECUR_RATE_LIMIT; default 100\n"
         "  --rate-burst <n>        requests a tenant may make at once\n"
         "                          env RECUR_RATE_BURST; default 200\n"
         "  --http-threads <n>      threads that serve HTTP requests; "
         "commands block one\n"
         "                          until durably committed (1..1024)\n"
         "                          env RECUR_HTTP_THREADS; default 64\n"
         "  --db-pool <n>           PostgreSQL connections for reads and API "
         "writes (1..64),\n"
         "                          besides one per --db-lanes\n"
         "                          env RECUR_DB_POOL; default 4\n"
         "  --db-lanes <n>          group-commit writers, each on its own "
         "connection;\n"
         "                          a subscription's commits stay on one "
         "(1..16)\n"
         "                          env RECUR_DB_LANES; default 1\n"
         "  --read-cache <n>        subscriptions kept in memory for reads "
         "(0..16777216);\n"
         "                          0 = off, needed if another process "
         "writes the database\n"
         "                          env RECUR_READ_CACHE; default 65536\n"
         "  --sandbox-timeout-ppm <n>, --sandbox-timeout-after-commit-ppm <n>,\n"
         "  --sandbox-decline-soft-ppm <n>, --sandbox-pending-ppm <n>\n"
         "                          the sandbox gateway's seeded fault rates "
         "in parts\n"
         "                          per million (0..1000000); default 0\n"
         "                          env RECUR_SANDBOX_TIMEOUT_PPM, …\n"
         "  --sandbox-settle-delay-s <n>  seconds a pending sandbox charge "
         "takes to settle\n"
         "                          env RECUR_SANDBOX_SETTLE_DELAY_S; default 60\n"
         "  --sandbox-seed <n>      the sandbox's generator seed (a drill "
         "replays)\n"
         "                          env RECUR_SANDBOX_SEED; default: the start "
         "time\n"
         "  --version               print the version and exit\n"
         "  -h, --help              print this help and exit\n"
         "\n"
         "Exit codes: 0 stopped by SIGINT/SIGTERM, 1 start-up failure "
         "(database,\n"
         "listen address), 2 bad command line or configuration.\n";
}

} // namespace recur::api
