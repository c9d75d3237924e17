// Native forward passes: the interface every model family implements, and loading one.
//
// A model is built from a checkpoint loaded strictly through its family spec (csrc/mapping), so
// every parameter it reads has the canonical name of docs/names.md and a shape already checked
// against config.json. It computes with the hfport kernels (csrc/kernels/cpu) in float32 by
// default. Outputs follow transformers' conventions so they can be compared one to one:
//   logits          the head's output: [batch, seq, vocab] for language models and masked LMs,
//                   [batch, num_labels] or [batch, seq, num_labels] for classifiers; absent for a
//                   base model (BertModel), whose output is last_hidden_state [batch, seq, hidden]
//   hidden_states   with output_hidden_states: as transformers' `output_hidden_states` tuple, the
//                   embedding output first, then one entry per layer (transformers applies the
//                   final norm to the last entry; so do we, family by family as transformers does)
// Decoding: `new_cache` makes the per-sequence state (a KV cache for attention families, conv and
// SSM states for Mamba), `forward_cached` appends tokens to it, and `generate` decodes as
// transformers' generate does, greedy or sampling, with EOS, padding and left-padded batches
// (models/generate.h).
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/tensor.h"
#include "mapping/loader.h"
#include "models/generate.h"

namespace hfport::models {

struct ModelOutput {
  Tensor logits;                       // the head's output; undefined for a base model
  Tensor last_hidden_state;            // [batch, seq, hidden], after the final norm where there is one
  // [batch, hidden]: BERT's and ViT's pooler (dense + tanh on the first token) when the checkpoint
  // has one, DINOv2's pooler_output (the first token of last_hidden_state); undefined otherwise
  Tensor pooled;
  std::vector<Tensor> hidden_states;   // filled when asked
};

class DecodeCache {
 public:
  virtual ~DecodeCache() = default;
  virtual int64_t length() const = 0;  // tokens already in the cache
};

class Model {
 public:
  virtual ~Model() = default;
  virtual std::string family() const = 0;
  virtual const nlohmann::json& config() const = 0;

  // What the model reads, named as transformers' `main_input_name`: "input_ids" for the text
  // families (forward), "pixel_values" for the vision ones (forward_pixels), "input_features"
  // for the audio encoders (forward_audio).
  virtual std::string main_input_name() const { return "input_ids"; }

  // input_ids: [batch, seq] I64 (I32 accepted). attention_mask: [batch, seq], 1 = token, 0 =
  // padding (transformers' convention), or an undefined Tensor for none. A vision model throws
  // ArgumentError naming its family: it takes pixel_values.
  virtual ModelOutput forward(const Tensor& input_ids, const Tensor& attention_mask,
                              bool output_hidden_states) = 0;

  // forward with the token types a tokenizer returns beside the ids (token_type_ids [batch, seq],
  // undefined for none), as transformers' BERT-like models take them. The families with token-type
  // embeddings (bert, roberta, albert) override it; the others accept only all-zero types (what a
  // tokenizer gives for one segment), refusing any other with ArgumentError naming the family.
  virtual ModelOutput forward_with_token_types(const Tensor& input_ids, const Tensor& token_type_ids,
                                               const Tensor& attention_mask,
                                               bool output_hidden_states);

  // pixel_values: [batch, num_channels, height, width], normalised as the checkpoint's image
  // processor leaves them (resizing and normalising are the processor's job, not the model's);
  // F32, F16 or BF16 (computed in F32). interpolate_pos_encoding: resize the learned positions to
  // another image size, as transformers' argument of that name (families whose transformers model
  // always interpolates, DINOv2, do so whatever it says). bool_masked_pos: [batch, num_patches],
  // nonzero = replace that patch's embedding by the mask token (transformers' bool_masked_pos), or
  // undefined. The base versions throw ArgumentError naming the family: it takes input_ids.
  virtual ModelOutput forward_pixels(const Tensor& pixel_values, bool output_hidden_states,
                                     bool interpolate_pos_encoding);
  virtual ModelOutput forward_pixels(const Tensor& pixel_values, const Tensor& bool_masked_pos,
                                     bool output_hidden_states, bool interpolate_pos_encoding);

  // input_features: [batch, frames, features], an audio front end's output (Wav2Vec2-BERT: the
  // stacked filter banks of SeamlessM4TFeatureExtractor), any float dtype (computed in F32);
  // attention_mask [batch, frames], 1 = frame, 0 = padding, or undefined. The base version throws
  // ArgumentError naming the family and what it takes.
  virtual ModelOutput forward_audio(const Tensor& input_features, const Tensor& attention_mask,
                                    bool output_hidden_states);

  // Decoding; the base versions throw hfport::Error naming the family (encoders cannot decode).
  virtual std::unique_ptr<DecodeCache> new_cache(int64_t batch, int64_t max_length) const;
  // Runs `input_ids` [batch, new] after the tokens already in `cache`, appends them, and returns
  // the logits [batch, new, vocab]. `attention_mask`: undefined (every token counts; positions
  // continue from the cache), or [batch, cache.length() + new] covering the cached tokens and the
  // new ones, as transformers' generate passes it (models/decode_mask.h): the attention families
  // mask padded keys and take the positions cumsum(mask) - 1; Mamba zeroes the padded rows among
  // the new tokens.
  virtual Tensor forward_cached(const Tensor& input_ids, const Tensor& attention_mask,
                                DecodeCache& cache);
  Tensor forward_cached(const Tensor& input_ids, DecodeCache& cache) {
    return forward_cached(input_ids, Tensor(), cache);
  }

  // transformers' generate (models/generate.h): input_ids [batch, seq] and up to max_new_tokens
  // new tokens a row. Defined in generate.cpp.
  GenerationOutput generate(const Tensor& input_ids, int64_t max_new_tokens,
                            const GenerationOptions& options);
  // generate with the default options (greedy, the checkpoint's eos and pad ids, no mask); its
  // warnings are dropped. The sequences only.
  Tensor generate(const Tensor& input_ids, int64_t max_new_tokens);

  // The eos / pad defaults generate uses: load_model sets the checkpoint's; a model built otherwise
  // takes config.json's.
  void set_generation_defaults(GenerationDefaults defaults) {
    generation_defaults_ = std::move(defaults);
  }
  GenerationDefaults generation_defaults() const {
    return generation_defaults_ ? *generation_defaults_ : generation_defaults_from_config(config());
  }

 private:
  std::optional<GenerationDefaults> generation_defaults_;
};

// Loads `path` strictly through the family its config.json selects and builds that family's
// model. `dtype`: the compute dtype of the parameters (F32 by default). `device`: where the
// forward runs; the parameters are loaded and prepared on the host, then moved there once (CUDA:
// the llama family and mamba; inputs may come from either side, outputs live on the device).
// Throws UnknownFamilyError for a family with no native model, listing the ones that have one,
// and DeviceError for a family without a CUDA forward.
std::unique_ptr<Model> load_model(const std::string& path, DType dtype = DType::F32,
                                  const Device& device = Device{});

// The same with every load option: `spec` null picks the family from config.json (a spec given
// that config.json contradicts loads with a warning on stderr's report, see loader.h); `options`
// as for load_checkpoint, its dtype F32 when unset and its stats ignored. strict=false tolerates
// unexpected and unloaded head tensors, but a native model needs every parameter it declares:
// anything missing or mismatched is a LoadError either way. `report`, when given, receives the
// load report.
std::unique_ptr<Model> load_model(const std::string& path, const FamilySpec* spec,
                                  LoadOptions options, LoadReport* report = nullptr);

// The families load_model can build.
std::vector<std::string> native_families();

}  // namespace hfport::models
