#include "actors/store_writer_impl.hpp"

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <thread>
#include <unordered_map>
#include <utility>
#include <vector>

#include <caf/all.hpp>

namespace recur {

// -- commit_reply -------------------------------------------------------------

commit_reply commit_reply::from(result<commit_receipt> r) {
  commit_reply out;
  if (r)
    out.receipt = std::move(r).value();
  else
    out.error = r.error();
  return out;
}

result<commit_receipt> commit_reply::to_result() const {
  if (receipt)
    return *receipt;
  RECUR_ASSERT(error.has_value());
  return *error;
}

// -- the actor ----------------------------------------------------------------

namespace {

/// Internal: a group-commit completion handing a unit's result back to the
/// actor: (commit_done_atom, request number, unit index, reply).
using commit_done_atom = caf::atom_constant<caf::atom("commitdone")>;

/// The writer whose thread this is; set by that writer's completions (the
/// writer thread runs nothing else of ours), null on every other thread.
thread_local const group_commit_writer* t_writer_of_this_thread = nullptr;

/// Destroys a group_commit_writer, whose destructor stops and joins its
/// thread. If the actor's last reference was dropped inside one of the
/// writer's own completions, the actor is torn down on the writer's thread,
/// which cannot join itself: then a helper thread stops and frees it.
struct writer_deleter {
  void operator()(group_commit_writer* w) const {
    if (w != nullptr && t_writer_of_this_thread == w) {
      std::thread([w] { delete w; }).detach();
      return;
    }
    delete w;
  }
};

/// A request waiting for the writer: one unit (commit) or several
/// (commit_many). A reply slot with neither receipt nor error is unanswered.
struct pending_request {
  caf::response_promise promise;
  std::vector<commit_reply> replies;
  std::size_t outstanding = 0;
  bool many = false;
};

bool answered(const commit_reply& r) {
  return r.receipt.has_value() || r.error.has_value();
}

struct store_writer_state {
  store* st = nullptr;
  store_writer_config cfg;
  std::unique_ptr<group_commit_writer, writer_deleter> writer;
  std::unordered_map<std::uint64_t, pending_request> pending;
  std::uint64_t next_request_no = 1;
  store_writer_stats stats;

  static inline const char* name = "recur.store_writer";

  store_writer_state() = default;
  store_writer_state(const store_writer_state&) = delete;
  store_writer_state& operator=(const store_writer_state&) = delete;

  /// Runs when the actor terminates. Stopping the writer commits what it
  /// still holds, but those answers were headed for this actor's mailbox and
  /// are lost with it; so every unit still in flight is answered "outcome
  /// unknown": it may be stored, and its caller must re-read.
  ~store_writer_state() {
    writer.reset();
    for (auto& [no, p] : pending) {
      for (commit_reply& r : p.replies) {
        if (!answered(r))
          r.error = make_error(errc::unavailable,
                               std::string{commit_outcome_unknown}
                                 + ": the store writer stopped");
      }
      if (p.many)
        p.promise.deliver(std::move(p.replies));
      else
        p.promise.deliver(std::move(p.replies.front()));
    }
  }

  void count(const commit_reply& r) {
    if (r.ok())
      ++stats.committed;
    else
      ++stats.failed;
  }
};

using store_writer_actor = caf::stateful_actor<store_writer_state>;

/// Files the answer for unit `index` of request `no`; delivers the request's
/// promise once all its units are answered. Ignores numbers it does not know
/// and slots already answered (done messages can be forged by any sender).
void complete(store_writer_actor* self, std::uint64_t no, std::uint64_t index,
              commit_reply reply) {
  auto& s = self->state;
  auto it = s.pending.find(no);
  if (it == s.pending.end() || index >= it->second.replies.size()
      || answered(it->second.replies[index]) || !answered(reply))
    return;
  pending_request& p = it->second;
  --s.stats.in_flight;
  s.count(reply);
  p.replies[index] = std::move(reply);
  if (--p.outstanding > 0)
    return;
  if (p.many)
    p.promise.deliver(std::move(p.replies));
  else
    p.promise.deliver(std::move(p.replies.front()));
  s.pending.erase(it);
}

/// Hands unit `index` of request `no` to the group-commit writer. Its
/// completion runs on the writer's thread and only sends a message (through a
/// weak reference: a commit in flight does not keep a dead actor alive).
void submit(store_writer_actor* self, std::uint64_t no, std::uint64_t index,
            unit_of_work work) {
  auto& s = self->state;
  ++s.stats.in_flight;
  const group_commit_writer* w = s.writer.get();
  auto done = [addr = self->address(), w, no, index](result<commit_receipt> r) {
    t_writer_of_this_thread = w;
    if (auto hdl = caf::actor_cast<caf::actor>(addr))
      caf::anon_send(hdl, commit_done_atom::value, no, index,
                     commit_reply::from(std::move(r)));
  };
  if (status accepted = s.writer->submit(std::move(work), std::move(done));
      !accepted)
    complete(self, no, index, commit_reply::from(accepted.error()));
}

/// Opens a pending request for `units` units and returns its number.
std::uint64_t open_request(store_writer_actor* self, std::size_t units,
                           bool many) {
  auto& s = self->state;
  const std::uint64_t no = s.next_request_no++;
  pending_request& p = s.pending[no];
  p.promise = self->make_response_promise();
  p.replies.resize(units);
  p.outstanding = units;
  p.many = many;
  return no;
}

caf::result<commit_reply> on_commit(store_writer_actor* self,
                                    unit_of_work& work) {
  auto& s = self->state;
  if (s.cfg.mode == store_writer_mode::inline_commit) {
    commit_reply reply = commit_reply::from(s.st->commit(work));
    s.count(reply);
    return reply;
  }
  const std::uint64_t no = open_request(self, 1, false);
  caf::response_promise rp = s.pending.at(no).promise;
  submit(self, no, 0, std::move(work));
  return rp;
}

caf::result<std::vector<commit_reply>>
on_commit_many(store_writer_actor* self, std::vector<unit_of_work>& works) {
  auto& s = self->state;
  if (works.size() > s.cfg.many_units_max) {
    const commit_reply refused = commit_reply::from(make_error(
      errc::invalid_argument,
      "commit_many carries " + std::to_string(works.size())
        + " units; the limit is " + std::to_string(s.cfg.many_units_max)));
    s.stats.failed += works.size();
    return std::vector<commit_reply>(works.size(), refused);
  }
  if (works.empty())
    return std::vector<commit_reply>{};
  if (s.cfg.mode == store_writer_mode::inline_commit) {
    std::vector<commit_reply> replies;
    replies.reserve(works.size());
    for (auto& r : s.st->commit_many(std::span<const unit_of_work>{works})) {
      replies.push_back(commit_reply::from(std::move(r)));
      s.count(replies.back());
    }
    return replies;
  }
  const std::uint64_t no = open_request(self, works.size(), true);
  caf::response_promise rp = s.pending.at(no).promise;
  for (std::size_t i = 0; i < works.size(); ++i)
    submit(self, no, i, std::move(works[i]));
  return rp;
}

caf::behavior store_writer_fun(store_writer_actor* self, store* st,
                               store_writer_config cfg) {
  auto& s = self->state;
  s.st = st;
  s.cfg = std::move(cfg);
  if (s.cfg.mode == store_writer_mode::group_commit)
    s.writer.reset(new group_commit_writer(*st, s.cfg.group));
  return {
    [self](commit_atom, unit_of_work& work) { return on_commit(self, work); },
    [self](commit_many_atom, std::vector<unit_of_work>& works) {
      return on_commit_many(self, works);
    },
    [self](commit_done_atom, std::uint64_t no, std::uint64_t index,
           commit_reply& reply) {
      complete(self, no, index, std::move(reply));
    },
    [self](stats_atom) -> store_writer_stats { return self->state.stats; },
  };
}

} // namespace

caf::actor spawn_store_writer(caf::actor_system& sys, store& st,
                              store_writer_config cfg) {
  RECUR_ASSERT(cfg.many_units_max > 0);
  return sys.spawn(store_writer_fun, &st, std::move(cfg));
}

} // namespace recur
