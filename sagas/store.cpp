#include "sagas/store.hpp"

namespace recur {

std::string_view to_string(saga_status s) noexcept {
  switch (s) {
    case saga_status::running: return "running";
    case saga_status::waiting: return "waiting";
    case saga_status::compensating: return "compensating";
    case saga_status::completed: return "completed";
    case saga_status::compensated: return "compensated";
    case saga_status::failed: return "failed";
  }
  return "unknown";
}

result<saga_status> saga_status_from_string(std::string_view s) {
  for (auto st : {saga_status::running, saga_status::waiting,
                  saga_status::compensating, saga_status::completed,
                  saga_status::compensated, saga_status::failed}) {
    if (to_string(st) == s)
      return st;
  }
  return make_error(errc::invalid_argument,
                    "unknown saga status '" + std::string{s} + "'");
}

bool is_finished(saga_status s) noexcept {
  return s == saga_status::completed || s == saga_status::compensated
         || s == saga_status::failed;
}

std::string_view to_string(step_kind k) noexcept {
  return k == step_kind::action ? "action" : "compensation";
}

bool unit_of_work::empty() const noexcept {
  return inbox.empty() && idempotency_responses.empty() && events.empty()
         && snapshots.empty() && subscriptions.empty() && new_sagas.empty()
         && saga_updates.empty() && saga_steps.empty()
         && timers_to_schedule.empty() && timers_to_cancel.empty()
         && timers_to_complete.empty() && new_invoices.empty()
         && invoice_updates.empty() && new_attempts.empty()
         && attempt_updates.empty() && ledger.empty() && outbox.empty()
         && audit.empty();
}

std::vector<result<commit_receipt>>
store::commit_many(std::span<const unit_of_work> works) {
  std::vector<result<commit_receipt>> out;
  out.reserve(works.size());
  for (const unit_of_work& w : works)
    out.push_back(commit(w));
  return out;
}

} // namespace recur
