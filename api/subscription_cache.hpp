#pragma once
/// A bounded in-memory copy of the subscription read model, kept current by
/// the commits that go through `caching_store`, so that
/// `GET /v1/subscriptions/{id}` is answered without a PostgreSQL round trip.
///
/// Correctness rests on one assumption, stated where recurd builds it
/// (api/main.cpp): recurd is the only writer of its database's
/// subscriptions, and every one of its writes goes through the caching store
/// (the app's and the orchestrator's store are the same caching_store).
/// A subscription's read-model version only grows, so the cache keeps the
/// newest version it has seen per subscription and never goes back to an
/// older one: a reader is never answered an older version than one already
/// answered.

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>

#include "persistence/forwarding_store.hpp"
#include "sagas/store.hpp"

namespace recur::api {

/// What the cache holds for one subscription: the read-model row and, once
/// a GET has rendered it, the JSON body of that very version.
struct cached_subscription {
  std::shared_ptr<const subscription_row> row;
  std::shared_ptr<const std::string> view; // null until rendered
};

/// (tenant, subscription id) → newest known read-model row. At most
/// `max_entries` are held (an arbitrary one is dropped to make room; a
/// dropped one is read from the store again). Thread-safe; sharded locks.
class subscription_cache {
public:
  explicit subscription_cache(std::size_t max_entries = 65'536);
  ~subscription_cache();

  subscription_cache(const subscription_cache&) = delete;
  subscription_cache& operator=(const subscription_cache&) = delete;

  /// The cached row; nullopt when absent or when a failed commit left its
  /// state unknown (the store must be asked).
  std::optional<cached_subscription> find(const tenant_id& t,
                                          const subscription_id& id) const;

  /// A committed upsert of the read model: replaces an entry of an older or
  /// equal version, and any entry a failed commit made unknown.
  void committed(const tenant_id& t, const subscription_row& row);

  /// Taken before a store read that may fill a miss: it changes whenever a
  /// commit (or failed commit) touches the shard of (t, id).
  std::uint64_t fill_token(const tenant_id& t, const subscription_id& id) const;

  /// A row read from the store (filled on a miss), `token` taken before the
  /// read: enters only when no commit touched the shard since the token
  /// (a commit that raced with the read, even one whose entry was evicted
  /// meanwhile, could be newer than the row read), and then only when
  /// nothing is cached, or when an unknown entry's row is at least as new
  /// as the failed commit would have made it. Never replaces a known entry.
  void filled(const tenant_id& t, const subscription_row& row,
              std::uint64_t token);

  /// A commit that would have written `row` failed (its outcome may be
  /// unknown): until a commit or a store read of at least that version, the
  /// store is asked.
  void failed(const tenant_id& t, const subscription_row& row);

  /// Attaches the body rendered from `row` (one `find` returned) if that
  /// very row is still the cached one.
  void set_view(const tenant_id& t,
                const std::shared_ptr<const subscription_row>& row,
                std::shared_ptr<const std::string> view);

  std::size_t size() const;
  std::size_t max_entries() const noexcept { return max_entries_; }

private:
  struct shard;
  shard& shard_for(const std::string& key) const;

  std::size_t max_entries_;
  std::unique_ptr<shard[]> shards_;
};

/// The store recurd gives both the app and the orchestrator: every call
/// goes to `target`; successful commits write their subscription upserts
/// through to `cache`, failed ones mark them unknown, and get_subscription
/// answers from the cache, filling it on a miss.
class caching_store : public forwarding_store {
public:
  caching_store(store& target, subscription_cache& cache)
    : forwarding_store(target), cache_(cache) {}

  result<commit_receipt> commit(const unit_of_work& w) override;
  std::vector<result<commit_receipt>>
  commit_many(std::span<const unit_of_work> ws) override;
  result<subscription_row> get_subscription(const tenant_id& t,
                                            const subscription_id& s) override;

  subscription_cache& cache() const noexcept { return cache_; }

private:
  void observe(const unit_of_work& w, bool ok);

  subscription_cache& cache_;
};

} // namespace recur::api
