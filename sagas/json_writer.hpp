#pragma once
/// A minimal streaming JSON writer for hot paths: compact output that is
/// byte-for-byte what nlohmann::json::dump() prints for the same document
/// (callers write object keys in sorted order, as nlohmann's std::map does).

#include <charconv>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace recur {

class json_writer {
public:
  explicit json_writer(std::string& out) : out_{out} {}

  json_writer& begin_object() { return open('{'); }
  json_writer& end_object() { return close('}'); }
  json_writer& begin_array() { return open('['); }
  json_writer& end_array() { return close(']'); }

  /// An object member's name; the value follows with one of the calls below.
  json_writer& key(std::string_view k) {
    separate();
    put_string(k);
    out_.push_back(':');
    after_key_ = true;
    return *this;
  }

  /// A member name written in the source (a string literal): copied as it
  /// is, so it must need no escaping (the identifiers of our documents).
  template <std::size_t N>
  json_writer& key(const char (&k)[N]) {
    separate();
    out_.push_back('"');
    out_.append(k, N - 1);
    out_.append("\":", 2);
    after_key_ = true;
    return *this;
  }
  template <std::size_t N, class V>
  json_writer& member(const char (&k)[N], const V& v) {
    return key(k).value(v);
  }
  json_writer& value(std::string_view v) {
    separate();
    put_string(v);
    return *this;
  }
  json_writer& value(const char* v) { return value(std::string_view{v}); }
  json_writer& value(const std::string& v) { return value(std::string_view{v}); }
  json_writer& value(bool v) {
    separate();
    out_.append(v ? "true" : "false");
    return *this;
  }
  json_writer& value(std::int64_t v) {
    separate();
    char buf[24];
    auto r = std::to_chars(buf, buf + sizeof buf, v);
    out_.append(buf, r.ptr);
    return *this;
  }
  json_writer& value(std::int32_t v) { return value(std::int64_t{v}); }

  /// Text that is already a JSON value (not checked).
  json_writer& raw(std::string_view json_text) {
    separate();
    out_.append(json_text);
    return *this;
  }

  json_writer& member(std::string_view k, std::string_view v) { return key(k).value(v); }
  json_writer& member(std::string_view k, const char* v) { return key(k).value(v); }
  json_writer& member(std::string_view k, const std::string& v) { return key(k).value(v); }
  json_writer& member(std::string_view k, bool v) { return key(k).value(v); }
  json_writer& member(std::string_view k, std::int64_t v) { return key(k).value(v); }
  json_writer& member(std::string_view k, std::int32_t v) { return key(k).value(v); }

private:
  json_writer& open(char c) {
    separate();
    out_.push_back(c);
    first_ = true;
    return *this;
  }
  json_writer& close(char c) {
    out_.push_back(c);
    first_ = false;
    return *this;
  }
  void separate() {
    if (after_key_) {
      after_key_ = false;
      return;
    }
    if (!first_)
      out_.push_back(',');
    first_ = false;
  }
  /// nlohmann's escaping (ensure_ascii off): \" \\ \b \f \n \r \t, other
  /// control characters as \u00xx, everything else as is.
  void put_string(std::string_view s) {
    out_.push_back('"');
    std::size_t plain = 0; // start of the run of characters copied as is
    for (std::size_t i = 0; i < s.size(); ++i) {
      const auto c = static_cast<unsigned char>(s[i]);
      if (c >= 0x20 && c != '"' && c != '\\')
        continue;
      out_.append(s.data() + plain, i - plain);
      plain = i + 1;
      switch (c) {
        case '"': out_.append("\\\""); break;
        case '\\': out_.append("\\\\"); break;
        case '\b': out_.append("\\b"); break;
        case '\f': out_.append("\\f"); break;
        case '\n': out_.append("\\n"); break;
        case '\r': out_.append("\\r"); break;
        case '\t': out_.append("\\t"); break;
        default: {
          static constexpr char hex[] = "0123456789abcdef";
          out_.append("\\u00");
          out_.push_back(hex[c >> 4]);
          out_.push_back(hex[c & 0xF]);
        }
      }
    }
    out_.append(s.data() + plain, s.size() - plain);
    out_.push_back('"');
  }

  std::string& out_;
  bool first_ = true;
  bool after_key_ = false;
};

} // namespace recur
