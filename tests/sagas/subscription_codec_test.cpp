// The subscription state's JSON: the hand-written writer prints exactly what
// a nlohmann DOM of the same document prints, and the text round-trips.

#include <random>
#include <string>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "sagas/json_writer.hpp"
#include "sagas/state_reader.hpp"
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

/// The fast reader agrees with the DOM path, or leaves the text to it.
void expect_fast_agrees(const std::string& text, const std::string& what) {
  subscription_state fast;
  const bool read = read_state_fast(text, fast);
  auto dom = subscription_from_json_dom(text);
  if (read) {
    ASSERT_TRUE(dom.has_value())
      << what << ": the fast reader took what the DOM refuses: " << text;
    EXPECT_EQ(fast, *dom) << what << ": " << text;
  }
  auto either = subscription_from_json(text);
  ASSERT_EQ(either.has_value(), dom.has_value()) << what;
  if (dom)
    EXPECT_EQ(*either, *dom) << what;
  else
    EXPECT_EQ(either.error().detail, dom.error().detail) << what;
}

TEST(subscription_codec, the_fast_reader_reads_states_and_payloads_as_the_dom) {
  std::mt19937_64 g{20261207};
  for (int i = 0; i < 300; ++i) {
    const auto s = random_state(g);
    const auto text = to_json(s);
    subscription_state fast;
    ASSERT_TRUE(read_state_fast(text, fast)) << "case " << i;
    EXPECT_EQ(fast, s) << "case " << i;
    // An event payload: the detail is skipped, whatever it holds.
    const std::string payload = R"({"detail":{"a":[1,{"state":2}],"b":null},)"
                                R"("state":)" + text + R"(,"z":1.5})";
    subscription_state from_payload;
    ASSERT_TRUE(read_payload_state_fast(payload, from_payload)) << "case " << i;
    EXPECT_EQ(from_payload, s) << "case " << i;
  }
}

TEST(subscription_codec, the_fast_reader_never_takes_what_the_dom_reads_otherwise) {
  std::mt19937_64 g{7};
  const auto text = to_json(random_state(g));
  const auto dom = json::parse(text);
  std::vector<std::pair<std::string, std::string>> cases;
  // Every member dropped, nulled, or given a value of another type.
  for (const auto& [k, v] : dom.items()) {
    auto d = dom;
    d.erase(k);
    cases.emplace_back("without " + k, d.dump());
    for (const json& other : {json(nullptr), json(1.5), json(-3), json("x"),
                              json(true), json::array(), json::object(),
                              json::array({1}), json::object({{"id", 1}})}) {
      d = dom;
      d[k] = other;
      cases.emplace_back(k + " = " + other.dump(), d.dump());
    }
  }
  // Nested members dropped or retyped.
  for (const char* inner : {"count", "unit"}) {
    auto d = dom;
    d["interval"].erase(inner);
    cases.emplace_back(std::string{"interval without "} + inner, d.dump());
  }
  auto d = dom;
  d["open_invoices"] = json::array({{{"id", "i"}}});
  cases.emplace_back("open invoice with only an id", d.dump());
  d = dom;
  d["last_paid"] = {{"id", "x"}};
  cases.emplace_back("last_paid with only an id", d.dump());
  d = dom;
  d["sagas"] = {{"s", 1}};
  cases.emplace_back("a saga type that is a number", d.dump());
  d = dom;
  d["extra"] = {{"deep", json::array({json::object(), 2.5, nullptr})}};
  cases.emplace_back("an unknown member", d.dump());
  d = dom;
  d["quantity"] = 18446744073709551615ULL;
  cases.emplace_back("an unsigned past int64", d.dump());
  d = dom;
  d["plan_version"] = 4294967297LL; // as nlohmann narrows to int32
  cases.emplace_back("plan_version past int32", d.dump());
  // Duplicates (the last wins in the DOM), and text that is not JSON.
  cases.emplace_back("duplicate tenant",
                     R"({"tenant":"first",)" + text.substr(1));
  cases.emplace_back("duplicate open_invoices",
                     R"({"open_invoices":[{"bad":1}],)" + text.substr(1));
  cases.emplace_back("duplicate sagas", R"({"sagas":{"zz":"old"},)" + text.substr(1));
  cases.emplace_back("truncated", text.substr(0, text.size() / 2));
  cases.emplace_back("trailing text", text + " x");
  cases.emplace_back("invalid UTF-8", R"({"tenant":")" "\xff" R"(",)" + text.substr(1));
  cases.emplace_back("an array", "[" + text + "]");
  cases.emplace_back("empty", "");
  for (const auto& [what, t] : cases)
    expect_fast_agrees(t, what);
}

/// The reader lexes what to_json writes itself and leaves the rest of JSON
/// (whitespace aside) to nlohmann's parser: valid text of either kind reads
/// as the DOM reads it; invalid text is refused as the DOM refuses it.
TEST(subscription_codec, the_fast_reader_reads_any_valid_spelling_as_the_dom) {
  std::mt19937_64 g{11};
  auto s = random_state(g);
  s.tenant.value = "t\xc3\xabn/\"q\\\t"; // non-ASCII, slash, escapes
  const auto text = to_json(s);
  const auto dom = json::parse(text);
  std::vector<std::pair<std::string, std::string>> valid{
    {"compact", text},
    {"pretty, two spaces", dom.dump(2)},
    {"pretty, tabs", dom.dump(1, '\t')},
    {"ASCII only (\\u escapes)", dom.dump(-1, ' ', true)},
    {"a byte order mark", "\xef\xbb\xbf" + text},
    {"whitespace around", " \r\n\t" + text + " \n"},
  };
  auto replace = [&](std::string t, const std::string& from,
                     const std::string& to) {
    auto at = t.find(from);
    EXPECT_NE(at, std::string::npos) << from;
    if (at != std::string::npos)
      t.replace(at, from.size(), to);
    return t;
  };
  valid.emplace_back("an escaped slash",
                     replace(text, "\xc3\xabn/", "\xc3\xabn\\/"));
  valid.emplace_back("escaped solidus in a key",
                     replace(text, R"("tenant":)", R"("ten\/ant":"x","tenant":)"));
  valid.emplace_back("minus zero", replace(text, R"("credit":)",
                                           R"("credit":-0,"credit":)"));
  for (const auto& [what, t] : valid) {
    subscription_state fast;
    EXPECT_TRUE(read_state_fast(t, fast)) << what << ": " << t;
    EXPECT_EQ(fast, s) << what;
    expect_fast_agrees(t, what);
  }
  // ASCII only, so that the reader's own lexer takes it: every escape,
  // \u00XX for the other control bytes, \u0041 spelt out.
  auto plain = s;
  plain.tenant.value = "t/\"q\\\t\b\f\n\r\x1f\x7f";
  const auto plain_text = to_json(plain);
  for (const auto& t :
       {plain_text, replace(plain_text, R"("t/)", R"("t\/)"),
        replace(plain_text, R"("t/)", R"("\u0074/)")}) {
    subscription_state fast;
    EXPECT_TRUE(read_state_fast(t, fast)) << t;
    EXPECT_EQ(fast, plain) << t;
    expect_fast_agrees(t, "escapes");
  }
  const std::vector<std::pair<std::string, std::string>> other{
    {"a fraction", replace(text, R"("credit":)", R"("credit":1.0,"x":)")},
    {"an exponent", replace(text, R"("quantity":)", R"("quantity":1e2,"x":)")},
    {"a leading zero", replace(text, R"("quantity":)", R"("quantity":01,"x":)")},
    {"a lone minus", replace(text, R"("quantity":)", R"("quantity":-,"x":)")},
    {"past uint64", replace(text, R"("quantity":)",
                            R"("quantity":18446744073709551616,"x":)")},
    {"past int64 below", replace(text, R"("credit":)",
                                 R"("credit":-9223372036854775809,"x":)")},
    {"a raw control character", replace(text, R"("tenant":")", "\"tenant\":\"\x01")},
    {"a bad escape", replace(text, R"("tenant":")", R"("tenant":"\x)")},
    {"a lone surrogate", replace(text, R"("tenant":")", R"("tenant":"\ud800)")},
    {"a trailing comma", text.substr(0, text.size() - 1) + ",}"},
    {"a missing colon", replace(text, R"("tenant":)", R"("tenant")")},
    {"a missing comma", replace(text, R"(,"tenant")", R"( "tenant")")},
    {"true misspelt", replace(text, R"("entitled":)", R"("entitled":tru,"x":)")},
    {"null misspelt", replace(text, R"("entitled":)", R"("entitled":nul,"x":)")},
    {"two documents", text + text},
    {"unclosed", text.substr(0, text.size() - 1)},
  };
  for (const auto& [what, t] : other)
    expect_fast_agrees(t, what);
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
  // Literal names take their own path; names from strings are escaped.
  std::string both;
  const std::string name = odd;
  json_writer{both}
    .begin_object()
    .member("d", std::int64_t{7})
    .member("e", "lit")
    .member(std::string_view{name}, std::int32_t{-2})
    .end_object();
  json expected_both{{"d", 7}, {"e", "lit"}, {odd, -2}};
  EXPECT_EQ(both, expected_both.dump());
}

} // namespace
} // namespace recur
