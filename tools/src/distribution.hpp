#pragma once
// Bounded-memory duration distributions for stats: exact while small, then a log-linear
// histogram (64 sub-buckets per power of two: quantiles within 1.6% of the true value).
// Negative durations count as 0; the sum is exact (128 bits), so no file can overflow it.

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <vector>

#include "common.hpp"

namespace strobe::tool {

class Distribution {
 public:
  static constexpr std::size_t kExactLimit = 4096;

  void add(std::int64_t v) {
    if (v < 0) v = 0;
    ++count_;
    sum_.add(v);
    max_ = std::max(max_, v);
    min_ = count_ == 1 ? v : std::min(min_, v);
    if (exact_.size() < kExactLimit && !histogram_used_) {
      exact_.push_back(v);
      return;
    }
    if (!histogram_used_) {
      histogram_used_ = true;
      for (std::int64_t e : exact_) bump(e);
      exact_.clear();
      exact_.shrink_to_fit();
    }
    bump(v);
  }

  [[nodiscard]] std::uint64_t count() const noexcept { return count_; }
  [[nodiscard]] const Total& sum() const noexcept { return sum_; }
  // Exact (rounded down): each value fits int64, so their mean does.
  [[nodiscard]] std::int64_t mean() const noexcept {
    return count_ ? static_cast<std::int64_t>(sum_.exact() / static_cast<__int128>(count_)) : 0;
  }
  [[nodiscard]] std::int64_t max() const noexcept { return max_; }
  [[nodiscard]] std::int64_t min() const noexcept { return min_; }

  // q in [0, 1]: the smallest value v with at least q*count samples <= v (nearest rank).
  [[nodiscard]] std::int64_t quantile(double q) {
    if (count_ == 0) return 0;
    const auto rank = std::max<std::uint64_t>(1, static_cast<std::uint64_t>(std::ceil(q * double(count_))));
    if (!histogram_used_) {
      if (!sorted_) {
        std::sort(exact_.begin(), exact_.end());
        sorted_ = true;
      }
      return exact_[std::min<std::size_t>(exact_.size() - 1, rank - 1)];
    }
    std::uint64_t seen = 0;
    for (std::size_t i = 0; i < buckets_.size(); ++i) {
      seen += buckets_[i];
      if (seen >= rank) return std::min(max_, std::max(min_, middle(i)));
    }
    return max_;
  }

 private:
  static std::size_t index(std::int64_t v) {
    const auto u = static_cast<std::uint64_t>(v);
    if (u < 64) return static_cast<std::size_t>(u);
    const int e = 63 - __builtin_clzll(u);  // >= 6
    return 64 + static_cast<std::size_t>(e - 6) * 64 + ((u >> (e - 6)) & 63);
  }
  static std::int64_t middle(std::size_t i) {
    if (i < 64) return static_cast<std::int64_t>(i);
    const std::size_t e = (i - 64) / 64 + 6, sub = (i - 64) % 64;
    const std::uint64_t lo = (std::uint64_t{1} << e) + (std::uint64_t{sub} << (e - 6));
    return static_cast<std::int64_t>(lo + (std::uint64_t{1} << (e - 6)) / 2);
  }
  void bump(std::int64_t v) {
    const std::size_t i = index(v);
    if (buckets_.size() <= i) buckets_.resize(i + 1, 0);
    ++buckets_[i];
  }

  std::uint64_t count_ = 0;
  Total sum_;
  std::int64_t max_ = 0, min_ = 0;
  std::vector<std::int64_t> exact_;
  bool sorted_ = false;
  bool histogram_used_ = false;
  std::vector<std::uint64_t> buckets_;
};

}  // namespace strobe::tool
