"""Linear evaluation: a pretrained encoder frozen, only the classifier head learning."""

from __future__ import annotations

import types
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn

from ecglab.models.layers.heads import LinearProbe, add_linear_probe
from ecglab.train.config import RANDOM_ENCODER


def _train_head_only(model: nn.Module, mode: bool = True) -> nn.Module:
    nn.Module.train(model, False)
    model.head.train(mode)
    return model


def freeze_encoder(model: nn.Module) -> nn.Module:
    """Freeze everything but `model.head`, keep the encoder in eval mode from now on, and make the
    head's classifier a linear probe (`add_linear_probe`: standardised features, then linear).

    Gradients stop at the head, and `model.train()` trains the head only, so the encoder's
    normalisation statistics and dropout stay as in evaluation: the encoder is a fixed feature
    extractor. For a strict linear evaluation the head must be linear (a ClassifierHead);
    models built with a ConcatPoolHead (resnet1d_wang, inception1d, ...) train that head's
    hidden layer too. Returns the model; pass only `trainable(model)` to the optimiser.
    """
    if not isinstance(getattr(model, "head", None), nn.Module):
        raise TypeError(
            f"{type(model).__name__} has no `head` module: cannot tell its classifier from its encoder"
        )
    for name, param in model.named_parameters():
        param.requires_grad_(name.startswith("head."))
    add_linear_probe(model)
    model.train = types.MethodType(_train_head_only, model)
    return model.train(model.training)


def trainable(model: nn.Module) -> list[nn.Parameter]:
    """The parameters an optimiser should update: those that still require gradients."""
    return [p for p in model.parameters() if p.requires_grad]


def _encoder_part(state: dict) -> dict:
    return {key: value for key, value in state.items() if not key.startswith("head.")}


def load_pretrained_encoder(model: nn.Module, folder: str | Path, model_name: str, in_chans: int) -> None:
    """Copy the weights of a pretrained encoder folder (`ecglab pretrain`'s RUN/encoder) into
    `model`, all but the head's. An encoder of another model, or of other shapes (leads,
    model_kwargs), is an error naming both."""
    from ecglab.train.checkpoint import load_checkpoint

    encoder, meta = load_checkpoint(folder)
    theirs, ours = _encoder_part(encoder.state_dict()), _encoder_part(model.state_dict())
    both = (
        f"{folder} holds a pretrained {meta.model} ({meta.in_chans} leads, model_kwargs {meta.model_kwargs}); "
        f"the recipe's model is {model_name} ({in_chans} leads)"
    )
    if meta.model != model_name:
        raise ValueError(f"{both}: set model: {meta.model}, or pretrain a {model_name}")
    differ = sorted(set(theirs) ^ set(ours))
    if differ:
        raise ValueError(f"{both}: tensor(s) {', '.join(differ[:3])} are in one and not the other")
    for key, value in theirs.items():
        if value.shape != ours[key].shape:
            raise ValueError(
                f"{both}: tensor {key!r} is {tuple(value.shape)} there and {tuple(ours[key].shape)} here; "
                "use the leads and model_kwargs the encoder was pretrained with"
            )
    model.load_state_dict(theirs, strict=False)


def start_from(model: nn.Module, init, model_name: str, in_chans: int) -> nn.Module:
    """`train`'s `init:` (an InitConfig): the pretrained encoder's weights, frozen in linear mode.

    `path: random` keeps the model's own random weights and freezes them (the random-encoder baseline).
    """
    if init.path is None:
        return model
    if init.path != RANDOM_ENCODER:
        load_pretrained_encoder(model, init.path, model_name, in_chans)
    return freeze_encoder(model) if init.mode == "linear" else model


@torch.no_grad()
def estimate_norm_statistics(model: nn.Module, batches) -> int:
    """Estimate every BatchNorm's running mean and variance of `model` afresh from `batches` of
    inputs (a cumulative average; labels unused, no weight changes, every other module in eval mode
    so no dropout is drawn). Returns the number of BatchNorm layers.

    The random-encoder baseline's: PyTorch starts running statistics at mean 0 and variance 1, which
    leaves a frozen random network unnormalised (resnet1d_wang's pooled features then vary about 20x
    less between windows than a pretrained encoder's, whose statistics come from its pool). With the
    training windows' statistics it differs from a pretrained encoder in its learned weights only.
    """
    norms = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    modes = {m: m.training for m in model.modules()}
    momenta = {m: m.momentum for m in norms}
    nn.Module.train(model, False)
    for norm in norms:
        norm.reset_running_stats()
        norm.momentum = None
        norm.train(True)
    device = next(model.parameters()).device
    for x in batches if norms else ():
        model(x.to(device))
    for module, training in modes.items():
        module.training = training
    for norm, momentum in momenta.items():
        norm.momentum = momentum
    return len(norms)


@torch.no_grad()
def start_at_label_prior(model: nn.Module, y: np.ndarray, multilabel: bool) -> bool:
    """Set a linear probe's bias to the training labels' log-odds (multi-label) or log-frequencies
    (one class per record); True if the model has a probe.

    The probe then starts where an intercept-only logistic regression ends, and its weights learn
    only what the features add: at the recipe's learning rate a bias that starts at 0 takes most of
    a short run to reach the rare classes' log-odds (about -4 for a class in 2% of the records).
    """
    probe = getattr(getattr(model, "head", None), "fc", None)
    if not isinstance(probe, LinearProbe):
        return False
    share = np.clip(np.asarray(y, dtype=np.float64).mean(0), 1e-4, 1 - 1e-4)
    bias = np.log(share / (1 - share)) if multilabel else np.log(share)
    probe.fc.bias.copy_(torch.as_tensor(bias, dtype=probe.fc.bias.dtype))
    return True


def param_groups(model: nn.Module, lr: float, encoder_lr_scale: float = 1.0) -> list[dict]:
    """The optimiser's parameter groups: one of every trainable parameter, or, when the encoder
    learns at another rate, the head at `lr` then the encoder at lr x encoder_lr_scale."""
    named = [(name, p) for name, p in model.named_parameters() if p.requires_grad]
    if encoder_lr_scale == 1.0:
        return [{"params": [p for _, p in named]}]
    head = [p for name, p in named if name.startswith("head.")]
    encoder = [p for name, p in named if not name.startswith("head.")]
    return [{"params": head, "lr": lr}, {"params": encoder, "lr": lr * encoder_lr_scale}]
