// The mapping layer from C++: config expressions, ignore globs, layer-run folding, the computing
// ops against float64 references, and spec validation.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <random>

#include "core/error.h"
#include "core/tensor.h"
#include "expect_error.h"
#include "mapping/expression.h"
#include "mapping/family_spec.h"
#include "mapping/load_plan.h"
#include "mapping/load_report.h"
#include "mapping/mapping_ops.h"

namespace hfport {
namespace {

using json = nlohmann::json;

int64_t eval_int(const std::string& text, const json& config, const Captures& captures = {}) {
  return Expression::parse(text, "test").evaluate_int(config, captures, "test");
}

TEST(Expression, FollowsPythonPrecedenceAndFloorDivision) {
  const json config = {{"hidden_size", 96}, {"num_attention_heads", 4}, {"num_key_value_heads", 2}};
  EXPECT_EQ(eval_int("(num_attention_heads + 2*num_key_value_heads) * (hidden_size // num_attention_heads)",
                     config), 192);
  EXPECT_EQ(eval_int("2 + 3 * 4 ** 2", config), 50);
  EXPECT_EQ(eval_int("-7 // 2", config), -4);   // floors, as Python does
  EXPECT_EQ(eval_int("-7 % 2", config), 1);
  EXPECT_EQ(eval_int("2 ** 3 ** 2", config), 512);  // right-associative
  EXPECT_EQ(eval_int("ceil_div(hidden_size, 16) + ceil_div(97, 16)", config), 6 + 7);
  EXPECT_EQ(eval_int("min(3, 5) * max(3, 5)", config), 15);
}

// timm writes img_size as an int or as [h, w]; to_2tuple reads both.
TEST(Expression, To2TupleTakesAnIntOrAPair) {
  const json config = {{"square", 224}, {"wide", {32, 48}}, {"three", {1, 2, 3}}};
  EXPECT_EQ(eval_int("to_2tuple(square)[0] * to_2tuple(square)[1]", config), 224 * 224);
  EXPECT_EQ(eval_int("to_2tuple(wide)[0] * 100 + to_2tuple(wide)[1]", config), 3248);
  EXPECT_TRUE(hfport_test::throws_exactly<ExpressionError>(
      [&] { eval_int("to_2tuple(three)[0]", config); },
      {"test: expression 'to_2tuple(three)[0]': to_2tuple() of a value that is neither an integer "
       "nor a list of two integers: [1,2,3]"}));
  EXPECT_THROW(eval_int("to_2tuple(square, 2)[0]", config), hfport::SpecError);
}

// Found by fuzz_family_spec (tests/fuzz/regressions/family_spec): ceil_div at the ends of int64
// was signed overflow. It is the ceiling of the exact quotient, as Python's -(-a // b).
TEST(Expression, CeilDivAtTheEndsOfInt64) {
  const json config = {{"big", INT64_MAX}, {"small", INT64_MIN}};
  EXPECT_EQ(eval_int("ceil_div(big, 2)", config), INT64_MAX / 2 + 1);
  EXPECT_EQ(eval_int("ceil_div(big, 1)", config), INT64_MAX);
  EXPECT_EQ(eval_int("ceil_div(small, 3)", config), INT64_MIN / 3);  // -3074457345618258602
  EXPECT_EQ(eval_int("ceil_div(small, 1)", config), INT64_MIN);
  for (const int64_t a : {-7, -6, -1, 0, 1, 6, 7}) {
    for (const int64_t b : {1, 2, 3, 7}) {
      const int64_t floor_of_negated = (-a) / b - ((-a) % b < 0 ? 1 : 0);  // Python's -a // b
      EXPECT_EQ(eval_int("ceil_div(a, b)", json{{"a", a}, {"b", b}}), -floor_of_negated)
          << a << " " << b;
    }
  }
}

// Found by fuzz_family_spec (regressions/family_spec/deep-unary-minus): 12 KB of "-(-(-(..."
// overflowed the recursive parser's stack. Nesting and length are bounded; a long flat chain
// would build a tree as deep as it is long, which evaluating and freeing would recurse through.
TEST(Expression, NestingAndLengthAreBounded) {
  const json config = {{"x", 1}};
  std::string nested = "x", minus = "x";
  for (int i = 0; i < 30; ++i) nested = "(" + nested + ")";
  for (int i = 0; i < 30; ++i) minus = "-" + minus;
  EXPECT_EQ(eval_int(nested, config), 1);
  EXPECT_EQ(eval_int(minus, config), 1);
  std::string deep = "x", chain = "x";
  for (int i = 0; i < 80; ++i) deep = "-(" + deep + ")";
  for (int i = 0; i < 5000; ++i) chain += "+x";
  EXPECT_TRUE(hfport_test::throws_exactly<hfport::SpecError>([&] { eval_int(deep, config); },
                                                {"nested more than 100 levels deep"}));
  EXPECT_TRUE(hfport_test::throws_exactly<hfport::SpecError>([&] { eval_int(chain, config); },
                                                {"expression of 10001 tokens", "at most 1000"}));
  std::string not_chain = "x";
  for (int i = 0; i < 200; ++i) not_chain = "not " + not_chain;
  EXPECT_THROW(eval_int(not_chain, config), hfport::SpecError);
}

TEST(Expression, SpecWithANumberBeyondDoubleIsASpecError) {
  EXPECT_THROW(hfport::parse_family_spec_text(R"({"family": "t", "x": 1e500})", "spec.json"),
               hfport::SpecError);
}

TEST(Expression, ReadsNestedFieldsListsAndCaptures) {
  const json config = {{"audio_config", {{"depths", {2, 2, 6, 2}}, {"hidden_size", 32}}},
                       {"mlp_ratio", 4.0}};
  EXPECT_EQ(eval_int("audio_config.depths[i]", config, {{"i", 2}}), 6);
  EXPECT_EQ(eval_int("audio_config.hidden_size * 2 ** i", config, {{"i", 3}}), 256);
  EXPECT_EQ(eval_int("len(audio_config.depths) + sum(audio_config.depths)", config), 4 + 12);
  EXPECT_EQ(eval_int("audio_config.hidden_size * mlp_ratio", config), 128);
}

TEST(Expression, BooleansStringsAndComparisons) {
  const json config = {{"tie_word_embeddings", false}, {"position_embedding_type", "absolute"},
                       {"use_bias", true}};
  auto truth = [&](const std::string& text) {
    return Expression::parse(text, "test").evaluate_bool(config, {}, "test");
  };
  EXPECT_FALSE(truth("tie_word_embeddings"));
  EXPECT_TRUE(truth("not tie_word_embeddings and use_bias"));
  EXPECT_TRUE(truth("position_embedding_type == 'absolute'"));
  EXPECT_TRUE(truth("position_embedding_type != 'rotary' or false"));
  EXPECT_TRUE(truth("3 <= 4"));
}

TEST(Expression, ANullFieldIsUnequalToEveryValueAndAnErrorElsewhere) {
  // transformers writes None as null (Wav2Vec2-BERT's position_embeddings_type: no positions).
  const json config = {{"type", nullptr}, {"flag", false}};
  auto truth = [&](const std::string& text) {
    return Expression::parse(text, "test").evaluate_bool(config, {}, "test");
  };
  EXPECT_FALSE(truth("type == 'relative_key'"));
  EXPECT_TRUE(truth("type != 'rotary'"));
  EXPECT_FALSE(truth("type == false"));  // null is not false either
  EXPECT_FALSE(truth("type == flag"));
  EXPECT_TRUE(hfport_test::throws_exactly<ExpressionError>(
      [&] { truth("type"); }, {"test: expression 'type': config.json field 'type' is null"}));
  EXPECT_TRUE(hfport_test::throws_exactly<ExpressionError>(
      [&] { truth("absent == 'x'"); }, {"config.json has no field 'absent'"}));
}

TEST(Expression, ErrorsNameTheExpressionAndTheField) {
  const json config = {{"hidden_size", 100}, {"n", nullptr}};
  EXPECT_TRUE(hfport_test::throws_exactly<ExpressionError>([&] { eval_int("hidden_size / 3", config); }, {"test: expression 'hidden_size / 3': 100 / 3 is not exact (use // to floor)"}));
  EXPECT_TRUE(hfport_test::throws_exactly<ExpressionError>([&] { eval_int("head_dim * 2", config); }, {"test: expression 'head_dim * 2': config.json has no field 'head_dim'"}));
  EXPECT_TRUE(hfport_test::throws_exactly<ExpressionError>([&] { eval_int("n + 1", config); }, {"test: expression 'n + 1': config.json field 'n' is null"}));
  EXPECT_TRUE(hfport_test::throws_exactly<ExpressionError>([&] { eval_int("9223372036854775807 + 1", config); }, {"test: expression '9223372036854775807 + 1': integer overflow"}));
  EXPECT_TRUE(hfport_test::throws_exactly<SpecError>([&] { Expression::parse("hidden_size +", "rule 3"); }, {"rule 3: expression 'hidden_size +': unexpected end at column 14"}));
  EXPECT_TRUE(hfport_test::throws_exactly<SpecError>([&] { Expression::parse("n * 1.0.5", "r"); },
                                                    {"r: expression 'n * 1.0.5': bad number '1.0.5'"}));
  EXPECT_TRUE(hfport_test::throws_exactly<ExpressionError>(
      [&] { eval_int("n", json{{"n", 18446744073709551615ull}}); }, {"integer 18446744073709551615 too large"}));
  EXPECT_EQ(eval_int("1 ** 4000000000000 + (-1) ** 3", config), 0);
  EXPECT_TRUE(hfport_test::throws_exactly<SpecError>([&] { Expression::parse("sqrt(4)", "rule 3"); }, {"rule 3: expression 'sqrt(4)': unknown function 'sqrt' at column 6"}));
}

TEST(Glob, StarMatchesAnyRunIncludingDots) {
  EXPECT_TRUE(glob_match("model.layers.*.self_attn.rotary_emb.inv_freq",
                         "model.layers.12.self_attn.rotary_emb.inv_freq"));
  EXPECT_TRUE(glob_match("*.attn.bias", "h.0.attn.bias"));
  EXPECT_FALSE(glob_match("*.attn.bias", "h.0.attn.c_attn.bias"));
  EXPECT_TRUE(glob_match("*", ""));
  EXPECT_FALSE(glob_match("a*b", "ac"));
}

TEST(FoldLayerRuns, FoldsFullGridsAndKeepsTheRest) {
  std::vector<std::string> names;
  for (int i = 0; i < 32; ++i) names.push_back("blk." + std::to_string(i) + ".attn_q.weight");
  names.push_back("output.weight");
  for (int i : {0, 1, 2, 5}) names.push_back("stage." + std::to_string(i) + ".x");
  names.push_back("a.0.b.0");
  names.push_back("a.1.b.1");  // a diagonal, not a grid: listed as is
  const auto folded = fold_layer_runs(names);
  EXPECT_EQ(folded, (std::vector<std::string>{"blk.{0..31}.attn_q.weight", "output.weight",
                                               "stage.{0..2,5}.x", "a.0.b.0", "a.1.b.1"}));
  EXPECT_EQ(fold_layer_runs({"blk.0.q <- layers.0.q", "blk.1.q <- layers.1.q"}, /*linked=*/true),
            std::vector<std::string>{"blk.{0,1}.q <- layers.{0,1}.q"});
}

Tensor random_tensor(const Shape& shape, std::mt19937& rng, float low = -1.0f, float high = 1.0f) {
  Tensor t = Tensor::empty(DType::F32, shape);
  std::uniform_real_distribution<float> dist(low, high);
  for (int64_t i = 0; i < t.numel(); ++i) t.data_as<float>()[i] = dist(rng);
  return t;
}

TEST(MappingOps, WeightNormFoldMatchesFloat64AlongEachDim) {
  std::mt19937 rng(std::random_device{}());
  const Shape v_shape{5, 3, 7};
  const Tensor v = random_tensor(v_shape, rng);
  for (int64_t dim = 0; dim < 3; ++dim) {
    const int64_t n = v_shape[dim];
    const Tensor g = random_tensor({n}, rng, 0.5f, 2.0f);
    const Tensor w = weight_norm_fold(g, v, dim);
    ASSERT_EQ(w.shape(), v_shape);
    std::vector<double> norm(n, 0.0);
    const float* vv = v.data_as<float>();
    for (int64_t a = 0; a < 5; ++a)
      for (int64_t b = 0; b < 3; ++b)
        for (int64_t c = 0; c < 7; ++c) {
          const int64_t k = dim == 0 ? a : dim == 1 ? b : c;
          const double x = vv[(a * 3 + b) * 7 + c];
          norm[k] += x * x;
        }
    for (int64_t a = 0; a < 5; ++a)
      for (int64_t b = 0; b < 3; ++b)
        for (int64_t c = 0; c < 7; ++c) {
          const int64_t k = dim == 0 ? a : dim == 1 ? b : c;
          const int64_t i = (a * 3 + b) * 7 + c;
          const double want = g.data_as<float>()[k] * static_cast<double>(vv[i]) / std::sqrt(norm[k]);
          EXPECT_EQ(w.data_as<float>()[i], static_cast<float>(want)) << "dim " << dim << " at " << i;
        }
  }
}

TEST(MappingOps, ConcatAlongInnerDimInterleavesRows) {
  std::mt19937 rng(std::random_device{}());
  const Tensor a = random_tensor({3, 2}, rng), b = random_tensor({3, 4}, rng);
  const Tensor c = concat_tensors({a, b}, 1);
  ASSERT_EQ(c.shape(), (Shape{3, 6}));
  for (int64_t r = 0; r < 3; ++r) {
    for (int64_t k = 0; k < 6; ++k) {
      const float want = k < 2 ? a.data_as<float>()[r * 2 + k] : b.data_as<float>()[r * 4 + k - 2];
      EXPECT_EQ(c.data_as<float>()[r * 6 + k], want);
    }
  }
  EXPECT_TRUE(hfport_test::throws_exactly<LoadError>([&] { concat_tensors({a, random_tensor({2, 2}, rng)}, 1); }, {"concat along dim 1: [2, 2] F32 does not fit [3, 2] F32"}));
}

TEST(MappingOps, NegExpAndViews) {
  std::mt19937 rng(std::random_device{}());
  const Tensor a_log = random_tensor({4, 16}, rng, -3.0f, 3.0f);
  const Tensor a = neg_exp(a_log);
  for (int64_t i = 0; i < a.numel(); ++i) {
    EXPECT_EQ(a.data_as<float>()[i], static_cast<float>(-std::exp(static_cast<double>(a_log.data_as<float>()[i]))));
  }
  const Tensor t = permute_view(a, {1, 0});
  EXPECT_EQ(t.shape(), (Shape{16, 4}));
  EXPECT_EQ(t.strides(), (Shape{1, 16}));
  EXPECT_EQ(t.storage(), a.storage());
  const auto pieces = split_views(a, 1, {6, 10});
  EXPECT_EQ(pieces[1].shape(), (Shape{4, 10}));
  EXPECT_EQ(pieces[1].data_as<float>(), a.data_as<float>() + 6);
  EXPECT_TRUE(hfport_test::throws_exactly<LoadError>([&] { split_views(a, 1, {6, 9}); },
                          {"split sizes add up to 15, the tensor has 16 along dim 1"}));
}

TEST(FamilySpec, ValidatesRulesAndResolvesDefaults) {
  const std::string text = R"js({
    "family": "t", "config_defaults": {"head_dim": "hidden_size // heads", "dt_rank": "ceil_div(hidden_size, 16)"},
    "ranges": {"i": "layers"},
    "params": [{"to": "blk.{i}.w", "from": "l.{i}.w", "shape": ["head_dim", "dt_rank"]}]})js";
  const FamilySpec spec = parse_family_spec_text(text, "spec t");
  const json config = apply_config_defaults(spec, {{"hidden_size", 40}, {"heads", 4}, {"dt_rank", "auto"}});
  EXPECT_EQ(config["head_dim"], 10);
  EXPECT_EQ(config["dt_rank"], 3);
  EXPECT_EQ(spec.rules[0].captures, std::vector<std::string>{"i"});
  EXPECT_TRUE(hfport_test::throws_exactly<SpecError>([] { parse_family_spec_text(R"({"family": "t", "params": [{"to": "a.{k}", "from": "b.{k}", "shape": []}]})", "spec t"); },
                          {"spec t, rule 0 (a.{k}): capture {k} has no entry in 'ranges'"}));
  EXPECT_TRUE(hfport_test::throws_exactly<SpecError>([] { parse_family_spec_text(R"({"family": "t", "params": [{"to": "a", "from": ["b", "c"], "weight_norm": 0}]})", "spec t"); },
                          {"spec t, rule 0 (a): a rule needs the expected 'shape'"}));
  EXPECT_TRUE(hfport_test::throws_exactly<SpecError>([] { parse_family_spec_text(R"({"family": "t", "params": [], "extra": 1})", "spec t"); }, {"spec t: unknown field 'extra' (known: base_prefix, comment, config_defaults, default_head, extends, family, heads, ignore, match, params, ranges, requires, source)"}));
}

TEST(FamilySpec, BuiltinFamiliesParse) {
  for (const auto& name : builtin_family_names()) {
    const FamilySpec& spec = builtin_family(name);
    EXPECT_EQ(spec.family, name) << "the 'family' field of " << name << ".json";
    EXPECT_FALSE(spec.rules.empty()) << name;
  }
  EXPECT_TRUE(hfport_test::throws_exactly<SpecError>([] { builtin_family("no_such_family"); }, {"no built-in family 'no_such_family'"}));
}

}  // namespace
}  // namespace hfport
