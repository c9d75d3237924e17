"""
fused kernels on hfport.Tensor or any DLPack producer
"""
from __future__ import annotations
import hfport._hfport
import hfport.typing
import typing
def _clap_log_mel_reference(audio: hfport.typing.SupportsDLPack, *, sampling_rate: typing.SupportsInt | typing.SupportsIndex, lengths: hfport.typing.SupportsDLPack | None = None, truncation: str = 'fusion', padding: str = 'repeatpad', chunk_offsets: hfport.typing.SupportsDLPack | None = None, crop_offsets: hfport.typing.SupportsDLPack | None = None, longer_index: typing.SupportsInt | typing.SupportsIndex | None = None, feature_size: typing.SupportsInt | typing.SupportsIndex = 64, fft_window_size: typing.SupportsInt | typing.SupportsIndex = 1024, hop_length: typing.SupportsInt | typing.SupportsIndex = 480, max_length_s: typing.SupportsInt | typing.SupportsIndex = 10, max_length: typing.SupportsInt | typing.SupportsIndex | None = None, frequency_min: typing.SupportsFloat | typing.SupportsIndex = 0.0, frequency_max: typing.SupportsFloat | typing.SupportsIndex = 14000.0, feature_sampling_rate: typing.SupportsInt | typing.SupportsIndex = 48000) -> tuple[hfport._hfport.Tensor, hfport._hfport.Tensor]:
    """
    the float64 reference of clap_log_mel (direct DFT), F64 features; for tests
    """
def _fbank_frames_reference(audio: hfport.typing.SupportsDLPack, *, sampling_rate: typing.SupportsInt | typing.SupportsIndex, num_mel_bins: typing.SupportsInt | typing.SupportsIndex = 80) -> hfport._hfport.Tensor:
    """
    float64 log-mel frames of one utterance before normalisation and stacking (direct DFT), F64 [frames, num_mel_bins]; for tests
    """
def _log_mel_spectrogram_reference(audio: hfport.typing.SupportsDLPack, *, sampling_rate: typing.SupportsInt | typing.SupportsIndex, feature_size: typing.SupportsInt | typing.SupportsIndex, n_fft: typing.SupportsInt | typing.SupportsIndex, hop_length: typing.SupportsInt | typing.SupportsIndex, n_samples: typing.SupportsInt | typing.SupportsIndex) -> hfport._hfport.Tensor:
    """
    the float64 reference of log_mel_spectrogram (direct DFT), F64; for tests
    """
def attention(q: hfport.typing.SupportsDLPack, k: hfport.typing.SupportsDLPack, v: hfport.typing.SupportsDLPack, *, causal: bool = False, scale: typing.SupportsFloat | typing.SupportsIndex | None = None, attn_mask: hfport.typing.SupportsDLPack | None = None, key_padding_mask: hfport.typing.SupportsDLPack | None = None, sliding_window: typing.SupportsInt | typing.SupportsIndex | None = None, layout: str = 'bhsd', return_lse: bool = False) -> typing.Any:
    """
    Scaled dot-product attention, flash style, on the CPU.
    
    q is [B, Hq, Sq, D] (layout="bhsd") or [B, Sq, Hq, D] ("bshd"); k and v have Hkv heads, which
    must divide Hq (GQA/MQA), and Sk positions. With Sq != Sk the queries are the last Sq positions
    (decode against a cache): causal masking and the sliding window use position i + Sk - Sq.
    attn_mask: bool (True = attend) or float (added), broadcastable to [B, Hq, Sq, Sk].
    key_padding_mask: [B, Sk], nonzero = keep (transformers' attention_mask).
    sliding_window: a query at p sees keys in (p - window, p].
    f32/f16/bf16 in, f32 accumulation, output in q's dtype and layout. A query that sees no key gets
    zeros. Returns the output, or (output, logsumexp [B, Hq, Sq] f32) with return_lse=True.
    """
def causal_conv1d(x: hfport.typing.SupportsDLPack, weight: hfport.typing.SupportsDLPack, bias: hfport.typing.SupportsDLPack | None = None, activation: typing.Any = None, *, out: hfport.typing.SupportsDLPack | None = None) -> hfport._hfport.Tensor:
    """
    Depthwise causal conv1d: x [batch, dim, L], weight [dim, width], bias [dim].
    
    out[b,d,t] = act(bias[d] + sum_k weight[d,k] x[b,d,t-width+1+k]), zeros before t = 0; activation
    None or "silu". Returns [batch, dim, L] in x's dtype (float32 sums).
    """
def causal_conv1d_update(x: hfport.typing.SupportsDLPack, conv_state: hfport.typing.SupportsDLPack, weight: hfport.typing.SupportsDLPack, bias: hfport.typing.SupportsDLPack | None = None, activation: typing.Any = None) -> hfport._hfport.Tensor:
    """
    One decode step of causal_conv1d; shifts conv_state [batch, dim, S] in place.
    
    x: [batch, dim] (one step) or [batch, dim, L] (L steps in order); S >= width - 1 (transformers'
    Mamba cache keeps S = width). Returns x's shape and dtype.
    """
def clap_log_mel(audio: hfport.typing.SupportsDLPack, *, sampling_rate: typing.SupportsInt | typing.SupportsIndex, lengths: hfport.typing.SupportsDLPack | None = None, truncation: str = 'fusion', padding: str = 'repeatpad', chunk_offsets: hfport.typing.SupportsDLPack | None = None, crop_offsets: hfport.typing.SupportsDLPack | None = None, longer_index: typing.SupportsInt | typing.SupportsIndex | None = None, feature_size: typing.SupportsInt | typing.SupportsIndex = 64, fft_window_size: typing.SupportsInt | typing.SupportsIndex = 1024, hop_length: typing.SupportsInt | typing.SupportsIndex = 480, max_length_s: typing.SupportsInt | typing.SupportsIndex = 10, max_length: typing.SupportsInt | typing.SupportsIndex | None = None, frequency_min: typing.SupportsFloat | typing.SupportsIndex = 0.0, frequency_max: typing.SupportsFloat | typing.SupportsIndex = 14000.0, feature_sampling_rate: typing.SupportsInt | typing.SupportsIndex = 48000) -> tuple[hfport._hfport.Tensor, hfport._hfport.Tensor]:
    """
    CLAP's input features, as transformers' ClapFeatureExtractor computes them: audio [samples] or [batch, samples] (any float dtype, any strides) at sampling_rate Hz (must equal feature_sampling_rate, 48000: SamplingRateError otherwise, nothing is resampled), lengths [batch] the samples of each row that are the clip (default: all). Each clip shorter than max_length (default max_length_s * feature_sampling_rate) is padded by `padding` ('repeatpad', 'repeat' or 'pad'); then a centred STFT (periodic Hann, fft_window_size, hop_length, reflection), power 2 in float64, mel filters (HTK without norm for truncation 'fusion', Slaney for 'rand_trunc', as the extractor), 10 log10(max(., 1e-10)). A clip longer than max_length is cut where transformers draws at random, so the draws are the caller's: chunk_offsets [batch, 3] (fusion: each chunk's first frame) or crop_offsets [batch] (rand_trunc: the crop's first sample); without them such a clip is an ArgumentError. longer_index: the clip a fusion batch with no longer clip marks as longer (transformers marks a random one; default: none). Returns (input_features F32 [batch, 4 (fusion) or 1, max_length // hop_length + 1, feature_size], is_longer BOOL [batch, 1]). CPU, multithreaded.
    """
def fbank(audio: hfport.typing.SupportsDLPack, *, sampling_rate: typing.SupportsInt | typing.SupportsIndex, lengths: hfport.typing.SupportsDLPack | None = None, num_mel_bins: typing.SupportsInt | typing.SupportsIndex = 80, stride: typing.SupportsInt | typing.SupportsIndex = 2, normalize: bool = True, feature_sampling_rate: typing.SupportsInt | typing.SupportsIndex = 16000) -> tuple[hfport._hfport.Tensor, hfport._hfport.Tensor]:
    """
    Wav2Vec2-BERT's Kaldi-style filter banks, as transformers' SeamlessM4TFeatureExtractor computes them: audio [samples] or [batch, samples] at sampling_rate Hz (must equal feature_sampling_rate, 16000: SamplingRateError otherwise), lengths [batch] the samples of each row that are audio (default: all). Returns (input_features F32 [batch, frames / stride, num_mel_bins * stride], attention_mask I64 [batch, frames / stride]). CPU, multithreaded.
    """
def gelu(x: hfport.typing.SupportsDLPack, approximate: str = 'none', *, out: hfport.typing.SupportsDLPack | None = None) -> hfport._hfport.Tensor:
    """
    torch's gelu: approximate "none" (erf) or "tanh".
    """
def interpolate_bicubic(x: hfport.typing.SupportsDLPack, size: typing.Any, antialias: bool = False, *, align_corners: bool = False, out: hfport.typing.SupportsDLPack | None = None) -> hfport._hfport.Tensor:
    """
    torch.nn.functional.interpolate(x, size, mode='bicubic', align_corners=align_corners, antialias=antialias) bit for bit on the CPU: x [batch, channels, H, W] F32, any strides; size an int or (out_h, out_w); returns contiguous F32. align_corners with antialias is refused.
    """
def layer_norm(x: hfport.typing.SupportsDLPack, weight: hfport.typing.SupportsDLPack | None = None, bias: hfport.typing.SupportsDLPack | None = None, eps: typing.SupportsFloat | typing.SupportsIndex = 1e-05, *, out: hfport.typing.SupportsDLPack | None = None) -> hfport._hfport.Tensor:
    """
    LayerNorm over the last dim (biased variance, float32 statistics), as torch's.
    """
def linear(x: hfport.typing.SupportsDLPack, weight: hfport.typing.SupportsDLPack, bias: hfport.typing.SupportsDLPack | None = None, *, activation: str | None = None, allow_tf32: bool = False, out: hfport.typing.SupportsDLPack | None = None) -> hfport._hfport.Tensor:
    """
    act(x @ weight.T + bias), as torch.nn.functional.linear: x [..., in], weight [out, in]
    (x's dtype; a transposed view is read in place), bias [out]. activation: None or "none",
    "gelu_tanh" (torch's gelu(approximate="tanh")), or "gelu" (exact, erf). Float32 sums.
    CPU: OpenBLAS sgemm (f16/bf16 converted to float32), the activation applied before rounding to
    x's dtype. CUDA: cuBLASLt, bias and gelu_tanh fused in its epilogue (exact gelu as a second pass);
    f32 is multiplied in f32 unless allow_tf32=True (ignored on the CPU).
    """
def log_mel_spectrogram(audio: hfport.typing.SupportsDLPack, *, sampling_rate: typing.SupportsInt | typing.SupportsIndex, feature_size: typing.SupportsInt | typing.SupportsIndex = 80, n_fft: typing.SupportsInt | typing.SupportsIndex = 400, hop_length: typing.SupportsInt | typing.SupportsIndex = 160, chunk_length: typing.SupportsInt | typing.SupportsIndex = 30, n_samples: typing.SupportsInt | typing.SupportsIndex | None = None, feature_sampling_rate: typing.SupportsInt | typing.SupportsIndex = 16000, out: hfport.typing.SupportsDLPack | None = None) -> hfport._hfport.Tensor:
    """
    Whisper's log-mel features, as transformers' WhisperFeatureExtractor computes them: audio [samples] or [batch, samples] (F32/F64/F16/BF16, any strides) sampled at sampling_rate Hz (must equal feature_sampling_rate, 16000: SamplingRateError otherwise, nothing is resampled), each row truncated or zero padded to n_samples (default chunk_length * feature_sampling_rate), centred STFT (n_fft, hop_length, periodic Hann, reflect padding), power, Slaney mel filters (feature_size bins, 0-8000 Hz), log10 of max(., 1e-10), clamp to the row's max - 8, (x + 4) / 4. Returns F32 [batch, feature_size, n_samples // hop_length]. CPU, multithreaded.
    """
def mel_filter_bank(num_frequency_bins: typing.SupportsInt | typing.SupportsIndex, num_mel_filters: typing.SupportsInt | typing.SupportsIndex, min_frequency: typing.SupportsFloat | typing.SupportsIndex, max_frequency: typing.SupportsFloat | typing.SupportsIndex, sampling_rate: typing.SupportsInt | typing.SupportsIndex, *, norm: str | None = 'slaney', mel_scale: str = 'slaney', triangularize_in_mel_space: bool = False) -> hfport._hfport.Tensor:
    """
    transformers.audio_utils.mel_filter_bank(...) in float64: F64 [num_frequency_bins, num_mel_filters]. norm 'slaney' or None, mel_scale 'htk', 'kaldi' or 'slaney'; the defaults here are Whisper's (norm='slaney', mel_scale='slaney'), not transformers' (None, 'htk').
    """
def patch_embed(pixels: hfport.typing.SupportsDLPack, weight: hfport.typing.SupportsDLPack, bias: hfport.typing.SupportsDLPack, patch: typing.Any, *, out: hfport.typing.SupportsDLPack | None = None) -> hfport._hfport.Tensor:
    """
    conv2d(pixels, weight, bias, stride=patch).flatten(2).transpose(1, 2) as unfold + GEMM: pixels [batch, channels, H, W] (F32/F16/BF16, any strides), weight [hidden, channels, ph, pw], bias [hidden] or None, patch an int or (ph, pw); returns [batch, (H // ph) * (W // pw), hidden] in the pixels' dtype (F32 sums). Video: pixels [batch, channels, T, H, W], weight [hidden, channels, pt, ph, pw], patch (pt, ph, pw) (conv3d, VideoMAE's tubelets). CPU or CUDA.
    """
def rms_norm(x: hfport.typing.SupportsDLPack, weight: hfport.typing.SupportsDLPack, eps: typing.SupportsFloat | typing.SupportsIndex = 1e-06, *, residual: hfport.typing.SupportsDLPack | None = None, add_unit_offset: bool = False, out: hfport.typing.SupportsDLPack | None = None) -> typing.Any:
    """
    RMSNorm over the last dim: x / sqrt(mean(x^2) + eps) * weight (or * (1 + weight) with
    add_unit_offset, as Gemma). With residual: s = x + residual, returns (rms_norm(s), s). Float32
    statistics; f16/bf16 rounding as transformers' LlamaRMSNorm / GemmaRMSNorm.
    """
def rms_norm_gated(x: hfport.typing.SupportsDLPack, weight: hfport.typing.SupportsDLPack, gate: hfport.typing.SupportsDLPack | None = None, eps: typing.SupportsFloat | typing.SupportsIndex = 1e-06, *, group_size: typing.SupportsInt | typing.SupportsIndex = 0, out: hfport.typing.SupportsDLPack | None = None) -> hfport._hfport.Tensor:
    """
    Mamba-2's gated RMSNorm (MambaRMSNormGated): v = x * silu(gate), then
    v / sqrt(mean(v^2) + eps) * weight over each group of group_size columns (0: the whole row, as
    transformers; mamba_ssm groups d_inner / n_groups). Float32 statistics; x's dtype out.
    """
def rope(q: hfport.typing.SupportsDLPack, k: hfport.typing.SupportsDLPack, cos: hfport.typing.SupportsDLPack, sin: hfport.typing.SupportsDLPack, *, interleaved: bool = False, rotary_dim: typing.SupportsInt | typing.SupportsIndex | None = None, inplace: bool = False, layout: str = 'bhsd') -> tuple[typing.Any, ...]:
    """
    Rotary embedding of q and k: returns (q_out, k_out).
    
    q, k: [B, H, S, D] (layout="bhsd") or [B, S, H, D] ("bshd"), head counts may differ, k may be None.
    cos, sin: [S, W] or [B, S, W]; row s is position s of q and k (pass the rows of a decode step's own
    positions). W = rotary_dim (transformers' cat layout; its first half is read) or rotary_dim / 2;
    rotary_dim defaults to W and the features past it pass through. interleaved=False rotates
    (x[i], x[i + R/2]) as transformers' rotate_half; True rotates (x[2i], x[2i+1]) as GPT-J.
    inplace=True writes into q and k and returns them.
    """
def rope_2d_table(grid_h: typing.SupportsInt | typing.SupportsIndex, grid_w: typing.SupportsInt | typing.SupportsIndex, head_dim: typing.SupportsInt | typing.SupportsIndex, theta: typing.SupportsFloat | typing.SupportsIndex = 100.0) -> tuple[hfport._hfport.Tensor, hfport._hfport.Tensor]:
    """
    (cos, sin), f32 [grid_h * grid_w, head_dim]: DINOv3's axial RoPE table for a grid of
    patches (row-major), as transformers' DINOv3ViTRopePositionEmbedding computes it at eval (its
    position shift, jitter and rescale off): the patch centres in [-1, 1], head_dim / 4 frequencies
    1 / theta^(4j / head_dim) per axis, y angles then x angles, written twice. Apply it with rope() to
    the patch tokens only (the class and register tokens stay unrotated): rope(q[:, :, prefix:],
    k[:, :, prefix:], cos, sin, inplace=True).
    """
def rope_frequencies(config: typing.Any, *, seq_len: typing.SupportsInt | typing.SupportsIndex | None = None) -> tuple[typing.Any, ...]:
    """
    (inv_freq f32 [rotary_dim / 2], attention_scaling) as transformers' ROPE_INIT_FUNCTIONS
    compute them, for rope_type default, linear, dynamic, yarn, longrope, llama3. config: config.json's
    dict (rope_parameters or rope_scaling) or a transformers config. seq_len: the current length for
    dynamic (default max_position_embeddings) and longrope (long factors past
    original_max_position_embeddings).
    """
def rope_table(config: typing.Any, positions: hfport.typing.SupportsDLPack, *, seq_len: typing.SupportsInt | typing.SupportsIndex | None = None) -> tuple[typing.Any, ...]:
    """
    (cos, sin), f32 [*positions.shape, rotary_dim], as transformers' rotary embedding
    returns them: cat(freqs, freqs) times the attention scaling. positions: an integer tensor [S] or
    [B, S] or a list of ints; seq_len defaults to max(positions) + 1 (dynamic and longrope).
    """
def rwkv_wkv(w: hfport.typing.SupportsDLPack, u: hfport.typing.SupportsDLPack, k: hfport.typing.SupportsDLPack, v: hfport.typing.SupportsDLPack, state: hfport.typing.SupportsDLPack | None = None, *, mask: hfport.typing.SupportsDLPack | None = None, out: hfport.typing.SupportsDLPack | None = None) -> tuple[typing.Any, ...]:
    """
    RWKV-4's WKV time-mix recurrence, as transformers' rwkv_linear_attention_cpu, on the
    CPU or CUDA (the device of its tensors).
    
    w: time_decay [C] as stored (each step decays by exp(-exp(w))); u: time_first [C]; k, v:
    [batch, L, C] (one dtype: f32, f16 or bf16); state: None (empty) or (num, den, max), each
    [batch, C]. mask [batch, L] (optional): a 0 skips that step (output 0, state unchanged). Returns
    (y [batch, L, C] in k's dtype, (num, den, max) f32 [batch, C]) with the max-tracking form of the
    state, so that no exponential overflows.
    """
def rwkv_wkv_update(state: hfport.typing.SupportsDLPack, w: hfport.typing.SupportsDLPack, u: hfport.typing.SupportsDLPack, k: hfport.typing.SupportsDLPack, v: hfport.typing.SupportsDLPack) -> hfport._hfport.Tensor:
    """
    One decode step of rwkv_wkv: k, v [batch, C]; state (num, den, max), contiguous
    f32 [batch, C] each, updated in place. Returns y [batch, C]. L steps equal one rwkv_wkv.
    """
def selective_scan(u: hfport.typing.SupportsDLPack, delta: hfport.typing.SupportsDLPack, A: hfport.typing.SupportsDLPack, B: hfport.typing.SupportsDLPack, C: hfport.typing.SupportsDLPack, D: hfport.typing.SupportsDLPack | None = None, z: hfport.typing.SupportsDLPack | None = None, delta_bias: hfport.typing.SupportsDLPack | None = None, delta_softplus: bool = False, return_last_state: bool = False, *, out: hfport.typing.SupportsDLPack | None = None) -> typing.Any:
    """
    Mamba-1 selective scan with mamba_ssm's selective_scan_fn shapes.
    
    u, delta, z: [batch, dim, L] (one dtype: f32, f16 or bf16); A: [dim, N]; B, C: [dim, N] (time
    invariant), [batch, N, L] or [batch, G, N, L]; D, delta_bias: [dim]. Computes in float32:
    dt = softplus(delta + delta_bias) (when delta_softplus), h = exp(dt A) h + dt B u, y = C.h + D u,
    y *= silu(z). Returns y [batch, dim, L] in u's dtype, and with return_last_state the tuple
    (y, last_state [batch, dim, N] f32).
    """
def selective_state_update(state: hfport.typing.SupportsDLPack, x: hfport.typing.SupportsDLPack, dt: hfport.typing.SupportsDLPack, A: hfport.typing.SupportsDLPack, B: hfport.typing.SupportsDLPack, C: hfport.typing.SupportsDLPack, D: hfport.typing.SupportsDLPack | None = None, z: hfport.typing.SupportsDLPack | None = None, dt_bias: hfport.typing.SupportsDLPack | None = None, dt_softplus: bool = False, *, out: hfport.typing.SupportsDLPack | None = None) -> hfport._hfport.Tensor:
    """
    One decode step of the selective scan; updates `state` [batch, dim, N] in place.
    
    x, dt, z: [batch, dim]; A: [dim, N]; B, C: [batch, N] or [batch, G, N]; D, dt_bias: [dim].
    Returns y [batch, dim] in x's dtype (written into `out` when given). L calls on a sequence's
    columns equal one selective_scan.
    """
def silu(x: hfport.typing.SupportsDLPack, *, out: hfport.typing.SupportsDLPack | None = None) -> hfport._hfport.Tensor:
    """
    silu(x) = x * sigmoid(x).
    """
def ssd_scan(x: hfport.typing.SupportsDLPack, dt: hfport.typing.SupportsDLPack, A: hfport.typing.SupportsDLPack, B: hfport.typing.SupportsDLPack, C: hfport.typing.SupportsDLPack, chunk_size: typing.SupportsInt | typing.SupportsIndex = 256, D: hfport.typing.SupportsDLPack | None = None, dt_bias: hfport.typing.SupportsDLPack | None = None, dt_softplus: bool = False, dt_limit: tuple[typing.SupportsFloat | typing.SupportsIndex, typing.SupportsFloat | typing.SupportsIndex] = ..., initial_states: hfport.typing.SupportsDLPack | None = None, return_final_states: bool = False, *, out: hfport.typing.SupportsDLPack | None = None) -> typing.Any:
    """
    Mamba-2's chunked state-space-duality scan (transformers' torch_forward, mamba_ssm's
    mamba_chunk_scan_combined without z), on the CPU or CUDA (the device of its tensors; on CUDA the
    sequential recurrence, chunk_size unused).
    
    x: [batch, L, H, P]; dt: [batch, L, H] (x's dtype: f32, f16 or bf16); A, D, dt_bias: [H];
    B, C: [batch, L, G, N] with G dividing H; initial_states: [batch, H, P, N]. Per head, with
    dt = clamp(softplus(dt + dt_bias), *dt_limit): S = exp(dt A) S + dt x B^T, y = S C + D x, computed
    chunk_size steps at a time in float32. Returns y [batch, L, H, P] in x's dtype, and with
    return_final_states the tuple (y, final_states [batch, H, P, N] f32).
    """
def ssd_state_update(state: hfport.typing.SupportsDLPack, x: hfport.typing.SupportsDLPack, dt: hfport.typing.SupportsDLPack, A: hfport.typing.SupportsDLPack, B: hfport.typing.SupportsDLPack, C: hfport.typing.SupportsDLPack, D: hfport.typing.SupportsDLPack | None = None, dt_bias: hfport.typing.SupportsDLPack | None = None, dt_softplus: bool = False, dt_limit: tuple[typing.SupportsFloat | typing.SupportsIndex, typing.SupportsFloat | typing.SupportsIndex] = ..., *, out: hfport.typing.SupportsDLPack | None = None) -> hfport._hfport.Tensor:
    """
    One decode step of ssd_scan; updates `state` [batch, H, P, N] in place.
    
    x: [batch, H, P]; dt: [batch, H]; A, D, dt_bias: [H]; B, C: [batch, G, N]. Returns y [batch, H, P]
    in x's dtype. L calls on a sequence's steps equal one ssd_scan.
    """
def swiglu(gate: hfport.typing.SupportsDLPack, up: hfport.typing.SupportsDLPack, *, out: hfport.typing.SupportsDLPack | None = None) -> hfport._hfport.Tensor:
    """
    silu(gate) * up; gate and up of one shape and dtype.
    """
