#include "kvs/bench/plot.h"

#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>

#include "kvs/bench/report.h"

extern char** environ;

namespace kvs::bench {
namespace {

// Single quotes for a gnuplot string literal.
std::string Quoted(const std::string& text) {
  std::string out = "'";
  for (const char c : text) {
    if (c == '\'') out += '\'';  // gnuplot doubles a quote inside '...'
    out += c;
  }
  return out + "'";
}

// The executable's path found on $PATH, or "" when absent.
std::string FindOnPath(const std::string& name) {
  const char* path = std::getenv("PATH");
  std::string_view rest = path != nullptr ? path : "/usr/local/bin:/usr/bin:/bin";
  while (true) {
    const size_t colon = rest.find(':');
    std::string dir(rest.substr(0, colon));
    if (dir.empty()) dir = ".";
    const std::string candidate = dir + "/" + name;
    if (::access(candidate.c_str(), X_OK) == 0) return candidate;
    if (colon == std::string_view::npos) return "";
    rest.remove_prefix(colon + 1);
  }
}

}  // namespace

PlotFiles PlotFilesFor(const std::string& png) {
  std::string stem = png;
  if (stem.size() > 4 && stem.compare(stem.size() - 4, 4, ".png") == 0)
    stem.resize(stem.size() - 4);
  return {stem + ".dat", stem + ".gp"};
}

std::string GnuplotScript(const std::string& png, const std::string& data,
                          const std::vector<RunResult>& results) {
  const std::string param = results.empty() ? "connections" : results.front().sweep_param;
  std::string title = "kvs-bench";
  int low = 0;
  int high = 0;
  if (!results.empty()) {
    const Options& o = results.front().options;
    if (!o.label.empty()) title += ": " + o.label;
    // Threads as asked for: a run with fewer connections than threads uses fewer loops.
    int threads = 0;
    low = high = results.front().sweep_value;
    for (const RunResult& r : results) {
      low = std::min(low, r.sweep_value);
      high = std::max(high, r.sweep_value);
      threads = std::max(threads, r.options.threads);
    }
    title += std::string(" (") + std::string(ProtocolName(o.protocol)) + ", " +
             (param == "threads" ? std::to_string(o.connections) + " connections"
                                 : std::to_string(threads) + " threads") +
             ")";
  }
  std::string script;
  script += "set terminal png size 960,600\n";
  script += "set output " + Quoted(png) + "\n";
  script += "set title " + Quoted(title) + "\n";
  script += "set xlabel " + Quoted(param) + "\n";
  if (low > 0 && high >= 4 * low) script += "set logscale x 2\n";
  script += "set ylabel 'throughput (req/s)'\n";
  script += "set y2label 'latency (ms)'\n";
  script += "set ytics nomirror\nset y2tics\nset yrange [0:*]\nset y2range [0:*]\n";
  script += "set grid\nset key top left\n";
  script +=
      "plot " + Quoted(data) +
      " using 1:2 with linespoints lw 2 pt 7 lc rgb '#1f4e9c' axes x1y1 title 'req/s', \\\n"
      "     '' using 1:3 with linespoints pt 5 lc rgb '#2ca02c' axes x1y2 title 'p50 ms', \\\n"
      "     '' using 1:4 with linespoints pt 9 lc rgb '#d62728' axes x1y2 title 'p99 ms'\n";
  return script;
}

bool PlotSweep(const std::string& png, const std::vector<RunResult>& results, std::string& error) {
  const PlotFiles files = PlotFilesFor(png);
  {
    std::ofstream data(files.data, std::ios::trunc);
    data << "# " << (results.empty() ? "value" : results.front().sweep_param)
         << " req_per_s p50_ms p99_ms\n";
    for (const RunResult& r : results) {
      char line[128];
      std::snprintf(line, sizeof(line), "%d %.1f %s %s\n", r.sweep_value, r.Throughput(),
                    Millis(r.stats.latency.Percentile(50)).c_str(),
                    Millis(r.stats.latency.Percentile(99)).c_str());
      data << line;
    }
    std::ofstream script(files.script, std::ios::trunc);
    script << GnuplotScript(png, files.data, results);
    if (!data.flush() || !script.flush()) {
      error = "cannot write " + files.data + " / " + files.script;
      return false;
    }
  }
  const std::string gnuplot = FindOnPath("gnuplot");
  if (gnuplot.empty()) {
    error = "gnuplot not found on PATH; wrote " + files.data + " and " + files.script +
            " (install gnuplot, e.g. apt-get install gnuplot-nox, then run: gnuplot " +
            files.script + ")";
    return false;
  }
  char* argv[] = {const_cast<char*>("gnuplot"), const_cast<char*>(files.script.c_str()), nullptr};
  pid_t pid = 0;
  const int rc = posix_spawn(&pid, gnuplot.c_str(), nullptr, nullptr, argv, environ);
  if (rc != 0) {
    error = "cannot run " + gnuplot + ": " + std::strerror(rc);
    return false;
  }
  int status = 0;
  while (waitpid(pid, &status, 0) < 0) {
    if (errno != EINTR) {
      error = std::string("waitpid gnuplot: ") + std::strerror(errno);
      return false;
    }
  }
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    error = "gnuplot failed on " + files.script + " (exit status " +
            std::to_string(WIFEXITED(status) ? WEXITSTATUS(status) : -1) + ")";
    return false;
  }
  return true;
}

}  // namespace kvs::bench
