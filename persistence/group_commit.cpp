#include "persistence/group_commit.hpp"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <exception>
#include <functional>
#include <mutex>
#include <span>
#include <string>
#include <thread>
#include <utility>
#include <vector>

namespace recur {

namespace {

using steady = std::chrono::steady_clock;

// A queued unit and what the writer must remember about it.
struct pending {
  unit_of_work work;
  group_commit_writer::completion done;
  std::int32_t attempts = 0; // commit_many calls that carried it so far
};

// The units of one commit_many call, split so that `works` is contiguous.
struct batch {
  std::vector<unit_of_work> works;
  std::vector<pending> meta; // meta[i].work is moved out into works[i]

  void clear() {
    works.clear();
    meta.clear();
  }
};

void bump_max(std::atomic<std::uint64_t>& target, std::uint64_t value) {
  auto seen = target.load(std::memory_order_relaxed);
  while (
    seen < value
    && !target.compare_exchange_weak(seen, value, std::memory_order_relaxed)) {
  }
}

// The first subscription a unit names, where units of a subscription name it.
const std::string* subscription_named_by(const unit_of_work& w) {
  if (!w.events.empty())
    return &w.events.front().subscription.value;
  if (!w.subscriptions.empty())
    return &w.subscriptions.front().id.value;
  if (!w.new_sagas.empty())
    return &w.new_sagas.front().subscription.value;
  if (!w.new_invoices.empty())
    return &w.new_invoices.front().subscription.value;
  if (!w.timers_to_schedule.empty())
    return &w.timers_to_schedule.front().owner;
  if (!w.timers_to_cancel.empty())
    return &w.timers_to_cancel.front().owner;
  return nullptr;
}

} // namespace

std::string ordering_key_of(const unit_of_work& work) {
  std::string key = work.tenant.value;
  key.push_back('\0'); // no tenant id contains it: keys cannot collide
  if (const auto* sub = subscription_named_by(work))
    key += *sub;
  return key;
}

struct group_commit_writer::impl {
  // One queue and its writer thread.
  struct lane {
    std::mutex mutex; // guards queue, stopping, gather_target
    std::condition_variable wake;
    std::deque<pending> queue;
    bool stopping = false;
    // How many units take() waits for: the size of the previous batch. It
    // starts at 1 (nobody waits) and grows once units pile up during commits.
    std::size_t gather_target = 1;
    std::thread thread;
  };

  impl(store& target, group_commit_config cfg)
    : target_(target), cfg_(cfg), lanes_(cfg.lanes) {
    RECUR_ASSERT(cfg_.max_batch_units > 0);
    RECUR_ASSERT(cfg_.lanes >= 1 && cfg_.lanes <= group_commit_lanes_max);
    RECUR_ASSERT(cfg_.queue_limit_units > 0);
    RECUR_ASSERT(cfg_.max_wait_us >= 0);
    RECUR_ASSERT(cfg_.unavailable_attempts_max >= 1);
    RECUR_ASSERT(cfg_.retry_delay_ms_min >= 0);
    RECUR_ASSERT(cfg_.retry_delay_ms_max >= cfg_.retry_delay_ms_min);
    for (auto& l : lanes_)
      l.thread = std::thread{[this, &l] { run(l); }};
  }

  // -- submitting -------------------------------------------------------------

  status submit(unit_of_work work, completion done) {
    RECUR_ASSERT(done != nullptr);
    lane& l = lane_of(work);
    std::size_t size = 0;
    std::size_t target = 0;
    {
      std::lock_guard lock{l.mutex};
      if (l.stopping)
        return refuse("writer stopped");
      // Counted across lanes, so that the limit holds for the whole writer.
      if (queued_.fetch_add(1, std::memory_order_relaxed)
          >= cfg_.queue_limit_units) {
        queued_.fetch_sub(1, std::memory_order_relaxed);
        return refuse("writer overloaded");
      }
      l.queue.push_back(pending{std::move(work), std::move(done), 0});
      size = l.queue.size();
      target = l.gather_target;
    }
    // The writer sleeps until the queue stops being empty, and while it
    // gathers a batch, until it has its target: only those moments wake it.
    if (size == 1 || size == target)
      l.wake.notify_one();
    return {};
  }

  lane& lane_of(const unit_of_work& work) {
    if (lanes_.size() == 1)
      return lanes_.front();
    const auto h = std::hash<std::string>{}(ordering_key_of(work));
    return lanes_[h % lanes_.size()];
  }

  status refuse(const char* why) {
    rejected_.fetch_add(1, std::memory_order_relaxed);
    return make_error(errc::unavailable, why);
  }

  // -- lifetime ---------------------------------------------------------------

  void stop() {
    std::lock_guard join_lock{join_mutex_};
    for (auto& l : lanes_) {
      // A completion that stops its own writer would wait for itself forever.
      RECUR_ASSERT(std::this_thread::get_id() != l.thread.get_id());
      {
        std::lock_guard lock{l.mutex};
        l.stopping = true;
      }
      l.wake.notify_one();
    }
    for (auto& l : lanes_)
      if (l.thread.joinable())
        l.thread.join();
  }

  // -- the writer threads -----------------------------------------------------

  void run(lane& l) {
    batch current;
    std::vector<pending> retry;
    while (take(l, current)) {
      commit(current, retry);
      if (!retry.empty())
        requeue_after_backoff(l, retry);
      current.clear();
    }
  }

  // Waits for work; then, for at most max_wait_us, for as many units as the
  // previous batch carried (the callers that were active a moment ago are
  // about to submit again); moves up to max_batch_units into `out`. False
  // when stopping and nothing is left.
  bool take(lane& l, batch& out) {
    std::unique_lock lock{l.mutex};
    l.wake.wait(lock, [&l] { return !l.queue.empty() || l.stopping; });
    if (l.queue.empty())
      return false;
    if (cfg_.max_wait_us > 0 && l.queue.size() < l.gather_target
        && !l.stopping) {
      const auto deadline = steady::now()
                            + std::chrono::microseconds{cfg_.max_wait_us};
      l.wake.wait_until(lock, deadline, [&l] {
        return l.queue.size() >= l.gather_target || l.stopping;
      });
    }
    const auto n = std::min(l.queue.size(), cfg_.max_batch_units);
    l.gather_target = n;
    out.works.reserve(n);
    out.meta.reserve(n);
    for (std::size_t i = 0; i < n; ++i) {
      out.works.push_back(std::move(l.queue.front().work));
      out.meta.push_back(std::move(l.queue.front()));
      l.queue.pop_front();
    }
    queued_.fetch_sub(n, std::memory_order_relaxed);
    return true;
  }

  // Commits `b`, completes every unit that has its final result and moves the
  // ones to try again into `retry`.
  void commit(batch& b, std::vector<pending>& retry) {
    const auto begin = steady::now();
    auto results = commit_many(b.works);
    commit_us_.fetch_add(
      static_cast<std::uint64_t>(
        std::chrono::duration_cast<std::chrono::microseconds>(steady::now()
                                                              - begin)
          .count()),
      std::memory_order_relaxed);
    RECUR_ASSERT(results.size() == b.works.size());
    batches_.fetch_add(1, std::memory_order_relaxed);
    units_.fetch_add(b.works.size(), std::memory_order_relaxed);
    bump_max(largest_batch_units_, b.works.size());
    for (std::size_t i = 0; i < results.size(); ++i) {
      pending& p = b.meta[i];
      ++p.attempts;
      if (retryable(results[i]) && p.attempts < cfg_.unavailable_attempts_max) {
        p.work = std::move(b.works[i]);
        retry.push_back(std::move(p));
        continue;
      }
      complete(p, std::move(results[i]));
    }
  }

  // Only a unit the store did not write may run again; one whose commit
  // outcome is unknown goes back to its caller, who must re-read first.
  static bool retryable(const result<commit_receipt>& r) {
    return !r && r.code() == errc::unavailable
           && !is_commit_outcome_unknown(r.error());
  }

  // The port returns errors as values; an exception is a bug in the store, and
  // the callers must still hear about their units.
  std::vector<result<commit_receipt>>
  commit_many(std::span<const unit_of_work> works) {
    try {
      return target_.commit_many(works);
    } catch (const std::exception& e) {
      return failed_all(works.size(), std::string{"store threw: "} + e.what());
    } catch (...) {
      return failed_all(works.size(), "store threw");
    }
  }

  static std::vector<result<commit_receipt>>
  failed_all(std::size_t n, const std::string& why) {
    std::vector<result<commit_receipt>> out;
    out.reserve(n);
    for (std::size_t i = 0; i < n; ++i)
      out.emplace_back(make_error(errc::storage_error, why));
    return out;
  }

  void complete(pending& p, result<commit_receipt> r) {
    if (!r)
      failed_.fetch_add(1, std::memory_order_relaxed);
    acknowledged_.fetch_add(1, std::memory_order_relaxed);
    p.done(std::move(r));
  }

  // Units that met `unavailable` go back to the head of their lane's queue,
  // in their order and ahead of newer ones, after a pause that grows per
  // attempt.
  void requeue_after_backoff(lane& l, std::vector<pending>& retry) {
    const auto attempts = retry.front().attempts;
    std::this_thread::sleep_for(retry_delay(attempts));
    retried_.fetch_add(retry.size(), std::memory_order_relaxed);
    {
      std::lock_guard lock{l.mutex};
      queued_.fetch_add(retry.size(), std::memory_order_relaxed);
      for (auto it = retry.rbegin(); it != retry.rend(); ++it)
        l.queue.push_front(std::move(*it));
    }
    retry.clear();
  }

  std::chrono::milliseconds retry_delay(std::int32_t attempts) const {
    auto delay_ms = cfg_.retry_delay_ms_min;
    for (std::int32_t i = 1; i < attempts && delay_ms < cfg_.retry_delay_ms_max;
         ++i)
      delay_ms *= 2;
    return std::chrono::milliseconds{
      std::min(delay_ms, cfg_.retry_delay_ms_max)};
  }

  // -- observers --------------------------------------------------------------

  group_commit_stats stats() const {
    constexpr auto relaxed = std::memory_order_relaxed;
    return group_commit_stats{batches_.load(relaxed),
                              units_.load(relaxed),
                              acknowledged_.load(relaxed),
                              failed_.load(relaxed),
                              retried_.load(relaxed),
                              rejected_.load(relaxed),
                              largest_batch_units_.load(relaxed),
                              commit_us_.load(relaxed)};
  }

  std::size_t queued_units() const {
    return queued_.load(std::memory_order_relaxed);
  }

  // -- state ------------------------------------------------------------------

  store& target_;
  const group_commit_config cfg_;
  std::vector<lane> lanes_; // never resized: threads hold references

  // Units in every lane's queue (taken into a batch: no longer counted).
  std::atomic<std::size_t> queued_{0};

  std::mutex join_mutex_; // serialises concurrent stop() calls

  std::atomic<std::uint64_t> batches_{0};
  std::atomic<std::uint64_t> units_{0};
  std::atomic<std::uint64_t> acknowledged_{0};
  std::atomic<std::uint64_t> failed_{0};
  std::atomic<std::uint64_t> retried_{0};
  std::atomic<std::uint64_t> rejected_{0};
  std::atomic<std::uint64_t> largest_batch_units_{0};
  std::atomic<std::uint64_t> commit_us_{0};
};

// -- group_commit_writer ------------------------------------------------------

group_commit_writer::group_commit_writer(store& target, group_commit_config cfg)
  : impl_(std::make_unique<impl>(target, cfg)) {}

group_commit_writer::~group_commit_writer() {
  stop();
}

status group_commit_writer::submit(unit_of_work work, completion done) {
  return impl_->submit(std::move(work), std::move(done));
}

std::future<result<commit_receipt>>
group_commit_writer::submit(unit_of_work work) {
  // std::function needs a copyable callable; the promise is move-only.
  auto promise = std::make_shared<std::promise<result<commit_receipt>>>();
  auto future = promise->get_future();
  auto accepted = impl_->submit(std::move(work),
                                [promise](result<commit_receipt> r) {
                                  promise->set_value(std::move(r));
                                });
  if (!accepted)
    promise->set_value(accepted.error());
  return future;
}

void group_commit_writer::stop() {
  impl_->stop();
}

group_commit_stats group_commit_writer::stats() const {
  return impl_->stats();
}

std::size_t group_commit_writer::queued_units() const {
  return impl_->queued_units();
}

const group_commit_config& group_commit_writer::config() const noexcept {
  return impl_->cfg_;
}

} // namespace recur
