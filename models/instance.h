#pragma once
/// A replica: a model placed on tp x pp GPUs, its paged KV cache, its queues and its
/// iteration loop. The batcher decides each iteration's contents; the cost model prices it;
/// the instance applies the result (tokens, first-token and finish times, freed KV).

#include <deque>
#include <limits>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "models/batcher.h"
#include "models/cluster.h"
#include "models/cost_model.h"
#include "models/decode_set.h"
#include "models/kv_cache.h"
#include "models/prefix_cache.h"
#include "models/request.h"
#include "sim/default_init_allocator.h"
#include "sim/error.h"
#include "sim/simulator.h"
#include "sim/step_series.h"

namespace servesim {

class Instance;
class StepTraffic;

/// Receives what happens to requests and iterations; metrics live here, never in policies.
class InstanceObserver {
 public:
  virtual ~InstanceObserver() = default;
  virtual void on_first_token(const Request& r) { (void)r; }
  /// A token after the first; `gap` is the time since the request's previous token.
  virtual void on_token(const Request& r, Time gap) { (void)r, (void)gap; }
  virtual void on_finish(Request& r) = 0;
  /// A prefill replica (InstanceRole::kPrefill) finished `r`'s prefill and emitted its first
  /// token: `r` has left its queues and still holds its KV there until
  /// Instance::release_handed_off. Only observers of disaggregated replicas receive it.
  virtual void on_prefill_handoff(Request& r) {
    SERVESIM_CHECK(false, "request {} handed off with no one to take it", r.id);
  }
  /// `r`'s KV (`bytes` in all) reached its decode replica, `duration` after its prefill ended
  /// (or, with `migration`, after its replica let it go instead of preempting it).
  virtual void on_kv_transfer(const Request& r, Time duration, double bytes, bool migration) {
    (void)r, (void)duration, (void)bytes, (void)migration;
  }
  /// A replica must preempt decoding request `r` for KV: the observer may move its KV to
  /// another replica instead of a recompute. True when it took `r` (which then has left the
  /// replica's queues; its KV is freed there at once).
  virtual bool on_migrate(Request& r) {
    (void)r;
    return false;
  }
  virtual void on_drop(Request& r, std::string_view reason) = 0;
  /// A stretch of identical decode steps computed in closed form: every request of `items`
  /// emitted one token at each of `step_end_ns` (absolute times). Called before the requests'
  /// counters move, so `last_token` is still the time of their previous token. The default
  /// replays it as on_token calls; observers may take it whole (cost O(requests + steps)).
  virtual void on_decode_stretch(const std::vector<ScheduledItem>& items,
                                 std::span<const int64_t> step_end_ns) {
    for (size_t j = 0; j < step_end_ns.size(); ++j)
      for (const ScheduledItem& item : items) {
        const int64_t previous = j == 0 ? item.request->last_token.ns : step_end_ns[j - 1];
        on_token(*item.request, Time::from_ns(step_end_ns[j] - previous));
      }
  }
  /// Whether `r`'s tokens count in the inter-token statistics (on_decode_steps counts only those).
  virtual bool records_tokens_of(const Request& r) const {
    (void)r;
    return true;
  }
  /// Decode steps of a replica's decode set (models/decode_set.h): `requests` recorded members
  /// each emitted one token at the end of each step of `steps` (`later`: the sums over its
  /// steps after the first), the first step starting when they had all emitted their previous
  /// token. Instead of on_token for those tokens.
  virtual void on_decode_steps(uint64_t requests, const StepSeries& steps,
                               const LaterStepSums& later) {
    (void)requests, (void)steps, (void)later;
  }
  /// Once per iteration, or once per closed-form stretch of decode steps (`duration` then
  /// covers the whole stretch).
  virtual void on_iteration(const Instance& instance, Time start, Time duration,
                            const IterationCost& cost) {
    (void)instance, (void)start, (void)duration, (void)cost;
  }
  /// The iteration in flight (one step) ended at another time than on_iteration said: its
  /// network transfers shared their links (StepTraffic). planned_steps() and
  /// planned_step_end_ns() now hold its actual length and end.
  virtual void on_step_resized(const Instance& instance) { (void)instance; }
};

/// How a replica's GPU memory is divided; the same on every GPU of the replica.
struct MemoryPlan {
  double gpu_memory_bytes = 0;    ///< of the smallest GPU in the replica
  double weight_bytes = 0;        ///< per GPU
  double reserve_bytes = 0;       ///< per GPU: activations, CUDA context, allocator slack
  double kv_bytes = 0;            ///< per GPU, whole blocks only
  double kv_bytes_per_token = 0;  ///< per GPU
  int64_t kv_blocks = 0;
  /// Positive when the weights and reserve do not fit: the bytes missing.
  double shortfall_bytes = 0;
};

/// What a replica does with a request: all of it, or one phase of disaggregated serving
/// (DistServe, Splitwise): a prefill replica hands each request's KV on to a decode replica
/// once its first token is out.
enum class InstanceRole : uint8_t { kMixed, kPrefill, kDecode };
std::string_view instance_role_name(InstanceRole role);

struct InstanceConfig {
  std::string name;
  InstanceRole role = InstanceRole::kMixed;
  std::vector<int> gpus;  ///< cluster GPU indices, tp x pp of them, stage-major
  int tp = 1;
  int pp = 1;
  /// How an MoE model splits over the tp GPUs, and how its routed tokens spread over experts.
  MoeLayout moe;
  ExpertSkew expert_load;
  int64_t block_tokens = 16;
  double reserve_fraction = 0.1;  ///< of GPU memory, as vLLM's gpu_memory_utilization 0.9
  double reserve_bytes = 0;       ///< added to the fraction
  /// Between two changes of the batch, decode steps follow a known formula of the growing
  /// context: compute the stretch up to the next change at once instead of one event per
  /// token. Off (`--exact-steps`) runs every step as its own event, the reference.
  bool closed_form_decode = true;
  /// With pp > 1, run an iteration as min(pp, requests) micro-batches in flight through the
  /// stages at once (vLLM's virtual engines): a round lasts one micro-batch's way through every
  /// stage, and each stage is busy for its micro-batches only (the pipeline bubble). Off: one
  /// batch at a time, each stage busy 1/pp of the iteration.
  bool pp_microbatching = true;
  /// Longest context a request may reach (0: whatever the KV cache can hold).
  int64_t max_model_len = 0;
  KvPolicyConfig kv_policy;
  /// Host memory this replica may fill with offloaded KV, summed over its GPUs (host_offload).
  double host_kv_bytes = 0;
};

/// The replica's GPU with the least memory (the first such): every GPU holds the same share.
const GpuSpec& smallest_gpu(const InstanceConfig& config, const Cluster& cluster);
/// Memory of the smallest GPU among the replica's.
double smallest_gpu_memory_bytes(const InstanceConfig& config, const Cluster& cluster);
MemoryPlan plan_memory(const InstanceConfig& config, const Cluster& cluster, const ModelSpec& model,
                       const Precision& precision);

class Instance final : public DecodeSetContext, public RequestSink {
 public:
  Instance(int index, InstanceConfig config, CostModelConfig cost, const Cluster& cluster,
           Simulator& sim, std::unique_ptr<Batcher> batcher, InstanceObserver& observer);

  /// A request routed here. Dropped at once if its prompt can never fit. On a decode replica,
  /// a request whose prefill ran elsewhere: its KV has arrived, and it is admitted as a decode.
  void enqueue(Request* r) override;
  /// A prefill replica gives up the KV of a request it handed off (on_prefill_handoff), once
  /// the transfer is done.
  void release_handed_off(Request* r);
  /// Requests handed off whose KV this replica still holds.
  int64_t handoffs_in_flight() const { return handoffs_in_flight_; }

  /// From now on the iteration traffic that crosses the network runs as flows on shared links
  /// (models/step_traffic.h): each step waits for its transfers. Needs step-by-step mode
  /// (closed_form_decode off), as a step's length is known only when its flows end.
  void set_step_traffic(StepTraffic* traffic);
  const StepTraffic* step_traffic() const { return step_traffic_; }
  /// Steps whose transfers ran as flows, and the time they waited beyond their price (what
  /// other flows on their links cost them).
  uint64_t network_steps() const { return network_steps_; }
  double network_wait_s() const { return network_wait_s_; }

  // Faults (policies/faults.h).
  /// Whether the replica takes requests (false between fail() and recover()).
  bool available() const { return available_; }
  /// The replica fails now. The iteration in flight is lost (the steps of a closed-form
  /// stretch that ended before now are kept, as step by step they would have been), its GPU
  /// memory is lost (KV, prefix cache, offloaded KV), and every request it held is appended to
  /// `evicted`, running ones first in admission order, then the waiting queue, each reset to be
  /// recomputed from its prompt and the tokens it already emitted. Returns the tokens of KV
  /// lost (the work a recompute must redo).
  int64_t fail(std::vector<Request*>& evicted);
  /// The replica is back, empty.
  void recover();
  /// From now on iterations are priced with `cost` (a degraded link changes its paths) and
  /// take `slowdown` times as long (a straggler GPU). A stretch in flight ends at its next
  /// step, as step by step the next step would be priced anew.
  void set_pace(const CostModelConfig& cost, double slowdown);
  double slowdown() const { return slowdown_; }

  // What a router may know.
  int index() const { return index_; }
  const std::string& name() const { return config_.name; }
  const InstanceConfig& config() const { return config_; }
  const MemoryPlan& memory() const { return memory_; }
  const CostModelConfig& cost_config() const { return cost_; }
  int64_t kv_capacity_tokens() const { return kv_.capacity_tokens(); }
  int64_t max_context_tokens() const { return max_context_tokens_; }
  size_t num_waiting() const { return waiting_.size(); }
  size_t num_running() const { return running_.size(); }
  /// Tokens still to process for resident requests, using each request's predicted output,
  /// and for requests whose KV is on its way here (expect). Kept as a running count (routers
  /// ask on every arrival); O(log batch) mid-stretch.
  int64_t outstanding_tokens() const { return resident_outstanding_tokens() + incoming_tokens_; }
  /// At most outstanding_tokens(), without finding how many steps of a decode-set stretch are
  /// done (as if all were): what a router may compare first. The minimum when no cheaper.
  int64_t outstanding_tokens_floor() const {
    if (!decode_set_mode_ || !busy_ || steps_.steps <= 1)
      return std::numeric_limits<int64_t>::min();
    return outstanding_tokens_ + stretch_decode_left_floor_ + incoming_tokens_;
  }
  /// `r`'s KV is on its way here (a disaggregated hand-off or a migration): until it arrives
  /// (arrived, then enqueue) its decode left counts in outstanding_tokens(), so routers choosing
  /// while transfers are in flight see it.
  void expect(const Request& r) { incoming_tokens_ += outstanding_of(r); }
  void arrived(const Request& r) { incoming_tokens_ -= outstanding_of(r); }
  int64_t incoming_tokens() const { return incoming_tokens_; }
  /// The same by scanning the queues: the reference the running count is tested against.
  int64_t outstanding_tokens_scan() const;

  // Statistics.
  const KvBlockPool& kv_pool() const { return kv_; }
  /// KV blocks in use now, as a step-by-step run would hold them (mid-stretch, the pool is
  /// only brought up to date when the stretch's steps are applied).
  int64_t kv_used_blocks_now() const;
  Time busy_time() const { return busy_time_; }
  /// Seconds each PP stage's GPUs computed (busy_time() with one stage): its micro-batches'
  /// share of each iteration.
  double stage_busy_s() const { return config_.pp == 1 ? busy_time_.to_s() : stage_busy_s_; }
  /// The steps of the iteration in flight or last run (more than one for a closed-form stretch);
  /// none once a failure lost them.
  const StepSeries& planned_steps() const { return steps_; }
  /// End time of step `k` of the iteration in flight (one step, or a stretch as cut), exact:
  /// the first step's end plus the later steps' durations, summed when asked.
  int64_t planned_step_end_ns(int64_t k) const;
  /// How many of its steps end before `t_ns` (strictly), in O(1) but near a step's end.
  int64_t planned_steps_ending_before(int64_t t_ns) const;
  uint64_t iterations() const { return iterations_; }
  uint64_t requests_seen() const { return requests_seen_; }
  uint64_t preemptions() const { return preemptions_; }
  /// Preemptions that moved the request's KV to another replica instead of a recompute.
  uint64_t migrations() const { return migrations_; }
  size_t peak_running() const { return peak_running_; }
  /// Prompt (and recompute) tokens actually run through prefill, and those the prefix cache
  /// supplied instead.
  int64_t prefill_tokens() const { return prefill_tokens_; }
  int64_t prefix_hit_tokens() const { return prefix_hit_tokens_; }
  /// Tokens preempted requests did not recompute: their own KV was still cached.
  int64_t preempted_kv_reused_tokens() const { return preempted_kv_reused_tokens_; }
  /// KV blocks the prefix cache holds (counted in kv_pool().used_blocks()).
  int64_t cached_prefix_blocks() const { return prefix_cache_.blocks(); }
  const KvBlockPool& host_kv_pool() const { return host_kv_; }
  /// Offload traffic per GPU, as the replica moved blocks (to host) and as the iterations
  /// priced it (the cost model's bytes): two independent counts of the same bytes.
  double offloaded_bytes_per_gpu() const { return offloaded_bytes_per_gpu_; }
  double host_freed_bytes_per_gpu() const { return host_freed_bytes_per_gpu_; }
  double priced_gpu_to_host_bytes_per_gpu() const { return priced_gpu_to_host_bytes_; }
  double priced_host_to_gpu_bytes_per_gpu() const { return priced_host_to_gpu_bytes_; }
  double tp_bytes_per_gpu() const { return tp_bytes_per_gpu_; }
  double pp_bytes_per_hop() const { return pp_bytes_per_hop_; }
  /// Bytes each GPU sent in EP all-to-alls to peers of its node and to other nodes.
  double ep_intra_bytes_per_gpu() const { return ep_intra_bytes_per_gpu_; }
  double ep_inter_bytes_per_gpu() const { return ep_inter_bytes_per_gpu_; }
  bool idle() const {
    return !busy_ && waiting_.empty() && running_.empty() && handoffs_in_flight_ == 0;
  }

  // BatchContext.
  std::deque<Request*>& waiting() override { return waiting_; }
  RunningList& running() override { return running_; }
  KvBlockPool& kv() override { return kv_; }
  void preempt(Request* r) override;
  void resume_kept_kv(Request* r) override;
  void return_kept_kv(Request* r) override;
  int64_t cached_kv_blocks() const override { return prefix_cache_.blocks(); }
  int64_t kept_kv_blocks(const Request& r) const override {
    return prefix_cache_.own_blocks(r.kept_kv_handle, r.id);
  }
  Time now() const override { return sim_.now(); }

  // DecodeSetContext.
  int64_t decode_set_size() const override { return decode_set_.size(); }
  int64_t decode_set_growth_blocks() const override { return decode_set_.growth_blocks(); }
  void grow_decode_set(IterationPlan& plan) override;
  /// Whether decoding requests are kept in aggregate: closed-form mode, a batcher that plans
  /// over a DecodeSetContext, KV in VRAM only with no prefix cache, and fitted costs.
  bool uses_decode_set() const { return decode_set_mode_; }

 private:
  int64_t resident_outstanding_tokens() const;
  void request_schedule();
  /// The cost model's price of an iteration, at this replica's pace (slowdown).
  IterationCost price(const BatchShape& shape) const;
  /// finish_iteration's work on the plan's requests, without starting the next iteration.
  void apply_iteration();
  static void prefetch(const Request* r);
  void start_iteration();
  void finish_iteration();
  /// The step's transfers (step_traffic_) have arrived: it ends now.
  void finish_network_step();
  /// finish_iteration's handling of the plan's requests in decode-set mode.
  void finish_decode_set_iteration(int64_t steps);
  /// A request leaves: finished, its KV released; on_finish follows in running order.
  void finish_request(Request* r);
  /// Removes the finished requests from running_ (keeping admission order) and reports them.
  void report_finished(std::vector<Request*>& finished);
  /// Removes `leaving` from running_, keeping admission order; `leaving` comes out in it.
  void remove_from_running(std::vector<Request*>& leaving);
  /// A prefill replica passes the requests whose prefill ended on to their decode replicas.
  void hand_off(std::vector<Request*>& handed);
  void emit_token(Request* r);
  /// Decode steps the current plan can repeat unchanged (setting steps_, its sums and end, and
  /// reserving their KV), or 1 when the next step may differ or the cost is not affine in context.
  int64_t plan_stretch(const BatchShape& shape, Time first_step);
  /// The steps plan_stretch may take before a change, from the batch's requests one by one, or
  /// from the decode set's aggregates; 1 when the next step may differ.
  int64_t stretch_limit(const BatchShape& shape);
  int64_t decode_set_stretch_limit();
  /// An arrival ends the stretch at the first step boundary at or after now.
  void truncate_stretch();
  /// Keeps the first `keep` steps (at least one) of the iteration in flight.
  void cut_steps(int64_t keep);
  /// Steps of the current stretch completed before now (strictly).
  int64_t stretch_steps_done() const;
  /// One request's share of outstanding_tokens(): prefill left plus predicted decode left,
  /// `steps_ahead` decode steps later.
  static int64_t outstanding_of(const Request& r, int64_t steps_ahead = 0);
  /// Pins the cached prefix of a request that is (again) waiting to start.
  void lookup_prefix(Request* r);
  /// Hands `blocks` leading blocks of a request's context, taken from the pool, to the cache
  /// as its own entry, evictable from its end, which the request finds again when it resumes.
  void keep_own_kv(Request* r, int64_t blocks);

  /// Returns all of a request's KV: shared blocks unpinned, its full prompt blocks handed to
  /// the prefix cache (when enabled), host blocks freed, the rest back to the pool.
  void release_kv(Request* r);
  /// The pool's reclaimer: evict cached prefixes, then offload cold KV to host. `growing` is
  /// the holding being grown (a request's kv_blocks), whose pins stay.
  bool reclaim(int64_t missing_blocks, const int64_t* growing);
  /// Moves the coldest holding's full private blocks to host: a running request's, or that of
  /// `growing` when it is the waiting head's.
  bool offload(int64_t missing_blocks, const int64_t* growing);
  /// KV blocks per prefix hash for this request (0: its hashes cannot be cached here).
  int64_t blocks_per_hash(const Request& r) const;
  double block_bytes_per_gpu() const;

  int index_;
  InstanceConfig config_;
  CostModelConfig cost_;
  /// GEMM times price() reuses while cost_ stays (cleared when it changes).
  mutable GemmTimeCache gemm_cache_;
  bool available_ = true;
  double slowdown_ = 1.0;
  MemoryPlan memory_;
  Simulator& sim_;
  std::unique_ptr<Batcher> batcher_;
  InstanceObserver& observer_;
  KvBlockPool kv_;
  KvBlockPool host_kv_;
  PrefixCache prefix_cache_;
  int64_t pending_offload_blocks_ = 0;
  int64_t max_context_tokens_ = 0;

  std::deque<Request*> waiting_;
  RunningList running_;
  bool decode_set_mode_ = false;
  DecodeSet decode_set_;
  std::vector<Request*> finished_scratch_;
  std::vector<Request*> handoff_scratch_;
  int64_t handoffs_in_flight_ = 0;
  std::vector<size_t> finished_at_;
  IterationPlan plan_;
  bool busy_ = false;
  bool schedule_pending_ = false;
  EventId wakeup_;
  Time iteration_start_;
  /// The steps of the iteration in flight as durations (what the observer is told), from
  /// iteration_start_; the sums over its steps after the first, and the end of its last step.
  /// Step end times are derived when asked (planned_step_end_ns), never stored.
  StepSeries steps_{0, 0, 0, 0};
  LaterStepSums later_sums_;
  LaterStepClock step_clock_;  ///< how many of its steps end before an instant
  /// Decode-set mode: the members' predicted decode left once the stretch's last step is done,
  /// the least it falls to within the stretch (outstanding_tokens_floor).
  int64_t stretch_decode_left_floor_ = 0;
  int64_t last_step_end_ns_ = 0;
  /// A stretch's step end times, for the observers that take them (on_decode_stretch).
  std::vector<int64_t, DefaultInitAllocator<int64_t>> step_end_scratch_;
  /// Decode-set mode: the step cost's slope per extra step, by batch size (-1: not priced yet,
  /// infinity: not affine).
  std::vector<double> decode_slope_;
  /// The stretch in flight was planned with requests waiting that the batcher cannot admit:
  /// later arrivals queue behind them and leave the stretch alone.
  bool stretch_ignores_arrivals_ = false;
  /// Scratch for plan_stretch: requests by free token slots in their last KV block.
  std::vector<int64_t> slack_count_;
  EventId done_event_;
  StepTraffic* step_traffic_ = nullptr;
  uint64_t network_steps_ = 0;
  double network_wait_s_ = 0;
  IterationCost step_cost_;
  /// Running count behind outstanding_tokens(), as of the last applied step.
  int64_t outstanding_tokens_ = 0;
  /// Outstanding tokens of the requests expected (expect) and not yet arrived.
  int64_t incoming_tokens_ = 0;
  /// For a stretch in flight: each request's predicted decode left at its start, sorted, with
  /// prefix sums, so the steps already past can be credited without a scan.
  /// Empty when every request's predicted decode outlasts the stretch; sorted lazily.
  mutable std::vector<int64_t> stretch_left_sorted_;
  mutable std::vector<int64_t> stretch_left_prefix_;

  Time busy_time_;
  double stage_busy_s_ = 0;
  uint64_t iterations_ = 0;
  uint64_t requests_seen_ = 0;
  uint64_t preemptions_ = 0;
  uint64_t migrations_ = 0;
  size_t peak_running_ = 0;
  int64_t prefill_tokens_ = 0;
  int64_t prefix_hit_tokens_ = 0;
  int64_t preempted_kv_reused_tokens_ = 0;
  double offloaded_bytes_per_gpu_ = 0;
  double host_freed_bytes_per_gpu_ = 0;
  double priced_gpu_to_host_bytes_ = 0;
  double priced_host_to_gpu_bytes_ = 0;
  double tp_bytes_per_gpu_ = 0;
  double pp_bytes_per_hop_ = 0;
  double ep_intra_bytes_per_gpu_ = 0;
  double ep_inter_bytes_per_gpu_ = 0;
};

}  // namespace servesim
