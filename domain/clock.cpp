#include "domain/clock.hpp"

#include "domain/arith.hpp"

namespace recur {

std::uint64_t rng::below(std::uint64_t bound) {
  RECUR_ASSERT(bound > 0);
  std::uint64_t x = next();
  uint128 m = static_cast<uint128>(x) * bound;
  auto low = static_cast<std::uint64_t>(m);
  if (low < bound) {
    const std::uint64_t threshold = (0 - bound) % bound;
    while (low < threshold) {
      x = next();
      m = static_cast<uint128>(x) * bound;
      low = static_cast<std::uint64_t>(m);
    }
  }
  return static_cast<std::uint64_t>(m >> 64);
}

std::int64_t rng::between(std::int64_t lo, std::int64_t hi) {
  RECUR_ASSERT(lo <= hi);
  const auto span = static_cast<std::uint64_t>(hi) - static_cast<std::uint64_t>(lo);
  if (span == ~std::uint64_t{0})
    return static_cast<std::int64_t>(next());
  return static_cast<std::int64_t>(static_cast<std::uint64_t>(lo) + below(span + 1));
}

} // namespace recur
