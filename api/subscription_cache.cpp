#include "api/subscription_cache.hpp"

#include <algorithm>
#include <functional>
#include <mutex>
#include <unordered_map>

namespace recur::api {

namespace {

// Shards keep GETs on different subscriptions off one lock.
constexpr std::size_t max_shards = 16;

std::string cache_key(const tenant_id& t, const subscription_id& id) {
  std::string key;
  key.reserve(t.value.size() + 1 + id.value.size());
  key += t.value;
  key += '\0'; // ids never hold NUL: no two (tenant, id) pairs share a key
  key += id.value;
  return key;
}

struct entry {
  std::shared_ptr<const subscription_row> row; // null while unknown
  std::shared_ptr<const std::string> view;
  // Unknown (a failed commit): the version the store must at least show.
  std::int64_t floor = 0;
};

} // namespace

struct subscription_cache::shard {
  mutable std::mutex mutex;
  std::unordered_map<std::string, entry> entries;
  std::size_t capacity = 1;
  std::uint64_t writes = 0; // commits and failed commits seen (fill tokens)

  // The entry for key, made empty (no row, floor 0) if there is none.
  // Making one first makes room (bounded memory): drops an arbitrary entry
  // when the shard is full.
  entry& slot(std::string key) {
    if (auto it = entries.find(key); it != entries.end())
      return it->second;
    if (entries.size() >= capacity && !entries.empty())
      entries.erase(entries.begin());
    return entries.emplace(std::move(key), entry{}).first->second;
  }
};

subscription_cache::subscription_cache(std::size_t max_entries)
  : max_entries_(std::max<std::size_t>(1, max_entries)) {
  const std::size_t n = max_entries_ < max_shards ? 1 : max_shards;
  shards_ = std::make_unique<shard[]>(max_shards);
  for (std::size_t i = 0; i < max_shards; ++i)
    shards_[i].capacity = i < n ? max_entries_ / n : 0;
}

subscription_cache::~subscription_cache() = default;

subscription_cache::shard&
subscription_cache::shard_for(const std::string& key) const {
  const std::size_t n = max_entries_ < max_shards ? 1 : max_shards;
  return shards_[std::hash<std::string>{}(key) % n];
}

std::optional<cached_subscription>
subscription_cache::find(const tenant_id& t, const subscription_id& id) const {
  const auto key = cache_key(t, id);
  auto& s = shard_for(key);
  std::lock_guard lock{s.mutex};
  auto it = s.entries.find(key);
  if (it == s.entries.end() || it->second.row == nullptr)
    return std::nullopt;
  return cached_subscription{it->second.row, it->second.view};
}

void subscription_cache::committed(const tenant_id& t,
                                   const subscription_row& row) {
  auto key = cache_key(t, row.id);
  auto fresh = std::make_shared<const subscription_row>(row);
  auto& s = shard_for(key);
  std::lock_guard lock{s.mutex};
  ++s.writes;
  auto& e = s.slot(std::move(key));
  if (e.row != nullptr && e.row->version > row.version)
    return; // an older commit observed late: the newer one stays
  e = entry{std::move(fresh), nullptr, 0};
}

std::uint64_t subscription_cache::fill_token(const tenant_id& t,
                                            const subscription_id& id) const {
  auto& s = shard_for(cache_key(t, id));
  std::lock_guard lock{s.mutex};
  return s.writes;
}

void subscription_cache::filled(const tenant_id& t,
                                const subscription_row& row,
                                std::uint64_t token) {
  auto key = cache_key(t, row.id);
  auto& s = shard_for(key);
  std::lock_guard lock{s.mutex};
  if (s.writes != token)
    return; // a commit raced with the read: the row may be older
  auto& e = s.slot(std::move(key)); // a new one is empty: the read fills it
  if (e.row == nullptr && row.version >= e.floor)
    e = entry{std::make_shared<const subscription_row>(row), nullptr, 0};
}

void subscription_cache::failed(const tenant_id& t,
                                const subscription_row& row) {
  auto key = cache_key(t, row.id);
  auto& s = shard_for(key);
  std::lock_guard lock{s.mutex};
  ++s.writes;
  auto& e = s.slot(std::move(key));
  const std::int64_t known = e.row != nullptr ? e.row->version : e.floor;
  e = entry{nullptr, nullptr, std::max(known, row.version)};
}

void subscription_cache::set_view(
  const tenant_id& t, const std::shared_ptr<const subscription_row>& row,
  std::shared_ptr<const std::string> view) {
  if (row == nullptr)
    return;
  const auto key = cache_key(t, row->id);
  auto& s = shard_for(key);
  std::lock_guard lock{s.mutex};
  auto it = s.entries.find(key);
  if (it != s.entries.end() && it->second.row == row)
    it->second.view = std::move(view);
}

std::size_t subscription_cache::size() const {
  std::size_t n = 0;
  for (std::size_t i = 0; i < max_shards; ++i) {
    std::lock_guard lock{shards_[i].mutex};
    n += shards_[i].entries.size();
  }
  return n;
}

// -- caching_store ------------------------------------------------------------

void caching_store::observe(const unit_of_work& w, bool ok) {
  for (const auto& row : w.subscriptions) {
    if (ok)
      cache_.committed(w.tenant, row);
    else
      cache_.failed(w.tenant, row);
  }
}

result<commit_receipt> caching_store::commit(const unit_of_work& w) {
  auto r = forwarding_store::commit(w);
  observe(w, r.has_value());
  return r;
}

std::vector<result<commit_receipt>>
caching_store::commit_many(std::span<const unit_of_work> ws) {
  auto rs = forwarding_store::commit_many(ws);
  // Results come in the order of the units: a later unit of the same
  // subscription in one batch is the newer one, and is observed last.
  for (std::size_t i = 0; i < ws.size(); ++i)
    observe(ws[i], i < rs.size() && rs[i].has_value());
  return rs;
}

result<subscription_row>
caching_store::get_subscription(const tenant_id& t, const subscription_id& s) {
  if (auto hit = cache_.find(t, s))
    return *hit->row;
  const auto token = cache_.fill_token(t, s);
  auto row = forwarding_store::get_subscription(t, s);
  if (row)
    cache_.filled(t, *row, token);
  return row;
}

} // namespace recur::api
