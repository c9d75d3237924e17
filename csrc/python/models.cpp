// Native models seen from Python: hfport._hfport.Model, built by load_model. python/hfport/models.py
// wraps it in from_pretrained and a callable.
#include <pybind11/stl.h>

#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "core/device.h"
#include "core/error.h"
#include "models/clap.h"
#include "models/model.h"
#include "models/token_choice.h"
#include "models/whisper.h"
#include "python/bindings.h"

namespace hfport::python {

namespace {

// The model as Whisper, or ArgumentError naming what it takes instead.
hfport::models::WhisperModel& as_whisper(hfport::models::Model& model, const char* what) {
  auto* whisper = dynamic_cast<hfport::models::WhisperModel*>(&model);
  if (whisper == nullptr) {
    throw ArgumentError(std::string(what) + " is for the speech families (whisper); the native " +
                        model.family() + " model takes " + model.main_input_name());
  }
  return *whisper;
}

py::dict whisper_forward(hfport::models::Model& model, const DLPackArg& input_features,
                         const DLPackArg& decoder_input_ids, bool output_hidden_states) {
  auto& whisper = as_whisper(model, "input_features");
  const Tensor features = tensor_arg(input_features, "input_features");
  const Tensor ids = optional_tensor_arg(decoder_input_ids, "decoder_input_ids");
  hfport::models::WhisperOutput out;
  {
    py::gil_scoped_release unlocked;
    out = whisper.forward_features(features, ids, output_hidden_states);
  }
  // transformers' Seq2Seq output order (less past_key_values), plus the decoder's
  // last_hidden_state, which Seq2SeqLMOutput leaves out.
  py::dict result;
  if (out.logits.defined()) result["logits"] = out.logits;
  result["last_hidden_state"] = out.last_hidden_state;
  if (output_hidden_states) {
    result["decoder_hidden_states"] = py::tuple(py::cast(out.decoder_hidden_states));
  }
  result["encoder_last_hidden_state"] = out.encoder_last_hidden_state;
  if (output_hidden_states) {
    result["encoder_hidden_states"] = py::tuple(py::cast(out.encoder_hidden_states));
  }
  return result;
}

hfport::models::WhisperGenerationOptions whisper_options(std::optional<int64_t> max_new_tokens,
                                                         std::optional<std::string> language,
                                                         std::optional<std::string> task) {
  hfport::models::WhisperGenerationOptions options;
  options.max_new_tokens = max_new_tokens;
  options.language = std::move(language);
  options.task = std::move(task);
  return options;
}

// generate's eos_token_id: None (the checkpoint's), an int, or a list of ints ([] for none).
std::optional<std::vector<int64_t>> eos_token_ids_arg(const py::object& value) {
  if (value.is_none()) return std::nullopt;
  if (py::isinstance<py::bool_>(value)) {
    throw ArgumentError("generate: eos_token_id must be an int, a list of ints or None, got a bool");
  }
  if (py::isinstance<py::int_>(value)) return std::vector<int64_t>{value.cast<int64_t>()};
  try {
    return value.cast<std::vector<int64_t>>();
  } catch (const py::cast_error&) {
    throw ArgumentError("generate: eos_token_id must be an int, a list of ints or None, got " +
                        std::string(py::str(py::type::of(value).attr("__name__"))));
  }
}

// generate's seed: None (a fresh one) or any Python int, taken modulo 2^64 (so -1 is a seed too).
std::optional<uint64_t> seed_arg(const py::object& value) {
  if (value.is_none()) return std::nullopt;
  if (!py::isinstance<py::int_>(value) || py::isinstance<py::bool_>(value)) {
    throw ArgumentError("generate: seed must be an int or None, got " +
                        std::string(py::str(py::type::of(value).attr("__name__"))));
  }
  const unsigned long long bits = PyLong_AsUnsignedLongLongMask(value.ptr());
  if (PyErr_Occurred()) throw py::error_already_set();
  return static_cast<uint64_t>(bits);
}

// The model as CLAP, or ArgumentError naming what it takes instead.
hfport::models::ClapModel& as_clap(hfport::models::Model& model, const char* what) {
  auto* clap = dynamic_cast<hfport::models::ClapModel*>(&model);
  if (clap == nullptr) {
    throw ArgumentError(std::string(what) + " is for the audio-text family (clap); the native " +
                        model.family() + " model takes " + model.main_input_name());
  }
  return *clap;
}

// One tower's outputs as transformers' BaseModelOutputWithPooling fields (block_states, not a
// transformers field, only with the hidden states).
py::dict clap_tower_dict(const hfport::models::ClapTowerOutput& out, bool output_hidden_states) {
  py::dict result;
  result["last_hidden_state"] = out.last_hidden_state;
  result["pooler_output"] = out.pooler_output;
  result["embeds"] = out.embeds;
  if (output_hidden_states) {
    result["hidden_states"] = py::tuple(py::cast(out.hidden_states));
    if (!out.block_states.empty()) result["block_states"] = py::tuple(py::cast(out.block_states));
  }
  return result;
}

}  // namespace

void bind_models(py::module_& m) {
  using hfport::models::Model;
  py::class_<Model>(m, "Model")
      .def_property_readonly("family", &Model::family)
      .def_property_readonly("config", [](const Model& model) {
        return py::module_::import("json").attr("loads")(model.config().dump());
      })
      .def_property_readonly("main_input_name", &Model::main_input_name)
      .def_property_readonly("_is_whisper",
                             [](const Model& model) {
                               return dynamic_cast<const hfport::models::WhisperModel*>(&model) !=
                                      nullptr;
                             })
      .def("forward",
           [](Model& model, const DLPackArg& input_ids, const DLPackArg& attention_mask,
              const DLPackArg& token_type_ids, bool output_hidden_states,
              const DLPackArg& pixel_values, bool interpolate_pos_encoding,
              const DLPackArg& bool_masked_pos, const DLPackArg& input_features,
              const DLPackArg& decoder_input_ids) {
             // Whisper by its type, not by main_input_name: audio encoders (Wav2Vec2-BERT) read
             // input_features too, without decoder tokens.
             if (dynamic_cast<hfport::models::WhisperModel*>(&model) != nullptr) {
               if (!input_ids.is_none() || !attention_mask.is_none() ||
                   !token_type_ids.is_none() || !pixel_values.is_none()) {
                 throw ArgumentError("forward: a speech model takes input_features and "
                                     "decoder_input_ids (no input_ids, attention_mask, "
                                     "token_type_ids or pixel_values)");
               }
               return whisper_forward(model, input_features, decoder_input_ids,
                                      output_hidden_states);
             }
             if (!decoder_input_ids.is_none()) {
               throw ArgumentError("forward: decoder_input_ids goes with input_features (speech "
                                   "models)");
             }
             if (model.main_input_name() == "input_features" || !input_features.is_none()) {
               // An audio encoder: its features come first, as transformers' main input.
               const py::object features = input_features.is_none() ? input_ids : input_features;
               if ((!input_features.is_none() && !input_ids.is_none()) ||
                   !token_type_ids.is_none() || !pixel_values.is_none()) {
                 throw ArgumentError("forward: an audio model takes input_features and "
                                     "attention_mask only");
               }
               const Tensor features_t = tensor_arg(features, "input_features");
               const Tensor mask = optional_tensor_arg(attention_mask, "attention_mask");
               hfport::models::ModelOutput out;
               {
                 py::gil_scoped_release unlocked;
                 out = model.forward_audio(features_t, mask, output_hidden_states);
               }
               py::dict result;
               result["last_hidden_state"] = out.last_hidden_state;
               if (output_hidden_states) {
                 result["hidden_states"] = py::tuple(py::cast(out.hidden_states));
               }
               return result;
             }
             const bool takes_pixels = model.main_input_name() == "pixel_values";
             // A vision model's first argument is its pixel values (transformers' main input).
             py::object pixels = pixel_values;
             py::object ids = input_ids;
             if (takes_pixels && pixels.is_none()) std::swap(pixels, ids);
             if (!pixels.is_none() && !ids.is_none()) {
               throw ArgumentError("forward: pass input_ids or pixel_values, not both");
             }
             hfport::models::ModelOutput out;
             if (!pixels.is_none()) {
               if (!attention_mask.is_none() || !token_type_ids.is_none()) {
                 throw ArgumentError("forward: attention_mask and token_type_ids go with "
                                     "input_ids; a model given pixel_values takes neither");
               }
               const Tensor pixels_t = tensor_arg(pixels, "pixel_values");
               const Tensor mask_t = optional_tensor_arg(bool_masked_pos, "bool_masked_pos");
               py::gil_scoped_release unlocked;
               out = model.forward_pixels(pixels_t, mask_t, output_hidden_states,
                                          interpolate_pos_encoding);
             } else {
               if (ids.is_none()) {
                 throw ArgumentError("forward: " + model.main_input_name() + " is required");
               }
               if (interpolate_pos_encoding || !bool_masked_pos.is_none()) {
                 throw ArgumentError("forward: interpolate_pos_encoding and bool_masked_pos go "
                                     "with pixel_values, not input_ids");
               }
               const Tensor ids_t = tensor_arg(ids, "input_ids");
               const Tensor mask = optional_tensor_arg(attention_mask, "attention_mask");
               const Tensor types = optional_tensor_arg(token_type_ids, "token_type_ids");
               py::gil_scoped_release unlocked;
               out = model.forward_with_token_types(ids_t, types, mask, output_hidden_states);
             }
             py::dict result;
             if (out.logits.defined()) result["logits"] = out.logits;
             if (out.last_hidden_state.defined()) result["last_hidden_state"] = out.last_hidden_state;
             if (out.pooled.defined()) result["pooler_output"] = out.pooled;
             if (output_hidden_states) result["hidden_states"] = py::tuple(py::cast(out.hidden_states));
             return result;
           },
           py::arg("input_ids") = py::none(), py::arg("attention_mask") = py::none(),
           py::arg("token_type_ids") = py::none(), py::kw_only(),
           py::arg("output_hidden_states") = false,
           py::arg("pixel_values") = py::none(), py::arg("interpolate_pos_encoding") = false,
           py::arg("bool_masked_pos") = py::none(), py::arg("input_features") = py::none(),
           py::arg("decoder_input_ids") = py::none())
      .def_property_readonly("_is_clap",
                             [](const Model& model) {
                               return dynamic_cast<const hfport::models::ClapModel*>(&model) !=
                                      nullptr;
                             })
      .def("_clap_audio",
           [](Model& model, const DLPackArg& input_features, const DLPackArg& is_longer,
              bool output_hidden_states) {
             auto& clap = as_clap(model, "get_audio_features");
             const Tensor features = tensor_arg(input_features, "input_features");
             const Tensor longer = optional_tensor_arg(is_longer, "is_longer");
             hfport::models::ClapTowerOutput out;
             {
               py::gil_scoped_release unlocked;
               out = clap.audio_features(features, longer, output_hidden_states);
             }
             return clap_tower_dict(out, output_hidden_states);
           },
           py::arg("input_features"), py::arg("is_longer"), py::arg("output_hidden_states"))
      .def("_clap_text",
           [](Model& model, const DLPackArg& input_ids, const DLPackArg& attention_mask,
              bool output_hidden_states) {
             auto& clap = as_clap(model, "get_text_features");
             const Tensor ids = tensor_arg(input_ids, "input_ids");
             const Tensor mask = optional_tensor_arg(attention_mask, "attention_mask");
             hfport::models::ClapTowerOutput out;
             {
               py::gil_scoped_release unlocked;
               out = clap.text_features(ids, mask, output_hidden_states);
             }
             return clap_tower_dict(out, output_hidden_states);
           },
           py::arg("input_ids"), py::arg("attention_mask"), py::arg("output_hidden_states"))
      .def("_clap_forward",
           [](Model& model, const DLPackArg& input_ids, const DLPackArg& attention_mask,
              const DLPackArg& input_features, const DLPackArg& is_longer,
              bool output_hidden_states) {
             auto& clap = as_clap(model, "forward with input_ids and input_features");
             const Tensor ids = tensor_arg(input_ids, "input_ids");
             const Tensor mask = optional_tensor_arg(attention_mask, "attention_mask");
             const Tensor features = tensor_arg(input_features, "input_features");
             const Tensor longer = optional_tensor_arg(is_longer, "is_longer");
             hfport::models::ClapOutput out;
             {
               py::gil_scoped_release unlocked;
               out = clap.forward_pair(ids, mask, features, longer, output_hidden_states);
             }
             py::dict result;
             result["logits_per_audio"] = out.logits_per_audio;
             result["logits_per_text"] = out.logits_per_text;
             result["text_embeds"] = out.text_embeds;
             result["audio_embeds"] = out.audio_embeds;
             result["text_model_output"] = clap_tower_dict(out.text, output_hidden_states);
             result["audio_model_output"] = clap_tower_dict(out.audio, output_hidden_states);
             return result;
           },
           py::arg("input_ids"), py::arg("attention_mask"), py::arg("input_features"),
           py::arg("is_longer"), py::arg("output_hidden_states"))
      .def("generate_speech",
           [](Model& model, const DLPackArg& input_features, std::optional<int64_t> max_new_tokens,
              std::optional<std::string> language, std::optional<std::string> task) {
             auto& whisper = as_whisper(model, "generate_speech");
             const Tensor features = tensor_arg(input_features, "input_features");
             const auto options = whisper_options(max_new_tokens, std::move(language),
                                                  std::move(task));
             py::gil_scoped_release unlocked;
             return whisper.generate_features(features, options);
           },
           py::arg("input_features"), py::kw_only(), py::arg("max_new_tokens") = py::none(),
           py::arg("language") = py::none(), py::arg("task") = py::none())
      .def("decoder_prompt",
           [](Model& model, const DLPackArg& input_features, std::optional<std::string> language,
              std::optional<std::string> task) {
             auto& whisper = as_whisper(model, "decoder_prompt");
             const Tensor features = tensor_arg(input_features, "input_features");
             const auto options = whisper_options(std::nullopt, std::move(language),
                                                  std::move(task));
             py::gil_scoped_release unlocked;
             return whisper.decoder_prompt(features, options);
           },
           py::arg("input_features"), py::kw_only(), py::arg("language") = py::none(),
           py::arg("task") = py::none())
      .def("generate",
           [](Model& model, const DLPackArg& input_ids, const DLPackArg& attention_mask,
              int64_t max_new_tokens, int64_t min_new_tokens, const py::object& eos_token_id,
              std::optional<int64_t> pad_token_id, bool do_sample, double temperature,
              int64_t top_k, double top_p, const py::object& seed) {
             const Tensor ids = tensor_arg(input_ids, "input_ids");
             hfport::models::GenerationOptions options;
             options.attention_mask = optional_tensor_arg(attention_mask, "attention_mask");
             options.min_new_tokens = min_new_tokens;
             options.eos_token_ids = eos_token_ids_arg(eos_token_id);
             options.pad_token_id = pad_token_id;
             options.do_sample = do_sample;
             options.sampling = {temperature, top_k, top_p};
             options.seed = seed_arg(seed);
             hfport::models::GenerationOutput out;
             {
               py::gil_scoped_release unlocked;
               out = model.generate(ids, max_new_tokens, options);
             }
             for (const std::string& warning : out.warnings) {
               // stacklevel 2: the line that called hfport.models.Model.generate.
               if (PyErr_WarnEx(PyExc_UserWarning, warning.c_str(), 2) != 0) {
                 throw py::error_already_set();
               }
             }
             return out.sequences;
           },
           py::arg("input_ids"), py::arg("attention_mask") = py::none(), py::kw_only(),
           py::arg("max_new_tokens"), py::arg("min_new_tokens") = 0,
           py::arg("eos_token_id") = py::none(), py::arg("pad_token_id") = py::none(),
           py::arg("do_sample") = false, py::arg("temperature") = 1.0, py::arg("top_k") = 50,
           py::arg("top_p") = 1.0, py::arg("seed") = py::none());
  m.def("_load_model",
        [](const std::string& path, const std::optional<std::string>& spec_text,
           const std::string& spec_origin, const std::string& dtype, const std::string& device,
           bool strict, const std::string& heads) {
          const auto spec = spec_from_text(spec_text, spec_origin);
          LoadOptions options;
          options.dtype = dtype_from_user_name(dtype);
          options.device = parse_device(device);
          options.strict = strict;
          options.heads = head_mode_from_name(heads);
          LoadReport report;
          std::unique_ptr<hfport::models::Model> model;
          {
            py::gil_scoped_release unlocked;
            model = hfport::models::load_model(path, spec ? &*spec : nullptr, options, &report);
          }
          return py::make_tuple(std::move(model), report_tuple(report));
        },
        py::arg("path"), py::arg("spec_text"), py::arg("spec_origin"), py::arg("dtype"),
        py::arg("device"), py::arg("strict"), py::arg("heads"));
  m.def("_native_families", &hfport::models::native_families);
  m.def("_sampling_probabilities",
        [](const DLPackArg& logits, double temperature, int64_t top_k, double top_p) {
          return hfport::models::sampling_probabilities(tensor_arg(logits, "logits"),
                                                        {temperature, top_k, top_p});
        },
        py::arg("logits"), py::arg("temperature"), py::arg("top_k"), py::arg("top_p"),
        "softmax of logits [rows, vocab] after generate's temperature, top-k and top-p (F64); "
        "for tests against transformers' warpers");
}

}  // namespace hfport::python
