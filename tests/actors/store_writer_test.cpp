// The store writer actor: inline mode on CAF's deterministic test coordinator,
// group-commit mode on a real (threaded) actor system, both over the
// in-memory store. Every wait on another thread is bounded.

#include "actors/store_writer_impl.hpp"
#include "forwarding_store.hpp"
#include "persistence/memory_store.hpp"

#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <mutex>
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

const tenant_id tenant_a{"tenant_a"};
const instant t0 = utc(2024, 3, 1);
constexpr auto reply_timeout = 10s; // bounded waits on the threaded system

/// A unit of work that appends one event to `sub` at expected_version.
unit_of_work append(const std::string& sub, std::int64_t expected_version) {
  unit_of_work w;
  w.tenant = tenant_a;
  w.events.push_back(event_append{
    subscription_id{sub}, expected_version, {new_event{"created", "{}", t0}}});
  return w;
}

std::int64_t events_of(store& st, const std::string& sub) {
  auto events = st.load_events(tenant_a, subscription_id{sub}, 1);
  EXPECT_TRUE(events.has_value());
  return events ? static_cast<std::int64_t>(events->size()) : -1;
}

// -- a store whose commits can be held ----------------------------------------
// Forwards everything to a memory_store; while the gate is closed, commits
// block after entering, so a test can hold units in flight.
class gated_store final : public recur::testing::forwarding_store {
public:

  void close_gate() {
    std::lock_guard lock{mutex_};
    open_ = false;
  }
  void open_gate() {
    {
      std::lock_guard lock{mutex_};
      open_ = true;
    }
    changed_.notify_all();
  }
  bool wait_until_entered(std::size_t calls) {
    std::unique_lock lock{mutex_};
    return changed_.wait_for(lock, reply_timeout,
                             [&] { return entered_ >= calls; });
  }

  result<commit_receipt> commit(const unit_of_work& w) override {
    pass_gate();
    return inner.commit(w);
  }
  std::vector<result<commit_receipt>>
  commit_many(std::span<const unit_of_work> ws) override {
    pass_gate();
    return inner.commit_many(ws);
  }

private:
  void pass_gate() {
    std::unique_lock lock{mutex_};
    ++entered_;
    changed_.notify_all();
    changed_.wait(lock, [this] { return open_; });
  }

  std::mutex mutex_;
  std::condition_variable changed_;
  bool open_ = true;
  std::size_t entered_ = 0;
};

// -- commit_reply -------------------------------------------------------------

TEST(commit_reply, carries_a_receipt_or_an_error_and_converts_back) {
  const commit_reply ok = commit_reply::from(commit_receipt{{3, 7}});
  ASSERT_TRUE(ok.ok());
  EXPECT_FALSE(ok.error.has_value());
  auto r = ok.to_result();
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r->event_versions, (std::vector<std::int64_t>{3, 7}));

  const commit_reply bad
    = commit_reply::from(make_error(errc::version_conflict, "stale"));
  EXPECT_FALSE(bad.ok());
  ASSERT_TRUE(bad.error.has_value());
  auto e = bad.to_result();
  ASSERT_FALSE(e.has_value());
  EXPECT_EQ(e.code(), errc::version_conflict);
  EXPECT_EQ(e.error().detail, "stale");
}

// -- inline mode on the deterministic test coordinator ------------------------

class inline_writer_test : public ::testing::Test {
protected:
  static caf::actor_system_config& configure(caf::actor_system_config& c) {
    c.set("scheduler.policy", caf::atom("testing"));
    c.set("logger.file-verbosity", caf::atom("quiet"));
    return c;
  }

  inline_writer_test()
    : sys{configure(cfg)},
      sched{dynamic_cast<caf::scheduler::test_coordinator&>(sys.scheduler())},
      self{sys, true} {
    store_writer_config c;
    c.mode = store_writer_mode::inline_commit;
    c.many_units_max = 4;
    writer = spawn_store_writer(sys, st, c);
  }

  ~inline_writer_test() override {
    caf::anon_send_exit(writer, caf::exit_reason::user_shutdown);
    run();
  }

  void run() {
    while (sched.try_run_once()) {
    }
  }

  /// Sends one request, runs everything, returns the reply of type T.
  template <class T, class... Ts>
  std::optional<T> ask(Ts&&... xs) {
    auto h = self->request(writer, caf::infinite, std::forward<Ts>(xs)...);
    run();
    if (!self->has_next_message()) {
      ADD_FAILURE() << "no reply";
      return std::nullopt;
    }
    std::optional<T> out;
    h.receive([&](T& x) { out = std::move(x); },
              [&](caf::error& e) { ADD_FAILURE() << sys.render(e); });
    return out;
  }

  memory_store st;
  caf::actor_system_config cfg;
  caf::actor_system sys;
  caf::scheduler::test_coordinator& sched;
  caf::scoped_actor self;
  caf::actor writer;
};

TEST_F(inline_writer_test, a_commit_is_stored_and_answered_with_its_receipt) {
  auto reply = ask<commit_reply>(commit_atom::value, append("sub_1", 0));
  ASSERT_TRUE(reply.has_value());
  ASSERT_TRUE(reply->ok());
  EXPECT_EQ(reply->receipt->event_versions, (std::vector<std::int64_t>{1}));
  EXPECT_EQ(events_of(st, "sub_1"), 1);

  auto stats = ask<store_writer_stats>(stats_atom::value);
  ASSERT_TRUE(stats.has_value());
  EXPECT_EQ(stats->committed, 1u);
  EXPECT_EQ(stats->failed, 0u);
  EXPECT_EQ(stats->in_flight, 0u);
}

TEST_F(inline_writer_test, a_version_conflict_fails_alone) {
  // Three requests queued before the writer runs any of them.
  auto a = self->request(writer, caf::infinite, commit_atom::value,
                         append("sub_1", 0));
  auto b = self->request(writer, caf::infinite, commit_atom::value,
                         append("sub_1", 0)); // stale: a wrote version 1
  auto c = self->request(writer, caf::infinite, commit_atom::value,
                         append("sub_2", 0));
  run();
  std::vector<commit_reply> replies;
  for (auto* h : {&a, &b, &c}) {
    ASSERT_TRUE(self->has_next_message());
    h->receive([&](commit_reply& r) { replies.push_back(std::move(r)); },
               [&](caf::error& e) { ADD_FAILURE() << sys.render(e); });
  }
  ASSERT_EQ(replies.size(), 3u);
  EXPECT_TRUE(replies[0].ok());
  ASSERT_FALSE(replies[1].ok());
  EXPECT_EQ(replies[1].error->code, errc::version_conflict);
  EXPECT_TRUE(replies[2].ok());
  EXPECT_EQ(events_of(st, "sub_1"), 1);
  EXPECT_EQ(events_of(st, "sub_2"), 1);

  auto stats = ask<store_writer_stats>(stats_atom::value);
  ASSERT_TRUE(stats.has_value());
  EXPECT_EQ(stats->committed, 2u);
  EXPECT_EQ(stats->failed, 1u);
}

TEST_F(inline_writer_test, commit_many_answers_every_unit_in_order) {
  std::vector<unit_of_work> works{append("sub_1", 0), append("sub_1", 0),
                                  append("sub_1", 1)};
  auto replies = ask<std::vector<commit_reply>>(commit_many_atom::value,
                                                std::move(works));
  ASSERT_TRUE(replies.has_value());
  ASSERT_EQ(replies->size(), 3u);
  ASSERT_TRUE((*replies)[0].ok());
  EXPECT_EQ((*replies)[0].receipt->event_versions,
            (std::vector<std::int64_t>{1}));
  ASSERT_FALSE((*replies)[1].ok());
  EXPECT_EQ((*replies)[1].error->code, errc::version_conflict);
  ASSERT_TRUE((*replies)[2].ok());
  EXPECT_EQ((*replies)[2].receipt->event_versions,
            (std::vector<std::int64_t>{2}));
  EXPECT_EQ(events_of(st, "sub_1"), 2);
}

TEST_F(inline_writer_test, commit_many_beyond_its_limit_writes_nothing) {
  std::vector<unit_of_work> works;
  for (int i = 0; i < 5; ++i) // the fixture's limit is 4
    works.push_back(append("sub_" + std::to_string(i), 0));
  auto replies = ask<std::vector<commit_reply>>(commit_many_atom::value,
                                                std::move(works));
  ASSERT_TRUE(replies.has_value());
  ASSERT_EQ(replies->size(), 5u);
  for (const auto& r : *replies) {
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.error->code, errc::invalid_argument);
  }
  for (int i = 0; i < 5; ++i)
    EXPECT_EQ(events_of(st, "sub_" + std::to_string(i)), 0);
}

// -- group-commit mode on a threaded actor system -----------------------------

class group_writer_test : public ::testing::Test {
protected:
  static caf::actor_system_config& configure(caf::actor_system_config& c) {
    c.set("scheduler.max-threads", std::size_t{2});
    c.set("logger.file-verbosity", caf::atom("quiet"));
    return c;
  }

  group_writer_test() : sys{configure(cfg)} {}

  caf::actor spawn_writer(store& target, std::size_t queue_limit = 16'384) {
    store_writer_config c;
    c.mode = store_writer_mode::group_commit;
    c.group.queue_limit_units = queue_limit;
    return spawn_store_writer(sys, target, c);
  }

  /// The writer's counters, asked from a scoped actor (bounded wait).
  store_writer_stats stats_of(const caf::actor& writer) {
    caf::scoped_actor self{sys};
    store_writer_stats out;
    self->request(writer, reply_timeout, stats_atom::value)
      .receive([&](store_writer_stats& s) { out = s; },
               [&](caf::error& e) { ADD_FAILURE() << sys.render(e); });
    return out;
  }

  // Stores first: they must outlive the actors, which the system's
  // destructor waits for.
  memory_store st;
  gated_store gated;
  caf::actor_system_config cfg;
  caf::actor_system sys;
};

TEST_F(group_writer_test,
       two_hundred_concurrent_requests_are_all_answered_and_stored) {
  auto writer = spawn_writer(st);
  caf::scoped_actor self{sys};
  using handle = decltype(self->request(writer, reply_timeout,
                                        commit_atom::value, unit_of_work{}));
  std::vector<handle> pending;
  for (int i = 0; i < 200; ++i)
    pending.push_back(self->request(writer, reply_timeout, commit_atom::value,
                                    append("sub_" + std::to_string(i), 0)));
  int ok = 0;
  for (auto& h : pending)
    h.receive(
      [&](commit_reply& r) {
        EXPECT_TRUE(r.ok());
        if (r.ok() && r.receipt->event_versions == std::vector<std::int64_t>{1})
          ++ok;
      },
      [&](caf::error& e) { ADD_FAILURE() << sys.render(e); });
  EXPECT_EQ(ok, 200);
  for (int i = 0; i < 200; ++i)
    EXPECT_EQ(events_of(st, "sub_" + std::to_string(i)), 1);
  const auto s = stats_of(writer);
  EXPECT_EQ(s.committed, 200u);
  EXPECT_EQ(s.failed, 0u);
  EXPECT_EQ(s.in_flight, 0u);
}

// A client actor that sends all its units at once, then reports every reply
// (in its units' order) to `parent` and quits.
caf::behavior commit_client(caf::event_based_actor* self, caf::actor writer,
                            caf::actor parent,
                            std::vector<unit_of_work> works) {
  auto replies = std::make_shared<std::vector<commit_reply>>(works.size());
  auto left = std::make_shared<std::size_t>(works.size());
  auto settle = [=](std::size_t i, commit_reply r) {
    (*replies)[i] = std::move(r);
    if (--*left == 0) {
      self->send(parent, *replies);
      self->quit();
    }
  };
  for (std::size_t i = 0; i < works.size(); ++i)
    self
      ->request(writer, reply_timeout, commit_atom::value, std::move(works[i]))
      .then([=](commit_reply& r) { settle(i, std::move(r)); },
            [=](caf::error& e) {
              settle(i, commit_reply::from(make_error(
                          errc::unavailable, "caf: " + caf::to_string(e))));
            });
  return {[](caf::ok_atom) {}}; // alive while its responses are awaited
}

TEST_F(group_writer_test,
       several_actors_commit_concurrently_and_a_version_conflict_fails_alone) {
  auto writer = spawn_writer(st);
  caf::scoped_actor self{sys};
  constexpr int clients = 4;
  constexpr int per_client = 50;
  for (int k = 0; k < clients; ++k) {
    std::vector<unit_of_work> works;
    for (int i = 0; i < per_client; ++i)
      works.push_back(
        append("c" + std::to_string(k) + "_s" + std::to_string(i), 0));
    if (k == 0) // sent after the first append to c0_s0: stale
      works.push_back(append("c0_s0", 0));
    sys.spawn(commit_client, writer, caf::actor_cast<caf::actor>(self),
              std::move(works));
  }
  int reports = 0;
  int ok = 0;
  std::vector<commit_reply> client0;
  for (int k = 0; k < clients; ++k)
    self->receive(
      [&](std::vector<commit_reply>& rs) {
        ++reports;
        if (rs.size() == per_client + 1)
          client0 = rs;
        for (std::size_t i = 0; i < rs.size(); ++i)
          if (rs[i].ok())
            ++ok;
          else if (i < per_client)
            ADD_FAILURE() << to_string(rs[i].error->code) << ": "
                          << rs[i].error->detail;
      },
      caf::after(reply_timeout) >> [&] { ADD_FAILURE() << "a client hung"; });
  ASSERT_EQ(reports, clients);
  EXPECT_EQ(ok, clients * per_client);
  ASSERT_EQ(client0.size(), std::size_t{per_client + 1});
  ASSERT_FALSE(client0.back().ok());
  EXPECT_EQ(client0.back().error->code, errc::version_conflict);
  for (int k = 0; k < clients; ++k)
    for (int i = 0; i < per_client; ++i)
      EXPECT_EQ(
        events_of(st, "c" + std::to_string(k) + "_s" + std::to_string(i)), 1);
  const auto s = stats_of(writer);
  EXPECT_EQ(s.committed, std::uint64_t{clients * per_client});
  EXPECT_EQ(s.failed, 1u);
  EXPECT_EQ(s.in_flight, 0u);
}

TEST_F(group_writer_test, commit_many_answers_every_unit_in_order) {
  auto writer = spawn_writer(st);
  caf::scoped_actor self{sys};
  std::vector<unit_of_work> works{append("sub_1", 0), append("sub_1", 0),
                                  append("sub_2", 0), append("sub_1", 1)};
  std::vector<commit_reply> replies;
  self->request(writer, reply_timeout, commit_many_atom::value, works)
    .receive([&](std::vector<commit_reply>& rs) { replies = std::move(rs); },
             [&](caf::error& e) { ADD_FAILURE() << sys.render(e); });
  ASSERT_EQ(replies.size(), 4u);
  EXPECT_TRUE(replies[0].ok());
  ASSERT_FALSE(replies[1].ok());
  EXPECT_EQ(replies[1].error->code, errc::version_conflict);
  EXPECT_TRUE(replies[2].ok());
  ASSERT_TRUE(replies[3].ok());
  EXPECT_EQ(replies[3].receipt->event_versions, (std::vector<std::int64_t>{2}));
  EXPECT_EQ(events_of(st, "sub_1"), 2);
  EXPECT_EQ(events_of(st, "sub_2"), 1);
}

TEST_F(group_writer_test,
       it_answers_while_a_commit_is_held_and_refuses_beyond_its_queue) {
  auto writer = spawn_writer(gated, 1);
  caf::scoped_actor self{sys};
  gated.close_gate();
  auto first = self->request(writer, reply_timeout, commit_atom::value,
                             append("sub_1", 0));
  ASSERT_TRUE(gated.wait_until_entered(1)); // the writer thread is held
  auto queued = self->request(writer, reply_timeout, commit_atom::value,
                              append("sub_2", 0));
  auto refused = self->request(writer, reply_timeout, commit_atom::value,
                               append("sub_3", 0));
  // The refusal comes at once, while the store still holds the first commit.
  refused.receive(
    [&](commit_reply& r) {
      ASSERT_FALSE(r.ok());
      EXPECT_EQ(r.error->code, errc::unavailable);
    },
    [&](caf::error& e) { ADD_FAILURE() << sys.render(e); });
  auto held = stats_of(writer); // the actor is not blocked
  EXPECT_EQ(held.in_flight, 2u);
  EXPECT_EQ(held.failed, 1u);
  EXPECT_EQ(held.committed, 0u);

  gated.open_gate();
  for (auto* h : {&first, &queued})
    h->receive([&](commit_reply& r) { EXPECT_TRUE(r.ok()); },
               [&](caf::error& e) { ADD_FAILURE() << sys.render(e); });
  EXPECT_EQ(events_of(gated, "sub_1"), 1);
  EXPECT_EQ(events_of(gated, "sub_2"), 1);
  EXPECT_EQ(events_of(gated, "sub_3"), 0);
  const auto s = stats_of(writer);
  EXPECT_EQ(s.committed, 2u);
  EXPECT_EQ(s.in_flight, 0u);
}

TEST_F(group_writer_test,
       dropping_the_last_handle_while_a_commit_is_in_flight_loses_no_reply) {
  // The actor may then be torn down on the writer's own thread (inside a
  // completion), which must neither deadlock nor lose the answer. Repeated,
  // because which thread drops the last reference is a race.
  caf::scoped_actor self{sys};
  for (int i = 0; i < 100; ++i) {
    std::optional<commit_reply> reply;
    {
      auto writer = spawn_writer(st);
      auto h = self->request(writer, reply_timeout, commit_atom::value,
                             append("drop_" + std::to_string(i), 0));
      writer = nullptr; // only the in-flight request keeps it alive now
      h.receive([&](commit_reply& r) { reply = std::move(r); },
                [&](caf::error& e) { ADD_FAILURE() << sys.render(e); });
    }
    ASSERT_TRUE(reply.has_value()) << "iteration " << i;
    EXPECT_TRUE(reply->ok()) << "iteration " << i;
  }
  for (int i = 0; i < 100; ++i)
    EXPECT_EQ(events_of(st, "drop_" + std::to_string(i)), 1);
}

TEST_F(group_writer_test,
       a_unit_in_flight_when_the_writer_stops_is_answered_outcome_unknown) {
  auto writer = spawn_writer(gated);
  caf::scoped_actor self{sys};
  gated.close_gate();
  auto h = self->request(writer, reply_timeout, commit_atom::value,
                         append("sub_1", 0));
  ASSERT_TRUE(gated.wait_until_entered(1));
  caf::anon_send_exit(writer, caf::exit_reason::user_shutdown);
  gated.open_gate(); // the stopping writer may now finish the held commit
  std::optional<commit_reply> reply;
  h.receive([&](commit_reply& r) { reply = std::move(r); },
            [&](caf::error& e) { ADD_FAILURE() << sys.render(e); });
  ASSERT_TRUE(reply.has_value());
  ASSERT_FALSE(reply->ok());
  EXPECT_TRUE(is_commit_outcome_unknown(*reply->error)) << reply->error->detail;
  // The commit did go through: the caller's re-read finds it.
  EXPECT_EQ(events_of(gated, "sub_1"), 1);
}

} // namespace
