#pragma once
/// Scratch PostgreSQL databases for the pg tests: each test gets one of its
/// own, migrated and empty, without paying for a CREATE DATABASE each time.

#include <memory>
#include <string>

#include "persistence/pg_store.hpp"

namespace recur::pgtest {

/// RECUR_TEST_DB (a superuser's conninfo, set by scripts/test.sh), or empty.
std::string admin_conninfo();

/// The message a pg test fails with when RECUR_TEST_DB is not set.
std::string missing_db_message();

/// `admin_conninfo()` pointed at database `name` (libpq takes the last
/// dbname=).
std::string conninfo_for(const std::string& name);

enum class db_kind {
  /// Migrated and emptied: one of a few pooled databases, held by this
  /// process until destruction (a session advisory lock) and emptied when
  /// taken. For tests that change rows only.
  pooled,
  /// A fresh clone of the migrated template, dropped on destruction: for
  /// tests that change the schema (fault-injection triggers, say).
  fresh,
  /// A fresh database with no migrations applied, dropped on destruction.
  empty,
};

/// A database of its own for one test.
class scratch_db {
public:
  /// Null, after ADD_FAILURE with the reason, when it cannot be made.
  static std::unique_ptr<scratch_db> create(db_kind kind = db_kind::pooled);

  ~scratch_db();
  scratch_db(const scratch_db&) = delete;
  scratch_db& operator=(const scratch_db&) = delete;

  const std::string& name() const noexcept { return name_; }
  /// The superuser's conninfo for this database (the migration user).
  std::string conninfo() const { return conninfo_for(name_); }
  /// A store config for this database with small, fast retry settings.
  pg_store_config config() const;

  struct holder; // the admin session that holds a pooled slot

private:
  scratch_db(std::string name, bool drop, std::unique_ptr<holder> h);

  std::string name_;
  bool drop_;
  std::unique_ptr<holder> holder_;
};

} // namespace recur::pgtest
