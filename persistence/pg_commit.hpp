#pragma once
/// Internal to the PostgreSQL store: committing units of work, alone or many
/// in one transaction (persistence/pg_commit.cpp).

#include <cstddef>
#include <span>
#include <vector>

#include "persistence/pg_detail.hpp"
#include "sagas/store.hpp"

namespace recur::pg {

/// The settings every commit transaction starts with (plans for key probes,
/// the per-statement ledger check): one SELECT of set_config calls.
extern const char* const batch_settings_sql;

/// Commits `works` in transactions of at most `batch_max` units: one
/// transaction and a few multi-row statements per batch. If a batch fails for
/// a reason that is not retryable, its halves are committed in turn (down to
/// single units), so that each unit gets its own typed result, as if
/// committed alone in order.
std::vector<result<commit_receipt>>
commit_units(pool& p, const retry_policy& policy,
             std::span<const unit_of_work> works, std::size_t batch_max);

} // namespace recur::pg
