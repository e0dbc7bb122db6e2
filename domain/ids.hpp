#pragma once
/// Strong id types, so that ids of different kinds (a plan and a customer, say)
/// cannot be passed for one another.

#include <compare>
#include <cstddef>
#include <functional>
#include <string>

namespace recur {

/// An opaque string id tagged with its kind. `Tag` is never defined: it only
/// makes `id<plan_tag>` and `id<customer_tag>` distinct types.
template <class Tag>
struct id {
  std::string value;

  bool empty() const noexcept { return value.empty(); }

  friend bool operator==(const id&, const id&) = default;
  friend std::strong_ordering operator<=>(const id&, const id&) = default;
};

using tenant_id = id<struct tenant_tag>;
using customer_id = id<struct customer_tag>;
using plan_id = id<struct plan_tag>;
using subscription_id = id<struct subscription_tag>;
using invoice_id = id<struct invoice_tag>;
using saga_id = id<struct saga_tag>;
using payment_attempt_id = id<struct payment_attempt_tag>;

} // namespace recur

template <class Tag>
struct std::hash<recur::id<Tag>> {
  std::size_t operator()(const recur::id<Tag>& x) const noexcept {
    return std::hash<std::string>{}(x.value);
  }
};
