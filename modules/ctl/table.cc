#include "kvs/ctl/table.h"

#include <algorithm>
#include <cmath>
#include <cstdio>

namespace kvs::ctl {
namespace {

std::vector<std::string> SplitLines(const std::string& cell) {
  std::vector<std::string> lines;
  size_t start = 0;
  while (true) {
    const size_t newline = cell.find('\n', start);
    if (newline == std::string::npos) {
      lines.push_back(cell.substr(start));
      return lines;
    }
    lines.push_back(cell.substr(start, newline - start));
    start = newline + 1;
  }
}

std::string Printf(const char* format, double value) {
  char buffer[64];
  std::snprintf(buffer, sizeof buffer, format, value);
  return buffer;
}

}  // namespace

void Table::AddRow(std::vector<std::string> cells) {
  cells.resize(headers_.size());
  rows_.push_back(std::move(cells));
}

size_t DisplayWidth(const std::string& text) {
  size_t width = 0;
  for (const char c : text) {
    if ((static_cast<unsigned char>(c) & 0xC0) != 0x80) ++width;
  }
  return width;
}

std::string Table::Render() const {
  std::vector<size_t> widths(headers_.size(), 0);
  for (size_t c = 0; c < headers_.size(); ++c) widths[c] = DisplayWidth(headers_[c]);
  std::vector<std::vector<std::vector<std::string>>> split;  // row → column → lines
  for (const auto& row : rows_) {
    auto& cells = split.emplace_back();
    for (size_t c = 0; c < row.size(); ++c) {
      cells.push_back(SplitLines(row[c]));
      for (const auto& line : cells.back()) widths[c] = std::max(widths[c], DisplayWidth(line));
    }
  }
  std::string out;
  const auto emit = [&](const std::vector<std::string>& line) {
    std::string text;
    for (size_t c = 0; c < line.size(); ++c) {
      text += line[c];
      if (c + 1 < line.size()) text.append(widths[c] - DisplayWidth(line[c]) + 2, ' ');
    }
    while (!text.empty() && text.back() == ' ') text.pop_back();
    out += text;
    out += '\n';
  };
  emit(headers_);
  for (const auto& cells : split) {
    size_t height = 1;
    for (const auto& lines : cells) height = std::max(height, lines.size());
    for (size_t l = 0; l < height; ++l) {
      std::vector<std::string> line;
      for (const auto& lines : cells) line.push_back(l < lines.size() ? lines[l] : "");
      emit(line);
    }
  }
  return out;
}

std::string FormatDurationMs(double ms) {
  if (!std::isfinite(ms) || ms < 0) return "?";
  if (ms < 1000) return Printf("%.0f ms", ms);
  const double s = ms / 1000;
  if (s < 60) return Printf("%.1f s", s);
  const auto total = static_cast<int64_t>(s);
  char buffer[64];
  if (total < 3600) {
    std::snprintf(buffer, sizeof buffer, "%lldm%02llds", static_cast<long long>(total / 60),
                  static_cast<long long>(total % 60));
  } else if (total < 86400) {
    std::snprintf(buffer, sizeof buffer, "%lldh%02lldm", static_cast<long long>(total / 3600),
                  static_cast<long long>(total % 3600 / 60));
  } else {
    std::snprintf(buffer, sizeof buffer, "%lldd%02lldh", static_cast<long long>(total / 86400),
                  static_cast<long long>(total % 86400 / 3600));
  }
  return buffer;
}

std::string FormatBytes(int64_t bytes) {
  if (bytes < 0) return "?";
  if (bytes < 1024) return std::to_string(bytes) + " B";
  static const char* const kUnits[] = {"KiB", "MiB", "GiB", "TiB"};
  double value = static_cast<double>(bytes) / 1024;
  size_t unit = 0;
  while (value >= 1024 && unit + 1 < std::size(kUnits)) {
    value /= 1024;
    ++unit;
  }
  return Printf("%.1f ", value) + kUnits[unit];
}

}  // namespace kvs::ctl
