#include "workflows/invoice_state.hpp"

#include <string>

namespace recur {

namespace {

struct row {
  invoice_status from;
  invoice_trigger on;
  invoice_status to;
};

using enum invoice_status;
using enum invoice_trigger;

// Everything not listed is invalid_transition; paid and void have no rows.
// clang-format off
constexpr row table[] = {
  // from          trigger             to
  {draft,          finalize,           open},
  {open,           pay,                paid},
  {open,           void_invoice,       voided},
  {open,           mark_uncollectible, uncollectible},
  {uncollectible,  pay,                paid},
};
// clang-format on

} // namespace

std::string_view to_string(invoice_status s) noexcept {
  switch (s) {
    case draft: return "draft";
    case open: return "open";
    case paid: return "paid";
    case voided: return "void";
    case uncollectible: return "uncollectible";
  }
  return "unknown_invoice_status";
}

std::string_view to_string(invoice_trigger t) noexcept {
  switch (t) {
    case finalize: return "finalize";
    case pay: return "pay";
    case void_invoice: return "void";
    case mark_uncollectible: return "mark_uncollectible";
  }
  return "unknown_invoice_trigger";
}

bool is_terminal(invoice_status s) noexcept {
  return s == paid || s == voided;
}

result<invoice_status> apply(invoice_status from, invoice_trigger t) {
  for (const row& r : table) {
    if (r.from == from && r.on == t)
      return r.to;
  }
  return make_error(errc::invalid_transition,
                    "invoice: no transition from " + std::string{to_string(from)}
                      + " on " + std::string{to_string(t)});
}

} // namespace recur
