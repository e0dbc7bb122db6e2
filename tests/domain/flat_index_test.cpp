// flat_index against std::unordered_map: random inserts, lookups and erases
// (backward-shift deletion across wrapped runs included), duplicates refused.

#include <deque>
#include <random>
#include <string>
#include <string_view>
#include <unordered_map>

#include <gtest/gtest.h>

#include "domain/flat_index.hpp"

namespace recur {
namespace {

struct row {
  std::string key;
  int value = 0;
};

struct key_of {
  std::string_view operator()(const row& r) const { return r.key; }
};

using index = flat_index<row, key_of>;

TEST(flat_index, agrees_with_a_hash_map_through_random_inserts_and_erases) {
  std::mt19937_64 g{20261207};
  std::deque<row> rows; // stable: the index points into it
  index idx;
  std::unordered_map<std::string, row*> ref;
  // Few distinct keys, so that runs collide, wrap and are erased often.
  std::uniform_int_distribution<int> pick(0, 2999);
  std::uniform_int_distribution<int> op(0, 9);
  for (int n = 0; n < 200'000; ++n) {
    const std::string k = "k" + std::to_string(pick(g));
    const int o = op(g);
    if (o < 5) {
      rows.push_back(row{k, n});
      const bool fresh = idx.insert(rows.back());
      EXPECT_EQ(fresh, !ref.contains(k)) << k;
      if (fresh)
        ref[k] = &rows.back();
    } else if (o < 8) {
      const bool gone = idx.erase(k);
      EXPECT_EQ(gone, ref.erase(k) == 1) << k;
    } else {
      row* got = idx.find(k);
      auto it = ref.find(k);
      ASSERT_EQ(got != nullptr, it != ref.end()) << k;
      if (got != nullptr) {
        EXPECT_EQ(got, it->second);
      }
    }
    ASSERT_EQ(idx.size(), ref.size());
  }
  for (const auto& [k, r] : ref)
    EXPECT_EQ(idx.find(k), r) << k;
  for (int i = 0; i < 3000; ++i) {
    const std::string k = "k" + std::to_string(i);
    EXPECT_EQ(idx.contains(k), ref.contains(k)) << k;
  }
}

TEST(flat_index, an_empty_index_finds_and_erases_nothing) {
  index idx;
  EXPECT_EQ(idx.find("x"), nullptr);
  EXPECT_FALSE(idx.erase("x"));
  row r{"x", 1};
  EXPECT_TRUE(idx.insert(r));
  row dup{"x", 2};
  EXPECT_FALSE(idx.insert(dup));
  EXPECT_EQ(idx.find("x"), &r);
  EXPECT_TRUE(idx.erase("x"));
  EXPECT_EQ(idx.size(), 0U);
  EXPECT_EQ(idx.find("x"), nullptr);
  row empty{"", 3}; // the empty key is a key like any other
  EXPECT_TRUE(idx.insert(empty));
  EXPECT_EQ(idx.find(""), &empty);
}

} // namespace
} // namespace recur
