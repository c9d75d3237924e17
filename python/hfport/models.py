"""hfport.models: native forward passes of HuggingFace checkpoints.

>>> model = hfport.models.from_pretrained("llama_dir")          # strict load, float32
>>> logits = torch.from_dlpack(model(input_ids).logits)          # [batch, seq, vocab]
>>> out = model(**tokenizer(texts, padding=True, return_tensors="pt"), output_hidden_states=True)
>>> out.last_hidden_state, out.hidden_states                     # transformers' names
>>> tokens = torch.from_dlpack(model.generate(input_ids, max_new_tokens=32))   # greedy
>>> tokens = model.generate(ids, mask, max_new_tokens=32, do_sample=True, top_p=0.9, seed=0)
>>> vit = hfport.models.from_pretrained("vit_dir")                # ViT, DINOv2: pixel_values
>>> out = vit(pixels, output_hidden_states=True)                  # .pooler_output, .hidden_states
>>> whisper = hfport.models.from_pretrained("whisper_dir")        # Whisper: input_features
>>> logits = whisper(input_features=features, decoder_input_ids=ids).logits
>>> tokens = whisper.generate(features)                           # greedy, prompt from the config
>>> clap = hfport.models.from_pretrained("clap_dir")              # CLAP: audio and text
>>> out = clap(input_ids=ids, attention_mask=mask, input_features=feats, is_longer=longer)
>>> out.logits_per_audio, clap.get_audio_features(input_features=feats).pooler_output
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any, cast

from hfport import _hfport
from hfport._hfport import Tensor
from hfport.dtypes import dtype_name
from hfport.errors import ArgumentError
from hfport.load import LoadReport, SpecArg, _heads_mode, _spec_text, _warn


class ModelOutput(dict[str, Any]):
    """What a forward returns, read as transformers' ModelOutput is: by key (``out["logits"]``),
    by attribute (``out.logits``) or by position (``out[0]``, in transformers' order: logits,
    last_hidden_state, pooler_output, hidden_states, whichever were computed). A field of that
    list that was not computed reads as None by attribute, as in transformers."""

    FIELDS = ("logits", "last_hidden_state", "pooler_output", "hidden_states")

    def __init__(self, fields: dict[str, Any]) -> None:
        order = [k for k in self.FIELDS if k in fields] + [k for k in fields
                                                           if k not in self.FIELDS]
        super().__init__((k, fields[k]) for k in order)

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__"):  # protocols (__dlpack__, __array__): not fields
            raise AttributeError(name)
        if name in self:
            return self[name]
        if name in self.FIELDS:
            return None
        raise AttributeError(f"ModelOutput has no field {name!r} (it has {', '.join(self)})")

    def __getitem__(self, key: Any) -> Any:
        if isinstance(key, (int, slice)):
            return self.to_tuple()[key]
        return super().__getitem__(key)

    def to_tuple(self) -> tuple[Any, ...]:
        return tuple(self.values())

    def __dlpack_device__(self) -> tuple[int, int]:
        # torch.from_dlpack(model(ids)) read the logits before outputs had names; say so.
        raise TypeError("a ModelOutput is not a tensor: take one of its fields, e.g. "
                        f"torch.from_dlpack(out.{next(iter(self), 'logits')})")

    def __dlpack__(self, **_: Any) -> Any:
        self.__dlpack_device__()


class Model:
    """A native model. Inputs are any DLPack producers (torch, numpy); outputs hfport.Tensor."""

    report: LoadReport  # what the load found (set by from_pretrained)

    def __init__(self, native: _hfport.Model) -> None:
        self._native = native

    @property
    def family(self) -> str:
        return self._native.family

    @property
    def head(self) -> str:
        """The task head loaded ("causal_lm", "masked_lm", ...), "" for a base model."""
        return self.report.head

    @property
    def config(self) -> dict[str, Any]:
        """config.json with the family spec's defaults applied."""
        return cast("dict[str, Any]", self._native.config)

    @property
    def main_input_name(self) -> str:
        """What the model reads, as transformers names it: "input_ids" (text families),
        "pixel_values" (vision families) or "input_features" (Whisper)."""
        return self._native.main_input_name

    def __call__(self, input_ids: Any = None, attention_mask: Any = None,
                 token_type_ids: Any = None, *, output_hidden_states: bool = False,
                 pixel_values: Any = None, interpolate_pos_encoding: bool = False,
                 bool_masked_pos: Any = None, input_features: Any = None,
                 decoder_input_ids: Any = None, is_longer: Any = None) -> ModelOutput:
        """The forward pass, called as transformers' models are: ``model(**tokenizer(texts,
        padding=True, return_tensors="pt"))``, ``model(pixel_values)`` or
        ``model(input_features=..., decoder_input_ids=...)``. See forward."""
        return self.forward(input_ids, attention_mask, token_type_ids,
                            output_hidden_states=output_hidden_states,
                            pixel_values=pixel_values,
                            interpolate_pos_encoding=interpolate_pos_encoding,
                            bool_masked_pos=bool_masked_pos, input_features=input_features,
                            decoder_input_ids=decoder_input_ids, is_longer=is_longer)

    def forward(self, input_ids: Any = None, attention_mask: Any = None,
                token_type_ids: Any = None, *, output_hidden_states: bool = False,
                pixel_values: Any = None, interpolate_pos_encoding: bool = False,
                bool_masked_pos: Any = None, input_features: Any = None,
                decoder_input_ids: Any = None, is_longer: Any = None) -> ModelOutput:
        """A ModelOutput with transformers' names: logits (with a head: [batch, seq, vocab] for a
        language model, [batch, labels] for a sequence or image classifier), last_hidden_state,
        pooler_output (the BERT and ViT poolers, DINOv2's first token; base models only; timm's
        and OpenGVLab's pre-logits features, with or without their head),
        hidden_states (when asked: the embedding output first, then one entry per layer).

        Text families take input_ids [batch, seq], attention_mask (1 = token, 0 = padding) and
        token_type_ids (bert, roberta, albert; the other families accept only zeros).
        pixel_values (vision families, first argument or by name): [batch, num_channels, height,
            width], F32/F16/BF16, already resized and normalised by the checkpoint's image
            processor (VideoMAE: [batch, num_frames, num_channels, height, width]).
        interpolate_pos_encoding: resize the learned positions (bicubic, as transformers) for an
            image of another size than config.json's image_size; DINOv2 always does.
        bool_masked_pos: [batch, num_patches] of 0/1 (bool or integers): the patches replaced by
            the checkpoint's mask token.
        input_features (audio encoders, Wav2Vec2-BERT; first argument or by name): [batch,
            frames, features], the feature extractor's output, with its attention_mask.
        input_features (Whisper): log-mel features [batch, num_mel_bins, 2 *
            max_source_positions] (hfport.ops.log_mel_spectrogram, or the feature extractor),
            with decoder_input_ids [batch, seq]. The output holds logits (not for the base
            WhisperModel), last_hidden_state (the decoder's), encoder_last_hidden_state, and
            with output_hidden_states decoder_hidden_states and encoder_hidden_states, as
            transformers names them (read them by name: transformers' Seq2SeqLMOutput has no
            last_hidden_state, so positions differ).
        CLAP (family "clap"): input_ids and attention_mask (the captions) with input_features
            [batch, channels, time, num_mel_bins] and is_longer (ClapFeatureExtractor's outputs;
            is_longer is required with enable_fusion), both towers at once, as ClapModel's
            forward: logits_per_audio, logits_per_text, text_embeds, audio_embeds (normalised),
            text_model_output and audio_model_output (each last_hidden_state, pooler_output and,
            when asked, hidden_states)."""
        if self._native._is_clap:
            if token_type_ids is not None or pixel_values is not None or \
                    decoder_input_ids is not None or bool_masked_pos is not None:
                raise ArgumentError("forward: a clap model takes input_ids, attention_mask, "
                                    "input_features and is_longer")
            if input_ids is None or input_features is None:
                raise ArgumentError("forward: a clap model needs both input_ids and "
                                    "input_features (get_text_features and get_audio_features "
                                    "run one tower)")
            raw = self._native._clap_forward(input_ids, attention_mask, input_features,
                                             is_longer, output_hidden_states)
            fields = dict(raw)
            for tower in ("text_model_output", "audio_model_output"):
                fields[tower] = _tower_output(raw[tower], projected=False)
            return ModelOutput(fields)
        if is_longer is not None:
            raise ArgumentError(f"forward: is_longer is for clap; the native {self.family} model "
                                "takes no is_longer")
        return ModelOutput(self._native.forward(
            input_ids, attention_mask, token_type_ids,
            output_hidden_states=output_hidden_states, pixel_values=pixel_values,
            interpolate_pos_encoding=interpolate_pos_encoding,
            bool_masked_pos=bool_masked_pos, input_features=input_features,
            decoder_input_ids=decoder_input_ids))

    def get_audio_features(self, input_features: Any, is_longer: Any = None, *,
                           output_hidden_states: bool = False) -> ModelOutput:
        """CLAP's audio tower, as transformers 5.17's ClapModel.get_audio_features: a ModelOutput
        (BaseModelOutputWithPooling), not a tensor. pooler_output is the audio embedding:
        audio_projection of the tower's mean pooling, L2-normalised (F.normalize);
        last_hidden_state is the normed Swin output in transformers' grouped layout [batch,
        hidden, f / freq_ratio, freq_ratio * t]; hidden_states (when asked) the patch embedding
        then each stage's output, [batch, C, H, W].

        input_features: [batch, channels, time, num_mel_bins] (ClapFeatureExtractor's; channels
        is 4 with enable_fusion, else 1); is_longer: [batch] or [batch, 1] (bool or 0/1),
        required with enable_fusion: the examples it marks mix in their three crops (AFF)."""
        raw = self._native._clap_audio(input_features, is_longer, output_hidden_states)
        return _tower_output(raw, projected=True)

    def get_text_features(self, input_ids: Any, attention_mask: Any = None, *,
                          output_hidden_states: bool = False) -> ModelOutput:
        """CLAP's text tower (RoBERTa), as transformers 5.17's ClapModel.get_text_features: a
        ModelOutput whose pooler_output is the text embedding (text_projection of the pooler,
        L2-normalised), with last_hidden_state [batch, seq, hidden] and, when asked,
        hidden_states (the embeddings, then each layer)."""
        raw = self._native._clap_text(input_ids, attention_mask, output_hidden_states)
        return _tower_output(raw, projected=True)

    def generate(self, input_ids: Any, attention_mask: Any = None, *,
                 max_new_tokens: int | None = None,
                 min_new_tokens: int = 0, eos_token_id: int | Sequence[int] | None = None,
                 pad_token_id: int | None = None, do_sample: bool = False,
                 temperature: float = 1.0, top_k: int = 50, top_p: float = 1.0,
                 seed: int | None = None, language: str | None = None,
                 task: str | None = None) -> Tensor:
        """Decode with the cache as transformers' ``generate`` does (one beam): greedy, or
        sampling with ``do_sample``. Returns the token ids [batch, seq + steps] (I64), prompt
        first; steps is max_new_tokens, or fewer when every row has produced an eos token.

        input_ids: [batch, seq] token ids (any DLPack producer, I64 or I32).
        attention_mask: [batch, seq], 1 = token, 0 = padding, for prompts of different lengths
            padded on the LEFT. Padded tokens are masked, and a row's first token sits at
            position 0 (transformers' generate positions). A row whose last column is padding
            (right padding) is refused. None: every token counts; no mask is inferred from
            pad_token_id (transformers does infer one).
        max_new_tokens: the most tokens to add to each row (required; >= 0).
        min_new_tokens: eos tokens are suppressed (their scores set to -inf) until this many
            tokens were generated.
        eos_token_id: an id or a list of ids that finish a row. None: the checkpoint's
            (generation_config.json beside it when present, else config.json); [] for none.
        pad_token_id: what a finished row gets while others go on. None: the checkpoint's
            (as eos_token_id), else the first eos id (with a warning for a batch, as
            transformers warns).
        do_sample: draw each token from the softmax of the scores instead of taking the largest.
        temperature: > 0; the scores are divided by it before top-k and top-p (sampling only).
        top_k: >= 0; keep the top_k largest scores, 0 keeps all (sampling only).
        top_p: in (0, 1]; keep the smallest set of most probable tokens whose probabilities add
            up to top_p or more, 1 keeps all (sampling only).
        seed: the seed of hfport's own generator (a 64-bit Mersenne Twister; any int, taken
            modulo 2**64): the same seed gives the same tokens; None draws a fresh seed. It is not torch's generator, so the
            tokens differ from transformers' for a given torch seed.

        temperature, top_k and top_p are checked even when do_sample is False (ArgumentError
        names the bad one). Sampling defaults in a checkpoint's generation_config.json are not
        applied: pass them here.

        Whisper: ``generate(input_features, max_new_tokens=None, language=None, task=None)``,
        greedy, as WhisperForConditionalGeneration.generate(input_features, do_sample=False) for
        one 30 s segment: the decoder prompt, suppress_tokens, begin_suppress_tokens, eos, pad
        and max_length come from the checkpoint's generation config; language (a code such as
        "en") and task ("transcribe", "translate") as transformers takes them. Returns the new
        tokens without the prompt, [batch, n] I64, rows padded on the right with pad_token_id
        (see decoder_prompt for the prompt)."""
        if self._native._is_whisper:
            if attention_mask is not None or do_sample or min_new_tokens or \
                    eos_token_id is not None or pad_token_id is not None:
                raise ArgumentError("generate: a whisper model decodes greedily with the "
                                    "generation config's eos and pad ids; it takes input_features, "
                                    "max_new_tokens, language and task")
            return self._native.generate_speech(input_ids, max_new_tokens=max_new_tokens,
                                                language=language, task=task)
        if language is not None or task is not None:
            raise ArgumentError(f"generate: language and task are for speech models; the native "
                                f"{self.family} model takes neither")
        if max_new_tokens is None:
            raise ArgumentError("generate: max_new_tokens is required")
        return self._native.generate(
            input_ids, attention_mask, max_new_tokens=max_new_tokens,
            min_new_tokens=min_new_tokens, eos_token_id=eos_token_id, pad_token_id=pad_token_id,
            do_sample=do_sample, temperature=temperature, top_k=top_k, top_p=top_p, seed=seed)

    def decoder_prompt(self, input_features: Any, *, language: str | None = None,
                       task: str | None = None) -> Tensor:
        """Whisper: the decoder prompt generate starts every row with, [batch, n] I64 (the start
        token, then the language, task and no-timestamps tokens the generation config asks for;
        the language is detected from the audio when the config has lang_to_id and none is
        set)."""
        return self._native.decoder_prompt(input_features, language=language, task=task)

    def __repr__(self) -> str:
        return f"hfport.models.Model(family={self.family!r})"


def _tower_output(raw: dict[str, Any], *, projected: bool) -> ModelOutput:
    """A CLAP tower's native dict as transformers returns it: get_*_features put the normalised
    projection in pooler_output; the full forward's *_model_output keep the tower's pooling."""
    fields = {"last_hidden_state": raw["last_hidden_state"],
              "pooler_output": raw["embeds"] if projected else raw["pooler_output"]}
    if "hidden_states" in raw:
        fields["hidden_states"] = raw["hidden_states"]
    return ModelOutput(fields)


def from_pretrained(path: str | os.PathLike[str], spec: SpecArg = None, dtype: Any = "float32",
                    device: str = "cpu", strict: bool = True, *, family: str | None = None,
                    heads: str = "auto") -> Model:
    """Load a checkpoint through its family spec and build the native model.

    spec, family, strict and heads are hfport.load's: the family config.json selects (or the one
    spec / family names), and the head config.json's `architectures` select ("masked_lm",
    "sequence_classification", ...; a base model such as BertModel or LlamaModel has none and
    returns last_hidden_state). strict=False tolerates unexpected tensors and unloaded head
    tensors, but a native model needs every parameter it declares, so anything missing or
    mismatched raises LoadError either way. The load report is `model.report`.

    device "cuda" / "cuda:N" runs the llama family, mamba, the image encoders (vit, timm_vit,
    dinov2, dinov2_with_registers, dinov3) and videomae / videomae_opengvlab (their pixel_values
    must be on that device) on that GPU
    (the parameters are loaded on the host and moved once; outputs are CUDA tensors). Other
    families, a build without CUDA and a machine without a device raise DeviceError saying
    which."""
    spec_text, origin = _spec_text(spec, family)
    native, report = _hfport._load_model(os.fspath(path), spec_text, origin,
                                         dtype_name("float32" if dtype is None else dtype),
                                         str(device), strict, _heads_mode(heads))
    model = Model(native)
    model.report = _warn(LoadReport(*report))
    return model


def native_families() -> list[str]:
    """The families with a native model."""
    return list(_hfport._native_families())
