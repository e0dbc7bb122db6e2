#pragma once
// The lifecycle scenarios of issue 4, written once against the billing
// harness so that they run on the in-memory store (unit), on PostgreSQL (pg)
// and under the crash matrix.

#include <functional>
#include <ostream>
#include <string>
#include <vector>

#include "billing_harness.hpp"

namespace recur::testing {

struct scenario {
  std::string name;
  /// Drives the harness; gtest assertions inside check each step.
  std::function<void(billing_harness&)> run;
};

inline void PrintTo(const scenario& s, std::ostream* os) { *os << s.name; }

/// Every scenario; `checked` = false skips the step-by-step assertions
/// (used by the crash matrix, which compares final digests instead).
std::vector<scenario> all_scenarios(bool checked);

/// What must be equal between a crashed-and-recovered run and a clean one:
/// subscription states, invoices, ledger balances, gateway totals, sagas.
std::string digest(billing_harness& h);

/// The start instant all scenarios share: 2026-04-01T00:00:00Z.
instant scenario_start();

} // namespace recur::testing
