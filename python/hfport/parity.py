"""hfport.parity: a native model next to its transformers reference, layer by layer.

>>> report = hfport.parity.compare(model, hf_model, input_ids)    # hf_model: eager attention
>>> print(report)              # plain table; rich.print(report) draws it with rich
>>> report.ok, report.first_divergent
>>> report = hfport.parity.compare_checkpoint("llama_dir", batch=2, seq=16, seed=0)
>>> report = hfport.parity.compare(vit, hf_vit, pixel_values)    # vision families: pixels
>>> report = hfport.parity.compare_checkpoint("vit_dir", image_size=(48, 40))   # resized positions
>>> report = hfport.parity.compare(whisper, hf_whisper, input_features, decoder_input_ids=ids)
>>> rows = hfport.parity.front_end_rows(feature_size=80)    # log-mel vs WhisperFeatureExtractor

Both models see the same input ids (and attention mask), or for the vision families (ViT,
DINOv2, DINOv3, VideoMAE, timm's ViT, OpenGVLab's VideoMAE) the same pixel values. Rows follow transformers' `output_hidden_states` tuple: the
embedding output (for vision families: patches, class token, registers and positions), one row
per layer (decoders apply the final norm to the last one, as transformers does), then the logits,
or for encoders the last hidden state and the pooler output. Each row holds the largest absolute error, the relative L2 error
||native - reference|| / ||reference|| and the cosine similarity, computed in float64 over the
positions the mask keeps (padding positions are free to differ). A row is over tolerance when its
relative L2 exceeds `rtol` (default by dtype: 1e-5 for float32) or, when `atol` is given, its
largest absolute error exceeds `atol`; the first such row is the first divergent layer, which is
where a port's bug lives: every later row inherits the error.

Whisper (speech families): the encoder's rows (encoder.embeddings: the convolutions and
positions; encoder.layers.i, the last with the final norm), then the decoder's, then
encoder_last_hidden_state and logits; `compare_checkpoint` adds front-end rows comparing
hfport.ops.log_mel_spectrogram with transformers' WhisperFeatureExtractor on seeded synthetic
waveforms (a sum of tones plus noise) shorter than, equal to and longer than the 30 s window.
Wav2Vec2-BERT and CLAP get front-end rows too: hfport.ops.fbank against
SeamlessM4TFeatureExtractor (fbank_rows), hfport.ops.clap_log_mel against ClapFeatureExtractor
(clap_mel_rows), with the checkpoint's preprocessor_config.json when it has one.

This module is the comparison harness, so it computes with torch; the models it compares compute
natively.
"""

from __future__ import annotations

import inspect
import json
import math
import os
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, cast

import torch
from torch.utils.dlpack import from_dlpack

from hfport.errors import ArgumentError

# Relative L2 a row may reach, by the dtype the native model computes in.
DEFAULT_RTOL: dict[torch.dtype, float] = {
    torch.float64: 1e-10,
    torch.float32: 1e-5,
    torch.float16: 5e-3,
    torch.bfloat16: 3e-2,
}

# Families whose reference is transformers' AutoModel (the bare encoder), not a causal LM head.
ENCODER_FAMILIES = frozenset({"bert", "roberta", "albert"})
# Encoders that read pixel values (main_input_name "pixel_values") instead of token ids: images,
# or for VideoMAE videos [batch, frames, channels, H, W].
VISION_FAMILIES = frozenset({"vit", "dinov2", "dinov2_with_registers", "dinov3", "videomae",
                             "timm_vit", "videomae_opengvlab"})
# Encoders that read an audio front end's features [batch, frames, features] (main_input_name
# "input_features") with an optional attention_mask over the frames.
AUDIO_ENCODER_FAMILIES = frozenset({"wav2vec2-bert"})
VIDEO_FAMILIES = frozenset({"videomae", "videomae_opengvlab"})
# Families whose reference is no transformers class: `hfport parity DIR` cannot build it from the
# folder, so it says which library it would need; hfport.parity.compare takes a reference built
# by hand (an nn.Module whose forward returns hidden_states and the outputs, as transformers').
REFERENCE_LIBRARIES = {
    "timm_vit": "timm's VisionTransformer (the timm library)",
    "videomae_opengvlab": "OpenGVLab's remote code (modeling_videomaev2.py, trust_remote_code)",
}
# Audio-text models with two towers (ClapModel): token ids and audio features together.
AUDIO_TEXT_FAMILIES = frozenset({"clap"})
# Encoder-decoders that read log-mel features (main_input_name "input_features").
SPEECH_FAMILIES = frozenset({"whisper"})
# The front-end rows' waveform lengths in seconds: shorter than Whisper's 30 s window, equal to it,
# and longer (truncated).
FRONT_END_SECONDS = (1.3, 30.0, 33.7)


@dataclass(frozen=True)
class ParityRow:
    """One compared output. `status`: "ok", "over" (over tolerance), "shape" (the two shapes
    differ), "native only" / "reference only" (one side has no such output)."""

    name: str
    shape: tuple[int, ...]
    max_abs: float
    rel_l2: float
    cosine: float
    status: str

    @property
    def ok(self) -> bool:
        return self.status == "ok"


def _metrics(native: torch.Tensor, reference: torch.Tensor) -> tuple[float, float, float]:
    a = native.detach().to(torch.float64).reshape(-1)
    b = reference.detach().to(torch.float64).reshape(-1)
    diff = a - b
    max_abs = diff.abs().max().item() if diff.numel() else 0.0
    if diff.numel() and torch.isnan(diff).any():
        max_abs = math.nan
    err, ref_norm, native_norm = diff.norm().item(), b.norm().item(), a.norm().item()
    if ref_norm > 0:
        rel_l2 = err / ref_norm
    else:
        rel_l2 = 0.0 if err == 0 else math.inf
    if ref_norm > 0 and native_norm > 0:
        cosine = (a @ b).item() / (native_norm * ref_norm)
    else:
        cosine = 1.0 if ref_norm == native_norm == 0 else 0.0
    return max_abs, rel_l2, cosine


class ParityReport:
    """The rows of one comparison, their tolerance and the first row over it."""

    def __init__(self, rows: list[ParityRow], rtol: float, atol: float | None, dtype: str,
                 title: str = "") -> None:
        self.rows = rows
        self.rtol = rtol
        self.atol = atol
        self.dtype = dtype
        self.title = title

    @property
    def ok(self) -> bool:
        return all(row.ok for row in self.rows)

    @property
    def first_divergent(self) -> str | None:
        """The name of the first row over tolerance, or None when every row is within it."""
        return next((row.name for row in self.rows if not row.ok), None)

    def __getitem__(self, name: str) -> ParityRow:
        for row in self.rows:
            if row.name == name:
                return row
        raise KeyError(f"no parity row named {name!r}; rows: {[r.name for r in self.rows]}")

    def to_dict(self) -> dict[str, Any]:
        rows = []
        for row in self.rows:
            entry = asdict(row)
            entry["shape"] = list(row.shape)
            for key in ("max_abs", "rel_l2", "cosine"):  # JSON has no NaN or infinity
                if not math.isfinite(entry[key]):
                    entry[key] = str(entry[key])
            rows.append(entry)
        return {"title": self.title, "dtype": self.dtype, "rtol": self.rtol, "atol": self.atol,
                "ok": self.ok, "first_divergent": self.first_divergent, "rows": rows}

    def to_json(self, indent: int | None = 2) -> str:
        return json.dumps(self.to_dict(), indent=indent)

    def _summary(self) -> str:
        limit = f"rel L2 <= {self.rtol:.0e}"
        if self.atol is not None:
            limit += f", max abs <= {self.atol:.0e}"
        verdict = ("within tolerance" if self.ok
                   else f"first divergent: {self.first_divergent}")
        return f"{self.dtype}, {limit}: {verdict}"

    def _cells(self, row: ParityRow) -> list[str]:
        if row.status in ("shape", "native only", "reference only"):
            return [row.name, str(list(row.shape)), "", "", "", row.status]
        return [row.name, str(list(row.shape)), f"{row.max_abs:.3e}", f"{row.rel_l2:.3e}",
                f"{row.cosine:.8f}", row.status]

    _HEADER = ("output", "shape", "max abs", "rel L2", "cosine", "status")

    def __str__(self) -> str:
        lines = [[*self._HEADER], *(self._cells(row) for row in self.rows)]
        widths = [max(len(line[i]) for line in lines) for i in range(len(self._HEADER))]
        text = [f"parity {self.title}".rstrip()] if self.title else []
        for line in lines:
            text.append("  ".join(cell.ljust(w) for cell, w in zip(line, widths)).rstrip())
        text.append(self._summary())
        return "\n".join(text) + "\n"

    def __rich__(self) -> Any:
        from rich import box
        from rich.table import Table

        table = Table(title=f"parity {self.title}".rstrip(), caption=self._summary(),
                      box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False)
        for i, header in enumerate(self._HEADER):
            table.add_column(header, no_wrap=True, justify="left" if i < 2 else "right")
        for row in self.rows:
            cells = self._cells(row)
            table.add_row(*cells, style=None if row.ok else "bold red")
        return table

    def __repr__(self) -> str:
        return (f"ParityReport({self.title!r}, rows={len(self.rows)}, ok={self.ok}, "
                f"first_divergent={self.first_divergent!r})")


def _keep_tokens(x: torch.Tensor, keep: torch.Tensor | None) -> torch.Tensor:
    """[batch, seq, ...] -> [tokens the mask keeps, ...]; other shapes (a sequence classifier's
    [batch, num_labels], even where num_labels equals seq) pass through."""
    if keep is None or x.dim() < 3 or tuple(x.shape[:2]) != tuple(keep.shape):
        return x
    return x[keep]


def _row(name: str, native: torch.Tensor | None, reference: torch.Tensor | None,
         keep: torch.Tensor | None, rtol: float, atol: float | None) -> ParityRow:
    nan = math.nan
    if native is None or reference is None:
        only = native if native is not None else reference
        if only is None:
            raise ValueError(f"parity row {name!r}: neither side has this output")
        status = "native only" if reference is None else "reference only"
        return ParityRow(name, tuple(only.shape), nan, nan, nan, status)
    if native.shape != reference.shape:
        return ParityRow(name, tuple(native.shape), nan, nan, nan, "shape")
    max_abs, rel_l2, cosine = _metrics(_keep_tokens(native, keep), _keep_tokens(reference, keep))
    within = rel_l2 <= rtol and (atol is None or max_abs <= atol)  # NaN is never within
    return ParityRow(name, tuple(native.shape), max_abs, rel_l2, cosine,
                     "ok" if within else "over")


def _torch(x: Any) -> torch.Tensor | None:
    return None if x is None else from_dlpack(x)


def _hidden_state_names(family: str, count: int, is_decoder: bool) -> list[str]:
    """What each entry of transformers' hidden_states tuple holds, family by family."""
    if family in ("mamba", "mamba2"):
        # MambaModel, Mamba2Model: each block's output (no embedding entry), then norm_f of the
        # last one.
        return [f"layers.{i}" for i in range(count - 1)] + ["norm_f"]
    if family in ("rwkv", "rwkv_original"):
        # RwkvModel: each block's output (after the inference rescaling), then ln_out of the last.
        return [f"layers.{i}" for i in range(count - 1)] + ["ln_out"]
    if family in AUDIO_ENCODER_FAMILIES:
        # Wav2Vec2BertModel: the projected features, then each conformer block's output.
        return ["feature_projection"] + [f"layers.{i}" for i in range(count - 1)]
    names = ["embeddings"] + [f"layers.{i}" for i in range(count - 1)]
    if is_decoder and count > 1:
        names[-1] += " + norm"  # transformers applies the final norm to the last entry
    return names


def _takes_pixels(native_model: Any) -> bool:
    return getattr(native_model, "main_input_name", "input_ids") == "pixel_values"


def _run_both(native_model: Any, hf_model: torch.nn.Module, inputs: Any, attention_mask: Any,
              interpolate_pos_encoding: bool) -> tuple[dict[str, Any], Any, torch.Tensor | None]:
    """Both models' outputs on one input, and the [batch, seq] positions the rows compare (None:
    all)."""
    if getattr(native_model, "main_input_name", "") == "input_features":
        features = torch.as_tensor(inputs)
        if features.dim() != 3 or not features.is_floating_point():
            raise ValueError("inputs must be input features [batch, frames, features] (float), "
                             f"got {features.dtype} of shape {list(features.shape)}")
        features = features.to(torch.float32).contiguous()
        mask = None if attention_mask is None else torch.as_tensor(attention_mask).to(torch.int64)
        native = native_model.forward(input_features=features, attention_mask=mask,
                                      output_hidden_states=True)
        with torch.no_grad():
            reference = hf_model(input_features=features, attention_mask=mask,
                                 output_hidden_states=True)
        return native, reference, None if mask is None else mask.bool()
    if _takes_pixels(native_model):
        pixels = torch.as_tensor(inputs)
        if pixels.dim() not in (4, 5) or not pixels.is_floating_point():
            raise ValueError("inputs must be pixel values [batch, channels, height, width] (or "
                             "[batch, frames, channels, height, width] for a video model) "
                             f"(float), got {pixels.dtype} of shape {list(pixels.shape)}")
        pixels = pixels.to(torch.float32).contiguous()
        native = native_model.forward(pixel_values=pixels, output_hidden_states=True,
                                      interpolate_pos_encoding=interpolate_pos_encoding)
        options = {}
        # ViT takes the switch; DINOv2 has none (it always resizes its positions).
        if "interpolate_pos_encoding" in inspect.signature(hf_model.forward).parameters:
            options["interpolate_pos_encoding"] = interpolate_pos_encoding
        with torch.no_grad():
            reference = hf_model(pixel_values=pixels, output_hidden_states=True, **options)
        return native, reference, None
    ids = torch.as_tensor(inputs)
    if ids.dim() != 2:
        raise ValueError(f"inputs must be token ids [batch, seq], got shape {list(ids.shape)}")
    ids = ids.to(torch.int64).contiguous()
    mask = None if attention_mask is None else torch.as_tensor(attention_mask).to(torch.int64)
    native = native_model.forward(ids, mask, output_hidden_states=True)
    family = getattr(native_model, "family", "")
    # transformers' RWKV builds its decoding state by default, sized by hidden_size even where
    # the attention is narrower (attention_hidden_size), which fails; a comparison needs no state.
    options = {"use_cache": False} if family in ("rwkv", "rwkv_original") else {}
    with torch.no_grad():
        reference = hf_model(input_ids=ids, attention_mask=mask, output_hidden_states=True,
                             **options)
    return native, reference, None if mask is None else mask.bool()


def _stack_names(prefix: str, count: int) -> list[str]:
    """An encoder's or decoder's hidden_states tuple: embeddings, each layer, the last with the
    final norm (Whisper's encoder and decoder)."""
    names = [f"{prefix}.embeddings"] + [f"{prefix}.layers.{i}" for i in range(count - 1)]
    if count > 1:
        names[-1] += " + norm"
    return names


def _compare_speech(native_model: Any, hf_model: torch.nn.Module, inputs: Any,
                    decoder_input_ids: Any, rtol: float | None, atol: float | None,
                    title: str) -> ParityReport:
    features = torch.as_tensor(inputs)
    if features.dim() != 3 or not features.is_floating_point():
        raise ValueError("inputs must be log-mel features [batch, num_mel_bins, frames] (float), "
                         f"got {features.dtype} of shape {list(features.shape)}")
    features = features.to(torch.float32).contiguous()
    if decoder_input_ids is None:
        raise ValueError("a speech model's comparison needs decoder_input_ids [batch, seq]")
    ids = torch.as_tensor(decoder_input_ids).to(torch.int64).contiguous()
    native = native_model.forward(input_features=features, decoder_input_ids=ids,
                                  output_hidden_states=True)
    with torch.no_grad():
        reference = hf_model(input_features=features, decoder_input_ids=ids,
                             output_hidden_states=True)
    main = from_dlpack(native.get("logits", native.get("last_hidden_state")))
    if rtol is None:
        rtol = DEFAULT_RTOL.get(main.dtype, DEFAULT_RTOL[torch.float32])
    rows = []
    for prefix, key in (("encoder", "encoder_hidden_states"), ("decoder", "decoder_hidden_states")):
        mine = [_torch(h) for h in native.get(key, [])]
        theirs = list(getattr(reference, key, None) or ())
        count = max(len(mine), len(theirs))
        for i, name in enumerate(_stack_names(prefix, count)):
            rows.append(_row(name, mine[i] if i < len(mine) else None,
                             theirs[i] if i < len(theirs) else None, None, rtol, atol))
    rows.append(_row("encoder_last_hidden_state", _torch(native.get("encoder_last_hidden_state")),
                     reference.encoder_last_hidden_state, None, rtol, atol))
    if getattr(reference, "last_hidden_state", None) is not None:
        rows.append(_row("last_hidden_state", _torch(native.get("last_hidden_state")),
                         reference.last_hidden_state, None, rtol, atol))
    a, b = _torch(native.get("logits")), getattr(reference, "logits", None)
    if a is not None or b is not None:
        rows.append(_row("logits", a, b, None, rtol, atol))
    return ParityReport(rows, rtol, atol, str(main.dtype).removeprefix("torch."), title)


def synthetic_waveform(seconds: float, seed: int, sampling_rate: int = 16000) -> torch.Tensor:
    """A seeded sum of four tones (100 Hz - 6 kHz, random phases and levels) plus white noise at
    -30 dB: a spectrum with peaks and a floor, like speech's. float32 [samples]."""
    generator = torch.Generator().manual_seed(seed)
    t = torch.arange(round(seconds * sampling_rate), dtype=torch.float64) / sampling_rate
    freqs = 100.0 + 5900.0 * torch.rand(4, generator=generator, dtype=torch.float64)
    phases = 6.283185307179586 * torch.rand(4, generator=generator, dtype=torch.float64)
    levels = 0.1 + 0.3 * torch.rand(4, generator=generator, dtype=torch.float64)
    x = (levels[:, None] * torch.sin(6.283185307179586 * freqs[:, None] * t + phases[:, None]))
    noise = 0.03 * torch.randn(t.numel(), generator=generator, dtype=torch.float64)
    return (x.sum(0) + noise).to(torch.float32)


def _extractor_rows(extractor: Any, ours: Callable[[torch.Tensor], Any],
                    seconds: tuple[float, ...], seed: int, rtol: float,
                    **call: Any) -> list[ParityRow]:
    """One row per length in `seconds`: `ours(audio)` (an hfport op's features, or a tuple
    whose first entry they are) next to `extractor`'s input_features, on synthetic_waveform at
    the extractor's rate (seeds seed, seed + 1, ...)."""
    rows = []
    for i, length in enumerate(seconds):
        audio = synthetic_waveform(length, seed + i, extractor.sampling_rate)
        expected = torch.from_numpy(extractor(audio.numpy(), sampling_rate=extractor.sampling_rate,
                                              return_tensors="np", **call).input_features)
        got = ours(audio)
        got = from_dlpack(got[0] if isinstance(got, tuple) else got)
        rows.append(_row(f"front end {length:g} s", got, expected, None, rtol, None))
    return rows


def front_end_rows(feature_size: int = 80, seconds: tuple[float, ...] = FRONT_END_SECONDS,
                   seed: int = 0, rtol: float = 1e-5, extractor: Any = None) -> list[ParityRow]:
    """hfport.ops.log_mel_spectrogram next to transformers' WhisperFeatureExtractor (`extractor`,
    default: WhisperFeatureExtractor(feature_size=feature_size)) on synthetic_waveform of each
    length in `seconds` (seeds seed, seed + 1, ...), one row each: "front end 1.3 s"."""
    from transformers import WhisperFeatureExtractor

    import hfport.ops

    if extractor is None:
        extractor = WhisperFeatureExtractor(feature_size=feature_size)
    return _extractor_rows(extractor, lambda audio: hfport.ops.log_mel_spectrogram(
        audio, sampling_rate=extractor.sampling_rate, feature_size=extractor.feature_size,
        n_fft=extractor.n_fft, hop_length=extractor.hop_length,
        n_samples=extractor.n_samples, feature_sampling_rate=extractor.sampling_rate),
        seconds, seed, rtol)


def fbank_rows(extractor: Any = None, seconds: tuple[float, ...] = (0.7, 3.1), seed: int = 0,
               rtol: float = 1e-5) -> list[ParityRow]:
    """hfport.ops.fbank next to SeamlessM4TFeatureExtractor (`extractor`, default: its
    defaults, Wav2Vec2-BERT's front end), one row per length, as front_end_rows."""
    from transformers import SeamlessM4TFeatureExtractor

    import hfport.ops

    if extractor is None:
        extractor = SeamlessM4TFeatureExtractor()
    return _extractor_rows(extractor, lambda audio: hfport.ops.fbank(
        audio, sampling_rate=extractor.sampling_rate, num_mel_bins=extractor.num_mel_bins,
        stride=extractor.stride, feature_sampling_rate=extractor.sampling_rate),
        seconds, seed, rtol)


def clap_mel_rows(extractor: Any = None, seconds: tuple[float, ...] = (1.3, 10.0), seed: int = 0,
                  rtol: float = 1e-5) -> list[ParityRow]:
    """hfport.ops.clap_log_mel next to ClapFeatureExtractor (`extractor`, default: its defaults),
    one row per length, as front_end_rows. Clips no longer than the extractor's max_length_s:
    a longer one is cut where transformers draws at random."""
    from transformers import ClapFeatureExtractor

    import hfport.ops

    if extractor is None:
        extractor = ClapFeatureExtractor()
    return _extractor_rows(extractor, lambda audio: hfport.ops.clap_log_mel(
        audio, sampling_rate=extractor.sampling_rate, truncation=extractor.truncation,
        padding=extractor.padding, feature_size=extractor.feature_size,
        fft_window_size=extractor.fft_window_size, hop_length=extractor.hop_length,
        max_length_s=extractor.max_length_s, frequency_min=float(extractor.frequency_min),
        frequency_max=float(extractor.frequency_max),
        feature_sampling_rate=extractor.sampling_rate),
        tuple(t for t in seconds if t <= extractor.max_length_s), seed, rtol)


def compare(native_model: Any, hf_model: torch.nn.Module, inputs: Any,
            attention_mask: Any = None, *, rtol: float | None = None,
            atol: float | None = None, title: str = "",
            interpolate_pos_encoding: bool = False,
            decoder_input_ids: Any = None, input_features: Any = None,
            is_longer: Any = None) -> ParityReport:
    """Run both models on `inputs` and compare every output.

    `inputs`: token ids [batch, seq] (with an optional attention_mask), or for a vision model
    (main_input_name "pixel_values") pixel values [batch, channels, height, width] (VideoMAE:
    [batch, frames, channels, height, width]), compared in float32; `interpolate_pos_encoding` resizes the position table for an image of another size
    (passed to transformers where its forward takes it: ViT; DINOv2 always resizes).
    `native_model`: an hfport.models.Model (anything whose ``forward`` returns the same dict).
    `hf_model`: a transformers model in eval mode, run with ``output_hidden_states=True`` under
    ``torch.no_grad``; use eager attention for a float32 comparison at 1e-5. `rtol`: relative L2
    tolerance (default by the native dtype); `atol`: an optional bound on the largest absolute
    error.

    Rows: the hidden states, then what both sides return of last_hidden_state (a base model),
    pooler_output (BERT's and ViT's pooler, DINOv2's first token) and logits (a model with a head:
    vocabulary logits, or a classifier's scores).

    A speech model (SPEECH_FAMILIES: Whisper) takes log-mel features [batch,
    num_mel_bins, frames] as `inputs` and `decoder_input_ids` [batch, seq]: the encoder's rows,
    the decoder's, encoder_last_hidden_state and logits.

    CLAP (AUDIO_TEXT_FAMILIES) takes token ids as `inputs` (with attention_mask) and
    `input_features` [batch, channels, time, num_mel_bins] with `is_longer` (fusion): the audio
    tower's rows (audio.embeddings, audio.stages.i.blocks.j for every Swin block, audio.stages.i
    after its merge, last_hidden_state, pooler_output), the text tower's (text.embeddings,
    text.layers.i, pooler_output), then audio_embeds, text_embeds, logits_per_audio and
    logits_per_text, as ClapModel's forward computes them.
    """
    if getattr(native_model, "family", "") in AUDIO_TEXT_FAMILIES:
        return _compare_audio_text(native_model, hf_model, inputs, attention_mask,
                                   input_features, is_longer, rtol, atol, title)
    if getattr(native_model, "family", "") in SPEECH_FAMILIES:
        return _compare_speech(native_model, hf_model, inputs, decoder_input_ids, rtol, atol,
                               title)
    native, reference, keep = _run_both(native_model, hf_model, inputs, attention_mask,
                                        interpolate_pos_encoding)

    native_hidden = [from_dlpack(h) for h in native.get("hidden_states", [])]
    main = native.get("logits", native.get("last_hidden_state"))
    dtype = from_dlpack(main).dtype if main is not None else native_hidden[-1].dtype
    if rtol is None:
        rtol = DEFAULT_RTOL.get(dtype, DEFAULT_RTOL[torch.float32])

    family = getattr(native_model, "family", "")
    is_decoder = family not in ENCODER_FAMILIES | VISION_FAMILIES | AUDIO_ENCODER_FAMILIES
    reference_hidden = list(reference.hidden_states or ())
    count = max(len(native_hidden), len(reference_hidden))
    rows = []
    for i, name in enumerate(_hidden_state_names(family, count, is_decoder)):
        a = native_hidden[i] if i < len(native_hidden) else None
        b = reference_hidden[i] if i < len(reference_hidden) else None
        rows.append(_row(name, a, b, keep, rtol, atol))
    # The native side always returns last_hidden_state (a head's input); a task class returns
    # only its hidden_states tuple, whose last entry the rows above already compare.
    if getattr(reference, "last_hidden_state", None) is not None:
        rows.append(_row("last_hidden_state", _torch(native.get("last_hidden_state")),
                         reference.last_hidden_state, keep, rtol, atol))
    for name, reference_name, row_keep in (("pooler_output", "pooler_output", None),
                                           ("logits", "logits", keep)):
        a = _torch(native.get(name))
        b = getattr(reference, reference_name, None)
        if a is not None or b is not None:
            rows.append(_row(name, a, b, row_keep, rtol, atol))
    return ParityReport(rows, rtol, atol, str(dtype).removeprefix("torch."), title)


def _compare_audio_text(native_model: Any, hf_model: Any, inputs: Any, attention_mask: Any,
                        input_features: Any, is_longer: Any, rtol: float | None,
                        atol: float | None, title: str) -> ParityReport:
    if input_features is None:
        raise ValueError("a clap comparison needs input_features (and is_longer with fusion)")
    ids = torch.as_tensor(inputs).to(torch.int64).contiguous()
    features = torch.as_tensor(input_features).to(torch.float32).contiguous()
    mask = None if attention_mask is None else torch.as_tensor(attention_mask).to(torch.int64)
    longer = None if is_longer is None else torch.as_tensor(is_longer)
    if rtol is None:
        rtol = DEFAULT_RTOL[torch.float32]
    native = native_model._native._clap_forward(ids, mask, features, longer, True)
    # The Swin blocks' outputs, which transformers' hidden_states leave out, from hooks.
    blocks: dict[str, torch.Tensor] = {}
    handles = []
    for i, stage in enumerate(hf_model.audio_model.audio_encoder.layers):
        for j, block in enumerate(stage.blocks):
            def keep_block(_m: Any, _a: Any, output: Any, name: str = f"{i}.{j}") -> None:
                blocks[name] = output[0]
            handles.append(block.register_forward_hook(keep_block))
    try:
        with torch.no_grad():
            reference = hf_model(input_ids=ids, attention_mask=mask, input_features=features,
                                 is_longer=longer, output_hidden_states=True)
    finally:
        for handle in handles:
            handle.remove()
    audio, text = native["audio_model_output"], native["text_model_output"]
    ref_audio, ref_text = reference.audio_model_output, reference.text_model_output
    rows = [_row("audio.embeddings", _torch(audio["hidden_states"][0]),
                 ref_audio.hidden_states[0], None, rtol, atol)]
    native_blocks = iter(audio["block_states"])
    for i, stage in enumerate(hf_model.audio_model.audio_encoder.layers):
        for j in range(len(stage.blocks)):
            rows.append(_row(f"audio.stages.{i}.blocks.{j}", _torch(next(native_blocks, None)),
                             blocks.get(f"{i}.{j}"), None, rtol, atol))
        rows.append(_row(f"audio.stages.{i}", _torch(audio["hidden_states"][i + 1]),
                         ref_audio.hidden_states[i + 1], None, rtol, atol))
    for name in ("last_hidden_state", "pooler_output"):
        rows.append(_row(f"audio.{name}", _torch(audio[name]), getattr(ref_audio, name), None,
                         rtol, atol))
    keep = None if mask is None else mask.bool()
    text_names = _stack_names("text", len(text["hidden_states"]))
    text_names[-1] = text_names[-1].removesuffix(" + norm")  # post-norm blocks: no final norm
    for k, name in enumerate(text_names):
        rows.append(_row(name, _torch(text["hidden_states"][k]), ref_text.hidden_states[k], keep,
                         rtol, atol))
    rows.append(_row("text.pooler_output", _torch(text["pooler_output"]),
                     ref_text.pooler_output, None, rtol, atol))
    for name in ("audio_embeds", "text_embeds", "logits_per_audio", "logits_per_text"):
        rows.append(_row(name, _torch(native[name]), getattr(reference, name), None, rtol, atol))
    return ParityReport(rows, rtol, atol, "float32", title)


def _clap_inputs(config: dict[str, Any], batch: int, seq: int,
                 seed: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor | None]:
    """Random CLAP inputs: token ids (the first token 0, <s>) with the last row's final third
    padded, features ~ N(0, 1) [batch, channels, spec_size * freq_ratio, num_mel_bins] (4 channels
    with fusion) and is_longer alternating True, False, ... with fusion."""
    text, audio = config["text_config"], config["audio_config"]
    pad = int(text.get("pad_token_id", 1))
    ids = random_input_ids(int(text["vocab_size"]), batch, seq, seed)
    ids[ids == pad] = (pad + 1) % int(text["vocab_size"])
    ids[:, 0] = 0
    mask = torch.ones(batch, seq, dtype=torch.int64)
    if batch > 1 and seq > 2:
        cut = seq - max(1, seq // 3)
        ids[-1, cut:] = pad
        mask[-1, cut:] = 0
    mels = int(audio["num_mel_bins"])
    spec = int(audio["spec_size"])
    fusion = bool(audio.get("enable_fusion", False))
    generator = torch.Generator().manual_seed(seed + 1)
    features = torch.randn((batch, 4 if fusion else 1, spec * (spec // mels), mels),
                           generator=generator)
    longer = torch.tensor([[b % 2 == 0] for b in range(batch)]) if fusion else None
    return ids, mask, features, longer


def _check_checkpoint_folder(path: str | os.PathLike[str]) -> None:
    """ArgumentError in one line unless `path` is a folder with a config.json: the reference is
    built by transformers from that folder alone."""
    folder = Path(path)
    if not folder.is_dir():
        what = "a file" if folder.is_file() else "not found"
        raise ArgumentError(f"parity needs a checkpoint folder (config.json + weights), and "
                            f"{os.fspath(path)} is {what}")
    if not (folder / "config.json").is_file():
        raise ArgumentError(f"parity needs the checkpoint's config.json, and {os.fspath(path)} "
                            "has none (transformers builds the reference from it)")


def _check_reference_library(family: str) -> None:
    """ArgumentError in one line for a family whose reference transformers cannot build."""
    library = REFERENCE_LIBRARIES.get(family)
    if library is None:
        return
    if family == "timm_vit":
        import importlib.util

        state = ("is not installed" if importlib.util.find_spec("timm") is None
                 else "is installed, but hfport parity does not drive it")
        why = f"its reference is {library}, which {state}"
    else:
        why = f"its reference is {library}, which hfport does not run"
    raise ArgumentError(f"parity has no reference for a {family} checkpoint: {why}; the native "
                        "model runs (hfport.models.from_pretrained), and "
                        "hfport.parity.compare(model, reference, pixel_values) compares it with a "
                        "reference you build")


def reference_model(path: str | os.PathLike[str], family: str = "", *,
                    base_only: bool = False) -> torch.nn.Module:
    """transformers' model for the checkpoint folder `path`, float32, eager attention, eval mode:
    the class config.json's `architectures` names (BertForMaskedLM, LlamaModel, ...), else
    AutoModel for encoder families and AutoModelForCausalLM for the rest; with base_only the base
    model (AutoModel) whatever the checkpoint's head."""
    import transformers

    _check_checkpoint_folder(path)
    config = json.loads((Path(path) / "config.json").read_text(encoding="utf-8"))
    architectures = config.get("architectures") or []
    auto = getattr(transformers, architectures[0], None) if architectures else None
    if base_only:
        auto = transformers.AutoModel
    if auto is None:
        auto = (transformers.AutoModel
                if family in ENCODER_FAMILIES | VISION_FAMILIES | AUDIO_ENCODER_FAMILIES
                else transformers.AutoModelForCausalLM)
    # The folder is all there is: the hub is never asked (a wrong path would otherwise be retried
    # there with back-off), and transformers' loading bar stays out of hfport's output.
    bars = transformers.utils.logging.is_progress_bar_enabled()
    transformers.utils.logging.disable_progress_bar()
    try:
        # (model, loading info) with output_loading_info, whatever from_pretrained's annotation.
        loaded: Any = auto.from_pretrained(os.fspath(path), dtype=torch.float32,
                                           attn_implementation="eager", output_loading_info=True,
                                           local_files_only=True)
        model, info = loaded
    finally:
        if bars:
            transformers.utils.logging.enable_progress_bar()
    # A base encoder read from a task checkpoint saved without its pooler (BertLMHeadModel,
    # RobertaForCausalLM) gets a freshly initialised one: no part of the checkpoint, so the
    # reference drops it rather than have its noise compared.
    missing = info["missing_keys"]
    if missing and all(".pooler." in f".{key}" for key in missing) and \
            getattr(model, "pooler", None) is not None:
        model.pooler = None
    return cast(torch.nn.Module, model.eval())


def random_input_ids(vocab_size: int, batch: int, seq: int, seed: int) -> torch.Tensor:
    """Token ids drawn uniformly from the vocabulary by a generator seeded with `seed`."""
    generator = torch.Generator().manual_seed(seed)
    return torch.randint(0, vocab_size, (batch, seq), generator=generator)


def random_pixel_values(shape: tuple[int, ...], seed: int) -> torch.Tensor:
    """Pixel values ~ N(0, 1) (what an image processor's normalisation leaves, roughly), float32,
    of `shape` ([batch, channels, H, W], or [batch, frames, channels, H, W] for a video), from a
    generator seeded with `seed`."""
    generator = torch.Generator().manual_seed(seed)
    return torch.randn(shape, generator=generator)


def compare_checkpoint(path: str | os.PathLike[str], *, batch: int = 2, seq: int = 16, seed: int = 0,
                       rtol: float | None = None, atol: float | None = None,
                       spec: Any = None, family: str | None = None, strict: bool = True,
                       dtype: Any = "float32", device: str = "cpu",
                       heads: str = "auto",
                       image_size: int | tuple[int, int] | None = None) -> ParityReport:
    """Load the checkpoint folder `path` natively and with transformers, and compare them on
    random inputs (what `hfport parity PATH` prints): token ids [batch, seq], or for a vision
    family pixel values [batch, num_channels, H, W] of config.json's image_size (VideoMAE:
    [batch, num_frames, num_channels, H, W]; seq unused). `image_size` (an int or (H, W); ViT and
    DINOv2): another image size, the positions resized as transformers' interpolate_pos_encoding
    does. spec, family, strict, dtype, device and heads
    are hfport.models.from_pretrained's; the reference is the transformers class config.json
    names, in float32. A family whose reference is no transformers class (REFERENCE_LIBRARIES:
    timm_vit, videomae_opengvlab) raises ArgumentError naming the library it would need; compare
    takes a reference built by hand for those."""
    from hfport.models import from_pretrained

    _check_checkpoint_folder(path)
    for name, value in (("batch", batch), ("seq", seq)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ArgumentError(f"compare_checkpoint: {name} must be an integer >= 1, got {value!r}")
    if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed < 2**63:
        raise ArgumentError(f"compare_checkpoint: seed must be an integer in [0, 2**63), got {seed!r}")
    if image_size is not None:
        sizes = (image_size,) if isinstance(image_size, int) else tuple(image_size)
        if len(sizes) not in (1, 2) or any(isinstance(v, bool) or not isinstance(v, int) or v < 1
                                           for v in sizes):
            raise ArgumentError("compare_checkpoint: image_size must be an integer >= 1 or a pair "
                                f"(height, width) of them, got {image_size!r}")
    model = from_pretrained(path, spec=spec, family=family, strict=strict, dtype=dtype,
                            device=device, heads=heads)
    _check_reference_library(model.family)
    reference = reference_model(path, model.family, base_only=heads == "none")
    if model.family in AUDIO_TEXT_FAMILIES:
        if image_size is not None:
            raise ArgumentError(f"compare_checkpoint: image_size is for the vision families; "
                                f"{model.family} takes input_ids and input_features")
        ids, mask, features, longer = _clap_inputs(model.config, batch, seq, seed)
        title = (f"{model.family}, batch {batch}, seq {seq}, {features.shape[2]} frames"
                 f"{' (fusion)' if longer is not None else ''}, seed {seed}")
        report = compare(model, reference, ids, mask, rtol=rtol, atol=atol, title=title,
                         input_features=features, is_longer=longer)
        extractor = _checkpoint_extractor(path, "ClapFeatureExtractor")
        if extractor is None:
            from transformers import ClapFeatureExtractor

            extractor = ClapFeatureExtractor(
                feature_size=int(model.config["audio_config"]["num_mel_bins"]))
        report.rows.extend(clap_mel_rows(extractor, seed=seed))
        return report
    if model.family in SPEECH_FAMILIES:
        if image_size is not None:
            raise ArgumentError(f"compare_checkpoint: image_size is for the vision families; "
                                f"{model.family} takes input_features")
        return _compare_speech_checkpoint(path, model, reference, batch, seq, seed, rtol, atol)
    if model.main_input_name == "input_features":
        if image_size is not None:
            raise ArgumentError("compare_checkpoint: image_size is for the vision families; "
                                f"{model.family} takes input features")
        width = int(model.config["feature_projection_input_dim"])
        generator = torch.Generator().manual_seed(seed)
        features = torch.randn((batch, seq, width), generator=generator)
        title = f"{model.family}, batch {batch}, {seq} frames, seed {seed}"
        report = compare(model, reference, features, rtol=rtol, atol=atol, title=title)
        report.rows.extend(fbank_rows(
            _checkpoint_extractor(path, "SeamlessM4TFeatureExtractor"), seed=seed))
        return report
    if not _takes_pixels(model):
        if image_size is not None:
            raise ArgumentError(f"compare_checkpoint: image_size is for the vision families; "
                                f"{model.family} takes token ids")
        ids = random_input_ids(int(model.config["vocab_size"]), batch, seq, seed)
        title = f"{model.family}, batch {batch}, seq {seq}, seed {seed}"
        return compare(model, reference, ids, rtol=rtol, atol=atol, title=title)
    native_size = int(model.config["image_size"])
    if image_size is None:
        height = width = native_size
    elif isinstance(image_size, int):
        height = width = image_size
    else:
        height, width = (int(v) for v in image_size)
    resized = (height, width) != (native_size, native_size)
    channels = int(model.config["num_channels"])
    if model.family in VIDEO_FAMILIES:
        frames = int(model.config["num_frames"])
        pixels = random_pixel_values((batch, frames, channels, height, width), seed)
        title = f"{model.family}, batch {batch}, {frames} frames of {height}x{width}, seed {seed}"
    else:
        pixels = random_pixel_values((batch, channels, height, width), seed)
        title = (f"{model.family}, batch {batch}, pixels {height}x{width}"
                 f"{' (positions resized)' if resized else ''}, seed {seed}")
    return compare(model, reference, pixels, rtol=rtol, atol=atol, title=title,
                   interpolate_pos_encoding=resized)


def _checkpoint_extractor(path: str | os.PathLike[str], name: str) -> Any:
    """The checkpoint's own feature extractor (transformers' class `name`) when the folder has a
    preprocessor_config.json, else None: the front-end rows then use the class's defaults."""
    import transformers

    if not (Path(path) / "preprocessor_config.json").is_file():
        return None
    return getattr(transformers, name).from_pretrained(os.fspath(path))


def _compare_speech_checkpoint(path: str | os.PathLike[str], model: Any, reference: torch.nn.Module,
                               batch: int, seq: int, seed: int, rtol: float | None,
                               atol: float | None) -> ParityReport:
    """Whisper: random features N(0, 1) [batch, num_mel_bins, 2 * max_source_positions] and
    decoder ids (decoder_start_token_id, then random tokens), then the front-end rows with the
    checkpoint's preprocessor_config.json when it has one."""
    from transformers import WhisperFeatureExtractor

    config = model.config
    frames = 2 * int(config["max_source_positions"])
    mels = int(config["num_mel_bins"])
    features = random_pixel_values((batch, mels, frames), seed)
    ids = random_input_ids(int(config["vocab_size"]), batch, max(seq, 1), seed)
    start = config.get("decoder_start_token_id")
    if isinstance(start, int):
        ids[:, 0] = start
    title = f"{model.family}, batch {batch}, {frames} frames, {ids.shape[1]} tokens, seed {seed}"
    report = compare(model, reference, features, decoder_input_ids=ids, rtol=rtol, atol=atol,
                     title=title)
    if (Path(path) / "preprocessor_config.json").is_file():
        extractor = WhisperFeatureExtractor.from_pretrained(os.fspath(path))
    else:
        extractor = WhisperFeatureExtractor(feature_size=mels)
    report.rows.extend(front_end_rows(extractor=extractor, seed=seed))
    return report
