#include "kvs/bench/report.h"

#include <sys/stat.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>

#include "kvs/json/json_writer.h"

namespace kvs::bench {
namespace {

std::string Format(const char* format, double value) {
  char text[64];
  std::snprintf(text, sizeof(text), format, value);
  return text;
}

std::string JsonString(std::string_view text) {
  std::string out;
  json::AppendJsonString(out, text);
  return out;
}

std::string CsvField(std::string_view text) {
  if (text.find_first_of(",\"\r\n") == std::string_view::npos) return std::string(text);
  std::string out = "\"";
  for (const char c : text) {
    if (c == '"') out += '"';
    out += c;
  }
  return out + "\"";
}

std::string JoinTargets(const Options& options, std::string_view separator) {
  std::string out;
  for (const Target& target : options.targets) {
    if (!out.empty()) out.append(separator);
    out.append(target.ToString());
  }
  return out;
}

// The configured --rate as a JSON number: "200", "0.5".
std::string Rate(double rate) { return Format("%.10g", rate); }

// Every key unless --only-shard narrowed them.
uint64_t KeysUsed(const RunResult& r) {
  return r.options.only_shard >= 0 ? r.keys_used : r.options.keys;
}

uint64_t Transport(const Stats& stats, TransportError error) {
  return stats.transport[static_cast<int>(error)];
}

}  // namespace

std::string Millis(int64_t micros) { return Format("%.3f", static_cast<double>(micros) / 1000.0); }

std::string FormatText(const RunResult& r) {
  const Options& o = r.options;
  const Stats& s = r.stats;
  const LatencyHistogram& h = s.latency;
  std::string out;
  auto line = [&](std::string_view name, const std::string& value) {
    out.append(name).append(std::string(13 - std::min<size_t>(name.size(), 12), ' '));
    out.append(value).append("\n");
  };
  line("label:", o.label.empty() ? "-" : o.label);
  line("targets:", JoinTargets(o, ",") + (o.tls ? " (TLS)" : ""));
  std::string workload = std::string(ProtocolName(o.protocol));
  if (o.protocol == Protocol::kRaw) {
    workload += ", GET " + o.path;
  } else {
    workload += std::string(", causal ") + (o.causal ? "on" : "off") + ", mix " + o.mix.ToString() +
                ", keys " + std::to_string(o.keys) + ", value " + std::to_string(o.value_size) +
                " B";
  }
  line("workload:", workload);
  if (o.only_shard >= 0) {
    line("keys used:", std::to_string(KeysUsed(r)) + " of " + std::to_string(o.keys) +
                           " (those on shard " + std::to_string(o.only_shard) + ")");
  }
  line("threads:", std::to_string(o.threads) + ", connections " + std::to_string(o.connections));
  line("rate:", o.rate > 0 ? Rate(o.rate) + " req/s target" : std::string("unthrottled"));
  line("duration:", Format("%.3f s measured", r.elapsed_s) +
                        (o.warmup_s > 0 ? Format(" (after %.1f s warm-up)", o.warmup_s)
                                        : std::string(" (no warm-up)")) +
                        (r.stalled ? "; STOPPED: no connection could be made" : ""));
  line("requests:", std::to_string(s.requests()) + " (ok " + std::to_string(s.ok) + ", not found " +
                        std::to_string(s.not_found) + ", http errors " +
                        std::to_string(s.http_errors) + ", transport errors " +
                        std::to_string(s.requests() - s.responses()) + ")");
  line("throughput:", Format("%.1f req/s", r.Throughput()));
  line("latency ms:", "p50 " + Millis(h.Percentile(50)) + "  p90 " + Millis(h.Percentile(90)) +
                          "  p99 " + Millis(h.Percentile(99)) + "  p99.9 " +
                          Millis(h.Percentile(99.9)) + "  max " + Millis(h.max()) + "  mean " +
                          Format("%.3f", h.Mean() / 1000.0));
  for (int op = 0; op < kOpCount; ++op) {
    if (s.op_responses[op] == 0 || o.protocol == Protocol::kRaw) continue;
    const LatencyHistogram& oh = s.op_latency[op];
    line(std::string("  ") + std::string(OpName(static_cast<Op>(op))) + ":",
         std::to_string(s.op_responses[op]) + " responses, p50 " + Millis(oh.Percentile(50)) +
             "  p99 " + Millis(oh.Percentile(99)) + "  max " + Millis(oh.max()));
  }
  line("status:", s.responses() == 0 ? "-" : s.StatusSummary());
  std::string transport;
  for (int e = 0; e < kTransportErrorCount; ++e) {
    transport += std::string(TransportErrorName(static_cast<TransportError>(e))) + " " +
                 std::to_string(s.transport[e]) + ", ";
  }
  line("transport:", transport + "reconnects " + std::to_string(s.reconnects));
  if (!s.tls_error.empty()) line("tls error:", s.tls_error);
  line("bytes:",
       "sent " + std::to_string(s.bytes_sent) + ", received " + std::to_string(s.bytes_received));
  return out;
}

std::string FormatJson(const RunResult& r) {
  const Options& o = r.options;
  const Stats& s = r.stats;
  const LatencyHistogram& h = s.latency;
  std::string out = "{";
  auto key = [&](std::string_view name) {
    if (out.size() > 1 && out.back() != '{') out += ',';
    out += JsonString(name) + ":";
  };
  auto num = [&](std::string_view name, uint64_t value) {
    key(name);
    out += std::to_string(value);
  };
  auto str = [&](std::string_view name, std::string_view value) {
    key(name);
    out += JsonString(value);
  };
  auto raw = [&](std::string_view name, const std::string& value) {
    key(name);
    out += value;
  };
  str("label", o.label);
  str("timestamp", r.timestamp);
  key("targets");
  out += "[";
  for (size_t i = 0; i < o.targets.size(); ++i) {
    out += (i ? "," : "") + JsonString(o.targets[i].ToString());
  }
  out += "]";
  raw("tls", o.tls ? "true" : "false");
  str("protocol", ProtocolName(o.protocol));
  raw("causal", o.causal ? "true" : "false");
  if (o.protocol == Protocol::kRaw) {
    str("path", o.path);
  } else {
    str("mix", o.mix.ToString());
    num("keys", o.keys);
    num("keys_used", KeysUsed(r));
    if (o.only_shard >= 0) num("only_shard", static_cast<uint64_t>(o.only_shard));
    num("value_size", o.value_size);
  }
  num("threads", static_cast<uint64_t>(o.threads));
  num("connections", static_cast<uint64_t>(o.connections));
  raw("target_rps", Rate(o.rate));  // 0 = unthrottled
  raw("duration_s", Format("%.3f", r.elapsed_s));
  raw("warmup_s", Format("%.3f", o.warmup_s));
  raw("stalled", r.stalled ? "true" : "false");
  num("requests", s.requests());
  num("ok", s.ok);
  num("not_found", s.not_found);
  num("http_errors", s.http_errors);
  num("transport_errors", s.requests() - s.responses());
  raw("throughput_rps", Format("%.1f", r.Throughput()));
  raw("latency_ms",
      "{\"p50\":" + Millis(h.Percentile(50)) + ",\"p90\":" + Millis(h.Percentile(90)) +
          ",\"p99\":" + Millis(h.Percentile(99)) + ",\"p99_9\":" + Millis(h.Percentile(99.9)) +
          ",\"max\":" + Millis(h.max()) + ",\"mean\":" + Format("%.3f", h.Mean() / 1000.0) + "}");
  key("ops");
  out += "{";
  bool first = true;
  for (int op = 0; op < kOpCount; ++op) {
    if (s.op_responses[op] == 0) continue;
    const LatencyHistogram& oh = s.op_latency[op];
    out += (first ? "" : ",") + JsonString(OpName(static_cast<Op>(op))) +
           ":{\"responses\":" + std::to_string(s.op_responses[op]) +
           ",\"p50_ms\":" + Millis(oh.Percentile(50)) + ",\"p99_ms\":" + Millis(oh.Percentile(99)) +
           ",\"max_ms\":" + Millis(oh.max()) + "}";
    first = false;
  }
  out += "}";
  key("status");
  out += "{";
  first = true;
  for (int code = 1; code <= Stats::kMaxStatus; ++code) {
    const int index = code % Stats::kMaxStatus;  // slot 0 ("other") last, as in the text
    if (s.status[index] == 0) continue;
    out += (first ? "" : ",") + JsonString(index == 0 ? "other" : std::to_string(index)) + ":" +
           std::to_string(s.status[index]);
    first = false;
  }
  out += "}";
  key("errors");
  out += "{";
  for (int e = 0; e < kTransportErrorCount; ++e) {
    out += (e ? "," : "") + JsonString(TransportErrorName(static_cast<TransportError>(e))) + ":" +
           std::to_string(s.transport[e]);
  }
  out += "}";
  if (!s.tls_error.empty()) str("tls_error", s.tls_error);
  num("reconnects", s.reconnects);
  num("bytes_sent", s.bytes_sent);
  num("bytes_received", s.bytes_received);
  if (!r.sweep_param.empty()) {
    raw("sweep", "{\"param\":" + JsonString(r.sweep_param) +
                     ",\"value\":" + std::to_string(r.sweep_value) + "}");
  }
  return out + "}";
}

std::string CsvHeader() {
  return "timestamp,label,protocol,causal,targets,threads,connections,duration_s,requests,ok,"
         "not_found,http_errors,transport_errors,throughput_rps,p50_ms,p90_ms,p99_ms,p99_9_ms,"
         "max_ms,mean_ms,status,connect_errors,connect_timeouts,resets,closed,timeouts,"
         "protocol_errors,reconnects,bytes_sent,bytes_received,mix,keys,value_size,sweep_param,"
         "sweep_value\n";
}

std::string CsvRow(const RunResult& r) {
  const Options& o = r.options;
  const Stats& s = r.stats;
  const LatencyHistogram& h = s.latency;
  std::string out;
  auto add = [&](const std::string& field) {
    if (!out.empty()) out += ',';
    out += field;
  };
  add(r.timestamp);
  add(CsvField(o.label));
  add(std::string(ProtocolName(o.protocol)));
  add(o.causal ? "on" : "off");
  add(CsvField(JoinTargets(o, " ")));
  add(std::to_string(o.threads));
  add(std::to_string(o.connections));
  add(Format("%.3f", r.elapsed_s));
  add(std::to_string(s.requests()));
  add(std::to_string(s.ok));
  add(std::to_string(s.not_found));
  add(std::to_string(s.http_errors));
  add(std::to_string(s.requests() - s.responses()));
  add(Format("%.1f", r.Throughput()));
  add(Millis(h.Percentile(50)));
  add(Millis(h.Percentile(90)));
  add(Millis(h.Percentile(99)));
  add(Millis(h.Percentile(99.9)));
  add(Millis(h.max()));
  add(Format("%.3f", h.Mean() / 1000.0));
  add(s.StatusSummary(" ", ":"));
  add(std::to_string(Transport(s, TransportError::kConnect)));
  add(std::to_string(Transport(s, TransportError::kConnectTimeout)));
  add(std::to_string(Transport(s, TransportError::kReset)));
  add(std::to_string(Transport(s, TransportError::kClosed)));
  add(std::to_string(Transport(s, TransportError::kTimeout)));
  add(std::to_string(Transport(s, TransportError::kProtocol)));
  add(std::to_string(s.reconnects));
  add(std::to_string(s.bytes_sent));
  add(std::to_string(s.bytes_received));
  add(o.protocol == Protocol::kRaw ? "" : CsvField(o.mix.ToString()));
  add(std::to_string(o.keys));
  add(std::to_string(o.value_size));
  add(r.sweep_param);
  add(r.sweep_param.empty() ? "" : std::to_string(r.sweep_value));
  return out + "\n";
}

std::string FormatSweepTable(const std::vector<RunResult>& results) {
  const std::string param = results.empty() ? "connections" : results.front().sweep_param;
  char line[160];
  std::snprintf(line, sizeof(line), "%12s %12s %10s %10s %10s %10s\n", param.c_str(), "req/s",
                "p50 ms", "p90 ms", "p99 ms", "errors");
  std::string out = line;
  for (const RunResult& r : results) {
    const LatencyHistogram& h = r.stats.latency;
    std::snprintf(
        line, sizeof(line), "%12d %12.1f %10s %10s %10s %10llu\n", r.sweep_value, r.Throughput(),
        Millis(h.Percentile(50)).c_str(), Millis(h.Percentile(90)).c_str(),
        Millis(h.Percentile(99)).c_str(),
        static_cast<unsigned long long>(r.stats.http_errors + r.stats.transport_errors()));
    out += line;
  }
  return out;
}

bool AppendCsv(const std::string& path, const std::vector<RunResult>& results, std::string& error) {
  struct stat info {};
  const bool fresh = ::stat(path.c_str(), &info) != 0 || info.st_size == 0;
  std::ofstream file(path, std::ios::app);
  if (!file) {
    error = "cannot open " + path + ": " + std::strerror(errno);
    return false;
  }
  if (fresh) file << CsvHeader();
  for (const RunResult& r : results) file << CsvRow(r);
  file.flush();
  if (!file) {
    error = "cannot write " + path;
    return false;
  }
  return true;
}

bool WriteJson(const std::string& path, const std::vector<RunResult>& results, bool as_array,
               std::string& error) {
  std::ofstream file(path, std::ios::trunc);
  if (!file) {
    error = "cannot open " + path + ": " + std::strerror(errno);
    return false;
  }
  if (as_array) {
    file << "[\n";
    for (size_t i = 0; i < results.size(); ++i) {
      file << FormatJson(results[i]) << (i + 1 < results.size() ? ",\n" : "\n");
    }
    file << "]\n";
  } else if (!results.empty()) {
    file << FormatJson(results.front()) << "\n";
  }
  file.flush();
  if (!file) {
    error = "cannot write " + path;
    return false;
  }
  return true;
}

}  // namespace kvs::bench
