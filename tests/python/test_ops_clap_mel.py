"""hfport.ops.clap_log_mel against transformers' ClapFeatureExtractor (CLAP's front end) and its
own float64 reference.

Seeded synthetic waveforms at 48 kHz (tones plus noise, a chirp) of several lengths: shorter than
one hop, shorter than max_length, exactly it, longer by less than a hop, and longer (where
transformers draws at random: the draws are replayed here from the same numpy seed and handed to
the op), alone and as batches of mixed lengths; each padding mode, truncation fusion and
rand_trunc. The features must be within relative L2 1e-5 of the extractor's and is_longer equal.
Most cases use a 1 s max_length (the extractor's own `max_length` argument) to stay fast; one runs
the default 10 s. The op is checked against the float64 reference (direct DFT) with 1 and 3
threads and F32, F64, F16 and strided audio; the HTK and Slaney filter banks against
transformers'; every error path by its message.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hfport import _hfport, errors, ops

transformers = pytest.importorskip("transformers")
from transformers.audio_utils import mel_filter_bank

RATE = 48000
HOP = 480
SECOND = RATE  # max_length of most cases: 1 s, 101 frames
TOLERANCE = 1e-5


def waveform(samples: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    t = np.arange(samples) / RATE
    if seed % 2:
        tone = np.sin(2 * np.pi * (300 * t + 4000 * t * t))  # a chirp
    else:
        tone = sum(0.4 * np.sin(2 * np.pi * f * t + rng.uniform(0, 6))
                   for f in rng.uniform(80, 12000, size=3))
    return (0.5 * tone + 0.05 * rng.standard_normal(samples)).astype(np.float32)


def rel_l2(a: object, b: object) -> float:
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    return float(np.linalg.norm(a - b) / np.linalg.norm(b))


def padded(waves: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    audio = np.zeros((len(waves), max(w.size for w in waves)), np.float32)
    for i, w in enumerate(waves):
        audio[i, : w.size] = w
    return audio, np.array([w.size for w in waves])


def replay_draws(lengths: list[int], max_length: int, truncation: str, seed: int) -> dict:
    """The np.random draws ClapFeatureExtractor makes for these clips after np.random.seed(seed),
    in its order, as clap_log_mel's arguments."""
    np.random.seed(seed)
    chunk = np.zeros((len(lengths), 3), np.int64)
    crop = np.zeros(len(lengths), np.int64)
    longer = False
    frames = max_length // HOP + 1
    for b, n in enumerate(lengths):
        if n <= max_length:
            continue
        if truncation == "rand_trunc":
            crop[b] = np.random.randint(0, n - max_length + 1)
            longer = True
        elif n // HOP + 1 != frames:
            ranges = np.array_split(list(range(n // HOP + 1 - frames + 1)), 3)
            ranges = [r if len(r) else [0] for r in ranges]
            chunk[b] = [np.random.choice(r) for r in ranges]
            longer = True
    draws: dict = {"chunk_offsets": chunk} if truncation == "fusion" else {"crop_offsets": crop}
    if truncation == "fusion" and not longer:
        draws["longer_index"] = np.random.randint(0, len(lengths))
    return draws


def extractor_features(waves: list[np.ndarray], seed: int, **kwargs: object) -> tuple:
    np.random.seed(seed)
    out = transformers.ClapFeatureExtractor()(waves, sampling_rate=RATE, return_tensors="np",
                                             **kwargs)
    return out["input_features"], out["is_longer"]


def ours(audio: object, reference: bool = False, **kwargs: object) -> tuple[np.ndarray, np.ndarray]:
    op = _hfport.ops._clap_log_mel_reference if reference else ops.clap_log_mel
    features, is_longer = op(audio, sampling_rate=RATE, **kwargs)
    return torch.from_dlpack(features).numpy(), torch.from_dlpack(is_longer).numpy()


def check_against_extractor(lengths: list[int], truncation: str, padding: str,
                            max_length: int = SECOND, seed: int = 0) -> tuple[float, np.ndarray]:
    waves = [waveform(n, seed=seed + i) for i, n in enumerate(lengths)]
    want, want_longer = extractor_features(waves, seed, truncation=truncation, padding=padding,
                                           max_length=max_length)
    audio, n = padded(waves)
    draws = replay_draws(lengths, max_length, truncation, seed)
    got, longer = ours(audio, lengths=n, truncation=truncation, padding=padding,
                       max_length=max_length, **draws)
    channels = 4 if truncation == "fusion" else 1
    assert got.shape == want.shape == (len(lengths), channels, max_length // HOP + 1, 64)
    assert got.dtype == np.float32
    np.testing.assert_array_equal(longer, want_longer)
    error = rel_l2(got, want)
    assert error < TOLERANCE, error
    return error, longer


@pytest.mark.parametrize("truncation", ["fusion", "rand_trunc"])
@pytest.mark.parametrize("padding", ["repeatpad", "repeat", "pad"])
@pytest.mark.parametrize("lengths", [[300], [4321], [SECOND], [SECOND + 100],
                                     [300, SECOND, 17000, 9]],
                         ids=["shorter-than-a-hop", "short", "exactly-max-length",
                              "longer-by-less-than-a-hop", "mixed"])
def test_short_clips_match_the_feature_extractor(lengths: list[int], padding: str,
                                                 truncation: str) -> None:
    check_against_extractor(lengths, truncation, padding)


@pytest.mark.parametrize("truncation", ["fusion", "rand_trunc"])
def test_longer_clips_with_the_extractors_draws(truncation: str) -> None:
    """Clips longer than max_length, the random chunks or crops replayed from the same seed; in
    a batch with shorter clips, and a long clip with few possible chunk starts (empty thirds)."""
    for seed, lengths in enumerate([[3 * SECOND + 777, 2000, SECOND], [SECOND + 2 * HOP],
                                    [5 * SECOND, 7 * SECOND + 5]]):
        _, longer = check_against_extractor(lengths, truncation, "repeatpad", seed=seed)
        assert longer[0, 0]


def test_default_ten_seconds_and_a_fusion_batch_without_a_longer_clip() -> None:
    """The extractor's defaults (10 s at 48 kHz, 1001 frames); no clip is longer, so
    transformers marks a random one: longer_index replays it, and without it none is marked."""
    _, longer = check_against_extractor([300, 10 * SECOND, 123457], "fusion", "repeatpad",
                                        max_length=10 * SECOND, seed=5)
    assert longer.sum() == 1
    audio, n = padded([waveform(7000, seed=1)])
    _, longer = ours(audio, lengths=n)
    assert not longer.any()


def test_the_float64_reference_and_the_paths() -> None:
    """The op against its float64 reference (direct DFT, signals materialised), on 1 and 3
    threads; F64, F16 and strided audio give the features of their values widened exactly; a
    1-D clip is a batch of one."""
    waves = [waveform(n, seed=i) for i, n in enumerate([700, 5000, 9600, 15000])]
    audio, n = padded(waves)
    kwargs = dict(lengths=n, max_length=9600, chunk_offsets=np.array([[0] * 3] * 3 + [[0, 5, 10]]))
    reference, ref_longer = ours(audio, reference=True, **kwargs)
    assert reference.dtype == np.float64
    want, _ = extractor_features(waves, 0, max_length=9600)
    assert rel_l2(reference[:3], want[:3]) < 1e-6
    for threads in ("1", "3"):
        with pytest.MonkeyPatch.context() as patch:
            patch.setenv("HFPORT_NUM_THREADS", threads)
            got, longer = ours(audio, **kwargs)
        assert rel_l2(got, reference) < 1e-6
        np.testing.assert_array_equal(longer, ref_longer)
    wide = audio.astype(np.float64) + 1e-9  # values no float32 holds
    assert rel_l2(ours(wide, **kwargs)[0], ours(wide, reference=True, **kwargs)[0]) < 1e-6
    half = audio.astype(np.float16)
    assert rel_l2(ours(half, **kwargs)[0], ours(half.astype(np.float32), **kwargs)[0]) == 0
    strided = np.zeros((4, audio.shape[1] * 2), np.float32)
    strided[:, ::2] = audio
    assert rel_l2(ours(strided[:, ::2], **kwargs)[0], ours(audio, **kwargs)[0]) == 0
    one, _ = ours(waves[1], max_length=9600)
    assert rel_l2(one[0], ours(audio, **kwargs)[0][1]) == 0


@pytest.mark.parametrize(("norm", "scale"), [(None, "htk"), ("slaney", "slaney"),
                                             (None, "kaldi"), ("slaney", "htk")])
def test_filter_banks_match_transformers(norm: str | None, scale: str) -> None:
    want = mel_filter_bank(513, 64, 50.0, 14000.0, RATE, norm=norm, mel_scale=scale)
    got = torch.from_dlpack(ops.mel_filter_bank(513, 64, 50.0, 14000.0, RATE, norm=norm,
                                                mel_scale=scale)).numpy()
    np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-15)


def test_errors_name_the_problem() -> None:
    wave = waveform(3 * SECOND, seed=1)
    short = dict(max_length=SECOND)
    with pytest.raises(errors.SamplingRateError, match="sampled at 44100 Hz but the front end "
                       "expects 48000 Hz"):
        ops.clap_log_mel(wave, sampling_rate=44100)
    with pytest.raises(errors.ArgumentError, match=r"clip 0 has 144000 samples, longer than "
                       r"max_length 48000 samples \(1 s at 48000 Hz\); transformers fuses three "
                       r"chunks .* pass chunk_offsets \[batch, 3\]"):
        ops.clap_log_mel(wave, sampling_rate=RATE, **short)
    with pytest.raises(errors.ArgumentError, match=r"longer than max_length .*crops it at "
                       r"random \(np.random.randint\(0, 96001\)\): pass crop_offsets"):
        ops.clap_log_mel(wave, sampling_rate=RATE, truncation="rand_trunc", **short)
    with pytest.raises(errors.ArgumentError, match=r"chunk_offsets\[0, 2\] is 300, but clip 0 "
                       r"\(144000 samples\) has 301 frames, so a chunk of 101 frames starts at 0 "
                       r"to 200"):
        ops.clap_log_mel(wave, sampling_rate=RATE, chunk_offsets=np.array([[0, 1, 300]]), **short)
    with pytest.raises(errors.ArgumentError, match=r"crop_offsets\[0\] is 96001, .* a crop starts "
                       r"at 0 to 96000"):
        ops.clap_log_mel(wave, sampling_rate=RATE, truncation="rand_trunc",
                         crop_offsets=np.array([96001]), **short)
    with pytest.raises(errors.ArgumentError, match=r"chunk_offsets must be \[batch, 3\]"):
        ops.clap_log_mel(wave, sampling_rate=RATE, chunk_offsets=np.array([0, 1, 2]), **short)
    with pytest.raises(errors.ArgumentError, match="chunk_offsets are fusion's draws"):
        ops.clap_log_mel(wave, sampling_rate=RATE, truncation="rand_trunc",
                         chunk_offsets=np.zeros((1, 3), np.int64), **short)
    with pytest.raises(errors.ArgumentError, match="needs feature_size 64 .* got 32"):
        ops.clap_log_mel(wave, sampling_rate=RATE, feature_size=32,
                         chunk_offsets=np.zeros((1, 3), np.int64), **short)
    with pytest.raises(errors.ArgumentError, match="longer_index 1 marks a clip of a fusion batch "
                       "in which no clip is longer .* batch 1"):
        ops.clap_log_mel(wave[:4000], sampling_rate=RATE, longer_index=1, **short)
    with pytest.raises(errors.ArgumentError, match="truncation must be \"fusion\" or "
                       "\"rand_trunc\", got \"trunc\""):
        ops.clap_log_mel(wave, sampling_rate=RATE, truncation="trunc")
    with pytest.raises(errors.ArgumentError, match="padding must be \"repeatpad\", \"repeat\" or "
                       "\"pad\", got \"zeros\""):
        ops.clap_log_mel(wave, sampling_rate=RATE, padding="zeros")
    with pytest.raises(errors.ArgumentError, match="clip 1 has 0 samples of audio; it needs at "
                       "least 1 and at most the 800"):
        ops.clap_log_mel(np.zeros((2, 800), np.float32), sampling_rate=RATE,
                         lengths=np.array([800, 0]))
    with pytest.raises(errors.ArgumentError, match="max_length must exceed fft_window_size / 2 = "
                       "512"):
        ops.clap_log_mel(wave, sampling_rate=RATE, max_length=512)
    with pytest.raises(errors.ArgumentError, match="mel_scale must be \"htk\", \"kaldi\" or "
                       "\"slaney\", got \"mel\""):
        ops.mel_filter_bank(513, 64, 0.0, 8000.0, RATE, mel_scale="mel")
