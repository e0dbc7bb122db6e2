// The allocator shim's huge-page choice (actors/allocator.cpp): the probe's
// rule, and that a process whose heap grows past the threshold decides.

#include <cstdlib>
#include <cstring>
#include <memory>
#include <string_view>
#include <vector>

#include <gtest/gtest.h>

#include "actors/allocator.hpp"

using namespace recur;

TEST(huge_pages, rule_takes_them_only_where_small_faults_are_dear) {
  // A PVM guest as measured: 14 µs a 4 KiB fault, 150 µs a 2 MiB one.
  EXPECT_TRUE(huge_pages_pay({14'000, 150'000}));
  // A guest whose small faults are cheap: never, however cheap a huge one.
  EXPECT_FALSE(huge_pages_pay({400, 50'000}));
  EXPECT_FALSE(huge_pages_pay({2'000, 1'000}));
  // Dear small faults, but a huge page dearer still than 128 of them.
  EXPECT_FALSE(huge_pages_pay({14'000, 2'000'000}));
  EXPECT_TRUE(huge_pages_pay({3'000, 300'000}));
}

TEST(huge_pages, a_heap_past_64_mib_has_decided) {
  const char* env = std::getenv("RECUR_HUGEPAGES");
  const bool forced_on = env != nullptr && std::strcmp(env, "1") == 0;
  const bool forced_off = env != nullptr && std::strcmp(env, "0") == 0;
  // 96 MiB in 1 MiB blocks, each written, so that tcmalloc must take them
  // from the system.
  std::vector<std::unique_ptr<char[]>> blocks;
  volatile char seen = 0; // keeps the blocks from being optimised away
  for (int i = 0; i < 96; ++i) {
    blocks.emplace_back(new char[1 << 20]);
    std::memset(blocks.back().get(), i, 1 << 20);
    seen = static_cast<char>(seen + blocks.back()[i * 4096]);
  }
  const auto mode = huge_pages();
  if (std::string_view{allocator_name()} != "tcmalloc") {
    EXPECT_EQ(mode, huge_pages_mode::off);
    return;
  }
  if (forced_on) {
    EXPECT_EQ(mode, huge_pages_mode::forced_on);
    return;
  }
  if (forced_off) {
    EXPECT_EQ(mode, huge_pages_mode::forced_off);
    return;
  }
  ASSERT_TRUE(mode == huge_pages_mode::on || mode == huge_pages_mode::off)
    << to_string(mode);
  const auto p = huge_pages_probe();
  if (mode == huge_pages_mode::on) {
    EXPECT_GT(p.small_fault_ns, 0);
    EXPECT_GT(p.huge_fault_ns, 0);
    EXPECT_TRUE(huge_pages_pay(p));
  } else if (p.small_fault_ns > 0) { // the probe ran (THP was there to try)
    EXPECT_FALSE(huge_pages_pay(p));
  }
  EXPECT_EQ(std::string_view{to_string(mode)},
            mode == huge_pages_mode::on ? "on" : "off");
}

TEST(pretouch_heap, leaves_nothing_allocated) {
  const auto before = heap_allocated_bytes();
  pretouch_heap(std::size_t{32} << 20);
  const auto after = heap_allocated_bytes();
  ASSERT_EQ(before.has_value(), after.has_value());
  if (before) { // what it took it gave back: the live heap is as it was
    EXPECT_LT(*after > *before ? *after - *before : *before - *after,
              std::size_t{1} << 20);
  }
  auto p = std::make_unique<char[]>(1 << 20); // and the heap still serves
  p[0] = 1;
  EXPECT_EQ(p[0], 1);
}
