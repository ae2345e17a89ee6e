// kvs-bench: parses the command line, runs the benchmark (or the sweep), prints the report
// and writes the JSON/CSV/PNG files. Everything else lives in kvs_bench_lib.
#include <sys/resource.h>

#include <iostream>
#include <string>
#include <string_view>
#include <vector>

#include "kvs/bench/options.h"
#include "kvs/bench/plot.h"
#include "kvs/bench/report.h"
#include "kvs/bench/runner.h"

namespace {

constexpr int kExitOk = 0;
constexpr int kExitFailed = 1;
constexpr int kExitUsage = 2;

// Every connection is a descriptor: lift the soft limit to the hard one.
void RaiseFileLimit() {
  rlimit limit{};
  if (getrlimit(RLIMIT_NOFILE, &limit) == 0 && limit.rlim_cur < limit.rlim_max) {
    limit.rlim_cur = limit.rlim_max;
    setrlimit(RLIMIT_NOFILE, &limit);
  }
}

int Run(const kvs::bench::Options& options) {
  using namespace kvs::bench;
  std::ostream* log = options.quiet ? nullptr : &std::cerr;
  std::vector<Options> runs;
  if (options.sweep_param.empty()) {
    runs.push_back(options);
  } else {
    for (int value : options.sweep_values) {
      Options one = options;
      (options.sweep_param == "threads" ? one.threads : one.connections) = value;
      runs.push_back(one);
    }
  }

  std::vector<RunResult> results;
  std::vector<uint64_t> shard_keys;  // --only-shard: found by the first run's preload
  bool all_succeeded = true;
  bool files_ok = true;
  std::string error;
  for (size_t i = 0; i < runs.size(); ++i) {
    if (log != nullptr && !options.sweep_param.empty()) {
      *log << "== " << options.sweep_param << "="
           << (options.sweep_param == "threads" ? runs[i].threads : runs[i].connections) << "\n";
    }
    RunResult result;
    if (!RunBenchmark(runs[i], options.preload && i == 0, log, result, error, &shard_keys)) {
      std::cerr << "kvs-bench: " << error << "\n";
      return kExitUsage;
    }
    if (!result.failure.empty()) {
      std::cerr << "kvs-bench: " << result.failure << "\n";
      return kExitFailed;
    }
    if (!options.sweep_param.empty()) {
      result.sweep_param = options.sweep_param;
      result.sweep_value = options.sweep_param == "threads" ? runs[i].threads : runs[i].connections;
    }
    std::cout << FormatText(result) << std::flush;
    if (!options.sweep_param.empty()) std::cout << "\n";
    if (!result.AnySuccess()) all_succeeded = false;
    results.push_back(std::move(result));
    // Written after every run, so an interrupted sweep keeps the rows it has.
    if (!options.csv_file.empty() && !AppendCsv(options.csv_file, {results.back()}, error)) {
      std::cerr << "kvs-bench: " << error << "\n";
      files_ok = false;
    }
    if (!options.json_file.empty() &&
        !WriteJson(options.json_file, results, !options.sweep_param.empty(), error)) {
      std::cerr << "kvs-bench: " << error << "\n";
      files_ok = false;
    }
  }

  int exit_code = files_ok ? kExitOk : kExitFailed;
  if (!options.sweep_param.empty()) std::cout << FormatSweepTable(results) << std::flush;
  if (!options.plot_file.empty()) {
    if (PlotSweep(options.plot_file, results, error)) {
      if (log != nullptr) *log << "plot: wrote " << options.plot_file << "\n";
    } else {
      std::cerr << "kvs-bench: " << error << "\n";
      exit_code = kExitFailed;
    }
  }
  if (!all_succeeded) {
    std::cerr << "kvs-bench: no request succeeded"
              << (options.sweep_param.empty() ? "" : " in at least one run of the sweep") << "\n";
    exit_code = kExitFailed;
  }
  return exit_code;
}

}  // namespace

int main(int argc, char** argv) {
  std::vector<std::string_view> args(argv + 1, argv + argc);
  const kvs::bench::ParsedOptions parsed = kvs::bench::ParseOptions(args);
  if (!parsed.ok()) {
    std::cerr << "kvs-bench: " << parsed.error << "\n";
    return kExitUsage;
  }
  if (parsed.options.help) {
    std::cout << kvs::bench::HelpText();
    return kExitOk;
  }
  RaiseFileLimit();
  return Run(parsed.options);
}
