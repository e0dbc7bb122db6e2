// The fast reader of a subscription's state JSON (see state_reader.hpp): a
// SAX pass straight into the struct, with no DOM in between.

#include "sagas/state_reader.hpp"

#include <array>
#include <bitset>
#include <charconv>
#include <cstdint>
#include <exception>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

namespace recur {

namespace {

using nlohmann::json;

/// Every field the reader knows. `skip`: a value it does not keep.
enum class field : std::uint8_t {
  none,
  skip,
  state, // the payload's "state"
  // the state's members
  anchor,
  cancel_at_period_end,
  cancel_reason,
  created_at,
  credit,
  currency,
  customer,
  entitled,
  gateway_refs,
  id,
  interval,
  last_paid,
  open_invoices,
  pause_reason,
  payment_method,
  period,
  plan,
  plan_version,
  quantity,
  saga_seq,
  sagas,
  status,
  tenant,
  trial_end,
  updated_at,
  version,
  // interval, period
  iv_count,
  iv_unit,
  p_end,
  p_start,
  // last_paid
  lp_charge_id,
  lp_id,
  lp_net,
  lp_paid,
  lp_period_end,
  lp_period_start,
  lp_tax,
  // an open invoice
  oi_amount_due,
  oi_attempts,
  oi_collecting_saga,
  oi_id,
  oi_net,
  oi_period_end,
  oi_period_start,
  oi_tax,
  oi_version,
  // a member of "sagas", an element of "gateway_refs"
  saga_entry,
  ref_entry,
  count_
};

using seen_set = std::bitset<static_cast<std::size_t>(field::count_)>;

/// Where the reader is: the object or array whose members come next.
enum class ctx : std::uint8_t {
  payload,
  top,
  interval,
  period,
  last_paid,
  open_list,
  open_item,
  sagas,
  refs,
};

struct key_field {
  std::string_view key;
  field f;
};

constexpr key_field top_keys[] = {
  {"anchor", field::anchor},
  {"cancel_at_period_end", field::cancel_at_period_end},
  {"cancel_reason", field::cancel_reason},
  {"created_at", field::created_at},
  {"credit", field::credit},
  {"currency", field::currency},
  {"customer", field::customer},
  {"entitled", field::entitled},
  {"gateway_refs", field::gateway_refs},
  {"id", field::id},
  {"interval", field::interval},
  {"last_paid", field::last_paid},
  {"open_invoices", field::open_invoices},
  {"pause_reason", field::pause_reason},
  {"payment_method", field::payment_method},
  {"period", field::period},
  {"plan", field::plan},
  {"plan_version", field::plan_version},
  {"quantity", field::quantity},
  {"saga_seq", field::saga_seq},
  {"sagas", field::sagas},
  {"status", field::status},
  {"tenant", field::tenant},
  {"trial_end", field::trial_end},
  {"updated_at", field::updated_at},
  {"version", field::version},
};
constexpr key_field interval_keys[] = {{"count", field::iv_count},
                                       {"unit", field::iv_unit}};
constexpr key_field period_keys[] = {{"end", field::p_end},
                                     {"start", field::p_start}};
constexpr key_field last_paid_keys[] = {
  {"charge_id", field::lp_charge_id},   {"id", field::lp_id},
  {"net", field::lp_net},               {"paid", field::lp_paid},
  {"period_end", field::lp_period_end}, {"period_start", field::lp_period_start},
  {"tax", field::lp_tax},
};
constexpr key_field open_keys[] = {
  {"amount_due", field::oi_amount_due},
  {"attempts", field::oi_attempts},
  {"collecting_saga", field::oi_collecting_saga},
  {"id", field::oi_id},
  {"net", field::oi_net},
  {"period_end", field::oi_period_end},
  {"period_start", field::oi_period_start},
  {"tax", field::oi_tax},
  {"version", field::oi_version},
};

template <std::size_t N>
field lookup(const key_field (&keys)[N], std::string_view k) {
  for (const auto& kf : keys)
    if (kf.key == k)
      return kf.f;
  return field::skip;
}

template <std::size_t N>
bool has_all(const seen_set& seen, const key_field (&keys)[N]) {
  for (const auto& kf : keys)
    if (!seen.test(static_cast<std::size_t>(kf.f)))
      return false;
  return true;
}

/// Fields a state must have (as subscription_from_value's `at` demands).
constexpr field required[] = {
  field::anchor,         field::cancel_at_period_end, field::cancel_reason,
  field::created_at,     field::credit,               field::currency,
  field::customer,       field::entitled,             field::id,
  field::interval,       field::open_invoices,        field::pause_reason,
  field::payment_method, field::period,               field::plan,
  field::plan_version,   field::quantity,             field::saga_seq,
  field::sagas,          field::status,               field::tenant,
  field::updated_at,     field::version,
};

template <class Enum, std::size_t N>
bool enum_of(const std::string& s, const std::array<Enum, N>& all, Enum& out) {
  for (auto e : all)
    if (to_string(e) == s) {
      out = e;
      return true;
    }
  return false;
}

/// The SAX handler. Every callback returns false (ending the parse) at the
/// first thing it does not expect; the caller then takes the DOM path.
class reader {
public:
  explicit reader(bool payload) {
    stack_.reserve(4);
    if (!payload)
      expect_ = field::state; // the document is the state itself
  }

  bool finish(subscription_state& out) {
    if (!state_done_)
      return false;
    for (field f : required)
      if (!top_seen_.test(static_cast<std::size_t>(f)))
        return false;
    if (!enum_of(status_, all_statuses, s_.life.status)
        || !enum_of(cancel_, all_cancel_reasons, s_.life.cancel)
        || !enum_of(pause_, all_pause_reasons, s_.life.pause))
      return false;
    if (!enum_of(unit_, all_interval_units, s_.interval.unit))
      return false;
    out = std::move(s_);
    return true;
  }

  // -- json_sax ---------------------------------------------------------------

  bool null() { return scalar_skipped(); }
  bool boolean(bool v) {
    if (skipping())
      return true;
    const field f = take();
    if (f == field::skip)
      return true;
    if (f == field::cancel_at_period_end)
      s_.life.cancel_at_period_end = v;
    else if (f == field::entitled)
      s_.entitled = v;
    else
      return false;
    return mark(f);
  }
  bool number_integer(json::number_integer_t v) { return integer(v); }
  bool number_unsigned(json::number_unsigned_t v) {
    if (v > static_cast<json::number_unsigned_t>(INT64_MAX))
      return false;
    return integer(static_cast<std::int64_t>(v));
  }
  bool number_float(json::number_float_t, const json::string_t&) {
    return scalar_skipped(); // a float where a field is known: the DOM path
  }
  bool binary(json::binary_t&) { return false; }
  bool string(json::string_t& v) {
    if (skipping())
      return true;
    const field f = take();
    switch (f) {
      case field::skip: return true;
      case field::cancel_reason: cancel_ = std::move(v); break;
      case field::currency: s_.currency = std::move(v); break;
      case field::customer: s_.customer.value = std::move(v); break;
      case field::id: s_.id.value = std::move(v); break;
      case field::pause_reason: pause_ = std::move(v); break;
      case field::payment_method: s_.payment_method = std::move(v); break;
      case field::plan: s_.plan.value = std::move(v); break;
      case field::status: status_ = std::move(v); break;
      case field::tenant: s_.tenant.value = std::move(v); break;
      case field::iv_unit: unit_ = std::move(v); break;
      case field::lp_charge_id: paid_.charge_id = std::move(v); break;
      case field::lp_id: paid_.id.value = std::move(v); break;
      case field::oi_collecting_saga: item_.collecting_saga = std::move(v); break;
      case field::oi_id: item_.id.value = std::move(v); break;
      case field::saga_entry:
        s_.sagas.insert_or_assign(std::move(saga_key_), std::move(v));
        return true;
      case field::ref_entry:
        s_.gateway_refs.push_back(std::move(v));
        return true;
      default: return false;
    }
    return mark(f);
  }

  bool start_object(std::size_t) {
    if (skipping()) {
      ++skip_;
      return true;
    }
    if (stack_.empty()) // the document
      return open(expect_ == field::state ? ctx::top : ctx::payload,
                  field::none);
    const field f = take();
    switch (f) {
      case field::skip: ++skip_; return true;
      case field::state:
        if (state_done_)
          return false; // a second "state": the DOM keeps the last
        return open(ctx::top, field::none);
      case field::interval: return open(ctx::interval, f);
      case field::period: return open(ctx::period, f);
      case field::last_paid:
        paid_ = paid_invoice{};
        return open(ctx::last_paid, f);
      case field::sagas:
        s_.sagas.clear();
        return open(ctx::sagas, f);
      case field::none: // an element of open_invoices (see take)
        if (stack_.back().c != ctx::open_list)
          return false;
        item_ = open_invoice{};
        return open(ctx::open_item, field::none);
      default: return false;
    }
  }

  bool key(json::string_t& k) {
    if (skipping())
      return true;
    switch (stack_.back().c) {
      case ctx::payload:
        expect_ = k == "state" ? field::state : field::skip;
        return true;
      case ctx::top: expect_ = lookup(top_keys, k); return true;
      case ctx::interval: expect_ = lookup(interval_keys, k); return true;
      case ctx::period: expect_ = lookup(period_keys, k); return true;
      case ctx::last_paid: expect_ = lookup(last_paid_keys, k); return true;
      case ctx::open_item: expect_ = lookup(open_keys, k); return true;
      case ctx::sagas:
        saga_key_ = std::move(k);
        expect_ = field::saga_entry;
        return true;
      default: return false;
    }
  }

  bool end_object() {
    if (skipping()) {
      --skip_;
      return true;
    }
    const frame fr = stack_.back();
    stack_.pop_back();
    switch (fr.c) {
      case ctx::payload: return true;
      case ctx::top:
        state_done_ = true;
        return true;
      case ctx::interval:
        if (!has_all(inner_seen_, interval_keys))
          return false;
        return mark(fr.f);
      case ctx::period:
        if (!has_all(inner_seen_, period_keys))
          return false;
        return mark(fr.f);
      case ctx::last_paid:
        if (!has_all(inner_seen_, last_paid_keys))
          return false;
        s_.last_paid = std::move(paid_);
        return mark(fr.f);
      case ctx::open_item:
        if (!has_all(inner_seen_, open_keys))
          return false;
        s_.open_invoices.push_back(std::move(item_));
        return true;
      case ctx::sagas: return mark(fr.f);
      default: return false;
    }
  }

  bool start_array(std::size_t) {
    if (skipping()) {
      ++skip_;
      return true;
    }
    const field f = take();
    if (f == field::skip) {
      ++skip_;
      return true;
    }
    if (f == field::open_invoices) {
      s_.open_invoices.clear();
      return open(ctx::open_list, f);
    }
    if (f == field::gateway_refs) {
      s_.gateway_refs.clear();
      return open(ctx::refs, f);
    }
    return false;
  }

  bool end_array() {
    if (skipping()) {
      --skip_;
      return true;
    }
    const frame fr = stack_.back();
    stack_.pop_back();
    if (fr.c != ctx::open_list && fr.c != ctx::refs)
      return false;
    return mark(fr.f);
  }

  bool parse_error(std::size_t, const std::string&,
                   const nlohmann::detail::exception&) {
    return false;
  }

private:
  struct frame {
    ctx c;
    field f; // the field the container is the value of
  };

  bool skipping() const { return skip_ > 0; }

  /// The field the next value belongs to, consumed.
  field take() {
    if (!stack_.empty()) {
      const ctx c = stack_.back().c;
      if (c == ctx::open_list)
        return field::none; // an element: only objects are taken
      if (c == ctx::refs)
        return field::ref_entry;
    }
    const field f = expect_;
    expect_ = field::none;
    return f;
  }

  bool open(ctx c, field f) {
    if (c == ctx::interval || c == ctx::period || c == ctx::last_paid
        || c == ctx::open_item)
      inner_seen_.reset();
    stack_.push_back(frame{c, f});
    return true;
  }

  bool scalar_skipped() {
    if (skipping())
      return true;
    return take() == field::skip;
  }

  /// Records `f` as read: a member of the state, or of the object in hand.
  bool mark(field f) {
    if (f == field::none)
      return true;
    const auto i = static_cast<std::size_t>(f);
    if (f >= field::iv_count && f <= field::p_start)
      inner_seen_.set(i);
    else if (f >= field::lp_charge_id && f <= field::oi_version)
      inner_seen_.set(i);
    else
      top_seen_.set(i);
    return true;
  }

  bool integer(std::int64_t v) {
    if (skipping())
      return true;
    const field f = take();
    const auto i32 = static_cast<std::int32_t>(v); // as nlohmann's get<int32>
    switch (f) {
      case field::skip: return true;
      case field::anchor: s_.anchor = instant{v}; break;
      case field::created_at: s_.created_at = instant{v}; break;
      case field::credit: s_.credit_minor = v; break;
      case field::plan_version: s_.plan_version = i32; break;
      case field::quantity: s_.quantity = v; break;
      case field::saga_seq: s_.saga_seq = v; break;
      case field::trial_end: s_.trial_end = instant{v}; break;
      case field::updated_at: s_.updated_at = instant{v}; break;
      case field::version: s_.version = v; break;
      case field::iv_count: s_.interval.count = i32; break;
      case field::p_end: s_.period.end = instant{v}; break;
      case field::p_start: s_.period.start = instant{v}; break;
      case field::lp_net: paid_.net_minor = v; break;
      case field::lp_paid: paid_.paid_minor = v; break;
      case field::lp_period_end: paid_.period_end = instant{v}; break;
      case field::lp_period_start: paid_.period_start = instant{v}; break;
      case field::lp_tax: paid_.tax_minor = v; break;
      case field::oi_amount_due: item_.amount_due_minor = v; break;
      case field::oi_attempts: item_.attempts = i32; break;
      case field::oi_net: item_.net_minor = v; break;
      case field::oi_period_end: item_.period_end = instant{v}; break;
      case field::oi_period_start: item_.period_start = instant{v}; break;
      case field::oi_tax: item_.tax_minor = v; break;
      case field::oi_version: item_.version = v; break;
      default: return false;
    }
    return mark(f);
  }

  subscription_state s_;
  std::vector<frame> stack_;
  field expect_ = field::none;
  std::int32_t skip_ = 0;
  bool state_done_ = false;
  seen_set top_seen_;
  seen_set inner_seen_;
  std::string status_, cancel_, pause_, unit_, saga_key_;
  paid_invoice paid_;
  open_invoice item_;
};

/// How far `lex` got with a document.
enum class lexed : std::uint8_t {
  done,     // the whole document, every callback answered true
  refused,  // a callback answered false
  declined, // outside the subset below: nlohmann's parser decides
};

/// A strict lexer for the subset of JSON that to_json writes, driving the
/// same SAX callbacks in the same order as nlohmann's sax_parse would (so
/// `reader` cannot tell them apart). It declines, before any callback for
/// the offending token, whatever it does not handle, valid or not: bytes
/// >= 0x80 (UTF-8 is nlohmann's to validate), \u escapes past ASCII,
/// fractions and exponents, integers that overflow, a leading BOM, and any
/// syntax error.
/// Only space, tab, newline and carriage return are whitespace, as there.
template <class Sax>
lexed lex(std::string_view text, Sax& sax) {
  const char* p = text.data();
  const char* const end = p + text.size();
  std::string buf;
  // Open containers: '{' or '['; and whether a member's value is next.
  std::vector<char> open;
  open.reserve(8);
  auto ws = [&] {
    while (p != end && (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r'))
      ++p;
  };
  // A string at p (after its opening quote) into buf; false: declined.
  auto str = [&]() -> bool {
    buf.clear();
    const char* run = p;
    while (true) {
      if (p == end)
        return false;
      const auto c = static_cast<unsigned char>(*p);
      if (c == '"') {
        buf.append(run, p);
        ++p;
        return true;
      }
      if (c < 0x20 || c >= 0x80)
        return false;
      if (c != '\\') {
        ++p;
        continue;
      }
      buf.append(run, p);
      if (++p == end)
        return false;
      switch (*p) {
        case '"': buf.push_back('"'); break;
        case '\\': buf.push_back('\\'); break;
        case '/': buf.push_back('/'); break;
        case 'b': buf.push_back('\b'); break;
        case 'f': buf.push_back('\f'); break;
        case 'n': buf.push_back('\n'); break;
        case 'r': buf.push_back('\r'); break;
        case 't': buf.push_back('\t'); break;
        case 'u': { // ASCII only (what to_json writes for control bytes)
          if (end - p < 5)
            return false;
          unsigned code = 0;
          for (int i = 1; i <= 4; ++i) {
            const char h = p[i];
            const unsigned d = h >= '0' && h <= '9'   ? unsigned(h - '0')
                               : h >= 'a' && h <= 'f' ? unsigned(h - 'a' + 10)
                               : h >= 'A' && h <= 'F' ? unsigned(h - 'A' + 10)
                                                      : 16u;
            if (d == 16u)
              return false;
            code = code * 16 + d;
          }
          if (code >= 0x80)
            return false; // UTF-8 and surrogates: nlohmann's to decode
          buf.push_back(static_cast<char>(code));
          p += 4;
          break;
        }
        default: return false; // not an escape
      }
      run = ++p;
    }
  };
  // A scalar or the opening of a container; the callback's answer, or
  // nullopt when declined.
  auto value = [&]() -> std::optional<bool> {
    if (p == end)
      return std::nullopt;
    switch (*p) {
      case '{':
        ++p;
        open.push_back('{');
        return sax.start_object(static_cast<std::size_t>(-1));
      case '[':
        ++p;
        open.push_back('[');
        return sax.start_array(static_cast<std::size_t>(-1));
      case '"':
        ++p;
        if (!str())
          return std::nullopt;
        return sax.string(buf);
      case 't':
        if (end - p < 4 || std::string_view{p, 4} != "true")
          return std::nullopt;
        p += 4;
        return sax.boolean(true);
      case 'f':
        if (end - p < 5 || std::string_view{p, 5} != "false")
          return std::nullopt;
        p += 5;
        return sax.boolean(false);
      case 'n':
        if (end - p < 4 || std::string_view{p, 4} != "null")
          return std::nullopt;
        p += 4;
        return sax.null();
      default: break;
    }
    const bool negative = *p == '-';
    const char* digits = negative ? p + 1 : p;
    const char* q = digits;
    while (q != end && *q >= '0' && *q <= '9')
      ++q;
    if (q == digits || (*digits == '0' && q - digits > 1))
      return std::nullopt; // no digits, or a leading zero
    if (q != end && (*q == '.' || *q == 'e' || *q == 'E'))
      return std::nullopt;
    if (negative) {
      std::int64_t v = 0;
      auto [at, ec] = std::from_chars(p, q, v);
      if (ec != std::errc{} || at != q)
        return std::nullopt;
      p = q;
      return sax.number_integer(v);
    }
    std::uint64_t v = 0;
    auto [at, ec] = std::from_chars(p, q, v);
    if (ec != std::errc{} || at != q)
      return std::nullopt;
    p = q;
    return sax.number_unsigned(v);
  };
  ws();
  if (auto r = value(); !r)
    return lexed::declined;
  else if (!*r)
    return lexed::refused;
  // After a value, or after a container opened: what comes next.
  bool just_opened = !open.empty();
  while (!open.empty()) {
    ws();
    if (p == end)
      return lexed::declined;
    const char closer = open.back() == '{' ? '}' : ']';
    if (*p == closer) {
      ++p;
      open.pop_back();
      just_opened = false;
      if (!(closer == '}' ? sax.end_object() : sax.end_array()))
        return lexed::refused;
      continue;
    }
    if (!just_opened) {
      if (*p != ',')
        return lexed::declined;
      ++p;
      ws();
    }
    if (open.back() == '{') {
      if (p == end || *p != '"')
        return lexed::declined;
      ++p;
      if (!str())
        return lexed::declined;
      ws();
      if (p == end || *p != ':')
        return lexed::declined;
      ++p;
      if (!sax.key(buf))
        return lexed::refused;
      ws();
    }
    const std::size_t depth = open.size();
    auto r = value();
    if (!r)
      return lexed::declined;
    if (!*r)
      return lexed::refused;
    just_opened = open.size() > depth;
  }
  ws();
  return p == end ? lexed::done : lexed::declined;
}

bool read(std::string_view text, bool payload, subscription_state& out) {
  {
    reader r{payload};
    switch (lex(text, r)) {
      case lexed::done: return r.finish(out);
      case lexed::refused: return false;
      case lexed::declined: break;
    }
  }
  reader r{payload};
  try {
    if (!json::sax_parse(text.begin(), text.end(), &r))
      return false;
  } catch (const std::exception&) {
    return false;
  }
  return r.finish(out);
}

} // namespace

bool read_state_fast(std::string_view state_json, subscription_state& out) {
  return read(state_json, false, out);
}

bool read_payload_state_fast(std::string_view payload_json,
                             subscription_state& out) {
  return read(payload_json, true, out);
}

} // namespace recur
