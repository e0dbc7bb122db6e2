#include "actors/outbox_relay.hpp"

#include <algorithm>
#include <condition_variable>
#include <mutex>
#include <optional>
#include <thread>
#include <unordered_set>
#include <vector>

#include <spdlog/spdlog.h>

namespace recur {

namespace {

constexpr std::size_t batch_max_limit = 10'000; // = the store's mark limit
constexpr std::size_t pass_rounds_limit = 1'000'000;

outgoing_event event_of(const outbox_record& row) {
  const outbox_message& m = row.message;
  return outgoing_event{m.id,      m.key,  m.type,     row.tenant.value,
                        m.subject, m.time, m.data_json};
}

/// The first failure of a round, for its one log line.
struct failure_note {
  const outbox_record* row = nullptr;
  publish_error error;
};

} // namespace

struct outbox_relay::impl {
  store& db;
  event_publisher& log;
  const clock& clk;
  outbox_relay_config cfg;

  // -- the pass (touched only by the thread running rounds) -------------------
  std::int64_t cursor = 0;
  std::unordered_set<std::string> blocked; // keys with a row still pending
  std::size_t pass_rounds = 0;
  std::uint64_t pass_pending = 0;
  std::chrono::milliseconds backoff{0};

  // -- stats ------------------------------------------------------------------
  mutable std::mutex stats_mutex;
  outbox_relay_stats st;

  // -- the thread -------------------------------------------------------------
  std::mutex wake_mutex;
  std::condition_variable wake_cv;
  bool stop_requested = false;
  bool woken = false;
  std::thread thread;

  impl(store& d, event_publisher& l, const clock& c, outbox_relay_config cf)
    : db(d), log(l), clk(c), cfg(std::move(cf)) {}

  void end_pass(bool complete) {
    if (complete) {
      std::lock_guard lock{stats_mutex};
      st.pending = pass_pending;
    }
    cursor = 0;
    blocked.clear();
    pass_rounds = 0;
    pass_pending = 0;
  }

  outbox_round round() {
    outbox_round r;
    if (pass_rounds >= cfg.pass_rounds_max && !blocked.empty())
      end_pass(false);
    ++pass_rounds;
    auto rows = db.fetch_unpublished(cursor, cfg.batch_max);
    if (!rows) {
      spdlog::warn("event=outbox_fetch_failed relay={} after={} error={} "
                   "detail=\"{}\"",
                   cfg.name, cursor, to_string(rows.code()),
                   rows.error().detail);
      r.store_error = true;
      count(r);
      end_pass(false);
      return r;
    }
    r.fetched = rows->size();
    publish(*rows, r);
    if (!rows->empty())
      cursor = rows->back().position;
    pass_pending += r.failed + r.held;
    count(r);
    if (r.store_error) {
      end_pass(false); // start over from what the store still holds
    } else if (rows->empty()) {
      // Only an empty fetch proves the end: stores clamp `limit`, so a short
      // batch may not be the last one.
      r.pass_ended = true;
      end_pass(true);
    }
    return r;
  }

  /// Publishes the rows whose key is not blocked and marks what was acked.
  void publish(const std::vector<outbox_record>& rows, outbox_round& r) {
    std::vector<outgoing_event> events;
    std::vector<const outbox_record*> sent;
    events.reserve(rows.size());
    sent.reserve(rows.size());
    for (const auto& row : rows) {
      if (blocked.contains(row.message.key)) {
        ++r.held;
        continue;
      }
      events.push_back(event_of(row));
      sent.push_back(&row);
    }
    if (events.empty())
      return;
    const auto reports = log.publish(events);
    RECUR_ASSERT(reports.size() == events.size());
    std::vector<std::int64_t> acked;
    std::optional<failure_note> first_failure;
    for (std::size_t i = 0; i < reports.size(); ++i) {
      const outbox_record& row = *sent[i];
      if (blocked.contains(row.message.key)) {
        // An earlier row of this key failed in this batch: even if the log
        // took this one, it stays unpublished and goes out again after the
        // earlier one, so that first occurrences keep the key's order.
        ++r.held;
      } else if (reports[i].ok()) {
        acked.push_back(row.position);
      } else {
        blocked.insert(row.message.key);
        ++r.failed;
        if (!first_failure)
          first_failure = failure_note{&row, *reports[i].error};
      }
    }
    if (first_failure)
      log_failure(r, *first_failure);
    mark(acked, r);
  }

  void mark(const std::vector<std::int64_t>& acked, outbox_round& r) {
    if (acked.empty())
      return;
    if (auto s = db.mark_published(acked, clk.now()); !s) {
      spdlog::warn("event=outbox_mark_failed relay={} rows={} error={} "
                   "detail=\"{}\"",
                   cfg.name, acked.size(), to_string(s.code()),
                   s.error().detail);
      r.store_error = true;
      std::lock_guard lock{stats_mutex};
      st.unmarked += acked.size();
      return;
    }
    r.published = acked.size();
    std::lock_guard lock{stats_mutex};
    st.last_published_position = std::max(st.last_published_position,
                                          acked.back());
    spdlog::debug("event=outbox_published relay={} rows={} last_position={}",
                  cfg.name, acked.size(), acked.back());
  }

  void log_failure(const outbox_round& r, const failure_note& f) {
    spdlog::warn("event=outbox_publish_failed relay={} failed={} held={} "
                 "tenant={} subscription={} position={} event_id={} error={} "
                 "retriable={} detail=\"{}\"",
                 cfg.name, r.failed, r.held, f.row->tenant.value,
                 f.row->message.key, f.row->position, f.row->message.id,
                 to_string(f.error.code), is_retriable(f.error.code),
                 f.error.detail);
  }

  void count(const outbox_round& r) {
    std::lock_guard lock{stats_mutex};
    ++st.rounds;
    st.published += r.published;
    st.failures += r.failed;
    st.store_errors += r.store_error ? 1 : 0;
  }

  /// How long to wait after round `r`.
  std::chrono::milliseconds pause_after(const outbox_round& r) {
    const bool stuck = r.store_error || (r.failed > 0 && r.published == 0);
    if (stuck) {
      backoff = backoff.count() == 0 ? cfg.backoff_min
                                     : std::min(cfg.backoff_max, backoff * 2);
      return backoff;
    }
    backoff = std::chrono::milliseconds{0};
    return r.pass_ended ? cfg.poll_interval : std::chrono::milliseconds{0};
  }

  void loop() {
    spdlog::info("event=outbox_relay_started relay={} batch_max={}", cfg.name,
                 cfg.batch_max);
    for (;;) {
      const auto pause = pause_after(round());
      std::unique_lock lock{wake_mutex};
      wake_cv.wait_for(lock, pause, [&] { return stop_requested || woken; });
      woken = false;
      if (stop_requested)
        break;
    }
    spdlog::info("event=outbox_relay_stopped relay={}", cfg.name);
  }
};

outbox_relay::outbox_relay(store& db, event_publisher& log, const clock& clk,
                           outbox_relay_config config) {
  RECUR_ASSERT(validate(config).has_value());
  impl_ = std::make_unique<impl>(db, log, clk, std::move(config));
}

outbox_relay::~outbox_relay() {
  stop();
}

status outbox_relay::validate(const outbox_relay_config& c) {
  auto bad = [](const std::string& what) {
    return make_error(errc::invalid_argument, "outbox relay " + what);
  };
  if (c.batch_max == 0 || c.batch_max > batch_max_limit)
    return bad("batch_max must be 1.." + std::to_string(batch_max_limit));
  if (c.poll_interval.count() < 1)
    return bad("poll_interval must be at least 1 ms");
  if (c.backoff_min.count() < 1 || c.backoff_max < c.backoff_min)
    return bad("backoff needs 1 ms <= backoff_min <= backoff_max");
  if (c.pass_rounds_max == 0 || c.pass_rounds_max > pass_rounds_limit)
    return bad("pass_rounds_max must be 1.."
               + std::to_string(pass_rounds_limit));
  return {};
}

void outbox_relay::start() {
  if (impl_->thread.joinable())
    return;
  {
    std::lock_guard lock{impl_->wake_mutex};
    impl_->stop_requested = false;
    impl_->woken = false;
  }
  {
    std::lock_guard lock{impl_->stats_mutex};
    impl_->st.running = true;
  }
  impl_->thread = std::thread{[this] { impl_->loop(); }};
}

void outbox_relay::stop() {
  if (!impl_->thread.joinable())
    return;
  {
    std::lock_guard lock{impl_->wake_mutex};
    impl_->stop_requested = true;
  }
  impl_->wake_cv.notify_all();
  impl_->thread.join();
  std::lock_guard lock{impl_->stats_mutex};
  impl_->st.running = false;
}

void outbox_relay::wake() {
  {
    std::lock_guard lock{impl_->wake_mutex};
    impl_->woken = true;
  }
  impl_->wake_cv.notify_all();
}

outbox_round outbox_relay::run_once() {
  RECUR_ASSERT(!impl_->thread.joinable());
  return impl_->round();
}

outbox_relay_stats outbox_relay::stats() const {
  std::lock_guard lock{impl_->stats_mutex};
  return impl_->st;
}

} // namespace recur
