#include "tests/persistence/pg_testdb.hpp"

#include <unistd.h>

#include <atomic>
#include <cstdint>
#include <cstdio>
#include <cstdlib>

#include <gtest/gtest.h>
#include <pqxx/pqxx>

#include "persistence/pg_migrations.hpp"

namespace recur::pgtest {

namespace {

// Serialises template creation between the test processes that ctest runs
// side by side ("recurtpl" in ASCII).
constexpr std::int64_t template_lock_key = 0x7265637572'74706c;

// FNV-1a over every embedded migration: a changed migration gets a new
// template instead of a stale one.
std::string template_name() {
  std::uint64_t h = 14695981039346656037ULL;
  auto mix = [&](std::string_view s) {
    for (const unsigned char c : s) {
      h ^= c;
      h *= 1099511628211ULL;
    }
  };
  for (const auto& m : pg_embedded_migrations()) {
    mix(std::to_string(m.version));
    mix(m.name);
    mix(m.sql);
  }
  char hex[17];
  std::snprintf(hex, sizeof hex, "%016llx", static_cast<unsigned long long>(h));
  return std::string{"recur_tmpl_"} + hex;
}

bool database_exists(pqxx::connection& admin, const std::string& name) {
  pqxx::nontransaction tx{admin};
  return !tx.exec_params("SELECT 1 FROM pg_database WHERE datname = $1", name)
            .empty();
}

// Builds the template under another name and renames it when complete, so
// that a crash mid-way never leaves a half-migrated template behind.
void ensure_template(pqxx::connection& admin, const std::string& name) {
  pqxx::nontransaction{admin}.exec_params("SELECT pg_advisory_lock($1)",
                                          template_lock_key);
  try {
    if (!database_exists(admin, name)) {
      const auto building = name + "_building";
      const auto q = admin.quote_name(building);
      pqxx::nontransaction{admin}.exec("DROP DATABASE IF EXISTS " + q
                                       + " WITH (FORCE)");
      pqxx::nontransaction{admin}.exec("CREATE DATABASE " + q);
      auto migrated = apply_pg_migrations(conninfo_for(building),
                                          pg_embedded_migrations());
      if (!migrated)
        throw std::runtime_error("migrating the template: "
                                 + migrated.error().detail);
      pqxx::nontransaction{admin}.exec("ALTER DATABASE " + q + " RENAME TO "
                                       + admin.quote_name(name));
    }
  } catch (...) {
    pqxx::nontransaction{admin}.exec_params("SELECT pg_advisory_unlock($1)",
                                            template_lock_key);
    throw;
  }
  pqxx::nontransaction{admin}.exec_params("SELECT pg_advisory_unlock($1)",
                                          template_lock_key);
}

std::string next_name() {
  static std::atomic<int> counter{0};
  return "recur_t_" + std::to_string(getpid()) + "_"
         + std::to_string(counter++);
}

// Pooled databases: slot i is held through pg_try_advisory_lock(base + i) by
// an admin session that lives as long as the scratch_db.
constexpr std::int64_t pool_lock_base = 0x7265637572'700000;
constexpr int pool_slots = 8;

// Every row of every table goes; triggers and foreign keys are off while it
// does (replica role), so the order of tables does not matter.
constexpr const char* empty_sql = R"(
SET session_replication_role = replica;
DO $$
DECLARE t text;
BEGIN
  FOR t IN SELECT tablename FROM pg_tables
           WHERE schemaname = 'public' AND tablename <> 'schema_migrations'
  LOOP
    EXECUTE format('DELETE FROM %I', t);
  END LOOP;
END
$$;
SET session_replication_role = origin;)";

void empty_database(const std::string& name) {
  pqxx::connection c{conninfo_for(name)};
  pqxx::nontransaction{c}.exec(empty_sql);
}

void clone(pqxx::connection& admin, const std::string& name,
           const std::string& tmpl) {
  pqxx::nontransaction{admin}.exec("CREATE DATABASE " + admin.quote_name(name)
                                   + " TEMPLATE " + admin.quote_name(tmpl));
}

} // namespace

std::string admin_conninfo() {
  const char* value = std::getenv("RECUR_TEST_DB");
  return value == nullptr ? std::string{} : std::string{value};
}

std::string missing_db_message() {
  return "RECUR_TEST_DB is not set. The pg tests need the PostgreSQL cluster "
         "that scripts/test.sh starts: run `bash scripts/test.sh` (or `bash "
         "scripts/test.sh -R pg_store` for just these).";
}

std::string conninfo_for(const std::string& name) {
  return admin_conninfo() + " dbname=" + name;
}

struct scratch_db::holder {
  explicit holder(const std::string& conninfo) : admin(conninfo) {}
  pqxx::connection admin;
};

scratch_db::scratch_db(std::string name, bool drop, std::unique_ptr<holder> h)
  : name_(std::move(name)), drop_(drop), holder_(std::move(h)) {}

namespace {

// A free pooled slot's database (created on first use, emptied otherwise),
// or nullptr when every slot is taken.
std::unique_ptr<scratch_db::holder> take_slot(const std::string& tmpl,
                                              std::string& name) {
  auto h = std::make_unique<scratch_db::holder>(admin_conninfo());
  for (int i = 0; i < pool_slots; ++i) {
    const bool got = pqxx::nontransaction{h->admin}
                       .exec_params("SELECT pg_try_advisory_lock($1)",
                                    pool_lock_base + i)[0][0]
                       .as<bool>();
    if (!got)
      continue;
    name = tmpl + "_p" + std::to_string(i);
    if (database_exists(h->admin, name))
      empty_database(name);
    else
      clone(h->admin, name, tmpl);
    return h;
  }
  return nullptr;
}

} // namespace

std::unique_ptr<scratch_db> scratch_db::create(db_kind kind) {
  if (admin_conninfo().empty()) {
    ADD_FAILURE() << missing_db_message();
    return nullptr;
  }
  std::string name = next_name();
  try {
    pqxx::connection admin{admin_conninfo()};
    if (kind == db_kind::empty) {
      pqxx::nontransaction{admin}.exec("CREATE DATABASE "
                                       + admin.quote_name(name));
      return std::unique_ptr<scratch_db>{new scratch_db(name, true, nullptr)};
    }
    const auto tmpl = template_name();
    ensure_template(admin, tmpl);
    if (kind == db_kind::pooled) {
      std::string pooled;
      if (auto h = take_slot(tmpl, pooled))
        return std::unique_ptr<scratch_db>{
          new scratch_db(pooled, false, std::move(h))};
    }
    clone(admin, name, tmpl); // fresh, or every pooled slot is busy
    return std::unique_ptr<scratch_db>{new scratch_db(name, true, nullptr)};
  } catch (const std::exception& e) {
    ADD_FAILURE() << "cannot make scratch database " << name << ": "
                  << e.what();
    return nullptr;
  }
}

scratch_db::~scratch_db() {
  if (!drop_)
    return; // the holder's session ends and frees the slot
  try {
    pqxx::connection admin{admin_conninfo()};
    pqxx::nontransaction{admin}.exec(
      "DROP DATABASE IF EXISTS " + admin.quote_name(name_) + " WITH (FORCE)");
  } catch (const std::exception& e) {
    ADD_FAILURE() << "cannot drop scratch database " << name_ << ": "
                  << e.what();
  }
}

pg_store_config scratch_db::config() const {
  pg_store_config c;
  c.conninfo = conninfo();
  c.pool_size = 2;
  c.retry_backoff_min = std::chrono::milliseconds{1};
  c.retry_backoff_max = std::chrono::milliseconds{20};
  return c;
}

} // namespace recur::pgtest
