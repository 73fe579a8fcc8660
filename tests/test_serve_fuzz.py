"""The OpenAPI schema tells the truth: schemathesis drives every operation of a real server from it.

A bounded number of generated requests per operation and mode (valid and invalid data); any 5xx,
an undocumented status, or a body that does not match its schema fails the test. One check is left
out: `positive_data_acceptance` expects a schema-valid upload to be scored, but no schema can say
what an ECG is, so random bytes named `files.png` are rightly refused (415, 422).
"""

from __future__ import annotations

import pytest

schemathesis = pytest.importorskip("schemathesis", reason="the fuzz test needs schemathesis (the test extra)")
pytest.importorskip("fastapi", reason="ecglab serve needs fastapi, uvicorn and python-multipart")

from hypothesis import HealthCheck, Phase, given, settings  # noqa: E402
from schemathesis import GenerationMode  # noqa: E402
from schemathesis.specs.openapi.checks import positive_data_acceptance  # noqa: E402

from infer_helpers import make_checkpoint  # noqa: E402
from serve_helpers import running_server  # noqa: E402

EXAMPLES = 20  # per operation and mode: the whole test stays well under a minute once the server is up


def test_schema_holds_for_generated_requests(tmp_path):
    with running_server(make_checkpoint(tmp_path / "ckpt"), tmp_path, "--max-upload-mb", "1") as server:
        schema = schemathesis.openapi.from_url(f"{server.url}/openapi.json")
        operations = [result.ok() for result in schema.get_all_operations()]
        assert {op.path for op in operations} == {"/health", "/predict", "/explain"}
        for operation in operations:
            _fuzz(operation, GenerationMode.POSITIVE)
            if operation.method.upper() == "POST":  # GET /health takes nothing that could be wrong
                _fuzz(operation, GenerationMode.NEGATIVE)
        assert server.leftovers() == [] and server.proc.poll() is None


def _fuzz(operation, mode) -> None:
    @given(case=operation.as_strategy(generation_mode=mode))
    @settings(max_examples=EXAMPLES, deadline=None, derandomize=True, database=None,
              phases=[Phase.explicit, Phase.generate], suppress_health_check=list(HealthCheck))  # fmt: skip
    def check(case):
        case.call_and_validate(timeout=60, excluded_checks=[positive_data_acceptance])

    check()
