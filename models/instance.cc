#include "models/instance.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <limits>

#include "models/step_traffic.h"

// A replica's iteration loop: admission, planning, pricing and applying iterations. The
// closed-form decode stretches and the load figures routers read mid-stretch are in
// instance_stretch.cc; KV blocks, the prefix cache, offload, preemption and failure in
// instance_kv.cc.

namespace servesim {

std::string_view instance_role_name(InstanceRole role) {
  switch (role) {
    case InstanceRole::kMixed:
      return "mixed";
    case InstanceRole::kPrefill:
      return "prefill";
    case InstanceRole::kDecode:
      return "decode";
  }
  return "?";
}

const GpuSpec& smallest_gpu(const InstanceConfig& config, const Cluster& cluster) {
  const GpuSpec* smallest = &cluster.gpus().at(config.gpus.at(0)).spec;
  for (int g : config.gpus)
    if (cluster.gpus().at(g).spec.memory_bytes < smallest->memory_bytes)
      smallest = &cluster.gpus().at(g).spec;
  return *smallest;
}

double smallest_gpu_memory_bytes(const InstanceConfig& config, const Cluster& cluster) {
  return smallest_gpu(config, cluster).memory_bytes;
}

MemoryPlan plan_memory(const InstanceConfig& config, const Cluster& cluster, const ModelSpec& model,
                       const Precision& precision) {
  MemoryPlan plan;
  plan.gpu_memory_bytes = smallest_gpu_memory_bytes(config, cluster);
  plan.weight_bytes = weight_bytes_per_gpu(model, precision.weights, config.tp, config.pp,
                                           config.moe, precision.experts);
  plan.reserve_bytes = plan.gpu_memory_bytes * config.reserve_fraction + config.reserve_bytes;
  plan.kv_bytes_per_token = kv_bytes_per_token_per_gpu(model, precision.kv, config.tp, config.pp,
                                                       config.moe.attention_dp);
  // Without a KV cache nothing outlives a step: the step's working set is one layer's K and V
  // over the context, recomputed layer after layer, so a token costs 1/layers of a cached one.
  if (config.kv_policy.mode == KvMode::kNoCache)
    plan.kv_bytes_per_token /= static_cast<double>((model.num_layers + config.pp - 1) / config.pp);
  const double free_bytes = plan.gpu_memory_bytes - plan.weight_bytes - plan.reserve_bytes;
  if (free_bytes <= 0) {
    plan.shortfall_bytes = -free_bytes;
    return plan;
  }
  const double block_bytes = plan.kv_bytes_per_token * static_cast<double>(config.block_tokens);
  // A pool of 2^50 tokens is past any request's reach (kMaxRequestTokens); the cap keeps
  // blocks x block_tokens, and the conversion from double, in range for absurd memory sizes.
  const double max_blocks = std::floor(0x1p50 / static_cast<double>(config.block_tokens));
  plan.kv_blocks = static_cast<int64_t>(std::min(std::floor(free_bytes / block_bytes), max_blocks));
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
      kv_(memory_.kv_blocks, config_.block_tokens),
      host_kv_(
          config_.kv_policy.mode == KvMode::kHostOffload
              ? static_cast<int64_t>(std::min(
                    std::floor(config_.host_kv_bytes /
                               (block_bytes_per_gpu() * static_cast<double>(config_.gpus.size()))),
                    std::floor(0x1p50 / static_cast<double>(config_.block_tokens))))
              : 0,
          config_.block_tokens),
      decode_set_(config_.block_tokens, index_) {
  SERVESIM_CHECK(memory_.shortfall_bytes <= 0, "instance {} does not fit (loader must reject)",
                 config_.name);
  // Only a prefix cache or a host tier can give blocks back; without them a short pool is short.
  if (config_.kv_policy.prefix_caching || config_.kv_policy.mode == KvMode::kHostOffload ||
      config_.kv_policy.preempted_kv != PreemptedKv::kNone)
    kv_.set_reclaimer(
        [this](int64_t missing, const int64_t* growing) { return reclaim(missing, growing); });
  // The decode set's aggregates assume a request holds exactly the VRAM blocks of its tokens
  // and that every step's cost follows from context sums (the fitted kernels).
  // A prefill replica decodes nothing.
  decode_set_mode_ =
      config_.closed_form_decode && batcher_->plans_decode_set() &&
      config_.role != InstanceRole::kPrefill && config_.kv_policy.mode == KvMode::kGpuOnly &&
      !config_.kv_policy.prefix_caching && !cost_.no_kv_cache && cost_.kernel_db == nullptr;
  // With offload a request's KV may spill to host: its context is bounded by both tiers.
  max_context_tokens_ = kv_.capacity_tokens() + host_kv_.capacity_tokens();
  if (config_.max_model_len > 0)
    max_context_tokens_ = std::min(max_context_tokens_, config_.max_model_len);
}

void Instance::enqueue(Request* r) {
  r->instance = index_;
  r->state = RequestState::kQueued;
  ++requests_seen_;
  // A prompt must fit with room for at least its first generated token; prefilled whole, it
  // must fit VRAM alone, whatever a host tier could hold later.
  if (r->spec.prompt_tokens + 1 > max_context_tokens_) {
    observer_.on_drop(*r, fmt::format("prompt of {} tokens exceeds the {}-token context of "
                                      "instance '{}'",
                                      r->spec.prompt_tokens, max_context_tokens_, config_.name));
    return;
  }
  if (batcher_->prefills_whole_prompts() && r->spec.prompt_tokens > kv_.capacity_tokens()) {
    observer_.on_drop(*r, fmt::format("prompt of {} tokens exceeds the {} tokens of VRAM KV a "
                                      "whole-prompt prefill needs at once on instance '{}'",
                                      r->spec.prompt_tokens, kv_.capacity_tokens(), config_.name));
    return;
  }
  waiting_.push_back(r);
  outstanding_tokens_ += outstanding_of(*r);
  if (busy_ && steps_.steps > 1 && !stretch_ignores_arrivals_) truncate_stretch();
  request_schedule();
}

void Instance::prefetch(const Request* r) {
  const auto* bytes = reinterpret_cast<const char*>(r);
  for (size_t line = 0; line < sizeof(Request); line += 64) __builtin_prefetch(bytes + line);
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

IterationCost Instance::price(const BatchShape& shape) const {
  // Micro-batches in flight through the stages: a round is one micro-batch's way through all
  // of them, in which every micro-batch advances once.
  const int64_t parts = config_.pp > 1 && config_.pp_microbatching
                            ? std::clamp<int64_t>(shape.sequences, 1, config_.pp)
                            : 1;
  IterationCost cost =
      price_iteration(cost_, parts > 1 ? shape.micro_batch(parts) : shape, &gemm_cache_);
  if (parts > 1) cost.scale_work(parts);
  if (slowdown_ != 1.0)
    for (double* t :
         {&cost.total_s, &cost.gemm_s, &cost.attention_s, &cost.elementwise_s, &cost.lm_head_s,
          &cost.tp_comm_s, &cost.pp_comm_s, &cost.overhead_s, &cost.kv_fetch_s, &cost.kv_offload_s})
      *t *= slowdown_;
  return cost;
}

void Instance::start_iteration() {
  if (busy_ || !available_) return;
  if (wakeup_.valid()) {
    sim_.cancel(wakeup_);
    wakeup_ = EventId{};
  }
  // A plan that preempts every running request comes out empty (the batchers admit nothing
  // in a step that preempted), yet it freed KV: plan the engine's next step at once, or
  // nothing would wake this replica again and its waiting requests would be stranded. Each
  // round that preempts shrinks the running set, so this ends.
  for (;;) {
    const uint64_t preemptions_before = preemptions_;
    plan_.clear();
    if (decode_set_mode_) {
      batcher_->plan_decode_set(*this, plan_);
    } else {
      if (config_.kv_policy.prefix_caching)
        for (Request* r : waiting_) lookup_prefix(r);
      batcher_->plan(*this, plan_);
    }
    if (!plan_.empty() || preemptions_ == preemptions_before) break;
  }
  if (plan_.empty()) {
    const Time wake = batcher_->next_wakeup(*this);
    if (wake != Time::max())
      wakeup_ = sim_.schedule_at(std::max(wake, sim_.now()), Phase::kSchedule, [this] {
        wakeup_ = EventId{};
        start_iteration();
      });
    return;
  }
  peak_running_ = std::max(peak_running_, running_.size());
  BatchShape shape;
  const int64_t bt = kv_.block_tokens();
  shape.offload_tokens = static_cast<double>(pending_offload_blocks_ * bt);
  pending_offload_blocks_ = 0;
  if (plan_.decode_set_members > 0) {
    // The members' decode steps from the set's sums: contexts are whole token counts, so the
    // double sums equal those add_decode would accumulate one by one.
    const int64_t n = plan_.decode_set_members;
    shape.sequences += n;
    shape.tokens += n;
    shape.logit_rows += n;
    shape.decode_sequences += n;
    shape.decode_context_tokens += static_cast<double>(decode_set_.context_tokens_sum(0));
    shape.decode_context_sq_tokens += static_cast<double>(decode_set_.context_tokens_sq_sum(0));
  }
  for (const ScheduledItem& item : plan_.items) {
    const Request* r = item.request;
    // Attention reads all earlier KV; what lives on the host crosses PCIe first.
    shape.host_kv_tokens += static_cast<double>(r->host_blocks * bt);
    if (!r->in_decode) prefill_tokens_ += item.new_tokens;
    if (r->in_decode) {
      shape.add_decode(r->computed_tokens + 1);
    } else {
      const bool emits = r->computed_tokens + item.new_tokens >= r->prefill_target_tokens();
      shape.add_prefill(r->computed_tokens, item.new_tokens, emits);
    }
  }
  step_cost_ = price(shape);
  // At least one nanosecond, so that a loop of empty-cost iterations still advances time.
  const Time first_step = std::max(Time::from_s(step_cost_.total_s), Time::from_ns(1));
  busy_ = true;
  iteration_start_ = sim_.now();
  if (plan_stretch(shape, first_step) == 1) {
    steps_ = StepSeries{first_step.ns};
    later_sums_ = LaterStepSums{};
    last_step_end_ns_ = (iteration_start_ + first_step).ns;
  }
  const Time end = Time::from_ns(last_step_end_ns_);
  observer_.on_iteration(*this, iteration_start_, end - iteration_start_, step_cost_);
  const double network_s = step_traffic_ ? step_traffic_->solo_s(step_cost_) : 0.0;
  if (network_s > 0) {
    // Compute first, then the transfers on the shared links; alone on them they take
    // network_s and the step its price.
    ++network_steps_;
    const Time compute = Time::from_s(std::max(0.0, step_cost_.total_s - network_s));
    done_event_ = sim_.schedule_at(iteration_start_ + compute, Phase::kIterationDone, [this] {
      done_event_ = EventId{};
      step_traffic_->send(step_cost_, [this] { finish_network_step(); });
    });
  } else {
    done_event_ = sim_.schedule_at(end, Phase::kIterationDone, [this] { finish_iteration(); });
  }
  // The requests the end of this iteration will read first have often waited long, and are
  // cold: start loading them now, while other replicas' events run.
  if (decode_set_mode_) {
    if (!waiting_.empty()) prefetch(waiting_.front());
    if (const Request* r = decode_set_.next_to_finish()) prefetch(r);
    if (!running_.empty()) prefetch(running_.back());
  }
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

void Instance::finish_request(Request* r) {
  r->truncated = r->generated_tokens < r->spec.output_tokens;
  r->state = RequestState::kFinished;
  r->finished = sim_.now();
  release_kv(r);
}

void Instance::report_finished(std::vector<Request*>& finished) {
  if (finished.empty()) return;
  remove_from_running(finished);
  for (Request* r : finished) observer_.on_finish(*r);
  finished.clear();
}

void Instance::remove_from_running(std::vector<Request*>& leaving) {
  if (leaving.empty()) return;
  // Report in admission order (the running list's), as the batch holds them.
  finished_at_.clear();
  for (Request* r : leaving) finished_at_.push_back(running_.position(*r));
  std::sort(finished_at_.begin(), finished_at_.end());
  for (size_t i = 0; i < finished_at_.size(); ++i) {
    Request* r = running_.entry(finished_at_[i]);
    SERVESIM_CHECK(r != nullptr, "a request leaves replica {}'s batch twice", config_.name);
    leaving[i] = r;
    running_.remove_at(finished_at_[i]);
  }
  running_.settle();
}

void Instance::hand_off(std::vector<Request*>& handed) {
  if (handed.empty()) return;
  remove_from_running(handed);
  handoffs_in_flight_ += static_cast<int64_t>(handed.size());
  for (Request* r : handed) observer_.on_prefill_handoff(*r);
  handed.clear();
}

void Instance::release_handed_off(Request* r) {
  SERVESIM_CHECK(handoffs_in_flight_ > 0, "instance {} released request {} it did not hand off",
                 config_.name, r->id);
  --handoffs_in_flight_;
  release_kv(r);
  request_schedule();  // the freed KV may admit a waiting request
}

void Instance::finish_iteration() {
  apply_iteration();
  start_iteration();
}

void Instance::set_step_traffic(StepTraffic* traffic) {
  SERVESIM_CHECK(!config_.closed_form_decode && !decode_set_mode_,
                 "instance {}: network flows per step need step-by-step mode", config_.name);
  step_traffic_ = traffic;
}

void Instance::finish_network_step() {
  const int64_t end_ns = sim_.now().ns;
  network_wait_s_ += std::max<double>(0.0, Time::from_ns(end_ns - last_step_end_ns_).to_s());
  if (end_ns != last_step_end_ns_) {
    last_step_end_ns_ = end_ns;
    steps_ = StepSeries{end_ns - iteration_start_.ns};
    observer_.on_step_resized(*this);
  }
  finish_iteration();
}

void Instance::apply_iteration() {
  busy_ = false;
  const int64_t steps = steps_.steps;
  iterations_ += static_cast<uint64_t>(steps);
  busy_time_ += sim_.now() - iteration_start_;
  stage_busy_s_ += (sim_.now() - iteration_start_).to_s() *
                   static_cast<double>(step_cost_.microbatches) / config_.pp;
  // Per-step traffic is the same at every step of a stretch (host traffic never is in one).
  tp_bytes_per_gpu_ += step_cost_.tp_bytes_per_gpu * static_cast<double>(steps);
  pp_bytes_per_hop_ += step_cost_.pp_bytes_per_hop * static_cast<double>(steps);
  ep_intra_bytes_per_gpu_ += step_cost_.ep_intra_bytes_per_gpu * static_cast<double>(steps);
  ep_inter_bytes_per_gpu_ += step_cost_.ep_inter_bytes_per_gpu * static_cast<double>(steps);
  priced_gpu_to_host_bytes_ += step_cost_.gpu_to_host_bytes_per_gpu;
  priced_host_to_gpu_bytes_ += step_cost_.host_to_gpu_bytes_per_gpu;
  std::vector<Request*>& finished = finished_scratch_;
  finished.clear();
  std::vector<Request*>& handed = handoff_scratch_;
  handed.clear();
  if (decode_set_mode_) {
    finish_decode_set_iteration(steps);
  } else {
    if (steps > 1) {
      step_end_scratch_.resize(static_cast<size_t>(steps));
      int64_t* end_ns = step_end_scratch_.data();
      int64_t t = iteration_start_.ns + steps_.first_ns;
      *end_ns++ = t;
      steps_.for_each_later(1, steps, [&](int64_t duration_ns) { *end_ns++ = t += duration_ns; });
      observer_.on_decode_stretch(plan_.items, step_end_scratch_);
      for (const ScheduledItem& item : plan_.items) {
        Request* r = item.request;
        outstanding_tokens_ -= outstanding_of(*r);
        const bool grown = kv_.try_grow(r->kv_blocks, r->computed_tokens + steps);
        SERVESIM_CHECK(grown, "KV for a decode stretch ran out for request {}", r->id);
        r->computed_tokens += steps;
        r->generated_tokens += steps;
        r->last_token = Time::from_ns(last_step_end_ns_);
        outstanding_tokens_ += outstanding_of(*r);
      }
    }
    for (const ScheduledItem& item : plan_.items) {
      Request* r = item.request;
      if (steps == 1) {
        outstanding_tokens_ -= outstanding_of(*r);
        r->computed_tokens += item.new_tokens;
        const bool chunk_only = !r->in_decode && r->computed_tokens < r->prefill_target_tokens();
        if (!chunk_only) {
          r->in_decode = true;
          emit_token(r);
        }
        outstanding_tokens_ += outstanding_of(*r);
        if (chunk_only) continue;  // more chunks to go
      }
      const bool at_max_context = r->context_tokens() >= max_context_tokens_;
      if (r->generated_tokens >= r->spec.output_tokens || at_max_context) {
        outstanding_tokens_ -= outstanding_of(*r);
        finish_request(r);
        finished.push_back(r);
      } else if (config_.role == InstanceRole::kPrefill) {
        outstanding_tokens_ -= outstanding_of(*r);
        handed.push_back(r);
      }
    }
  }
  report_finished(finished);
  hand_off(handed);
}

void Instance::finish_decode_set_iteration(int64_t steps) {
  std::vector<Request*>& finished = finished_scratch_;
  if (plan_.decode_set_members > 0) {
    SERVESIM_CHECK(steps_.steps == steps, "step series of {} steps for {}", steps_.steps, steps);
    observer_.on_decode_steps(decode_set_.recorded(), steps_, later_sums_);
    // The first step's blocks were taken at plan; the later steps' are taken as they apply,
    // evicting cached blocks for those the free ones lack, as the steps one by one would.
    const int64_t growth = decode_set_.held_blocks(steps) - decode_set_.held_blocks(1);
    while (growth > kv_.free_blocks()) {
      const bool reclaimed = kv_.reclaim(growth - kv_.free_blocks());
      SERVESIM_CHECK(reclaimed, "KV for a decode stretch ran out: {} blocks short",
                     growth - kv_.free_blocks());
    }
    kv_.take(growth);
    decode_set_.advance(steps, Time::from_ns(last_step_end_ns_));
    decode_set_.take_finished(finished);
    for (Request* r : finished) finish_request(r);
  }
  // Prefill chunks (never in a stretch). A prefill that completes emits a token, then the
  // request finishes or joins the decode set, which takes over its share of outstanding tokens.
  for (const ScheduledItem& item : plan_.items) {
    Request* r = item.request;
    outstanding_tokens_ -= outstanding_of(*r);
    r->computed_tokens += item.new_tokens;
    if (r->computed_tokens < r->prefill_target_tokens()) {
      outstanding_tokens_ += outstanding_of(*r);
      continue;
    }
    r->in_decode = true;
    emit_token(r);
    const int64_t steps_left = std::min(r->spec.output_tokens - r->generated_tokens,
                                        max_context_tokens_ - r->context_tokens());
    if (steps_left > 0) {
      decode_set_.join(*r, steps_left, observer_.records_tokens_of(*r));
      continue;
    }
    finish_request(r);
    finished.push_back(r);
  }
}

}  // namespace servesim
