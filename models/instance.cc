#include "models/instance.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>

namespace servesim {

MemoryPlan plan_memory(const InstanceConfig& config, const Cluster& cluster, const ModelSpec& model,
                       const Precision& precision) {
  MemoryPlan plan;
  plan.gpu_memory_bytes = std::numeric_limits<double>::infinity();
  for (int g : config.gpus)
    plan.gpu_memory_bytes = std::min(plan.gpu_memory_bytes, cluster.gpus().at(g).spec.memory_bytes);
  plan.weight_bytes = weight_bytes_per_gpu(model, precision.weights, config.tp, config.pp);
  plan.reserve_bytes = plan.gpu_memory_bytes * config.reserve_fraction + config.reserve_bytes;
  plan.kv_bytes_per_token = kv_bytes_per_token_per_gpu(model, precision.kv, config.tp, config.pp);
  const double free_bytes = plan.gpu_memory_bytes - plan.weight_bytes - plan.reserve_bytes;
  if (free_bytes <= 0) {
    plan.shortfall_bytes = -free_bytes;
    return plan;
  }
  const double block_bytes = plan.kv_bytes_per_token * static_cast<double>(config.block_tokens);
  plan.kv_blocks = static_cast<int64_t>(std::floor(free_bytes / block_bytes));
  plan.kv_bytes = static_cast<double>(plan.kv_blocks) * block_bytes;
  return plan;
}

Instance::Instance(int index, InstanceConfig config, CostModelConfig cost, const Cluster& cluster,
                   Simulator& sim, std::unique_ptr<Batcher> batcher, InstanceObserver& observer)
    : index_(index),
      config_(std::move(config)),
      cost_(std::move(cost)),
      memory_(plan_memory(config_, cluster, cost_.model, cost_.precision)),
      sim_(sim),
      batcher_(std::move(batcher)),
      observer_(observer),
      kv_(memory_.kv_blocks, config_.block_tokens) {
  SERVESIM_CHECK(memory_.shortfall_bytes <= 0, "instance {} does not fit (loader must reject)",
                 config_.name);
  max_context_tokens_ = kv_.capacity_tokens();
  if (config_.max_model_len > 0)
    max_context_tokens_ = std::min(max_context_tokens_, config_.max_model_len);
}

int64_t Instance::outstanding_tokens() const {
  int64_t total = 0;
  auto add = [&](const Request* r) {
    const int64_t prefill_left = r->in_decode ? 0 : r->prefill_target_tokens() - r->computed_tokens;
    total += prefill_left + std::max<int64_t>(0, r->predicted_output_tokens - r->generated_tokens);
  };
  for (const Request* r : waiting_) add(r);
  for (const Request* r : running_) add(r);
  return total;
}

void Instance::enqueue(Request* r) {
  r->instance = index_;
  ++requests_seen_;
  // A prompt must fit with room for at least its first generated token.
  if (r->spec.prompt_tokens + 1 > max_context_tokens_) {
    observer_.on_drop(*r, fmt::format("prompt of {} tokens exceeds the {}-token context of "
                                      "instance '{}'",
                                      r->spec.prompt_tokens, max_context_tokens_, config_.name));
    return;
  }
  waiting_.push_back(r);
  request_schedule();
}

void Instance::request_schedule() {
  if (busy_ || schedule_pending_) return;
  schedule_pending_ = true;
  // Same-instant arrivals (Phase::kArrival) all join before the batch forms (kSchedule).
  sim_.schedule_in(Time{}, Phase::kSchedule, [this] {
    schedule_pending_ = false;
    start_iteration();
  });
}

void Instance::preempt(Request* r) {
  auto it = std::find(running_.begin(), running_.end(), r);
  SERVESIM_CHECK(it != running_.end(), "preempting request {} that is not running", r->id);
  running_.erase(it);
  kv_.release(r->kv_blocks);
  r->computed_tokens = 0;
  r->in_decode = false;
  ++r->preemptions;
  ++preemptions_;
  waiting_.push_front(r);
}

void Instance::start_iteration() {
  if (busy_) return;
  if (wakeup_.valid()) {
    sim_.cancel(wakeup_);
    wakeup_ = EventId{};
  }
  plan_.clear();
  batcher_->plan(*this, plan_);
  if (plan_.empty()) {
    const Time wake = batcher_->next_wakeup(*this);
    if (wake != Time::max())
      wakeup_ = sim_.schedule_at(std::max(wake, sim_.now()), Phase::kSchedule, [this] {
        wakeup_ = EventId{};
        start_iteration();
      });
    return;
  }
  BatchShape shape;
  for (const ScheduledItem& item : plan_.items) {
    const Request* r = item.request;
    if (r->in_decode) {
      shape.add_decode(r->computed_tokens + 1);
    } else {
      const bool emits = r->computed_tokens + item.new_tokens >= r->prefill_target_tokens();
      shape.add_prefill(r->computed_tokens, item.new_tokens, emits);
    }
  }
  const IterationCost cost = price_iteration(cost_, shape);
  // At least one nanosecond, so that a loop of empty-cost iterations still advances time.
  const Time duration = std::max(Time::from_s(cost.total_s), Time::from_ns(1));
  busy_ = true;
  iteration_start_ = sim_.now();
  tp_bytes_per_gpu_ += cost.tp_bytes_per_gpu;
  pp_bytes_per_hop_ += cost.pp_bytes_per_hop;
  observer_.on_iteration(*this, iteration_start_, duration, cost);
  sim_.schedule_in(duration, Phase::kIterationDone, [this] { finish_iteration(); });
}

void Instance::emit_token(Request* r) {
  ++r->generated_tokens;
  const Time now = sim_.now();
  if (r->first_token == Time::max()) {
    r->first_token = now;
    observer_.on_first_token(*r);
  } else {
    observer_.on_token(*r, now - r->last_token);
  }
  r->last_token = now;
}

void Instance::finish_iteration() {
  busy_ = false;
  ++iterations_;
  busy_time_ += sim_.now() - iteration_start_;
  bool any_finished = false;
  for (const ScheduledItem& item : plan_.items) {
    Request* r = item.request;
    r->computed_tokens += item.new_tokens;
    if (!r->in_decode) {
      if (r->computed_tokens < r->prefill_target_tokens()) continue;  // more chunks to go
      r->in_decode = true;
    }
    emit_token(r);
    const bool at_max_context = r->context_tokens() >= max_context_tokens_;
    if (r->generated_tokens >= r->spec.output_tokens || at_max_context) {
      r->truncated = r->generated_tokens < r->spec.output_tokens;
      r->state = RequestState::kFinished;
      r->finished = sim_.now();
      kv_.release(r->kv_blocks);
      any_finished = true;
    }
  }
  if (any_finished) {
    // Keep running_ in admission order: the batcher preempts from the back.
    std::vector<Request*> finished;
    std::erase_if(running_, [&](Request* r) {
      if (r->state != RequestState::kFinished) return false;
      finished.push_back(r);
      return true;
    });
    for (Request* r : finished) observer_.on_finish(*r);
  }
  start_iteration();
}

}  // namespace servesim
