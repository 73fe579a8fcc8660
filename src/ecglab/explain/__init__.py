"""Why a model decided: Grad-CAM and attention maps over time, drawn on 12-lead ECG paper.

Needs only the model contract (`forward_features`, `feature_info`); matplotlib is imported by
`ecglab.explain.plot` alone, so the maps work without it.
"""

from ecglab.explain.attention import attention_relevance, has_attention
from ecglab.explain.gradcam import grad_cam, grad_cam_leads, keeps_leads

__all__ = ["attention_relevance", "grad_cam", "grad_cam_leads", "has_attention", "keeps_leads"]
