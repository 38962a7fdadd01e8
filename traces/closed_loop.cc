#include "traces/closed_loop.h"

#include <fmt/format.h>

#include <utility>

#include "sim/error.h"

namespace servesim {

ClosedLoopWorkload::ClosedLoopWorkload(int64_t concurrency, int64_t requests, Time think_time,
                                       int64_t warmup_requests, LengthSampler lengths,
                                       std::string where)
    : concurrency_(concurrency),
      requests_(requests),
      think_time_(think_time),
      warmup_requests_(warmup_requests),
      lengths_(std::move(lengths)),
      where_(std::move(where)) {}

void ClosedLoopWorkload::start(Simulator& sim, SubmitFn submit) {
  submit_ = std::move(submit);
  for (int64_t client = 0; client < concurrency_ && sent_ < requests_; ++client)
    send_after(sim, client, Time{});
}

void ClosedLoopWorkload::on_request_done(Simulator& sim, int64_t client_id) {
  SERVESIM_CHECK(client_id >= 0 && client_id < concurrency_, "client {} of {}", client_id,
                 concurrency_);
  if (sent_ < requests_) send_after(sim, client_id, think_time_);
}

void ClosedLoopWorkload::send_after(Simulator& sim, int64_t client_id, Time delay) {
  if (!(sim.now().to_s() + delay.to_s() <= kMaxInputSeconds))
    throw InputError(
        fmt::format("{}: requests at think_time_s pass {:g} s of simulated time "
                    "(about 31 years)",
                    where_, kMaxInputSeconds));
  ++sent_;
  sim.schedule_in(delay, Phase::kArrival, [this, &sim, client_id] {
    const auto draw = lengths_.draw();
    RequestSpec spec;
    spec.arrival = sim.now();
    spec.prompt_tokens = draw.prompt_tokens;
    spec.output_tokens = draw.output_tokens;
    spec.client_id = client_id;
    submit_(spec);
  });
}

}  // namespace servesim
