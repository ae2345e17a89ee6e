// Draws a --sweep as a PNG with gnuplot: throughput (req/s, left axis) and p50/p99 latency
// (ms, right axis) against the swept parameter. Writes FILE.dat and FILE.gp next to the PNG
// first, so the data survive a missing gnuplot. Blocks while gnuplot runs; no shared state.
#pragma once

#include <string>
#include <vector>

#include "kvs/bench/runner.h"

namespace kvs::bench {

struct PlotFiles {
  std::string data;    // FILE.dat
  std::string script;  // FILE.gp
};

// The .dat/.gp names for a PNG name ("x.png" -> "x.dat", "x.gp").
PlotFiles PlotFilesFor(const std::string& png);

// The gnuplot script drawing `data` into `png`.
std::string GnuplotScript(const std::string& png, const std::string& data,
                          const std::vector<RunResult>& results);

// Writes the files and runs gnuplot. False with `error` (one line) when a file cannot be
// written, gnuplot is not installed, or it fails.
bool PlotSweep(const std::string& png, const std::vector<RunResult>& results, std::string& error);

}  // namespace kvs::bench
