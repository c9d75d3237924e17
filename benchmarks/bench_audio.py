"""Audio benchmark (CPU, float32): the audio front ends and the encoder forwards of Whisper,
Wav2Vec2-BERT and CLAP, hfport against transformers in the same run (issues 17, 18).

- Log-mel of 30 s of 16 kHz audio, batch 8 (80 mel bins, 3000 frames a row):
  hfport.ops.log_mel_spectrogram against WhisperFeatureExtractor's numpy path
  (`_np_extract_fbank_features`, numpy's rfft frame by frame) and against its torch path
  (`_torch_extract_fbank_features`: torch.stft, no torchaudio), on the same padded batch.
- Whisper-tiny-shaped forward: d_model 384, 4 + 4 layers, 6 heads, FFN 1536, 80 mel bins, 3000
  frames (1500 encoder positions), batch 1, one decoder token: almost all of it is the encoder.
  transformers' WhisperForConditionalGeneration with eager attention under torch.no_grad().
- CLAP audio tower (HTSAT-tiny: patch 4, 96 channels, depths 2-2-6-2, heads 4-8-16-32, window 8,
  spec_size 256, 64 mel bins, fusion off), random weights, batch 2 of 1024 frames:
  hfport's get_audio_features against ClapModel.get_audio_features (the text tower is not run).
- Wav2Vec2-BERT's filter banks, 10 s of 16 kHz audio, batch 8: hfport.ops.fbank against
  SeamlessM4TFeatureExtractor's whole call (its front end is numpy only).
- Wav2Vec2-BERT-shaped encoder forward: facebook/w2v-bert-2.0's shapes (hidden 1024, 16 heads,
  FFN 4096, relative_key positions 64 left / 8 right, depthwise kernel 31, 160 input features)
  with 8 conformer layers instead of 24, random weights, on the features of 10 s of audio (500
  stacked frames), batch 1; transformers' Wav2Vec2BertModel with eager attention.
- CLAP's front end, 10 s of 48 kHz audio, batch 8 (64 mel bins, 1001 frames, fusion: 4
  channels): hfport.ops.clap_log_mel against ClapFeatureExtractor's whole call.

Each row checks that the two outputs agree before timing (features rel. L2 < 1e-5, model outputs
< 1e-4), then times blocks of calls (hfport's, then the reference's) after a warm-up, the same
thread count on both sides, median of the repeats.

    python benchmarks/bench_audio.py                          # print the table
    python benchmarks/bench_audio.py --write docs/benchmarks.md
    python benchmarks/bench_audio.py --small                  # short shapes, seconds (tests)
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

import hfport
import numpy as np
import torch
import transformers
from bench_kernels import attention_levels, median_pair  # shared with the kernel table
from bench_loader import machine_line, main_with_workdir

transformers.utils.logging.disable_progress_bar()
transformers.utils.logging.set_verbosity_error()

WHISPER_TINY = dict(d_model=384, encoder_layers=4, decoder_layers=4, encoder_attention_heads=6,
                    decoder_attention_heads=6, encoder_ffn_dim=1536, decoder_ffn_dim=1536,
                    num_mel_bins=80, max_source_positions=1500, max_target_positions=448,
                    vocab_size=51865)
# facebook/w2v-bert-2.0's encoder shapes, 8 of its 24 conformer layers.
W2V_BERT = dict(hidden_size=1024, num_hidden_layers=8, num_attention_heads=16,
                intermediate_size=4096, feature_projection_input_dim=160,
                position_embeddings_type="relative_key", left_max_position_embeddings=64,
                right_max_position_embeddings=8, conv_depthwise_kernel_size=31,
                output_hidden_size=1024)
SMALL_W2V_BERT = dict(hidden_size=64, num_hidden_layers=2, num_attention_heads=4,
                      intermediate_size=128, feature_projection_input_dim=160,
                      position_embeddings_type="relative_key", left_max_position_embeddings=16,
                      right_max_position_embeddings=4, conv_depthwise_kernel_size=31,
                      output_hidden_size=64)
SMALL_WHISPER = dict(d_model=64, encoder_layers=2, decoder_layers=2, encoder_attention_heads=4,
                     decoder_attention_heads=4, encoder_ffn_dim=128, decoder_ffn_dim=128,
                     num_mel_bins=80, max_source_positions=1500, max_target_positions=64,
                     vocab_size=1000, pad_token_id=999, bos_token_id=998, eos_token_id=997,
                     decoder_start_token_id=996)


def milliseconds(seconds: float) -> str:
    return f"{seconds * 1e3:.0f}" if seconds >= 0.1 else f"{seconds * 1e3:.2f}"


def rel_l2(a: Any, b: Any) -> float:
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    return float(np.linalg.norm(a - b) / np.linalg.norm(b))


def row(label: str, ours: Any, theirs: Any, error: float, bound: float, target: float,
        repeats: int) -> str:
    if not error < bound:
        raise AssertionError(f"{label}: hfport and the reference differ (rel. L2 {error:.2e})")
    t_ours, t_theirs = median_pair(ours, theirs, repeats, rounds=1)
    ratio = t_theirs / t_ours
    met = "yes" if ratio >= target else "**no**"
    return (f"| {label} | {milliseconds(t_ours)} | {milliseconds(t_theirs)} | {ratio:.2f}x | "
            f">= {target:g}x | {met} | {error:.1e} |")


def synthetic_clips(batch: int, seconds: float, rate: int) -> np.ndarray:
    """Float32 [batch, samples]: a different tone per clip plus seeded noise."""
    generator = torch.Generator().manual_seed(0)
    t = torch.arange(int(seconds * rate), dtype=torch.float64) / rate
    return torch.stack([0.3 * torch.sin(2 * torch.pi * (200 + 300 * b) * t) +
                        0.02 * torch.randn(t.numel(), generator=generator, dtype=torch.float64)
                        for b in range(batch)]).to(torch.float32).numpy()


def front_end_rows(batch: int, seconds: float, repeats: int) -> list[str]:
    extractor = transformers.WhisperFeatureExtractor()
    audio = synthetic_clips(batch, seconds, 16000)
    padded = np.zeros((batch, extractor.n_samples), np.float32)
    padded[:, :min(audio.shape[1], extractor.n_samples)] = audio[:, :extractor.n_samples]

    def ours() -> Any:
        return hfport.ops.log_mel_spectrogram(audio, sampling_rate=16000)

    def numpy_path() -> Any:
        return extractor._np_extract_fbank_features(padded, "cpu")

    def torch_path() -> Any:
        return extractor._torch_extract_fbank_features(padded, "cpu")

    got = torch.from_dlpack(ours()).numpy()
    shape = f"{seconds:g} s at 16 kHz, batch {batch}"
    return [
        row(f"log-mel {shape} vs WhisperFeatureExtractor (numpy)", ours, numpy_path,
            rel_l2(got, numpy_path()), 1e-5, 5.0, repeats),
        row(f"log-mel {shape} vs torch.stft (the extractor's torch path)", ours, torch_path,
            rel_l2(got, torch_path()), 1e-5, 1.0, repeats),
    ]


def saved_pair(workdir: Path, name: str, model_class: Any, config: Any) -> tuple[Any, Any]:
    """transformers' model (eager attention, seed 0 weights) and hfport's, loaded from the folder
    the first was saved to."""
    config._attn_implementation = "eager"
    torch.manual_seed(0)
    reference = model_class(config).eval()
    reference.save_pretrained(workdir / name)
    return reference, hfport.models.from_pretrained(workdir / name)


def model_row(workdir: Path, small: bool, repeats: int) -> str:
    config = transformers.WhisperConfig(**(SMALL_WHISPER if small else WHISPER_TINY))
    reference, native = saved_pair(workdir, "whisper", transformers.WhisperForConditionalGeneration,
                                   config)
    features = torch.randn(1, 80, 3000, generator=torch.Generator().manual_seed(1))
    ids = torch.tensor([[config.decoder_start_token_id]])

    def ours() -> Any:
        return native.forward(input_features=features, decoder_input_ids=ids)["logits"]

    @torch.no_grad()
    def theirs() -> torch.Tensor:
        return reference(input_features=features, decoder_input_ids=ids).logits

    error = rel_l2(torch.from_dlpack(ours()).numpy(), theirs().numpy())
    name = "Whisper-tiny-shaped" if not small else "Whisper-shaped (small)"
    label = (f"{name} forward, d_model {config.d_model}, {config.encoder_layers}+"
             f"{config.decoder_layers} layers, 3000 frames, batch 1, 1 decoder token")
    return row(label, ours, theirs, error, 1e-4, 1.2, repeats)


HTSAT_TINY = dict(spec_size=256, num_mel_bins=64, patch_size=4, patch_stride=4, window_size=8,
                  patch_embeds_hidden_size=96, depths=[2, 2, 6, 2],
                  num_attention_heads=[4, 8, 16, 32], hidden_size=768)
SMALL_HTSAT = dict(spec_size=64, num_mel_bins=16, patch_size=4, patch_stride=4, window_size=4,
                   patch_embeds_hidden_size=16, depths=[2, 2], num_attention_heads=[2, 4],
                   hidden_size=32)
CLAP_TEXT = dict(vocab_size=100, hidden_size=32, num_hidden_layers=1, num_attention_heads=2,
                 intermediate_size=48, max_position_embeddings=40)


def clap_row(workdir: Path, small: bool, repeats: int) -> str:
    audio = SMALL_HTSAT if small else HTSAT_TINY
    config = transformers.ClapConfig(text_config=CLAP_TEXT, audio_config=audio,
                                     projection_dim=32 if small else 512)
    torch.manual_seed(0)
    reference = transformers.ClapModel(config).eval()
    reference.save_pretrained(workdir / "clap")
    native = hfport.models.from_pretrained(workdir / "clap")
    frames = audio["spec_size"] * (audio["spec_size"] // audio["num_mel_bins"])
    features = torch.randn(2, 1, frames, audio["num_mel_bins"],
                           generator=torch.Generator().manual_seed(2))

    def ours() -> Any:
        return native.get_audio_features(features).pooler_output

    @torch.no_grad()
    def theirs() -> torch.Tensor:
        return reference.get_audio_features(input_features=features).pooler_output

    error = rel_l2(torch.from_dlpack(ours()).numpy(), theirs().numpy())
    name = "CLAP audio tower, HTSAT-tiny" if not small else "CLAP audio tower (small)"
    label = (f"{name}: spec {audio['spec_size']}, depths {'-'.join(map(str, audio['depths']))}, "
             f"window {audio['window_size']}, batch 2 of {frames} frames")
    return row(label, ours, theirs, error, 1e-4, 1.2, repeats)


def extractor_row(name: str, op: Any, extractor: Any, rate: int, batch: int, seconds: float,
                  repeats: int, **call: Any) -> str:
    """An hfport front-end op against a feature extractor's whole call, on the same clips."""
    clips = synthetic_clips(batch, seconds, rate)
    waves = list(clips)

    def ours() -> Any:
        return op(clips, sampling_rate=rate)

    def theirs() -> Any:
        return extractor(waves, sampling_rate=rate, return_tensors="np", **call)

    error = rel_l2(torch.from_dlpack(ours()[0]).numpy(), theirs()["input_features"])
    return row(f"{name} {seconds:g} s at {rate // 1000} kHz, batch {batch} vs "
               f"{type(extractor).__name__}", ours, theirs, error, 1e-5, 5.0, repeats)


def w2v_bert_row(workdir: Path, small: bool, repeats: int) -> str:
    config = transformers.Wav2Vec2BertConfig(**(SMALL_W2V_BERT if small else W2V_BERT))
    reference, native = saved_pair(workdir, "w2v-bert", transformers.Wav2Vec2BertModel, config)
    seconds = 3.0 if small else 10.0
    features, mask = hfport.ops.fbank(synthetic_clips(1, seconds, 16000), sampling_rate=16000)
    features = torch.from_dlpack(features)
    mask = torch.from_dlpack(mask)

    def ours() -> Any:
        return native(input_features=features, attention_mask=mask).last_hidden_state

    @torch.no_grad()
    def theirs() -> torch.Tensor:
        return reference(input_features=features, attention_mask=mask).last_hidden_state

    error = rel_l2(torch.from_dlpack(ours()).numpy(), theirs().numpy())
    name = "Wav2Vec2-BERT-shaped" if not small else "Wav2Vec2-BERT-shaped (small)"
    label = (f"{name} forward, hidden {config.hidden_size}, {config.num_hidden_layers} layers, "
             f"relative_key, {features.shape[1]} frames ({seconds:g} s), batch 1")
    return row(label, ours, theirs, error, 1e-4, 1.2, repeats)


def run(workdir: Path, small: bool, repeats: int) -> str:
    load_before = os.getloadavg()[0]
    rows = front_end_rows(2 if small else 8, 3.0 if small else 30.0, repeats)
    rows.append(model_row(workdir, small, repeats))
    batch, seconds = (2, 3.0) if small else (8, 10.0)
    rows.append(extractor_row("fbank", hfport.ops.fbank, transformers.SeamlessM4TFeatureExtractor(),
                              16000, batch, seconds, repeats, padding=True))
    rows.append(w2v_bert_row(workdir, small, repeats))
    rows.append(extractor_row("CLAP mel (fusion, 4 channels)", hfport.ops.clap_log_mel,
                              transformers.ClapFeatureExtractor(), 48000, batch, seconds, repeats))
    rows.append(clap_row(workdir, small, repeats))
    load_after = os.getloadavg()[0]
    cores = os.cpu_count() or 1
    loaded = (f"The machine was loaded while this ran (load {load_before:.1f} on {cores} cores: "
              f"other jobs shared them), so times are inflated and noisy; the ratios, both sides "
              f"measured alike in the same run, are what to read. "
              if max(load_before, load_after) > cores else "")
    lines = [
        "## Audio: front ends and encoders of Whisper, Wav2Vec2-BERT and CLAP (CPU, float32)",
        "",
        machine_line(),
        (f"ISA: {attention_levels()[0]} (the attention micro-kernels the forward rows run). The "
         f"front-end ops have no SIMD code of their own: their FFT is hfport's scalar mixed-radix one "
         f"(csrc/kernels/cpu/fft_complex.h), and OpenBLAS picks its kernels for this CPU at run "
         f"time."),
        (f"{loaded}Load average (1 min) before the run {load_before:.2f}, after it "
         f"{load_after:.2f}; the "
         f"run adds up to {os.cpu_count()} itself, anything more is other work sharing the cores "
         f"(this machine is shared: figures taken while other jobs ran are noisy, ratios less so "
         f"than times). Median of {repeats} back-to-back calls after a warm-up call, hfport's "
         f"block then the reference's; the same thread count on both sides. Command: "
         f"`python benchmarks/bench_audio.py{' --small' if small else ''}`."),
        "",
        ("| case | hfport (ms) | reference (ms) | ratio (>1: hfport faster) | target | met? | "
         "rel. L2 |"),
        "| --- | ---: | ---: | ---: | --- | --- | ---: |",
        *rows,
        "",
        ("References: `WhisperFeatureExtractor._np_extract_fbank_features` and "
         "`_torch_extract_fbank_features` on the batch already padded to 30 s (the padding "
         "itself not timed on their side; hfport pads inside the op); "
         "`WhisperForConditionalGeneration` with eager attention; `ClapModel.get_audio_features`. `SeamlessM4TFeatureExtractor` "
         "and `ClapFeatureExtractor` are timed whole (their numpy front ends, padding and "
         "stacking included: hfport's ops do the same work); the CLAP clips are at most 10 s, so "
         "no random draw changes the features. `Wav2Vec2BertModel` with eager attention, "
         "default initialisation (seed 0), on hfport's fbank features of a synthetic clip. "
         "Targets: issue 17's (5x the feature extractor, 1.2x the forward) and issue 18's (fbank "
         "5x, Wav2Vec2-BERT 1.2x, the CLAP audio tower 1.2x; CLAP's front end held to the front "
         "ends' 5x); the torch.stft "
         "row has none (1x shown)."),
    ]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    return main_with_workdir(argv, __doc__, "bench_audio", run, (2, 5))


if __name__ == "__main__":
    sys.exit(main())
