#include "sagas/catalog_codec.hpp"

#include <algorithm>
#include <cstdint>
#include <iterator>
#include <limits>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <gtest/gtest.h>

#include "domain/catalog.hpp"
#include "domain/clock.hpp"

using namespace recur;

namespace {

constexpr std::int64_t int64_max = std::numeric_limits<std::int64_t>::max();

const currency usd = currency::of("USD");

/// The example of the spec and of the header comment.
plan_version documented_version() {
  return plan_version{
    1,
    utc(2024, 1, 1),
    usd,
    billing_interval{interval_unit::month, 1},
    14,
    pricing::flat(2000),
    {metered_component{"api_calls", 1000,
                       pricing::tiered({price_tier{10000, 2, 0},
                                        price_tier{std::nullopt, 1, 0}})}}};
}

constexpr std::string_view documented_json
  = R"({"version":1,"effective_at":"2024-01-01T00:00:00Z","currency":"USD",)"
    R"("interval":{"unit":"month","count":1},"trial_days":14,)"
    R"("base":{"kind":"flat","flat_amount":2000},)"
    R"("metered":[{"meter":"api_calls","included_quantity":1000,)"
    R"("overage":{"kind":"tiered","tiers":[)"
    R"({"up_to":10000,"unit_amount":2,"flat_amount":0},)"
    R"({"up_to":null,"unit_amount":1,"flat_amount":0}]}}]})";

plan_version with_base(pricing base) {
  auto v = documented_version();
  v.base = std::move(base);
  v.metered.clear();
  return v;
}

std::vector<price_tier> three_tiers() {
  return {price_tier{10, 100, 500}, price_tier{100, 80, 0},
          price_tier{std::nullopt, 50, 25}};
}

void expect_round_trip(const plan_version& v) {
  ASSERT_TRUE(validate(v)) << validate(v).error().detail;
  const auto text = plan_version_to_json(v);
  auto back = plan_version_from_json(text);
  ASSERT_TRUE(back) << text << "\n-> " << back.error().detail;
  EXPECT_EQ(*back, v) << text;
  EXPECT_EQ(plan_version_to_json(*back), text);
}

// -- documented shape ---------------------------------------------------------

TEST(catalog_codec, the_documented_version_encodes_to_the_documented_text) {
  EXPECT_EQ(plan_version_to_json(documented_version()), documented_json);
}

TEST(catalog_codec, the_documented_text_decodes_to_the_documented_version) {
  auto v = plan_version_from_json(documented_json);
  ASSERT_TRUE(v) << v.error().detail;
  EXPECT_EQ(*v, documented_version());
}

TEST(catalog_codec, each_pricing_kind_writes_only_its_own_fields) {
  auto base_of = [](pricing p) {
    auto text = plan_version_to_json(with_base(std::move(p)));
    auto from = text.find(R"("base":)");
    auto to = text.find(R"(,"metered")");
    return text.substr(from, to - from);
  };
  EXPECT_EQ(base_of(pricing::flat(0)),
            R"("base":{"kind":"flat","flat_amount":0})");
  EXPECT_EQ(base_of(pricing::per_unit(7)),
            R"("base":{"kind":"per_unit","unit_amount":7})");
  EXPECT_EQ(
    base_of(pricing::volume({price_tier{std::nullopt, 3, 4}})),
    R"("base":{"kind":"volume","tiers":[{"up_to":null,"unit_amount":3,"flat_amount":4}]})");
}

// -- round trips --------------------------------------------------------------

TEST(catalog_codec, a_flat_plan_round_trips) {
  expect_round_trip(with_base(pricing::flat(4900)));
}

TEST(catalog_codec, a_per_unit_plan_round_trips) {
  expect_round_trip(with_base(pricing::per_unit(1250)));
}

TEST(catalog_codec, a_tiered_plan_round_trips) {
  expect_round_trip(with_base(pricing::tiered(three_tiers())));
}

TEST(catalog_codec, a_volume_plan_round_trips) {
  expect_round_trip(with_base(pricing::volume(three_tiers())));
}

TEST(catalog_codec, a_plan_with_a_meter_of_every_kind_round_trips) {
  auto v = with_base(pricing::per_unit(900));
  v.currency = currency::of("BHD");
  v.interval = billing_interval{interval_unit::year, 3};
  v.trial_days = max_trial_days;
  v.metered = {
    metered_component{"storage_gb", 0, pricing::flat(100)},
    metered_component{"api_calls", 1'000'000, pricing::per_unit(1)},
    metered_component{"seats", 5, pricing::tiered(three_tiers())},
    metered_component{"sms", 10, pricing::volume(three_tiers())},
  };
  expect_round_trip(v);
}

TEST(catalog_codec, extreme_integers_round_trip) {
  auto v = with_base(pricing::tiered({price_tier{int64_max - 1, int64_max, 0},
                                      price_tier{int64_max, 0, int64_max},
                                      price_tier{std::nullopt, 0, 0}}));
  v.version = std::numeric_limits<std::int32_t>::max();
  v.effective_at = utc(9999, 12, 31, 23, 59, 59);
  v.metered = {metered_component{"m", int64_max, pricing::flat(int64_max)}};
  expect_round_trip(v);
  v.effective_at = utc(1, 1, 1);
  expect_round_trip(v);
}

TEST(catalog_codec, meter_names_that_need_escaping_round_trip) {
  auto v = with_base(pricing::flat(1));
  v.metered = {
    metered_component{"quote\" back\\slash /", 0, pricing::flat(1)},
    metered_component{std::string{"ctl\x01\n\t\0nul", 10}, 0, pricing::flat(1)},
    metered_component{"caf\xC3\xA9 \xE2\x82\xAC \xF0\x9F\x93\x9E", 0,
                      pricing::flat(1)},
  };
  expect_round_trip(v);
}

TEST(catalog_codec, absent_trial_days_and_metered_default_to_zero_and_empty) {
  auto v = plan_version_from_json(
    R"({"version":2,"effective_at":"2024-02-29T12:00:00Z","currency":"JPY",)"
    R"("interval":{"unit":"week","count":2},"base":{"kind":"per_unit","unit_amount":300}})");
  ASSERT_TRUE(v) << v.error().detail;
  EXPECT_EQ(v->trial_days, 0);
  EXPECT_TRUE(v->metered.empty());
  EXPECT_EQ(v->version, 2);
  EXPECT_EQ(v->effective_at, utc(2024, 2, 29, 12));
  EXPECT_EQ(v->currency, currency::of("JPY"));
  EXPECT_EQ(v->interval, (billing_interval{interval_unit::week, 2}));
  EXPECT_EQ(v->base, pricing::per_unit(300));
}

TEST(catalog_codec, key_order_and_whitespace_do_not_matter_on_input) {
  auto v = plan_version_from_json(R"(
    { "metered" : [ ],
      "base"    : { "flat_amount" : 2000, "kind" : "flat" },
      "trial_days" : 14,
      "interval" : { "count" : 1, "unit" : "month" },
      "currency" : "USD", "effective_at" : "2024-01-01T00:00:00Z",
      "version" : 1 }
  )");
  ASSERT_TRUE(v) << v.error().detail;
  auto expected = documented_version();
  expected.metered.clear();
  EXPECT_EQ(*v, expected);
}

TEST(catalog_codec, a_foreign_pricing_field_survives_encoding_and_is_rejected) {
  auto v = with_base(pricing::flat(100));
  v.base.unit_amount_minor = 5; // invalid: a flat price with a unit amount
  const auto text = plan_version_to_json(v);
  EXPECT_NE(text.find(R"("unit_amount":5)"), std::string::npos) << text;
  auto back = plan_version_from_json(text);
  ASSERT_FALSE(back);
  EXPECT_EQ(back.code(), errc::invalid_price);
  EXPECT_EQ(back.error().detail.rfind("base.unit_amount:", 0), 0u)
    << back.error().detail;
}

TEST(catalog_codec, invalid_utf8_in_a_meter_name_is_replaced_not_thrown) {
  auto v = with_base(pricing::flat(1));
  v.metered = {metered_component{"bad\xFF", 0, pricing::flat(1)}};
  const auto text = plan_version_to_json(v);
  auto back = plan_version_from_json(text);
  ASSERT_TRUE(back) << back.error().detail;
  EXPECT_EQ(back->metered.at(0).meter, "bad\xEF\xBF\xBD");
}

TEST(catalog_codec, deeply_nested_input_is_rejected_without_recursion) {
  constexpr std::size_t depth = 100'000;
  std::string doc = R"({"version":1,"base":)";
  doc += std::string(depth, '[') + std::string(depth, ']') + "}";
  auto v = plan_version_from_json(doc);
  ASSERT_FALSE(v);
  EXPECT_EQ(v.code(), errc::invalid_argument);
}

// -- malformed documents ------------------------------------------------------

/// A valid document with two meters, as (field, raw JSON value) pairs in
/// order; `doc` replaces, removes (value `absent`) or appends fields.
constexpr std::string_view absent = "<absent>";

const std::vector<std::pair<std::string, std::string>> valid_fields = {
  {"version", "3"},
  {"effective_at", R"("2024-01-01T00:00:00Z")"},
  {"currency", R"("USD")"},
  {"interval", R"({"unit":"month","count":1})"},
  {"trial_days", "14"},
  {"base", R"({"kind":"flat","flat_amount":2000})"},
  {"metered", R"([{"meter":"api_calls","included_quantity":1000,)"
              R"("overage":{"kind":"per_unit","unit_amount":2}},)"
              R"({"meter":"sms","included_quantity":0,)"
              R"("overage":{"kind":"tiered","tiers":[)"
              R"({"up_to":100,"unit_amount":5,"flat_amount":0},)"
              R"({"up_to":null,"unit_amount":4,"flat_amount":0}]}}])"},
};

std::string
doc(const std::vector<std::pair<std::string, std::string>>& changes = {}) {
  auto fields = valid_fields;
  for (const auto& change : changes) {
    auto it = std::find_if(fields.begin(), fields.end(), [&](const auto& f) {
      return f.first == change.first;
    });
    if (it == fields.end())
      fields.push_back(change);
    else
      it->second = change.second;
  }
  std::string out = "{";
  for (const auto& [key, value] : fields) {
    if (value == absent)
      continue;
    if (out.size() > 1)
      out += ",";
    out.append("\"").append(key).append("\":").append(value);
  }
  return out + "}";
}

std::string metered_with_overage(const std::string& overage) {
  return R"([{"meter":"a","included_quantity":0,"overage":{"kind":"flat","flat_amount":1}},)"
         R"({"meter":"b","included_quantity":0,"overage":)"
         + overage + "}]";
}

std::string tiered(const std::string& tiers,
                   const std::string& kind = "tiered") {
  return R"({"kind":")" + kind + R"(","tiers":)" + tiers + "}";
}

std::string
many(std::size_t n, const std::string& item,
     const std::string& (*vary)(std::size_t, std::string&) = nullptr) {
  std::string out = "[";
  std::string scratch;
  for (std::size_t i = 0; i < n; ++i) {
    out += (i > 0 ? "," : "") + (vary ? vary(i, scratch) : item);
  }
  return out + "]";
}

/// `bounded` tiers up to 1, 2, 3, … and then the unbounded one.
std::string tiers_json(std::size_t bounded) {
  std::string out = "[";
  for (std::size_t i = 0; i < bounded; ++i)
    out += R"({"up_to":)" + std::to_string(i + 1)
           + R"(,"unit_amount":1,"flat_amount":0},)";
  return out + R"({"up_to":null,"unit_amount":1,"flat_amount":0}])";
}

const std::string& nth_meter(std::size_t i, std::string& scratch) {
  scratch
    = R"({"meter":"m)" + std::to_string(i)
      + R"(","included_quantity":0,"overage":{"kind":"flat","flat_amount":1}})";
  return scratch;
}

struct malformed_case {
  std::string name;
  std::string json;
  errc code;
  std::string path; // the detail starts with "<path>:"
};

std::vector<malformed_case> malformed_cases() {
  const errc arg = errc::invalid_argument;
  const errc price = errc::invalid_price;
  const errc negative = errc::negative_amount;
  const std::string tier = R"({"up_to":1,"unit_amount":1,"flat_amount":0})";
  return {
    // -- syntax -------------------------------------------------------------
    {"truncated", R"({"version":1,)", arg, "document"},
    {"empty", "", arg, "document"},
    {"trailing garbage", doc() + " x", arg, "document"},
    {"comment", "/* hi */" + doc(), arg, "document"},
    {"NaN", doc({{"version", "NaN"}}), arg, "document"},
    {"an array at the top", "[" + doc() + "]", arg, "document"},
    {"duplicate key", doc({{"version", "1,\"version\":2"}}), arg, "document"},
    {"oversized",
     doc({{"pad", "\"" + std::string(max_plan_json_bytes, ' ') + "\""}}), arg,
     "document"},
    // -- top-level fields ---------------------------------------------------
    {"unknown field", doc({{"name", R"("Pro")"}}), arg, "name"},
    {"missing version", doc({{"version", std::string{absent}}}), arg,
     "version"},
    {"version as string", doc({{"version", R"("1")"}}), arg, "version"},
    {"version as float", doc({{"version", "1.0"}}), arg, "version"},
    {"version in exponent form", doc({{"version", "1e0"}}), arg, "version"},
    {"version 0", doc({{"version", "0"}}), arg, "version"},
    {"version over int32", doc({{"version", "2147483648"}}), arg, "version"},
    {"missing effective_at", doc({{"effective_at", std::string{absent}}}), arg,
     "effective_at"},
    {"effective_at without time", doc({{"effective_at", R"("2024-01-01")"}}),
     arg, "effective_at"},
    {"effective_at with offset",
     doc({{"effective_at", R"("2024-01-01T00:00:00+01:00")"}}), arg,
     "effective_at"},
    {"effective_at 29 February of 2023",
     doc({{"effective_at", R"("2023-02-29T00:00:00Z")"}}), arg, "effective_at"},
    {"effective_at as unix seconds", doc({{"effective_at", "1704067200"}}), arg,
     "effective_at"},
    {"unknown currency", doc({{"currency", R"("XYZ")"}}),
     errc::unknown_currency, "currency"},
    {"lower-case currency", doc({{"currency", R"("usd")"}}),
     errc::unknown_currency, "currency"},
    {"missing currency", doc({{"currency", std::string{absent}}}), arg,
     "currency"},
    {"missing interval", doc({{"interval", std::string{absent}}}), arg,
     "interval"},
    {"interval as string", doc({{"interval", R"("month")"}}), arg, "interval"},
    {"unknown interval unit",
     doc({{"interval", R"({"unit":"fortnight","count":1})"}}), arg,
     "interval.unit"},
    {"plural interval unit",
     doc({{"interval", R"({"unit":"months","count":1})"}}), arg,
     "interval.unit"},
    {"interval count 0", doc({{"interval", R"({"unit":"month","count":0})"}}),
     arg, "interval.count"},
    {"interval over three years",
     doc({{"interval", R"({"unit":"month","count":37})"}}), arg,
     "interval.count"},
    {"interval count missing", doc({{"interval", R"({"unit":"day"})"}}), arg,
     "interval.count"},
    {"interval unknown field",
     doc({{"interval", R"({"unit":"day","count":1,"anchor":3})"}}), arg,
     "interval.anchor"},
    {"negative trial_days", doc({{"trial_days", "-1"}}), arg, "trial_days"},
    {"trial_days over the limit", doc({{"trial_days", "731"}}), arg,
     "trial_days"},
    {"null trial_days", doc({{"trial_days", "null"}}), arg, "trial_days"},
    {"trial_days that would wrap to 14", doc({{"trial_days", "4294967310"}}),
     arg, "trial_days"},
    // -- base pricing -------------------------------------------------------
    {"missing base", doc({{"base", std::string{absent}}}), arg, "base"},
    {"base as array", doc({{"base", "[]"}}), arg, "base"},
    {"missing kind", doc({{"base", R"({"flat_amount":1})"}}), arg, "base.kind"},
    {"unknown kind", doc({{"base", R"({"kind":"graduated","tiers":[]})"}}), arg,
     "base.kind"},
    {"flat without amount", doc({{"base", R"({"kind":"flat"})"}}), arg,
     "base.flat_amount"},
    {"flat with unit_amount",
     doc({{"base", R"({"kind":"flat","flat_amount":1,"unit_amount":0})"}}),
     price, "base.unit_amount"},
    {"flat with tiers",
     doc({{"base", R"({"kind":"flat","flat_amount":1,"tiers":[]})"}}), price,
     "base.tiers"},
    {"volume with flat_amount",
     doc({{"base", R"({"kind":"volume","flat_amount":0,"tiers":[]})"}}), price,
     "base.flat_amount"},
    {"unknown pricing field",
     doc({{"base", R"({"kind":"flat","flat_amount":1,"currency":"USD"})"}}),
     arg, "base.currency"},
    {"money as float", doc({{"base", R"({"kind":"flat","flat_amount":20.5})"}}),
     arg, "base.flat_amount"},
    {"whole money as float",
     doc({{"base", R"({"kind":"flat","flat_amount":2000.0})"}}), arg,
     "base.flat_amount"},
    {"money as string",
     doc({{"base", R"({"kind":"flat","flat_amount":"2000"})"}}), arg,
     "base.flat_amount"},
    {"money over int64",
     doc({{"base", R"({"kind":"flat","flat_amount":9223372036854775808})"}}),
     arg, "base.flat_amount"},
    {"money far over uint64",
     doc({{"base", R"({"kind":"flat","flat_amount":99999999999999999999})"}}),
     arg, "base.flat_amount"},
    {"money under int64",
     doc(
       {{"base", R"({"kind":"per_unit","unit_amount":-9223372036854775809})"}}),
     arg, "base.unit_amount"},
    {"negative flat amount",
     doc({{"base", R"({"kind":"flat","flat_amount":-1})"}}), negative,
     "base.flat_amount"},
    {"negative unit amount",
     doc({{"base", R"({"kind":"per_unit","unit_amount":-5})"}}), negative,
     "base.unit_amount"},
    // -- tiers --------------------------------------------------------------
    {"no tiers", doc({{"base", tiered("[]")}}), price, "base.tiers"},
    {"tiers as object", doc({{"base", tiered("{}")}}), arg, "base.tiers"},
    {"tier as number", doc({{"base", tiered("[1]")}}), arg, "base.tiers[0]"},
    {"last tier bounded", doc({{"base", tiered("[" + tier + "]")}}), price,
     "base.tiers[0].up_to"},
    {"unbounded tier first",
     doc({{"base", tiered(R"([{"up_to":null,"unit_amount":1,"flat_amount":0},)"
                            + tier + "]",
                          "volume")}}),
     price, "base.tiers[0].up_to"},
    {"up_to not increasing",
     doc({{"base",
           tiered("[" + tier + "," + tier
                  + R"(,{"up_to":null,"unit_amount":1,"flat_amount":0}])")}}),
     price, "base.tiers[1].up_to"},
    {"up_to zero",
     doc({{"base",
           tiered(R"([{"up_to":0,"unit_amount":1,"flat_amount":0},)"
                  R"({"up_to":null,"unit_amount":1,"flat_amount":0}])")}}),
     price, "base.tiers[0].up_to"},
    {"up_to missing",
     doc({{"base", tiered(R"([{"unit_amount":1,"flat_amount":0}])")}}), arg,
     "base.tiers[0].up_to"},
    {"tier without flat_amount",
     doc({{"base", tiered(R"([{"up_to":null,"unit_amount":1}])")}}), arg,
     "base.tiers[0].flat_amount"},
    {"tier unknown field",
     doc(
       {{"base",
         tiered(
           R"([{"up_to":null,"unit_amount":1,"flat_amount":0,"note":""}])")}}),
     arg, "base.tiers[0].note"},
    {"negative tier amount",
     doc({{"base",
           tiered(R"([{"up_to":null,"unit_amount":1,"flat_amount":-1}])")}}),
     negative, "base.tiers[0].flat_amount"},
    {"too many tiers", doc({{"base", tiered(tiers_json(max_price_tiers))}}),
     price, "base.tiers"},
    {"float up_to in the second meter",
     doc(
       {{"metered", metered_with_overage(tiered(
                      R"([{"up_to":1.5,"unit_amount":1,"flat_amount":0}])"))}}),
     arg, "metered[1].overage.tiers[0].up_to"},
    {"string up_to in the second meter",
     doc({{"metered",
           metered_with_overage(
             tiered(R"([{"up_to":"inf","unit_amount":1,"flat_amount":0}])"))}}),
     arg, "metered[1].overage.tiers[0].up_to"},
    // -- meters -------------------------------------------------------------
    {"metered as object", doc({{"metered", "{}"}}), arg, "metered"},
    {"null metered", doc({{"metered", "null"}}), arg, "metered"},
    {"meter as string", doc({{"metered", R"(["api_calls"])"}}), arg,
     "metered[0]"},
    {"meter name missing",
     doc(
       {{"metered",
         R"([{"included_quantity":0,"overage":{"kind":"flat","flat_amount":1}}])"}}),
     arg, "metered[0].meter"},
    {"empty meter name",
     doc(
       {{"metered",
         R"([{"meter":"","included_quantity":0,"overage":{"kind":"flat","flat_amount":1}}])"}}),
     arg, "metered[0].meter"},
    {"over-long meter name",
     doc(
       {{"metered",
         R"([{"meter":")" + std::string(max_meter_name_length + 1, 'x')
           + R"(","included_quantity":0,"overage":{"kind":"flat","flat_amount":1}}])"}}),
     arg, "metered[0].meter"},
    {"meter name as number",
     doc(
       {{"metered",
         R"([{"meter":7,"included_quantity":0,"overage":{"kind":"flat","flat_amount":1}}])"}}),
     arg, "metered[0].meter"},
    {"duplicate meter",
     doc(
       {{"metered", many(2, "",
                         [](std::size_t, std::string& s) -> const std::string& {
                           return nth_meter(0, s);
                         })}}),
     arg, "metered[1].meter"},
    {"negative included quantity",
     doc(
       {{"metered",
         R"([{"meter":"a","included_quantity":-1,"overage":{"kind":"flat","flat_amount":1}}])"}}),
     arg, "metered[0].included_quantity"},
    {"missing overage",
     doc({{"metered", R"([{"meter":"a","included_quantity":0}])"}}), arg,
     "metered[0].overage"},
    {"unknown meter field",
     doc(
       {{"metered",
         R"([{"meter":"a","included_quantity":0,"overage":{"kind":"flat","flat_amount":1},"unit":"GB"}])"}}),
     arg, "metered[0].unit"},
    {"bad overage in the second meter",
     doc({{"metered",
           metered_with_overage(R"({"kind":"per_unit","unit_amount":-1})")}}),
     negative, "metered[1].overage.unit_amount"},
    {"too many meters",
     doc({{"metered", many(max_metered_components + 1, "", nth_meter)}}), arg,
     "metered"},
  };
}

TEST(catalog_codec, the_valid_table_document_decodes) {
  auto v = plan_version_from_json(doc());
  ASSERT_TRUE(v) << v.error().detail;
  EXPECT_EQ(v->version, 3);
  ASSERT_EQ(v->metered.size(), 2u);
  EXPECT_EQ(v->metered[1].overage.tiers.size(), 2u);
  // The boundaries just inside the limits that the table steps over.
  auto at_limits = plan_version_from_json(
    doc({{"trial_days", "730"},
         {"interval", R"({"unit":"month","count":36})"},
         {"base", tiered(tiers_json(max_price_tiers - 1))},
         {"metered", many(max_metered_components, "", nth_meter)}}));
  ASSERT_TRUE(at_limits) << at_limits.error().detail;
  EXPECT_EQ(at_limits->base.tiers.size(), max_price_tiers);
  EXPECT_EQ(at_limits->metered.size(), max_metered_components);
}

TEST(catalog_codec, malformed_documents_are_rejected_naming_the_field) {
  const auto cases = malformed_cases();
  ASSERT_GE(cases.size(), 25u);
  for (const auto& c : cases) {
    SCOPED_TRACE(c.name);
    auto v = plan_version_from_json(c.json);
    ASSERT_FALSE(v) << c.json.substr(0, 300);
    EXPECT_EQ(to_string(v.code()), to_string(c.code)) << v.error().detail;
    EXPECT_EQ(v.error().detail.rfind(c.path + ": ", 0), 0u)
      << "detail: " << v.error().detail << "\nexpected path: " << c.path;
  }
}

// -- property: random valid versions round-trip exactly
// ------------------------

std::int64_t random_amount(rng& gen) {
  switch (gen.below(8)) {
    case 0:
      return 0;
    case 1:
      return int64_max;
    case 2:
      return gen.between(1, 100);
    default:
      return gen.between(0, int64_max);
  }
}

std::vector<price_tier> random_tiers(rng& gen) {
  const std::size_t wanted
    = gen.below(4) == 0
        ? static_cast<std::size_t>(gen.below(max_price_tiers)) + 1
        : static_cast<std::size_t>(gen.below(5)) + 1;
  const std::int64_t highs[] = {200, 1'000'000, int64_max};
  const std::int64_t high = highs[gen.below(3)];
  std::vector<std::int64_t> bounds;
  bounds.reserve(wanted);
  for (std::size_t i = 0; i + 1 < wanted; ++i)
    bounds.push_back(gen.below(16) == 0 ? high : gen.between(1, high));
  std::sort(bounds.begin(), bounds.end());
  bounds.erase(std::unique(bounds.begin(), bounds.end()), bounds.end());
  std::vector<price_tier> tiers;
  tiers.reserve(bounds.size() + 1);
  for (auto b : bounds)
    tiers.push_back(price_tier{b, random_amount(gen), random_amount(gen)});
  tiers.push_back(
    price_tier{std::nullopt, random_amount(gen), random_amount(gen)});
  return tiers;
}

pricing random_pricing(rng& gen) {
  switch (gen.below(4)) {
    case 0:
      return pricing::flat(random_amount(gen));
    case 1:
      return pricing::per_unit(random_amount(gen));
    case 2:
      return pricing::tiered(random_tiers(gen));
    default:
      return pricing::volume(random_tiers(gen));
  }
}

/// Up to 100 bytes from pieces that exercise JSON escaping and UTF-8; `index`
/// keeps names unique.
std::string random_meter_name(rng& gen, std::size_t index) {
  static const std::string_view pieces[] = {"a",
                                            "z",
                                            "_",
                                            ".",
                                            " ",
                                            "\"",
                                            "\\",
                                            "/",
                                            "\n",
                                            "\x01",
                                            std::string_view{"\0", 1},
                                            "\x7F",
                                            "\xC3\xA9",
                                            "\xE2\x82\xAC",
                                            "\xF0\x9F\x93\x9E",
                                            "calls",
                                            "GB"};
  std::string name = std::to_string(index);
  const auto pieces_count = gen.below(30);
  for (std::uint64_t i = 0; i < pieces_count; ++i) {
    auto piece = pieces[gen.below(std::size(pieces))];
    if (name.size() + piece.size() > max_meter_name_length)
      break;
    name += piece;
  }
  return name;
}

billing_interval random_interval(rng& gen) {
  // The domain's limits: at most three years.
  const std::pair<interval_unit, std::int64_t> units[]
    = {{interval_unit::day, 3 * 365},
       {interval_unit::week, 3 * 52},
       {interval_unit::month, 36},
       {interval_unit::year, 3}};
  const auto& [unit, max_count] = units[gen.below(4)];
  return billing_interval{unit,
                          static_cast<std::int32_t>(gen.between(1, max_count))};
}

plan_version random_plan_version(rng& gen) {
  static const char* codes[] = {"USD", "EUR", "JPY", "BHD",
                                "CLP", "GBP", "KWD"};
  plan_version v{static_cast<std::int32_t>(
                   gen.between(1, std::numeric_limits<std::int32_t>::max())),
                 instant{gen.between(utc(1, 1, 1).unix_s,
                                     utc(9999, 12, 31, 23, 59, 59).unix_s)},
                 currency::of(codes[gen.below(std::size(codes))]),
                 random_interval(gen),
                 static_cast<std::int32_t>(gen.between(0, max_trial_days)),
                 random_pricing(gen),
                 {}};
  const auto meters = gen.below(8) == 0 ? gen.below(max_metered_components + 1)
                                        : gen.below(4);
  for (std::uint64_t i = 0; i < meters; ++i)
    v.metered.push_back(metered_component{
      random_meter_name(gen, i), random_amount(gen), random_pricing(gen)});
  return v;
}

TEST(catalog_codec, random_valid_plan_versions_round_trip_exactly) {
  constexpr std::uint64_t base_seed = 0x5eed'c0dec;
  constexpr int runs = 2000;
  int tiered_seen = 0;
  int with_meters = 0;
  for (int i = 0; i < runs; ++i) {
    const std::uint64_t seed = base_seed + static_cast<std::uint64_t>(i);
    rng gen{seed};
    const auto v = random_plan_version(gen);
    SCOPED_TRACE("reproduce with seed " + std::to_string(seed));
    ASSERT_TRUE(validate(v)) << validate(v).error().detail;
    const auto text = plan_version_to_json(v);
    auto back = plan_version_from_json(text);
    ASSERT_TRUE(back) << back.error().detail;
    ASSERT_EQ(*back, v) << text;
    ASSERT_EQ(plan_version_to_json(*back), text);
    tiered_seen += v.base.tiers.empty() ? 0 : 1;
    with_meters += v.metered.empty() ? 0 : 1;
  }
  // The generator really covers the shapes it is meant to.
  EXPECT_GT(tiered_seen, runs / 4);
  EXPECT_GT(with_meters, runs / 3);
}

} // namespace
