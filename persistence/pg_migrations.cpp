#include "persistence/pg_migrations.hpp"

#include <map>
#include <optional>

#include <pqxx/pqxx>

#include "persistence/pg_detail.hpp"

namespace recur {

namespace {

// pg_advisory_lock key of the runner: "recurmig" in ASCII.
constexpr std::int64_t migration_lock_key = 0x7265637572'6d6967;

// A runner that cannot get the lock within this time (another one is stuck
// holding it) fails instead of hanging the start-up.
constexpr const char* lock_timeout_sql = "SET lock_timeout = '120s'";

constexpr const char* create_table_sql
  = "CREATE TABLE IF NOT EXISTS schema_migrations ("
    " version integer PRIMARY KEY,"
    " name text NOT NULL,"
    " checksum text NOT NULL,"
    " applied_at timestamptz NOT NULL DEFAULT now())";

struct applied_migration {
  std::string name;
  std::string checksum;
};

std::string label(const pg_migration& m) {
  auto digits = std::to_string(m.version);
  if (digits.size() < 4)
    digits.insert(0, 4 - digits.size(), '0');
  return digits + "_" + std::string{m.name};
}

status check_order(std::span<const pg_migration> migrations) {
  for (std::size_t i = 0; i < migrations.size(); ++i) {
    if (migrations[i].version <= 0
        || (i > 0 && migrations[i].version <= migrations[i - 1].version))
      return make_error(errc::invalid_argument,
                        "migration versions must be positive and increasing: "
                          + label(migrations[i]));
  }
  return {};
}

std::string checksum_of(pqxx::connection& c, std::string_view sql) {
  pqxx::nontransaction tx{c};
  return tx
    .exec_params("SELECT encode(sha256(convert_to($1, 'UTF8')), 'hex')",
                 std::string{sql})[0][0]
    .as<std::string>();
}

std::map<std::int32_t, applied_migration> load_applied(pqxx::connection& c) {
  pqxx::nontransaction tx{c};
  std::map<std::int32_t, applied_migration> out;
  for (const auto& row :
       tx.exec("SELECT version, name, checksum FROM schema_migrations"))
    out[row[0].as<std::int32_t>()] = {row[1].as<std::string>(),
                                      row[2].as<std::string>()};
  return out;
}

// Every migration already applied must be byte-for-byte the one that ran.
status
verify_applied(pqxx::connection& c, std::span<const pg_migration> migrations,
               const std::map<std::int32_t, applied_migration>& applied) {
  for (const auto& m : migrations) {
    const auto it = applied.find(m.version);
    if (it == applied.end())
      continue;
    const auto sum = checksum_of(c, m.sql);
    if (sum != it->second.checksum)
      return make_error(errc::storage_error,
                        "migration " + label(m)
                          + " was changed after it was applied (recorded "
                            "checksum "
                          + it->second.checksum + ", now " + sum + ")");
  }
  return {};
}

void apply_one(pqxx::connection& c, const pg_migration& m) {
  const auto sum = checksum_of(c, m.sql);
  pqxx::work tx{c};
  tx.exec(std::string{m.sql});
  tx.exec_params("INSERT INTO schema_migrations (version, name, checksum)"
                 " VALUES ($1, $2, $3)",
                 m.version, std::string{m.name}, sum);
  tx.commit();
}

result<std::size_t> migrate_locked(pqxx::connection& c,
                                   std::span<const pg_migration> migrations) {
  pqxx::nontransaction{c}.exec(create_table_sql);
  const auto applied = load_applied(c);
  if (auto ok = verify_applied(c, migrations, applied); !ok)
    return ok.error();
  std::size_t count = 0;
  for (const auto& m : migrations) {
    if (applied.count(m.version) != 0)
      continue;
    try {
      apply_one(c, m);
    } catch (const pqxx::sql_error& e) {
      return make_error(errc::storage_error,
                        "migration " + label(m)
                          + " failed: " + pg::one_line(e.what()));
    }
    ++count;
  }
  return count;
}

} // namespace

result<std::size_t>
apply_pg_migrations(const std::string& conninfo,
                    std::span<const pg_migration> migrations) {
  if (auto ok = check_order(migrations); !ok)
    return ok.error();
  std::optional<pqxx::connection> c;
  try {
    c.emplace(conninfo);
  } catch (const std::exception& e) {
    return make_error(errc::unavailable, "cannot connect to run migrations: "
                                           + pg::one_line(e.what()));
  }
  try {
    pqxx::nontransaction{*c}.exec(lock_timeout_sql);
    pqxx::nontransaction{*c}.exec_params("SELECT pg_advisory_lock($1)",
                                         migration_lock_key);
    // The lock is the session's: closing the connection releases it on
    // every path, including the error ones.
    return migrate_locked(*c, migrations);
  } catch (const pqxx::broken_connection& e) {
    return make_error(errc::unavailable,
                      "migrations: " + pg::one_line(e.what()));
  } catch (const std::exception& e) {
    return make_error(errc::storage_error,
                      "migrations: " + pg::one_line(e.what()));
  }
}

} // namespace recur
