#pragma once
/// Per-tenant token buckets: each tenant may make `burst` requests at once and
/// `rate_per_s` per second after that; the next request past it is told how
/// long to wait (429 with Retry-After).

#include <cstddef>
#include <cstdint>
#include <functional>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>

namespace recur::api {

struct rate_limit_config {
  std::int64_t rate_per_s = 100;     // tokens added per second; 0: no limit
  std::int64_t burst = 200;          // bucket size (>= 1)
  std::size_t max_buckets = 100'000; // tenants tracked at once
};

/// Milliseconds of a monotonic clock; injected so that tests are exact.
using millis_clock = std::function<std::int64_t()>;

/// std::chrono::steady_clock in milliseconds.
std::int64_t steady_now_ms();

struct rate_decision {
  bool allowed = true;
  std::int64_t retry_after_s = 0; // when refused: whole seconds, >= 1
  std::int64_t remaining = 0;     // whole tokens left after this request
};

/// Thread-safe. Tokens are counted in thousandths, in integers: no rounding
/// drift, whatever the rate.
class rate_limiter {
public:
  rate_limiter(rate_limit_config config, millis_clock now_ms);

  /// Takes one token from `key`'s bucket (created full), if there is one.
  rate_decision take(std::string_view key);

  const rate_limit_config& config() const noexcept { return config_; }

private:
  struct bucket {
    std::int64_t milli_tokens = 0;
    std::int64_t updated_ms = 0;
  };

  void refill(bucket& b, std::int64_t now) const;
  void make_room(std::int64_t now);

  rate_limit_config config_;
  millis_clock now_ms_;
  std::mutex mutex_;
  std::unordered_map<std::string, bucket> buckets_;
};

} // namespace recur::api
