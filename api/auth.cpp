#include "api/auth.hpp"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

#include <array>
#include <cctype>
#include <vector>

namespace recur::api {

namespace {

std::string to_hex(const unsigned char* data, std::size_t n) {
  static constexpr char digits[] = "0123456789abcdef";
  std::string out(n * 2, '0');
  for (std::size_t i = 0; i < n; ++i) {
    out[2 * i] = digits[data[i] >> 4];
    out[2 * i + 1] = digits[data[i] & 0x0f];
  }
  return out;
}

} // namespace

std::string sha256_hex(std::string_view data) {
  std::array<unsigned char, EVP_MAX_MD_SIZE> digest{};
  unsigned int n = 0;
  const int ok = EVP_Digest(data.data(), data.size(), digest.data(), &n,
                            EVP_sha256(), nullptr);
  RECUR_ASSERT(ok == 1 && n == 32);
  return to_hex(digest.data(), n);
}

bool constant_time_equal(std::string_view a, std::string_view b) {
  if (a.size() != b.size())
    return false;
  if (a.empty())
    return true;
  return CRYPTO_memcmp(a.data(), b.data(), a.size()) == 0;
}

std::optional<std::string_view> bearer_token(std::string_view authorization) {
  constexpr std::string_view scheme = "bearer ";
  if (authorization.size() <= scheme.size())
    return std::nullopt;
  for (std::size_t i = 0; i < scheme.size(); ++i)
    if (std::tolower(static_cast<unsigned char>(authorization[i])) != scheme[i])
      return std::nullopt;
  auto token = authorization.substr(scheme.size());
  while (!token.empty() && token.front() == ' ')
    token.remove_prefix(1);
  while (!token.empty() && token.back() == ' ')
    token.remove_suffix(1);
  if (token.empty() || token.find(' ') != std::string_view::npos)
    return std::nullopt;
  return token;
}

std::string random_hex(std::size_t bytes) {
  std::vector<unsigned char> buf(bytes);
  RECUR_ASSERT(RAND_bytes(buf.data(), static_cast<int>(bytes)) == 1);
  return to_hex(buf.data(), buf.size());
}

std::string new_api_key(bool test_mode) {
  return std::string{test_mode ? "rk_test_" : "rk_live_"} + random_hex(32);
}

std::string new_id(std::string_view prefix) {
  return std::string{prefix} + "_" + random_hex(12);
}

// -- admin_key ----------------------------------------------------------------

admin_key::admin_key(std::string_view key)
  : sha256_hex_(key.empty() ? std::string{} : sha256_hex(key)) {}

bool admin_key::matches(std::string_view presented) const {
  if (!configured())
    return false;
  return constant_time_equal(sha256_hex(presented), sha256_hex_);
}

// -- tenant_authenticator -----------------------------------------------------

tenant_authenticator::tenant_authenticator(store& db, std::size_t max_entries,
                                           std::int64_t ttl_s)
  : db_(db), max_entries_(max_entries), ttl_s_(ttl_s) {}

result<tenant_record>
tenant_authenticator::authenticate(std::string_view api_key, instant now) {
  const auto hash = sha256_hex(api_key);
  {
    std::lock_guard lock{mutex_};
    auto it = cache_.find(hash);
    if (it != cache_.end() && now < it->second.expires_at)
      return it->second.tenant;
  }
  auto found = db_.find_tenant_by_key_hash(hash);
  if (!found)
    return found;
  if (!constant_time_equal(found->api_key_sha256_hex, hash))
    return make_error(errc::not_found, "no tenant has that API key");
  std::lock_guard lock{mutex_};
  if (cache_.size() >= max_entries_)
    cache_.clear();
  cache_.insert_or_assign(hash, entry{*found, now.plus_seconds(ttl_s_)});
  return found;
}

std::optional<tenant_record>
tenant_authenticator::cached(std::string_view api_key, instant now) {
  const auto hash = sha256_hex(api_key);
  std::lock_guard lock{mutex_};
  auto it = cache_.find(hash);
  if (it != cache_.end() && now < it->second.expires_at)
    return it->second.tenant;
  return std::nullopt;
}

} // namespace recur::api
