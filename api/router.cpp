#include "api/router.hpp"

#include <algorithm>

namespace recur::api {

namespace {

std::vector<std::string_view> split_path(std::string_view path) {
  std::vector<std::string_view> out;
  if (path.empty() || path.front() != '/')
    return out;
  path.remove_prefix(1);
  while (true) {
    const auto slash = path.find('/');
    out.push_back(path.substr(0, slash));
    if (slash == std::string_view::npos)
      return out;
    path.remove_prefix(slash + 1);
  }
}

int hex_value(char c) {
  if (c >= '0' && c <= '9')
    return c - '0';
  if (c >= 'a' && c <= 'f')
    return c - 'a' + 10;
  if (c >= 'A' && c <= 'F')
    return c - 'A' + 10;
  return -1;
}

} // namespace

// -- request_context ----------------------------------------------------------

const std::string& request_context::param(std::string_view name) const {
  for (const auto& [k, v] : path_params)
    if (k == name)
      return v;
  RECUR_ASSERT(false && "no such path parameter");
  return path_params.front().second; // unreachable
}

std::optional<std::string_view>
request_context::query_value(std::string_view name) const {
  for (const auto& [k, v] : query)
    if (k == name)
      return std::string_view{v};
  return std::nullopt;
}

const tenant_id& request_context::tid() const {
  RECUR_ASSERT(tenant.has_value());
  return tenant->id;
}

// -- router -------------------------------------------------------------------

void router::add(route r) {
  const auto parts = split_path(r.pattern);
  RECUR_ASSERT(!parts.empty());
  std::vector<segment> pattern;
  for (const auto part : parts) {
    RECUR_ASSERT(!part.empty());
    const bool is_param = part.front() == '{' && part.back() == '}';
    RECUR_ASSERT(!is_param || part.size() > 2);
    pattern.push_back(
      {std::string{is_param ? part.substr(1, part.size() - 2) : part},
       is_param});
  }
  for (const auto& existing : routes_)
    RECUR_ASSERT(existing.method != r.method || existing.pattern != r.pattern);
  RECUR_ASSERT(r.handler != nullptr);
  routes_.push_back(std::move(r));
  patterns_.push_back(std::move(pattern));
  fast_.emplace_back();
}

void router::set_fast(std::string_view method, std::string_view pattern,
                      route_fast_handler fast) {
  for (std::size_t i = 0; i < routes_.size(); ++i)
    if (routes_[i].method == method && routes_[i].pattern == pattern) {
      fast_[i] = std::move(fast);
      return;
    }
  RECUR_ASSERT(false && "set_fast: no such route");
}

const route_fast_handler* router::fast_for(const route* r) const {
  if (r == nullptr || routes_.empty() || r < routes_.data()
      || r >= routes_.data() + routes_.size())
    return nullptr;
  const auto& f = fast_[static_cast<std::size_t>(r - routes_.data())];
  return f ? &f : nullptr;
}

route_match router::match(std::string_view method,
                          std::string_view path) const {
  const auto parts = split_path(path);
  std::vector<std::string> decoded;
  decoded.reserve(parts.size());
  for (const auto part : parts) {
    auto d = percent_decode(part, false);
    if (!d)
      return {};
    decoded.push_back(std::move(*d));
  }
  route_match out;
  // Specificity: one bit per segment, set for a literal; a literal further
  // left counts for more.
  std::uint64_t best = 0;
  bool found_any = false;
  for (std::size_t i = 0; i < routes_.size(); ++i) {
    const auto& pattern = patterns_[i];
    if (pattern.size() != decoded.size() || pattern.size() > 63)
      continue;
    std::uint64_t score = 0;
    bool ok = true;
    for (std::size_t s = 0; s < pattern.size() && ok; ++s) {
      score <<= 1;
      if (pattern[s].is_param)
        ok = !decoded[s].empty();
      else if ((ok = pattern[s].text == decoded[s]))
        score |= 1;
    }
    if (!ok)
      continue;
    if (routes_[i].method != method) {
      out.allowed.push_back(routes_[i].method);
      continue;
    }
    if (found_any && score <= best)
      continue;
    found_any = true;
    best = score;
    out.found = &routes_[i];
    out.path_params.clear();
    for (std::size_t s = 0; s < pattern.size(); ++s)
      if (pattern[s].is_param)
        out.path_params.emplace_back(pattern[s].text, decoded[s]);
  }
  if (out.found != nullptr) {
    out.allowed.clear();
  } else {
    std::sort(out.allowed.begin(), out.allowed.end());
    out.allowed.erase(std::unique(out.allowed.begin(), out.allowed.end()),
                      out.allowed.end());
  }
  return out;
}

// -- URLs ---------------------------------------------------------------------

std::optional<std::string> percent_decode(std::string_view s,
                                          bool plus_is_space) {
  std::string out;
  out.reserve(s.size());
  for (std::size_t i = 0; i < s.size(); ++i) {
    const char c = s[i];
    if (c == '%') {
      if (i + 2 >= s.size())
        return std::nullopt;
      const int hi = hex_value(s[i + 1]), lo = hex_value(s[i + 2]);
      if (hi < 0 || lo < 0)
        return std::nullopt;
      out.push_back(static_cast<char>(hi * 16 + lo));
      i += 2;
    } else if (c == '+' && plus_is_space) {
      out.push_back(' ');
    } else {
      out.push_back(c);
    }
  }
  return out;
}

std::optional<param_list> parse_query(std::string_view target,
                                      std::size_t max_params) {
  param_list out;
  const auto q = target.find('?');
  if (q == std::string_view::npos)
    return out;
  auto rest = target.substr(q + 1);
  while (!rest.empty()) {
    const auto amp = rest.find('&');
    const auto pair = rest.substr(0, amp);
    rest = amp == std::string_view::npos ? std::string_view{}
                                         : rest.substr(amp + 1);
    if (pair.empty())
      continue;
    if (out.size() >= max_params)
      return std::nullopt;
    const auto eq = pair.find('=');
    auto key = percent_decode(pair.substr(0, eq), true);
    auto value = percent_decode(
      eq == std::string_view::npos ? std::string_view{} : pair.substr(eq + 1),
      true);
    if (!key || !value)
      return std::nullopt;
    out.emplace_back(std::move(*key), std::move(*value));
  }
  return out;
}

} // namespace recur::api
