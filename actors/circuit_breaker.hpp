#pragma once
/// A circuit breaker for one payment gateway: after enough consecutive
/// failures it opens, lets nothing through for a cooldown, then lets exactly
/// one probe through (half-open) whose outcome closes or re-opens it. Pure: it
/// never reads a clock, the caller passes `now`.

#include <cstdint>
#include <string_view>

#include "domain/error.hpp"
#include "domain/payment_gateway.hpp"
#include "domain/time.hpp"

namespace recur {

// -- configuration ------------------------------------------------------------

struct circuit_breaker_config {
  /// Consecutive failures that open a closed circuit (>= 1).
  std::int32_t failure_threshold = 5;
  /// Seconds an open circuit waits before it lets a half-open probe through
  /// (>= 0; 0 probes on the next call).
  std::int64_t open_s = 30;
};

inline constexpr std::int32_t breaker_failure_threshold_max = 1'000'000;
inline constexpr std::int64_t breaker_open_s_max = seconds_per_day;

/// `invalid_argument` naming the field unless 1 <= failure_threshold <=
/// breaker_failure_threshold_max and 0 <= open_s <= breaker_open_s_max.
status validate(const circuit_breaker_config& c);

// -- state --------------------------------------------------------------------

/// closed: calls go through. open: calls wait until the cooldown has passed.
/// half_open: one probe is out; everything else waits for its outcome.
enum class breaker_state : std::uint8_t { closed, open, half_open };

/// "closed", "open", "half_open".
std::string_view to_string(breaker_state s) noexcept;

// -- what counts as a failure -------------------------------------------------

/// A gateway that could not be reached (`unavailable`) or whose charge outcome
/// was lost (`charge_status::unknown`, a timeout) counts against the circuit.
/// Declines and every other answer prove that the gateway works.
bool is_breaker_failure(const error& err) noexcept;
bool is_breaker_failure(const charge_result& r) noexcept;
bool is_breaker_failure(const result<charge_result>& r) noexcept;
bool is_breaker_failure(const result<refund_result>& r) noexcept;

// -- the breaker --------------------------------------------------------------

// clang-format off
/// Transitions (n = consecutive failures, t = threshold, everything not
/// listed leaves the breaker as it is):
///
/// | state     | event                      | next      | effect
/// |-----------|----------------------------|-----------|----------------------
/// | closed    | allow                      | closed    | true
/// | closed    | success                    | closed    | n = 0
/// | closed    | failure, n+1 <  t          | closed    | n += 1
/// | closed    | failure, n+1 >= t          | open      | n += 1, opened_at =
/// |           |                            |           | now, times_opened++
/// | open      | allow, now <  probe_at()   | open      | false
/// | open      | allow, now >= probe_at()   | half_open | true: the probe
/// | open      | success or failure         | open      | none (a call that
/// |           |                            |           | went out before)
/// | half_open | allow                      | half_open | false: probe is out
/// | half_open | success                    | closed    | n = 0
/// | half_open | failure                    | open      | n += 1, opened_at =
/// |           |                            |           | now, times_opened++
///
/// The breaker does not know which call is the probe: in half_open the first
/// outcome reported decides. Callers that run calls concurrently may report a
/// call that went out while closed; it says as much about the gateway.
// clang-format on
class circuit_breaker {
public:
  // -- constructors -----------------------------------------------------------

  /// Asserts `validate(cfg)`.
  explicit circuit_breaker(circuit_breaker_config cfg = {});

  // -- transitions ------------------------------------------------------------

  /// Whether a call may go out now. Moves open to half_open once the cooldown
  /// has passed and grants that single probe.
  bool allow(instant now);

  void on_success();

  void on_failure(instant now);

  // -- observers --------------------------------------------------------------

  breaker_state state() const noexcept { return state_; }

  /// When it last opened (meaningful once times_opened() > 0).
  instant opened_at() const noexcept { return opened_at_; }

  /// When an open circuit lets its probe through: opened_at + open_s.
  instant probe_at() const noexcept {
    return opened_at_.plus_seconds(cfg_.open_s);
  }

  std::int32_t consecutive_failures() const noexcept { return failures_; }

  std::int64_t times_opened() const noexcept { return times_opened_; }

  const circuit_breaker_config& config() const noexcept { return cfg_; }

private:
  void open(instant now);

  circuit_breaker_config cfg_;
  breaker_state state_ = breaker_state::closed;
  instant opened_at_;
  std::int32_t failures_ = 0;
  std::int64_t times_opened_ = 0;
};

} // namespace recur
