#include "persistence/memory_store.hpp"

#include <algorithm>
#include <array>
#include <charconv>
#include <cstddef>
#include <deque>
#include <functional>
#include <map>
#include <set>
#include <system_error>
#include <tuple>
#include <unordered_map>
#include <utility>

#include "domain/flat_index.hpp"

namespace recur {

namespace {

// -- rows
// -----------------------------------------------------------------------

struct timer_row {
  timer_record timer;
  bool completed = false; // kept, so that scheduling the id again is a no-op
  std::optional<instant> lease_until;
};

struct idempotency_row {
  idempotency_record record;
  bool completed = false;
};

/// Tables read only by key: hashed (one or two cache misses a look-up, where
/// a tree of a million string keys costs twenty comparisons).
template <class V>
using hash_map = std::unordered_map<std::string, V>;

/// A stored ledger transaction: what ledger_entry_record repeats for each
/// posting (id, memo, subject, time) is kept once.
struct ledger_tx {
  std::string id;
  std::string subject;
  instant at;
  ledger_transaction transaction;
};

/// A saga's log line as stored: the saga id and seq are its row's and its
/// place in the row's log.
struct saga_step_row {
  std::int32_t step = 0;
  step_kind kind = step_kind::action;
  std::string name;
  std::string outcome;
  std::string detail;
  instant at;
};

/// A saga and its log, found with one lookup.
struct saga_row {
  saga_record record;
  std::vector<saga_step_row> steps;
};

/// Invoices and attempts are indexed by their idempotency key (which no
/// update changes) where they are stored.
struct idempotency_key_of {
  template <class Row>
  std::string_view operator()(const Row& r) const {
    return r.idempotency_key;
  }
};

struct ledger_tx_id {
  std::string_view operator()(const ledger_tx& tx) const { return tx.id; }
};

/// Everything one tenant owns. Every tenant-scoped call reaches exactly one of
/// these, so keys are per tenant and no call can touch another tenant's rows.
/// Trees where a listing walks the keys in order (customers, plans,
/// subscriptions, sagas, invoices), hashes where rows are only looked up.
struct tenant_tables {
  std::map<std::string, customer_record> customers;
  std::map<std::string, std::map<std::int32_t, plan_version_record>> plans;
  std::map<std::string, subscription_row> subscriptions;
  hash_map<std::vector<event_record>> events;
  hash_map<std::map<std::int64_t, snapshot_record>> snapshots;
  std::map<std::string, saga_row> sagas;
  hash_map<timer_row> timers;
  /// (owner, timer id) of every row of `timers`: cancels and listings by
  /// owner walk their own timers, not the tenant's.
  std::set<std::pair<std::string, std::string>> timers_by_owner;
  std::map<std::string, invoice_record> invoices;
  flat_index<invoice_record, idempotency_key_of> invoice_ids_by_key;
  hash_map<payment_attempt_record> attempts;
  flat_index<payment_attempt_record, idempotency_key_of> attempt_ids_by_key;
  /// In append order, one row per transaction (its postings are the
  /// entries, numbered from 1). Deques: they grow without moving what they
  /// hold (a vector's doubling copied every entry and touched twice the
  /// memory), so `ledger_ids` can view the ids in place.
  std::deque<ledger_tx> ledger;
  flat_index<ledger_tx, ledger_tx_id> ledger_ids;
  std::set<std::pair<std::string, std::string>> inbox;
  std::map<std::string, idempotency_row> idempotency;
  std::map<std::string, usage_event> usage;
  std::deque<audit_record> audit; // seq = index + 1
};

/// (due_at, tenant, timer id) of a pending timer: the order claims take.
using timer_key = std::tuple<std::int64_t, std::string, std::string>;

// -- undo journal
// -----------------------------------------------------------------

/// What to do to take back the steps of a unit of work applied so far.
class journal {
public:
  journal() { undo_.reserve(32); } // a renewal's commit takes about 20
  void on_undo(std::function<void()> undo) { undo_.push_back(std::move(undo)); }

  void rollback() {
    for (auto it = undo_.rbegin(); it != undo_.rend(); ++it)
      (*it)();
    undo_.clear();
  }

private:
  std::vector<std::function<void()>> undo_;
};

/// Remembers m[k], or its absence, so that a rollback puts it back.
template <class Map>
void remember(journal& j, Map& m, const typename Map::key_type& k) {
  auto it = m.find(k);
  if (it == m.end())
    j.on_undo([&m, k] { m.erase(k); });
  else
    j.on_undo([&m, k, old = it->second] { m.insert_or_assign(k, old); });
}

/// Inserts k -> v into a hash map unless k is there: the stored value, or
/// nullptr when k was there. A rollback erases it (by a copy of the key: the
/// node's own dies with it).
template <class Map, class V>
typename Map::mapped_type* insert_fresh(journal& j, Map& m,
                                        const std::string& k, V&& v) {
  auto [it, fresh] = m.try_emplace(k, std::forward<V>(v));
  if (!fresh)
    return nullptr;
  j.on_undo([&m, key = &it->first] {
    const std::string copy = *key;
    m.erase(copy);
  });
  return &it->second;
}

/// Moves the new row `r` (version 1) into its place `row` and indexes it by
/// its idempotency key; false, `r` left as it was, when the key is taken.
/// A rollback drops it from the index before its row goes.
template <class Index, class Row>
bool index_fresh(journal& j, Index& index, Row& r, Row& row) {
  if (index.contains(r.idempotency_key))
    return false;
  r.version = 1;
  row = std::move(r);
  index.insert(row);
  j.on_undo([&index, key = &row.idempotency_key] { index.erase(*key); });
  return true;
}

/// Remembers a sequence's length so that a rollback drops what gets appended.
template <class Seq>
void remember_size(journal& j, Seq& v) {
  j.on_undo([&v, n = static_cast<std::ptrdiff_t>(v.size())] {
    v.erase(v.begin() + n, v.end());
  });
}

/// Inserts k unless present; false when it was already there.
template <class K>
bool insert_once(journal& j, std::set<K>& s, const K& k) {
  if (!s.insert(k).second)
    return false;
  j.on_undo([&s, k] { s.erase(k); });
  return true;
}

// -- paging
// -----------------------------------------------------------------------

std::size_t page_size(std::size_t limit) {
  return std::clamp<std::size_t>(limit, 1, memory_store::page_limit_max);
}

std::size_t batch_size(std::size_t limit) {
  return std::min(limit, memory_store::page_limit_max);
}

/// Cuts up to limit + 1 items to a page; the extra one says there is more.
template <class T, class CursorOf>
page<T> to_page(std::vector<T> items, std::size_t limit, CursorOf cursor_of) {
  page<T> p;
  if (items.size() > limit) {
    items.erase(items.begin() + static_cast<std::ptrdiff_t>(limit),
                items.end());
    p.next_cursor = cursor_of(items.back());
  }
  p.items = std::move(items);
  return p;
}

error bad_cursor(const std::string& cursor) {
  return make_error(errc::invalid_argument,
                    "malformed cursor '" + cursor + "'");
}

/// Parses "<number>:<rest>", the shape of the cursors made here.
std::optional<std::pair<std::int64_t, std::string>>
split_cursor(const std::string& cursor) {
  const auto colon = cursor.find(':');
  if (colon == std::string::npos)
    return std::nullopt;
  std::int64_t n = 0;
  const char* first = cursor.data();
  auto [end, ec] = std::from_chars(first, first + colon, n);
  if (ec != std::errc{} || end != first + colon)
    return std::nullopt;
  return std::pair{n, cursor.substr(colon + 1)};
}

std::string saga_cursor(const saga_record& s) {
  return std::to_string(s.created_at.unix_s) + ":" + s.id.value;
}

/// (tenant, saga id) with the tenant's length first, so any ids round-trip.
std::string tenant_saga_cursor(const store::tenant_saga& s) {
  return std::to_string(s.tenant.value.size()) + ":" + s.tenant.value
         + s.saga.id.value;
}

std::optional<std::pair<std::string, std::string>>
parse_tenant_saga_cursor(const std::string& cursor) {
  auto split = split_cursor(cursor);
  if (!split || split->first < 0
      || static_cast<std::size_t>(split->first) > split->second.size())
    return std::nullopt;
  const auto n = static_cast<std::size_t>(split->first);
  return std::pair{split->second.substr(0, n), split->second.substr(n)};
}

bool saga_matches(const saga_record& s, const saga_filter& f) {
  return (!f.status || s.status == *f.status) && (!f.type || s.type == *f.type);
}

bool saga_before(const saga_record& a, const saga_record& b) {
  return std::tie(a.created_at, a.id) < std::tie(b.created_at, b.id);
}

error version_conflict(const std::string& what, std::int64_t expected,
                       std::int64_t actual) {
  return make_error(errc::version_conflict,
                    what + ": expected version " + std::to_string(expected)
                      + ", stored " + std::to_string(actual));
}

} // namespace

// -- the tables and the unit of work
// ----------------------------------------------

struct memory_store::tables {
  std::map<std::string, tenant_record> tenants;
  std::map<std::string, std::string> tenant_ids_by_key_hash;
  std::map<std::string, tenant_tables> by_tenant;
  using timer_index = std::set<timer_key>;
  timer_index pending_timers;                        // every tenant's
  std::map<std::int64_t, outbox_record> unpublished; // by position
  std::int64_t next_position = 1;

  /// Leases the claimable timers `taken` (iterators into pending_timers)
  /// until `until`: each index node moves to its lease end, reused as it is.
  std::vector<claimed_timer>
  lease(const std::vector<timer_index::iterator>& taken, instant until) {
    std::vector<claimed_timer> out;
    out.reserve(taken.size());
    for (auto it : taken) {
      auto node = pending_timers.extract(it);
      auto& [at_s, tenant, id] = node.value();
      timer_row& row = by_tenant.at(tenant).timers.at(id);
      row.lease_until = until;
      out.push_back(claimed_timer{tenant_id{tenant}, row.timer, until});
      at_s = until.unix_s;
      pending_timers.insert(std::move(node));
    }
    return out;
  }

  const tenant_tables* find(const tenant_id& t) const {
    auto it = by_tenant.find(t.value);
    return it == by_tenant.end() ? nullptr : &it->second;
  }

  /// One unit of work being applied: its rows are moved into the tables.
  struct apply_context {
    unit_of_work& work;
    tenant_tables& rows;
    journal& undo;
    commit_receipt& receipt;
    /// The first sagas this unit inserted or updated, so that its steps
    /// find their rows without another walk down the tree.
    std::array<saga_row*, 4> sagas_touched{};
    std::size_t sagas_n = 0;

    void touch(saga_row& row) {
      if (sagas_n < sagas_touched.size())
        sagas_touched[sagas_n++] = &row;
    }
    saga_row* touched(const std::string& id) const {
      for (std::size_t i = 0; i < sagas_n; ++i)
        if (sagas_touched[i]->record.id.value == id)
          return sagas_touched[i];
      return nullptr;
    }
  };

  using step_fn = status (tables::*)(apply_context&);

  /// Takes `w` apart (its rows move into the tables), whatever the outcome.
  result<commit_receipt> commit(unit_of_work& w) {
    journal undo;
    return commit(w, undo);
  }

  /// `commit` with the caller's journal: what it holds (the rows a unit
  /// replaced, kept for a rollback) is freed when the caller drops it, after
  /// the store's lock is released.
  result<commit_receipt> commit(unit_of_work& w, journal& undo) {
    // The order of unit_of_work's comment; a later step sees earlier writes.
    static constexpr step_fn steps[] = {
      &tables::apply_inbox,           &tables::apply_idempotency,
      &tables::apply_events,          &tables::apply_snapshots,
      &tables::apply_read_model,      &tables::apply_new_sagas,
      &tables::apply_saga_updates,    &tables::apply_saga_steps,
      &tables::apply_timer_schedule,  &tables::apply_timer_cancel,
      &tables::apply_timer_complete,  &tables::apply_new_invoices,
      &tables::apply_invoice_updates, &tables::apply_new_attempts,
      &tables::apply_attempt_updates, &tables::apply_ledger,
      &tables::apply_outbox,          &tables::apply_audit,
    };
    commit_receipt receipt;
    apply_context c{w, by_tenant[w.tenant.value], undo, receipt};
    for (step_fn step : steps) {
      if (status s = (this->*step)(c); !s) {
        undo.rollback();
        return s.error();
      }
    }
    return receipt;
  }

  // -- steps
  // ----------------------------------------------------------------------

  status apply_inbox(apply_context& c) {
    for (const inbox_entry& e : c.work.inbox) {
      if (!insert_once(c.undo, c.rows.inbox, std::pair{e.gateway, e.event_id}))
        return make_error(errc::already_exists,
                          "inbox entry " + e.gateway + "/" + e.event_id);
    }
    return {};
  }

  status apply_idempotency(apply_context& c) {
    for (const idempotency_record& r : c.work.idempotency_responses) {
      auto it = c.rows.idempotency.find(r.key);
      if (it == c.rows.idempotency.end())
        return make_error(errc::not_found,
                          "idempotency key " + r.key + " was not reserved");
      if (it->second.record.request_sha256_hex != r.request_sha256_hex)
        return make_error(errc::idempotency_conflict,
                          "idempotency key " + r.key + " has another request");
      if (it->second.completed)
        return make_error(errc::already_exists,
                          "idempotency key " + r.key + " already answered");
      remember(c.undo, c.rows.idempotency, r.key);
      it->second.record.response_status = r.response_status;
      it->second.record.response_body = r.response_body;
      it->second.completed = true;
    }
    return {};
  }

  status apply_events(apply_context& c) {
    for (event_append& a : c.work.events) {
      std::vector<event_record>& stream = c.rows.events[a.subscription.value];
      const auto version = static_cast<std::int64_t>(stream.size());
      if (a.expected_version != version)
        return version_conflict("subscription " + a.subscription.value,
                                a.expected_version, version);
      remember_size(c.undo, stream);
      for (new_event& e : a.events)
        stream.push_back(event_record{
          a.subscription, static_cast<std::int64_t>(stream.size()) + 1,
          std::move(e.type), std::move(e.payload_json), e.recorded_at});
      c.receipt.event_versions.push_back(
        static_cast<std::int64_t>(stream.size()));
    }
    return {};
  }

  status apply_snapshots(apply_context& c) {
    for (const snapshot_record& s : c.work.snapshots) {
      auto stream = c.rows.events.find(s.subscription.value);
      const auto version = stream == c.rows.events.end()
                             ? std::int64_t{0}
                             : static_cast<std::int64_t>(stream->second.size());
      if (s.seq < 1 || s.seq > version)
        return make_error(errc::constraint_violation,
                          "snapshot at seq " + std::to_string(s.seq)
                            + " of a stream at version "
                            + std::to_string(version));
      auto& by_seq = c.rows.snapshots[s.subscription.value];
      remember(c.undo, by_seq, s.seq);
      by_seq.insert_or_assign(s.seq, s);
    }
    return {};
  }

  status apply_read_model(apply_context& c) {
    auto& rows = c.rows.subscriptions;
    for (subscription_row& row : c.work.subscriptions) {
      // One walk down the tree: the old row is moved aside for a rollback.
      auto it = rows.lower_bound(row.id.value);
      if (it != rows.end() && it->first == row.id.value) {
        c.undo.on_undo([&rows, it, old = std::move(it->second)]() mutable {
          it->second = std::move(old);
        });
        it->second = std::move(row);
      } else {
        it = rows.emplace_hint(it, row.id.value, std::move(row));
        c.undo.on_undo([&rows, it] { rows.erase(it); });
      }
    }
    return {};
  }

  status apply_new_sagas(apply_context& c) {
    for (saga_record& s : c.work.new_sagas) {
      auto [it, fresh] = c.rows.sagas.try_emplace(s.id.value);
      if (!fresh)
        return make_error(errc::already_exists, "saga " + s.id.value);
      c.undo.on_undo([&m = c.rows.sagas, it] { m.erase(it); });
      s.version = 1;
      it->second.record = std::move(s);
      c.touch(it->second);
    }
    return {};
  }

  status apply_saga_updates(apply_context& c) {
    for (const saga_update& u : c.work.saga_updates) {
      auto it = c.rows.sagas.find(u.id.value);
      if (it == c.rows.sagas.end())
        return make_error(errc::not_found, "saga " + u.id.value);
      if (it->second.record.version != u.expected_version)
        return version_conflict("saga " + u.id.value, u.expected_version,
                                it->second.record.version);
      saga_record& s = it->second.record;
      c.touch(it->second);
      // The fields an update changes, moved aside rather than the row copied.
      c.undo.on_undo([&s, status = s.status, step = s.step,
                      data = std::move(s.data_json), at = s.updated_at,
                      version = s.version]() mutable {
        s.status = status;
        s.step = step;
        s.data_json = std::move(data);
        s.updated_at = at;
        s.version = version;
      });
      s.status = u.status;
      s.step = u.step;
      s.data_json = std::move(u.data_json);
      s.updated_at = u.updated_at;
      ++s.version;
    }
    return {};
  }

  status apply_saga_steps(apply_context& c) {
    // Steps come grouped by saga (finish_work sorts them): one lookup and
    // one undo entry per run of the same saga.
    std::vector<saga_step_row>* log = nullptr;
    const std::string* of = nullptr;
    for (saga_step_record& step : c.work.saga_steps) {
      if (of == nullptr || *of != step.saga.value) {
        saga_row* row = c.touched(step.saga.value);
        if (row == nullptr) {
          auto it = c.rows.sagas.find(step.saga.value);
          if (it == c.rows.sagas.end())
            return make_error(errc::not_found,
                              "steps of saga " + step.saga.value);
          row = &it->second;
        }
        of = &row->record.id.value;
        log = &row->steps;
        remember_size(c.undo, *log);
        if (log->empty())
          log->reserve(4); // a paid invoice saga's log
      }
      log->push_back(saga_step_row{step.step, step.kind, std::move(step.name),
                                   std::move(step.outcome),
                                   std::move(step.detail), step.at});
    }
    return {};
  }

  // -- timer steps
  // ----------------------------------------------------------------

  timer_key key_of(const apply_context& c, const timer_record& t) const {
    return timer_key{t.due_at.unix_s, c.work.tenant.value, t.id};
  }

  /// A leased timer is indexed at its lease end (when it becomes claimable
  /// again), so that claims never walk over leased timers.
  timer_key key_of(const apply_context& c, const timer_row& row) const {
    return timer_key{row.lease_until ? row.lease_until->unix_s
                                     : row.timer.due_at.unix_s,
                     c.work.tenant.value, row.timer.id};
  }

  void index_insert(journal& j, const timer_key& k) {
    pending_timers.insert(k);
    j.on_undo([this, k] { pending_timers.erase(k); });
  }

  void index_erase(journal& j, const timer_key& k) {
    if (pending_timers.erase(k) > 0)
      j.on_undo([this, k] { pending_timers.insert(k); });
  }

  status apply_timer_schedule(apply_context& c) {
    for (timer_record& t : c.work.timers_to_schedule) {
      auto [it, fresh] = c.rows.timers.try_emplace(t.id);
      if (!fresh)
        continue; // the second schedule of an id changes nothing
      // By id: a cancel later in this unit may erase and (undone) re-insert it.
      c.undo.on_undo([&m = c.rows.timers, id = t.id] { m.erase(id); });
      insert_once(c.undo, c.rows.timers_by_owner, std::pair{t.owner, t.id});
      index_insert(c.undo, key_of(c, t));
      it->second = timer_row{std::move(t), false, std::nullopt};
    }
    return {};
  }

  /// Cancelled timers are removed: their id may be scheduled again.
  status apply_timer_cancel(apply_context& c) {
    auto& by_owner = c.rows.timers_by_owner;
    for (const timer_cancel& x : c.work.timers_to_cancel) {
      std::vector<std::string> ids;
      for (auto it = by_owner.lower_bound(std::pair{x.owner, std::string{}});
           it != by_owner.end() && it->first == x.owner; ++it) {
        const timer_row& row = c.rows.timers.at(it->second);
        if (!row.completed && (x.kind.empty() || row.timer.kind == x.kind))
          ids.push_back(it->second);
      }
      for (const std::string& id : ids) {
        index_erase(c.undo, key_of(c, c.rows.timers.at(id)));
        remember(c.undo, c.rows.timers, id);
        c.rows.timers.erase(id);
        by_owner.erase(std::pair{x.owner, id});
        c.undo.on_undo([&by_owner, owner = x.owner, id] {
          by_owner.emplace(owner, id);
        });
      }
    }
    return {};
  }

  status apply_timer_complete(apply_context& c) {
    for (const std::string& id : c.work.timers_to_complete) {
      auto it = c.rows.timers.find(id);
      if (it == c.rows.timers.end() || it->second.completed)
        return make_error(errc::not_found, "pending timer " + id);
      index_erase(c.undo, key_of(c, it->second));
      timer_row& row = it->second;
      c.undo.on_undo([&row, lease = row.lease_until] {
        row.completed = false;
        row.lease_until = lease;
      });
      row.completed = true;
      row.lease_until.reset();
    }
    return {};
  }

  // -- invoice and attempt steps
  // --------------------------------------------------

  status apply_new_invoices(apply_context& c) {
    for (invoice_record& r : c.work.new_invoices) {
      auto duplicate = [&] {
        return make_error(errc::already_exists,
                          "invoice " + r.id.value + " / " + r.idempotency_key);
      };
      auto [it, fresh] = c.rows.invoices.try_emplace(r.id.value);
      if (!fresh)
        return duplicate();
      c.undo.on_undo([&m = c.rows.invoices, it] { m.erase(it); });
      if (!index_fresh(c.undo, c.rows.invoice_ids_by_key, r, it->second))
        return duplicate();
    }
    return {};
  }

  status apply_invoice_updates(apply_context& c) {
    for (const invoice_update& u : c.work.invoice_updates) {
      auto it = c.rows.invoices.find(u.id.value);
      if (it == c.rows.invoices.end())
        return make_error(errc::not_found, "invoice " + u.id.value);
      if (it->second.version != u.expected_version)
        return version_conflict("invoice " + u.id.value, u.expected_version,
                                it->second.version);
      invoice_record& r = it->second;
      c.undo.on_undo([&r, status = std::move(r.status),
                      paid = r.amount_paid_minor, at = r.updated_at,
                      version = r.version]() mutable {
        r.status = std::move(status);
        r.amount_paid_minor = paid;
        r.updated_at = at;
        r.version = version;
      });
      r.status = std::move(u.status);
      r.amount_paid_minor = u.amount_paid_minor;
      r.updated_at = u.updated_at;
      ++r.version;
    }
    return {};
  }

  status apply_new_attempts(apply_context& c) {
    for (payment_attempt_record& r : c.work.new_attempts) {
      auto duplicate = [&] {
        return make_error(errc::already_exists, "payment attempt " + r.id.value
                                                  + " / " + r.idempotency_key);
      };
      payment_attempt_record* row = insert_fresh(
        c.undo, c.rows.attempts, r.id.value, payment_attempt_record{});
      if (row == nullptr)
        return duplicate();
      if (!index_fresh(c.undo, c.rows.attempt_ids_by_key, r, *row))
        return duplicate();
    }
    return {};
  }

  status apply_attempt_updates(apply_context& c) {
    for (const payment_attempt_update& u : c.work.attempt_updates) {
      auto it = c.rows.attempts.find(u.id.value);
      if (it == c.rows.attempts.end())
        return make_error(errc::not_found, "payment attempt " + u.id.value);
      if (it->second.version != u.expected_version)
        return version_conflict("payment attempt " + u.id.value,
                                u.expected_version, it->second.version);
      payment_attempt_record& r = it->second;
      c.undo.on_undo([&r, status = std::move(r.status),
                      code = std::move(r.decline_code), at = r.updated_at,
                      charge = r.charge_id, version = r.version]() mutable {
        r.status = std::move(status);
        r.decline_code = std::move(code);
        r.updated_at = at;
        r.charge_id = std::move(charge);
        r.version = version;
      });
      r.status = std::move(u.status);
      r.decline_code = std::move(u.decline_code);
      r.updated_at = u.updated_at;
      if (!u.charge_id.empty())
        r.charge_id = std::move(u.charge_id);
      ++r.version;
    }
    return {};
  }

  // -- ledger, outbox, audit steps
  // ------------------------------------------------

  status apply_ledger(apply_context& c) {
    auto& ids = c.rows.ledger_ids;
    for (ledger_append& a : c.work.ledger) {
      remember_size(c.undo, c.rows.ledger);
      ledger_tx& tx = c.rows.ledger.emplace_back(
        ledger_tx{std::move(a.transaction_id), std::move(a.subject), a.at,
                  std::move(a.transaction)});
      // The view is of the string in the deque, which stays where it is
      // until the rollback above (run after this one) drops it.
      if (!ids.insert(tx))
        return make_error(errc::already_exists, "ledger transaction " + tx.id);
      c.undo.on_undo([&ids, &tx] { ids.erase(tx.id); });
    }
    return {};
  }

  status apply_outbox(apply_context& c) {
    if (c.work.outbox.empty())
      return {};
    c.undo.on_undo([this, next = next_position] { next_position = next; });
    for (outbox_message& m : c.work.outbox) {
      const std::int64_t position = next_position++;
      unpublished.emplace_hint(unpublished.end(), position,
                               outbox_record{c.work.tenant, position,
                                             std::move(m), std::nullopt});
      c.undo.on_undo([this, position] { unpublished.erase(position); });
    }
    return {};
  }

  status apply_audit(apply_context& c) {
    if (c.work.audit.empty())
      return {};
    remember_size(c.undo, c.rows.audit);
    for (audit_entry& e : c.work.audit)
      c.rows.audit.push_back(audit_record{
        static_cast<std::int64_t>(c.rows.audit.size()) + 1, std::move(e)});
    return {};
  }
};

// -- memory_store
// -------------------------------------------------------------------

memory_store::memory_store() : tables_(std::make_unique<tables>()) {}

memory_store::~memory_store() = default;

result<commit_receipt> memory_store::commit(const unit_of_work& work) {
  unit_of_work copy = work; // copied before the lock is taken
  journal undo;             // and freed after it is released
  std::lock_guard lock{mutex_};
  return tables_->commit(copy, undo);
}

result<commit_receipt> memory_store::commit_owned(unit_of_work&& work) {
  journal undo;
  std::lock_guard lock{mutex_};
  return tables_->commit(work, undo);
}

std::vector<result<commit_receipt>>
memory_store::commit_many(std::span<const unit_of_work> works) {
  std::vector<unit_of_work> copies(works.begin(), works.end());
  // One lock for the batch: no other writer lands between its units.
  std::lock_guard lock{mutex_};
  std::vector<result<commit_receipt>> out;
  out.reserve(copies.size());
  for (unit_of_work& w : copies)
    out.push_back(tables_->commit(w));
  return out;
}

// -- tenants and catalogue
// ------------------------------------------------------------

status memory_store::create_tenant(const tenant_record& t) {
  std::lock_guard lock{mutex_};
  if (tables_->tenants.contains(t.id.value)
      || tables_->tenant_ids_by_key_hash.contains(t.api_key_sha256_hex))
    return make_error(errc::already_exists, "tenant " + t.id.value);
  tables_->tenants.emplace(t.id.value, t);
  tables_->tenant_ids_by_key_hash.emplace(t.api_key_sha256_hex, t.id.value);
  return {};
}

result<tenant_record>
memory_store::find_tenant_by_key_hash(const std::string& api_key_sha256_hex) {
  std::lock_guard lock{mutex_};
  auto it = tables_->tenant_ids_by_key_hash.find(api_key_sha256_hex);
  if (it == tables_->tenant_ids_by_key_hash.end())
    return make_error(errc::not_found, "no tenant has that API key");
  return tables_->tenants.at(it->second);
}

result<tenant_record> memory_store::get_tenant(const tenant_id& t) {
  std::lock_guard lock{mutex_};
  auto it = tables_->tenants.find(t.value);
  if (it == tables_->tenants.end())
    return make_error(errc::not_found, "tenant " + t.value);
  return it->second;
}

result<customer_record>
memory_store::put_customer(const tenant_id& t, const customer_record& c,
                           std::int64_t expected_version) {
  std::lock_guard lock{mutex_};
  auto& customers = tables_->by_tenant[t.value].customers;
  auto it = customers.find(c.id.value);
  if (it == customers.end() && expected_version != 0)
    return make_error(errc::not_found, "customer " + c.id.value);
  const std::int64_t stored = it == customers.end() ? 0 : it->second.version;
  if (stored != expected_version)
    return version_conflict("customer " + c.id.value, expected_version, stored);
  customer_record next = c;
  next.version = expected_version + 1;
  customers.insert_or_assign(c.id.value, next);
  return next;
}

result<customer_record> memory_store::get_customer(const tenant_id& t,
                                                   const customer_id& id) {
  std::lock_guard lock{mutex_};
  const tenant_tables* rows = tables_->find(t);
  if (rows != nullptr) {
    if (auto it = rows->customers.find(id.value); it != rows->customers.end())
      return it->second;
  }
  return make_error(errc::not_found, "customer " + id.value);
}

status memory_store::add_plan_version(const tenant_id& t,
                                      const plan_version_record& v) {
  std::lock_guard lock{mutex_};
  auto& versions = tables_->by_tenant[t.value].plans[v.plan.value];
  if (!versions.emplace(v.version, v).second)
    return make_error(errc::already_exists, "plan " + v.plan.value + " version "
                                              + std::to_string(v.version));
  return {};
}

result<std::vector<plan_version_record>>
memory_store::list_plan_versions(const tenant_id& t, const plan_id& plan) {
  std::lock_guard lock{mutex_};
  std::vector<plan_version_record> out;
  const tenant_tables* rows = tables_->find(t);
  if (rows == nullptr)
    return out;
  if (auto it = rows->plans.find(plan.value); it != rows->plans.end()) {
    for (const auto& [version, record] : it->second)
      out.push_back(record);
  }
  return out;
}

result<page<plan_version_record>>
memory_store::list_plans(const tenant_id& t, const std::string& cursor,
                         std::size_t limit) {
  std::lock_guard lock{mutex_};
  limit = page_size(limit);
  std::vector<plan_version_record> items;
  if (const tenant_tables* rows = tables_->find(t); rows != nullptr) {
    for (auto it = rows->plans.upper_bound(cursor);
         it != rows->plans.end() && items.size() <= limit; ++it) {
      if (!it->second.empty())
        items.push_back(it->second.rbegin()->second);
    }
  }
  return to_page(std::move(items), limit,
                 [](const plan_version_record& p) { return p.plan.value; });
}

result<subscription_row>
memory_store::get_subscription(const tenant_id& t, const subscription_id& id) {
  std::lock_guard lock{mutex_};
  const tenant_tables* rows = tables_->find(t);
  if (rows != nullptr) {
    if (auto it = rows->subscriptions.find(id.value);
        it != rows->subscriptions.end())
      return it->second;
  }
  return make_error(errc::not_found, "subscription " + id.value);
}

result<page<subscription_row>>
memory_store::list_subscriptions(const tenant_id& t,
                                 std::optional<std::string> status,
                                 std::optional<customer_id> customer,
                                 const std::string& cursor, std::size_t limit) {
  std::lock_guard lock{mutex_};
  limit = page_size(limit);
  std::vector<subscription_row> items;
  if (const tenant_tables* rows = tables_->find(t); rows != nullptr) {
    for (auto it = rows->subscriptions.upper_bound(cursor);
         it != rows->subscriptions.end() && items.size() <= limit; ++it) {
      const subscription_row& r = it->second;
      if ((!status || r.status == *status)
          && (!customer || r.customer == *customer))
        items.push_back(r);
    }
  }
  return to_page(std::move(items), limit,
                 [](const subscription_row& r) { return r.id.value; });
}

// -- event store
// ----------------------------------------------------------------------

result<std::vector<event_record>>
memory_store::load_events(const tenant_id& t, const subscription_id& s,
                          std::int64_t from_seq) {
  std::lock_guard lock{mutex_};
  std::vector<event_record> out;
  const tenant_tables* rows = tables_->find(t);
  if (rows == nullptr)
    return out;
  auto it = rows->events.find(s.value);
  if (it == rows->events.end())
    return out;
  const auto& stream = it->second;
  const auto first
    = static_cast<std::size_t>(std::max<std::int64_t>(from_seq, 1) - 1);
  if (first < stream.size())
    out.assign(stream.begin() + static_cast<std::ptrdiff_t>(first),
               stream.end());
  return out;
}

result<subscription_history>
memory_store::load_history(const tenant_id& t, const subscription_id& s) {
  std::lock_guard lock{mutex_};
  subscription_history h;
  const tenant_tables* rows = tables_->find(t);
  if (rows == nullptr)
    return h;
  if (auto snaps = rows->snapshots.find(s.value);
      snaps != rows->snapshots.end() && !snaps->second.empty())
    h.snapshot = snaps->second.rbegin()->second;
  auto it = rows->events.find(s.value);
  if (it == rows->events.end())
    return h;
  const auto& stream = it->second;
  const auto first = static_cast<std::size_t>(h.snapshot ? h.snapshot->seq : 0);
  if (first < stream.size())
    h.tail.assign(stream.begin() + static_cast<std::ptrdiff_t>(first),
                  stream.end());
  h.version = static_cast<std::int64_t>(stream.size());
  return h;
}

// -- sagas
// ----------------------------------------------------------------------------

result<saga_record> memory_store::get_saga(const tenant_id& t,
                                           const saga_id& id) {
  std::lock_guard lock{mutex_};
  const tenant_tables* rows = tables_->find(t);
  if (rows != nullptr) {
    if (auto it = rows->sagas.find(id.value); it != rows->sagas.end())
      return it->second.record;
  }
  return make_error(errc::not_found, "saga " + id.value);
}

result<std::vector<saga_step_record>>
memory_store::load_saga_steps(const tenant_id& t, const saga_id& id) {
  std::lock_guard lock{mutex_};
  std::vector<saga_step_record> out;
  const tenant_tables* rows = tables_->find(t);
  if (rows != nullptr) {
    if (auto it = rows->sagas.find(id.value); it != rows->sagas.end()) {
      out.reserve(it->second.steps.size());
      std::int64_t seq = 0;
      for (const saga_step_row& r : it->second.steps)
        out.push_back(saga_step_record{saga_id{it->first}, ++seq, r.step,
                                       r.kind, r.name, r.outcome, r.detail,
                                       r.at});
    }
  }
  return out;
}

result<page<saga_record>>
memory_store::list_sagas(const tenant_id& t, const saga_filter& f,
                         const std::string& cursor, std::size_t limit) {
  std::lock_guard lock{mutex_};
  limit = page_size(limit);
  std::optional<saga_record> after;
  if (!cursor.empty()) {
    auto split = split_cursor(cursor);
    if (!split)
      return bad_cursor(cursor);
    after.emplace();
    after->created_at = instant{split->first};
    after->id = saga_id{split->second};
  }
  std::vector<saga_record> items;
  if (const tenant_tables* rows = tables_->find(t); rows != nullptr) {
    for (const auto& [id, row] : rows->sagas) {
      const saga_record& s = row.record;
      if (saga_matches(s, f) && (!after || saga_before(*after, s)))
        items.push_back(s);
    }
  }
  const auto keep = std::min(items.size(), limit + 1);
  std::partial_sort(items.begin(),
                    items.begin() + static_cast<std::ptrdiff_t>(keep),
                    items.end(), saga_before);
  items.resize(keep);
  return to_page(std::move(items), limit, saga_cursor);
}

// -- timers, invoices, attempts
// -------------------------------------------------------

result<std::vector<timer_record>>
memory_store::list_timers(const tenant_id& t, const std::string& owner) {
  std::lock_guard lock{mutex_};
  std::vector<timer_record> out;
  if (const tenant_tables* rows = tables_->find(t); rows != nullptr) {
    for (auto it = rows->timers_by_owner.lower_bound(
           std::pair{owner, std::string{}});
         it != rows->timers_by_owner.end() && it->first == owner; ++it) {
      const timer_row& row = rows->timers.at(it->second);
      if (!row.completed)
        out.push_back(row.timer);
    }
  }
  std::sort(out.begin(), out.end(),
            [](const timer_record& a, const timer_record& b) {
              return std::tie(a.due_at, a.id) < std::tie(b.due_at, b.id);
            });
  return out;
}

result<bool> memory_store::timer_pending(const tenant_id& t,
                                         const std::string& owner,
                                         const std::string& id) {
  std::lock_guard lock{mutex_};
  if (const tenant_tables* rows = tables_->find(t); rows != nullptr)
    if (auto it = rows->timers.find(id); it != rows->timers.end())
      return !it->second.completed && it->second.timer.owner == owner;
  return false;
}

result<invoice_record> memory_store::get_invoice(const tenant_id& t,
                                                 const invoice_id& id) {
  std::lock_guard lock{mutex_};
  const tenant_tables* rows = tables_->find(t);
  if (rows != nullptr) {
    if (auto it = rows->invoices.find(id.value); it != rows->invoices.end())
      return it->second;
  }
  return make_error(errc::not_found, "invoice " + id.value);
}

result<invoice_record>
memory_store::find_invoice_by_key(const tenant_id& t,
                                  const std::string& idempotency_key) {
  std::lock_guard lock{mutex_};
  const tenant_tables* rows = tables_->find(t);
  if (rows != nullptr) {
    if (const invoice_record* r = rows->invoice_ids_by_key.find(idempotency_key))
      return *r;
  }
  return make_error(errc::not_found, "invoice with key " + idempotency_key);
}

result<page<invoice_record>>
memory_store::list_invoices(const tenant_id& t,
                            std::optional<subscription_id> s,
                            const std::string& cursor, std::size_t limit) {
  std::lock_guard lock{mutex_};
  limit = page_size(limit);
  std::vector<invoice_record> items;
  if (const tenant_tables* rows = tables_->find(t); rows != nullptr) {
    for (auto it = rows->invoices.upper_bound(cursor);
         it != rows->invoices.end() && items.size() <= limit; ++it) {
      if (!s || it->second.subscription == *s)
        items.push_back(it->second);
    }
  }
  return to_page(std::move(items), limit,
                 [](const invoice_record& r) { return r.id.value; });
}

result<payment_attempt_record>
memory_store::get_attempt(const tenant_id& t, const payment_attempt_id& id) {
  std::lock_guard lock{mutex_};
  const tenant_tables* rows = tables_->find(t);
  if (rows != nullptr) {
    if (auto it = rows->attempts.find(id.value); it != rows->attempts.end())
      return it->second;
  }
  return make_error(errc::not_found, "payment attempt " + id.value);
}

result<std::vector<payment_attempt_record>>
memory_store::list_attempts(const tenant_id& t, const invoice_id& invoice) {
  std::lock_guard lock{mutex_};
  std::vector<payment_attempt_record> out;
  if (const tenant_tables* rows = tables_->find(t); rows != nullptr) {
    for (const auto& [id, a] : rows->attempts) {
      if (a.invoice == invoice)
        out.push_back(a);
    }
  }
  std::sort(
    out.begin(), out.end(),
    [](const payment_attempt_record& a, const payment_attempt_record& b) {
      return std::tie(a.attempt_no, a.id) < std::tie(b.attempt_no, b.id);
    });
  return out;
}

result<payment_attempt_record>
memory_store::find_attempt_by_charge(const tenant_id& t,
                                     const std::string& charge_id) {
  std::lock_guard lock{mutex_};
  // A scan: look-ups are rare (refunds and disputes made at the gateway).
  // Several attempts may name one charge id (a sandbox gateway restarted
  // and counted its ids again): the latest written wins, as in PostgreSQL.
  const payment_attempt_record* best = nullptr;
  if (const tenant_tables* rows = tables_->find(t);
      rows != nullptr && !charge_id.empty())
    for (const auto& [id, a] : rows->attempts)
      if (a.charge_id == charge_id
          && (best == nullptr
              || std::tie(best->updated_at.unix_s, best->id.value)
                   < std::tie(a.updated_at.unix_s, a.id.value)))
        best = &a;
  if (best == nullptr)
    return make_error(errc::not_found, "no payment attempt with charge "
                                         + charge_id);
  return *best;
}

// -- ledger, usage, audit, inbox
// ------------------------------------------------------

result<std::vector<ledger_entry_record>>
memory_store::load_ledger(const tenant_id& t, const std::string& subject) {
  std::lock_guard lock{mutex_};
  std::vector<ledger_entry_record> out;
  if (const tenant_tables* rows = tables_->find(t); rows != nullptr) {
    for (const ledger_tx& tx : rows->ledger) {
      if (tx.subject != subject)
        continue;
      std::int32_t line = 0;
      for (const posting& p : tx.transaction.postings())
        out.push_back(ledger_entry_record{
          tx.id, ++line, p.account, p.side, p.amount.amount_minor(),
          std::string{p.amount.currency().code()}, tx.transaction.memo(),
          tx.subject, tx.at});
    }
  }
  return out;
}

result<std::vector<account_balance>>
memory_store::ledger_balances(const tenant_id& t) {
  std::lock_guard lock{mutex_};
  std::map<std::pair<account, std::string>, std::int64_t> sums;
  if (const tenant_tables* rows = tables_->find(t); rows != nullptr) {
    for (const ledger_tx& tx : rows->ledger) {
      for (const posting& p : tx.transaction.postings()) {
        std::int64_t& sum
          = sums[{p.account, std::string{p.amount.currency().code()}}];
        const std::int64_t minor = p.amount.amount_minor();
        const std::int64_t signed_minor
          = p.side == entry_side::debit ? minor : -minor;
        if (__builtin_add_overflow(sum, signed_minor, &sum))
          return make_error(errc::amount_overflow,
                            "balance of " + std::string{to_string(p.account)});
      }
    }
  }
  std::vector<account_balance> out;
  out.reserve(sums.size());
  for (const auto& [key, balance] : sums)
    out.push_back(account_balance{key.first, key.second, balance});
  return out;
}

result<usage_receipt>
memory_store::record_usage(const tenant_id& t, std::span<const usage_event> u) {
  std::lock_guard lock{mutex_};
  for (const usage_event& e : u) {
    if (e.quantity < 0)
      return make_error(errc::constraint_violation,
                        "usage " + e.id + " has a negative quantity");
  }
  auto& usage = tables_->by_tenant[t.value].usage;
  usage_receipt receipt;
  for (const usage_event& e : u) {
    if (usage.emplace(e.id, e).second)
      ++receipt.accepted;
    else
      ++receipt.duplicates;
  }
  return receipt;
}

result<std::int64_t>
memory_store::sum_usage(const tenant_id& t, const subscription_id& s,
                        const std::string& meter, instant from, instant to) {
  std::lock_guard lock{mutex_};
  std::int64_t total = 0;
  if (const tenant_tables* rows = tables_->find(t); rows != nullptr) {
    for (const auto& [id, e] : rows->usage) {
      if (e.subscription == s && e.meter == meter && from <= e.at && e.at < to
          && __builtin_add_overflow(total, e.quantity, &total))
        return make_error(errc::amount_overflow, "usage of " + meter);
    }
  }
  return total;
}

result<page<audit_record>> memory_store::list_audit(const tenant_id& t,
                                                    const std::string& cursor,
                                                    std::size_t limit) {
  std::lock_guard lock{mutex_};
  limit = page_size(limit);
  std::int64_t after = 0;
  if (!cursor.empty()) {
    auto [end, ec] = std::from_chars(cursor.data(),
                                     cursor.data() + cursor.size(), after);
    if (ec != std::errc{} || end != cursor.data() + cursor.size() || after < 0)
      return bad_cursor(cursor);
  }
  std::vector<audit_record> items;
  if (const tenant_tables* rows = tables_->find(t); rows != nullptr) {
    for (auto i = static_cast<std::size_t>(after);
         i < rows->audit.size() && items.size() <= limit; ++i)
      items.push_back(rows->audit[i]);
  }
  return to_page(std::move(items), limit,
                 [](const audit_record& r) { return std::to_string(r.seq); });
}

result<bool> memory_store::inbox_contains(const tenant_id& t,
                                          const std::string& gateway,
                                          const std::string& event_id) {
  std::lock_guard lock{mutex_};
  const tenant_tables* rows = tables_->find(t);
  return rows != nullptr && rows->inbox.contains(std::pair{gateway, event_id});
}

// -- HTTP idempotency keys
// ------------------------------------------------------------

result<idempotency_outcome>
memory_store::begin_idempotent(const tenant_id& t, const std::string& key,
                               const std::string& request_sha256_hex,
                               instant now) {
  std::lock_guard lock{mutex_};
  auto& keys = tables_->by_tenant[t.value].idempotency;
  auto it = keys.find(key);
  if (it == keys.end()) {
    keys.emplace(key, idempotency_row{
                        idempotency_record{key, request_sha256_hex, 0, {}, now},
                        false});
    return idempotency_outcome{idempotency_state::new_request, std::nullopt};
  }
  if (it->second.record.request_sha256_hex != request_sha256_hex)
    return make_error(errc::idempotency_conflict,
                      "idempotency key " + key
                        + " was used for another request");
  if (!it->second.completed)
    return idempotency_outcome{idempotency_state::in_flight, std::nullopt};
  return idempotency_outcome{idempotency_state::replay, it->second.record};
}

// -- system (cross-tenant)
// ------------------------------------------------------------

result<page<store::tenant_saga>>
memory_store::find_unfinished_sagas(const std::string& cursor,
                                    std::size_t limit) {
  std::lock_guard lock{mutex_};
  limit = page_size(limit);
  std::pair<std::string, std::string> after;
  if (!cursor.empty()) {
    auto parsed = parse_tenant_saga_cursor(cursor);
    if (!parsed)
      return bad_cursor(cursor);
    after = *parsed;
  }
  std::vector<tenant_saga> items;
  for (auto t = tables_->by_tenant.lower_bound(after.first);
       t != tables_->by_tenant.end() && items.size() <= limit; ++t) {
    const auto& sagas = t->second.sagas;
    auto s = !cursor.empty() && t->first == after.first
               ? sagas.upper_bound(after.second)
               : sagas.begin();
    for (; s != sagas.end() && items.size() <= limit; ++s) {
      if (!is_finished(s->second.record.status))
        items.push_back(tenant_saga{tenant_id{t->first}, s->second.record});
    }
  }
  return to_page(std::move(items), limit, tenant_saga_cursor);
}

result<std::vector<claimed_timer>>
memory_store::claim_due_timers(instant now, std::size_t limit,
                               std::int64_t lease_s,
                               const std::string& claimer) {
  // Leases are by time: any claimer may take over. An empty scope is every
  // tenant's timers.
  return claim_due_timers_in(timer_claim_scope{}, now, limit, lease_s,
                             claimer);
}

result<std::vector<claimed_timer>>
memory_store::claim_due_timers_in(const timer_claim_scope& scope, instant now,
                                  std::size_t limit, std::int64_t lease_s,
                                  const std::string& claimer) {
  static_cast<void>(claimer);
  if (lease_s <= 0)
    return make_error(errc::invalid_argument, "a lease must last > 0 s");
  std::lock_guard lock{mutex_};
  limit = batch_size(limit);
  auto in_scope = [&](const std::string& tenant) {
    if (scope.tenant && scope.tenant->value != tenant)
      return false;
    if (scope.skip_test_tenants) {
      auto it = tables_->tenants.find(tenant);
      return it == tables_->tenants.end() || !it->second.test_mode;
    }
    return true;
  };
  // Every indexed key at or before `now` is claimable: leased timers are
  // indexed at their lease end.
  std::vector<tables::timer_index::iterator> taken;
  for (auto it = tables_->pending_timers.begin();
       it != tables_->pending_timers.end(); ++it) {
    if (std::get<0>(*it) > now.unix_s || taken.size() >= limit)
      break;
    if (in_scope(std::get<1>(*it)))
      taken.push_back(it);
  }
  return tables_->lease(taken, now.plus_seconds(lease_s));
}

result<store::operational_figures>
memory_store::operational_stats(instant now) {
  std::lock_guard lock{mutex_};
  std::map<std::pair<std::string, std::string>, saga_count> by;
  for (const auto& [tenant, rows] : tables_->by_tenant)
    for (const auto& [id, row] : rows.sagas) {
      const saga_record& saga = row.record;
      auto& c = by[{saga.type, std::string{to_string(saga.status)}}];
      c.type = saga.type;
      c.status = saga.status;
      ++c.count;
    }
  operational_figures out;
  for (auto& [key, c] : by)
    out.sagas.push_back(std::move(c));
  for (const auto& k : tables_->pending_timers) {
    const auto& [indexed_s, tenant, id] = k;
    ++out.timers_pending;
    if (tables_->by_tenant.at(tenant).timers.at(id).timer.due_at.unix_s
        <= now.unix_s)
      ++out.timers_due;
  }
  return out;
}

result<std::vector<outbox_record>>
memory_store::fetch_unpublished(std::int64_t after_position,
                                std::size_t limit) {
  std::lock_guard lock{mutex_};
  limit = batch_size(limit);
  std::vector<outbox_record> out;
  for (auto it = tables_->unpublished.upper_bound(after_position);
       it != tables_->unpublished.end() && out.size() < limit; ++it)
    out.push_back(it->second);
  return out;
}

status memory_store::mark_published(std::span<const std::int64_t> positions,
                                    instant at) {
  static_cast<void>(at); // published rows are dropped: nothing reads them back
  std::lock_guard lock{mutex_};
  for (std::int64_t p : positions)
    tables_->unpublished.erase(p);
  return {};
}

// -- gateway configs
// ------------------------------------------------------------------

status memory_store::put_gateway_config(const tenant_id& t,
                                        const gateway_config_record& c) {
  if (t.empty() || c.gateway.empty())
    return make_error(errc::invalid_argument, "empty tenant or gateway");
  std::lock_guard lock{mutex_};
  gateway_configs_.insert_or_assign(std::pair{t.value, c.gateway}, c);
  return {};
}

result<gateway_config_record>
memory_store::get_gateway_config(const tenant_id& t,
                                 const std::string& gateway) {
  std::lock_guard lock{mutex_};
  auto it = gateway_configs_.find(std::pair{t.value, gateway});
  if (it == gateway_configs_.end())
    return make_error(errc::not_found, "gateway config " + gateway);
  return it->second;
}

// -- HTTP idempotency keys, continued
// -------------------------------------------------

status memory_store::release_idempotent(const tenant_id& t,
                                        const std::string& key,
                                        const std::string& request_sha256_hex) {
  std::lock_guard lock{mutex_};
  auto rows = tables_->by_tenant.find(t.value);
  if (rows == tables_->by_tenant.end())
    return make_error(errc::not_found, "idempotency key " + key);
  auto& keys = rows->second.idempotency;
  auto it = keys.find(key);
  if (it == keys.end())
    return make_error(errc::not_found, "idempotency key " + key);
  if (it->second.record.request_sha256_hex != request_sha256_hex)
    return make_error(errc::idempotency_conflict,
                      "idempotency key " + key + " belongs to another request");
  if (it->second.completed)
    return make_error(errc::already_exists,
                      "idempotency key " + key + " holds an answer");
  keys.erase(it);
  return {};
}

} // namespace recur
