// The flow-level network, checked by hand: max-min fair sharing of links between concurrent
// flows, completion times that move when flows start or end, and its conservation law.
#include <catch2/catch.hpp>

#include "models/flow_network.h"
#include "sim/error.h"

using namespace servesim;

namespace {

constexpr double kGB = 1e9;

struct Finishes {
  std::vector<double> at_s;
  FlowNetwork::Done record(Simulator& sim) {
    return [this, &sim] { at_s.push_back(sim.now().to_s()); };
  }
};

}  // namespace

TEST_CASE("a lone flow takes bytes over bandwidth plus the path latency", "[network]") {
  Simulator sim;
  FlowNetwork net(sim, {{1 * kGB, 1e-3}, {2 * kGB, 2e-3}});
  Finishes done;
  net.start({0, 1}, 1 * kGB, done.record(sim));  // the narrower link (1 GB/s) sets the pace
  sim.run();
  REQUIRE(done.at_s.size() == 1);
  CHECK(done.at_s[0] == Approx(1.0 + 3e-3).epsilon(1e-12));
  net.settle();
  CHECK(net.stats(0).busy_s == Approx(1.0));
  CHECK(net.stats(1).transfer_seconds == Approx(0.5));  // half of its bandwidth for a second
  CHECK_NOTHROW(net.check_conservation());
}

TEST_CASE("two equal flows on one link finish together at twice the solo time", "[network]") {
  Simulator sim;
  FlowNetwork net(sim, {{1 * kGB, 0}});
  Finishes done;
  const uint64_t a = net.start({0}, 1 * kGB, done.record(sim));
  net.start({0}, 1 * kGB, done.record(sim));
  CHECK(net.rate_of(a) == Approx(0.5 * kGB));
  sim.run();
  REQUIRE(done.at_s.size() == 2);
  CHECK(done.at_s[0] == Approx(2.0).epsilon(1e-12));
  CHECK(done.at_s[1] == Approx(2.0).epsilon(1e-12));
  net.settle();
  CHECK(net.stats(0).peak_flows == 2);
  CHECK(net.stats(0).flow_seconds == Approx(4.0));  // two flows for two seconds
  CHECK(net.stats(0).bytes == Approx(2 * kGB));
  CHECK(net.bytes_received() == Approx(2 * kGB));
}

TEST_CASE("a late-starting flow slows an earlier one from that instant only", "[network]") {
  Simulator sim;
  FlowNetwork net(sim, {{1 * kGB, 0}});
  Finishes early, late;
  net.start({0}, 1 * kGB, early.record(sim));
  sim.schedule_at(Time::from_s(0.5), Phase::kArrival,
                  [&] { net.start({0}, 0.25 * kGB, late.record(sim)); });
  sim.run();
  // 0-0.5 s: the early flow alone moves 0.5 GB. 0.5-1.0 s: each gets 0.5 GB/s, the late one
  // is done (0.25 GB) and the early one has 0.25 GB left, alone again: done at 1.25 s.
  REQUIRE(late.at_s.size() == 1);
  REQUIRE(early.at_s.size() == 1);
  CHECK(late.at_s[0] == Approx(1.0).epsilon(1e-12));
  CHECK(early.at_s[0] == Approx(1.25).epsilon(1e-12));
}

TEST_CASE("shares are max-min fair: a flow held back elsewhere leaves its share to others",
          "[network]") {
  Simulator sim;
  // Link 0: 1 GB/s shared by both flows; link 1: 0.25 GB/s, crossed by the second only.
  FlowNetwork net(sim, {{1 * kGB, 0}, {0.25 * kGB, 0}, {1 * kGB, 0}});
  Finishes done;
  const uint64_t wide = net.start({0}, 1 * kGB, done.record(sim));
  const uint64_t narrow = net.start({0, 1}, 1 * kGB, done.record(sim));
  const uint64_t apart = net.start({2}, 1 * kGB, done.record(sim));
  CHECK(net.rate_of(narrow) == Approx(0.25 * kGB));
  CHECK(net.rate_of(wide) == Approx(0.75 * kGB));
  CHECK(net.rate_of(apart) == Approx(1 * kGB));  // shares no link: untouched
  sim.run();
  // wide: 1 GB at 0.75 GB/s = 1.333 s; narrow: 0.333 GB by then, the rest at 0.25 GB/s.
  REQUIRE(done.at_s.size() == 3);
  CHECK(done.at_s[0] == Approx(1.0));        // apart
  CHECK(done.at_s[1] == Approx(4.0 / 3.0));  // wide
  CHECK(done.at_s[2] == Approx(4.0));        // narrow: 1 GB at 0.25 GB/s throughout
  CHECK_NOTHROW(net.check_conservation());
}

TEST_CASE("a link whose bandwidth drops re-shares its flows at once", "[network]") {
  Simulator sim;
  FlowNetwork net(sim, {{1 * kGB, 0}});
  Finishes done;
  net.start({0}, 1 * kGB, done.record(sim));
  sim.schedule_at(Time::from_s(0.5), Phase::kFault, [&] { net.set_bandwidth(0, 0.25 * kGB); });
  sim.run();
  // 0.5 GB in the first half second, the other 0.5 GB at 0.25 GB/s: 2 s more.
  REQUIRE(done.at_s.size() == 1);
  CHECK(done.at_s[0] == Approx(2.5).epsilon(1e-12));
}

TEST_CASE("the network refuses to end with bytes unaccounted for", "[network]") {
  Simulator sim;
  FlowNetwork net(sim, {{1 * kGB, 0}});
  net.start({0}, 1 * kGB, [] {});
  CHECK_THROWS_AS(net.check_conservation(), InvariantError);  // still in progress
  sim.run();
  CHECK_NOTHROW(net.check_conservation());
  // An empty path or no bytes: delivered after the latency alone, and counted.
  net.start({}, 5.0, [] {});
  sim.run();
  CHECK(net.bytes_sent() == net.bytes_received());
}
