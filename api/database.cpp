#include "api/database.hpp"

#include <optional>
#include <utility>
#include <vector>

#include <pqxx/pqxx>
#include <spdlog/spdlog.h>

namespace recur::api {

namespace {

constexpr int connect_timeout_s = 5;

bool is_uri(std::string_view conninfo) {
  return conninfo.starts_with("postgresql://")
         || conninfo.starts_with("postgres://");
}

bool is_space(char c) {
  return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

// One `key=value` pair; `value` is the raw text, quotes included.
struct keyword {
  std::string key;
  std::string value;
};

// Reads a value at s[i]: '...' with backslash escapes, or up to whitespace.
std::optional<std::string> read_value(std::string_view s, std::size_t& i) {
  const auto start = i;
  if (i < s.size() && s[i] == '\'') {
    for (++i; i < s.size() && s[i] != '\''; ++i)
      if (s[i] == '\\')
        ++i;
    if (i >= s.size())
      return std::nullopt; // unterminated quote
    ++i;
  } else {
    while (i < s.size() && !is_space(s[i]))
      ++i;
  }
  return std::string{s.substr(start, i - start)};
}

// Splits libpq's `key = value ...` syntax; nullopt when malformed.
std::optional<std::vector<keyword>> parse_keywords(std::string_view s) {
  std::vector<keyword> out;
  std::size_t i = 0;
  auto skip_spaces = [&] {
    while (i < s.size() && is_space(s[i]))
      ++i;
  };
  for (skip_spaces(); i < s.size(); skip_spaces()) {
    const auto key_start = i;
    while (i < s.size() && s[i] != '=' && !is_space(s[i]))
      ++i;
    auto key = std::string{s.substr(key_start, i - key_start)};
    skip_spaces();
    if (key.empty() || i >= s.size() || s[i] != '=')
      return std::nullopt;
    ++i;
    skip_spaces();
    auto value = read_value(s, i);
    if (!value)
      return std::nullopt;
    out.push_back({std::move(key), std::move(*value)});
  }
  return out;
}

// postgresql://user:secret@host/db?password=x -> user:***@host/db?password=***
std::string redact_uri(std::string_view uri) {
  std::string out{uri};
  const auto authority = out.find("://") + 3;
  const auto at = out.find('@', authority);
  const auto end_of_authority = out.find_first_of("/?", authority);
  if (at != std::string::npos && at < end_of_authority) {
    const auto colon = out.find(':', authority);
    if (colon != std::string::npos && colon < at)
      out.replace(colon + 1, at - colon - 1, "***");
  }
  for (auto pos = out.find("password="); pos != std::string::npos;
       pos = out.find("password=", pos + 1)) {
    const auto value = pos + 9;
    const auto amp = out.find('&', value);
    out.replace(value, (amp == std::string::npos ? out.size() : amp) - value,
                "***");
  }
  return out;
}

// libpq messages span lines ("...failed: Connection refused\n\tIs the server
// running..."); logs and stderr want one.
std::string one_line(std::string_view text) {
  std::string out;
  for (const char c : text) {
    if (is_space(c)) {
      if (!out.empty() && out.back() != ' ')
        out.push_back(' ');
    } else {
      out.push_back(c);
    }
  }
  while (!out.empty() && out.back() == ' ')
    out.pop_back();
  return out;
}

void select_one(pqxx::connection& conn) {
  pqxx::nontransaction tx{conn};
  tx.exec("SELECT 1");
}

} // namespace

std::string redact_conninfo(std::string_view conninfo) {
  if (is_uri(conninfo))
    return redact_uri(conninfo);
  const auto keywords = parse_keywords(conninfo);
  if (!keywords)
    return "<malformed connection string>"; // it might hide a password
  std::string out;
  for (const auto& [key, value] : *keywords) {
    if (!out.empty())
      out.push_back(' ');
    out += key + "=" + (key == "password" ? std::string{"***"} : value);
  }
  return out;
}

std::string with_connect_timeout(std::string_view conninfo, int timeout_s) {
  std::string out{conninfo};
  if (is_uri(conninfo))
    return out;
  const auto keywords = parse_keywords(conninfo);
  if (!keywords)
    return out; // libpq will report the syntax error itself
  for (const auto& kw : *keywords)
    if (kw.key == "connect_timeout")
      return out;
  return out + " connect_timeout=" + std::to_string(timeout_s);
}

// -- database_probe -----------------------------------------------------------

struct database_probe::impl {
  std::string conninfo;
  std::unique_ptr<pqxx::connection> conn;
  bool last_ok = true;
};

database_probe::database_probe(std::unique_ptr<impl> impl)
  : impl_(std::move(impl)) {}

database_probe::~database_probe() = default;

result<std::unique_ptr<database_probe>>
database_probe::connect(const std::string& conninfo) {
  auto state = std::make_unique<impl>();
  state->conninfo = with_connect_timeout(conninfo, connect_timeout_s);
  try {
    state->conn = std::make_unique<pqxx::connection>(state->conninfo);
    select_one(*state->conn);
  } catch (const std::exception& e) {
    return make_error(errc::unavailable, one_line(e.what()));
  }
  return std::unique_ptr<database_probe>{new database_probe(std::move(state))};
}

bool database_probe::database_ok() {
  std::lock_guard<std::mutex> guard{mutex_};
  auto& s = *impl_;
  try {
    if (!s.conn)
      s.conn = std::make_unique<pqxx::connection>(s.conninfo);
    select_one(*s.conn);
  } catch (const std::exception& e) {
    // Drop the broken connection; the next probe dials again.
    s.conn.reset();
    if (s.last_ok)
      spdlog::warn("event=database_unavailable error=\"{}\"",
                   one_line(e.what()));
    s.last_ok = false;
    return false;
  }
  if (!s.last_ok)
    spdlog::info("event=database_recovered");
  s.last_ok = true;
  return true;
}

} // namespace recur::api
