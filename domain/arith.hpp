#pragma once
/// Exact integer arithmetic for money paths: 128-bit intermediates, half-even
/// division and checked narrowing back to int64.

#include <cstdint>
#include <limits>

#include "domain/error.hpp"

namespace recur {

__extension__ typedef __int128 int128;
__extension__ typedef unsigned __int128 uint128;

/// n / d rounded to the nearest integer, ties to the even neighbour.
/// Requires d != 0. Exact for every int128 input whose quotient fits.
constexpr int128 div_round_half_even(int128 n, int128 d) noexcept {
  if (d < 0) {
    n = -n;
    d = -d;
  }
  int128 q = n / d; // truncates toward zero
  int128 r = n % d; // same sign as n
  int128 twice = (r < 0 ? -r : r) * 2;
  if (twice > d || (twice == d && (q % 2 != 0))) {
    q += (n < 0) ? -1 : 1;
  }
  return q;
}

/// n / d rounded toward negative infinity. Requires d > 0.
constexpr int128 div_floor(int128 n, int128 d) noexcept {
  int128 q = n / d;
  if ((n % d != 0) && (n < 0))
    --q;
  return q;
}

/// Narrows a 128-bit intermediate to int64 or reports `amount_overflow`.
inline result<std::int64_t> narrow_to_int64(int128 v) {
  if (v > std::numeric_limits<std::int64_t>::max()
      || v < std::numeric_limits<std::int64_t>::min())
    return make_error(errc::amount_overflow, "value does not fit in int64");
  return static_cast<std::int64_t>(v);
}

} // namespace recur
