// Faults against the real server (the cluster scripts/test.sh starts): the
// group-commit writer over the PostgreSQL store while another connection
// kills the store's sessions, and while PostgreSQL itself restarts.
//
// Every unit of work is one step of a subscription: an event, an outbox
// message and a timer, each tagged with the attempt that wrote it. After the
// run the test reads the tables back and checks that
//   - every acknowledged step is there, exactly once,
//   - every step that is there is whole (event + message + timer of the same
//     attempt) and came from an acknowledged attempt or from one whose commit
//     outcome was unknown, never from an attempt that was told it failed,
//   - the writer and the store commit again once the fault is gone.
//
// These tests stop other sessions or the whole server, so CMake runs them
// with RUN_SERIAL: no other test shares the cluster meanwhile.

#include <fcntl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <map>
#include <memory>
#include <mutex>
#include <random>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>
#include <pqxx/pqxx>

#include "persistence/group_commit.hpp"
#include "persistence/pg_store.hpp"

namespace {

using namespace std::chrono_literals;
using namespace recur;
using steady = std::chrono::steady_clock;

std::string env(const char* name) {
  const char* value = std::getenv(name);
  return value == nullptr ? std::string{} : std::string{value};
}

std::string unique_suffix() {
  return std::to_string(getpid()) + "_"
         + std::to_string(steady::now().time_since_epoch().count() % 1'000'000);
}

// -- the workload -------------------------------------------------------------
// What became of one submitted step.
enum class outcome : std::uint8_t { acknowledged, failed, unknown };

struct attempt {
  std::string subscription;
  std::int64_t seq = 0;
  outcome result = outcome::failed;
};

// One step: event seq = expected+1, its outbox message and its timer, all
// three carrying the attempt number so that the check can tell units apart.
unit_of_work step(const tenant_id& t, const std::string& sub,
                  std::int64_t expected, std::int64_t attempt_no) {
  const auto seq = std::to_string(expected + 1);
  const auto tag = R"({"attempt":)" + std::to_string(attempt_no) + "}";
  unit_of_work w;
  w.tenant = t;
  w.events.push_back(event_append{
    subscription_id{sub},
    expected,
    {new_event{"subscription.renewed", tag, instant{1'700'000'000}}}});
  w.outbox.push_back(outbox_message{sub + "/evt/" + seq, sub,
                                    "subscription.renewed", sub, tag,
                                    instant{1'700'000'000}});
  w.timers_to_schedule.push_back(timer_record{sub + "/period_end/" + seq, sub,
                                              "period_end",
                                              instant{1'800'000'000}, tag});
  return w;
}

// Appends steps to a few subscriptions from one thread each until told to
// stop, recording every attempt; after a failure it re-reads the version.
class workload {
public:
  workload(store& s, group_commit_writer& writer, tenant_id t, int subs)
    : store_(s), writer_(writer), tenant_(std::move(t)) {
    for (int i = 0; i < subs; ++i)
      subs_.push_back("sub_" + std::to_string(i));
  }

  void start() {
    for (const auto& sub : subs_)
      threads_.emplace_back([this, sub] { run(sub); });
  }

  void stop() {
    stop_ = true;
    for (auto& t : threads_)
      t.join();
    threads_.clear();
  }

  std::map<std::int64_t, attempt> attempts() const {
    std::lock_guard lock{mutex_};
    return attempts_;
  }
  std::size_t count(outcome o) const {
    std::lock_guard lock{mutex_};
    std::size_t n = 0;
    for (const auto& [_, a] : attempts_)
      n += a.result == o ? 1 : 0;
    return n;
  }

  // One more step per subscription, which must commit at the first try.
  testing::AssertionResult one_more_step_each() {
    for (const auto& sub : subs_) {
      auto version = reload(sub);
      if (!version)
        return testing::AssertionFailure() << "cannot read " << sub;
      auto r = submit(sub, *version);
      if (r != outcome::acknowledged)
        return testing::AssertionFailure() << "step on " << sub << " failed";
    }
    return testing::AssertionSuccess();
  }

private:
  void run(const std::string& sub) {
    std::int64_t version = 0;
    bool known = true;
    while (!stop_) {
      if (!known) {
        auto v = reload(sub);
        known = v.has_value();
        version = v.value_or(0);
        continue;
      }
      if (submit(sub, version) == outcome::acknowledged)
        ++version;
      else
        known = false; // what landed is only known by reading it back
    }
  }

  outcome submit(const std::string& sub, std::int64_t version) {
    const auto no = next_attempt_++;
    auto r = writer_.submit(step(tenant_, sub, version, no)).get();
    const auto o = r ? outcome::acknowledged
                   : is_commit_outcome_unknown(r.error()) ? outcome::unknown
                                                          : outcome::failed;
    std::lock_guard lock{mutex_};
    attempts_[no] = attempt{sub, version + 1, o};
    return o;
  }

  // The subscription's version, retried while the server is away (bounded:
  // about ten seconds, longer than any restart these tests cause).
  std::optional<std::int64_t> reload(const std::string& sub) {
    for (int i = 0; i < 200; ++i) {
      auto h = store_.load_history(tenant_, subscription_id{sub});
      if (h)
        return h->version;
      std::this_thread::sleep_for(50ms);
    }
    return std::nullopt;
  }

  store& store_;
  group_commit_writer& writer_;
  tenant_id tenant_;
  std::vector<std::string> subs_;
  std::vector<std::thread> threads_;
  std::atomic<bool> stop_{false};
  std::atomic<std::int64_t> next_attempt_{1};
  mutable std::mutex mutex_;
  std::map<std::int64_t, attempt> attempts_; // by attempt number
};

// -- reading back, past the store (superuser: row-level security off) ---------
// attempt number of each row, keyed by "<subscription>/<seq>".
using tagged_rows = std::map<std::string, std::vector<std::int64_t>>;

std::int64_t attempt_of(const std::string& tag) {
  const auto colon = tag.find(':');
  return colon == std::string::npos ? -1 : std::stoll(tag.substr(colon + 1));
}

tagged_rows read_tagged(pqxx::connection& admin, const std::string& sql,
                        const std::string& tenant) {
  tagged_rows out;
  pqxx::nontransaction tx{admin};
  for (const auto& row : tx.exec_params(sql, tenant))
    out[row[0].as<std::string>()].push_back(
      attempt_of(row[1].as<std::string>()));
  return out;
}

struct stored_steps {
  tagged_rows events, outbox, timers;
};

stored_steps read_back(pqxx::connection& admin, const std::string& tenant) {
  return {
    read_tagged(admin,
                "SELECT subscription_id || '/' || seq, payload_json"
                " FROM subscription_events WHERE tenant_id = $1",
                tenant),
    read_tagged(admin,
                "SELECT replace(message_id, '/evt/', '/'), data_json"
                " FROM outbox WHERE tenant_id = $1",
                tenant),
    read_tagged(admin,
                "SELECT replace(timer_id, '/period_end/', '/'), payload_json"
                " FROM timers WHERE tenant_id = $1",
                tenant)};
}

// The checks listed at the top of this file.
void expect_all_or_nothing(const stored_steps& s, const workload& w) {
  const auto attempts = w.attempts();
  EXPECT_EQ(s.outbox.size(), s.events.size());
  EXPECT_EQ(s.timers.size(), s.events.size());
  for (const auto& [key, tags] : s.events) {
    ASSERT_EQ(tags.size(), 1u) << key;
    const auto no = tags.front();
    EXPECT_EQ(
      s.outbox.count(key) ? s.outbox.at(key) : tagged_rows::mapped_type{}, tags)
      << "event " << key << " without its own outbox message";
    EXPECT_EQ(
      s.timers.count(key) ? s.timers.at(key) : tagged_rows::mapped_type{}, tags)
      << "event " << key << " without its own timer";
    auto it = attempts.find(no);
    ASSERT_NE(it, attempts.end()) << key;
    EXPECT_NE(it->second.result, outcome::failed)
      << key << " was written by attempt " << no
      << ", which was told it failed";
  }
  for (const auto& [no, a] : attempts) {
    if (a.result != outcome::acknowledged)
      continue;
    const auto key = a.subscription + "/" + std::to_string(a.seq);
    auto it = s.events.find(key);
    ASSERT_NE(it, s.events.end()) << "acknowledged step " << key << " is lost";
    EXPECT_EQ(it->second, std::vector<std::int64_t>{no}) << key;
  }
}

// -- the fixture --------------------------------------------------------------
class pg_fault : public testing::Test {
protected:
  void SetUp() override {
    ASSERT_FALSE(env("RECUR_TEST_DB").empty())
      << "RECUR_TEST_DB is not set. These tests need the PostgreSQL cluster "
         "that scripts/test.sh starts: run `bash scripts/test.sh -R fault`.";
    app_name_ = "recur_fault_" + unique_suffix();
    tenant_ = tenant_id{"fault_" + unique_suffix()};
  }

  // The store, whose working sessions carry app_name_ so that the killer
  // finds them and nothing else. synchronous_commit is on for them whatever
  // the cluster says: an acknowledged commit must survive a server crash.
  void open(std::int32_t store_retries) {
    pg_store_config cfg;
    cfg.conninfo = env("RECUR_TEST_DB");
    cfg.app_conninfo = app_conninfo();
    cfg.pool_size = 4;
    cfg.max_retries = store_retries;
    cfg.retry_backoff_min = 5ms;
    cfg.retry_backoff_max = 100ms;
    cfg.borrow_timeout = 10s;
    auto s = open_pg_store(cfg);
    ASSERT_TRUE(s) << s.error().detail;
    store_ = std::move(*s);
    ASSERT_TRUE(store_->create_tenant(tenant_record{
      tenant_, "Fault tenant", "", true, instant{1'700'000'000}}));
    group_commit_config wc;
    wc.max_wait_us = 100;
    wc.unavailable_attempts_max = 4;
    wc.retry_delay_ms_min = 20;
    wc.retry_delay_ms_max = 200;
    writer_ = std::make_unique<group_commit_writer>(*store_, wc);
  }

  std::string app_conninfo() const {
    return env("RECUR_TEST_DB") + " user=recur_app application_name="
           + app_name_ + " options='-c synchronous_commit=on'";
  }

  void TearDown() override {
    if (writer_)
      writer_->stop();
  }

  std::string app_name_;
  tenant_id tenant_;
  std::unique_ptr<store> store_;
  std::unique_ptr<group_commit_writer> writer_;
};

// Terminates every session of the store from a superuser connection, at
// seeded random intervals of 2-20 ms, until stopped.
class session_killer {
public:
  session_killer(std::string app_name, std::uint64_t seed)
    : app_name_(std::move(app_name)), rng_(seed) {
    thread_ = std::thread{[this] { run(); }};
  }
  ~session_killer() { stop(); }

  void stop() {
    stop_ = true;
    if (thread_.joinable())
      thread_.join();
  }
  int killed() const { return killed_; }

private:
  void run() {
    pqxx::connection admin{env("RECUR_TEST_DB")};
    while (!stop_) {
      std::this_thread::sleep_for(std::chrono::microseconds{
        2'000 + static_cast<std::int64_t>(rng_() % 18'000)});
      pqxx::nontransaction tx{admin};
      killed_ += tx.exec_params("SELECT count(pg_terminate_backend(pid))"
                                " FROM pg_stat_activity"
                                " WHERE application_name = $1",
                                app_name_)[0][0]
                   .as<int>();
    }
  }

  std::string app_name_;
  std::mt19937_64 rng_;
  std::atomic<bool> stop_{false};
  std::atomic<int> killed_{0};
  std::thread thread_;
};

std::string postmaster_start_time() {
  pqxx::connection admin{env("RECUR_TEST_DB")};
  pqxx::nontransaction tx{admin};
  return tx.exec("SELECT pg_postmaster_start_time()::text")[0][0]
    .as<std::string>();
}

// Runs a command (as the cluster owner when we are root, as scripts/lib.sh
// does), its output thrown away; its exit code, or -1.
int run_as_cluster_owner(std::vector<std::string> args) {
  if (geteuid() == 0)
    args.insert(args.begin(), {"runuser", "-u", "postgres", "--"});
  const pid_t pid = fork();
  if (pid == 0) {
    const int null = open("/dev/null", O_RDWR);
    dup2(null, 0);
    dup2(null, 1);
    dup2(null, 2);
    if (chdir("/") != 0)
      _exit(126);
    std::vector<char*> argv;
    argv.reserve(args.size() + 1);
    for (auto& a : args)
      argv.push_back(a.data());
    argv.push_back(nullptr);
    execvp(argv[0], argv.data());
    _exit(127);
  }
  int status = 0;
  if (pid < 0 || waitpid(pid, &status, 0) != pid || !WIFEXITED(status))
    return -1;
  return WEXITSTATUS(status);
}

} // namespace

// -- killed sessions ----------------------------------------------------------

TEST_F(pg_fault,
       killed_sessions_leave_no_partial_step_and_the_writer_recovers) {
  open(/*store_retries=*/5);
  workload load{*store_, *writer_, tenant_, 8};
  load.start();
  session_killer killer{app_name_, /*seed=*/42};
  std::this_thread::sleep_for(1500ms);
  killer.stop();
  // The writer recovers: steps are acknowledged again once the kills end.
  // (How many get through during 1.5 s of kills every 2-20 ms depends on
  // the machine's speed: a loaded one reconnects slower than it is killed.)
  const auto during = load.count(outcome::acknowledged);
  const auto calm = std::chrono::steady_clock::now();
  while (load.count(outcome::acknowledged) <= during + 100u
         && std::chrono::steady_clock::now() - calm < 20s)
    std::this_thread::sleep_for(20ms);
  load.stop();
  EXPECT_GT(load.count(outcome::acknowledged), during + 100u);
  EXPECT_GT(killer.killed(), 0) << "no session was ever killed";
  ASSERT_TRUE(load.one_more_step_each());

  pqxx::connection admin{env("RECUR_TEST_DB")};
  expect_all_or_nothing(read_back(admin, tenant_.value), load);
  std::cout << "[ stats    ] killed " << killer.killed() << " sessions; "
            << load.count(outcome::acknowledged) << " acknowledged, "
            << load.count(outcome::failed) << " failed, "
            << load.count(outcome::unknown) << " unknown; batches "
            << writer_->stats().batches << ", mean "
            << writer_->stats().mean_batch_units() << "\n";
}

// -- a server restart ---------------------------------------------------------

// `pg_ctl restart -m immediate` is a crash of PostgreSQL (every backend quits
// at once, no checkpoint; start-up replays the WAL). The test cluster runs
// with fsync=off, which only matters if the machine itself went down: the WAL
// that PostgreSQL wrote is in the kernel's page cache and survives a crash of
// the server processes. Committing with synchronous_commit=on (set on the
// store's sessions) is what makes an acknowledged commit's WAL written before
// the acknowledgement, so that after the restart every acknowledged step must
// be there.
TEST_F(pg_fault, every_acknowledged_step_survives_a_server_crash_restart) {
  const auto pg_bin = env("RECUR_TEST_PG_BIN");
  const auto pg_data = env("RECUR_TEST_PG_DATA");
  ASSERT_FALSE(pg_bin.empty() || pg_data.empty())
    << "RECUR_TEST_PG_BIN and RECUR_TEST_PG_DATA must name the test cluster "
       "(scripts/test.sh exports them)";
  open(/*store_retries=*/5);
  {
    pqxx::connection probe{app_conninfo()};
    pqxx::nontransaction tx{probe};
    ASSERT_EQ(tx.exec("SHOW synchronous_commit")[0][0].as<std::string>(), "on");
  }
  const auto started_before = postmaster_start_time();
  workload load{*store_, *writer_, tenant_, 8};
  load.start();
  std::this_thread::sleep_for(400ms);
  const auto acknowledged_before = load.count(outcome::acknowledged);
  const auto log = pg_data.substr(0, pg_data.find_last_of('/'))
                   + "/restart_fault.log";
  EXPECT_EQ(run_as_cluster_owner({pg_bin + "/pg_ctl", "restart", "--pgdata",
                                  pg_data, "--mode=immediate", "--wait",
                                  "--timeout=60", "--log", log}),
            0)
    << "pg_ctl restart failed; see " << log;
  std::this_thread::sleep_for(600ms);
  load.stop();
  EXPECT_NE(postmaster_start_time(), started_before) << "no restart happened";
  EXPECT_GT(acknowledged_before, 0u);
  EXPECT_GT(load.count(outcome::acknowledged), acknowledged_before)
    << "nothing was acknowledged after the restart";
  ASSERT_TRUE(load.one_more_step_each());

  pqxx::connection admin{env("RECUR_TEST_DB")};
  expect_all_or_nothing(read_back(admin, tenant_.value), load);
  std::cout << "[ stats    ] " << load.count(outcome::acknowledged)
            << " acknowledged (" << acknowledged_before
            << " before the restart), " << load.count(outcome::failed)
            << " failed, " << load.count(outcome::unknown) << " unknown\n";
}
