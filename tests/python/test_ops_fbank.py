"""hfport.ops.fbank against transformers' SeamlessM4TFeatureExtractor (Wav2Vec2-BERT's front end).

Seeded synthetic waveforms (two tones plus noise, and a chirp) of several lengths, alone and as a
batch of different lengths: the features and the attention mask must equal the extractor's. The
per-bin normalisation divides by each bin's spread over the utterance, tiny for a steady tone, so
the op repeats numpy's float32 roundings (its pairwise sums) rather than approximate them: the
bound is 1e-6 relative L2, and on this machine the two agree to the last bit. The log-mel frames
before normalisation are checked against a float64 direct-DFT reference.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hfport import _hfport, errors, ops

transformers = pytest.importorskip("transformers")

RATE = 16000


def waveform(samples: int, seed: int, chirp: bool = False) -> np.ndarray:
    t = np.arange(samples) / RATE
    noise = np.random.default_rng(seed).standard_normal(samples)
    if chirp:
        tone = np.sin(2 * np.pi * (200 * t + 3000 * t * t))
    else:
        tone = 0.6 * np.sin(2 * np.pi * 440 * t) + 0.4 * np.sin(2 * np.pi * 1234 * t)
    return (0.5 * tone + 0.05 * noise).astype(np.float32)


def rel_l2(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.linalg.norm(a.astype(np.float64) - b) / np.linalg.norm(b.astype(np.float64)))


def extractor() -> object:
    return transformers.SeamlessM4TFeatureExtractor()


@pytest.mark.parametrize("lengths", [[560], [4321], [16000, 9000, 12345], [24000, 560]])
def test_batch_matches_the_feature_extractor(lengths: list[int]) -> None:
    waves = [waveform(n, seed=i, chirp=i % 2 == 1) for i, n in enumerate(lengths)]
    want = extractor()(waves, sampling_rate=RATE, return_tensors="np", padding=True)
    audio = np.zeros((len(waves), max(lengths)), np.float32)
    for i, w in enumerate(waves):
        audio[i, : len(w)] = w
    features, mask = ops.fbank(audio, sampling_rate=RATE, lengths=np.array(lengths))
    got = np.asarray(torch.from_dlpack(features))
    assert got.shape == want["input_features"].shape
    assert np.array_equal(np.asarray(torch.from_dlpack(mask)), want["attention_mask"])
    assert rel_l2(got, want["input_features"]) < 1e-6


def test_one_frame_has_no_spread_nan_as_in_the_extractor() -> None:
    """400 samples make one frame, whose variance with ddof 1 is 0 / 0: NaN in both."""
    wave = waveform(400, seed=7)
    want = extractor()(wave, sampling_rate=RATE, return_tensors="np")["input_features"]
    got = np.asarray(torch.from_dlpack(ops.fbank(wave, sampling_rate=RATE)[0]))
    assert got.shape == want.shape and np.isnan(want[0, 0, :80]).all()
    np.testing.assert_array_equal(np.isnan(got), np.isnan(want))


def test_one_dimensional_audio_and_no_normalisation() -> None:
    wave = waveform(7000, seed=5)
    frames = extractor()._extract_fbank_features(wave)
    got, mask = ops.fbank(wave, sampling_rate=RATE, normalize=False)
    got = np.asarray(torch.from_dlpack(got))[0].reshape(-1, 80)
    usable = got.shape[0]  # the extractor drops an odd last frame when it stacks pairs
    assert usable == frames.shape[0] // 2 * 2
    assert rel_l2(got, frames[:usable]) < 1e-6
    assert np.asarray(torch.from_dlpack(mask)).all()


def test_float64_reference_matches_the_extractors_frames() -> None:
    wave = waveform(5000, seed=6, chirp=True)
    reference = np.asarray(torch.from_dlpack(
        _hfport.ops._fbank_frames_reference(wave, sampling_rate=RATE)))
    assert rel_l2(reference, extractor()._extract_fbank_features(wave)) < 1e-6


def test_errors_name_the_problem() -> None:
    with pytest.raises(errors.SamplingRateError, match="sampled at 8000 Hz but the front end "
                       "expects 16000 Hz"):
        ops.fbank(waveform(4000, 1), sampling_rate=8000)
    with pytest.raises(errors.ArgumentError, match="row 0 has 399 samples of audio; it needs at "
                       "least 400"):
        ops.fbank(waveform(399, 1), sampling_rate=RATE)
    with pytest.raises(errors.ArgumentError, match=r"row 1 has 900 samples .* at most the 800"):
        ops.fbank(np.zeros((2, 800), np.float32), sampling_rate=RATE, lengths=np.array([800, 900]))
    with pytest.raises(errors.ArgumentError, match="stride >= 2"):
        ops.fbank(waveform(4000, 1), sampling_rate=RATE, stride=1)
