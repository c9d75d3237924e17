"""timm's VisionTransformer and OpenGVLab's VideoMAE v2, native, against transformers.

Neither library runs here (timm imports torchvision; OpenGVLab's model is remote code), so each
reference is a tiny random transformers model (fixed seeds, every parameter redrawn, layer scales
around 1 but not 1, eager attention, float32). Its weights are renamed to the other library's
names by the inverse mapping written below, independently of the family specs (timm's fused
qkv = cat(q, k, v); OpenGVLab's qkv weight the same, q_bias and v_bias, no k bias, so the
transformers model's k bias is set to zero), saved as that library saves them, and loaded by
hfport.models.from_pretrained. hfport.parity.compare then puts every row (the embeddings, each
block, last_hidden_state, the pooled features, the logits) within relative L2 1e-5.

Where the library computes what transformers' model does not (timm: no class token, registers,
positions left off the prefix tokens, norm_pre, mean pooling with fc_norm, its position
resample; OpenGVLab: learned positions, layer scale, its pooled output), the reference runs
transformers' own blocks (ViTLayer, VideoMAELayer, or Dinov2Layer for layer scale) between
embeddings and a tail written plainly in torch below from the library's forward. For the plain
configurations that reference is first checked against the transformers model's full forward.
"""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import hfport.models
import hfport.parity
import pytest
import torch
import torch.nn.functional as F
import transformers
from hfport.errors import ArgumentError, ConfigError
from model_testing import redraw, relative_l2
from safetensors.torch import load_file, save_file

transformers.utils.logging.set_verbosity_error()

TOLERANCE = 1e-5
TIMM_EPS = 1e-6  # timm's LayerNorm


def _norms_around_one(model: torch.nn.Module, seed: int) -> None:
    generator = torch.Generator().manual_seed(seed + 1)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith("lambda1"):  # layer scale: around 1, never 1
                p.copy_(1.0 + 0.3 * torch.randn(p.shape, generator=generator))


def _random(shape: list[int], generator: torch.Generator, mean: float = 0.0) -> torch.Tensor:
    return mean + torch.randn(shape, generator=generator)


class Reference(torch.nn.Module):
    """What hfport.parity.compare needs of a reference: forward(pixel_values,
    output_hidden_states=True) returning hidden_states and the outputs, by transformers' names."""

    def __init__(self, run: Any) -> None:
        super().__init__()
        self.run = run

    def forward(self, pixel_values: torch.Tensor, output_hidden_states: bool = True) -> Any:
        return self.run(pixel_values)


def check_rows(native: hfport.models.Model, reference: Reference, x: torch.Tensor,
               **options: Any) -> hfport.parity.ParityReport:
    report = hfport.parity.compare(native, reference, x, **options)
    assert report.ok, str(report)
    assert all(row.rel_l2 < TOLERANCE for row in report.rows), str(report)
    return report


# ---------------------------------------------------------------- timm VisionTransformer

TIMM_SIZES = dict(embed_dim=32, depth=2, num_heads=4, patch_size=8, in_chans=3)

TIMM_CASES: dict[str, dict[str, Any]] = {
    # ViT as timm writes it: class token with a position row, token pooling, norm, head; a 5 x 3
    # grid (odd, not square).
    "token_head_nonsquare": dict(img_size=[40, 24], num_classes=5),
    # registers with positions, layer scale, no qkv bias, mean pooling then fc_norm, head.
    "registers_layer_scale_avg": dict(img_size=[24, 40], reg_tokens=3, init_values=1e-5,
                                      qkv_bias=False, global_pool="avg", num_classes=4),
    # no class token, registers without positions (no_embed_class), norm_pre (and so no patch
    # bias), mean over every token with the final norm before it, no head, any image size.
    "no_class_token_pre_norm_dynamic": dict(
        img_size=[32, 32], class_token=False, reg_tokens=2, no_embed_class=True, pre_norm=True,
        global_pool="avg", fc_norm=False, pool_include_prefix=True, num_classes=0,
        dynamic_img_size=True),
    # neither norm nor fc_norm, the tanh GELU, layer scale, a 3 x 3 grid; img_size as an int,
    # as timm's own default (224) is written.
    "no_final_norm_gelu_tanh": dict(img_size=24, final_norm=False, num_classes=3,
                                    init_values=0.1, act_layer="gelu_tanh"),
}


def _timm_transformers(args: dict[str, Any], seed: int) -> tuple[torch.nn.Module, Any, Any]:
    """The transformers model whose blocks the timm checkpoint is made of: (model, its embeddings
    module, its list of blocks). Layer scale needs Dinov2Layer; otherwise ViT."""
    d = args["embed_dim"]
    common = dict(hidden_size=d, num_hidden_layers=args["depth"],
                  num_attention_heads=args["num_heads"], image_size=args["img_size"],
                  patch_size=args["patch_size"], num_channels=args["in_chans"],
                  qkv_bias=args.get("qkv_bias", True), layer_norm_eps=TIMM_EPS,
                  hidden_act="gelu_pytorch_tanh" if args.get("act_layer") == "gelu_tanh" else "gelu")
    if args.get("init_values"):
        config: Any = transformers.Dinov2Config(**common, mlp_ratio=4)
        cls: Any = transformers.Dinov2Model
    else:
        config = transformers.ViTConfig(**common, intermediate_size=4 * d,
                                        num_labels=max(args["num_classes"], 1))
        cls = (transformers.ViTForImageClassification if args["num_classes"] > 0
               else transformers.ViTModel)
    config._attn_implementation = "eager"
    torch.manual_seed(seed)
    model = cls(config).eval()
    redraw(model, seed)
    _norms_around_one(model, seed)
    base = getattr(model, "vit", model)
    layers = base.encoder.layer if hasattr(base, "encoder") else base.layers
    return model, base.embeddings, layers


def _timm_block(state: dict[str, torch.Tensor], p: dict[str, torch.Tensor], i: int,
                dinov2: bool, qkv_bias: bool) -> None:
    """Block i of the transformers model under timm's names (the inverse of timm_vit.json, by
    hand)."""
    t = f"blocks.{i}."
    if dinov2:
        s = f"encoder.layer.{i}."
        names = {"norm1": "norm1", "attn.proj": "attention.output.dense", "norm2": "norm2",
                 "mlp.fc1": "mlp.fc1", "mlp.fc2": "mlp.fc2"}
        qkv = [f"{s}attention.attention.{w}" for w in ("query", "key", "value")]
        state[t + "ls1.gamma"] = p[s + "layer_scale1.lambda1"]
        state[t + "ls2.gamma"] = p[s + "layer_scale2.lambda1"]
    else:
        s = f"layers.{i}."
        names = {"norm1": "layernorm_before", "attn.proj": "attention.o_proj",
                 "norm2": "layernorm_after", "mlp.fc1": "mlp.fc1", "mlp.fc2": "mlp.fc2"}
        qkv = [f"{s}attention.{w}_proj" for w in "qkv"]
    for timm_name, name in names.items():
        for kind in ("weight", "bias"):
            state[f"{t}{timm_name}.{kind}"] = p[f"{s}{name}.{kind}"]
    state[t + "attn.qkv.weight"] = torch.cat([p[n + ".weight"] for n in qkv])
    if qkv_bias:
        state[t + "attn.qkv.bias"] = torch.cat([p[n + ".bias"] for n in qkv])


def timm_resample(pos: torch.Tensor, new: tuple[int, int], old: tuple[int, int],
                  num_prefix: int) -> torch.Tensor:
    """timm's resample_abs_pos_embed at its defaults (bicubic, antialias on), written plainly."""
    if new[0] * new[1] + num_prefix == pos.shape[1] and new[0] == new[1]:
        return pos
    prefix, grid = pos[:, :num_prefix], pos[:, num_prefix:]
    grid = grid.reshape(1, old[0], old[1], -1).permute(0, 3, 1, 2)
    grid = F.interpolate(grid, size=new, mode="bicubic", antialias=True)
    return torch.cat([prefix, grid.permute(0, 2, 3, 1).reshape(1, new[0] * new[1], -1)], dim=1)


def image_hw(args: dict[str, Any]) -> tuple[int, int]:
    """timm's img_size: an int n (n x n) or [height, width]."""
    size = args["img_size"]
    return (size, size) if isinstance(size, int) else (size[0], size[1])


def build_timm(tmp_path: Path, case: str, seed: int = 0
               ) -> tuple[hfport.models.Model, Reference, torch.nn.Module, dict[str, Any]]:
    """(native model, reference, the transformers model, timm's arguments) for TIMM_CASES[case],
    the checkpoint written as timm writes it (timm names; config.json with the arguments at the
    top level too, where the spec reads them)."""
    args = {**TIMM_SIZES, **TIMM_CASES[case]}
    model, embeddings, layers = _timm_transformers(args, seed)
    p = dict(model.named_parameters())
    p = {k.removeprefix("vit."): v.detach() for k, v in p.items()}
    generator = torch.Generator().manual_seed(seed + 2)
    d, patch = args["embed_dim"], args["patch_size"]
    class_token, regs = args.get("class_token", True), args.get("reg_tokens", 0)
    no_embed_class, pre_norm = args.get("no_embed_class", False), args.get("pre_norm", False)
    global_pool = args.get("global_pool", "token")
    fc_norm = args.get("fc_norm")
    fc_norm = global_pool == "avg" if fc_norm is None else fc_norm
    final_norm, classes = args.get("final_norm", True), args["num_classes"]
    grid = (image_hw(args)[0] // patch, image_hw(args)[1] // patch)
    prefix_count = int(class_token) + regs

    with torch.no_grad():
        if pre_norm:  # timm's patch embedding has no bias then: zero it in the reference
            embeddings.patch_embeddings.projection.bias.zero_()
    state: dict[str, torch.Tensor] = {
        "patch_embed.proj.weight": p["embeddings.patch_embeddings.projection.weight"]}
    if not pre_norm:
        state["patch_embed.proj.bias"] = p["embeddings.patch_embeddings.projection.bias"]
    if class_token:
        state["cls_token"] = p["embeddings.cls_token"]
    if regs:
        state["reg_token"] = _random([1, regs, d], generator)
    pos_rows = grid[0] * grid[1] + (0 if no_embed_class else prefix_count)
    if (pos_rows, class_token, regs) == (p["embeddings.position_embeddings"].shape[1], True, 0):
        state["pos_embed"] = p["embeddings.position_embeddings"]  # ViT's own table
    else:
        state["pos_embed"] = _random([1, pos_rows, d], generator)
    if pre_norm:
        state["norm_pre.weight"] = _random([d], generator, 1.0) * 0.2 + 0.8
        state["norm_pre.bias"] = 0.2 * _random([d], generator)
    dinov2 = bool(args.get("init_values"))
    for i in range(args["depth"]):
        _timm_block(state, p, i, dinov2, args.get("qkv_bias", True))
    if final_norm:
        norm = "fc_norm" if fc_norm else "norm"
        state[f"{norm}.weight"], state[f"{norm}.bias"] = p["layernorm.weight"], p["layernorm.bias"]
    if classes > 0:
        if "classifier.weight" in p:
            state["head.weight"], state["head.bias"] = p["classifier.weight"], p["classifier.bias"]
        else:
            state["head.weight"] = _random([classes, d], generator) / d ** 0.5
            state["head.bias"] = 0.2 * _random([classes], generator)

    folder = tmp_path / case
    folder.mkdir()
    save_file({k: v.contiguous().clone() for k, v in state.items()}, folder / "model.safetensors")
    config = {"architecture": "vit_tiny_patch16_224", "num_classes": classes, "num_features": d,
              "global_pool": global_pool, "model_args": args, **args}
    (folder / "config.json").write_text(json.dumps(config))

    def run(x: torch.Tensor) -> Any:
        """timm's forward_features and forward_head, written plainly around transformers' blocks."""
        with torch.no_grad():
            patches = embeddings.patch_embeddings.projection(x).flatten(2).transpose(1, 2)
            batch = x.shape[0]
            prefix = []
            if class_token:
                prefix.append(state["cls_token"].expand(batch, -1, -1))
            if regs:
                prefix.append(state["reg_token"].expand(batch, -1, -1))
            new = (x.shape[2] // patch, x.shape[3] // patch)
            pos = timm_resample(state["pos_embed"], new, grid, 0 if no_embed_class else prefix_count)
            if no_embed_class:
                h = torch.cat([*prefix, patches + pos], dim=1)
            else:
                h = torch.cat([*prefix, patches], dim=1) + pos
            if pre_norm:
                h = F.layer_norm(h, (d,), state["norm_pre.weight"], state["norm_pre.bias"], TIMM_EPS)
            hidden = [h]
            for layer in layers:
                h = layer(h)
                hidden.append(h)
            last = h
            if "norm.weight" in state:
                last = F.layer_norm(h, (d,), state["norm.weight"], state["norm.bias"], TIMM_EPS)
            if global_pool == "token":
                pooled = last[:, 0]
            else:
                pooled = last[:, 0 if args.get("pool_include_prefix") else prefix_count:].mean(1)
            if "fc_norm.weight" in state:
                pooled = F.layer_norm(pooled, (d,), state["fc_norm.weight"], state["fc_norm.bias"],
                                      TIMM_EPS)
            logits = F.linear(pooled, state["head.weight"], state["head.bias"]) if classes else None
        return SimpleNamespace(hidden_states=tuple(hidden), last_hidden_state=last,
                               pooler_output=pooled, logits=logits)

    native = hfport.models.from_pretrained(folder, family="timm_vit")
    return native, Reference(run), model, args


def pixels(batch: int, height: int, width: int, channels: int = 3, seed: int = 3) -> torch.Tensor:
    return torch.randn((batch, channels, height, width),
                       generator=torch.Generator().manual_seed(seed))


@pytest.mark.parametrize("case", sorted(TIMM_CASES))
def test_timm_vit_matches_transformers_blocks(tmp_path: Path, case: str) -> None:
    native, reference, _, args = build_timm(tmp_path, case)
    assert native.family == "timm_vit" and native.main_input_name == "pixel_values"
    x = pixels(2, *image_hw(args))
    report = check_rows(native, reference, x)
    names = [row.name for row in report.rows]
    assert names[:4] == ["embeddings", "layers.0", "layers.1", "last_hidden_state"]
    assert names[4:] == ["pooler_output"] + (["logits"] if args["num_classes"] else [])
    prefix = int(args.get("class_token", True)) + args.get("reg_tokens", 0)
    grid = (image_hw(args)[0] // 8) * (image_hw(args)[1] // 8)
    assert report.rows[0].shape == (2, prefix + grid, 32)


def assert_same_outputs(reference: Any, model: Any, x: torch.Tensor) -> None:
    """The plainly written reference gives transformers' hidden states and logits."""
    with torch.no_grad():
        want = model(pixel_values=x, output_hidden_states=True)
    got = reference(x)
    for a, b in zip(got.hidden_states, want.hidden_states, strict=True):
        assert relative_l2(a, b) < 1e-6
    assert relative_l2(got.logits, want.logits) < 1e-6


def test_timm_reference_is_vit_for_the_vit_configuration(tmp_path: Path) -> None:
    # The plainly written reference is transformers' ViTForImageClassification where timm's
    # arguments describe that model.
    _, reference, model, args = build_timm(tmp_path, "token_head_nonsquare")
    assert_same_outputs(reference, model, pixels(2, *image_hw(args)))


def test_timm_vit_resamples_positions_as_timm(tmp_path: Path) -> None:
    native, reference, _, _ = build_timm(tmp_path, "no_class_token_pre_norm_dynamic")
    # dynamic_img_size: any size that tiles; up (5 x 7), down (2 x 3, where antialias counts) and
    # the table's own square grid (kept as it is).
    for height, width in ((40, 56), (16, 24), (32, 32)):
        check_rows(native, reference, pixels(1, height, width))
    # Without dynamic_img_size timm takes img_size only; interpolate_pos_encoding asks for the
    # same resample (timm's set_input_size), here of a table with a class row and registers.
    native, reference, _, _ = build_timm(tmp_path, "registers_layer_scale_avg")
    check_rows(native, reference, pixels(2, 32, 16), interpolate_pos_encoding=True)
    with pytest.raises(ArgumentError, match=r"native timm_vit model: pixel_values must be "
                       r"\[batch, 3, 24, 40\] \(config.json's img_size \[24,40\]\), got "
                       r"\[2, 3, 32, 16\]; pass interpolate_pos_encoding=True"):
        native(pixel_values=pixels(2, 32, 16))


def test_timm_vit_bad_inputs(tmp_path: Path) -> None:
    native, _, _, _ = build_timm(tmp_path, "no_class_token_pre_norm_dynamic")
    with pytest.raises(ArgumentError, match=r"native timm_vit model: pixel_values must be "
                       r"\[batch, 3, height, width\] \(num_channels 3, batch >= 1\), got "
                       r"\[1, 4, 32, 32\]"):
        native(pixel_values=pixels(1, 32, 32, channels=4))
    with pytest.raises(ArgumentError, match=r"pixel_values must be at least one patch \(8x8\) "
                       r"high and wide, got \[1, 3, 32, 7\]"):
        native(pixel_values=pixels(1, 32, 7))
    with pytest.raises(ArgumentError, match=r"pixel_values must tile into whole patches of 8x8 "
                       r"\(timm refuses the rest without dynamic_img_pad\), got \[1, 3, 36, 32\]"):
        native(pixel_values=pixels(1, 36, 32))
    with pytest.raises(ArgumentError, match="bool_masked_pos needs the checkpoint's mask token"):
        native(pixel_values=pixels(1, 32, 32), bool_masked_pos=torch.zeros(1, 16, dtype=torch.bool))


def _rewrite(folder: Path, changes: dict[str, Any], extra: dict[str, torch.Tensor] | None = None
             ) -> None:
    config = json.loads((folder / "config.json").read_text())
    config.update(changes)
    (folder / "config.json").write_text(json.dumps(config))
    if extra:
        state = load_file(folder / "model.safetensors")
        save_file({**state, **extra}, folder / "model.safetensors")


@pytest.mark.parametrize("changes, extra, message", [
    ({"qk_norm": True}, "qk_norm", r"qk_norm true is not supported \(false\)"),
    ({"global_pool": "map"}, None, r"global_pool \"map\" is not supported"),
    ({"global_pool": "", "fc_norm": False}, None,
     r"global_pool \"\" is not supported \(a head \(num_classes > 0\) needs"),
    ({"act_layer": "quick_gelu"}, None, (r"act_layer \"quick_gelu\" is not supported \(gelu, "
                                        r"gelu_tanh\)")),
    ({"dynamic_img_pad": True}, None, r"dynamic_img_pad true is not supported"),
])
def test_timm_vit_refuses_what_it_cannot_compute(tmp_path: Path, changes: dict[str, Any],
                                                  extra: str | None, message: str) -> None:
    build_timm(tmp_path, "token_head_nonsquare")
    folder = tmp_path / "token_head_nonsquare"
    tensors = None
    if extra == "qk_norm":  # the q/k norms the spec then requires
        tensors = {f"blocks.{i}.attn.{n}.{k}": torch.ones(8) for i in range(2)
                   for n in ("q_norm", "k_norm") for k in ("weight", "bias")}
    _rewrite(folder, changes, tensors)
    with pytest.raises(ConfigError, match="native timm_vit model: config.json's " + message):
        hfport.models.from_pretrained(folder, family="timm_vit")


# ---------------------------------------------------------------- OpenGVLab VideoMAE v2

VIDEO_SIZES = dict(embed_dim=32, depth=2, num_heads=4, mlp_ratio=4, patch_size=8, in_chans=3,
                   tubelet_size=2)

OPENGVLAB_CASES: dict[str, dict[str, Any]] = {
    # what VideoMAEForVideoClassification computes (its fc_norm's eps is 1e-5, so all are here).
    "mean_pooling_head": dict(img_size=16, num_frames=4, qkv_bias=True, use_mean_pooling=True,
                              num_classes=3, layer_norm_eps=1e-5),
    # learned positions, layer scale, the final norm and the first token; 3 x 3 patches of 3
    # tubelets.
    "learned_positions_layer_scale": dict(img_size=24, num_frames=6, qkv_bias=True,
                                          use_mean_pooling=False, use_learnable_pos_emb=True,
                                          init_values=0.1, num_classes=0),
    "no_qkv_bias_head": dict(img_size=16, num_frames=4, qkv_bias=False, use_mean_pooling=True,
                             num_classes=2),
}


def opengvlab_config(model_config: dict[str, Any]) -> dict[str, Any]:
    """config.json as OpenGVLab's VideoMAEv2 Hugging Face repositories write it."""
    defaults = {"num_classes": 0, "qk_scale": None, "drop_rate": 0.0, "attn_drop_rate": 0.0,
                "drop_path_rate": 0.0, "norm_layer": "nn.LayerNorm", "layer_norm_eps": 1e-6,
                "init_values": 0.0, "use_learnable_pos_emb": False, "use_mean_pooling": True,
                "with_cp": False, "cos_attn": False}
    return {"model_type": "VideoMAEv2_Base", "architectures": ["VideoMAEv2_Base"],
            "auto_map": {"AutoModel": "modeling_videomaev2.VideoMAEv2",
                         "AutoConfig": "modeling_config.VideoMAEv2Config"},
            "model_config": {**defaults, **model_config}}


def build_opengvlab(tmp_path: Path, case: str, seed: int = 0
                    ) -> tuple[hfport.models.Model, Reference, torch.nn.Module, dict[str, Any]]:
    m = opengvlab_config({**VIDEO_SIZES, **OPENGVLAB_CASES[case]})["model_config"]
    d, eps, classes = m["embed_dim"], m["layer_norm_eps"], m["num_classes"]
    config = transformers.VideoMAEConfig(
        hidden_size=d, num_hidden_layers=m["depth"], num_attention_heads=m["num_heads"],
        intermediate_size=d * m["mlp_ratio"], image_size=m["img_size"],
        patch_size=m["patch_size"], num_channels=m["in_chans"], num_frames=m["num_frames"],
        tubelet_size=m["tubelet_size"], qkv_bias=m["qkv_bias"], layer_norm_eps=eps,
        use_mean_pooling=m["use_mean_pooling"], num_labels=max(classes, 1))
    config._attn_implementation = "eager"
    torch.manual_seed(seed)
    cls = transformers.VideoMAEForVideoClassification if classes else transformers.VideoMAEModel
    model = cls(config).eval()
    redraw(model, seed)
    base = getattr(model, "videomae", model)
    layer_scale = m["init_values"] > 0
    if layer_scale:  # OpenGVLab's gamma_1 / gamma_2: Dinov2Layer's layer scale
        blocks_config = transformers.Dinov2Config(
            hidden_size=d, num_hidden_layers=m["depth"], num_attention_heads=m["num_heads"],
            mlp_ratio=m["mlp_ratio"], qkv_bias=m["qkv_bias"], layer_norm_eps=eps,
            image_size=m["img_size"], patch_size=m["patch_size"])
        blocks_config._attn_implementation = "eager"
        blocks_model: torch.nn.Module = transformers.Dinov2Model(blocks_config).eval()
        redraw(blocks_model, seed + 5)
        _norms_around_one(blocks_model, seed + 5)
    else:
        blocks_model = base
    layers = blocks_model.encoder.layer
    with torch.no_grad():  # OpenGVLab has no k bias: the reference's is zero
        for layer in layers:
            attention = layer.attention.attention
            if attention.key.bias is not None:
                attention.key.bias.zero_()
    p = {k: v.detach() for k, v in blocks_model.named_parameters()}
    generator = torch.Generator().manual_seed(seed + 2)
    projection = base.embeddings.patch_embeddings.projection
    state = {"model.patch_embed.proj.weight": projection.weight.detach(),
             "model.patch_embed.proj.bias": projection.bias.detach()}
    tokens = (m["img_size"] // m["patch_size"]) ** 2 * (m["num_frames"] // m["tubelet_size"])
    if m["use_learnable_pos_emb"]:
        state["model.pos_embed"] = _random([1, tokens, d], generator)
    for i in range(m["depth"]):
        t, s = f"model.blocks.{i}.", f"encoder.layer.{i}."
        if layer_scale:
            names = {"norm1": "norm1", "norm2": "norm2", "mlp.fc1": "mlp.fc1", "mlp.fc2": "mlp.fc2"}
            state[t + "gamma_1"] = p[s + "layer_scale1.lambda1"]
            state[t + "gamma_2"] = p[s + "layer_scale2.lambda1"]
        else:
            names = {"norm1": "layernorm_before", "norm2": "layernorm_after",
                     "mlp.fc1": "intermediate.dense", "mlp.fc2": "output.dense"}
        names["attn.proj"] = "attention.output.dense"
        for og, name in names.items():
            for kind in ("weight", "bias"):
                state[f"{t}{og}.{kind}"] = p[f"{s}{name}.{kind}"]
        qkv = [f"{s}attention.attention.{w}" for w in ("query", "key", "value")]
        state[t + "attn.qkv.weight"] = torch.cat([p[n + ".weight"] for n in qkv])
        if m["qkv_bias"]:
            state[t + "attn.q_bias"] = p[qkv[0] + ".bias"]
            state[t + "attn.v_bias"] = p[qkv[2] + ".bias"]
    mp = {k.removeprefix("videomae."): v.detach() for k, v in model.named_parameters()}
    norm = "fc_norm" if m["use_mean_pooling"] else "norm"
    for kind in ("weight", "bias"):
        own = {"fc_norm": f"fc_norm.{kind}", "norm": f"layernorm.{kind}"}[norm]
        state[f"model.{norm}.{kind}"] = mp.get(own, 1.0 + 0.2 * _random([d], generator)
                                               if kind == "weight" else 0.2 * _random([d], generator))
    if classes:
        state["model.head.weight"], state["model.head.bias"] = mp["classifier.weight"], \
            mp["classifier.bias"]

    folder = tmp_path / case
    folder.mkdir()
    save_file({k: v.contiguous().clone() for k, v in state.items()}, folder / "model.safetensors")
    (folder / "config.json").write_text(json.dumps(opengvlab_config(m)))

    def run(x: torch.Tensor) -> Any:
        """OpenGVLab's forward_features and head, written plainly around transformers' blocks;
        the video in the image processor's layout [batch, frames, channels, H, W]."""
        with torch.no_grad():
            h = base.embeddings.patch_embeddings(x)
            h = h + (state["model.pos_embed"] if m["use_learnable_pos_emb"]
                     else base.embeddings.position_embeddings)
            hidden = [h]
            for layer in layers:
                h = layer(h)
                hidden.append(h)
            if m["use_mean_pooling"]:
                last = h
                pooled = F.layer_norm(h.mean(1), (d,), state["model.fc_norm.weight"],
                                      state["model.fc_norm.bias"], eps)
            else:
                last = F.layer_norm(h, (d,), state["model.norm.weight"], state["model.norm.bias"],
                                    eps)
                pooled = last[:, 0]
            logits = (F.linear(pooled, state["model.head.weight"], state["model.head.bias"])
                      if classes else None)
        return SimpleNamespace(hidden_states=tuple(hidden), last_hidden_state=last,
                               pooler_output=pooled, logits=logits)

    native = hfport.models.from_pretrained(folder)
    return native, Reference(run), model, m


def video(batch: int, frames: int, size: int, channels: int = 3, seed: int = 4) -> torch.Tensor:
    return torch.randn((batch, frames, channels, size, size),
                       generator=torch.Generator().manual_seed(seed))


@pytest.mark.parametrize("case", sorted(OPENGVLAB_CASES))
def test_videomae_opengvlab_matches_transformers_blocks(tmp_path: Path, case: str) -> None:
    native, reference, _, m = build_opengvlab(tmp_path, case)
    assert native.family == "videomae_opengvlab" and native.main_input_name == "pixel_values"
    report = check_rows(native, reference, video(2, m["num_frames"], m["img_size"]))
    names = [row.name for row in report.rows]
    assert names == ["embeddings", "layers.0", "layers.1", "last_hidden_state", "pooler_output"] \
        + (["logits"] if m["num_classes"] else [])


def test_opengvlab_reference_is_videomae_for_the_plain_configuration(tmp_path: Path) -> None:
    _, reference, model, m = build_opengvlab(tmp_path, "mean_pooling_head")
    assert_same_outputs(reference, model, video(2, m["num_frames"], m["img_size"]))


def test_videomae_opengvlab_bad_videos(tmp_path: Path) -> None:
    native, _, _, _ = build_opengvlab(tmp_path, "learned_positions_layer_scale")
    who = "native videomae_opengvlab model: "
    with pytest.raises(ArgumentError, match=who + r"pixel_values has 5 frames, not a multiple of "
                       r"model_config.tubelet_size 2: \[1, 5, 3, 24, 24\]"):
        native(pixel_values=video(1, 5, 24))
    with pytest.raises(ArgumentError, match=r"pixel_values must be \[batch, 6, 3, 24, 24\] "
                       r"\(config.json's model_config.num_frames 6: the learned positions are for "
                       r"3 tubelets\), got \[1, 4, 3, 24, 24\]"):
        native(pixel_values=video(1, 4, 24))
    with pytest.raises(ArgumentError, match=r"= \[batch, 6, 3, 24, 24\] \(config.json's "
                       r"model_config.in_chans and img_size; batch >= 1\), got \[1, 6, 1, 24, 24\]"):
        native(pixel_values=video(1, 6, 24, channels=1))
    with pytest.raises(ArgumentError, match=r"got \[1, 6, 3, 16, 16\]"):
        native(pixel_values=video(1, 6, 16))
    with pytest.raises(ArgumentError, match="interpolate_pos_encoding is not supported: .* "
                       "OpenGVLab's VisionTransformer takes no other size"):
        native(pixel_values=video(1, 6, 24), interpolate_pos_encoding=True)


def test_videomae_opengvlab_refuses_cosine_attention(tmp_path: Path) -> None:
    build_opengvlab(tmp_path, "no_qkv_bias_head")
    folder = tmp_path / "no_qkv_bias_head"
    config = json.loads((folder / "config.json").read_text())
    config["model_config"]["cos_attn"] = True
    (folder / "config.json").write_text(json.dumps(config))
    with pytest.raises(ConfigError, match=r"native videomae_opengvlab model: config.json's "
                       r"model_config.cos_attn true is not supported \(false\)"):
        hfport.models.from_pretrained(folder)


# ---------------------------------------------------------------- hfport parity DIR

@pytest.mark.parametrize("builder, case, args, message", [
    (build_timm, "token_head_nonsquare", ["--family", "timm_vit"],
     ("parity has no reference for a timm_vit checkpoint: its reference is timm's "
     "VisionTransformer (the timm library), which is not installed")),
    (build_opengvlab, "no_qkv_bias_head", [],
     ("parity has no reference for a videomae_opengvlab checkpoint: its reference is OpenGVLab's "
     "remote code (modeling_videomaev2.py, trust_remote_code), which hfport does not run")),
])
def test_cli_parity_names_the_missing_reference(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                builder: Any, case: str, args: list[str],
                                                message: str) -> None:
    from hfport.cli import main

    if builder is build_timm and importlib.util.find_spec("timm") is not None:
        message = message.replace("is not installed", "is installed")
    builder(tmp_path, case)
    assert main(["parity", str(tmp_path / case), *args]) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"hfport: ArgumentError: {message}")
    assert "\n" not in err
    with pytest.raises(ArgumentError, match="hfport.parity.compare"):
        hfport.parity.compare_checkpoint(tmp_path / case, family="timm_vit" if args else None)
