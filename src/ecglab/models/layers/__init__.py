"""Building blocks shared by the model families."""

from ecglab.models.layers.conv import ConvNormAct, conv1d
from ecglab.models.layers.heads import ClassifierHead, ClassifierMixin, ConcatPoolHead, concat_pool

__all__ = ["ClassifierHead", "ClassifierMixin", "ConcatPoolHead", "ConvNormAct", "concat_pool", "conv1d"]
