#pragma once
/// API keys and the admin key: random generation, SHA-256 hashing, constant-
/// time comparison, and the tenant lookup behind `Authorization: Bearer`.
/// OpenSSL stays inside auth.cpp.

#include <cstddef>
#include <cstdint>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>

#include "domain/error.hpp"
#include "domain/time.hpp"
#include "sagas/store.hpp"

namespace recur::api {

/// Lower-case hex SHA-256 of `data`.
std::string sha256_hex(std::string_view data);

/// Equal contents, compared in time that depends on the length only
/// (CRYPTO_memcmp); different lengths are unequal.
bool constant_time_equal(std::string_view a, std::string_view b);

/// The token of `Authorization: Bearer <token>` (scheme case-insensitive),
/// or nullopt for any other form.
std::optional<std::string_view> bearer_token(std::string_view authorization);

/// `bytes` bytes from OpenSSL's CSPRNG as lower-case hex (aborts if the
/// generator fails: nothing sensible can run without randomness).
std::string random_hex(std::size_t bytes);

/// A new tenant API key: "rk_live_" or "rk_test_" + 64 hex digits (256 bits).
std::string new_api_key(bool test_mode);

/// A new resource id: prefix + "_" + 24 hex digits (96 bits), e.g. "cus_…".
std::string new_id(std::string_view prefix);

/// The admin key (RECUR_ADMIN_KEY), kept only as its hash.
class admin_key {
public:
  /// An empty key configures none: then nothing matches.
  explicit admin_key(std::string_view key);

  bool configured() const noexcept { return !sha256_hex_.empty(); }
  /// Hashes `presented` and compares the hashes in constant time.
  bool matches(std::string_view presented) const;

private:
  std::string sha256_hex_;
};

/// Finds the tenant of an API key: hashes it, asks the store, compares the
/// stored hash in constant time. Successful lookups are cached for `ttl_s`
/// (keys are never revoked through the API; the cache spares the database a
/// round trip per request). At most `max_entries` are cached; a full cache is
/// emptied. Thread-safe.
class tenant_authenticator {
public:
  explicit tenant_authenticator(store& db, std::size_t max_entries = 10'000,
                                std::int64_t ttl_s = 60);

  /// `not_found` when no tenant has this key; store errors pass through.
  result<tenant_record> authenticate(std::string_view api_key, instant now);

  /// The tenant of a key the cache holds (unexpired); nullopt otherwise,
  /// without asking the store: for callers that must not block.
  std::optional<tenant_record> cached(std::string_view api_key, instant now);

private:
  struct entry {
    tenant_record tenant;
    instant expires_at;
  };

  store& db_;
  std::size_t max_entries_;
  std::int64_t ttl_s_;
  std::mutex mutex_;
  std::unordered_map<std::string, entry> cache_; // key hash → tenant
};

} // namespace recur::api
