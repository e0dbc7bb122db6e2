#include "api/options.hpp"

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
