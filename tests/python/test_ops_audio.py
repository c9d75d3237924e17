"""hfport.ops.log_mel_spectrogram against transformers' WhisperFeatureExtractor and a float64
numpy reference written here from the formula (np.fft.rfft, transformers' own filter bank), and
hfport.ops.mel_filter_bank against transformers.audio_utils.mel_filter_bank.

Audio is a seeded sum of tones plus noise; lengths shorter than the 30 s window, exactly it, and
longer (truncated); a batch of utterances of different lengths (zero padded on the right, which
the feature extractor's own zero padding makes equivalent); 80 and 128 mel bins; numpy and torch
inputs, F64 and strided audio; and the errors a caller meets, each with its message.
"""

from __future__ import annotations

import hfport
import numpy as np
import pytest
import torch
from hfport.errors import ArgumentError, SamplingRateError
from transformers import WhisperFeatureExtractor
from transformers.audio_utils import mel_filter_bank

RATE = 16000
TOLERANCE = 1e-5


def tones(seconds: float, seed: int) -> np.ndarray:
    """A seeded sum of three tones plus noise, float32."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * RATE)) / RATE
    freqs = rng.uniform(100, 4000, size=3)
    x = sum(0.3 * np.sin(2 * np.pi * f * t + rng.uniform(0, 6)) for f in freqs)
    return (x + 0.02 * rng.standard_normal(t.size)).astype(np.float32)


def rel_l2(actual: np.ndarray, expected: np.ndarray) -> float:
    a, b = np.asarray(actual, np.float64), np.asarray(expected, np.float64)
    return float(np.linalg.norm(a - b) / np.linalg.norm(b))


def native(audio, **kwargs) -> np.ndarray:
    return torch.from_dlpack(hfport.ops.log_mel_spectrogram(audio, sampling_rate=RATE,
                                                            **kwargs)).numpy()


def reference_f64(audio: np.ndarray, n_samples: int, mels: int = 80, n_fft: int = 400,
                  hop: int = 160) -> np.ndarray:
    """The formula in float64: pad/truncate, reflect, periodic Hann, rfft, power, Slaney filters,
    log10 clamp, per-row dynamic range, (x + 4) / 4; the last frame dropped."""
    rows = np.atleast_2d(audio).astype(np.float64)
    filters = mel_filter_bank(n_fft // 2 + 1, mels, 0.0, 8000.0, RATE, norm="slaney",
                              mel_scale="slaney")
    window = np.hanning(n_fft + 1)[:-1]
    out = []
    for row in rows:
        x = np.zeros(n_samples)
        x[:min(n_samples, row.size)] = row[:n_samples]
        x = np.pad(x, n_fft // 2, mode="reflect")
        frames = 1 + (x.size - n_fft) // hop
        stack = np.stack([x[t * hop:t * hop + n_fft] * window for t in range(frames)])
        power = np.abs(np.fft.rfft(stack, axis=1)) ** 2
        log = np.log10(np.maximum(filters.T @ power.T, 1e-10))[:, :-1]
        out.append((np.maximum(log, log.max() - 8.0) + 4.0) / 4.0)
    return np.stack(out)


@pytest.fixture(scope="module")
def extractor() -> WhisperFeatureExtractor:
    return WhisperFeatureExtractor()


@pytest.mark.parametrize("seconds", [0.37, 12.4, 30.0, 33.1])
def test_one_utterance_matches_the_feature_extractor(extractor, seconds: float) -> None:
    audio = tones(seconds, seed=int(seconds * 10))
    expected = extractor(audio, sampling_rate=RATE, return_tensors="np").input_features
    got = native(audio)
    assert got.shape == expected.shape == (1, 80, 3000)
    assert rel_l2(got, expected) < TOLERANCE


def test_a_batch_of_different_lengths_matches_the_feature_extractor(extractor) -> None:
    utterances = [tones(s, seed=i) for i, s in enumerate((4.2, 31.0, 0.9))]
    expected = extractor(utterances, sampling_rate=RATE, return_tensors="np").input_features
    longest = max(u.size for u in utterances)
    batch = np.zeros((len(utterances), longest), np.float32)
    for i, u in enumerate(utterances):
        batch[i, :u.size] = u
    got = native(torch.from_numpy(batch))
    assert got.shape == expected.shape == (3, 80, 3000)
    for i in range(3):  # each row its own dynamic range, as the feature extractor clamps
        assert rel_l2(got[i], expected[i]) < TOLERANCE, i


def test_the_numpy_path_of_the_feature_extractor_too(extractor) -> None:
    audio = tones(7.5, seed=3)
    padded = np.zeros(480000, np.float32)
    padded[:audio.size] = audio
    expected = extractor._np_extract_fbank_features(padded[None], "cpu")
    assert rel_l2(native(audio), expected) < TOLERANCE


def test_128_mel_bins_as_large_v3() -> None:
    extractor = WhisperFeatureExtractor(feature_size=128)
    audio = tones(5.0, seed=9)
    expected = extractor(audio, sampling_rate=RATE, return_tensors="np").input_features
    assert rel_l2(native(audio, feature_size=128), expected) < TOLERANCE


@pytest.mark.parametrize("samples", [3000, 16000, 21111])
def test_float64_reference_short_windows(samples: int) -> None:
    audio = np.stack([tones(samples / RATE, seed=s) for s in (1, 2)])
    got = native(audio, n_samples=16000)
    expected = reference_f64(audio, 16000)
    assert got.shape == expected.shape == (2, 80, 100)
    assert rel_l2(got, expected) < TOLERANCE
    # The op's own float64 reference (direct DFT) agrees with numpy's FFT.
    own = torch.from_dlpack(hfport._hfport.ops._log_mel_spectrogram_reference(
        audio, sampling_rate=RATE, feature_size=80, n_fft=400, hop_length=160,
        n_samples=16000)).numpy()
    assert rel_l2(own, expected) < 1e-10


def test_float64_and_strided_audio() -> None:
    audio = np.stack([tones(1.3, seed=5), tones(1.3, seed=6)])
    expected = reference_f64(audio.astype(np.float32), 16000)
    assert rel_l2(native(audio.astype(np.float64), n_samples=16000), expected) < TOLERANCE
    strided = torch.from_numpy(np.ascontiguousarray(audio.T)).t()  # [batch, samples], stride (1, 2)
    assert not strided.is_contiguous()
    assert rel_l2(native(strided, n_samples=16000), expected) < TOLERANCE
    one = native(torch.from_numpy(audio[0]), n_samples=16000)
    assert one.shape == (1, 80, 100)
    assert rel_l2(one, expected[:1]) < TOLERANCE


def test_mel_filter_bank_is_transformers_to_float64_rounding() -> None:
    # numpy's and glibc's exp/log may differ in the last bit: about 1 entry in 25000 by 2e-12.
    for bins, mels in ((201, 80), (201, 128), (257, 40)):
        got = torch.from_dlpack(hfport.ops.mel_filter_bank(bins, mels, 0.0, 8000.0, RATE)).numpy()
        expected = mel_filter_bank(bins, mels, 0.0, 8000.0, RATE, norm="slaney",
                                   mel_scale="slaney")
        assert got.dtype == np.float64
        np.testing.assert_allclose(got, expected, rtol=1e-11, atol=1e-16)


def test_a_wrong_sampling_rate_is_refused() -> None:
    audio = tones(1.0, seed=0)
    with pytest.raises(SamplingRateError, match=r"sampled at 44100 Hz but the front end expects "
                                                r"16000 Hz.*never resamples"):
        hfport.ops.log_mel_spectrogram(audio, sampling_rate=44100)
    assert issubclass(SamplingRateError, ArgumentError) and issubclass(SamplingRateError, ValueError)
    with pytest.raises(TypeError):
        hfport.ops.log_mel_spectrogram(audio)  # the rate is required: nothing is assumed


def test_bad_arguments_name_what_was_expected() -> None:
    with pytest.raises(ArgumentError, match=r"\[samples\] or \[batch, samples\].*\[2, 1, 100\]"):
        native(np.zeros((2, 1, 100), np.float32))
    with pytest.raises(ArgumentError, match=r"audio must be a float tensor.*I64"):
        native(np.zeros(1000, np.int64))
    with pytest.raises(ArgumentError, match=r"n_fft must be even.*401"):
        native(tones(1.0, seed=0), n_fft=401)
    with pytest.raises(ArgumentError, match=r"chunk_length must be >= 1.*0"):
        native(tones(1.0, seed=0), chunk_length=0)
    with pytest.raises(ArgumentError, match=r"no samples.*\[0\]"):
        native(np.zeros(0, np.float32))
