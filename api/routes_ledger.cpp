// The ledger and reconciliation.
//
//   GET /v1/ledger/balance  {balances: [{account, currency, balance_minor}],
//                           balanced} — debit-positive balances (credit-
//                           normal accounts such as revenue are negative);
//                           `balanced`: every currency sums to zero.
//   GET /v1/reconciliation  per currency, three views of the money that
//                           came in, which must agree:
//     payments_collected_minor  Σ amount of succeeded payment attempts
//     invoices_paid_minor       Σ amount_paid of invoices
//     ledger_cash_minor         the ledger's cash balance
//     ledger_refunds_minor      the ledger's refunds balance (money sent back)
//     ledger_disputes_minor     the ledger's disputes balance (money held
//                               back by the card network)
//   checks: collections_match_invoices  collected == invoices paid
//           cash_matches_collections    cash == collected − refunds − disputes
//   plus, for information, open_invoices_due_minor (Σ amount_due −
//   amount_paid of open invoices) and ledger_receivable_minor. At most
//   `max_reconciled_invoices` invoices are read; `complete` says whether
//   that was all of them. `balanced` = complete and every check holds. A
//   saga caught between its charge and its settle step shows as a
//   temporary mismatch.

#include <map>

#include "api/json_io.hpp"
#include "api/routes.hpp"
#include "domain/ledger.hpp"

namespace recur::api {

namespace {

constexpr std::size_t max_reconciled_invoices = 5'000;
constexpr std::size_t invoice_page = 500;

ordered_json balance_row(const account_balance& b) {
  return {{"account", std::string{to_string(b.account_name)}},
          {"currency", b.currency},
          {"balance_minor", b.balance_minor}};
}

http_response ledger_balance(services& s, request_context& ctx) {
  auto balances = s.db.ledger_balances(ctx.tid());
  if (!balances)
    return error_response(balances.error());
  ordered_json rows = ordered_json::array();
  std::map<std::string, std::int64_t> per_currency;
  for (const auto& b : *balances) {
    rows.push_back(balance_row(b));
    per_currency[b.currency] += b.balance_minor;
  }
  bool balanced = true;
  for (const auto& [cur, sum] : per_currency)
    balanced = balanced && sum == 0;
  return json_response(200,
                       {{"balances", std::move(rows)}, {"balanced", balanced}});
}

struct currency_figures {
  std::int64_t collected = 0;
  std::int64_t invoices_paid = 0;
  std::int64_t open_due = 0;
  std::int64_t cash = 0;
  std::int64_t refunds = 0;
  std::int64_t disputes = 0;
  std::int64_t receivable = 0;
};

// Adds the invoices and their succeeded attempts; false when capped.
result<bool> add_invoices(services& s, const tenant_id& t,
                          std::map<std::string, currency_figures>& figures,
                          std::size_t& scanned) {
  std::string cursor;
  do {
    auto page = s.db.list_invoices(t, std::nullopt, cursor, invoice_page);
    if (!page)
      return page.error();
    for (const auto& inv : page->items) {
      if (scanned >= max_reconciled_invoices)
        return false;
      ++scanned;
      auto& f = figures[inv.currency];
      f.invoices_paid += inv.amount_paid_minor;
      if (inv.status == "open")
        f.open_due += inv.amount_due_minor - inv.amount_paid_minor;
      if (inv.status == "draft")
        continue; // never charged
      auto attempts = s.db.list_attempts(t, inv.id);
      if (!attempts)
        return attempts.error();
      for (const auto& a : *attempts)
        if (a.status == "succeeded")
          figures[a.currency].collected += a.amount_minor;
    }
    cursor = page->next_cursor;
  } while (!cursor.empty());
  return true;
}

http_response reconciliation(services& s, request_context& ctx) {
  std::map<std::string, currency_figures> figures;
  std::size_t scanned = 0;
  auto complete = add_invoices(s, ctx.tid(), figures, scanned);
  if (!complete)
    return error_response(complete.error());
  auto balances = s.db.ledger_balances(ctx.tid());
  if (!balances)
    return error_response(balances.error());
  for (const auto& b : *balances) {
    auto& f = figures[b.currency];
    if (b.account_name == account::cash)
      f.cash = b.balance_minor;
    else if (b.account_name == account::refunds)
      f.refunds = b.balance_minor;
    else if (b.account_name == account::disputes)
      f.disputes = b.balance_minor;
    else if (b.account_name == account::receivable)
      f.receivable = b.balance_minor;
  }
  bool balanced = *complete;
  ordered_json rows = ordered_json::array();
  for (const auto& [cur, f] : figures) {
    const bool collections_match = f.collected == f.invoices_paid;
    const bool cash_matches = f.cash == f.collected - f.refunds - f.disputes;
    balanced = balanced && collections_match && cash_matches;
    rows.push_back({{"currency", cur},
                    {"payments_collected_minor", f.collected},
                    {"invoices_paid_minor", f.invoices_paid},
                    {"ledger_cash_minor", f.cash},
                    {"ledger_refunds_minor", f.refunds},
                    {"ledger_disputes_minor", f.disputes},
                    {"open_invoices_due_minor", f.open_due},
                    {"ledger_receivable_minor", f.receivable},
                    {"checks",
                     {{"collections_match_invoices", collections_match},
                      {"cash_matches_collections", cash_matches}}}});
  }
  return json_response(200, {{"currencies", std::move(rows)},
                             {"invoices_scanned", scanned},
                             {"complete", *complete},
                             {"balanced", balanced}});
}

} // namespace

void add_ledger_routes(router& r, services& s) {
  services* sp = &s;
  const ordered_json integer = {{"type", "integer"}};
  const ordered_json boolean = {{"type", "boolean"}};
  r.add(route{
    "GET", "/v1/ledger/balance", auth_kind::tenant,
    [sp](request_context& ctx) { return ledger_balance(*sp, ctx); },
    route_doc{"debit-positive balance of every ledger account per currency",
              nullptr,
              {{"type", "object"},
               {"properties",
                {{"balances",
                  {{"type", "array"},
                   {"items",
                    {{"type", "object"},
                     {"properties",
                      {{"account", {{"type", "string"}}},
                       {"currency", {{"type", "string"}}},
                       {"balance_minor", integer}}}}}}},
                 {"balanced", boolean}}}},
              200,
              {},
              "application/json"},
    true, nullptr});
  r.add(route{
    "GET", "/v1/reconciliation", auth_kind::tenant,
    [sp](request_context& ctx) { return reconciliation(*sp, ctx); },
    route_doc{"payments collected vs invoices paid vs ledger cash, per "
              "currency",
              nullptr,
              {{"type", "object"},
               {"properties",
                {{"currencies",
                  {{"type", "array"},
                   {"items",
                    {{"type", "object"},
                     {"properties",
                      {{"currency", {{"type", "string"}}},
                       {"payments_collected_minor", integer},
                       {"invoices_paid_minor", integer},
                       {"ledger_cash_minor", integer},
                       {"ledger_refunds_minor", integer},
                       {"ledger_disputes_minor", integer},
                       {"open_invoices_due_minor", integer},
                       {"ledger_receivable_minor", integer},
                       {"checks",
                        {{"type", "object"},
                         {"properties",
                          {{"collections_match_invoices", boolean},
                           {"cash_matches_collections", boolean}}}}}}}}}}},
                 {"invoices_scanned", integer},
                 {"complete", boolean},
                 {"balanced", boolean}}}},
              200,
              {},
              "application/json"},
    true, nullptr});
}

} // namespace recur::api
