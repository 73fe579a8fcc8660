"""Distillation of a 12-lead teacher into a single-lead student (MVMS-ECG, MVKT-ECG).

It is supervised training with a frozen teacher beside the student: `train`'s recipe with a
`distill:` section (see `ecglab distill` and docs/pretraining.md). The losses are in `losses`,
the teacher's loading and checks in `teacher`, the student-teacher module in `distiller`.
"""
