"""Self-supervised pretraining: the CPC, CLOCS and ST-MEM objectives, their views, and the unlabelled pool.

Each objective is an nn.Module whose forward takes a batch and returns the scalar loss, so a loop
(and DistributedDataParallel, which syncs gradients only through forward) can drive any of them
alike. See docs/pretraining.md.
"""
