// The gateway driven by hand: a scripted router, replicas replaced by sinks that only collect
// what they are given, and an observer that records what the metrics would see.
#include <catch2/catch.hpp>

#include <string>
#include <vector>

#include "policies/gateway.h"
#include "sim/error.h"

using namespace servesim;

namespace {

/// Routes the n-th request to targets[n]; records what it was shown.
class ScriptedRouter final : public Router {
 public:
  explicit ScriptedRouter(std::vector<int> targets) : targets_(std::move(targets)) {}
  std::string_view name() const override { return "scripted"; }
  int route(const Request& r, const std::vector<Instance*>& instances) override {
    seen_predictions.push_back(r.predicted_output_tokens);
    replicas_shown = instances.size();
    return targets_.at(next_++);
  }
  std::vector<int64_t> seen_predictions;
  size_t replicas_shown = 0;

 private:
  std::vector<int> targets_;
  size_t next_ = 0;
};

class HalfPredictor final : public OutputPredictor {
 public:
  std::string_view name() const override { return "half"; }
  int64_t predict(const RequestSpec& spec) override { return spec.output_tokens / 2; }
};

/// A replica stand-in: keeps the requests routed to it.
struct CollectingSink final : RequestSink {
  void enqueue(Request* r) override { requests.push_back(r); }
  std::vector<Request*> requests;
};

/// Records each request's end as the metrics would see it: before the slot is released.
struct RecordingObserver final : InstanceObserver {
  struct End {
    uint64_t id;
    RequestState state;
    int64_t generated_tokens;
    std::string reason;
  };
  void on_first_token(const Request& r) override { first_tokens.push_back(r.id); }
  void on_finish(Request& r) override {
    ends.push_back({r.id, r.state, r.generated_tokens, ""});
  }
  void on_drop(Request& r, std::string_view reason) override {
    ends.push_back({r.id, r.state, r.generated_tokens, std::string(reason)});
  }
  std::vector<End> ends;
  std::vector<uint64_t> first_tokens;
};

RequestSpec spec_at(double arrival_s, int64_t output_tokens, int64_t client = -1) {
  RequestSpec s;
  s.arrival = Time::from_s(arrival_s);
  s.prompt_tokens = 100;
  s.output_tokens = output_tokens;
  s.client_id = client;
  return s;
}

}  // namespace

TEST_CASE("the gateway routes, hands over, and releases after the metrics saw the end",
          "[gateway]") {
  ScriptedRouter router({1, 0, 1});
  HalfPredictor predictor;
  RecordingObserver metrics;
  Gateway gateway(router, predictor, metrics);
  CollectingSink a, b;
  gateway.add_instance(nullptr, &a);
  gateway.add_instance(nullptr, &b);
  std::vector<int64_t> released_clients;
  gateway.set_on_released([&](int64_t client) { released_clients.push_back(client); });

  gateway.submit(spec_at(1.0, 40, 7));
  gateway.submit(spec_at(2.0, 10, 8));
  REQUIRE(b.requests.size() == 1);
  REQUIRE(a.requests.size() == 1);
  CHECK(router.replicas_shown == 2);
  CHECK(router.seen_predictions == std::vector<int64_t>{20, 5});
  Request* first = b.requests[0];
  CHECK(first->id == 0);
  CHECK(first->predicted_output_tokens == 20);
  CHECK(a.requests[0]->id == 1);
  CHECK(gateway.first_arrival() == Time::from_s(1.0));
  CHECK(gateway.in_flight() == 2);

  // A replica finishes the first request: the observer sees it whole, then its client is told.
  first->generated_tokens = 40;
  first->state = RequestState::kFinished;
  gateway.on_finish(*first);
  REQUIRE(metrics.ends.size() == 1);
  CHECK(metrics.ends[0].id == 0);
  CHECK(metrics.ends[0].generated_tokens == 40);
  CHECK(released_clients == std::vector<int64_t>{7});
  CHECK(gateway.in_flight() == 1);

  // The released slot is reused, cleared, for the next arrival.
  gateway.submit(spec_at(3.0, 6));
  REQUIRE(b.requests.size() == 2);
  CHECK(b.requests[1] == first);
  CHECK(first->id == 2);
  CHECK(first->generated_tokens == 0);
  CHECK(first->state == RequestState::kQueued);

  // A drop is marked as such before the observer sees it.
  gateway.on_drop(*a.requests[0], "prompt exceeds KV capacity");
  REQUIRE(metrics.ends.size() == 2);
  CHECK(metrics.ends[1].id == 1);
  CHECK(metrics.ends[1].state == RequestState::kDropped);
  CHECK(metrics.ends[1].reason == "prompt exceeds KV capacity");
  CHECK(released_clients == std::vector<int64_t>{7, 8});

  // One request is still held: the conservation check refuses to pass.
  CHECK_THROWS_AS(gateway.check_conservation(), InvariantError);
  gateway.on_finish(*first);
  CHECK_NOTHROW(gateway.check_conservation());
  CHECK(gateway.arrived() == 3);
  CHECK(gateway.completed() == 2);
  CHECK(gateway.dropped() == 1);
}

TEST_CASE("the gateway passes replica reports through and refuses a target out of range",
          "[gateway]") {
  ScriptedRouter router({2});
  HalfPredictor predictor;
  RecordingObserver metrics;
  Gateway gateway(router, predictor, metrics);
  CollectingSink only;
  gateway.add_instance(nullptr, &only);

  Request r;
  r.id = 5;
  gateway.on_first_token(r);
  CHECK(metrics.first_tokens == std::vector<uint64_t>{5});
  CHECK(gateway.records_tokens_of(r));  // the observer's default: every request counts

  CHECK_THROWS_AS(gateway.submit(spec_at(0.0, 4)), InvariantError);
  CHECK(only.requests.empty());
}

TEST_CASE("with no replica up the gateway drops an arrival and says why", "[gateway]") {
  ScriptedRouter router({-1});  // what a router answers when every replica is down
  HalfPredictor predictor;
  RecordingObserver metrics;
  Gateway gateway(router, predictor, metrics);
  CollectingSink only;
  gateway.add_instance(nullptr, &only);
  std::vector<int64_t> released;
  gateway.set_on_released([&](int64_t client) { released.push_back(client); });

  gateway.submit(spec_at(1.0, 8, 3));
  CHECK(only.requests.empty());
  REQUIRE(metrics.ends.size() == 1);
  CHECK(metrics.ends[0].state == RequestState::kDropped);
  CHECK(metrics.ends[0].reason == "no replica is up");
  CHECK(released == std::vector<int64_t>{3});  // a closed-loop client may send its next one
  CHECK(gateway.dropped() == 1);
  CHECK_NOTHROW(gateway.check_conservation());
}
