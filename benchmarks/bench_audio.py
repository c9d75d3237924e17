"""Audio benchmark (CPU, float32): Whisper's log-mel front end and a Whisper-tiny-shaped forward,
hfport against transformers in the same run (issue 17's figures).

- Log-mel of 30 s of 16 kHz audio, batch 8 (80 mel bins, 3000 frames a row):
  hfport.ops.log_mel_spectrogram against WhisperFeatureExtractor's numpy path
  (`_np_extract_fbank_features`, numpy's rfft frame by frame) and against its torch path
  (`_torch_extract_fbank_features`: torch.stft, no torchaudio), on the same padded batch.
- Whisper-tiny-shaped forward: d_model 384, 4 + 4 layers, 6 heads, FFN 1536, 80 mel bins, 3000
  frames (1500 encoder positions), batch 1, one decoder token: almost all of it is the encoder.
  transformers' WhisperForConditionalGeneration with eager attention under torch.no_grad().

Each row checks that the two outputs agree before timing (features rel. L2 < 1e-5, logits
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


def front_end_rows(batch: int, seconds: float, repeats: int) -> list[str]:
    extractor = transformers.WhisperFeatureExtractor()
    generator = torch.Generator().manual_seed(0)
    t = torch.arange(int(seconds * 16000), dtype=torch.float64) / 16000
    audio = torch.stack([0.3 * torch.sin(2 * torch.pi * (200 + 300 * b) * t) +
                         0.02 * torch.randn(t.numel(), generator=generator, dtype=torch.float64)
                         for b in range(batch)]).to(torch.float32)
    padded = np.zeros((batch, extractor.n_samples), np.float32)
    padded[:, :min(audio.shape[1], extractor.n_samples)] = audio[:, :extractor.n_samples].numpy()

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


def model_row(workdir: Path, small: bool, repeats: int) -> str:
    config = transformers.WhisperConfig(**(SMALL_WHISPER if small else WHISPER_TINY))
    config._attn_implementation = "eager"
    torch.manual_seed(0)
    reference = transformers.WhisperForConditionalGeneration(config).eval()
    reference.save_pretrained(workdir / "whisper")
    native = hfport.models.from_pretrained(workdir / "whisper")
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


def run(workdir: Path, small: bool, repeats: int) -> str:
    load_before = os.getloadavg()[0]
    rows = front_end_rows(2 if small else 8, 3.0 if small else 30.0, repeats)
    rows.append(model_row(workdir, small, repeats))
    load_after = os.getloadavg()[0]
    cores = os.cpu_count() or 1
    loaded = (f"The machine was loaded while this ran (load {load_before:.1f} on {cores} cores: "
              f"other jobs shared them), so times are inflated and noisy; the ratios, both sides "
              f"measured alike in the same run, are what to read. "
              if max(load_before, load_after) > cores else "")
    lines = [
        "## Audio: Whisper's front end and forward (CPU, float32)",
        "",
        machine_line(),
        (f"ISA: {attention_levels()[0]} (the attention micro-kernels the forward row runs). The "
         f"log-mel op has no SIMD code of its own: its FFT is hfport's scalar mixed-radix one "
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
         "`WhisperForConditionalGeneration` with eager attention. Targets: issue 17's (5x the "
         "feature extractor, 1.2x the forward); the torch.stft row has none (1x shown)."),
    ]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    return main_with_workdir(argv, __doc__, "bench_audio", run, (2, 5))


if __name__ == "__main__":
    sys.exit(main())
