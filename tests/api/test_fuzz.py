"""Property-based fuzzing of the OpenAPI schema (schemathesis, bounded): no request the schema allows,
or nearly allows (negative mode), makes the server answer 5xx, and documented responses match their
schemas."""

from __future__ import annotations

import schemathesis
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import response_schema_conformance

from twin.api import create_app

from .conftest import auth, make_settings

EXAMPLES = 6          # per operation and mode: ~20 operations x 2 modes in ~10 s


def test_openapi_fuzz_finds_no_server_errors(workspace, tmp_path):
    cesium = tmp_path / "Cesium"            # a stand-in build, so /cesium/ serves files (503 only when missing)
    cesium.mkdir()
    (cesium / "Cesium.js").write_text("var Cesium = {};")
    app = create_app(make_settings(workspace, cesium_dir=cesium))
    app.state.run_target = "tests.api.fakes:slow_run"          # runs the fuzzer starts stay short
    failures: list[str] = []
    with TestClient(app):                                      # lifespan: registry and process pool
        schema = schemathesis.openapi.from_asgi("/openapi.json", app)
        operations = [r.ok() for r in schema.get_all_operations()]
        assert len(operations) >= 15
        for op in operations:
            for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
                @given(case=op.as_strategy(generation_mode=mode))
                @settings(max_examples=EXAMPLES, deadline=None, phases=[Phase.explicit, Phase.generate],
                          suppress_health_check=list(HealthCheck), database=None)
                def fuzz(case):
                    # as an admin, so the fuzzer reaches every route's body and parameters, not only 401/403
                    headers = {**(case.headers or {}), **auth("admin")}
                    response = case.call(headers=headers)
                    checks = [not_a_server_error] + ([response_schema_conformance] if mode is
                                                     GenerationMode.POSITIVE else [])
                    case.validate_response(response, checks=checks)

                try:
                    fuzz()
                except Unsatisfiable:         # negative mode of an operation without inputs to break
                    continue
                except Exception as exc:      # collect all operations' failures, then fail once
                    failures.append(f"{op.method.upper()} {op.path} ({mode.value}): {exc}")
    assert not failures, "\n\n".join(failures)
