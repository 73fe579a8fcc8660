"""The scored classes of the PhysioNet/CinC Challenges 2020 and 2021, as SNOMED-CT codes.

Copied from the official scoring tables (BSD 2-Clause, PhysioNet/CinC Challenges):
evaluation-2020 `dx_mapping_scored.csv` / `weights.csv` (27 codes) and evaluation-2021
`dx_mapping_scored.csv` / `weights.csv` (30 codes). The challenges score some pairs of codes
as one diagnosis; such a pair is one class here, named as in 2021's `weights_abbreviations.csv`
("CRBBB|RBBB"), so 2020 has 24 classes and 2021 has 26. Classes are in each year's
`weights.csv` column order, a merged pair at its first code's place.
"""

from __future__ import annotations

from ecglab.data.labels import Task

SCORED_2020: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("IAVB", ("270492004",)),
    ("AF", ("164889003",)),
    ("AFL", ("164890007",)),
    ("Brady", ("426627000",)),
    ("CRBBB|RBBB", ("713427006", "59118001")),
    ("IRBBB", ("713426002",)),
    ("LAnFB", ("445118002",)),
    ("LAD", ("39732003",)),
    ("LBBB", ("164909002",)),
    ("LQRSV", ("251146004",)),
    ("NSIVCB", ("698252002",)),
    ("PR", ("10370003",)),
    ("PAC|SVPB", ("284470004", "63593006")),
    ("PVC|VPB", ("427172004", "17338001")),
    ("LPR", ("164947007",)),
    ("LQT", ("111975006",)),
    ("QAb", ("164917005",)),
    ("RAD", ("47665007",)),
    ("SA", ("427393009",)),
    ("SB", ("426177001",)),
    ("NSR", ("426783006",)),
    ("STach", ("427084000",)),
    ("TAb", ("164934002",)),
    ("TInv", ("59931005",)),
)

SCORED_2021: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("AF", ("164889003",)),
    ("AFL", ("164890007",)),
    ("BBB", ("6374002",)),
    ("Brady", ("426627000",)),
    ("CLBBB|LBBB", ("733534002", "164909002")),
    ("CRBBB|RBBB", ("713427006", "59118001")),
    ("IAVB", ("270492004",)),
    ("IRBBB", ("713426002",)),
    ("LAD", ("39732003",)),
    ("LAnFB", ("445118002",)),
    ("LPR", ("164947007",)),
    ("LQRSV", ("251146004",)),
    ("LQT", ("111975006",)),
    ("NSIVCB", ("698252002",)),
    ("NSR", ("426783006",)),
    ("PAC|SVPB", ("284470004", "63593006")),
    ("PR", ("10370003",)),
    ("PRWP", ("365413008",)),
    ("PVC|VPB", ("427172004", "17338001")),
    ("QAb", ("164917005",)),
    ("RAD", ("47665007",)),
    ("SA", ("427393009",)),
    ("SB", ("426177001",)),
    ("STach", ("427084000",)),
    ("TAb", ("164934002",)),
    ("TInv", ("59931005",)),
)


def scored_task(name: str, table: tuple[tuple[str, tuple[str, ...]], ...]) -> Task:
    """A multi-label Task over records whose raw labels are tuples of SNOMED-CT codes."""
    class_of = {code: cls for cls, codes in table for code in codes}
    return Task(
        name,
        tuple(cls for cls, _ in table),
        True,
        lambda codes: {class_of[c] for c in codes if c in class_of},
    )


SCORED_TASKS = {
    "scored2020": scored_task("scored2020", SCORED_2020),
    "scored2021": scored_task("scored2021", SCORED_2021),
}
