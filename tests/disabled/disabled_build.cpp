// Built with STROBE_DISABLE and linked against no strobe library: if any macro left a
// call, a static or a type that needs strobe_core behind, this program would not link.
#include <strobe/span.hpp>

#include <cstdio>
#include <type_traits>

static int work(int n) {
  STROBE_SPAN(step, "decode_step", strobe::Kind::llm);
  step.attr("token_index", n).attr("model", "tiny").tokens(strobe::TokenUsage{1, 2, 3});
  step.input("prompt").output("answer").log("line").tag("t").event("e");
  STROBE_NEXT(step, "mlp");
  STROBE_SPAN(bare, "bare");
  bare.finish();
  static_assert(std::is_empty_v<decltype(step)>, "a disabled span holds no state");
  return n * 2 + (step.recording() ? 1 : 0) + static_cast<int>(bare.span_id());
}

int main() {
  int sum = 0;
  for (int i = 0; i < 10; ++i) sum += work(i);
  if (sum != 90) {
    std::printf("unexpected result %d\n", sum);
    return 1;
  }
  std::puts("STROBE_DISABLE: macros compiled to nothing");
  return 0;
}
