#pragma once
/// Typed operating errors and the `result<T>` that carries a value or one of them.

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>
#include <utility>
#include <variant>

/// Programmer-error check that stays on in release builds (TigerBeetle style).
#define RECUR_ASSERT(cond)                                                     \
  do {                                                                         \
    if (!(cond)) {                                                             \
      std::fprintf(stderr, "%s:%d: assertion failed: %s\n", __FILE__,         \
                   __LINE__, #cond);                                           \
      std::abort();                                                            \
    }                                                                          \
  } while (false)

namespace recur {

/// Expected operating errors. Stable: their names appear in APIs and logs.
enum class errc : std::uint8_t {
  invalid_argument,
  unknown_currency,
  currency_mismatch,
  amount_overflow,
  negative_amount,
  unbalanced_transaction,
  no_price_version,
  invalid_price,
  invalid_period,
  invalid_transition,
  invalid_policy,
  not_found,
  unavailable, // a dependency (database, gateway) cannot be reached now
  version_conflict,     // optimistic concurrency: someone else wrote first
  already_exists,       // a unique id or idempotency key is taken
  idempotency_conflict, // same idempotency key, different request
  constraint_violation, // the store refused the data (not retryable)
  storage_error,        // the store failed in a way that is not retryable
};

/// The stable snake_case name of an error code, e.g. "currency_mismatch".
std::string_view to_string(errc code) noexcept;

/// An operating error: a stable code plus a human-readable detail.
struct error {
  errc code;
  std::string detail;

  friend bool operator==(const error& a, const error& b) {
    return a.code == b.code;
  }
};

inline error make_error(errc code, std::string detail = {}) {
  return error{code, std::move(detail)};
}

/// A value of type T or an `error`. Never throws on access: accessing the wrong
/// alternative is a programmer error and aborts.
template <class T>
class [[nodiscard]] result {
public:
  // -- constructors -----------------------------------------------------------

  result(T value) : data_(std::move(value)) {}           // NOLINT(implicit)
  result(recur::error err) : data_(std::move(err)) {}    // NOLINT(implicit)

  // -- observers --------------------------------------------------------------

  bool has_value() const noexcept { return data_.index() == 0; }
  explicit operator bool() const noexcept { return has_value(); }

  T& value() & {
    RECUR_ASSERT(has_value());
    return std::get<0>(data_);
  }
  const T& value() const& {
    RECUR_ASSERT(has_value());
    return std::get<0>(data_);
  }
  T&& value() && {
    RECUR_ASSERT(has_value());
    return std::get<0>(std::move(data_));
  }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }

  const recur::error& error() const {
    RECUR_ASSERT(!has_value());
    return std::get<1>(data_);
  }
  errc code() const { return error().code; }

private:
  std::variant<T, recur::error> data_;
};

/// The outcome of an operation that returns nothing on success.
template <>
class [[nodiscard]] result<void> {
public:
  result() = default;
  result(recur::error err) : err_(std::move(err)), failed_(true) {} // NOLINT

  bool has_value() const noexcept { return !failed_; }
  explicit operator bool() const noexcept { return has_value(); }
  const recur::error& error() const {
    RECUR_ASSERT(failed_);
    return err_;
  }
  errc code() const { return error().code; }

private:
  recur::error err_{errc::invalid_argument, {}};
  bool failed_ = false;
};

using status = result<void>;

} // namespace recur
