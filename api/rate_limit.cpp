#include "api/rate_limit.hpp"

#include <algorithm>
#include <chrono>

#include "domain/error.hpp"

namespace recur::api {

namespace {

constexpr std::int64_t milli = 1000; // thousandths of a token per token

} // namespace

std::int64_t steady_now_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
           std::chrono::steady_clock::now().time_since_epoch())
    .count();
}

rate_limiter::rate_limiter(rate_limit_config config, millis_clock now_ms)
  : config_(config), now_ms_(std::move(now_ms)) {
  RECUR_ASSERT(config_.rate_per_s >= 0);
  RECUR_ASSERT(config_.burst >= 1 && config_.burst <= 1'000'000'000);
  RECUR_ASSERT(config_.max_buckets >= 1);
  RECUR_ASSERT(now_ms_ != nullptr);
}

void rate_limiter::refill(bucket& b, std::int64_t now) const {
  const std::int64_t capacity = config_.burst * milli;
  // rate tokens per second = rate thousandths per millisecond. Elapsed time
  // is capped at what fills an empty bucket, so the product cannot overflow.
  const std::int64_t fill_ms = capacity / config_.rate_per_s + 1;
  const std::int64_t elapsed = std::clamp<std::int64_t>(now - b.updated_ms, 0,
                                                        fill_ms);
  b.milli_tokens = std::min(capacity,
                            b.milli_tokens + elapsed * config_.rate_per_s);
  b.updated_ms = std::max(b.updated_ms, now);
}

// A full bucket is the same as no bucket: dropping those loses nothing. If
// every bucket is in use, forgetting them all errs on the generous side.
void rate_limiter::make_room(std::int64_t now) {
  const std::int64_t capacity = config_.burst * milli;
  for (auto it = buckets_.begin(); it != buckets_.end();) {
    refill(it->second, now);
    it = it->second.milli_tokens >= capacity ? buckets_.erase(it)
                                             : std::next(it);
  }
  if (buckets_.size() >= config_.max_buckets)
    buckets_.clear();
}

rate_decision rate_limiter::take(std::string_view key) {
  if (config_.rate_per_s == 0)
    return {true, 0, config_.burst};
  const std::int64_t now = now_ms_();
  std::lock_guard lock{mutex_};
  auto it = buckets_.find(std::string{key});
  if (it == buckets_.end()) {
    if (buckets_.size() >= config_.max_buckets)
      make_room(now);
    it = buckets_.emplace(std::string{key}, bucket{config_.burst * milli, now})
           .first;
  }
  bucket& b = it->second;
  refill(b, now);
  if (b.milli_tokens >= milli) {
    b.milli_tokens -= milli;
    return {true, 0, b.milli_tokens / milli};
  }
  const std::int64_t wait_ms = (milli - b.milli_tokens + config_.rate_per_s - 1)
                               / config_.rate_per_s;
  return {false, std::max<std::int64_t>(1, (wait_ms + 999) / 1000), 0};
}

} // namespace recur::api
