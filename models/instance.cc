#include "models/instance.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <limits>

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
      decode_set_(config_.block_tokens) {
  SERVESIM_CHECK(memory_.shortfall_bytes <= 0, "instance {} does not fit (loader must reject)",
                 config_.name);
  // Only a prefix cache or a host tier can give blocks back; without them a short pool is short.
  if (config_.kv_policy.prefix_caching || config_.kv_policy.mode == KvMode::kHostOffload)
    kv_.set_reclaimer(
        [this](int64_t missing, const int64_t* growing) { return reclaim(missing, growing); });
  // The decode set's aggregates assume a request holds exactly the VRAM blocks of its tokens
  // and that every step's cost follows from context sums (the fitted kernels).
  decode_set_mode_ = config_.closed_form_decode && batcher_->plans_decode_set() &&
                     config_.kv_policy.mode == KvMode::kGpuOnly &&
                     !config_.kv_policy.prefix_caching && !cost_.no_kv_cache &&
                     cost_.kernel_db == nullptr;
  // With offload a request's KV may spill to host: its context is bounded by both tiers.
  max_context_tokens_ = kv_.capacity_tokens() + host_kv_.capacity_tokens();
  if (config_.max_model_len > 0)
    max_context_tokens_ = std::min(max_context_tokens_, config_.max_model_len);
}

int64_t Instance::outstanding_of(const Request& r, int64_t steps_ahead) {
  const int64_t prefill_left = r.in_decode ? 0 : r.prefill_target_tokens() - r.computed_tokens;
  return prefill_left +
         std::max<int64_t>(0, r.predicted_output_tokens - r.generated_tokens - steps_ahead);
}

int64_t Instance::outstanding_tokens() const {
  // Mid-stretch, the steps already past count as done, as they would have in step mode: each
  // request's decode left shrinks by min(its decode left, steps done).
  const int64_t done = stretch_steps_done();
  if (decode_set_mode_) return outstanding_tokens_ + decode_set_.predicted_decode_left(done);
  if (done == 0) return outstanding_tokens_;
  if (stretch_left_sorted_.empty())
    return outstanding_tokens_ - done * static_cast<int64_t>(plan_.items.size());
  if (stretch_left_prefix_.empty()) {
    std::sort(stretch_left_sorted_.begin(), stretch_left_sorted_.end());
    stretch_left_prefix_.assign(1, 0);
    for (int64_t v : stretch_left_sorted_)
      stretch_left_prefix_.push_back(stretch_left_prefix_.back() + v);
  }
  const auto first_not_below =
      std::lower_bound(stretch_left_sorted_.begin(), stretch_left_sorted_.end(), done);
  const auto below = first_not_below - stretch_left_sorted_.begin();
  const int64_t credit = stretch_left_prefix_[static_cast<size_t>(below)] +
                         done * static_cast<int64_t>(stretch_left_sorted_.end() - first_not_below);
  return outstanding_tokens_ - credit;
}

int64_t Instance::outstanding_tokens_scan() const {
  int64_t total = 0;
  for (const Request* r : waiting_) total += outstanding_of(*r);
  const int64_t done = stretch_steps_done();
  for (const Request* r : running_)
    total +=
        DecodeSet::is_member(*r)
            ? std::max<int64_t>(0, r->predicted_output_tokens - decode_set_.generated(*r, done))
            : outstanding_of(*r, done);
  return total;
}

int64_t Instance::kv_used_blocks_now() const {
  if (!busy_ || step_end_ns_.size() <= 1) return kv_.used_blocks();
  // A step-by-step run would hold, now, the blocks of the step in flight: steps ending at or
  // before now are done (iteration ends precede samples at the same instant).
  const auto done = std::upper_bound(step_end_ns_.begin(), step_end_ns_.end(), sim_.now().ns) -
                    step_end_ns_.begin();
  if (decode_set_mode_)  // the pool holds the members' blocks of the stretch's first step
    return kv_.used_blocks() + decode_set_.held_blocks(done + 1) - decode_set_.held_blocks(1);
  int64_t used = kv_.used_blocks();
  for (const ScheduledItem& item : plan_.items)
    used += std::max<int64_t>(
        0, kv_.blocks_for(item.request->computed_tokens + done + 1) - item.request->kv_blocks);
  return used;
}

int64_t Instance::stretch_steps_done() const {
  if (!busy_ || step_end_ns_.size() <= 1) return 0;
  // Routers ask on every arrival, and time only moves forward within a stretch: walk on from
  // the last answer (O(steps) over the whole stretch) instead of searching the array each time.
  const int64_t now_ns = sim_.now().ns;
  size_t done = std::min(steps_done_hint_, step_end_ns_.size());
  while (done < step_end_ns_.size() && step_end_ns_[done] < now_ns) ++done;
  steps_done_hint_ = done;
  return static_cast<int64_t>(done);
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
  outstanding_tokens_ += outstanding_of(*r);
  if (busy_ && step_end_ns_.size() > 1 && !stretch_ignores_arrivals_) truncate_stretch();
  request_schedule();
}

void Instance::truncate_stretch() {
  // In step mode the arrival would be planned at the end of the step in flight: an arrival at
  // exactly a step's end (Phase::kArrival) is seen by the plan made then.
  const auto it = std::lower_bound(step_end_ns_.begin(), step_end_ns_.end(), sim_.now().ns);
  const int64_t keep = (it - step_end_ns_.begin()) + 1;
  if (keep >= static_cast<int64_t>(step_end_ns_.size())) return;
  step_end_ns_.resize(static_cast<size_t>(keep));
  steps_.steps = keep;
  sim_.cancel(done_event_);
  done_event_ = sim_.schedule_at(Time::from_ns(step_end_ns_.back()), Phase::kIterationDone,
                                 [this] { finish_iteration(); });
}

namespace {

/// The most steps, at most `steps`, whose KV growth `fits` (monotone: true up to some k >= 1).
template <class Fits>
int64_t most_steps_that_fit(int64_t steps, Fits fits) {
  if (fits(steps)) return steps;
  int64_t lo = 1, hi = steps;  // fits(lo), !fits(hi)
  while (hi - lo > 1) {
    const int64_t mid = lo + (hi - lo) / 2;
    (fits(mid) ? lo : hi) = mid;
  }
  return lo;
}

}  // namespace

int64_t Instance::stretch_limit(const BatchShape& shape) {
  const auto n = static_cast<int64_t>(plan_.items.size());
  // The next plan repeats this one only if nothing waits to join, every running request
  // decodes, and no KV moves between tiers.
  // With requests waiting, the batcher must certify that none can join until one finishes,
  // and no reclaim (prefix eviction, host offload) may change the pool behind its back.
  const bool reclaimable =
      config_.kv_policy.prefix_caching || config_.kv_policy.mode == KvMode::kHostOffload;
  const bool waiting_stays =
      !waiting_.empty() && !reclaimable && batcher_->admits_none_while_decoding(*this);
  if ((!waiting_.empty() && !waiting_stays) || shape.decode_sequences != n ||
      n != static_cast<int64_t>(running_.size()))
    return 1;
  // One pass over the batch: the step at which the first request finishes or reaches the
  // maximum context, the least predicted decode left (for the routers' credit), and how many
  // tokens still fit in each request's last KV block. Blocks a request needs after k steps
  // depend only on that slack: ceil(max(0, k - 1 - slack) / block_tokens).
  const int64_t bt = kv_.block_tokens();
  int64_t steps = std::numeric_limits<int64_t>::max();
  int64_t least_left = std::numeric_limits<int64_t>::max();
  slack_count_.assign(static_cast<size_t>(bt), 0);
  bool blocks_as_planned = true;  // each holds exactly the blocks of its step-0 tokens
  for (const ScheduledItem& item : plan_.items) {
    const Request* r = item.request;
    steps = std::min({steps, r->spec.output_tokens - r->generated_tokens,
                      max_context_tokens_ - r->context_tokens()});
    least_left = std::min(least_left, r->predicted_output_tokens - r->generated_tokens);
    const int64_t held_tokens = r->computed_tokens + 1;
    blocks_as_planned = blocks_as_planned && r->kv_blocks == kv_.blocks_for(held_tokens);
    ++slack_count_[static_cast<size_t>(r->kv_blocks * bt - held_tokens) % static_cast<size_t>(bt)];
  }
  if (steps <= 1) return 1;
  // Until the KV blocks the stretch needs exceed the free ones (a reclaim changes state).
  auto blocks_needed = [&](int64_t k) {
    int64_t extra = 0;
    if (blocks_as_planned) {
      for (int64_t slack = 0; slack < bt; ++slack)
        if (k - 1 > slack)
          extra += slack_count_[static_cast<size_t>(slack)] * ((k - 1 - slack + bt - 1) / bt);
    } else {
      for (const ScheduledItem& item : plan_.items)
        extra += std::max<int64_t>(
            0, kv_.blocks_for(item.request->computed_tokens + k) - item.request->kv_blocks);
    }
    return extra;
  };
  steps =
      most_steps_that_fit(steps, [&](int64_t k) { return blocks_needed(k) <= kv_.free_blocks(); });
  stretch_ignores_arrivals_ = waiting_stays;
  // When every request's predicted decode outlasts the stretch (the common case), each step
  // done credits one token per request; otherwise the per-request values are kept, and sorted
  // only if a router asks mid-stretch.
  stretch_left_sorted_.clear();
  stretch_left_prefix_.clear();
  if (least_left < steps)
    for (const ScheduledItem& item : plan_.items)
      stretch_left_sorted_.push_back(std::max<int64_t>(
          0, item.request->predicted_output_tokens - item.request->generated_tokens));
  return steps;
}

int64_t Instance::decode_set_stretch_limit() {
  // Only the decode set runs (no prefill rides along), and nothing waits that could join.
  if (!plan_.items.empty() || plan_.decode_set_members == 0) return 1;
  const bool waiting_stays = !waiting_.empty() && batcher_->admits_none_while_decoding(*this);
  if (!waiting_.empty() && !waiting_stays) return 1;
  int64_t steps = decode_set_.steps_to_next_finish();
  if (steps <= 1) return 1;
  // The first step's blocks were taken at plan; the later steps' must fit in the free ones.
  const int64_t held_after_first = decode_set_.held_blocks(1);
  auto fits = [&](int64_t k) {
    return decode_set_.held_blocks(k) - held_after_first <= kv_.free_blocks();
  };
  steps = most_steps_that_fit(steps, fits);
  stretch_ignores_arrivals_ = waiting_stays;
  return steps;
}

int64_t Instance::plan_stretch(const BatchShape& shape, Time first_step) {
  // Costs that are not affine in context (no KV cache, host-resident KV, interpolated kernel
  // tables) run step by step.
  if (!config_.closed_form_decode || shape.host_kv_tokens > 0 || shape.offload_tokens > 0 ||
      cost_.no_kv_cache || cost_.kernel_db != nullptr)
    return 1;
  const int64_t steps = decode_set_mode_ ? decode_set_stretch_limit() : stretch_limit(shape);
  if (steps <= 1) return 1;
  const int64_t n = shape.decode_sequences;
  // Step j attends over n more tokens per step: d_j = d_0 + j * slope. Verify the cost model
  // is affine here rather than assume it.
  auto price_at = [&](int64_t j) {
    BatchShape s = shape;
    s.decode_context_tokens += static_cast<double>(n * j);
    return price_iteration(cost_, s).total_s;
  };
  const double d0 = step_cost_.total_s;
  double slope = 0;
  if (decode_set_mode_) {
    // Only the decode set runs, and with fitted kernels the step cost is affine in the
    // attended context with a slope set by the batch size alone: price it once per batch size,
    // checked far out, and reuse it.
    if (decode_slope_.size() <= static_cast<size_t>(n))
      decode_slope_.resize(static_cast<size_t>(n) + 1, -1);
    double& cached = decode_slope_[static_cast<size_t>(n)];
    if (cached < 0) {
      constexpr int64_t kFar = int64_t{1} << 16;
      cached = price_at(1) - d0;
      const double far = price_at(kFar);
      if (cached < 0 || std::fabs(d0 + cached * static_cast<double>(kFar) - far) > 1e-9 * far)
        cached = std::numeric_limits<double>::infinity();  // not affine here: step by step
    }
    if (std::isinf(cached)) return 1;
    slope = cached;
  } else {
    slope = price_at(1) - d0;
    const double last = price_at(steps - 1);
    if (std::fabs(d0 + slope * static_cast<double>(steps - 1) - last) > 1e-9 * last) return 1;
  }
  // Each step rounds to whole nanoseconds as a step-mode iteration does.
  steps_ = StepSeries{first_step.ns, d0, slope, steps};
  step_end_ns_.resize(static_cast<size_t>(steps));
  int64_t t = sim_.now().ns;
  for (int64_t j = 0; j < steps; ++j) {
    t += steps_.duration_ns(j);
    step_end_ns_[static_cast<size_t>(j)] = t;
  }
  // The blocks of later steps are taken when the stretch's steps are applied (nothing else
  // allocates from this pool meanwhile), so occupancy and its peak stay those of step mode.
  return steps;
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

double Instance::block_bytes_per_gpu() const {
  return memory_.kv_bytes_per_token * static_cast<double>(config_.block_tokens);
}

int64_t Instance::blocks_per_hash(const Request& r) const {
  const int64_t bt = kv_.block_tokens();
  if (!config_.kv_policy.prefix_caching || r.spec.prefix_block_hashes.empty() ||
      r.spec.prefix_block_tokens <= 0 || r.spec.prefix_block_tokens % bt != 0)
    return 0;
  return r.spec.prefix_block_tokens / bt;
}

void Instance::lookup_prefix(Request* r) {
  if (r->prefix_looked_up) return;
  r->prefix_looked_up = true;
  const int64_t per_hash = blocks_per_hash(*r);
  if (per_hash == 0 || r->computed_tokens > 0) return;
  const auto& hashes = r->spec.prefix_block_hashes;
  // At least one prompt token must run, to produce the logits of the next token.
  const int64_t usable = (r->prefill_target_tokens() - 1) / r->spec.prefix_block_tokens;
  const int64_t n = std::min(prefix_cache_.match(hashes), usable);
  if (n <= 0) return;
  prefix_cache_.pin(hashes, n);
  r->shared_prefix_blocks = n * per_hash;
  r->kv_blocks = r->shared_prefix_blocks;
  outstanding_tokens_ -= outstanding_of(*r);
  r->computed_tokens = n * r->spec.prefix_block_tokens;
  outstanding_tokens_ += outstanding_of(*r);
  prefix_hit_tokens_ += r->computed_tokens;
}

void Instance::release_kv(Request* r) {
  const int64_t per_hash = blocks_per_hash(*r);
  int64_t adopted = 0;
  if (per_hash > 0) {
    const auto& hashes = r->spec.prefix_block_hashes;
    const int64_t shared_hashes = r->shared_prefix_blocks / per_hash;
    prefix_cache_.unpin(hashes, shared_hashes);
    // Full hashed blocks this request computed in VRAM join the cache (host blocks do not).
    const int64_t bt = kv_.block_tokens();
    const int64_t full_hashes = std::min<int64_t>(static_cast<int64_t>(hashes.size()),
                                                  r->computed_tokens / (per_hash * bt));
    for (int64_t i = shared_hashes; i < full_hashes; ++i) {
      if (i * per_hash < r->shared_prefix_blocks + r->host_blocks) continue;
      if (prefix_cache_.insert(hashes[static_cast<size_t>(i)], per_hash)) adopted += per_hash;
    }
  }
  const int64_t private_blocks = r->kv_blocks - r->shared_prefix_blocks - r->host_blocks;
  kv_.give_back(private_blocks - adopted);
  host_kv_.give_back(r->host_blocks);
  host_freed_bytes_per_gpu_ += static_cast<double>(r->host_blocks) * block_bytes_per_gpu();
  r->kv_blocks = r->shared_prefix_blocks = r->host_blocks = 0;
}

bool Instance::reclaim(int64_t missing_blocks, const int64_t* growing) {
  int64_t freed = 0;
  while (freed < missing_blocks) {
    const int64_t blocks = prefix_cache_.evict_one();
    if (blocks == 0) break;
    kv_.give_back(blocks);
    freed += blocks;
  }
  if (freed > 0) return true;
  if (!config_.kv_policy.prefix_caching)  // nothing is pinned: skip the scan of the queue
    return config_.kv_policy.mode == KvMode::kHostOffload && offload(missing_blocks);
  // Cached prefixes pinned by requests still waiting give way, the newest first: they are
  // looked up again when those requests come up. Only the request being admitted keeps its
  // pins. Without this, waiting requests could pin the pool and nothing could run; sparing
  // the head whatever was grown once let its pins force a running request out step after
  // step, each time losing the chunk it had computed past its cached prefix.
  for (size_t i = waiting_.size(); i-- > 0;) {
    Request* w = waiting_[i];
    if (w->shared_prefix_blocks == 0 || &w->kv_blocks == growing) continue;
    prefix_cache_.unpin(w->spec.prefix_block_hashes, w->shared_prefix_blocks / blocks_per_hash(*w));
    prefix_hit_tokens_ -= w->computed_tokens;
    outstanding_tokens_ -= outstanding_of(*w);
    w->computed_tokens = w->kv_blocks = w->shared_prefix_blocks = 0;
    outstanding_tokens_ += outstanding_of(*w);
    w->prefix_looked_up = false;
    return true;  // now evictable: the caller asks again
  }
  return config_.kv_policy.mode == KvMode::kHostOffload && offload(missing_blocks);
}

bool Instance::offload(int64_t missing_blocks) {
  (void)missing_blocks;  // a whole request's cold KV moves at once, as a vLLM swap does
  const int64_t bt = kv_.block_tokens();
  const int64_t window_blocks = config_.kv_policy.fetch == OffloadFetch::kHotWindow
                                    ? kv_.blocks_for(config_.kv_policy.hot_window_tokens)
                                    : 0;
  // Cold blocks: full, private, in VRAM, older than the hot window.
  auto cold = [&](const Request* q) {
    const int64_t full_private = q->computed_tokens / bt - q->shared_prefix_blocks - q->host_blocks;
    return std::max<int64_t>(0, full_private - window_blocks);
  };
  Request* victim = nullptr;
  for (Request* q : running_)
    if (cold(q) > 0 && (!victim || cold(q) > cold(victim))) victim = q;
  if (!victim) return false;
  const int64_t n = std::min(cold(victim), host_kv_.free_blocks());
  if (n <= 0) return false;
  host_kv_.take(n);
  kv_.give_back(n);
  victim->host_blocks += n;
  pending_offload_blocks_ += n;
  offloaded_bytes_per_gpu_ += static_cast<double>(n) * block_bytes_per_gpu();
  return true;
}

void Instance::grow_decode_set(IterationPlan& plan) {
  kv_.take(decode_set_growth_blocks());
  plan.decode_set_members = decode_set_.size();
}

void Instance::preempt(Request* r) {
  if (DecodeSet::is_member(*r)) {
    decode_set_.leave(*r);
    outstanding_tokens_ += outstanding_of(*r);
  }
  // Victims are the newest: search from the back.
  auto it = std::find(running_.rbegin(), running_.rend(), r);
  SERVESIM_CHECK(it != running_.rend(), "preempting request {} that is not running", r->id);
  running_.erase(std::next(it).base());
  release_kv(r);
  r->prefix_looked_up = false;
  outstanding_tokens_ -= outstanding_of(*r);
  r->computed_tokens = 0;
  r->in_decode = false;
  outstanding_tokens_ += outstanding_of(*r);
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
  step_cost_ = price_iteration(cost_, shape);
  // At least one nanosecond, so that a loop of empty-cost iterations still advances time.
  const Time first_step = std::max(Time::from_s(step_cost_.total_s), Time::from_ns(1));
  busy_ = true;
  iteration_start_ = sim_.now();
  step_end_ns_.clear();
  steps_done_hint_ = 0;
  if (plan_stretch(shape, first_step) == 1) {
    step_end_ns_.assign(1, (iteration_start_ + first_step).ns);
    steps_ = StepSeries{first_step.ns};
  }
  const Time end = Time::from_ns(step_end_ns_.back());
  observer_.on_iteration(*this, iteration_start_, end - iteration_start_, step_cost_);
  done_event_ = sim_.schedule_at(end, Phase::kIterationDone, [this] { finish_iteration(); });
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
  // Keep running_ in admission order (the batcher preempts from the back), and report in it.
  // Usually one request finishes: find it by pointer, without reading the others.
  finished_at_.clear();
  for (Request* r : finished) {
    const auto it = std::find(running_.begin(), running_.end(), r);
    SERVESIM_CHECK(it != running_.end(), "finished request {} is not running", r->id);
    finished_at_.push_back(static_cast<size_t>(it - running_.begin()));
  }
  std::sort(finished_at_.begin(), finished_at_.end());
  for (size_t i = 0; i < finished_at_.size(); ++i) finished[i] = running_[finished_at_[i]];
  size_t out = finished_at_.front();
  for (size_t in = out, next = 0; in < running_.size(); ++in) {
    if (next < finished_at_.size() && finished_at_[next] == in) {
      ++next;
      continue;
    }
    running_[out++] = running_[in];
  }
  running_.resize(out);
  for (Request* r : finished) observer_.on_finish(*r);
  finished.clear();
}

void Instance::finish_iteration() {
  busy_ = false;
  const auto steps = static_cast<int64_t>(step_end_ns_.size());
  iterations_ += static_cast<uint64_t>(steps);
  busy_time_ += sim_.now() - iteration_start_;
  // Per-step traffic is the same at every step of a stretch (host traffic never is in one).
  tp_bytes_per_gpu_ += step_cost_.tp_bytes_per_gpu * static_cast<double>(steps);
  pp_bytes_per_hop_ += step_cost_.pp_bytes_per_hop * static_cast<double>(steps);
  priced_gpu_to_host_bytes_ += step_cost_.gpu_to_host_bytes_per_gpu;
  priced_host_to_gpu_bytes_ += step_cost_.host_to_gpu_bytes_per_gpu;
  std::vector<Request*>& finished = finished_scratch_;
  finished.clear();
  if (decode_set_mode_) {
    finish_decode_set_iteration(steps);
  } else {
    if (steps > 1) {
      observer_.on_decode_stretch(plan_.items, step_end_ns_);
      for (const ScheduledItem& item : plan_.items) {
        Request* r = item.request;
        outstanding_tokens_ -= outstanding_of(*r);
        const bool grown = kv_.try_grow(r->kv_blocks, r->computed_tokens + steps);
        SERVESIM_CHECK(grown, "KV for a decode stretch ran out for request {}", r->id);
        r->computed_tokens += steps;
        r->generated_tokens += steps;
        r->last_token = sim_.now();
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
      }
    }
  }
  report_finished(finished);
  start_iteration();
}

void Instance::finish_decode_set_iteration(int64_t steps) {
  std::vector<Request*>& finished = finished_scratch_;
  if (plan_.decode_set_members > 0) {
    SERVESIM_CHECK(steps_.steps == steps, "step series of {} steps for {}", steps_.steps, steps);
    observer_.on_decode_steps(decode_set_.recorded(), steps_);
    // The first step's blocks were taken at plan; the later steps' are taken as they apply.
    kv_.take(decode_set_.held_blocks(steps) - decode_set_.held_blocks(1));
    decode_set_.advance(steps, sim_.now());
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
