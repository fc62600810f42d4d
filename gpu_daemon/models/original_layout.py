"""A diffusers pipeline's weights in the original single-file layout (CompVis ldm for SD 1.x,
Stability's sgm for SDXL): the key names and tensor shapes of the checkpoints users download.

The tests write tiny random-weight pipelines with it and load them back through diffusers'
``from_single_file`` (the other direction, diffusers' own conversion), so the daemon's
single-file path is exercised on files shaped like real ones without downloading any.

The UNet mapping follows from the UNet's config (blocks, layers per block, which blocks have
attention), so it holds for the tiny builds and the full-size ones alike:

- ``input_blocks.0.0`` is conv_in; down block i's layer j is input block 1 + i*(L+1) + j
  (``.0`` its resnet, ``.1`` its attention) and its downsampler input block (i+1)*(L+1);
- ``middle_block.0/1/2`` are the mid block's resnet, attention, resnet;
- up block i's layer j is output block i*(L+1) + j, its upsampler sits in the block's last
  output block, after the attention if there is one;
- resnets rename their layers (norm1 -> in_layers.0, conv1 -> in_layers.2, ...); attention
  blocks keep diffusers' names.

SD 3's transformer is Stability's MMDiT layout (``joint_blocks.N.{x,context}_block``) with
fused q/k/v; its text encoders keep transformers' names under ``text_encoders.clip_l/g``.

The VAE's decoder counts its up blocks the other way round, and its mid-block attention is
1x1 convolutions (q, k, v, proj_out). SDXL's second text encoder is OpenCLIP's layout: fused
q/k/v (``in_proj_weight``) and a transposed projection matrix.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

UNET_PREFIX = "model.diffusion_model."
VAE_PREFIX = "first_stage_model."
SD1_CLIP_PREFIX = "cond_stage_model.transformer."
SDXL_CLIP_PREFIX = "conditioner.embedders.0.transformer."
SDXL_OPEN_CLIP_PREFIX = "conditioner.embedders.1.model."

_UNET_FIXED = {
    "conv_in": "input_blocks.0.0",
    "time_embedding.linear_1": "time_embed.0",
    "time_embedding.linear_2": "time_embed.2",
    "add_embedding.linear_1": "label_emb.0.0",
    "add_embedding.linear_2": "label_emb.0.2",
    "conv_norm_out": "out.0",
    "conv_out": "out.2",
}
_UNET_RESNET = {
    "norm1": "in_layers.0", "conv1": "in_layers.2", "time_emb_proj": "emb_layers.1",
    "norm2": "out_layers.0", "conv2": "out_layers.3", "conv_shortcut": "skip_connection",
}
_VAE_FIXED = {"conv_norm_out": "norm_out"}
_VAE_ATTENTION = {"group_norm": "norm", "to_q": "q", "to_k": "k", "to_v": "v",
                  "to_out.0": "proj_out"}


def _split(key: str) -> tuple[str, str]:
    """'a.b.weight' -> ('a.b', 'weight')."""
    module, _, param = key.rpartition(".")
    return module, param


def _resnet(rest: str) -> str:
    module, param = _split(rest)
    return f"{_UNET_RESNET.get(module, module)}.{param}"


def unet_key(key: str, config: Mapping[str, Any]) -> str:
    """A diffusers UNet2DConditionModel parameter's name in the ldm layout (no prefix)."""
    layers = int(config["layers_per_block"]) + 1
    module, param = _split(key)
    if module in _UNET_FIXED:
        return f"{_UNET_FIXED[module]}.{param}"
    if m := re.fullmatch(r"down_blocks\.(\d+)\.(resnets|attentions)\.(\d+)\.(.+)", key):
        block, kind, layer, rest = int(m[1]), m[2], int(m[3]), m[4]
        index = 1 + block * layers + layer
        return (f"input_blocks.{index}.0.{_resnet(rest)}" if kind == "resnets"
                else f"input_blocks.{index}.1.{rest}")
    if m := re.fullmatch(r"down_blocks\.(\d+)\.downsamplers\.0\.conv\.(\w+)", key):
        return f"input_blocks.{(int(m[1]) + 1) * layers}.0.op.{m[2]}"
    if m := re.fullmatch(r"mid_block\.resnets\.(\d+)\.(.+)", key):
        return f"middle_block.{2 * int(m[1])}.{_resnet(m[2])}"
    if m := re.fullmatch(r"mid_block\.attentions\.0\.(.+)", key):
        return f"middle_block.1.{m[1]}"
    if m := re.fullmatch(r"up_blocks\.(\d+)\.(resnets|attentions)\.(\d+)\.(.+)", key):
        block, kind, layer, rest = int(m[1]), m[2], int(m[3]), m[4]
        index = block * layers + layer
        return (f"output_blocks.{index}.0.{_resnet(rest)}" if kind == "resnets"
                else f"output_blocks.{index}.1.{rest}")
    if m := re.fullmatch(r"up_blocks\.(\d+)\.upsamplers\.0\.conv\.(\w+)", key):
        block = int(m[1])
        after = 2 if "CrossAttn" in config["up_block_types"][block] else 1  # the attention
        return f"output_blocks.{block * layers + layers - 1}.{after}.conv.{m[2]}"
    raise ValueError(f"no ldm name for the UNet parameter {key!r}")


def vae_key(key: str, config: Mapping[str, Any]) -> str:
    """A diffusers AutoencoderKL parameter's name in the ldm layout (no prefix)."""
    blocks = len(config["up_block_types"])
    module, param = _split(key)
    side, _, rest = module.partition(".")
    if side not in ("encoder", "decoder"):
        return key  # quant_conv, post_quant_conv
    if rest in _VAE_FIXED:
        return f"{side}.{_VAE_FIXED[rest]}.{param}"
    if m := re.fullmatch(r"(down|up)_blocks\.(\d+)\.resnets\.(\d+)\.(\w+)", rest):
        index = int(m[2]) if m[1] == "down" else blocks - 1 - int(m[2])
        layer = m[4].replace("conv_shortcut", "nin_shortcut")
        return f"{side}.{m[1]}.{index}.block.{m[3]}.{layer}.{param}"
    if m := re.fullmatch(r"down_blocks\.(\d+)\.downsamplers\.0\.conv", rest):
        return f"{side}.down.{m[1]}.downsample.conv.{param}"
    if m := re.fullmatch(r"up_blocks\.(\d+)\.upsamplers\.0\.conv", rest):
        return f"{side}.up.{blocks - 1 - int(m[1])}.upsample.conv.{param}"
    if m := re.fullmatch(r"mid_block\.resnets\.(\d+)\.(\w+)", rest):
        layer = m[2].replace("conv_shortcut", "nin_shortcut")
        return f"{side}.mid.block_{int(m[1]) + 1}.{layer}.{param}"
    if m := re.fullmatch(r"mid_block\.attentions\.0\.(.+)", rest):
        return f"{side}.mid.attn_1.{_VAE_ATTENTION[m[1]]}.{param}"
    return f"{module}.{param}"  # conv_in, conv_out keep their names


def unet_state(unet: Any) -> dict[str, Any]:
    config = unet.config
    return {UNET_PREFIX + unet_key(k, config): v for k, v in unet.state_dict().items()}


def vae_state(vae: Any) -> dict[str, Any]:
    config = vae.config
    out = {}
    for key, value in vae.state_dict().items():
        name = vae_key(key, config)
        if ".mid.attn_1." in name and name.endswith("weight") and value.ndim == 2:
            value = value[:, :, None, None]  # the original's 1x1 convolutions
        out[VAE_PREFIX + name] = value
    return out


def _text_model_keys(encoder: Any) -> dict[str, Any]:
    """Parameters named as transformers' CLIPTextModel had them (``text_model.`` first), which
    the original checkpoints keep, whatever this transformers version calls them."""
    out = {}
    for key, value in encoder.state_dict().items():
        if key.startswith("text_projection."):
            out[key] = value
            continue
        out[key if key.startswith("text_model.") else "text_model." + key] = value
    return out


def clip_state(encoder: Any, prefix: str) -> dict[str, Any]:
    """A CLIPTextModel as the original checkpoints hold it (transformers' names, a prefix)."""
    return {prefix + k: v for k, v in _text_model_keys(encoder).items()
            if not k.endswith("position_ids")}


_OPEN_CLIP = {
    "text_model.embeddings.token_embedding.weight": "token_embedding.weight",
    "text_model.embeddings.position_embedding.weight": "positional_embedding",
    "text_model.final_layer_norm.weight": "ln_final.weight",
    "text_model.final_layer_norm.bias": "ln_final.bias",
}
_OPEN_CLIP_LAYER = {"self_attn.out_proj": "attn.out_proj", "layer_norm1": "ln_1",
                    "layer_norm2": "ln_2", "mlp.fc1": "mlp.c_fc", "mlp.fc2": "mlp.c_proj"}


def open_clip_state(encoder: Any, prefix: str) -> dict[str, Any]:
    """A CLIPTextModelWithProjection as OpenCLIP's text tower: fused q/k/v, ``resblocks``,
    the projection as the matrix the text features are multiplied by."""
    import torch

    state = _text_model_keys(encoder)
    out: dict[str, Any] = {}
    fused: dict[tuple[int, str], dict[str, Any]] = {}
    for key, value in state.items():
        if key in _OPEN_CLIP:
            out[prefix + _OPEN_CLIP[key]] = value
        elif key == "text_projection.weight":
            out[prefix + "text_projection"] = value.T.contiguous()
        elif m := re.fullmatch(r"text_model\.encoder\.layers\.(\d+)\.(.+)\.(weight|bias)", key):
            layer, module, param = int(m[1]), m[2], m[3]
            if q := re.fullmatch(r"self_attn\.([qkv])_proj", module):
                fused.setdefault((layer, param), {})[q[1]] = value
            else:
                out[f"{prefix}transformer.resblocks.{layer}.{_OPEN_CLIP_LAYER[module]}.{param}"] \
                    = value
        elif not key.endswith("position_ids"):
            raise ValueError(f"no OpenCLIP name for the text encoder parameter {key!r}")
    for (layer, param), parts in fused.items():
        out[f"{prefix}transformer.resblocks.{layer}.attn.in_proj_{param}"] = torch.cat(
            [parts["q"], parts["k"], parts["v"]])
    return out


_MMDIT_FIXED = {
    "pos_embed.proj": "x_embedder.proj",
    "time_text_embed.timestep_embedder.linear_1": "t_embedder.mlp.0",
    "time_text_embed.timestep_embedder.linear_2": "t_embedder.mlp.2",
    "time_text_embed.text_embedder.linear_1": "y_embedder.mlp.0",
    "time_text_embed.text_embedder.linear_2": "y_embedder.mlp.2",
    "context_embedder": "context_embedder",
    "proj_out": "final_layer.linear",
    "norm_out.linear": "final_layer.adaLN_modulation.1",
}
_MMDIT_BLOCK = {
    "attn.to_out.0": "x_block.attn.proj", "attn.to_add_out": "context_block.attn.proj",
    "attn.norm_q": "x_block.attn.ln_q", "attn.norm_k": "x_block.attn.ln_k",
    "attn.norm_added_q": "context_block.attn.ln_q",
    "attn.norm_added_k": "context_block.attn.ln_k",
    "norm1.linear": "x_block.adaLN_modulation.1",
    "norm1_context.linear": "context_block.adaLN_modulation.1",
    "ff.net.0.proj": "x_block.mlp.fc1", "ff.net.2": "x_block.mlp.fc2",
    "ff_context.net.0.proj": "context_block.mlp.fc1", "ff_context.net.2": "context_block.mlp.fc2",
}
_MMDIT_QKV = {"to_q": ("x_block", "q"), "to_k": ("x_block", "k"), "to_v": ("x_block", "v"),
              "add_q_proj": ("context_block", "q"), "add_k_proj": ("context_block", "k"),
              "add_v_proj": ("context_block", "v")}


def _swap_halves(weight: Any) -> Any:
    """SD3's original final modulations give (shift, scale); diffusers' (scale, shift)."""
    import torch

    first, second = weight.chunk(2, dim=0)
    return torch.cat([second, first], dim=0)


def mmdit_state(transformer: Any) -> dict[str, Any]:
    """An SD3Transformer2DModel as Stability's MMDiT (``joint_blocks``): fused q/k/v per
    stream, the last block's context modulation and the final one as (shift, scale)."""
    import torch

    last = int(transformer.config.num_layers) - 1
    out: dict[str, Any] = {}
    fused: dict[tuple[int, str, str], dict[str, Any]] = {}
    for key, value in transformer.state_dict().items():
        module, param = _split(key)
        if key == "pos_embed.pos_embed":  # a buffer, not a module's parameter
            out[UNET_PREFIX + "pos_embed"] = value
            continue
        if module in _MMDIT_FIXED:
            if module == "norm_out.linear":
                value = _swap_halves(value)
            out[f"{UNET_PREFIX}{_MMDIT_FIXED[module]}.{param}"] = value
            continue
        m = re.fullmatch(r"transformer_blocks\.(\d+)\.(.+)", module)
        if m is None:
            raise ValueError(f"no MMDiT name for the transformer parameter {key!r}")
        block, inner = int(m[1]), m[2]
        if (q := re.fullmatch(r"attn\.(\w+)", inner)) and q[1] in _MMDIT_QKV:
            stream, part = _MMDIT_QKV[q[1]]
            fused.setdefault((block, stream, param), {})[part] = value
            continue
        if inner not in _MMDIT_BLOCK:
            raise ValueError(f"no MMDiT name for the transformer parameter {key!r}")
        if inner == "norm1_context.linear" and block == last:
            value = _swap_halves(value)
        out[f"{UNET_PREFIX}joint_blocks.{block}.{_MMDIT_BLOCK[inner]}.{param}"] = value
    for (block, stream, param), parts in fused.items():
        out[f"{UNET_PREFIX}joint_blocks.{block}.{stream}.attn.qkv.{param}"] = torch.cat(
            [parts["q"], parts["k"], parts["v"]])
    return out


SD3_CLIP_L_PREFIX = "text_encoders.clip_l.transformer."
SD3_CLIP_G_PREFIX = "text_encoders.clip_g.transformer."


def sd3_checkpoint(pipe: Any) -> dict[str, Any]:
    """An SD 3 pipeline's weights as one checkpoint of Stability's layout: the MMDiT, the VAE,
    and the two CLIP encoders (transformers' names; CLIP-L without its projection, which SD 3
    does not use). T5 is left out, as in the files without it."""
    clip_l = {k: v for k, v in clip_state(pipe.text_encoder, SD3_CLIP_L_PREFIX).items()
              if not k.endswith("text_projection.weight")}
    return {**mmdit_state(pipe.transformer), **vae_state(pipe.vae), **clip_l,
            **clip_state(pipe.text_encoder_2, SD3_CLIP_G_PREFIX)}


def sd_checkpoint(pipe: Any) -> dict[str, Any]:
    """An SD 1.x pipeline's weights as one ldm checkpoint."""
    return {**unet_state(pipe.unet), **vae_state(pipe.vae),
            **clip_state(pipe.text_encoder, SD1_CLIP_PREFIX)}


def sdxl_checkpoint(pipe: Any) -> dict[str, Any]:
    """An SDXL base pipeline's weights as one sgm checkpoint."""
    return {**unet_state(pipe.unet), **vae_state(pipe.vae),
            **clip_state(pipe.text_encoder, SDXL_CLIP_PREFIX),
            **open_clip_state(pipe.text_encoder_2, SDXL_OPEN_CLIP_PREFIX)}
