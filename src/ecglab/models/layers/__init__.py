"""Building blocks shared by the model families."""

from ecglab.models.layers.conv import AvgPool1d, BatchNorm1d, ConvNormAct, MaxPool1d, conv1d
from ecglab.models.layers.heads import ClassifierHead, ClassifierMixin, ConcatPoolHead, concat_pool

__all__ = [
    "AvgPool1d",
    "BatchNorm1d",
    "ClassifierHead",
    "ClassifierMixin",
    "ConcatPoolHead",
    "ConvNormAct",
    "MaxPool1d",
    "concat_pool",
    "conv1d",
]
