#pragma once
// A small decoder-only transformer in plain C++ with synthetic weights: real matrix work
// (attention over a KV cache, an MLP, logits over the vocabulary), no sleeps. Each
// decode step can run traced (a span per token, a chained attention -> mlp pair per
// layer) or untraced, from the same code, so overhead is measured on identical work.
// The kernels (attention, mlp, logits) are out-of-line functions both variants call, as
// a real decode loop calls its kernels: inlined into each variant they would be two
// copies whose code alignment alone moved the measured "overhead" by 7-10 points.

#include <strobe/strobe.hpp>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <random>
#include <string>
#include <vector>

namespace demo {

struct ModelConfig {
  int vocab = 512;
  int d = 64;
  int ff = 256;
  int layers = 4;
  int heads = 4;
  int max_seq = 512;
  std::string name = "tiny-transformer-4L";
};

// A span when On, nothing at all when not: the untraced build of the loop.
template <bool On>
struct MaybeSpan;
template <>
struct MaybeSpan<true> {
  strobe::Span s;
  MaybeSpan(const strobe::Name& n, strobe::Kind k) : s(n, k) {}
  void next(const strobe::Name& n) { s.next(n); }
  template <class V>
  void attr(const strobe::Name& k, V v) {
    s.attr(k, v);
  }
};
template <>
struct MaybeSpan<false> {
  MaybeSpan(int, strobe::Kind) {}
  void next(int) {}
  template <class V>
  void attr(int, V) {}
};

// The call-site Name when tracing; the untraced loop does not even touch the static.
#define DEMO_NAME(On, text)           \
  [&]() {                             \
    if constexpr (On) {               \
      return STROBE_NAME(text);       \
    } else {                          \
      return 0;                       \
    }                                 \
  }()

class TinyModel {
 public:
  explicit TinyModel(ModelConfig c, std::uint64_t seed = 7) : c_(std::move(c)) {
    std::mt19937_64 rng(seed);
    std::normal_distribution<float> nd(0.f, 1.f);
    auto fill = [&](std::vector<float>& w, std::size_t n, float scale) {
      w.resize(n);
      for (float& x : w) x = nd(rng) * scale;
    };
    const auto d = static_cast<std::size_t>(c_.d), ff = static_cast<std::size_t>(c_.ff);
    fill(embed_, static_cast<std::size_t>(c_.vocab) * d, 0.5f);
    layers_.resize(static_cast<std::size_t>(c_.layers));
    for (Layer& l : layers_) {
      fill(l.wq, d * d, 1.f / std::sqrt(float(d)));
      fill(l.wk, d * d, 1.f / std::sqrt(float(d)));
      fill(l.wv, d * d, 1.f / std::sqrt(float(d)));
      fill(l.wo, d * d, 1.f / std::sqrt(float(d)));
      fill(l.w1, d * ff, 1.f / std::sqrt(float(d)));
      fill(l.w2, ff * d, 1.f / std::sqrt(float(ff)));
      l.kcache.assign(static_cast<std::size_t>(c_.max_seq) * d, 0.f);
      l.vcache.assign(static_cast<std::size_t>(c_.max_seq) * d, 0.f);
    }
    x_.resize(d);
    tmp_.resize(std::max(d, ff) * 4);
  }

  [[nodiscard]] const ModelConfig& config() const noexcept { return c_; }
  void reset() noexcept { pos_ = 0; }
  [[nodiscard]] int position() const noexcept { return pos_; }
  // Spans one traced decode step records.
  [[nodiscard]] int spans_per_token() const noexcept { return 1 + 2 * c_.layers; }

  // One decode step: returns the next token (greedy).
  template <bool Traced>
  int decode(int token) {
    MaybeSpan<Traced> step(DEMO_NAME(Traced, "decode_token"), strobe::Kind::step);
    step.attr(DEMO_NAME(Traced, "position"), pos_);
    const auto d = static_cast<std::size_t>(c_.d);
    const std::size_t pos = static_cast<std::size_t>(pos_ % c_.max_seq);
    std::copy_n(&embed_[static_cast<std::size_t>(token % c_.vocab) * d], d, x_.begin());
    {
      // The stages are adjacent, layer after layer: one chain of spans (attention, mlp,
      // attention, ...) shares a timestamp at every boundary.
      MaybeSpan<Traced> stage(DEMO_NAME(Traced, "attention"), strobe::Kind::step);
      for (std::size_t i = 0; i < layers_.size(); ++i) {
        if (i > 0) stage.next(DEMO_NAME(Traced, "attention"));
        attention(layers_[i], pos);
        stage.next(DEMO_NAME(Traced, "mlp"));
        mlp(layers_[i]);
      }
    }
    ++pos_;
    return argmax_logits();
  }

 private:
  struct Layer {
    std::vector<float> wq, wk, wv, wo, w1, w2, kcache, vcache;
  };

  static void matvec(const float* x, const float* w, float* out, std::size_t in, std::size_t n) {
    std::fill_n(out, n, 0.f);
    for (std::size_t i = 0; i < in; ++i) {
      const float xi = x[i];
      const float* row = w + i * n;
      for (std::size_t j = 0; j < n; ++j) out[j] += xi * row[j];
    }
  }

  [[gnu::noinline]] void attention(Layer& l, std::size_t pos) {
    const auto d = static_cast<std::size_t>(c_.d), h = static_cast<std::size_t>(c_.heads), hd = d / h;
    float* q = tmp_.data();
    float* att = q + d;
    float* out = att + d;
    matvec(x_.data(), l.wq.data(), q, d, d);
    matvec(x_.data(), l.wk.data(), &l.kcache[pos * d], d, d);
    matvec(x_.data(), l.wv.data(), &l.vcache[pos * d], d, d);
    const std::size_t n = std::min<std::size_t>(static_cast<std::size_t>(pos_) + 1, static_cast<std::size_t>(c_.max_seq));
    std::fill_n(att, d, 0.f);
    std::vector<float>& scores = scores_;
    scores.resize(n);
    for (std::size_t head = 0; head < h; ++head) {
      float mx = -1e30f;
      for (std::size_t t = 0; t < n; ++t) {
        float s = 0;
        for (std::size_t k = 0; k < hd; ++k) s += q[head * hd + k] * l.kcache[t * d + head * hd + k];
        scores[t] = s / std::sqrt(float(hd));
        mx = std::max(mx, scores[t]);
      }
      float sum = 0;
      for (std::size_t t = 0; t < n; ++t) sum += scores[t] = std::exp(scores[t] - mx);
      for (std::size_t t = 0; t < n; ++t)
        for (std::size_t k = 0; k < hd; ++k) att[head * hd + k] += scores[t] / sum * l.vcache[t * d + head * hd + k];
    }
    matvec(att, l.wo.data(), out, d, d);
    for (std::size_t i = 0; i < d; ++i) x_[i] += out[i];
    normalize();
  }

  [[gnu::noinline]] void mlp(Layer& l) {
    const auto d = static_cast<std::size_t>(c_.d), ff = static_cast<std::size_t>(c_.ff);
    float* hbuf = tmp_.data();
    float* out = hbuf + ff;
    matvec(x_.data(), l.w1.data(), hbuf, d, ff);
    for (std::size_t i = 0; i < ff; ++i) hbuf[i] = std::max(0.f, hbuf[i]);
    matvec(hbuf, l.w2.data(), out, ff, d);
    for (std::size_t i = 0; i < d; ++i) x_[i] += out[i];
    normalize();
  }

  void normalize() {
    float ss = 0;
    for (float v : x_) ss += v * v;
    const float inv = 1.f / std::sqrt(ss / float(x_.size()) + 1e-5f);
    for (float& v : x_) v *= inv;
  }

  [[gnu::noinline]] int argmax_logits() {
    const auto d = static_cast<std::size_t>(c_.d);
    int best = 0;
    float best_v = -1e30f;
    for (int t = 0; t < c_.vocab; ++t) {
      const float* e = &embed_[static_cast<std::size_t>(t) * d];
      float s = 0;
      for (std::size_t k = 0; k < d; ++k) s += e[k] * x_[k];
      if (s > best_v) {
        best_v = s;
        best = t;
      }
    }
    return best;
  }

  ModelConfig c_;
  std::vector<float> embed_;
  std::vector<Layer> layers_;
  std::vector<float> x_, tmp_, scores_;
  int pos_ = 0;
};

// Token ids to text and back, for prompts and answers (a toy byte-level tokenizer).
inline std::vector<int> encode(const std::string& s) {
  std::vector<int> out;
  for (unsigned char c : s) out.push_back(c);
  return out;
}
inline std::string decode_text(const std::vector<int>& ids) {
  std::string out;
  for (int id : ids) out += static_cast<char>('a' + id % 26);
  return out;
}

}  // namespace demo
