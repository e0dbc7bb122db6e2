#include "actors/circuit_breaker.hpp"

#include <string>

namespace recur {

status validate(const circuit_breaker_config& c) {
  if (c.failure_threshold < 1
      || c.failure_threshold > breaker_failure_threshold_max)
    return make_error(errc::invalid_argument,
                      "failure_threshold must be in [1, "
                        + std::to_string(breaker_failure_threshold_max) + "]");
  if (c.open_s < 0 || c.open_s > breaker_open_s_max)
    return make_error(errc::invalid_argument,
                      "open_s must be in [0, "
                        + std::to_string(breaker_open_s_max) + "]");
  return {};
}

std::string_view to_string(breaker_state s) noexcept {
  switch (s) {
    case breaker_state::closed:
      return "closed";
    case breaker_state::open:
      return "open";
    case breaker_state::half_open:
      return "half_open";
  }
  return "?";
}

bool is_breaker_failure(const error& err) noexcept {
  return err.code == errc::unavailable;
}

bool is_breaker_failure(const charge_result& r) noexcept {
  return r.status == charge_status::unknown;
}

bool is_breaker_failure(const result<charge_result>& r) noexcept {
  return r ? is_breaker_failure(*r) : is_breaker_failure(r.error());
}

bool is_breaker_failure(const result<refund_result>& r) noexcept {
  return !r && is_breaker_failure(r.error());
}

circuit_breaker::circuit_breaker(circuit_breaker_config cfg) : cfg_(cfg) {
  RECUR_ASSERT(validate(cfg_).has_value());
}

bool circuit_breaker::allow(instant now) {
  switch (state_) {
    case breaker_state::closed:
      return true;
    case breaker_state::open:
      if (now < probe_at())
        return false;
      state_ = breaker_state::half_open;
      return true;
    case breaker_state::half_open:
      return false;
  }
  return false;
}

void circuit_breaker::on_success() {
  switch (state_) {
    case breaker_state::closed:
    case breaker_state::half_open:
      state_ = breaker_state::closed;
      failures_ = 0;
      return;
    case breaker_state::open:
      return; // a call that went out before it opened
  }
}

void circuit_breaker::on_failure(instant now) {
  switch (state_) {
    case breaker_state::closed:
      if (failures_ < breaker_failure_threshold_max)
        ++failures_;
      if (failures_ >= cfg_.failure_threshold)
        open(now);
      return;
    case breaker_state::half_open:
      if (failures_ < breaker_failure_threshold_max)
        ++failures_;
      open(now);
      return;
    case breaker_state::open:
      return; // a call that went out before it opened
  }
}

void circuit_breaker::open(instant now) {
  state_ = breaker_state::open;
  opened_at_ = now;
  ++times_opened_;
}

} // namespace recur
