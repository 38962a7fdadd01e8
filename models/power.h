#pragma once
/// A GPU's power from how hard its priced kernels work it: from an idle floor to the board
/// limit (TDP), linear in the busier of its compute and memory units,
///   power = TDP x min(1, kIdleFraction + kSlope x max(MFU, MBU)),
/// MFU and MBU taken over each step (an iteration, or one step of a closed-form stretch; 0
/// between iterations). The constants are fitted by
/// tools/fit_power.py to the 260 rows of ../shared/data/profiles/splitwise/perf_model.csv
/// (splitwise-sim@8f99e7dc data/perf_model.csv: Llama-2-70B and BLOOM-176B on A100-80GB, TP 2,
/// 4 and 8) whose average_power (normalized to TDP) is recorded; the H100 rows carry none.
/// Those runs are decode-bound: MBU 0.13-0.63, MFU below 0.2, and MFU adds nothing to the fit,
/// so compute-bound phases are assumed to draw power as memory-bound ones of the same
/// utilisation. Residual: 0.098 of TDP (root mean square).

#include <algorithm>

namespace servesim {

struct PowerModel {
  /// Power with no kernel running (utilisation 0), as a fraction of TDP.
  static constexpr double kIdleFraction = 0.2927;
  /// Power fraction gained per unit of utilisation.
  static constexpr double kSlope = 0.7647;

  /// Power as a fraction of TDP at this utilisation.
  static double tdp_fraction(double mfu, double mbu) {
    return std::min(1.0, kIdleFraction + kSlope * std::max(mfu, mbu));
  }
};

}  // namespace servesim
