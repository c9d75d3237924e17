"""Family specs for the decoders and sequence models, each checked against what its library saves.

Every transformers case builds a tiny model from a config with random init (fixed seed), saves it
with `save_pretrained`, and hands it to the family harness: strict load with the family chosen from
config.json, 0 missing / unexpected / mismatched, every native tensor equal to the spec's ops
recomputed in torch from the model's own weights. Variants cover what changes the name set or the
shapes: tied and untied heads, the bias flags, and config fields left out (or `null` / `"auto"`) so
that the spec's `config_defaults` must reproduce what transformers computes. Those edited-config
variants write the saved tensors beside the edited config.json and load with the family named.

RWKV's original BlinkDL naming has no library to save it: that test writes a synthetic checkpoint
with exactly the RWKV-4 names and shapes, and checks that it maps onto the same native names and
shapes as the transformers `rwkv` spec.
"""

from __future__ import annotations

import pytest
import torch
from family_harness import check_family, check_family_state, saved

transformers = pytest.importorskip("transformers")
transformers.logging.set_verbosity_error()

# A tiny LLaMA-shaped body: grouped-query attention (4 q heads, 2 kv heads), intermediate != 4 * hidden.
DECODER = {"vocab_size": 64, "hidden_size": 32, "num_hidden_layers": 2, "num_attention_heads": 4,
               "num_key_value_heads": 2, "intermediate_size": 48}


def build(cls_name: str, cfg_name: str, **kwargs):
    torch.manual_seed(0)
    config = getattr(transformers, cfg_name)(**kwargs)
    return getattr(transformers, cls_name)(config)


# ---------------------------------------------------------------- LLaMA-like (q/k/v and gate/up fused)

@pytest.mark.parametrize("family, cls, cfg, extra", [
    ("llama", "LlamaForCausalLM", "LlamaConfig", {}),
    ("llama", "LlamaForCausalLM", "LlamaConfig", {"tie_word_embeddings": True}),
    ("llama", "LlamaForCausalLM", "LlamaConfig", {"attention_bias": True}),
    ("llama", "LlamaForCausalLM", "LlamaConfig", {"attention_bias": True, "mlp_bias": True, "head_dim": 16}),
    ("mistral", "MistralForCausalLM", "MistralConfig", {}),
    ("qwen2", "Qwen2ForCausalLM", "Qwen2Config", {}),
    ("qwen2", "Qwen2ForCausalLM", "Qwen2Config", {"tie_word_embeddings": True}),
    ("qwen3", "Qwen3ForCausalLM", "Qwen3Config", {"head_dim": 16}),
    ("qwen3", "Qwen3ForCausalLM", "Qwen3Config", {"head_dim": 16, "attention_bias": True,
                                                  "tie_word_embeddings": True}),
], ids=["llama", "llama-tied", "llama-attn-bias", "llama-all-bias-head-dim", "mistral", "qwen2",
        "qwen2-tied", "qwen3", "qwen3-bias-tied"])
def test_llama_like(tmp_path, family, cls, cfg, extra):
    check_family(tmp_path, build(cls, cfg, **DECODER, **extra), family=family)


@pytest.mark.parametrize("family, cls, cfg, drop, null", [
    # LlamaConfig computes head_dim = hidden // heads and num_key_value_heads = heads when absent.
    ("llama", "LlamaForCausalLM", "LlamaConfig",
     ["head_dim", "num_key_value_heads", "attention_bias", "mlp_bias", "tie_word_embeddings"], []),
    # A Mistral config may carry head_dim: null.
    ("mistral", "MistralForCausalLM", "MistralConfig", ["tie_word_embeddings"], ["head_dim"]),
    # Qwen2Config has no head_dim field: the attention takes hidden // heads.
    ("qwen2", "Qwen2ForCausalLM", "Qwen2Config", ["head_dim", "tie_word_embeddings"], []),
], ids=["llama", "mistral-null-head-dim", "qwen2"])
def test_llama_like_config_defaults(tmp_path, family, cls, cfg, drop, null):
    kv = {"num_key_value_heads": 4} if family == "llama" else {}
    tensors, config = saved(tmp_path, build(cls, cfg, **{**DECODER, **kv}))
    for k in drop:
        config.pop(k, None)
    for k in null:
        config[k] = None
    check_family_state(tmp_path / "edited", tensors, config, family=family)


def test_qwen3_default_head_dim(tmp_path):
    # Qwen3Config's head_dim defaults to 128 (not hidden // heads) when config.json leaves it out.
    tensors, config = saved(tmp_path, build("Qwen3ForCausalLM", "Qwen3Config", **DECODER, head_dim=128))
    del config["head_dim"]
    check_family_state(tmp_path / "edited", tensors, config, family="qwen3")


# ---------------------------------------------------------------- GPT-2 (Conv1D weights transposed)

GPT2 = {"vocab_size": 64, "n_embd": 32, "n_layer": 2, "n_head": 4, "n_positions": 16}


def test_gpt2(tmp_path):
    # Tied head, n_inner null (4 * n_embd), no cross-attention.
    check_family(tmp_path, build("GPT2LMHeadModel", "GPT2Config", **GPT2), family="gpt2")


def test_gpt2_untied_cross_attention(tmp_path):
    model = build("GPT2LMHeadModel", "GPT2Config", **GPT2, n_inner=40, tie_word_embeddings=False,
                  add_cross_attention=True)
    check_family(tmp_path, model, family="gpt2")


def test_gpt2_official_layout_without_the_transformer_prefix(tmp_path):
    # The original GPT-2 files (saved from GPT2Model) name tensors h.0.attn.c_attn.weight, wte.weight:
    # no "transformer." prefix. The spec's base_prefix reads them; the head is the tied embedding.
    lm = build("GPT2LMHeadModel", "GPT2Config", **GPT2)
    tensors, config = saved(tmp_path, lm.transformer)
    assert "wte.weight" in tensors and not any(n.startswith("transformer.") for n in tensors)
    config["architectures"] = ["GPT2LMHeadModel"]
    _state, report = check_family_state(tmp_path / "official", tensors, config, family="gpt2")
    assert "names without the 'transformer.' prefix" in str(report)
    assert report.tied == ["output.weight"]


def test_llama_base_model_checkpoint(tmp_path):
    # LlamaModel saves layers.0... rather than model.layers.0...; tied config, so no head is needed.
    lm = build("LlamaForCausalLM", "LlamaConfig", **DECODER, tie_word_embeddings=True)
    tensors, config = saved(tmp_path, lm.model)
    assert "layers.0.self_attn.q_proj.weight" in tensors
    check_family_state(tmp_path / "base", tensors, config, family="llama")


def test_gpt2_causal_mask_buffers_ignored(tmp_path):
    # Checkpoints saved by older transformers carry the causal-mask buffers attn.bias / masked_bias.
    tensors, config = saved(tmp_path, build("GPT2LMHeadModel", "GPT2Config", **GPT2))
    n = GPT2["n_positions"]
    for i in range(GPT2["n_layer"]):
        tensors[f"transformer.h.{i}.attn.bias"] = torch.tril(torch.ones(n, n)).view(1, 1, n, n)
        tensors[f"transformer.h.{i}.attn.masked_bias"] = torch.tensor(-1e4)
    _, report = check_family_state(tmp_path / "edited", tensors, config, family="gpt2")
    buffers = {f"transformer.h.{i}.attn.{b}" for i in range(GPT2["n_layer"]) for b in ("bias", "masked_bias")}
    assert buffers <= {entry["name"] for entry in report.ignored}, report.ignored


# ---------------------------------------------------------------- Mamba, Mamba-2

MAMBA = {"vocab_size": 64, "hidden_size": 32, "num_hidden_layers": 2, "state_size": 8}


def test_mamba_dt_rank_given(tmp_path):
    # dt_rank 5 (not ceil(40 / 16) = 3), expand 3, biases flipped, untied head.
    model = build("MambaForCausalLM", "MambaConfig", **{**MAMBA, "hidden_size": 40}, time_step_rank=5,
                  expand=3, use_bias=True, use_conv_bias=False, tie_word_embeddings=False)
    check_family(tmp_path, model, family="mamba")


def test_mamba_dt_rank_auto(tmp_path):
    # config.json as the original conversions write it: time_step_rank "auto", no intermediate_size.
    tensors, config = saved(tmp_path, build("MambaForCausalLM", "MambaConfig", **{**MAMBA, "hidden_size": 40}))
    assert config["time_step_rank"] == 3  # ceil(40 / 16), what transformers computed
    config["time_step_rank"] = "auto"
    del config["intermediate_size"]
    check_family_state(tmp_path / "edited", tensors, config, family="mamba")


MAMBA2 = {"vocab_size": 64, "hidden_size": 32, "num_hidden_layers": 2, "state_size": 8, "num_heads": 8, "head_dim": 8,
              "n_groups": 2}


@pytest.mark.parametrize("extra", [{}, {"use_bias": True, "use_conv_bias": False, "tie_word_embeddings": True}],
                         ids=["default", "bias-tied"])
def test_mamba2(tmp_path, extra):
    check_family(tmp_path, build("Mamba2ForCausalLM", "Mamba2Config", **MAMBA2, **extra), family="mamba2")


# ---------------------------------------------------------------- RWKV-4: transformers and BlinkDL naming

RWKV = {"vocab_size": 64, "hidden_size": 32, "num_hidden_layers": 2, "attention_hidden_size": 24, "intermediate_size": 40}


def test_rwkv(tmp_path):
    check_family(tmp_path, build("RwkvForCausalLM", "RwkvConfig", **RWKV, context_length=16), family="rwkv")


def rwkv4_original(vocab: int, hidden: int, layers: int, attn: int, ffn: int) -> dict[str, torch.Tensor]:
    """A checkpoint with BlinkDL RWKV-4's names and shapes (RWKV-LM `RWKV-v4neo/src/model.py`)."""
    shapes: dict[str, tuple[int, ...]] = {
        "emb.weight": (vocab, hidden),
        "blocks.0.ln0.weight": (hidden,), "blocks.0.ln0.bias": (hidden,),
        "ln_out.weight": (hidden,), "ln_out.bias": (hidden,),
        "head.weight": (vocab, hidden),
    }
    for i in range(layers):
        b = f"blocks.{i}."
        for ln in ("ln1", "ln2"):
            shapes[f"{b}{ln}.weight"] = (hidden,)
            shapes[f"{b}{ln}.bias"] = (hidden,)
        for mix in ("time_mix_k", "time_mix_v", "time_mix_r"):
            shapes[f"{b}att.{mix}"] = (1, 1, hidden)
        shapes[f"{b}att.time_decay"] = (attn,)
        shapes[f"{b}att.time_first"] = (attn,)
        for proj in ("key", "value", "receptance"):
            shapes[f"{b}att.{proj}.weight"] = (attn, hidden)
        shapes[f"{b}att.output.weight"] = (hidden, attn)
        for mix in ("time_mix_k", "time_mix_r"):
            shapes[f"{b}ffn.{mix}"] = (1, 1, hidden)
        shapes[f"{b}ffn.key.weight"] = (ffn, hidden)
        shapes[f"{b}ffn.receptance.weight"] = (hidden, hidden)
        shapes[f"{b}ffn.value.weight"] = (hidden, ffn)
    gen = torch.Generator().manual_seed(0)
    return {name: torch.randn(shape, generator=gen) for name, shape in shapes.items()}


def test_rwkv_original(tmp_path):
    # RWKV-4 has attention size = hidden and ffn size = 4 * hidden; the config.json written for the
    # checkpoint leaves both out, so the spec's defaults must give them.
    config = {"vocab_size": 64, "hidden_size": 32, "num_hidden_layers": 2}
    tensors = rwkv4_original(64, 32, 2, attn=32, ffn=128)
    state_orig, report = check_family_state(tmp_path / "orig", tensors, config, family="rwkv_original")
    assert report.family == "rwkv_original"

    # Same native names and shapes as the transformers naming for the same config.
    model = build("RwkvForCausalLM", "RwkvConfig", **config, context_length=16)
    state_hf, _ = check_family(tmp_path / "hf", model, family="rwkv")
    assert {k: tuple(v.shape) for k, v in state_orig.items()} == {k: tuple(v.shape) for k, v in state_hf.items()}

    # The spec's own ops, spot-checked: the [1, 1, hidden] time-mix is reshaped, the rest is renamed.
    assert torch.equal(torch.from_dlpack(state_orig["blk.1.attn_mix_v"]), tensors["blocks.1.att.time_mix_v"].view(-1))
    assert torch.equal(torch.from_dlpack(state_orig["embd_norm.bias"]), tensors["blocks.0.ln0.bias"])
