#pragma once
/// The clock port and a seeded random generator: the only sources of time and
/// chance that domain, workflow and saga code may use.

#include <cstdint>

#include "domain/time.hpp"

namespace recur {

/// Tells the current time. The server hands in a system clock; tests and
/// simulations hand in a `manual_clock`.
class clock {
public:
  virtual ~clock() = default;
  virtual instant now() const = 0;
};

/// A clock that moves only when told to: tests, simulations, test-mode tenants.
class manual_clock final : public clock {
public:
  explicit manual_clock(instant start) : now_(start) {}

  instant now() const override { return now_; }
  void set(instant t) { now_ = t; }
  void advance_seconds(std::int64_t s) { now_ = now_.plus_seconds(s); }

private:
  instant now_;
};

/// A seeded generator with our own range reduction, so that a seed replays the
/// same sequence on every standard library (std::uniform_*_distribution differs).
/// The engine is xoshiro256** seeded through splitmix64: 32 bytes of state
/// and a few nanoseconds to seed, so that every subscription input can have a
/// generator of its own (an mt19937_64 is 2.5 KB and slow to seed).
class rng {
public:
  explicit rng(std::uint64_t seed) : seed_(seed) {
    std::uint64_t x = seed;
    for (auto& word : s_)
      word = splitmix64(x);
  }

  std::uint64_t seed() const noexcept { return seed_; }

  /// Raw 64 random bits.
  std::uint64_t next() {
    const std::uint64_t result = rotl(s_[1] * 5, 7) * 9;
    const std::uint64_t t = s_[1] << 17;
    s_[2] ^= s_[0];
    s_[3] ^= s_[1];
    s_[1] ^= s_[2];
    s_[0] ^= s_[3];
    s_[2] ^= t;
    s_[3] = rotl(s_[3], 45);
    return result;
  }

  /// Uniform in [0, bound) without modulo bias (Lemire). Requires bound > 0.
  std::uint64_t below(std::uint64_t bound);

  /// Uniform in [lo, hi], both inclusive. Requires lo <= hi.
  std::int64_t between(std::int64_t lo, std::int64_t hi);

  /// True with probability ppm / 1,000,000.
  bool chance_ppm(std::uint32_t ppm) { return below(1'000'000) < ppm; }

  /// splitmix64's step: also a good 64-bit mixer for deriving seeds.
  static std::uint64_t splitmix64(std::uint64_t& x) {
    std::uint64_t z = (x += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
  }

private:
  static std::uint64_t rotl(std::uint64_t x, int k) {
    return (x << k) | (x >> (64 - k));
  }

  std::uint64_t seed_;
  std::uint64_t s_[4];
};

} // namespace recur
