#include "policies/gateway.h"

#include <fmt/format.h>

#include "sim/error.h"

namespace servesim {

Gateway::Gateway(Router& router, OutputPredictor& predictor, InstanceObserver& metrics)
    : router_(router),
      size_class_router_(dynamic_cast<const SizeClassRouter*>(&router)),
      predictor_(predictor),
      metrics_(metrics) {}

void Gateway::add_instance(Instance* view, RequestSink* sink, InstanceRole role) {
  const int index = static_cast<int>(views_.size());
  views_.push_back(view);
  sinks_.push_back(sink);
  if (role == InstanceRole::kDecode) {
    decode_views_.push_back(view);
    decode_index_.push_back(index);
  } else {
    entry_views_.push_back(view);
    entry_index_.push_back(index);
  }
}

void Gateway::submit(const RequestSpec& spec) {
  Request* r = nullptr;
  if (free_requests_.empty()) {
    r = &request_pool_.emplace_back();
  } else {
    r = free_requests_.back();
    free_requests_.pop_back();
  }
  r->id = next_id_++;
  r->spec = spec;
  r->predicted_output_tokens = predictor_.predict(spec);
  ++in_flight_;
  ++arrived_;
  if (first_arrival_ == Time::max()) first_arrival_ = spec.arrival;
  if (frontend_latency_ > Time{}) {
    sim_->schedule_in(frontend_latency_, Phase::kArrival, [this, r] { route(r); });
    return;
  }
  route(r);
}

bool Gateway::route(Request* r) {
  const int entry = router_.route(*r, entry_views_);
  SERVESIM_CHECK(entry < static_cast<int>(entry_index_.size()), "router chose instance {}", entry);
  const int target = entry < 0 ? -1 : entry_index_[static_cast<size_t>(entry)];
  if (size_class_router_)
    r->misrouted =
        size_class_router_->classify(r->spec.prompt_tokens + r->predicted_output_tokens) !=
        size_class_router_->classify(r->spec.prompt_tokens + r->spec.output_tokens);
  if (target < 0) {
    on_drop(*r, "no replica is up");
    return false;
  }
  SERVESIM_CHECK(target < static_cast<int>(sinks_.size()) &&
                     (views_[target] == nullptr || views_[target]->available()),
                 "router chose instance {}", target);
  sinks_[target]->enqueue(r);
  return true;
}

int Gateway::route_decode(const Request& r) {
  const int choice = decode_router_->route(r, decode_views_);
  SERVESIM_CHECK(choice < static_cast<int>(decode_index_.size()), "decode router chose {}", choice);
  if (choice < 0) return -1;
  const int target = decode_index_[static_cast<size_t>(choice)];
  SERVESIM_CHECK(views_[target] == nullptr || views_[target]->available(),
                 "decode router chose instance {}", target);
  return target;
}

void Gateway::on_prefill_handoff(Request& r) {
  SERVESIM_CHECK(decode_router_ && kv_mover_ && sim_, "request {} handed off with no decode pool",
                 r.id);
  const int from = r.instance;
  const int to = route_decode(r);
  if (to < 0) {
    views_[from]->release_handed_off(&r);
    on_drop(r, "no decode replica is up");
    return;
  }
  const Time start = sim_->now();
  views_[to]->expect(r);
  kv_mover_->move(r, from, to, [this, &r, from, to, start](double bytes) {
    views_[from]->release_handed_off(&r);
    metrics_.on_kv_transfer(r, sim_->now() - start, bytes, false);
    views_[to]->arrived(r);
    sinks_[to]->enqueue(&r);
  });
}

bool Gateway::on_migrate(Request& r) {
  if (!migration_mover_) return false;
  const int from = r.instance;
  // Room for the context and the next token, in the KV free now and within the context limit.
  const int64_t need_tokens = r.computed_tokens + 2;
  auto free_tokens = [&](size_t i) {
    const Instance& v = *entry_views_[i];
    return v.kv_pool().free_blocks() * v.kv_pool().block_tokens();
  };
  const int choice = migration_ties_.pick(
      entry_views_.size(),
      [&](size_t i) {
        const Instance* v = entry_views_[i];
        return v && entry_index_[i] != from && v->available() &&
               v->max_context_tokens() >= need_tokens && free_tokens(i) >= need_tokens;
      },
      [&](size_t i) { return -free_tokens(i); });
  if (choice < 0) return false;
  const int to = entry_index_[static_cast<size_t>(choice)];
  const Time start = sim_->now();
  views_[to]->expect(r);
  migration_mover_->move(r, from, to, [this, &r, to, start](double bytes) {
    metrics_.on_kv_transfer(r, sim_->now() - start, bytes, true);
    views_[to]->arrived(r);
    sinks_[to]->enqueue(&r);
  });
  return true;
}

Gateway::FailureOutcome Gateway::fail_instance(int index, bool reroute) {
  SERVESIM_CHECK(index >= 0 && index < static_cast<int>(views_.size()) && views_[index],
                 "no replica {} to fail", index);
  std::vector<Request*> evicted;
  FailureOutcome outcome;
  outcome.lost_tokens = views_[index]->fail(evicted);
  const std::string reason = fmt::format("instance '{}' failed", views_[index]->name());
  for (Request* r : evicted) {
    r->fault_affected = true;
    if (reroute) {
      if (route(r))
        ++outcome.rerouted;
      else
        ++outcome.dropped;  // no replica is up to take it
    } else {
      ++outcome.dropped;
      on_drop(*r, reason);
    }
  }
  return outcome;
}

void Gateway::on_finish(Request& r) {
  ++completed_;
  metrics_.on_finish(r);
  release(r);
}

void Gateway::on_drop(Request& r, std::string_view reason) {
  ++dropped_;
  r.state = RequestState::kDropped;
  metrics_.on_drop(r, reason);
  release(r);
}

void Gateway::release(Request& r) {
  const int64_t client = r.spec.client_id;
  r = Request{};  // the slot is free for the next arrival
  free_requests_.push_back(&r);
  --in_flight_;
  if (on_released_) on_released_(client);
}

void Gateway::check_conservation() const {
  SERVESIM_CHECK(arrived_ == completed_ + dropped_,
                 "requests not conserved: {} arrived, {} completed, {} dropped", arrived_,
                 completed_, dropped_);
  SERVESIM_CHECK(in_flight_ == 0, "{} requests still in flight at the end", in_flight_);
}

}  // namespace servesim
