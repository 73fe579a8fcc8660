"""CinC 2020/2021 WFDB folders: sources, scored-class tasks, Georgia's header quirk and bad input."""

from __future__ import annotations

import csv

import numpy as np
import pytest

from data_helpers import write_cinc_record
from ecglab.data import RecordError, label_matrix, task_records
from ecglab.data.cinc2020 import CinC2020, source_of
from ecglab.data.cinc_scored import SCORED_2020, SCORED_2021
from ecglab.data.leads import STANDARD_LEADS

SOURCES = {"E0750": "Georgia", "HR0600": "PTB_XL", "JS2000": "Ningbo"}


@pytest.mark.data
def test_real_records_load(cinc2020_root):
    reader = CinC2020(cinc2020_root)
    records = reader.records
    assert len(records) == 13 and reader.skipped.empty
    assert list(records.columns[:6]) == ["patient_id", "fs", "n_samples", "labels", "fold", "path"]
    expected = {f"{p}{i}": s for p, s in SOURCES.items() for i in range(4)} | {"S0001": "PTB"}
    assert records["source"].to_dict() == expected
    assert records.loc["E07500", ["age", "sex"]].tolist() == [78, "M"]
    assert records.at["E07500", "labels"] == ("67741000119109", "426177001")
    for record_id in records.index:  # Georgia's headers (record line `E07500.mat`) read too
        x = reader.load_signal(record_id)
        assert x.dtype == np.float32 and x.shape == (12, records.at[record_id, "n_samples"])
        assert np.isfinite(x).all() and np.abs(x).max() > 0
    assert records.loc["S0001", ["fs", "n_samples"]].tolist() == [1000, 38400]
    assert records["fold"].between(1, 10).all()
    assert (CinC2020(cinc2020_root).records["fold"] == records["fold"]).all()  # deterministic


@pytest.mark.data
def test_real_scored_tasks(cinc2020_root):
    reader = CinC2020(cinc2020_root)
    task = reader.task("scored2020")
    assert task.num_classes == 24 and reader.task("scored2021").num_classes == 26
    kept, y = task_records(reader.records, task)
    assert "S0001" not in kept.index and len(kept) == 12  # 164865005 (MI) is not scored
    rows = dict(zip(kept.index, y, strict=True))
    on = {rid: {task.classes[i] for i in np.flatnonzero(v)} for rid, v in rows.items()}
    assert on["E07500"] == {"SB"} and on["HR06000"] == {"TAb", "NSR"}
    assert on["JS20000"] == {"PAC|SVPB", "STach", "NSIVCB"}
    assert on["JS20003"] == {"PAC|SVPB", "STach", "TAb", "PVC|VPB"}  # 427172004 -> PVC|VPB
    assert y.sum(axis=0)[task.classes.index("STach")] == 7


@pytest.mark.data
@pytest.mark.parametrize(("year", "table", "n_codes"), [("2020", SCORED_2020, 27), ("2021", SCORED_2021, 30)])
def test_constants_match_scoring_tables(cinc2020_root, year, table, n_codes):
    with open(cinc2020_root / f"evaluation-{year}" / "dx_mapping_scored.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    code_column = "SNOMED CT Code" if year == "2020" else "SNOMEDCTCode"
    published = {r[code_column]: r["Abbreviation"] for r in rows}
    ours = {code: name.split("|")[codes.index(code)] for name, codes in table for code in codes}
    assert len(published) == n_codes and ours == published
    with open(cinc2020_root / f"evaluation-{year}" / "weights.csv", newline="") as f:
        columns = next(csv.reader(f))[1:]
    if year == "2021":  # weights.csv lists the merged classes in our order
        assert columns == ["|".join(codes) for _, codes in table]


@pytest.mark.data
def test_cpsc_first_release_names(cpsc2018_root):
    reader = CinC2020(cpsc2018_root / "cinc2020")
    assert len(reader.records) == 28 and set(reader.records["source"]) == {"CPSC"}
    assert reader.records.at["A0001", "labels"] == ("59118001",)  # `#Dx: RBBB`
    counts = label_matrix(reader.records["labels"], reader.task("scored2020")).sum(axis=0)
    assert counts[reader.task("scored2020").classes.index("CRBBB|RBBB")] == 4


def test_sources():
    names = [
        "A0001",
        "Q0001",
        "I0001",
        "S0001",
        "HR00001",
        "E00001",
        "JS00001",
        "JS10646",
        "JS10647",
        "X1",
        "foo",
    ]
    assert [source_of(n) for n in names] == [
        "CPSC", "CPSC_Extra", "StPetersburg", "PTB", "PTB_XL", "Georgia",
        "Chapman_Shaoxing", "Chapman_Shaoxing", "Ningbo", "unknown", "unknown",
    ]  # fmt: skip


def test_written_folder(tmp_path):
    order = STANDARD_LEADS[::-1]
    val = np.arange(12 * 1000, dtype=np.int16).reshape(12, 1000)
    write_cinc_record(tmp_path / "a", "E00001", val, leads=order, comments={"Age": "NaN", "Sex": "Unknown",
                      "Dx": "713427006,63593006"}, record_line_name="E00001.mat")  # fmt: skip
    write_cinc_record(tmp_path / "b", "JS00001", comments={"Dx": "426783006", "Age": "50", "Sex": "Female"})
    write_cinc_record(tmp_path / "b", "E00001", comments={"Dx": "426783006"})  # duplicate name
    write_cinc_record(tmp_path / "b", "Q0001", comments={"Dx": "426783006,NOTACODE"})
    write_cinc_record(tmp_path / "b", "Q0002", comments={"Age": "40"})
    reader = CinC2020(tmp_path)
    records = reader.records
    assert list(records.index) == ["E00001", "JS00001"]
    assert records.at["E00001", "path"].endswith("a/E00001.hea")
    assert records["age"].isna().tolist() == [True, False] and records["sex"].isna().tolist() == [True, False]
    reasons = reader.skipped.set_index("record_id")["reason"]
    assert "seen before" in reasons["E00001"] and "unknown #Dx entry 'NOTACODE'" in reasons["Q0001"]
    assert "no #Dx" in reasons["Q0002"]
    x = reader.load_signal("E00001")
    np.testing.assert_allclose(x, val[::-1] / 1000, atol=1e-6)  # leads put in the standard order
    y = label_matrix(records["labels"], reader.task("scored2021"))
    assert y[0, reader.task("scored2021").classes.index("CRBBB|RBBB")] == 1
    assert y[0, reader.task("scored2021").classes.index("PAC|SVPB")] == 1


@pytest.mark.parametrize(
    ("kind", "message"),
    [
        ("short", "need 1 s"),
        ("lead", "unknown lead name 'X1'"),
        ("variable", "no variable 'val'"),
        ("inf", "1 NaN or infinite sample"),
        ("missing_mat", "signal file named by the header is missing"),
        ("eleven", "missing lead"),
    ],
)
def test_bad_records(tmp_path, kind, message):
    leads = list(STANDARD_LEADS)
    val = np.ones((12, 400 if kind == "short" else 1000), dtype=np.int16)
    if kind == "lead":
        leads[3] = "X1"
    if kind == "inf":
        val = val.astype(np.float64)
        val[4, 7] = np.inf
    if kind == "eleven":
        val, leads = val[:11], leads[:11]
    hea = write_cinc_record(tmp_path, "HR00001", val, leads=tuple(leads), comments={"Dx": "426783006"},
                            variable="data" if kind == "variable" else "val")  # fmt: skip
    if kind == "missing_mat":
        hea.with_suffix(".mat").unlink()
    with pytest.raises(RecordError, match=message) as info:
        CinC2020(tmp_path).load_signal("HR00001")
    assert "HR00001" in str(info.value)
