#pragma once
/// The clock port and a seeded random generator: the only sources of time and
/// chance that domain, workflow and saga code may use.

#include <cstdint>
#include <random>

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
class rng {
public:
  explicit rng(std::uint64_t seed) : seed_(seed), engine_(seed) {}

  std::uint64_t seed() const noexcept { return seed_; }

  /// Raw 64 random bits.
  std::uint64_t next() { return engine_(); }

  /// Uniform in [0, bound) without modulo bias (Lemire). Requires bound > 0.
  std::uint64_t below(std::uint64_t bound);

  /// Uniform in [lo, hi], both inclusive. Requires lo <= hi.
  std::int64_t between(std::int64_t lo, std::int64_t hi);

  /// True with probability ppm / 1,000,000.
  bool chance_ppm(std::uint32_t ppm) { return below(1'000'000) < ppm; }

private:
  std::uint64_t seed_;
  std::mt19937_64 engine_;
};

} // namespace recur
