// The timer service and the store writer over PostgreSQL: timers claimed with
// leases by the real store (FOR UPDATE SKIP LOCKED), and group commit of
// concurrent units through the actor. Each test gets a database of its own
// (tests/persistence/pg_testdb.hpp).

#include "actors/store_writer_impl.hpp"
#include "actors/timer_service_impl.hpp"
#include "domain/clock.hpp"
#include "persistence/pg_store.hpp"
#include "tests/persistence/pg_testdb.hpp"

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include <caf/all.hpp>
#include <caf/scheduler/test_coordinator.hpp>
#include <gtest/gtest.h>

namespace {

using namespace recur;
using namespace std::chrono_literals;

const tenant_id tenant_a{"ten_a"};
const tenant_id tenant_b{"ten_b"};
const instant t0 = utc(2024, 3, 1);
constexpr auto reply_timeout = 20s;

/// A migrated, empty database with tenants a and b, and a store over it.
struct pg_fixture {
  std::unique_ptr<pgtest::scratch_db> db;
  std::unique_ptr<store> st;

  bool open() {
    db = pgtest::scratch_db::create();
    if (!db)
      return false;
    auto opened = open_pg_store(db->config());
    if (!opened) {
      ADD_FAILURE() << "open_pg_store: " << opened.error().detail;
      return false;
    }
    st = std::move(*opened);
    for (const auto* t : {&tenant_a, &tenant_b}) {
      const tenant_record rec{*t, t->value, std::string(64, t->value.back()),
                              false, t0};
      if (auto made = st->create_tenant(rec); !made) {
        ADD_FAILURE() << "create_tenant: " << made.error().detail;
        return false;
      }
    }
    return true;
  }

  ~pg_fixture() { st.reset(); } // close connections before the db goes
};

unit_of_work append(const std::string& sub, std::int64_t expected_version) {
  unit_of_work w;
  w.tenant = tenant_a;
  w.events.push_back(event_append{
    subscription_id{sub}, expected_version, {new_event{"created", "{}", t0}}});
  return w;
}

timer_record make_timer(std::string id, std::string owner, instant due_at) {
  std::string payload = R"({"subscription":")" + owner + R"("})";
  return timer_record{std::move(id), std::move(owner), "retry", due_at,
                      std::move(payload)};
}

// -- the timer service, on the deterministic test coordinator -----------------

struct delivery_log {
  std::vector<claimed_timer> delivered;
  std::set<std::string> complete;
  std::vector<commit_reply> completions;
};

caf::behavior recording_target(caf::event_based_actor* self, delivery_log* log,
                               caf::actor writer) {
  return {
    [=](timer_due_atom, const claimed_timer& t) {
      log->delivered.push_back(t);
      if (!log->complete.contains(t.timer.id))
        return;
      unit_of_work work;
      work.tenant = t.tenant;
      work.timers_to_complete.push_back(t.timer.id);
      self->request(writer, caf::infinite, commit_atom::value, std::move(work))
        .then([=](const commit_reply& r) { log->completions.push_back(r); },
              [=](caf::error&) { log->completions.push_back({}); });
    },
  };
}

class pg_timer_service_test : public ::testing::Test {
protected:
  static caf::actor_system_config& configure(caf::actor_system_config& c) {
    c.set("scheduler.policy", caf::atom("testing"));
    c.set("logger.file-verbosity", caf::atom("quiet"));
    return c;
  }

  pg_timer_service_test()
    : sys{configure(cfg)},
      sched{dynamic_cast<caf::scheduler::test_coordinator&>(sys.scheduler())},
      self{sys, true} {}

  void SetUp() override {
    ASSERT_TRUE(pg.open());
    store_writer_config wc;
    wc.mode = store_writer_mode::inline_commit;
    writer = spawn_store_writer(sys, *pg.st, wc);
    target = sys.spawn(recording_target, &log, writer);
    timer_service_config c;
    c.poll_interval_ms = 0;
    c.claimer = "pgtest";
    service = spawn_timer_service(sys, *pg.st, clk, target, c);
    run();
  }

  void TearDown() override {
    for (auto* hdl : {&service, &target, &writer})
      if (*hdl)
        caf::anon_send_exit(*hdl, caf::exit_reason::user_shutdown);
    run();
  }

  void run() {
    while (sched.try_run_once()) {
    }
  }

  void schedule(const tenant_id& t, std::vector<timer_record> timers) {
    unit_of_work w;
    w.tenant = t;
    w.timers_to_schedule = std::move(timers);
    auto done = pg.st->commit(w);
    ASSERT_TRUE(done.has_value()) << done.error().detail;
  }

  std::optional<std::uint64_t> tick() {
    auto h = self->request(service, caf::infinite, tick_atom::value);
    run();
    if (!self->has_next_message()) {
      ADD_FAILURE() << "the tick was not answered";
      return std::nullopt;
    }
    std::optional<std::uint64_t> out;
    h.receive([&](std::uint64_t n) { out = n; },
              [&](caf::error& e) { ADD_FAILURE() << sys.render(e); });
    return out;
  }

  std::vector<std::string> delivered_ids() const {
    std::vector<std::string> out;
    for (const auto& t : log.delivered)
      out.push_back(t.timer.id);
    return out;
  }

  pg_fixture pg; // outlives the actor system, whose actors use its store
  caf::actor_system_config cfg;
  caf::actor_system sys;
  caf::scheduler::test_coordinator& sched;
  caf::scoped_actor self;
  manual_clock clk{t0};
  delivery_log log;
  caf::actor writer;
  caf::actor target;
  caf::actor service;
};

TEST_F(pg_timer_service_test,
       due_timers_come_in_order_and_an_uncompleted_one_returns_after_lease) {
  const auto t1 = make_timer("t1", "sub_1", t0.plus_seconds(60));
  const auto t2 = make_timer("t2", "sub_2", t0.plus_seconds(120));
  const auto t3 = make_timer("t3", "sub_3", t0.plus_seconds(3600));
  schedule(tenant_a, {t3, t2, t1});
  log.complete = {"t1"};

  clk.set(t1.due_at.plus_seconds(-1));
  EXPECT_EQ(tick(), 0u);
  clk.set(t2.due_at.plus_seconds(30));
  EXPECT_EQ(tick(), 2u);
  ASSERT_EQ(delivered_ids(), (std::vector<std::string>{"t1", "t2"}));
  EXPECT_EQ(log.delivered[0].tenant, tenant_a);
  EXPECT_EQ(log.delivered[0].timer.payload_json, t1.payload_json);
  ASSERT_EQ(log.completions.size(), 1u);
  EXPECT_TRUE(log.completions[0].ok());

  EXPECT_EQ(tick(), 0u); // t2 is leased
  clk.advance_seconds(30);
  EXPECT_EQ(tick(), 1u);
  EXPECT_EQ(delivered_ids(), (std::vector<std::string>{"t1", "t2", "t2"}));
}

TEST_F(pg_timer_service_test,
       one_tick_drains_2500_timers_of_two_tenants_exactly_once) {
  std::vector<timer_record> a;
  std::vector<timer_record> b;
  for (int i = 0; i < 2500; ++i)
    (i % 2 == 0 ? a : b)
      .push_back(make_timer("t" + std::to_string(i), "sub_" + std::to_string(i),
                            t0.plus_seconds(i)));
  schedule(tenant_a, std::move(a));
  schedule(tenant_b, std::move(b));
  clk.set(t0.plus_seconds(2500));

  EXPECT_EQ(tick(), 2500u);
  ASSERT_EQ(log.delivered.size(), 2500u);
  std::set<std::string> seen;
  for (std::size_t i = 0; i < log.delivered.size(); ++i) {
    EXPECT_TRUE(seen.insert(log.delivered[i].timer.id).second);
    EXPECT_EQ(log.delivered[i].timer.id, "t" + std::to_string(i));
  }
  EXPECT_EQ(tick(), 0u);
}

// -- the store writer in group-commit mode, on a threaded system --------------

TEST(
  pg_store_writer,
  two_hundred_concurrent_commits_are_all_answered_and_a_conflict_fails_alone) {
  pg_fixture pg;
  ASSERT_TRUE(pg.open());
  caf::actor_system_config cfg;
  cfg.set("scheduler.max-threads", std::size_t{2});
  cfg.set("logger.file-verbosity", caf::atom("quiet"));
  caf::actor_system sys{cfg};
  store_writer_config wc;
  wc.mode = store_writer_mode::group_commit;
  auto writer = spawn_store_writer(sys, *pg.st, wc);

  caf::scoped_actor self{sys};
  using handle = decltype(self->request(writer, reply_timeout,
                                        commit_atom::value, unit_of_work{}));
  std::vector<handle> pending;
  for (int i = 0; i < 200; ++i)
    pending.push_back(self->request(writer, reply_timeout, commit_atom::value,
                                    append("sub_" + std::to_string(i), 0)));
  pending.push_back(self->request(writer, reply_timeout, commit_atom::value,
                                  append("sub_0", 0))); // stale
  std::vector<commit_reply> replies;
  for (auto& h : pending)
    h.receive([&](commit_reply& r) { replies.push_back(std::move(r)); },
              [&](caf::error& e) { ADD_FAILURE() << sys.render(e); });
  ASSERT_EQ(replies.size(), 201u);
  for (int i = 0; i < 200; ++i)
    EXPECT_TRUE(replies[i].ok())
      << i << ": " << (replies[i].error ? replies[i].error->detail : "");
  ASSERT_FALSE(replies.back().ok());
  EXPECT_EQ(replies.back().error->code, errc::version_conflict);
  for (int i = 0; i < 200; ++i) {
    auto events = pg.st->load_events(
      tenant_a, subscription_id{"sub_" + std::to_string(i)}, 1);
    ASSERT_TRUE(events.has_value());
    EXPECT_EQ(events->size(), 1u);
  }
  writer = nullptr;
}

} // namespace
