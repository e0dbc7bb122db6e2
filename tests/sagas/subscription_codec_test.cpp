// The subscription state's JSON: the hand-written writer prints exactly what
// a nlohmann DOM of the same document prints, and the text round-trips.

#include <random>
#include <string>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "sagas/json_writer.hpp"
#include "sagas/subscription.hpp"

namespace recur {
namespace {

using nlohmann::json;

std::string text_of(std::mt19937_64& g, std::size_t max_len) {
  // Printable ASCII plus the characters JSON must escape.
  static const std::string alphabet
    = "abcXYZ019_-/ .:\"\\\b\f\n\r\t\x01\x1f\x7f{}[],";
  std::uniform_int_distribution<std::size_t> len(0, max_len);
  std::uniform_int_distribution<std::size_t> pick(0, alphabet.size() - 1);
  std::string s(len(g), ' ');
  for (auto& c : s)
    c = alphabet[pick(g)];
  return s;
}

subscription_state random_state(std::mt19937_64& g) {
  std::uniform_int_distribution<std::int64_t> big(-4'000'000'000'000,
                                                  4'000'000'000'000);
  std::uniform_int_distribution<int> small(0, 3);
  subscription_state s;
  s.tenant = tenant_id{text_of(g, 12)};
  s.id = subscription_id{text_of(g, 20)};
  s.customer = customer_id{text_of(g, 20)};
  s.plan = plan_id{text_of(g, 8)};
  s.plan_version = small(g) + 1;
  s.quantity = big(g);
  s.currency = "USD";
  s.payment_method = text_of(g, 30);
  s.life.status = static_cast<sub_status>(small(g));
  s.life.cancel_at_period_end = small(g) == 1;
  s.interval = billing_interval{interval_unit::month, small(g) + 1};
  s.anchor = instant{big(g)};
  s.period = billing_period{instant{big(g)}, instant{big(g)}};
  if (small(g) > 1)
    s.trial_end = instant{big(g)};
  s.entitled = small(g) != 0;
  s.credit_minor = big(g);
  for (int i = small(g); i > 0; --i)
    s.open_invoices.push_back(open_invoice{invoice_id{text_of(g, 16)}, big(g),
                                           big(g), big(g), big(g), small(g),
                                           text_of(g, 16), instant{big(g)},
                                           instant{big(g)}});
  for (int i = small(g) - 1; i > 0; --i)
    s.gateway_refs.push_back("refund:" + text_of(g, 12));
  if (small(g) > 1)
    s.last_paid = paid_invoice{invoice_id{text_of(g, 10)}, big(g), big(g),
                               big(g), text_of(g, 10), instant{big(g)},
                               instant{big(g)}};
  for (int i = small(g); i > 0; --i)
    s.sagas[text_of(g, 14)] = text_of(g, 8);
  s.saga_seq = big(g);
  s.version = big(g);
  s.created_at = instant{big(g)};
  s.updated_at = instant{big(g)};
  return s;
}

TEST(subscription_codec, state_text_is_what_a_json_dom_prints_and_round_trips) {
  std::mt19937_64 g{20261122};
  for (int i = 0; i < 500; ++i) {
    const auto s = random_state(g);
    const auto text = to_json(s);
    const auto dom = json::parse(text); // throws if the text is not JSON
    ASSERT_EQ(dom.dump(), text) << "case " << i;
    auto back = subscription_from_json(text);
    ASSERT_TRUE(back) << back.error().detail;
    EXPECT_EQ(*back, s) << "case " << i;
  }
}

TEST(subscription_codec, writer_escapes_like_nlohmann_and_separates_members) {
  std::string out;
  json_writer w{out};
  const std::string odd = "q\"b\\s\b\f\n\r\t\x01\x1f\x7f/é";
  w.begin_object()
    .key("a").begin_array().value(std::int64_t{-1}).value(true)
    .begin_object().end_object().begin_array().end_array().end_array()
    .member("b", odd)
    .member("c", false)
    .end_object();
  json expected{{"a", json::array({-1, true, json::object(), json::array()})},
                {"b", odd},
                {"c", false}};
  EXPECT_EQ(out, expected.dump());
}

} // namespace
} // namespace recur
