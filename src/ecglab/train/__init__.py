"""Training: a YAML recipe, one plain PyTorch loop, safetensors checkpoints that resume."""
