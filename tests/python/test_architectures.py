"""docs/families.md's architecture table, checked cell by cell.

Each row names a family, a transformers architecture, the head a load selects, whether it loads
and whether it runs natively. For every row a tiny random model of that architecture is saved with
`save_pretrained` and:
- loads `strict`: a strict load selects the row's head and leaves no head tensor unloaded;
  `base, head reported`: the base model loads strict and the head's tensors are listed apart;
  `no`: a strict load raises LoadError;
- native `yes`: hfport.models.from_pretrained builds it and hfport.parity.compare_checkpoint (the
  transformers class config.json names, float32, every layer) is within tolerance, on token ids,
  or for the vision families on pixel values of config.json's image size and again of another
  (oblong) size with the positions resized (VideoMAE: on videos of its config's frames and size,
  the only ones its fixed positions fit); `base`: the base model builds and matches transformers'
  base model (heads="none"); `no`: from_pretrained raises an hfport error.
A last test checks that the table lists every architecture transformers has for each family it
names (the AutoModel mappings), so a new task class cannot go unmentioned.
"""

from __future__ import annotations

import re
from pathlib import Path

import hfport
import pytest
import torch
from hfport.errors import Error, LoadError

transformers = pytest.importorskip("transformers")
transformers.logging.set_verbosity_error()

DOCS = Path(__file__).resolve().parents[2] / "docs"

DECODER = dict(vocab_size=64, hidden_size=32, intermediate_size=48, num_hidden_layers=2,
               num_attention_heads=4, num_key_value_heads=2, pad_token_id=0)
ENCODER = dict(vocab_size=64, hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
               intermediate_size=48, max_position_embeddings=40, pad_token_id=1)
VISION = dict(hidden_size=32, num_hidden_layers=2, num_attention_heads=4, image_size=32,
              patch_size=8, intermediate_size=48)

# model_type -> (config class, sizes) of a tiny model; classification heads add num_labels=3.
TINY = {
    "llama": ("LlamaConfig", DECODER),
    "mistral": ("MistralConfig", DECODER),
    "qwen2": ("Qwen2Config", DECODER),
    "qwen3": ("Qwen3Config", {**DECODER, "head_dim": 8}),
    "gpt2": ("GPT2Config", dict(vocab_size=64, n_embd=32, n_layer=2, n_head=4, n_positions=32,
                                pad_token_id=0)),
    "mamba": ("MambaConfig", dict(vocab_size=64, hidden_size=32, num_hidden_layers=2,
                                  state_size=8)),
    "mamba2": ("Mamba2Config", dict(vocab_size=64, hidden_size=32, num_hidden_layers=2,
                                    state_size=8, num_heads=8, head_dim=8, n_groups=1,
                                    expand=2)),
    "rwkv": ("RwkvConfig", dict(vocab_size=64, hidden_size=32, num_hidden_layers=2,
                                attention_hidden_size=24, intermediate_size=40,
                                context_length=16)),
    "whisper": ("WhisperConfig", dict(vocab_size=96, num_mel_bins=8, d_model=32,
                                      encoder_layers=2, decoder_layers=2,
                                      encoder_attention_heads=2, decoder_attention_heads=2,
                                      encoder_ffn_dim=64, decoder_ffn_dim=48,
                                      max_source_positions=16, max_target_positions=20,
                                      pad_token_id=0, bos_token_id=1, eos_token_id=2,
                                      decoder_start_token_id=1)),
    "bert": ("BertConfig", ENCODER),
    "roberta": ("RobertaConfig", ENCODER),
    "albert": ("AlbertConfig", {**ENCODER, "embedding_size": 16}),
    "vit": ("ViTConfig", VISION),
    "dinov2": ("Dinov2Config", VISION),
    "dinov2_with_registers": ("Dinov2WithRegistersConfig", VISION),
    "dinov3_vit": ("DINOv3ViTConfig", VISION),
    "videomae": ("VideoMAEConfig", dict(VISION, image_size=16, num_frames=4, tubelet_size=2)),
    "wav2vec2-bert": ("Wav2Vec2BertConfig", dict(hidden_size=32, num_hidden_layers=2,
                                                 num_attention_heads=2, intermediate_size=48,
                                                 feature_projection_input_dim=16,
                                                 conv_depthwise_kernel_size=5,
                                                 left_max_position_embeddings=4,
                                                 right_max_position_embeddings=2)),
    "clap": ("ClapConfig", dict(
        text_config={"vocab_size": 100, "hidden_size": 32, "num_hidden_layers": 2,
                     "num_attention_heads": 2, "intermediate_size": 48,
                     "max_position_embeddings": 40, "projection_dim": 16},
        audio_config={"window_size": 2, "num_mel_bins": 8, "spec_size": 16, "patch_size": 4,
                      "patch_stride": 4, "hidden_size": 16, "patch_embeds_hidden_size": 8,
                      "depths": [2, 1], "num_attention_heads": [2, 4], "projection_dim": 16,
                      "num_hidden_layers": 2},
        projection_dim=16)),
}
# The family spec of each model_type, where the names differ.
FAMILY_OF = {"dinov3_vit": "dinov3"}
MODEL_TYPE_OF = {family: model_type for model_type, family in FAMILY_OF.items()}

# The AutoModel mappings whose classes the table must cover.
MAPPINGS = ("MODEL_MAPPING_NAMES", "MODEL_FOR_CAUSAL_LM_MAPPING_NAMES",
            "MODEL_FOR_MASKED_LM_MAPPING_NAMES", "MODEL_FOR_SEQUENCE_CLASSIFICATION_MAPPING_NAMES",
            "MODEL_FOR_TOKEN_CLASSIFICATION_MAPPING_NAMES",
            "MODEL_FOR_IMAGE_CLASSIFICATION_MAPPING_NAMES",
            "MODEL_FOR_VIDEO_CLASSIFICATION_MAPPING_NAMES",
            "MODEL_FOR_SPEECH_SEQ_2_SEQ_MAPPING_NAMES")


def table_rows() -> list[tuple[str, str, str, str, str]]:
    text = (DOCS / "families.md").read_text()
    table = text.split("<!-- architectures:begin -->", 1)[1].split("<!-- architectures:end -->")[0]
    rows = []
    for line in table.strip().splitlines()[2:]:
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        family, architecture, head, loads, native = (c.strip("`") for c in cells)
        rows.append((family, architecture, head, loads, native))
    return rows


ROWS = table_rows()


def save_tiny(tmp_path: Path, family: str, architecture: str) -> Path:
    config_class, sizes = TINY[MODEL_TYPE_OF.get(family, family)]
    labels = {"num_labels": 3} if "Classification" in architecture else {}
    torch.manual_seed(0)
    config = getattr(transformers, config_class)(**sizes, **labels)
    model = getattr(transformers, architecture)(config)
    folder = tmp_path / architecture
    model.save_pretrained(folder)
    return folder


@pytest.mark.parametrize("family, architecture, head, loads, native", ROWS,
                         ids=[row[1] for row in ROWS])
def test_architecture_row(tmp_path, family, architecture, head, loads, native):
    folder = save_tiny(tmp_path, family, architecture)
    if loads.startswith("no"):
        with pytest.raises(LoadError):
            hfport.load(folder, stats=False)
    else:
        _, report = hfport.load(folder, stats=False)
        assert report.family == family and report.ok, str(report)
        assert report.head == head
        if loads == "strict":
            assert report.head_tensors == [], str(report)
        else:
            assert loads == "base, head reported", loads
            assert report.head_tensors, str(report)
            with pytest.raises(LoadError, match="head tensors not loaded"):
                hfport.load(folder, stats=False, heads="require")

    if native in ("yes", "base"):
        heads = "none" if native == "base" else "auto"
        if family in hfport.parity.VIDEO_FAMILIES:
            # Fixed sin-cos positions: videos of the config's frames and size only.
            reports = [hfport.parity.compare_checkpoint(folder, batch=2, heads=heads)]
            assert "4 frames of 16x16" in reports[0].title
        elif family in hfport.parity.VISION_FAMILIES:
            # Pixels of the config's size, then of another one (positions resized).
            reports = [hfport.parity.compare_checkpoint(folder, batch=2, heads=heads,
                                                        image_size=size)
                       for size in (None, (40, 24))]
            assert "pixels 32x32" in reports[0].title and "pixels 40x24" in reports[1].title
        else:
            reports = [hfport.parity.compare_checkpoint(folder, batch=2, seq=8, heads=heads)]
        for parity in reports:
            assert parity.ok, str(parity)
            names = [row.name for row in parity.rows]
            assert ("logits" in names) == (native == "yes" and head != "")
    else:
        assert native.startswith("no"), native
        with pytest.raises(Error):
            hfport.models.from_pretrained(folder)


def test_table_lists_every_architecture_of_its_families():
    from transformers.models.auto import modeling_auto

    listed: dict[str, set[str]] = {}
    for family, architecture, *_ in ROWS:
        listed.setdefault(family, set()).add(architecture)
    for family, architectures in listed.items():
        model_type = MODEL_TYPE_OF.get(family, family)
        known = set()
        for mapping in MAPPINGS:
            names = getattr(modeling_auto, mapping).get(model_type)
            if names:
                known.update([names] if isinstance(names, str) else names)
        assert known <= architectures, f"{family}: the table lacks {sorted(known - architectures)}"
        assert re.fullmatch(r"[a-z0-9_-]+", family)
