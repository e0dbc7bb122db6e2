#include "api/database.hpp"

#include <gtest/gtest.h>

using namespace recur::api;

TEST(redact_conninfo, a_keyword_password_becomes_stars) {
  EXPECT_EQ(redact_conninfo("host=/tmp/s port=5432 dbname=recur user=u "
                            "password=hunter2"),
            "host=/tmp/s port=5432 dbname=recur user=u password=***");
}

TEST(redact_conninfo, quoted_and_spaced_passwords_are_hidden_too) {
  EXPECT_EQ(redact_conninfo(R"(password='a b\'c' dbname=x)"),
            "password=*** dbname=x");
  EXPECT_EQ(redact_conninfo("  password =  secret   dbname = x "),
            "password=*** dbname=x");
  EXPECT_EQ(redact_conninfo("host='/tmp/a b' dbname=x"),
            "host='/tmp/a b' dbname=x");
}

TEST(redact_conninfo, uri_passwords_in_userinfo_and_query_are_hidden) {
  EXPECT_EQ(redact_conninfo("postgresql://u:secret@db.example:5432/recur"
                            "?password=again&sslmode=require"),
            "postgresql://u:***@db.example:5432/recur"
            "?password=***&sslmode=require");
  EXPECT_EQ(redact_conninfo("postgres://u@h/db"), "postgres://u@h/db");
}

TEST(redact_conninfo, a_malformed_string_is_not_echoed_at_all) {
  const auto out = redact_conninfo("dbname=x password='unterminated");
  EXPECT_EQ(out, "<malformed connection string>");
  EXPECT_EQ(redact_conninfo("dbname x"), "<malformed connection string>");
}

TEST(with_connect_timeout, adds_a_timeout_only_when_there_is_none) {
  EXPECT_EQ(with_connect_timeout("dbname=x", 5), "dbname=x connect_timeout=5");
  EXPECT_EQ(with_connect_timeout("dbname=x connect_timeout=9", 5),
            "dbname=x connect_timeout=9");
  EXPECT_EQ(with_connect_timeout("postgresql://h/db", 5), "postgresql://h/db");
  EXPECT_EQ(with_connect_timeout("application_name=connect_timeout", 5),
            "application_name=connect_timeout connect_timeout=5");
}
