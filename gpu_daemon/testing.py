"""Stable Diffusion pipelines with random weights, saved like a real model directory.

Tests, benchmarks and the demo load them through the daemon's real code path
(``from_pretrained`` on a local directory) without downloading anything. Their images are
noise, but their shapes are SD's:

- ``build_tiny_pipeline``: a 4-block VAE (latents 8x smaller than the image), a UNet with
  cross-attention on a 2-layer CLIP text encoder: fast enough for every test.
- ``build_tiny_sdxl_pipeline``: the same at SDXL's shape: two text encoders (the second wider,
  with a projection), linear projections, the size/crop embedding.
- ``build_tiny_sd3_pipeline``: SD 3's shape without T5: an MMDiT transformer on two CLIPs,
  a 16-channel VAE, the flow-matching scheduler.
- ``build_tiny_hunyuan_pipeline``: HunyuanDiT's shape, a model that reads Chinese: a DiT on
  a bilingual BERT and a multilingual T5 over a vocabulary of ASCII and the CJK ideographs.
- ``build_tiny_kolors_pipeline``: Kolors' shape, the other: SDXL's UNet on a 2-layer ChatGLM3
  whose SentencePiece tokenizer is trained on the spot (needs ``sentencepiece``).
  (No tiny FLUX: diffusers' single-file conversion of FLUX assumes its full width, 3072.)
- ``write_single_file``: such a pipeline as one checkpoint in the original (CompVis/sgm) layout
  (gpu_daemon/models/original_layout.py), as model sites distribute them; ``write_lora``: a random
  LoRA for its UNet, made with peft, in the diffusers or kohya layout; ``write_ip_adapter``:
  a random IP-Adapter for it with a tiny CLIP vision encoder, in h94/IP-Adapter's layout.
- ``build_sd15_pipeline`` and ``build_sdxl_pipeline``: the real architecture sizes (SD 1.5:
  UNet 320/640/1280/1280 on CLIP ViT-L/14, 1.07 B parameters; SDXL: UNet 320/640/1280 with
  10-layer transformers on CLIP ViT-L + OpenCLIP bigG, 3.5 B), so a benchmark pays the real
  compute on real hardware. ``SD15`` and ``SDXL`` hold their configs. Building SD 1.5 takes
  about a minute and 4 GB of memory on a CPU, SDXL several times that; saved in float16.

The tokenizer's vocabulary is byte-level: the 256 byte symbols, their end-of-word forms and the
two specials, with no merges, so any Unicode text (Chinese too) tokenizes, one token per byte.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

TEXT_HIDDEN = 32


def byte_level_vocab() -> dict[str, int]:
    from tokenizers import pre_tokenizers

    symbols = sorted(pre_tokenizers.ByteLevel.alphabet())
    vocab = {s: i for i, s in enumerate(symbols)}
    vocab.update({s + "</w>": len(symbols) + i for i, s in enumerate(symbols)})
    vocab["<|startoftext|>"] = len(vocab)
    vocab["<|endoftext|>"] = len(vocab)
    return vocab


def byte_level_tokenizer() -> Any:
    """A CLIP tokenizer with a 77-token limit over the byte-level vocabulary."""
    from transformers import CLIPTokenizer

    return CLIPTokenizer(vocab=byte_level_vocab(), merges=[], model_max_length=77)


def sd_scheduler() -> Any:
    from diffusers import DDIMScheduler

    return DDIMScheduler(
        beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear",
        clip_sample=False, set_alpha_to_one=False, steps_offset=1,
    )


def _tiny_text_encoder(hidden: int, projection: bool = False) -> Any:
    """A 2-layer CLIP text encoder over the byte-level vocabulary (with a projection: the
    pooled output SDXL's second encoder gives)."""
    from transformers import CLIPTextModel, CLIPTextModelWithProjection

    spec = {"vocab_size": len(byte_level_vocab()), "hidden_size": hidden,
            "intermediate_size": 37, "num_hidden_layers": 2, "num_attention_heads": 4,
            "max_position_embeddings": 77}
    if projection:
        return CLIPTextModelWithProjection(text_config({**spec, "projection_dim": hidden,
                                                         "hidden_act": "gelu"}))
    return CLIPTextModel(text_config(spec))


def _tiny_vae(scaling_factor: float = 0.18215) -> Any:
    """4 blocks, so latents are 8x smaller than the image, as in SD's VAE."""
    from diffusers import AutoencoderKL

    return AutoencoderKL(
        in_channels=3, out_channels=3, latent_channels=4, layers_per_block=1,
        block_out_channels=(8, 8, 8, 8), norm_num_groups=8, sample_size=64,
        down_block_types=("DownEncoderBlock2D",) * 4, up_block_types=("UpDecoderBlock2D",) * 4,
        scaling_factor=scaling_factor,
    )


def build_tiny_pipeline(path: str | Path, seed: int = 0) -> Path:
    """Build the SD 1.x-shaped pipeline (the same weights for the same seed), save it to path."""
    import torch
    from diffusers import StableDiffusionPipeline, UNet2DConditionModel

    path = Path(path)
    torch.manual_seed(seed)
    text_encoder = _tiny_text_encoder(TEXT_HIDDEN)
    unet = UNet2DConditionModel(
        sample_size=8, in_channels=4, out_channels=4, layers_per_block=1,
        block_out_channels=(32, 64),
        down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"),
        up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"),
        cross_attention_dim=TEXT_HIDDEN, attention_head_dim=8,
    )
    pipe = StableDiffusionPipeline(
        vae=_tiny_vae(), text_encoder=text_encoder, tokenizer=byte_level_tokenizer(), unet=unet,
        scheduler=sd_scheduler(), safety_checker=None, feature_extractor=None,
        requires_safety_checker=False,
    )
    pipe.save_pretrained(path, safe_serialization=True)
    return path


# SDXL's second text encoder is wider than its first (1280 against 768); the tiny one is too,
# or diffusers' single-file loader would take one for the other (it tells them by width).
TEXT_HIDDEN_2 = 48


def _tiny_sdxl_unet(cross_attention_dim: int, pooled_dim: int) -> Any:
    """SDXL's UNet shape: linear projections, 2 transformer layers in its attention block,
    and the added embedding of the pooled text and the size/crop ids."""
    from diffusers import UNet2DConditionModel

    time_ids = 8
    return UNet2DConditionModel(
        sample_size=8, in_channels=4, out_channels=4, layers_per_block=1,
        block_out_channels=(32, 64),
        down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"),
        up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"),
        transformer_layers_per_block=(1, 2), attention_head_dim=(2, 4),
        cross_attention_dim=cross_attention_dim, use_linear_projection=True,
        addition_embed_type="text_time", addition_time_embed_dim=time_ids,
        projection_class_embeddings_input_dim=pooled_dim + 6 * time_ids,
    )


def build_tiny_sdxl_pipeline(path: str | Path, seed: int = 0) -> Path:
    """An SDXL-shaped tiny pipeline: two text encoders (the second with a projection, whose
    pooled output and the size/crop ids make the UNet's added embedding), a UNet with linear
    projections and 2 transformer layers in its attention block."""
    import torch
    from diffusers import EulerDiscreteScheduler, StableDiffusionXLPipeline

    path = Path(path)
    torch.manual_seed(seed)
    unet = _tiny_sdxl_unet(TEXT_HIDDEN + TEXT_HIDDEN_2, TEXT_HIDDEN_2)
    pipe = StableDiffusionXLPipeline(
        vae=_tiny_vae(0.13025), text_encoder=_tiny_text_encoder(TEXT_HIDDEN),
        text_encoder_2=_tiny_text_encoder(TEXT_HIDDEN_2, projection=True),
        tokenizer=byte_level_tokenizer(), tokenizer_2=byte_level_tokenizer(), unet=unet,
        scheduler=EulerDiscreteScheduler(beta_start=0.00085, beta_end=0.012,
                                         beta_schedule="scaled_linear", steps_offset=1),
    )
    pipe.save_pretrained(path, safe_serialization=True)
    return path


def build_tiny_sd3_pipeline(path: str | Path, seed: int = 0) -> Path:
    """An SD 3-shaped tiny pipeline without T5 (as SD 3 runs without it): an MMDiT
    transformer on two CLIP encoders of different widths (CLIP-L's projection is the identity,
    as SD 3 uses it), a 16-channel VAE, the flow-matching Euler scheduler."""
    import torch
    from diffusers import (
        AutoencoderKL,
        FlowMatchEulerDiscreteScheduler,
        SD3Transformer2DModel,
        StableDiffusion3Pipeline,
    )

    path = Path(path)
    torch.manual_seed(seed)
    clip_l = _tiny_text_encoder(TEXT_HIDDEN, projection=True)
    with torch.no_grad():
        clip_l.text_projection.weight.copy_(torch.eye(TEXT_HIDDEN))
    clip_g = _tiny_text_encoder(TEXT_HIDDEN_2, projection=True)
    transformer = SD3Transformer2DModel(
        sample_size=8, patch_size=2, in_channels=16, out_channels=16, num_layers=2,
        attention_head_dim=8, num_attention_heads=4, caption_projection_dim=32,
        # Both CLIPs' hidden states side by side, padded to T5's width (here 96).
        joint_attention_dim=96, pooled_projection_dim=TEXT_HIDDEN + TEXT_HIDDEN_2,
        pos_embed_max_size=16,
    )
    vae = AutoencoderKL(
        in_channels=3, out_channels=3, latent_channels=16, layers_per_block=1,
        block_out_channels=(8, 8, 8, 8), norm_num_groups=8, sample_size=64,
        down_block_types=("DownEncoderBlock2D",) * 4, up_block_types=("UpDecoderBlock2D",) * 4,
        use_quant_conv=False, use_post_quant_conv=False, scaling_factor=1.5305,
        shift_factor=0.0609,
    )
    pipe = StableDiffusion3Pipeline(
        transformer=transformer, vae=vae, text_encoder=clip_l, text_encoder_2=clip_g,
        text_encoder_3=None, tokenizer=byte_level_tokenizer(), tokenizer_2=byte_level_tokenizer(),
        tokenizer_3=None, scheduler=FlowMatchEulerDiscreteScheduler(shift=3.0),
    )
    pipe.save_pretrained(path, safe_serialization=True)
    return path


def _tiny_vocabulary() -> list[str]:
    """Printable ASCII and the CJK Unified Ideographs: every character of a Chinese or English
    prompt, one token each."""
    return [chr(c) for c in range(0x21, 0x7F)] + [chr(c) for c in range(0x4E00, 0xA000)]


def _tiny_bert() -> tuple[Any, Any]:
    """HunyuanDiT's first text encoder: a bilingual BERT (a 2-layer one over the tiny
    vocabulary, Chinese read a character a token as BERT's own tokenizer does)."""
    from transformers import BertConfig, BertModel, BertTokenizer

    specials = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    vocab = {token: i for i, token in enumerate(specials + _tiny_vocabulary())}
    encoder = BertModel(BertConfig(vocab_size=len(vocab), hidden_size=TEXT_HIDDEN,
                                   num_hidden_layers=2, num_attention_heads=4,
                                   intermediate_size=37, max_position_embeddings=512))
    return encoder, BertTokenizer(vocab=vocab, model_max_length=77)


def _tiny_t5() -> tuple[Any, Any]:
    """HunyuanDiT's second text encoder: a multilingual T5 (2 layers, the tiny vocabulary as
    SentencePiece-style pieces)."""
    from transformers import T5Config, T5EncoderModel, T5Tokenizer

    pieces = [("<pad>", 0.0), ("</s>", 0.0), ("<unk>", 0.0), ("\u2581", -1.0)]
    pieces += [(f"\u2581{c}", -2.0) for c in _tiny_vocabulary()]
    pieces += [(c, -3.0) for c in _tiny_vocabulary()]
    tokenizer = T5Tokenizer(vocab=pieces, extra_ids=0, model_max_length=256)
    encoder = T5EncoderModel(T5Config(vocab_size=len(pieces), d_model=TEXT_HIDDEN, d_kv=8,
                                      d_ff=37, num_layers=2, num_heads=4,
                                      feed_forward_proj="gated-gelu"))
    return encoder, tokenizer


def build_tiny_hunyuan_pipeline(path: str | Path, seed: int = 0) -> Path:
    """A HunyuanDiT-shaped tiny pipeline, a model that reads Chinese: a DiT with cross
    attention on a bilingual BERT and a multilingual T5, the SD VAE's shape, DDPM with
    v-prediction as HunyuanDiT samples."""
    import torch
    from diffusers import DDPMScheduler, HunyuanDiT2DModel, HunyuanDiTPipeline

    path = Path(path)
    torch.manual_seed(seed)
    bert, bert_tokenizer = _tiny_bert()
    t5, t5_tokenizer = _tiny_t5()
    transformer = HunyuanDiT2DModel(
        sample_size=8, patch_size=2, in_channels=4, num_layers=2, attention_head_dim=8,
        num_attention_heads=3, hidden_size=24, cross_attention_dim=TEXT_HIDDEN,
        cross_attention_dim_t5=TEXT_HIDDEN, pooled_projection_dim=16, text_len=77,
        text_len_t5=256)
    pipe = HunyuanDiTPipeline(
        vae=_tiny_vae(0.13025), text_encoder=bert, tokenizer=bert_tokenizer,
        transformer=transformer,
        scheduler=DDPMScheduler(beta_start=0.00085, beta_end=0.03,
                                beta_schedule="scaled_linear", prediction_type="v_prediction",
                                steps_offset=1, clip_sample=False),
        safety_checker=None, feature_extractor=None, requires_safety_checker=False,
        text_encoder_2=t5, tokenizer_2=t5_tokenizer)
    pipe.save_pretrained(path, safe_serialization=True)
    return path


def _tiny_chatglm(folder: Path) -> tuple[Any, Any]:
    """Kolors' text encoder: ChatGLM3 (2 layers) and its SentencePiece tokenizer, trained here
    on a few English and Chinese lines (byte fallback: any text encodes)."""
    import io

    import sentencepiece
    from diffusers.pipelines.kolors import ChatGLMModel, ChatGLMTokenizer
    from diffusers.pipelines.kolors.text_encoder import ChatGLMConfig

    lines = ["a lighthouse in a storm, an old man climbing the stairs at night",
             "清晨，小镇还在沉睡。老陈推开木门，看见院子里站着一个陌生的孩子。",
             "watercolor painting, soft washes, paper texture, muted palette"] * 20
    model = io.BytesIO()
    sentencepiece.SentencePieceTrainer.train(
        sentence_iterator=iter(lines), model_writer=model, vocab_size=400, model_type="bpe",
        byte_fallback=True, character_coverage=1.0, hard_vocab_limit=False, minloglevel=2)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "tokenizer.model").write_bytes(model.getvalue())
    tokenizer = ChatGLMTokenizer(vocab_file=str(folder / "tokenizer.model"))
    encoder = ChatGLMModel(ChatGLMConfig(
        num_layers=2, padded_vocab_size=len(tokenizer) + 16, hidden_size=TEXT_HIDDEN,
        ffn_hidden_size=37, kv_channels=8, num_attention_heads=4, seq_length=256,
        multi_query_attention=True, multi_query_group_num=2, original_rope=True))
    return encoder, tokenizer


def build_tiny_kolors_pipeline(path: str | Path, seed: int = 0) -> Path:
    """A Kolors-shaped tiny pipeline, a model that reads Chinese: SDXL's UNet on ChatGLM3's
    hidden states (its second to last layer, and the last token's state for the pooled
    embedding)."""
    import tempfile

    import torch
    from diffusers import EulerDiscreteScheduler, KolorsPipeline

    path = Path(path)
    torch.manual_seed(seed)
    with tempfile.TemporaryDirectory() as work:
        encoder, tokenizer = _tiny_chatglm(Path(work))
        pipe = KolorsPipeline(
            vae=_tiny_vae(0.13025), text_encoder=encoder, tokenizer=tokenizer,
            unet=_tiny_sdxl_unet(TEXT_HIDDEN, TEXT_HIDDEN),
            scheduler=EulerDiscreteScheduler(beta_start=0.00085, beta_end=0.014,
                                             beta_schedule="scaled_linear", steps_offset=1))
        pipe.save_pretrained(path, safe_serialization=True)
    return path


def write_single_file(model_dir: str | Path, out: str | Path) -> Path:
    """A saved SD 1.x, SDXL or SD 3 pipeline as one checkpoint in the original layout (the file a
    model site distributes), its configuration left in model_dir."""
    import json

    from diffusers import DiffusionPipeline
    from safetensors.torch import save_file

    from gpu_daemon.models import original_layout

    # Parts the folder has none of (SD 3 without T5) are passed as None, as saved.
    index = json.loads((Path(model_dir) / "model_index.json").read_text())
    absent = {name: None for name, value in index.items()
              if isinstance(value, list) and value[0] is None}
    pipe = DiffusionPipeline.from_pretrained(model_dir, **absent)
    kind = type(pipe).__name__
    writers = {"StableDiffusionPipeline": original_layout.sd_checkpoint,
               "StableDiffusionXLPipeline": original_layout.sdxl_checkpoint,
               "StableDiffusion3Pipeline": original_layout.sd3_checkpoint}
    if kind not in writers:
        raise ValueError(f"no original layout for {kind}")
    state = writers[kind](pipe)
    out = Path(out)
    save_file({k: v.contiguous() for k, v in state.items()}, out)
    return out


LORA_TARGETS = ("to_q", "to_k", "to_v", "to_out.0")


def write_lora(model_dir: str | Path, out: str | Path, seed: int = 0, rank: int = 4,
               layout: str = "diffusers") -> Path:
    """A random LoRA for the UNet of the pipeline in model_dir, made with peft on its
    attention projections, saved as diffusers writes one ("diffusers": ``unet.<module>.
    lora_A.weight``) or as kohya's sd-scripts do ("kohya": ``lora_unet_<module_with_
    underscores>.lora_down.weight``, ``.lora_up.weight`` and ``.alpha``)."""
    import torch
    from diffusers import UNet2DConditionModel
    from peft import LoraConfig
    from peft.utils import get_peft_model_state_dict
    from safetensors.torch import save_file

    unet = UNet2DConditionModel.from_pretrained(model_dir, subfolder="unet")
    torch.manual_seed(seed)
    # init_lora_weights=False: B is random too, so the LoRA changes the output from the start.
    unet.add_adapter(LoraConfig(r=rank, lora_alpha=rank, target_modules=list(LORA_TARGETS),
                                init_lora_weights=False))
    state = get_peft_model_state_dict(unet)
    if layout == "diffusers":
        tensors = {f"unet.{k}": v for k, v in state.items()}
    elif layout == "kohya":
        tensors = {}
        for key, value in state.items():
            module, _, part = key.rpartition(".lora_")
            name = "lora_unet_" + module.replace(".", "_")
            tensors[f"{name}.lora_{'down' if part.startswith('A') else 'up'}.weight"] = value
            tensors[f"{name}.alpha"] = torch.tensor(float(rank))
    else:
        raise ValueError(f"unknown LoRA layout {layout!r}")
    out = Path(out)
    save_file({k: v.contiguous() for k, v in tensors.items()}, out)
    return out


def write_ip_adapter(model_dir: str | Path, out: str | Path, seed: int = 0,
                     encoder: dict[str, Any] | None = None) -> Path:
    """A random IP-Adapter for the UNet of the pipeline in model_dir, laid out as h94/IP-Adapter
    keeps one: a folder with ``ip-adapter.safetensors`` (``image_proj.proj``/``.norm``: the
    image embedding to 4 tokens; ``ip_adapter.N.to_k_ip``/``.to_v_ip`` for the N-th attention
    layer, the cross-attention ones being 1, 3, 5, ...) and ``image_encoder/``, a CLIP vision
    model with a projection: `encoder` (a CLIPVisionConfig's kwargs; IP_ADAPTER_SD15_ENCODER is
    the real one's size), by default 2 layers at 32 x 32 pixels."""
    import torch
    from diffusers import UNet2DConditionModel
    from safetensors.torch import save_file
    from transformers import CLIPVisionConfig, CLIPVisionModelWithProjection

    out = Path(out)
    torch.manual_seed(seed)
    spec = encoder or {"hidden_size": 32, "intermediate_size": 37, "num_hidden_layers": 2,
                       "num_attention_heads": 4, "image_size": 32, "patch_size": 8,
                       "projection_dim": 16}
    vision = CLIPVisionModelWithProjection(CLIPVisionConfig(**spec))
    if encoder is not None:
        vision.to(torch.float16)  # a full-size one: half the disk and load time
    vision.save_pretrained(out / "image_encoder", safe_serialization=True)
    embed = spec["projection_dim"]
    unet = UNet2DConditionModel.from_pretrained(model_dir, subfolder="unet")
    width = unet.config.cross_attention_dim
    tensors = {"image_proj.proj.weight": torch.randn(4 * width, embed) * 0.5,
               "image_proj.proj.bias": torch.zeros(4 * width),
               "image_proj.norm.weight": torch.ones(width),
               "image_proj.norm.bias": torch.zeros(width)}
    number = 1
    for name in unet.attn_processors:
        if name.endswith("attn2.processor"):
            to_k = unet.get_submodule(name.removesuffix(".processor")).to_k.weight
            for part in ("to_k_ip", "to_v_ip"):
                tensors[f"ip_adapter.{number}.{part}.weight"] = torch.randn_like(to_k) * 0.5
            number += 2
    save_file(tensors, out / "ip-adapter.safetensors")
    return out


# The image encoder of h94/IP-Adapter's SD 1.5 adapters: OpenCLIP ViT-H/14 (632 M parameters).
IP_ADAPTER_SD15_ENCODER = {"hidden_size": 1280, "intermediate_size": 5120,
                           "num_hidden_layers": 32, "num_attention_heads": 16,
                           "image_size": 224, "patch_size": 14, "projection_dim": 1024,
                           "hidden_act": "gelu"}

# CLIP ViT-L/14's text tower (SD 1.x, and SDXL's first encoder).
CLIP_VIT_L = {"vocab_size": 49408, "hidden_size": 768, "intermediate_size": 3072,
              "num_hidden_layers": 12, "num_attention_heads": 12,
              "max_position_embeddings": 77, "hidden_act": "quick_gelu", "projection_dim": 768}
# The Stable Diffusion VAE (SD 1.x and SDXL share the architecture).
SD_VAE = {"in_channels": 3, "out_channels": 3, "latent_channels": 4, "layers_per_block": 2,
          "block_out_channels": (128, 256, 512, 512), "norm_num_groups": 32,
          "down_block_types": ("DownEncoderBlock2D",) * 4,
          "up_block_types": ("UpDecoderBlock2D",) * 4}


@dataclass(frozen=True)
class FullSizeConfigs:
    """The component configs of a full-size pipeline (kwargs of the diffusers and
    transformers classes)."""

    unet: dict[str, Any]
    vae: dict[str, Any]
    text_encoders: tuple[dict[str, Any], ...]
    extra: dict[str, Any] = field(default_factory=dict)


SD15 = FullSizeConfigs(
    unet={"sample_size": 64, "in_channels": 4, "out_channels": 4, "layers_per_block": 2,
          "block_out_channels": (320, 640, 1280, 1280),
          "down_block_types": ("CrossAttnDownBlock2D",) * 3 + ("DownBlock2D",),
          "up_block_types": ("UpBlock2D",) + ("CrossAttnUpBlock2D",) * 3,
          "cross_attention_dim": 768, "attention_head_dim": 8},
    vae={**SD_VAE, "sample_size": 512, "scaling_factor": 0.18215},
    text_encoders=(CLIP_VIT_L,),
)
SDXL = FullSizeConfigs(
    unet={"sample_size": 128, "in_channels": 4, "out_channels": 4, "layers_per_block": 2,
          "block_out_channels": (320, 640, 1280),
          "down_block_types": ("DownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D"),
          "up_block_types": ("CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "UpBlock2D"),
          "transformer_layers_per_block": (1, 2, 10), "attention_head_dim": (5, 10, 20),
          "cross_attention_dim": 2048, "use_linear_projection": True,
          "addition_embed_type": "text_time", "addition_time_embed_dim": 256,
          "projection_class_embeddings_input_dim": 2816},
    vae={**SD_VAE, "sample_size": 1024, "scaling_factor": 0.13025},
    # CLIP ViT-L, then OpenCLIP ViT-bigG/14's text tower (with its projection).
    text_encoders=(CLIP_VIT_L, {
        "vocab_size": 49408, "hidden_size": 1280, "intermediate_size": 5120,
        "num_hidden_layers": 32, "num_attention_heads": 20, "max_position_embeddings": 77,
        "hidden_act": "gelu", "projection_dim": 1280}),
)


def text_config(spec: dict[str, Any]) -> Any:
    """A CLIPTextConfig whose special tokens are the byte-level tokenizer's."""
    from transformers import CLIPTextConfig

    vocab = byte_level_vocab()
    return CLIPTextConfig(**spec, bos_token_id=vocab["<|startoftext|>"],
                          eos_token_id=vocab["<|endoftext|>"], pad_token_id=vocab["<|endoftext|>"])


def build_sd15_pipeline(path: str | Path, seed: int = 0) -> Path:
    """SD 1.5's architecture at random init, saved (float16) to path."""
    import torch
    from diffusers import AutoencoderKL, StableDiffusionPipeline, UNet2DConditionModel
    from transformers import CLIPTextModel

    torch.manual_seed(seed)
    pipe = StableDiffusionPipeline(
        vae=AutoencoderKL(**SD15.vae), text_encoder=CLIPTextModel(text_config(
            SD15.text_encoders[0])), tokenizer=byte_level_tokenizer(),
        unet=UNet2DConditionModel(**SD15.unet), scheduler=sd_scheduler(), safety_checker=None,
        feature_extractor=None, requires_safety_checker=False,
    )
    return _save(pipe, path)


def build_sdxl_pipeline(path: str | Path, seed: int = 0) -> Path:
    """SDXL base's architecture at random init, saved (float16) to path."""
    import torch
    from diffusers import (
        AutoencoderKL,
        EulerDiscreteScheduler,
        StableDiffusionXLPipeline,
        UNet2DConditionModel,
    )
    from transformers import CLIPTextModel, CLIPTextModelWithProjection

    torch.manual_seed(seed)
    first, second = SDXL.text_encoders
    pipe = StableDiffusionXLPipeline(
        vae=AutoencoderKL(**SDXL.vae), text_encoder=CLIPTextModel(text_config(first)),
        text_encoder_2=CLIPTextModelWithProjection(text_config(second)),
        tokenizer=byte_level_tokenizer(), tokenizer_2=byte_level_tokenizer(),
        unet=UNet2DConditionModel(**SDXL.unet),
        scheduler=EulerDiscreteScheduler(beta_start=0.00085, beta_end=0.012,
                                         beta_schedule="scaled_linear", steps_offset=1),
    )
    return _save(pipe, path)


def _save(pipe: Any, path: str | Path) -> Path:
    import torch

    path = Path(path)
    pipe.to(torch.float16)  # half the disk and load time; the daemon casts to its dtype
    pipe.save_pretrained(path, safe_serialization=True)
    return path
