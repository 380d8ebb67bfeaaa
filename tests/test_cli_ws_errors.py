"""`fahflow ws` against the scripted mTLS server of test_ws_client: what an operator reads when a
call fails in flight."""

from __future__ import annotations

import pytest
from test_ws_client import MiniServer, Pki, Reply


@pytest.fixture
def server(tmp_path_factory: pytest.TempPathFactory):
    with MiniServer(Pki(tmp_path_factory.mktemp("pki"))) as srv:
        yield srv


@pytest.fixture
def ws_args(server: MiniServer) -> list[object]:
    cert, key = server.pki.client("operator")
    return ["ws", "--url", server.url, "--cert", cert, "--key", key, "--ca", server.pki.ca_path]


def test_a_lost_create_answer_says_the_outcome_is_unknown_and_what_to_check(run, server, ws_args):
    server.script.append(Reply(504, b"gateway timeout"))
    code, out, err = run(*ws_args, "create-clone", 7, 0, 3)
    assert (code, out) == (1, "")
    (line,) = err.strip().splitlines()
    assert "the outcome is unknown" in line and "HTTP 504" in line
    assert line.endswith("check with `fahflow ws job 7 0 3` before trying again")
    assert [(s.method, s.path) for s in server.seen] == [
        ("PUT", "/api/projects/7/runs/0/clones/3/create")
    ]  # sent once, never repeated


def test_a_lost_restart_answer_says_the_same(run, server, ws_args):
    server.script.append(Reply(502, b"bad gateway"))
    code, _, err = run(*ws_args, "restart", 7, 1, 2, "--yes")
    assert code == 1 and "the outcome is unknown" in err
    assert "check with `fahflow ws job 7 1 2` before trying again" in err
    assert len(server.seen) == 1
