"""Audio families: whisper, wav2vec2-bert and clap (built-in specs, checked against tiny
transformers models saved with save_pretrained), and the IndexTTS2-style stack of
docs/examples/indextts2_spec.json (a user spec, checked against a synthetic checkpoint written from
names and shapes).

Every load is strict and goes through tests/python/family_harness.py, which compares each native
tensor with an independent torch computation of the spec's ops. The weight_norm fold is also checked
against torch's own weight_norm parametrization on real Conv1d / ConvTranspose1d modules, so the
formula and the kept dim are proven against PyTorch, not only against the harness.
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import hfport
import pytest
import torch
from family_harness import check_family, check_family_state
from safetensors.torch import save_file

REPO = Path(__file__).resolve().parents[2]
INDEXTTS2_SPEC = REPO / "docs" / "examples" / "indextts2_spec.json"


def model_state(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    """Every tensor of the state dict, contiguous and unshared (tied copies still in)."""
    return {k: v.detach().clone().contiguous() for k, v in model.state_dict().items()}


# --- whisper -------------------------------------------------------------------------------------

def tiny_whisper(**overrides):
    from transformers import WhisperConfig, WhisperForConditionalGeneration
    torch.manual_seed(0)
    config = WhisperConfig(
        vocab_size=96, num_mel_bins=8, d_model=32, encoder_layers=2, decoder_layers=2,
        encoder_attention_heads=2, decoder_attention_heads=2, encoder_ffn_dim=64,
        decoder_ffn_dim=48, max_source_positions=16, max_target_positions=20,
        pad_token_id=0, bos_token_id=1, eos_token_id=2, decoder_start_token_id=1, **overrides)
    return WhisperForConditionalGeneration(config)


@pytest.mark.parametrize("tied", [True, False])
def test_whisper(tmp_path, tied):
    model = tiny_whisper(tie_word_embeddings=tied)
    state, _report = check_family(tmp_path, model, family="whisper")
    # q and v carry biases, k does not: the spec keeps the three projections apart rather than
    # fusing weights whose biases cannot be fused without inventing a zero bias for k.
    for tower, n in (("enc", 2), ("dec", 2)):
        for i in range(n):
            assert f"{tower}.blk.{i}.attn_k.weight" in state
            assert f"{tower}.blk.{i}.attn_k.bias" not in state
            assert f"{tower}.blk.{i}.attn_q.bias" in state
    assert "dec.blk.1.cross_attn_k.weight" in state
    assert "dec.blk.1.cross_attn_k.bias" not in state
    assert "enc.blk.0.cross_attn_q.weight" not in state
    # The encoder's position table is saved (a frozen parameter), so it is loaded, not ignored.
    assert tuple(state["enc.pos_embd.weight"].shape) == (16, 32)
    assert "dec.output.weight" in state


def test_whisper_config_without_tie_field_defaults_to_tied(tmp_path):
    model = tiny_whisper()
    tensors = model_state(model)
    del tensors["proj_out.weight"]  # save_pretrained drops the tied copy too
    config = model.config.to_dict()
    del config["tie_word_embeddings"]  # transformers' default: tied
    state, _ = check_family_state(tmp_path, tensors, config, family="whisper")
    assert "dec.output.weight" in state


# --- wav2vec2-bert -------------------------------------------------------------------------------

def tiny_w2v_bert(**overrides):
    from transformers import Wav2Vec2BertConfig, Wav2Vec2BertModel
    torch.manual_seed(0)
    config = Wav2Vec2BertConfig(
        hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=48,
        feature_projection_input_dim=16, conv_depthwise_kernel_size=5,
        left_max_position_embeddings=4, right_max_position_embeddings=2, **overrides)
    return Wav2Vec2BertModel(config)


@pytest.mark.parametrize("overrides", [
    {},                                            # the default: relative_key, masked_spec_embed
    {"position_embeddings_type": "relative"},      # linear_pos, pos_bias_u / pos_bias_v
    {"position_embeddings_type": "rotary", "mask_time_prob": 0.0},  # no position params, no mask
], ids=["relative_key", "relative", "rotary_nomask"])
def test_wav2vec2_bert(tmp_path, overrides):
    model = tiny_w2v_bert(**overrides)
    state, _ = check_family(tmp_path, model, family="wav2vec2-bert")
    assert tuple(state["blk.1.attn_qkv.weight"].shape) == (96, 32)
    assert tuple(state["blk.0.conv_dw.weight"].shape) == (32, 5)  # [d, 1, k] squeezed
    assert tuple(state["blk.0.conv_pw1.weight"].shape) == (64, 32)  # [2d, d, 1] squeezed
    kind = overrides.get("position_embeddings_type", "relative_key")
    assert ("blk.0.attn_rel_pos_embd.weight" in state) == (kind == "relative_key")
    assert ("blk.0.attn_pos_bias_u" in state) == (kind == "relative")
    assert ("mask_embd" in state) == (overrides.get("mask_time_prob", 0.05) > 0)


def test_wav2vec2_bert_config_without_position_fields_uses_defaults(tmp_path):
    from transformers import Wav2Vec2BertConfig, Wav2Vec2BertModel
    torch.manual_seed(0)
    # transformers' own defaults for the omitted fields: relative_key, 64 left, 8 right.
    model = Wav2Vec2BertModel(Wav2Vec2BertConfig(
        hidden_size=32, num_hidden_layers=1, num_attention_heads=2, intermediate_size=48,
        feature_projection_input_dim=16, conv_depthwise_kernel_size=3))
    config = model.config.to_dict()
    for field in ("position_embeddings_type", "left_max_position_embeddings",
                  "right_max_position_embeddings"):
        del config[field]
    state, _ = check_family_state(tmp_path, model_state(model), config, family="wav2vec2-bert")
    assert tuple(state["blk.0.attn_rel_pos_embd.weight"].shape) == (64 + 8 + 1, 16)


# --- clap ----------------------------------------------------------------------------------------

def tiny_clap(**audio_overrides):
    from transformers import ClapConfig, ClapModel
    torch.manual_seed(0)
    text = {"vocab_size": 100, "hidden_size": 32, "num_hidden_layers": 2, "num_attention_heads": 2,
                "intermediate_size": 48, "max_position_embeddings": 40, "projection_dim": 16}
    # The HTSAT defaults (spec 256, 64 mels, window 8, depths 2-2-6-2, 96 channels) shrunk: two
    # stages so one patch merge runs, a 2x2 window, 8 channels doubling to 16 = hidden_size.
    audio = {"window_size": 2, "num_mel_bins": 8, "spec_size": 16, "patch_size": 4, "patch_stride": 4,
                 "hidden_size": 16, "patch_embeds_hidden_size": 8, "depths": [2, 1],
                 "num_attention_heads": [2, 4], "projection_dim": 16, "num_hidden_layers": 2}
    audio.update(audio_overrides)
    return ClapModel(ClapConfig(text_config=text, audio_config=audio, projection_dim=16))


@pytest.mark.parametrize("overrides", [
    {},
    {"enable_fusion": True, "fusion_type": "aff_2d"},       # AFF block + mel_conv2d
    {"enable_fusion": True, "fusion_type": "channel_map"},  # patch conv takes 4x the channels
    {"qkv_bias": False, "enable_patch_layer_norm": False},
], ids=["plain", "fusion_aff_2d", "fusion_channel_map", "no_qkv_bias_no_patch_norm"])
def test_clap(tmp_path, overrides):
    model = tiny_clap(**overrides)
    state, _report = check_family(tmp_path, model, family="clap")
    assert tuple(state["audio.stage.0.blk.1.attn_qkv.weight"].shape) == (24, 8)
    assert tuple(state["audio.stage.1.blk.0.attn_qkv.weight"].shape) == (48, 16)
    assert tuple(state["audio.stage.1.blk.0.attn_rel_pos_bias"].shape) == (9, 4)
    assert tuple(state["audio.stage.0.merge.weight"].shape) == (16, 32)
    assert "audio.stage.1.merge.weight" not in state  # the last stage does not downsample
    assert tuple(state["audio.logit_scale"].shape) == ()
    assert ("audio.stage.0.blk.0.attn_qkv.bias" in state) == overrides.get("qkv_bias", True)
    assert ("audio.fusion.local_bn1.running_var" in state) == overrides.get("enable_fusion", False)
    channels = 4 if overrides.get("fusion_type") == "channel_map" else 1
    assert tuple(state["audio.patch_embd.weight"].shape) == (8, channels, 4, 4)


# --- the IndexTTS2-style user spec ---------------------------------------------------------------

INDEXTTS2_CONFIG = {
    "model_type": "indextts2-example",
    "gpt": {"model_dim": 32, "layers": 2, "heads": 2, "number_text_tokens": 50,
            "number_mel_codes": 40, "max_text_tokens": 12, "max_mel_tokens": 14},
    "cond": {"output_size": 24, "attention_heads": 2, "linear_units": 40, "num_blocks": 2,
             "cnn_module_kernel": 5},
    "dit": {"hidden_dim": 32, "num_heads": 4, "depth": 2},
    "vocoder": {"num_mels": 8, "upsample_initial_channel": 32, "upsample_rates": [4, 2],
                "upsample_kernel_sizes": [8, 4], "resblock_kernel_sizes": [3, 5],
                "resblock_dilation_sizes": [[1, 3], [1, 3, 5]]},
}


class BigVGANLike(torch.nn.Module):
    """The generator's convolution skeleton with BigVGAN's attribute names, so the checkpoint names
    and weight_norm shapes come from torch itself. conv_pre and ups use the legacy
    torch.nn.utils.weight_norm (weight_g / weight_v); resblocks and conv_post use
    torch.nn.utils.parametrizations.weight_norm (original0 / original1)."""

    def __init__(self, v: dict):
        super().__init__()
        def legacy(module):
            with warnings.catch_warnings():  # deprecated, but still what older checkpoints hold
                warnings.simplefilter("ignore", FutureWarning)
                return torch.nn.utils.weight_norm(module)

        modern = torch.nn.utils.parametrizations.weight_norm
        ch = v["upsample_initial_channel"]
        self.conv_pre = legacy(torch.nn.Conv1d(v["num_mels"], ch, 7, padding=3))
        self.ups = torch.nn.ModuleList()
        for u, (rate, k) in enumerate(zip(v["upsample_rates"], v["upsample_kernel_sizes"])):
            self.ups.append(torch.nn.ModuleList([legacy(torch.nn.ConvTranspose1d(
                ch // 2**u, ch // 2**(u + 1), k, rate, padding=(k - rate) // 2))]))
        self.resblocks = torch.nn.ModuleList()
        for u in range(len(v["upsample_rates"])):
            c = ch // 2**(u + 1)
            for k, dilations in zip(v["resblock_kernel_sizes"], v["resblock_dilation_sizes"]):
                block = torch.nn.Module()
                block.convs1 = torch.nn.ModuleList(
                    modern(torch.nn.Conv1d(c, c, k, dilation=d)) for d in dilations)
                block.convs2 = torch.nn.ModuleList(
                    modern(torch.nn.Conv1d(c, c, k)) for _ in dilations)
                self.resblocks.append(block)
        self.conv_post = modern(torch.nn.Conv1d(ch // 2**len(v["upsample_rates"]), 1, 7))


def indextts2_checkpoint(config: dict) -> tuple[dict[str, torch.Tensor], BigVGANLike]:
    """Names and shapes as the IndexTTS2 code saves them (UnifiedVoice, the wenet-style Conformer
    conditioning encoder, the gpt-fast DiT estimator, BigVGAN), random values."""
    from transformers import GPT2Config, GPT2Model
    torch.manual_seed(0)
    g, c, d = config["gpt"], config["cond"], config["dit"]
    tensors: dict[str, torch.Tensor] = {}

    def put(name: str, *shape: int) -> None:
        tensors[name] = torch.randn(*shape)

    dim = g["model_dim"]
    put("text_embedding.weight", g["number_text_tokens"] + 1, dim)
    put("mel_embedding.weight", g["number_mel_codes"], dim)
    put("text_pos_embedding.emb.weight", g["max_text_tokens"] + 2, dim)
    put("mel_pos_embedding.emb.weight", g["max_mel_tokens"] + 3, dim)
    gpt = GPT2Model(GPT2Config(vocab_size=8, n_positions=16, n_embd=dim, n_layer=g["layers"],
                               n_head=g["heads"]))
    for name, value in gpt.state_dict().items():
        if not name.startswith(("wte.", "wpe.")):  # UnifiedVoice deletes both
            tensors[f"gpt.{name}"] = value.detach().clone()
    for i in range(g["layers"]):  # the causal-mask buffers older transformers saved
        tensors[f"gpt.h.{i}.attn.bias"] = torch.tril(torch.ones(1, 1, 16, 16, dtype=torch.bool))
        tensors[f"gpt.h.{i}.attn.masked_bias"] = torch.tensor(-1e4)
    put("final_norm.weight", dim)
    put("final_norm.bias", dim)
    put("mel_head.weight", g["number_mel_codes"], dim)
    put("mel_head.bias", g["number_mel_codes"])

    size, heads, units, kernel = (c["output_size"], c["attention_heads"], c["linear_units"],
                                  c["cnn_module_kernel"])
    for b in range(c["num_blocks"]):
        p = f"conditioning_encoder.encoders.{b}"
        for norm in ("norm_mha", "norm_conv", "norm_ff", "norm_final", "conv_module.norm"):
            put(f"{p}.{norm}.weight", size)
            put(f"{p}.{norm}.bias", size)
        for lin in ("linear_q", "linear_k", "linear_v", "linear_out"):
            put(f"{p}.self_attn.{lin}.weight", size, size)
            put(f"{p}.self_attn.{lin}.bias", size)
        put(f"{p}.self_attn.linear_pos.weight", size, size)
        put(f"{p}.self_attn.pos_bias_u", heads, size // heads)
        put(f"{p}.self_attn.pos_bias_v", heads, size // heads)
        put(f"{p}.conv_module.pointwise_conv1.weight", 2 * size, size, 1)
        put(f"{p}.conv_module.pointwise_conv1.bias", 2 * size)
        put(f"{p}.conv_module.depthwise_conv.weight", size, 1, kernel)
        put(f"{p}.conv_module.depthwise_conv.bias", size)
        put(f"{p}.conv_module.pointwise_conv2.weight", size, size, 1)
        put(f"{p}.conv_module.pointwise_conv2.bias", size)
        put(f"{p}.feed_forward.w_1.weight", units, size)
        put(f"{p}.feed_forward.w_1.bias", units)
        put(f"{p}.feed_forward.w_2.weight", size, units)
        put(f"{p}.feed_forward.w_2.bias", size)
    put("conditioning_encoder.after_norm.weight", size)
    put("conditioning_encoder.after_norm.bias", size)

    hidden, head_dim = d["hidden_dim"], d["hidden_dim"] // d["num_heads"]
    ffn = -(-(8 * hidden // 3) // 256) * 256  # gpt-fast's find_multiple(int(2 * 4 * dim / 3), 256)
    for layer in range(d["depth"]):
        p = f"cfm.estimator.transformer.layers.{layer}"
        put(f"{p}.attention.wqkv.weight", 3 * d["num_heads"] * head_dim, hidden)
        put(f"{p}.attention.wo.weight", hidden, d["num_heads"] * head_dim)
        put(f"{p}.feed_forward.w1.weight", ffn, hidden)
        put(f"{p}.feed_forward.w3.weight", ffn, hidden)
        put(f"{p}.feed_forward.w2.weight", hidden, ffn)
        for norm in ("attention_norm", "ffn_norm"):
            put(f"{p}.{norm}.norm.weight", hidden)
            put(f"{p}.{norm}.project_layer.weight", 2 * hidden, hidden)
            put(f"{p}.{norm}.project_layer.bias", 2 * hidden)
    put("cfm.estimator.transformer.norm.norm.weight", hidden)
    put("cfm.estimator.transformer.norm.project_layer.weight", 2 * hidden, hidden)
    put("cfm.estimator.transformer.norm.project_layer.bias", 2 * hidden)

    vocoder = BigVGANLike(config["vocoder"])
    with torch.no_grad():
        for name, value in vocoder.state_dict().items():
            fresh = torch.randn_like(value)
            if name.endswith(("weight_g", "original0")):
                fresh = fresh.abs() + 0.1  # a norm scale: positive
            tensors[f"bigvgan.{name}"] = fresh
        vocoder.load_state_dict({k.removeprefix("bigvgan."): v for k, v in tensors.items()
                                 if k.startswith("bigvgan.")})
    return tensors, vocoder


def test_indextts2_example_spec(tmp_path):
    spec = json.loads(INDEXTTS2_SPEC.read_text())
    tensors, _ = indextts2_checkpoint(INDEXTTS2_CONFIG)
    state, report = check_family_state(tmp_path, tensors, INDEXTTS2_CONFIG,
                                       spec=str(INDEXTTS2_SPEC))
    assert report.family == spec["family"]
    # GPT-2's Conv1D c_attn [in, 3*out] comes out as three [out, in] projections.
    q = torch.from_dlpack(state["gpt.blk.1.attn_q.weight"])
    c_attn = tensors["gpt.h.1.attn.c_attn.weight"]
    assert torch.equal(q, c_attn[:, :32].t())
    assert tuple(state["cfm.blk.0.ffn_gate_up.weight"].shape) == (512, 32)
    assert tuple(state["vocoder.ups.0.weight"].shape) == (32, 16, 8)
    assert tuple(state["vocoder.res.3.convs2.2.weight"].shape) == (8, 8, 5)
    assert tuple(state["vocoder.conv_post.bias"].shape) == (1,)
    assert not any(name.endswith(("weight_g", "weight_v", "original0", "original1"))
                   for name in state)


def test_indextts2_weight_norm_folds_match_torch(tmp_path):
    """The spec's weight_norm fold equals the weight torch's own weight_norm computes: the legacy
    weight_g / weight_v pairs on Conv1d and ConvTranspose1d (where dim 0 is in-channels), and the
    parametrizations pairs."""
    tensors, vocoder = indextts2_checkpoint(INDEXTTS2_CONFIG)
    state, _ = check_family_state(tmp_path, tensors, INDEXTTS2_CONFIG, spec=str(INDEXTTS2_SPEC))
    with torch.no_grad():
        vocoder.conv_pre(torch.zeros(1, 8, 7))  # the legacy hook recomputes .weight on forward
        for up in vocoder.ups:
            up[0](torch.zeros(1, up[0].in_channels, 3))
        expected = {
            "vocoder.conv_pre.weight": vocoder.conv_pre.weight,
            "vocoder.ups.0.weight": vocoder.ups[0][0].weight,
            "vocoder.ups.1.weight": vocoder.ups[1][0].weight,
            "vocoder.res.0.convs1.1.weight": vocoder.resblocks[0].convs1[1].weight,
            "vocoder.res.3.convs2.2.weight": vocoder.resblocks[3].convs2[2].weight,
            "vocoder.conv_post.weight": vocoder.conv_post.weight,
        }
    for name, want in expected.items():
        got = torch.from_dlpack(state[name])
        assert got.shape == want.shape, name
        torch.testing.assert_close(got, want, rtol=2e-6, atol=1e-7, msg=name)
    # A ConvTranspose1d's g is [in, 1, 1]: a fold over the wrong dim would not even broadcast
    # back to this shape, and a fold over dim 1 would give different values.
    g = tensors["bigvgan.ups.0.0.weight_g"]
    assert tuple(g.shape) == (32, 1, 1)


def test_indextts2_spec_as_dict_or_file(tmp_path):
    """A user spec is data like a built-in one: loading with the dict gives the same state."""
    spec = json.loads(INDEXTTS2_SPEC.read_text())
    tensors, _ = indextts2_checkpoint(INDEXTTS2_CONFIG)
    save_file(tensors, str(tmp_path / "model.safetensors"))
    (tmp_path / "config.json").write_text(json.dumps(INDEXTTS2_CONFIG))
    from_file, _ = hfport.load(tmp_path, spec=str(INDEXTTS2_SPEC))
    from_dict, report = hfport.load(tmp_path, spec=spec)
    assert sorted(from_file) == sorted(from_dict)
    assert not report.missing and not report.unexpected and not report.mismatched
    for name in from_file:
        assert torch.equal(torch.from_dlpack(from_file[name]), torch.from_dlpack(from_dict[name]))
