// Plain-text tables for kvsctl's output, and the units it prints (durations, sizes).
// Pure and thread-compatible. Invariant: every rendered line of a table has its columns
// aligned; a cell may hold several lines ('\n'), its row then spans that many lines.
#ifndef KVS_CTL_TABLE_H_
#define KVS_CTL_TABLE_H_

#include <cstdint>
#include <string>
#include <vector>

namespace kvs::ctl {

class Table {
 public:
  explicit Table(std::vector<std::string> headers) : headers_(std::move(headers)) {}
  // A row with fewer cells than headers is padded with empty cells; extra cells are dropped.
  void AddRow(std::vector<std::string> cells);
  size_t rows() const { return rows_.size(); }
  // Columns separated by two spaces, no trailing blanks, each line ending in '\n'.
  std::string Render() const;

 private:
  std::vector<std::string> headers_;
  std::vector<std::vector<std::string>> rows_;
};

// "850 ms", "4.2 s", "12m05s", "3h02m", "2d04h".
std::string FormatDurationMs(double ms);
// "512 B", "1.5 KiB", "3.0 MiB", "1.2 GiB".
std::string FormatBytes(int64_t bytes);
// Display width of UTF-8 text (code points; kvs prints no wide characters).
size_t DisplayWidth(const std::string& text);

}  // namespace kvs::ctl

#endif  // KVS_CTL_TABLE_H_
