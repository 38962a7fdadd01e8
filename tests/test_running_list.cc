// The running list against a plain vector kept by hand, through random admissions, finishes
// from anywhere and preemptions from the back: same requests in the same order, holes bounded.

#include <catch2/catch.hpp>
#include <deque>
#include <vector>

#include "models/running_list.h"
#include "sim/error.h"
#include "sim/rng.h"

using namespace servesim;

TEST_CASE("running list keeps admission order through leaves from anywhere", "[running]") {
  std::deque<Request> pool;  // stable addresses
  RunningList list;
  std::vector<Request*> expected;
  Rng rng(3, "running list");
  size_t most_holes_over_size = 0;
  for (int op = 0; op < 20'000; ++op) {
    const int64_t kind = rng.uniform_int(0, 9);
    if (kind < 4 || expected.empty()) {  // admit, sometimes a request that ran before
      Request* r = nullptr;
      if (kind == 0 && pool.size() > expected.size()) {
        for (Request& q : pool)
          if (std::find(expected.begin(), expected.end(), &q) == expected.end()) r = &q;
      }
      if (r == nullptr) {
        pool.emplace_back();
        r = &pool.back();
        r->id = pool.size();
      }
      list.push_back(r);
      expected.push_back(r);
    } else if (kind < 8) {  // finishes: one to three from anywhere, as one step's
      std::vector<Request*> leaving;
      const auto n = std::min<size_t>(expected.size(), static_cast<size_t>(rng.uniform_int(1, 3)));
      while (leaving.size() < n) {
        Request* r = expected[static_cast<size_t>(
            rng.uniform_int(0, static_cast<int64_t>(expected.size()) - 1))];
        if (std::find(leaving.begin(), leaving.end(), r) == leaving.end()) leaving.push_back(r);
      }
      std::vector<size_t> positions;
      for (Request* r : leaving) positions.push_back(list.position(*r));
      for (size_t pos : positions) list.remove_at(pos);
      list.settle();
      for (Request* r : leaving) std::erase(expected, r);
    } else if (kind == 8) {  // preemption of the newest
      REQUIRE(list.back() == expected.back());
      list.remove(*list.back());
      expected.pop_back();
    } else {
      list.compact();
      REQUIRE(list.holes() == 0);
      for (size_t i = 0; i < expected.size(); ++i) REQUIRE(list[i] == expected[i]);
    }
    REQUIRE(list.size() == expected.size());
    if (!expected.empty()) REQUIRE(list.back() == expected.back());
    if (list.holes() > list.size()) ++most_holes_over_size;
    if (op % 97 == 0) {
      const std::vector<Request*> seen(list.begin(), list.end());
      REQUIRE(seen == expected);
    }
  }
  CHECK(most_holes_over_size == 0);  // closed once they outnumber the requests
  const std::vector<Request*> seen(list.begin(), list.end());
  CHECK(seen == expected);
}

TEST_CASE("running list refuses a request that is not running, and positions with holes",
          "[running]") {
  Request a, b, c;
  a.id = 1;
  b.id = 2;
  c.id = 3;
  RunningList list;
  list.push_back(&a);
  list.push_back(&b);
  list.push_back(&c);
  CHECK_THROWS_AS(list.position(Request{}), InvariantError);
  list.remove(b);  // a hole in the middle
  CHECK(list.size() == 2);
  CHECK(list.holes() == 1);
  CHECK_THROWS_AS(list.position(b), InvariantError);
  CHECK_THROWS_AS(list[0], InvariantError);  // by position only once compacted
  list.compact();
  CHECK(list[0] == &a);
  CHECK(list[1] == &c);
}
