#include "api/options.hpp"

#include <unistd.h>

#include <cstdlib>
#include <map>
#include <string>
#include <vector>

#include <gtest/gtest.h>

using namespace recur;
using namespace recur::api;

namespace {

// Parses args against a fixed environment.
result<options> parse(std::vector<std::string_view> args,
                      std::map<std::string, std::string> env = {}) {
  return parse_options(
    args, [&env](std::string_view name) -> std::optional<std::string> {
      auto it = env.find(std::string{name});
      if (it == env.end())
        return std::nullopt;
      return it->second;
    });
}

// Each (flag, value) is refused, and the error starts by naming the flag.
void expect_each_refused_naming_its_flag(
  const std::vector<std::pair<std::string_view, std::string_view>>& cases) {
  for (const auto& [flag, value] : cases) {
    auto bad = parse({"--db", "dbname=x", flag, value});
    ASSERT_FALSE(bad) << flag << " " << value;
    EXPECT_EQ(bad.error().detail.rfind("option " + std::string{flag}, 0), 0u)
      << bad.error().detail;
  }
}

} // namespace

TEST(options, db_is_required_and_the_error_names_it) {
  auto opts = parse({});
  ASSERT_FALSE(opts);
  EXPECT_EQ(opts.code(), errc::invalid_argument);
  EXPECT_NE(opts.error().detail.find("--db"), std::string::npos);
  EXPECT_NE(opts.error().detail.find("RECUR_DB"), std::string::npos);
}

TEST(options, listen_defaults_to_loopback_port_8080) {
  auto opts = parse({"--db", "dbname=x"});
  ASSERT_TRUE(opts);
  EXPECT_EQ(opts->db_conninfo, "dbname=x");
  EXPECT_EQ(opts->listen.host, "127.0.0.1");
  EXPECT_EQ(opts->listen.port, 8080);
}

TEST(options, flags_take_a_separate_or_an_equals_value) {
  auto opts = parse({"--db=host=/tmp dbname=x", "--listen", "0.0.0.0:9000"});
  ASSERT_TRUE(opts);
  EXPECT_EQ(opts->db_conninfo, "host=/tmp dbname=x");
  EXPECT_EQ(opts->listen.host, "0.0.0.0");
  EXPECT_EQ(opts->listen.port, 9000);
}

TEST(options, environment_variables_fill_in_missing_flags) {
  auto opts = parse({}, {{"RECUR_DB", "dbname=env"},
                         {"RECUR_LISTEN", "127.0.0.2:7000"}});
  ASSERT_TRUE(opts);
  EXPECT_EQ(opts->db_conninfo, "dbname=env");
  EXPECT_EQ(opts->listen.host, "127.0.0.2");
  EXPECT_EQ(opts->listen.port, 7000);
}

TEST(options, a_flag_wins_over_its_environment_variable) {
  auto opts = parse({"--db", "dbname=flag", "--listen", "127.0.0.1:1234"},
                    {{"RECUR_DB", "dbname=env"}, {"RECUR_LISTEN", "garbage"}});
  ASSERT_TRUE(opts);
  EXPECT_EQ(opts->db_conninfo, "dbname=flag");
  EXPECT_EQ(opts->listen.port, 1234);
}

TEST(options, a_bad_environment_value_names_the_variable) {
  auto opts = parse({"--db", "dbname=x"}, {{"RECUR_LISTEN", "nope"}});
  ASSERT_FALSE(opts);
  EXPECT_NE(opts.error().detail.find("RECUR_LISTEN"), std::string::npos);
}

TEST(options, an_empty_environment_value_counts_as_unset) {
  auto opts = parse({}, {{"RECUR_DB", ""}});
  ASSERT_FALSE(opts);
  EXPECT_NE(opts.error().detail.find("--db"), std::string::npos);
}

TEST(options, an_unknown_option_is_named_in_the_error) {
  auto opts = parse({"--db", "dbname=x", "--bogus"});
  ASSERT_FALSE(opts);
  EXPECT_NE(opts.error().detail.find("'--bogus'"), std::string::npos);
  EXPECT_EQ(opts.error().detail.find('\n'), std::string::npos);
}

TEST(options, a_stray_positional_argument_is_an_error) {
  auto opts = parse({"--db", "dbname=x", "serve"});
  ASSERT_FALSE(opts);
  EXPECT_NE(opts.error().detail.find("'serve'"), std::string::npos);
}

TEST(options, a_flag_without_its_value_is_named_in_the_error) {
  auto opts = parse({"--db", "dbname=x", "--listen"});
  ASSERT_FALSE(opts);
  EXPECT_NE(opts.error().detail.find("--listen needs a value"),
            std::string::npos);
  auto empty = parse({"--db="});
  ASSERT_FALSE(empty);
  EXPECT_NE(empty.error().detail.find("--db must not be empty"),
            std::string::npos);
}

TEST(options, malformed_listen_values_are_rejected_naming_the_option) {
  for (const std::string_view bad :
       {"8080", ":8080", "127.0.0.1:", "127.0.0.1:0", "127.0.0.1:65536",
        "127.0.0.1:80x", "127.0.0.1:-1", "example.com:80", "[::1]", "::1:80x",
        "256.1.1.1:80"}) {
    SCOPED_TRACE(bad);
    auto opts = parse({"--db", "dbname=x", "--listen", bad});
    ASSERT_FALSE(opts);
    EXPECT_EQ(opts.code(), errc::invalid_argument);
    EXPECT_EQ(opts.error().detail.rfind("option --listen: ", 0), 0u)
      << opts.error().detail;
  }
}

TEST(options, listen_accepts_ipv6_brackets_localhost_and_the_port_edges) {
  auto v6 = parse_listen("[::1]:65535");
  ASSERT_TRUE(v6);
  EXPECT_EQ(v6->host, "::1");
  EXPECT_EQ(v6->port, 65535);
  auto local = parse_listen("localhost:1");
  ASSERT_TRUE(local);
  EXPECT_EQ(local->host, "127.0.0.1");
  EXPECT_EQ(local->port, 1);
}

TEST(options, help_wins_over_everything_else_on_the_line) {
  auto opts = parse({"--bogus", "--help"});
  ASSERT_TRUE(opts);
  EXPECT_TRUE(opts->show_help);
  auto version = parse({"--version"});
  ASSERT_TRUE(version);
  EXPECT_TRUE(version->show_version);
}

TEST(options, usage_lists_every_option_with_its_default_and_variable) {
  const auto text = usage();
  for (const char* needle : {"--db", "RECUR_DB", "--listen", "RECUR_LISTEN",
                             "default 127.0.0.1:8080", "--help", "--version"})
    EXPECT_NE(text.find(needle), std::string::npos) << needle;
}

// -- issue 5: kafka, admin key, rate limits ----------------------------------

TEST(options, kafka_defaults_to_embedded_and_takes_none_or_brokers) {
  auto def = parse({"--db", "dbname=x"});
  ASSERT_TRUE(def);
  EXPECT_EQ(def->kafka.kind, kafka_setting::mode::embedded);
  auto none = parse({"--db", "dbname=x", "--kafka", "none"});
  ASSERT_TRUE(none);
  EXPECT_EQ(none->kafka.kind, kafka_setting::mode::none);
  auto brokers = parse({"--db", "dbname=x"},
                       {{"RECUR_KAFKA", "kafka-1.local:9092,10.0.0.2:9093"}});
  ASSERT_TRUE(brokers);
  EXPECT_EQ(brokers->kafka.kind, kafka_setting::mode::external);
  EXPECT_EQ(brokers->kafka.bootstrap_servers,
            "kafka-1.local:9092,10.0.0.2:9093");
  EXPECT_TRUE(parse_kafka("[::1]:9092"));
}

TEST(options, a_bad_kafka_value_names_the_option_or_variable) {
  for (const std::string_view bad :
       {"embeded", "host", "host:0", "host:99999", ":9092", "a b:1", "h:1,"}) {
    SCOPED_TRACE(bad);
    auto flag = parse({"--db", "dbname=x", "--kafka", bad});
    ASSERT_FALSE(flag);
    EXPECT_EQ(flag.error().detail.rfind("option --kafka: ", 0), 0u)
      << flag.error().detail;
  }
  auto env = parse({"--db", "dbname=x"}, {{"RECUR_KAFKA", "nowhere"}});
  ASSERT_FALSE(env);
  EXPECT_EQ(env.error().detail.rfind("environment variable RECUR_KAFKA: ", 0),
            0u);
}

TEST(options, the_admin_key_comes_from_the_environment_and_is_checked) {
  auto none = parse({"--db", "dbname=x"});
  ASSERT_TRUE(none);
  EXPECT_TRUE(none->admin_key.empty());
  auto set = parse({"--db", "dbname=x"},
                   {{"RECUR_ADMIN_KEY", "0123456789abcdef"}});
  ASSERT_TRUE(set);
  EXPECT_EQ(set->admin_key, "0123456789abcdef");
  for (const char* bad : {"short", "has a space in it!!"}) {
    auto refused = parse({"--db", "dbname=x"}, {{"RECUR_ADMIN_KEY", bad}});
    ASSERT_FALSE(refused) << bad;
    EXPECT_NE(refused.error().detail.find("RECUR_ADMIN_KEY"),
              std::string::npos);
  }
  // No flag takes the key itself: command lines are visible to other users.
  EXPECT_FALSE(parse({"--db", "dbname=x", "--admin-key", "0123456789abcdef"}));
}

TEST(options, an_admin_key_file_wins_and_is_read_and_checked) {
  auto opts = parse({"--db", "dbname=x", "--admin-key-file", "/k"},
                    {{"RECUR_ADMIN_KEY", "0123456789abcdef"}});
  ASSERT_TRUE(opts);
  EXPECT_EQ(opts->admin_key_file, "/k");
  EXPECT_TRUE(opts->admin_key.empty());

  char path[] = "/tmp/recur_admin_key.XXXXXX";
  const int fd = mkstemp(path);
  ASSERT_GE(fd, 0);
  const std::string text = "abcdef0123456789abcdef\n";
  ASSERT_EQ(write(fd, text.data(), text.size()),
            static_cast<ssize_t>(text.size()));
  close(fd);
  auto key = read_admin_key_file(path);
  ASSERT_TRUE(key) << key.error().detail;
  EXPECT_EQ(*key, "abcdef0123456789abcdef");
  unlink(path);
  auto missing = read_admin_key_file(path);
  ASSERT_FALSE(missing);
  EXPECT_EQ(missing.error().detail.rfind("option --admin-key-file: ", 0), 0u);
}

TEST(options, rate_limits_have_defaults_and_bounds) {
  auto def = parse({"--db", "dbname=x"});
  ASSERT_TRUE(def);
  EXPECT_EQ(def->rate_limit_per_s, 100);
  EXPECT_EQ(def->rate_burst, 200);
  auto set = parse({"--db", "dbname=x", "--rate-limit=0"},
                   {{"RECUR_RATE_BURST", "5"}});
  ASSERT_TRUE(set);
  EXPECT_EQ(set->rate_limit_per_s, 0);
  EXPECT_EQ(set->rate_burst, 5);
  expect_each_refused_naming_its_flag({{"--rate-limit", "-1"},
                                       {"--rate-limit", "ten"},
                                       {"--rate-limit", "1000001"},
                                       {"--rate-burst", "0"}});
}

TEST(options, usage_lists_the_issue_5_options_with_defaults_and_variables) {
  const auto text = usage();
  for (const char* needle :
       {"--kafka", "RECUR_KAFKA", "default embedded", "--admin-key-file",
        "RECUR_ADMIN_KEY", "--rate-limit", "RECUR_RATE_LIMIT", "default 100",
        "--rate-burst", "RECUR_RATE_BURST", "default 200"})
    EXPECT_NE(text.find(needle), std::string::npos) << needle;
}

// recurd's serving options: --http-threads / RECUR_HTTP_THREADS, --db-pool /
// RECUR_DB_POOL, --db-lanes / RECUR_DB_LANES and --read-cache /
// RECUR_READ_CACHE, their defaults, the flag winning over the variable, and
// out-of-range values refused with the option named.

TEST(serving_options, http_threads_and_db_pool_have_defaults) {
  auto opts = parse({"--db", "dbname=x"});
  ASSERT_TRUE(opts);
  EXPECT_EQ(opts->http_threads, 64u);
  EXPECT_EQ(opts->db_pool, 4u);
  EXPECT_EQ(opts->db_lanes, 1u);
  EXPECT_EQ(opts->read_cache_entries, 65'536u);
}

TEST(serving_options, the_read_cache_can_be_sized_or_turned_off) {
  auto off = parse({"--db", "dbname=x", "--read-cache", "0"});
  ASSERT_TRUE(off);
  EXPECT_EQ(off->read_cache_entries, 0u);
  auto from_env = parse({"--db", "dbname=x"}, {{"RECUR_READ_CACHE", "1000"}});
  ASSERT_TRUE(from_env);
  EXPECT_EQ(from_env->read_cache_entries, 1000u);
}

TEST(serving_options, db_lanes_comes_from_its_flag_or_environment_variable) {
  auto opts = parse({"--db", "dbname=x", "--db-lanes", "3"},
                    {{"RECUR_DB_LANES", "2"}});
  ASSERT_TRUE(opts);
  EXPECT_EQ(opts->db_lanes, 3u);
  auto from_env = parse({"--db", "dbname=x"}, {{"RECUR_DB_LANES", "2"}});
  ASSERT_TRUE(from_env);
  EXPECT_EQ(from_env->db_lanes, 2u);
}

TEST(serving_options, a_flag_wins_over_its_environment_variable) {
  auto opts = parse({"--db", "dbname=x", "--http-threads", "8", "--db-pool=6"},
                    {{"RECUR_HTTP_THREADS", "3"}, {"RECUR_DB_POOL", "2"}});
  ASSERT_TRUE(opts);
  EXPECT_EQ(opts->http_threads, 8u);
  EXPECT_EQ(opts->db_pool, 6u);
  auto from_env = parse({"--db", "dbname=x"}, {{"RECUR_HTTP_THREADS", "3"},
                                               {"RECUR_DB_POOL", "2"}});
  ASSERT_TRUE(from_env);
  EXPECT_EQ(from_env->http_threads, 3u);
  EXPECT_EQ(from_env->db_pool, 2u);
}

TEST(serving_options, out_of_range_values_are_refused_naming_the_option) {
  for (const auto& [args, name] :
       std::vector<std::pair<std::vector<std::string_view>, std::string>>{
         {{"--db", "x", "--http-threads", "0"}, "--http-threads"},
         {{"--db", "x", "--http-threads", "1025"}, "--http-threads"},
         {{"--db", "x", "--http-threads", "many"}, "--http-threads"},
         {{"--db", "x", "--db-pool", "0"}, "--db-pool"},
         {{"--db", "x", "--db-pool", "65"}, "--db-pool"},
         {{"--db", "x", "--db-lanes", "0"}, "--db-lanes"},
         {{"--db", "x", "--db-lanes", "17"}, "--db-lanes"},
         {{"--db", "x", "--read-cache", "-1"}, "--read-cache"},
         {{"--db", "x", "--read-cache", "16777217"}, "--read-cache"}}) {
    auto opts = parse(args);
    ASSERT_FALSE(opts) << name;
    EXPECT_EQ(opts.code(), errc::invalid_argument);
    EXPECT_NE(opts.error().detail.find(name), std::string::npos)
      << opts.error().detail;
  }
  auto env = parse({"--db", "x"}, {{"RECUR_DB_POOL", "-1"}});
  ASSERT_FALSE(env);
  EXPECT_NE(env.error().detail.find("RECUR_DB_POOL"), std::string::npos)
    << env.error().detail;
}

TEST(serving_options, help_lists_both_with_their_variables) {
  const auto text = usage();
  for (const char* s : {"--http-threads", "RECUR_HTTP_THREADS", "--db-pool",
                        "RECUR_DB_POOL"})
    EXPECT_NE(text.find(s), std::string::npos) << s;
}

TEST(options, sandbox_faults_default_to_none_and_are_bounded) {
  auto def = parse({"--db", "dbname=x"});
  ASSERT_TRUE(def);
  EXPECT_EQ(def->sandbox.timeout_ppm, 0u);
  EXPECT_EQ(def->sandbox.timeout_after_commit_ppm, 0u);
  EXPECT_EQ(def->sandbox.decline_soft_ppm, 0u);
  EXPECT_EQ(def->sandbox.pending_ppm, 0u);
  EXPECT_EQ(def->sandbox.settle_delay_s, 60);
  EXPECT_FALSE(def->sandbox_seed);
  auto set = parse({"--db", "dbname=x", "--sandbox-timeout-ppm=1000",
                    "--sandbox-decline-soft-ppm", "1000000",
                    "--sandbox-seed", "42"},
                   {{"RECUR_SANDBOX_PENDING_PPM", "7"},
                    {"RECUR_SANDBOX_TIMEOUT_AFTER_COMMIT_PPM", "3"},
                    {"RECUR_SANDBOX_SETTLE_DELAY_S", "5"},
                    {"RECUR_SANDBOX_TIMEOUT_PPM", "999"}}); // the flag wins
  ASSERT_TRUE(set) << set.error().detail;
  EXPECT_EQ(set->sandbox.timeout_ppm, 1000u);
  EXPECT_EQ(set->sandbox.timeout_after_commit_ppm, 3u);
  EXPECT_EQ(set->sandbox.decline_soft_ppm, 1'000'000u);
  EXPECT_EQ(set->sandbox.pending_ppm, 7u);
  EXPECT_EQ(set->sandbox.settle_delay_s, 5);
  EXPECT_EQ(set->sandbox_seed, 42u);
  expect_each_refused_naming_its_flag({{"--sandbox-timeout-ppm", "1000001"},
                                       {"--sandbox-pending-ppm", "-1"},
                                       {"--sandbox-decline-soft-ppm", "half"},
                                       {"--sandbox-settle-delay-s", "2592001"},
                                       {"--sandbox-seed", "-5"}});
  auto env_bad = parse({"--db", "dbname=x"},
                       {{"RECUR_SANDBOX_TIMEOUT_PPM", "2000000"}});
  ASSERT_FALSE(env_bad);
  EXPECT_NE(env_bad.error().detail.find("RECUR_SANDBOX_TIMEOUT_PPM"),
            std::string::npos);
  for (std::string_view name :
       {"--sandbox-timeout-ppm", "--sandbox-timeout-after-commit-ppm",
        "--sandbox-decline-soft-ppm", "--sandbox-pending-ppm",
        "--sandbox-settle-delay-s", "--sandbox-seed"})
    EXPECT_NE(usage().find(name), std::string::npos) << name;
}
