#include "traces/open_loop.h"

#include <utility>

#include "sim/error.h"

namespace servesim {

OpenLoopWorkload::OpenLoopWorkload(std::unique_ptr<ArrivalStream> stream)
    : stream_(std::move(stream)) {}

void OpenLoopWorkload::start(Simulator& sim, SubmitFn submit) {
  submit_ = std::move(submit);
  schedule_next(sim);
}

void OpenLoopWorkload::schedule_next(Simulator& sim) {
  auto spec = stream_->next();
  if (!spec) return;
  SERVESIM_CHECK(spec->arrival >= sim.now(), "arrival at {} is before now ({})", spec->arrival,
                 sim.now());
  pending_ = std::move(*spec);
  sim.schedule_at(pending_.arrival, Phase::kArrival, [this, &sim] {
    const RequestSpec arrived = std::move(pending_);
    submit_(arrived);
    schedule_next(sim);
  });
}

}  // namespace servesim
