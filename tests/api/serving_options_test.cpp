// recurd's serving options: --http-threads / RECUR_HTTP_THREADS and
// --db-pool / RECUR_DB_POOL, their defaults, the flag winning over the
// variable, and out-of-range values refused with the option named.

#include <map>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "api/options.hpp"

namespace {

using namespace recur;
using namespace recur::api;

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

} // namespace
