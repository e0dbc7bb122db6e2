#include "workflows/invoice_state.hpp"

#include <optional>
#include <set>
#include <string>

#include <gtest/gtest.h>

using namespace recur;

namespace {

using is = invoice_status;
using it = invoice_trigger;

/// The expected machine, written out: the only five legal moves.
std::optional<is> expected(is from, it on) {
  if (from == is::draft && on == it::finalize) return is::open;
  if (from == is::open && on == it::pay) return is::paid;
  if (from == is::open && on == it::void_invoice) return is::voided;
  if (from == is::open && on == it::mark_uncollectible) return is::uncollectible;
  if (from == is::uncollectible && on == it::pay) return is::paid;
  return std::nullopt;
}

} // namespace

TEST(invoice_state, every_status_and_trigger_matches_the_expected_machine) {
  int legal = 0;
  for (auto from : all_invoice_statuses)
    for (auto on : all_invoice_triggers) {
      SCOPED_TRACE(std::string{to_string(from)} + " on "
                   + std::string{to_string(on)});
      auto got = apply(from, on);
      if (auto want = expected(from, on)) {
        ASSERT_TRUE(got);
        EXPECT_EQ(*got, *want);
        ++legal;
      } else {
        ASSERT_FALSE(got);
        EXPECT_EQ(got.code(), errc::invalid_transition);
      }
    }
  EXPECT_EQ(legal, 5);
}

TEST(invoice_state, paid_and_void_are_terminal_and_reject_everything) {
  for (auto s : all_invoice_statuses)
    EXPECT_EQ(is_terminal(s), s == is::paid || s == is::voided)
      << to_string(s);
  for (auto s : {is::paid, is::voided})
    for (auto on : all_invoice_triggers)
      EXPECT_EQ(apply(s, on).code(), errc::invalid_transition);
}

TEST(invoice_state, a_written_off_invoice_can_still_be_paid_but_not_voided) {
  auto written_off = apply(is::open, it::mark_uncollectible);
  ASSERT_TRUE(written_off);
  EXPECT_EQ(*apply(*written_off, it::pay), is::paid);
  EXPECT_EQ(apply(*written_off, it::void_invoice).code(),
            errc::invalid_transition);
}

TEST(invoice_state, a_draft_cannot_be_paid_before_it_is_finalized) {
  auto r = apply(is::draft, it::pay);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().detail, "invoice: no transition from draft on pay");
}

TEST(invoice_state, names_match_stripe_and_are_unique) {
  EXPECT_EQ(to_string(is::voided), "void");
  EXPECT_EQ(to_string(is::uncollectible), "uncollectible");
  EXPECT_EQ(to_string(it::void_invoice), "void");
  EXPECT_EQ(to_string(it::mark_uncollectible), "mark_uncollectible");
  std::set<std::string_view> statuses, triggers;
  for (auto s : all_invoice_statuses)
    statuses.insert(to_string(s));
  for (auto t : all_invoice_triggers)
    triggers.insert(to_string(t));
  EXPECT_EQ(statuses.size(), 5u);
  EXPECT_EQ(triggers.size(), 4u);
}
