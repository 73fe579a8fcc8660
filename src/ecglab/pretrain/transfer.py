"""Linear evaluation: a pretrained encoder frozen, only the classifier head learning."""

from __future__ import annotations

import types

import torch.nn as nn


def _train_head_only(model: nn.Module, mode: bool = True) -> nn.Module:
    nn.Module.train(model, False)
    model.head.train(mode)
    return model


def freeze_encoder(model: nn.Module) -> nn.Module:
    """Freeze everything but `model.head`, and keep the encoder in eval mode from now on.

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
    model.train = types.MethodType(_train_head_only, model)
    return model.train(model.training)


def trainable(model: nn.Module) -> list[nn.Parameter]:
    """The parameters an optimiser should update: those that still require gradients."""
    return [p for p in model.parameters() if p.requires_grad]
