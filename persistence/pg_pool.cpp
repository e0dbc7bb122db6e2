#include "persistence/pg_detail.hpp"

#include <algorithm>

#include "sagas/store.hpp"

namespace recur::pg {

namespace {

const statement set_tenant_stmt{"recur_set_tenant",
                                "SELECT set_config('app.tenant_id', $1, true)"};

bool starts_with(std::string_view s, std::string_view prefix) {
  return s.substr(0, prefix.size()) == prefix;
}

// SQLSTATEs after which the session is gone or going: admin_shutdown,
// crash_shutdown, cannot_connect_now, too_many_connections, and class 08
// (connection exception).
bool connection_lost(std::string_view state) {
  return starts_with(state, "08") || state == "57P01" || state == "57P02"
         || state == "57P03" || state == "53300";
}

fault from_sqlstate(std::string_view state, const std::string& message,
                    const op_context& ctx) {
  const auto detail = std::string{ctx.what} + ": " + one_line(message);
  if (state == "40001" || state == "40P01")
    return {fault_kind::retry, make_error(errc::unavailable, detail)};
  if (connection_lost(state))
    return {fault_kind::reconnect, make_error(errc::unavailable, detail)};
  if (state == "23505")
    return {fault_kind::fatal, make_error(ctx.on_unique, detail)};
  if (state == "23503")
    return {fault_kind::fatal, make_error(ctx.on_foreign_key, detail)};
  if (starts_with(state, "23"))
    return {fault_kind::fatal, make_error(errc::constraint_violation, detail)};
  return {fault_kind::fatal, make_error(errc::storage_error, detail)};
}

} // namespace

void set_tenant(connection& c, pqxx::transaction_base& tx,
                std::string_view tenant) {
  exec(c, tx, set_tenant_stmt, std::string{tenant});
}

// -- tenant_transaction -------------------------------------------------------

tenant_transaction::tenant_transaction(connection& c, std::string_view tenant)
  : c_(c), nt_(c.conn) {
  // esc() and appends, not quote(): g++ 12 at -O3 reports a false -Wrestrict
  // inside pqxx's quote() (its "'" + esc(...) + "'"; GCC bug 105329), which
  // -Werror turns into a failed Release build (scripts/run.sh).
  std::string sql = "BEGIN; SELECT set_config('app.tenant_id', '";
  sql += c.conn.esc(std::string{tenant});
  sql += "', true)";
  nt_.exec(sql);
}

tenant_transaction::~tenant_transaction() {
  if (!open_ || !c_.conn.is_open())
    return;
  try {
    nt_.exec("ROLLBACK");
  } catch (const std::exception&) {
    // The session is gone or unusable: the pool's next fault drops it.
  }
}

void tenant_transaction::switch_to(std::string_view tenant) {
  set_tenant(c_, nt_, tenant);
}

void tenant_transaction::commit() {
  open_ = false; // after COMMIT, failed or not, no transaction is left
  try {
    nt_.exec("COMMIT");
  } catch (const pqxx::broken_connection& e) {
    throw pqxx::in_doubt_error{e.what()};
  }
}

// -- array_builder ------------------------------------------------------------

array_builder::array_builder(std::size_t reserve_bytes) {
  out_.reserve(reserve_bytes + 2);
  out_.push_back('{');
}

void array_builder::separate() {
  if (!first_)
    out_.push_back(',');
  first_ = false;
}

namespace {

// The characters a double-quoted array element escapes with a backslash.
bool escaped_in_array(char c) {
  return c == '"' || c == '\\';
}

} // namespace

array_builder& array_builder::add(std::string_view text) {
  separate();
  // Double-quoted elements need only " and \ escaped; anything else,
  // including commas, braces and newlines, is literal inside the quotes.
  // JSON is full of quotes: count them first, then write the element once
  // into its exact room (no append per run between quotes).
  std::size_t specials = 0;
  for (const char c : text)
    specials += static_cast<std::size_t>(escaped_in_array(c));
  const std::size_t at = out_.size();
  out_.resize(at + text.size() + specials + 2);
  char* p = out_.data() + at;
  *p++ = '"';
  if (specials == 0) {
    p = std::copy(text.begin(), text.end(), p);
  } else {
    for (const char c : text) {
      if (escaped_in_array(c))
        *p++ = '\\';
      *p++ = c;
    }
  }
  *p = '"';
  return *this;
}

array_builder& array_builder::add(std::int64_t n) {
  separate();
  out_ += std::to_string(n);
  return *this;
}

std::string array_builder::take() {
  out_.push_back('}');
  return std::move(out_);
}

// -- errors -------------------------------------------------------------------

std::string one_line(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (const char c : text) {
    const bool space = c == '\n' || c == '\r' || c == '\t' || c == ' ';
    if (!space)
      out.push_back(c);
    else if (!out.empty() && out.back() != ' ')
      out.push_back(' ');
  }
  while (!out.empty() && out.back() == ' ')
    out.pop_back();
  return out;
}

fault classify(const std::exception& e, const op_context& ctx,
               bool connection_open) {
  if (const auto* typed = dynamic_cast<const typed_failure*>(&e))
    return {fault_kind::fatal, typed->err};
  const auto detail = std::string{ctx.what} + ": " + one_line(e.what());
  // The commit may or may not have happened: running it again could apply
  // it twice, so the caller hears `unavailable` and must re-read.
  if (dynamic_cast<const pqxx::in_doubt_error*>(&e) != nullptr)
    return {fault_kind::fatal,
            make_error(errc::unavailable,
                       std::string{commit_outcome_unknown} + ": " + detail)};
  if (dynamic_cast<const pqxx::broken_connection*>(&e) != nullptr)
    return {fault_kind::reconnect, make_error(errc::unavailable, detail)};
  if (const auto* sql = dynamic_cast<const pqxx::sql_error*>(&e)) {
    auto f = from_sqlstate(sql->sqlstate(), e.what(), ctx);
    if (f.kind == fault_kind::fatal && !connection_open)
      return {fault_kind::reconnect, make_error(errc::unavailable, detail)};
    return f;
  }
  if (dynamic_cast<const pqxx::transaction_rollback*>(&e) != nullptr)
    return {fault_kind::retry, make_error(errc::unavailable, detail)};
  if (!connection_open)
    return {fault_kind::reconnect, make_error(errc::unavailable, detail)};
  return {fault_kind::fatal, make_error(errc::storage_error, detail)};
}

// -- retry_policy -------------------------------------------------------------

std::chrono::milliseconds retry_policy::backoff(std::int32_t attempt) const {
  auto delay = backoff_min;
  for (std::int32_t i = 0; i < attempt && delay < backoff_max; ++i)
    delay *= 2;
  return std::min(delay, backoff_max);
}

// -- pool ---------------------------------------------------------------------

pool::pool(std::string conninfo, std::size_t size,
           std::chrono::milliseconds borrow_timeout)
  : conninfo_(std::move(conninfo)), borrow_timeout_(borrow_timeout) {
  idle_.resize(size); // every slot starts undialled
}

pool::~pool() = default;

result<pool::lease> pool::borrow() {
  std::unique_lock<std::mutex> guard{mutex_};
  if (!freed_.wait_for(guard, borrow_timeout_, [&] { return !idle_.empty(); }))
    return make_error(errc::unavailable,
                      "no free database connection within "
                        + std::to_string(borrow_timeout_.count()) + " ms");
  auto c = std::move(idle_.back());
  idle_.pop_back();
  return lease{*this, std::move(c)};
}

void pool::give_back(std::unique_ptr<connection> c) {
  {
    std::lock_guard<std::mutex> guard{mutex_};
    idle_.push_back(std::move(c));
  }
  freed_.notify_one();
}

pool::lease::~lease() {
  if (owner_ != nullptr)
    owner_->give_back(std::move(conn_));
}

connection& pool::lease::get() {
  if (!conn_)
    conn_ = std::make_unique<connection>(owner_->conninfo_);
  return *conn_;
}

bool pool::lease::is_open() const {
  return conn_ && conn_->conn.is_open();
}

} // namespace recur::pg
