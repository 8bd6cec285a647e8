"""`mlflow models serve` of a registered classifier under bad and heavy input.

A 32 px classifier trained 1 epoch on a small copy of the real data (a local sqlite store),
served with `mlflow models serve --env-manager local` on a free loopback port. Malformed
base64, a non-image, a truncated JPEG, an image over the 50 Mpx limit, an empty cell, an empty
frame and a missing column each get the answer the contract in serving/pyfunc.py gives: bad
rows their own error beside the good rows' answers (HTTP 200), a 400 naming every row and its
cause when no row is readable, and never a stack trace or a server path. The server answers
good requests afterwards, and `bench serve` finds no unexpected answer among concurrent ones.
About 45 s on 2 cores.
"""

from __future__ import annotations

import base64
import json
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from conftest import new_store, use_store
from pneumonia_aug.bench.serve import run_serve_bench, served
from pneumonia_aug.bench.serve_requests import (
    OVERSIZED_PX,
    Kind,
    oversized_png,
    problem,
    request_kinds,
)

MODEL_URI = "models:/pneumonia-chexnet/1"
SERVE_READY_S = 300  # torch import and model load: 15 s idle, minutes on a busy machine


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


@pytest.fixture(scope="module")
def server(small_real_data, tmp_path_factory, store_template):
    """(base URL, the store's folder, real X-ray files) of the served classifier."""
    import mlflow
    from click.testing import CliRunner

    from pneumonia_aug.cli import main

    root = tmp_path_factory.mktemp("serving")
    uri = new_store(store_template, root)
    with pytest.MonkeyPatch.context() as patch:
        use_store(patch, uri, root)
        train = CliRunner().invoke(main, ["train-classifier", "--image-size", "32", "--epochs",
                                          "1", "--data-dir", str(small_real_data)])
    mlflow.set_tracking_uri(None)
    assert train.exit_code == 0, train.output[-3000:]
    xrays = [sorted((small_real_data / "test" / label).glob("*.jpeg"))[0]
             for label in ("NORMAL", "PNEUMONIA")]
    env = {"MLFLOW_TRACKING_URI": uri, "MLFLOW_ALLOW_PICKLE_DESERIALIZATION": "false"}
    with served(MODEL_URI, log_dir=root, env=env, timeout=SERVE_READY_S) as url:
        yield url, root, xrays


def _post(url: str, columns: list[str], rows: list) -> tuple[int, str]:
    body = json.dumps({"dataframe_split": {"columns": columns, "data": [[r] for r in rows]}})
    request = urllib.request.Request(f"{url}/invocations", data=body.encode(), method="POST",
                                     headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


def _no_leak(body: str, root: Path) -> None:
    """No stack trace, no path of the server's files, no echo of the request's images."""
    assert "stack_trace" not in body and "Traceback" not in body, body[:500]
    for fragment in (str(root), "site-packages", ".py", str(Path.home())):
        assert fragment not in body, (fragment, body[:500])
    assert len(body) < 2000, body[:500]


@pytest.mark.slow
def test_bad_rows_get_their_error_beside_the_good_rows(server):
    url, root, (normal, pneumonia) = server
    good = [_b64(normal.read_bytes()), _b64(pneumonia.read_bytes())]
    bad = {1: ("not base64 at all!", "not base64"),
           3: (_b64(b"%PDF-1.4 a document"), "unreadable image"),
           4: (_b64(normal.read_bytes()[:300]), "unreadable image"),
           5: (_b64(oversized_png(*OVERSIZED_PX)), "exceeds the 50,000,000 px limit"),
           6: ("", "empty")}
    rows = [good[0], bad[1][0], good[1], bad[3][0], bad[4][0], bad[5][0], bad[6][0]]
    status, body = _post(url, ["image"], rows)
    assert status == 200, body[:1000]
    answers = json.loads(body)["predictions"]
    assert len(answers) == len(rows)
    for row, answer in enumerate(answers):
        if row in bad:
            assert answer["probability"] is None and answer["label"] is None, answer
            assert answer["threshold"] is None, answer
            assert bad[row][1] in answer["error"], (row, answer)
        else:
            assert answer["error"] is None and 0.0 <= answer["probability"] <= 1.0, answer
            assert answer["label"] == ("PNEUMONIA" if answer["probability"]
                                       >= answer["threshold"] else "NORMAL"), answer
    # The good rows' answers are the ones they get alone: bad neighbours change nothing.
    status, alone = _post(url, ["image"], good)
    assert status == 200
    alone = json.loads(alone)["predictions"]
    assert [answers[0]["probability"], answers[2]["probability"]] == pytest.approx(
        [a["probability"] for a in alone], abs=1e-6)
    _no_leak(body, root)


@pytest.mark.slow
def test_no_readable_row_is_a_400_naming_each_row(server):
    url, root, _ = server
    status, body = _post(url, ["image"], ["@@@", _b64(oversized_png(*OVERSIZED_PX)), None])
    assert status == 400, body[:1000]
    answer = json.loads(body)
    assert answer["error_code"] == "INVALID_PARAMETER_VALUE"
    message = answer["message"]
    assert message.startswith("no row holds a readable image (3 rows): "), message
    assert "row 0: not base64" in message
    assert f"row 1: {OVERSIZED_PX[0]}x{OVERSIZED_PX[1]} px exceeds" in message
    assert "row 2: no image (null)" in message
    assert "@@@" not in message  # the request is not echoed back
    _no_leak(body, root)


@pytest.mark.slow
def test_empty_frame_missing_column_and_garbage_are_400s_and_the_server_lives_on(server):
    url, root, (normal, _) = server
    status, body = _post(url, ["image"], [])
    assert status == 400 and "the request has no rows" in json.loads(body)["message"], body
    _no_leak(body, root)
    status, body = _post(url, ["picture"], [_b64(normal.read_bytes())])
    assert status == 400 and "missing inputs ['image']" in json.loads(body)["message"], body
    assert "stack_trace" not in body
    request = urllib.request.Request(f"{url}/invocations", data=b"{not json", method="POST",
                                     headers={"Content-Type": "application/json"})
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(request, timeout=60)
    assert refused.value.code == 400
    # Still serving: the health check and a good image.
    with urllib.request.urlopen(f"{url}/ping", timeout=10) as response:
        assert response.status == 200
    status, body = _post(url, ["image"], [_b64(normal.read_bytes())])
    assert status == 200 and json.loads(body)["predictions"][0]["error"] is None


@pytest.mark.slow
def test_bench_serve_finds_no_unexpected_answer(server, small_real_data, tmp_path):
    url, _, _ = server
    output = tmp_path / "benchmarks.md"
    result = run_serve_bench(model="", url=url, requests=36, clients=4,
                             data_dir=str(small_real_data), output=output)
    assert len(result.outcomes) == 36 and not result.unexpected, result.unexpected[:3]
    assert {o.kind.name for o in result.outcomes} == {k.name for k in result.kinds}
    text = output.read_text()
    assert f"## {result.heading}" in text and "**Unexpected answers: 0**" in text
    assert "| empty frame | 400 |" in text


def test_the_bench_checker_catches_answers_off_the_contract(tmp_path):
    image = tmp_path / "x.jpeg"
    image.write_bytes(b"\xff\xd8 not really")
    kinds = {k.name: k for k in request_kinds([image] * 4)}
    mixed = kinds["batch: 2 good, 2 bad rows"]
    good = {"probability": 0.7, "label": "PNEUMONIA", "threshold": 0.6, "error": None}
    bad = {"probability": None, "label": None, "threshold": None, "error": "not base64"}

    def answer(*rows) -> bytes:
        return json.dumps({"predictions": list(rows)}).encode()

    assert problem(mixed, 200, answer(good, bad, good, bad)) is None
    assert "expected 200" in problem(mixed, 400, b'{"message": "x"}')
    assert "row 1" in problem(mixed, 200, answer(good, good, good, bad))
    # The label must be the one the threshold gives.
    assert "row 0" in problem(mixed, 200, answer({**good, "threshold": 0.8}, bad, good, bad))
    # NaN (what a float column with a missing value becomes) is not JSON.
    assert "not JSON" in problem(mixed, 200, answer({**good, "probability": float("nan")}, bad,
                                                    good, bad))
    assert "expected 4 predictions" in problem(mixed, 200, answer(good))
    refused = Kind("refused", ("a", "b"), 400, frozenset({0, 1}))
    assert problem(refused, 400, b'{"message": "row 0: x; row 1: y"}') is None
    assert "[1]" in problem(refused, 400, b'{"message": "row 0: x"}')
    assert "stack trace" in problem(refused, 400, b'{"message": "row 0: x; row 1: y", '
                                                  b'"stack_trace": "..."}')
