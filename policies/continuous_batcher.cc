#include "policies/continuous_batcher.h"

#include <algorithm>

namespace servesim {

void ContinuousBatcher::plan(BatchContext& ctx, IterationPlan& plan) {
  if (config_.prefill_priority && plan_prefill_only(ctx, plan)) return;
  KvBlockPool& kv = ctx.kv();
  RunningList& running = ctx.running();
  running.compact();  // read by position below
  int64_t budget = config_.max_num_batched_tokens;
  bool preempted = false;
  int64_t decodes = 0;

  // Running requests first, oldest first: they already hold KV.
  for (size_t i = 0; i < running.size() && budget > 0; ++i) {
    Request* r = running[i];
    const int64_t n = r->in_decode ? 1 : continuing_chunk(kv, *r, budget);
    bool scheduled = true;
    while (!kv.try_grow(r->kv_blocks, r->computed_tokens + n)) {
      Request* victim = running.back();
      ctx.preempt(victim);
      preempted = true;
      if (victim == r) {
        scheduled = false;
        break;
      }
    }
    if (!scheduled) break;  // r was the newest; everything after it is gone too
    plan.items.push_back({r, n});
    budget -= n;
    if (r->in_decode) ++decodes;
  }

  // Then new requests, first come first served. After a preemption vLLM admits nothing new in
  // the same step: memory is short.
  if (!preempted && !hold_prompts(ctx, budget, decodes)) admit_waiting(ctx, plan, budget);
}

void ContinuousBatcher::plan_decode_set(DecodeSetContext& ctx, IterationPlan& plan) {
  // The same decisions as plan(). There, running requests grow in order and the newest are
  // preempted until the one at hand fits; since fitting a prefix only gets easier as the
  // prefix shrinks and the blocks behind it are freed, that keeps the longest prefix whose
  // growth fits, which is what preempting from the back until the whole growth fits keeps.
  KvBlockPool& kv = ctx.kv();
  RunningList& running = ctx.running();
  bool preempted = false;
  Request* tail = nullptr;  // the newest request, when it is still prefilling
  int64_t chunk = 0;
  for (;;) {
    const int64_t members = ctx.decode_set_size();
    tail = static_cast<int64_t>(running.size()) > members ? running.back() : nullptr;
    int64_t need = ctx.decode_set_growth_blocks();
    if (tail) {
      chunk = std::min(config_.max_num_batched_tokens - members,
                       tail->prefill_target_tokens() - tail->computed_tokens);
      need += kv.blocks_for(tail->computed_tokens + chunk) - tail->kv_blocks;
    }
    if (need <= kv.free_blocks()) break;
    // As plan() grows each request: what the cache can give back goes before a request.
    if (kv.reclaim(need - kv.free_blocks())) continue;
    // plan() grows the members, oldest first, until the free blocks run out (then it evicts,
    // which keeps the blocks in use), before it preempts anyone: that is the step's peak.
    if (!preempted)
      kv.note_in_use(kv.used_blocks() + std::min(ctx.decode_set_growth_blocks(), kv.free_blocks()));
    ctx.preempt(running.back());
    preempted = true;
  }
  ctx.grow_decode_set(plan);
  int64_t budget = config_.max_num_batched_tokens - plan.decode_set_members;
  if (tail) {
    const bool grown = kv.try_grow(tail->kv_blocks, tail->computed_tokens + chunk);
    SERVESIM_CHECK(grown, "KV for request {}'s prefill chunk ran out", tail->id);
    plan.items.push_back({tail, chunk});
    budget -= chunk;
  }
  if (preempted)
    note_blocked_head(ctx, budget);
  else if (!hold_prompts(ctx, budget, plan.decode_set_members))
    admit_waiting(ctx, plan, budget, /*remember_blocked=*/true);
}

bool ContinuousBatcher::head_stays_blocked(BatchContext& ctx, int64_t budget) const {
  const Request* head = ctx.waiting().front();
  // Cached blocks other than the head's own can be evicted for it.
  return head == blocked_.request && budget == blocked_.budget &&
         ctx.kv().free_blocks() + ctx.cached_kv_blocks() - ctx.kept_kv_blocks(*head) <
             blocked_.need_blocks;
}

void ContinuousBatcher::note_blocked_head(BatchContext& ctx, int64_t budget) {
  // After a preemption nothing joins this iteration. What the head's try in the next one will
  // find is known now: the try takes back what the cache kept of it, and fails, changing
  // nothing, if the rest of its chunk exceeds the free and the other cached blocks. Noting it
  // now, as that try would, lets the decodes run on in closed form from here.
  const KvBlockPool& kv = ctx.kv();
  const std::deque<Request*>& waiting = ctx.waiting();
  if (config_.reserve_full_output || config_.batch_wait_timeout_iters > 0 || waiting.empty() ||
      budget <= 0 || static_cast<int64_t>(ctx.running().size()) >= config_.max_num_seqs)
    return;
  Request* head = waiting.front();
  const int64_t kept = ctx.kept_kv_blocks(*head);
  const int64_t bt = kv.block_tokens();
  // resume_kept_kv keeps at most the blocks before the last prompt token, giving the rest back.
  if (head->computed_tokens != 0 || kept > (head->prefill_target_tokens() - 1) / bt) return;
  const int64_t remaining = head->prefill_target_tokens() - kept * bt;
  if (!config_.chunked_prefill && remaining > budget && budget < config_.max_num_batched_tokens)
    return;
  const int64_t chunk = prefill_chunk(kv, kept * bt, remaining, budget);
  const int64_t need = kv.blocks_for(kept * bt + chunk) - kept;
  if (need > kv.free_blocks() + ctx.cached_kv_blocks() - kept) blocked_ = {head, budget, need};
}

int64_t ContinuousBatcher::admissible_tokens(BatchContext& ctx, int64_t budget) const {
  // admit_waiting's walk without its effects: what a cache kept of a preempted request is not
  // taken back, so its prompt counts whole (TensorRT-LLM 1.1 counts every token of a context
  // request, reused or not), and blocks a cache could reclaim are not counted as free.
  const KvBlockPool& kv = ctx.kv();
  int64_t reserved_blocks = 0;
  if (config_.reserve_full_output)
    for (const Request* r : ctx.running()) reserved_blocks += full_blocks(kv, *r);
  int64_t free_blocks = kv.free_blocks();
  auto seqs = static_cast<int64_t>(ctx.running().size());
  int64_t tokens = 0;
  for (const Request* r : ctx.waiting()) {
    if (budget <= 0 || seqs >= config_.max_num_seqs) break;
    if (config_.reserve_full_output && reserved_blocks + full_blocks(kv, *r) > kv.total_blocks())
      break;
    const int64_t remaining = r->prefill_target_tokens() - r->computed_tokens;
    if (!config_.chunked_prefill && remaining > budget && budget < config_.max_num_batched_tokens)
      break;
    const int64_t n = prefill_chunk(kv, r->computed_tokens, remaining, budget);
    const int64_t need = kv.blocks_for(r->computed_tokens + n) - r->kv_blocks;
    if (need > free_blocks) break;
    free_blocks -= need;
    ++seqs;
    tokens += n;
    budget -= n;
    if (config_.reserve_full_output) reserved_blocks += full_blocks(kv, *r);
  }
  return tokens;
}

bool ContinuousBatcher::hold_prompts(BatchContext& ctx, int64_t budget, int64_t decodes) {
  // TensorRT-LLM waits only beside running decodes ("to avoid dead waiting") and counts an
  // iteration only when there were prompts to hold.
  if (config_.batch_wait_timeout_iters <= 0 || decodes == 0 || ctx.waiting().empty()) return false;
  const int64_t prompts = admissible_tokens(ctx, budget);
  if (prompts == 0) return false;
  const double full_tokens =
      config_.batch_wait_max_tokens_ratio * static_cast<double>(config_.max_num_batched_tokens);
  if (held_iters_ >= config_.batch_wait_timeout_iters ||
      static_cast<double>(prompts + decodes) >= full_tokens) {
    held_iters_ = 0;
    return false;
  }
  ++held_iters_;
  return true;
}

int64_t ContinuousBatcher::full_blocks(const KvBlockPool& kv, const Request& r) const {
  return kv.blocks_for(r.spec.prompt_tokens + r.spec.output_tokens);
}

int64_t ContinuousBatcher::admit_waiting(BatchContext& ctx, IterationPlan& plan, int64_t budget,
                                         bool remember_blocked) {
  KvBlockPool& kv = ctx.kv();
  RunningList& running = ctx.running();
  std::deque<Request*>& waiting = ctx.waiting();
  // No-evict admission: what the running requests will hold at their last token (read from
  // their specs, which a decode set keeps current).
  int64_t reserved_blocks = 0;
  if (config_.reserve_full_output)
    for (const Request* r : running) reserved_blocks += full_blocks(kv, *r);
  while (!waiting.empty() && budget > 0 &&
         static_cast<int64_t>(running.size()) < config_.max_num_seqs) {
    Request* r = waiting.front();
    // Waiting requests do not change, so the same head at the same budget needs as much.
    if (remember_blocked && head_stays_blocked(ctx, budget)) break;
    if (config_.reserve_full_output && reserved_blocks + full_blocks(kv, *r) > kv.total_blocks())
      break;  // waits until running requests finish and give their reservation back
    ctx.resume_kept_kv(r);
    const int64_t remaining = r->prefill_target_tokens() - r->computed_tokens;
    if (!config_.chunked_prefill && remaining > budget && budget < config_.max_num_batched_tokens) {
      ctx.return_kept_kv(r);
      break;  // unchunked: a long prompt waits for an iteration of its own
    }
    const int64_t n = prefill_chunk(kv, r->computed_tokens, remaining, budget);
    if (!kv.try_grow(r->kv_blocks, r->computed_tokens + n)) {
      if (remember_blocked)
        blocked_ = {r, budget, kv.blocks_for(r->computed_tokens + n) - r->kv_blocks};
      ctx.return_kept_kv(r);
      break;
    }
    waiting.pop_front();
    if (r == blocked_.request) blocked_ = {};
    running.push_back(r);
    r->state = RequestState::kRunning;
    if (r->first_scheduled == Time::max()) r->first_scheduled = ctx.now();
    plan.items.push_back({r, n});
    budget -= n;
    if (config_.reserve_full_output) reserved_blocks += full_blocks(kv, *r);
  }
  return budget;
}

bool ContinuousBatcher::plan_prefill_only(BatchContext& ctx, IterationPlan& plan) {
  RunningList& running = ctx.running();
  if (ctx.waiting().empty() || static_cast<int64_t>(running.size()) >= config_.max_num_seqs)
    return false;
  // A request whose KV arrived from a prefill replica joins as a decode: nothing to prefill.
  if (ctx.waiting().front()->in_decode) return false;
  int64_t budget = config_.max_num_batched_tokens;
  // Unfinished chunked prefills continue first; they already hold their earlier chunks' KV.
  for (Request* r : running) {
    if (r->in_decode || budget <= 0) continue;
    const int64_t n = continuing_chunk(ctx.kv(), *r, budget);
    if (!ctx.kv().try_grow(r->kv_blocks, r->computed_tokens + n)) continue;
    plan.items.push_back({r, n});
    budget -= n;
  }
  const size_t continued = plan.items.size();
  admit_waiting(ctx, plan, budget);
  if (plan.items.size() > continued) return true;
  // Nothing new could start (KV is short): fall back to a mixed iteration so decodes finish
  // and free memory. Undo nothing: growth kept is growth the mixed plan would make too.
  plan.clear();
  return false;
}

bool ContinuousBatcher::admits_none_while_decoding(BatchContext& ctx) {
  const std::deque<Request*>& waiting = ctx.waiting();
  const auto running = static_cast<int64_t>(ctx.running().size());
  if (waiting.empty() || running >= config_.max_num_seqs) return true;
  // Every running request decodes one token; what is left of the budget goes to the head.
  const int64_t budget = config_.max_num_batched_tokens - running;
  if (budget <= 0) return true;
  const Request* head = waiting.front();
  // A head found blocked at this budget that still lacks the blocks: admit_waiting stops at it
  // before touching anything, and free and cached blocks only shrink while the batch decodes.
  if (head_stays_blocked(ctx, budget)) return true;
  // Otherwise a try would take back what the cache kept of the head, or evict for it.
  if (ctx.cached_kv_blocks() > 0) return false;
  const int64_t remaining = head->prefill_target_tokens() - head->computed_tokens;
  if (!config_.chunked_prefill && remaining > budget) return true;  // waits for a batch alone
  const int64_t chunk = prefill_chunk(ctx.kv(), head->computed_tokens, remaining, budget);
  // Free blocks only shrink while the batch decodes, so a head that does not fit now will not.
  return ctx.kv().blocks_for(head->computed_tokens + chunk) - head->kv_blocks >
         ctx.kv().free_blocks();
}

}  // namespace servesim
