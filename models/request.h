#pragma once
/// A request as the workload describes it (RequestSpec) and as it travels through the cluster
/// (Request: its progress and the times the metrics need).

#include <cstdint>
#include <vector>

#include "sim/time.h"

namespace servesim {

/// Most tokens one request's prompt or output may have (16.7 M, beyond any model's context):
/// inputs are checked against it, so token arithmetic (contexts, sums over a batch) cannot
/// overflow and per-token structures (prefix block hashes) stay bounded.
inline constexpr int64_t kMaxRequestTokens = int64_t{1} << 24;
/// Most requests one workload may generate.
inline constexpr int64_t kMaxWorkloadRequests = int64_t{1} << 32;

struct RequestSpec {
  Time arrival;
  int64_t prompt_tokens = 0;
  int64_t output_tokens = 0;
  /// Prefix blocks (Mooncake `hash_ids`): equal ids are equal token blocks, so a cache can
  /// reuse them. Empty when the source has none.
  std::vector<uint64_t> prefix_block_hashes;
  int64_t prefix_block_tokens = 0;
  /// Multi-turn session the request belongs to, or -1.
  int64_t session_id = -1;
  /// Closed-loop client that sent it, or -1 for open-loop sources.
  int64_t client_id = -1;
};

enum class RequestState : uint8_t { kQueued, kRunning, kFinished, kDropped };

struct Request {
  uint64_t id = 0;
  RequestSpec spec;
  /// Output length the router believes (the true one under an oracle, else a prediction).
  int64_t predicted_output_tokens = 0;

  RequestState state = RequestState::kQueued;
  /// The prefix cache was consulted since the request last (re)joined the waiting queue.
  bool prefix_looked_up = false;
  bool decode_recorded = false;          ///< in the decode set: its tokens count in the statistics
  bool decode_predicted_active = false;  ///< in the decode set: its predicted decode left is > 0
  int instance = -1;
  /// Tokens whose KV is in the cache (prompt prefilled so far plus generated tokens kept).
  int64_t computed_tokens = 0;
  int64_t generated_tokens = 0;
  /// KV blocks covering the request's tokens, wherever they live: shared prefix blocks owned
  /// by the prefix cache, blocks offloaded to host memory, and private VRAM blocks (the rest).
  int64_t kv_blocks = 0;
  int64_t shared_prefix_blocks = 0;  ///< leading blocks pinned in the prefix cache
  int64_t host_blocks = 0;           ///< blocks after the shared prefix that live in host DRAM
  /// Blocks it took back from that cache while it waits (given back if the pool needs them).
  int64_t resumed_blocks = 0;
  /// The size-class router put it in a class its true length does not belong to.
  bool misrouted = false;
  /// A fault (its replica failed) took its KV away: it was re-routed and recomputed, or dropped.
  bool fault_affected = false;
  /// Prefill (of the prompt, or of prompt + output after a recompute preemption) is done and
  /// each iteration now decodes one token.
  bool in_decode = false;
  /// Output was cut at the replica's maximum context (as vLLM does at max_model_len).
  bool truncated = false;
  int preemptions = 0;
  /// Its place in its replica's running list, holes counted (RunningList), while it runs.
  uint64_t running_index = 0;
  // While the request is in its replica's decode set (models/decode_set.h), its computed and
  // generated tokens are these offsets plus the replica's decode clock, and the fields above
  // lag until it leaves.
  int64_t decode_computed_offset = 0;
  int64_t decode_generated_offset = 0;
  int64_t decode_joined_at = 0;      ///< decode clock at joining
  int64_t decode_predicted_end = 0;  ///< decode clock at which its predicted output runs out
  /// Decode clock at which it takes its last step while a member, else -1 (not a member).
  int64_t decode_finish_at = -1;
  /// Place in the set's heap of predicted ends, -1 when not in it.
  int32_t decode_predicted_slot = -1;
  /// Preempted with some of its KV left in its replica's cache, not yet looked up: the
  /// handle of that entry (PrefixCache::insert_own), else -1.
  int32_t kept_kv_handle = -1;
  Time first_scheduled = Time::max();
  Time first_token = Time::max();
  Time last_token = Time::max();
  Time finished = Time::max();

  /// Context the next decode step attends over: the prompt plus tokens generated so far.
  int64_t context_tokens() const { return spec.prompt_tokens + generated_tokens; }
  /// Tokens a prefill must put in the KV cache: the prompt, and after a recompute preemption
  /// also the tokens generated so far (the prefill then emits the next token).
  int64_t prefill_target_tokens() const { return spec.prompt_tokens + generated_tokens; }
  int64_t total_tokens() const { return spec.prompt_tokens + spec.output_tokens; }
};

/// What takes a routed request: a replica (models/instance.h), or a stand-in in tests.
class RequestSink {
 public:
  virtual ~RequestSink() = default;
  virtual void enqueue(Request* r) = 0;
};

}  // namespace servesim
