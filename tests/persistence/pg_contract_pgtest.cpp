// The store contract suite against PostgreSQL: every test gets a database of
// its own, cloned from a migrated template, so that the cross-tenant calls
// see that test's rows only.

#include <memory>

#include <gtest/gtest.h>

#include "persistence/pg_store.hpp"
#include "tests/persistence/pg_testdb.hpp"
#include "tests/persistence/store_contract.hpp"

namespace {

using namespace recur;

struct pg_harness final : store_harness {
  std::unique_ptr<pgtest::scratch_db> db;
  std::unique_ptr<store> s;

  ~pg_harness() override { s.reset(); } // close connections, then drop
  store& get() override { return *s; }
};

std::unique_ptr<store_harness> make_pg_harness() {
  auto h = std::make_unique<pg_harness>();
  h->db = pgtest::scratch_db::create();
  if (!h->db)
    return nullptr;
  auto opened = open_pg_store(h->db->config());
  if (!opened) {
    ADD_FAILURE() << "open_pg_store: " << opened.error().detail;
    return nullptr;
  }
  h->s = std::move(*opened);
  return h;
}

INSTANTIATE_TEST_SUITE_P(postgresql, store_contract,
                         ::testing::Values(harness_factory{make_pg_harness}));

} // namespace
