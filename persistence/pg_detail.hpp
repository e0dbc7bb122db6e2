#pragma once
/// Internals of the PostgreSQL store shared by its .cpp files only: the
/// connection pool with retries, SQLSTATE-to-errc mapping, prepared statements
/// and array literals. Includes libpqxx, so nothing outside persistence/pg_*
/// includes it.

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <exception>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <unordered_set>
#include <utility>
#include <vector>

#include <pqxx/pqxx>

#include "domain/error.hpp"
#include "domain/time.hpp"

namespace recur::pg {

// -- statements ---------------------------------------------------------------

/// A named SQL statement, prepared on a connection the first time it is used.
struct statement {
  std::string name;
  std::string sql;
};

/// A libpqxx connection plus the names of the statements prepared on it.
struct connection {
  explicit connection(const std::string& conninfo) : conn(conninfo) {}

  pqxx::connection conn;
  std::unordered_set<std::string> prepared;
};

/// Runs `s` in `tx` with positional parameters, preparing it first if needed.
template <class... Args>
pqxx::result exec(connection& c, pqxx::transaction_base& tx, const statement& s,
                  Args&&... args) {
  if (c.prepared.insert(s.name).second)
    c.conn.prepare(s.name, s.sql);
  return tx.exec_prepared(s.name, std::forward<Args>(args)...);
}

/// Scopes the rest of the transaction to `tenant`: row-level security then
/// shows and accepts only that tenant's rows until commit.
void set_tenant(connection& c, pqxx::transaction_base& tx,
                std::string_view tenant);

/// A transaction scoped to a tenant from its first round trip: BEGIN and
/// set_config travel together (libpqxx's own transactions send BEGIN alone),
/// so a one-statement unit costs three round trips, not four. Rolls back on
/// destruction unless committed.
class tenant_transaction {
public:
  tenant_transaction(connection& c, std::string_view tenant);
  ~tenant_transaction();
  tenant_transaction(const tenant_transaction&) = delete;
  tenant_transaction& operator=(const tenant_transaction&) = delete;

  pqxx::transaction_base& tx() noexcept { return nt_; }

  /// Moves the transaction on to another tenant (group commit).
  void switch_to(std::string_view tenant);

  /// Throws pqxx::in_doubt_error when the connection breaks during COMMIT:
  /// the outcome is then unknown and must not be retried blindly.
  void commit();

private:
  connection& c_;
  pqxx::nontransaction nt_;
  bool open_ = true;
};

// -- array literals -----------------------------------------------------------

/// Builds a PostgreSQL array literal ("{…}") for one unnest($n::T[]) column,
/// so that a whole batch travels in one parameter per column.
class array_builder {
public:
  explicit array_builder(std::size_t reserve_bytes = 64);

  array_builder& add(std::string_view text);
  array_builder& add(std::int64_t n);
  array_builder& add(instant t) { return add(t.unix_s); }

  /// The literal; the builder may not be used afterwards.
  std::string take();

private:
  void separate();

  std::string out_;
  bool first_ = true;
};

// -- errors -------------------------------------------------------------------

/// What a failing statement means for the operation in progress: the error a
/// unique or foreign-key violation maps to depends on the statement (a
/// duplicate event seq is a version conflict, a duplicate invoice is not).
struct op_context {
  errc on_unique = errc::already_exists;
  errc on_foreign_key = errc::version_conflict;
  const char* what = "statement";

  void expect(errc unique, const char* description,
              errc foreign_key = errc::version_conflict) {
    on_unique = unique;
    on_foreign_key = foreign_key;
    what = description;
  }
};

/// Thrown inside an operation for a failure detected in C++ (a stale version
/// in an update, say); rolls the transaction back and becomes its result.
struct typed_failure : std::exception {
  explicit typed_failure(error e) : err(std::move(e)) {}
  const char* what() const noexcept override { return err.detail.c_str(); }
  error err;
};

enum class fault_kind : std::uint8_t {
  retry,     // the transaction was rolled back: run it again
  reconnect, // the connection is gone: drop it, dial again, run again
  fatal,     // not retryable: `err` is the operation's result
};

struct fault {
  fault_kind kind = fault_kind::fatal;
  error err;
};

/// Maps an exception thrown by an operation to what the caller does next.
fault classify(const std::exception& e, const op_context& ctx,
               bool connection_open);

/// The message of a server error on one line, for error details.
std::string one_line(std::string_view text);

// -- pool ---------------------------------------------------------------------

struct retry_policy {
  std::int32_t max_retries = 5;
  std::chrono::milliseconds backoff_min{5};
  std::chrono::milliseconds backoff_max{200};

  std::chrono::milliseconds backoff(std::int32_t attempt) const;
};

/// A fixed number of connection slots guarded by a mutex; a slot dials on
/// first use and again after its connection broke.
class pool {
public:
  pool(std::string conninfo, std::size_t size,
       std::chrono::milliseconds borrow_timeout);
  ~pool();

  pool(const pool&) = delete;
  pool& operator=(const pool&) = delete;

  /// A borrowed slot, returned on destruction.
  class lease {
  public:
    lease(pool& owner, std::unique_ptr<connection> c)
      : owner_(&owner), conn_(std::move(c)) {}
    lease(lease&& other) noexcept
      : owner_(std::exchange(other.owner_, nullptr)),
        conn_(std::move(other.conn_)) {}
    lease& operator=(lease&&) = delete;
    lease(const lease&) = delete;
    lease& operator=(const lease&) = delete;
    ~lease();

    /// The connection, dialled now if the slot has none (throws
    /// pqxx::broken_connection when that fails).
    connection& get();
    bool is_open() const;
    /// Drops the connection: the slot dials again on its next use.
    void discard() { conn_.reset(); }

  private:
    pool* owner_;
    std::unique_ptr<connection> conn_;
  };

  /// Waits up to the borrow timeout for a free slot; `unavailable` if none.
  result<lease> borrow();

  const std::string& conninfo() const noexcept { return conninfo_; }

private:
  void give_back(std::unique_ptr<connection> c);

  std::string conninfo_;
  std::chrono::milliseconds borrow_timeout_;
  std::mutex mutex_;
  std::condition_variable freed_;
  std::vector<std::unique_ptr<connection>> idle_; // null: not dialled
};

/// Runs `body(connection&, op_context&) -> result<T>` on a pooled connection,
/// mapping exceptions to typed errors and running the body again (with a
/// fresh transaction) on retryable faults, at most policy.max_retries times.
/// The body must be idempotent up to its commit: it is, since a retried
/// transaction never committed (an unknown commit outcome is not retried).
template <class T, class Body>
result<T> run(pool& p, const retry_policy& policy, Body&& body) {
  fault last;
  for (std::int32_t attempt = 0;; ++attempt) {
    auto borrowed = p.borrow();
    if (!borrowed)
      return borrowed.error();
    auto& slot = *borrowed;
    op_context ctx;
    try {
      return body(slot.get(), ctx);
    } catch (const std::exception& e) {
      last = classify(e, ctx, slot.is_open());
    }
    if (last.kind == fault_kind::fatal)
      return last.err;
    if (last.kind == fault_kind::reconnect)
      slot.discard();
    if (attempt >= policy.max_retries)
      return make_error(errc::unavailable, "gave up after "
                                             + std::to_string(attempt + 1)
                                             + " attempts: " + last.err.detail);
    std::this_thread::sleep_for(policy.backoff(attempt));
  }
}

// -- time ---------------------------------------------------------------------

/// Instants travel as unix seconds: to_timestamp($n) in, and
/// extract(epoch FROM col)::bigint out.
inline instant as_instant(const pqxx::field& f) {
  return instant{f.as<std::int64_t>()};
}

} // namespace recur::pg
