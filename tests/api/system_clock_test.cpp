#include "api/system_clock.hpp"

#include <ctime>

#include <gtest/gtest.h>

using namespace recur;

TEST(system_clock, now_agrees_with_the_c_library_to_the_second) {
  const api::system_clock clk;
  const auto before = static_cast<std::int64_t>(std::time(nullptr));
  const auto now = clk.now();
  const auto after = static_cast<std::int64_t>(std::time(nullptr));
  EXPECT_LE(before, now.unix_s);
  EXPECT_LE(now.unix_s, after);
}

TEST(system_clock, it_is_usable_through_the_clock_port) {
  const api::system_clock sys;
  const recur::clock& port = sys;
  // 2024-01-01T00:00:00Z: any real wall clock is past it.
  EXPECT_GT(port.now().unix_s, 1'704'067'200);
}
