#pragma once
/// The invoice status machine (draft → open → paid | void | uncollectible,
/// uncollectible → paid) as a transition table.

#include <array>
#include <cstdint>
#include <string_view>

#include "domain/error.hpp"

namespace recur {

/// Stripe's invoice statuses. `voided` is spelled so because `void` is a
/// keyword; its stable name is "void".
enum class invoice_status : std::uint8_t {
  draft,
  open,
  paid,
  voided,
  uncollectible,
};

enum class invoice_trigger : std::uint8_t {
  finalize,
  pay,
  void_invoice,
  mark_uncollectible,
};

inline constexpr std::array all_invoice_statuses{
  invoice_status::draft, invoice_status::open, invoice_status::paid,
  invoice_status::voided, invoice_status::uncollectible,
};

inline constexpr std::array all_invoice_triggers{
  invoice_trigger::finalize,
  invoice_trigger::pay,
  invoice_trigger::void_invoice,
  invoice_trigger::mark_uncollectible,
};

/// Stable names: "draft", "open", "paid", "void", "uncollectible".
std::string_view to_string(invoice_status s) noexcept;

/// Stable names: "finalize", "pay", "void", "mark_uncollectible".
std::string_view to_string(invoice_trigger t) noexcept;

/// paid and void accept nothing more. uncollectible is not terminal: a
/// written-off invoice may still be paid later, as in Stripe.
bool is_terminal(invoice_status s) noexcept;

/// The status `t` leads to from `from`, or `invalid_transition` naming both.
result<invoice_status> apply(invoice_status from, invoice_trigger t);

} // namespace recur
