// Formats RunResults for people (text, sweep table) and for tools (JSON, CSV), and writes the
// files. Pure functions of their arguments except the two writers; no shared state.
#pragma once

#include <string>
#include <vector>

#include "kvs/bench/runner.h"

namespace kvs::bench {

// The multi-line report printed to stdout after a run.
std::string FormatText(const RunResult& result);

// One JSON object (no trailing newline).
std::string FormatJson(const RunResult& result);

// CSV header line and one row (each ending in "\n"); fields as in the JSON.
std::string CsvHeader();
std::string CsvRow(const RunResult& result);

// "connections  req/s  p50 ms  p99 ms  errors" and a row per run.
std::string FormatSweepTable(const std::vector<RunResult>& results);

// Appends one row per result to `path`, writing the header first when the file is new or
// empty. False with `error` on an I/O failure.
bool AppendCsv(const std::string& path, const std::vector<RunResult>& results, std::string& error);

// Writes (replaces) `path` with one object, or an array of objects when `as_array`.
bool WriteJson(const std::string& path, const std::vector<RunResult>& results, bool as_array,
               std::string& error);

// Milliseconds from microseconds, 3 decimals: "0.512".
std::string Millis(int64_t micros);

}  // namespace kvs::bench
