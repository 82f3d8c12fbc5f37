"""How the dispatcher runs a batch: calls that answer at once (sec_sendTransaction without
wait=commit) run in request order in the batch's own task; a batch with any call that may wait
runs one task per call, so a waiting call never holds up the others."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
from pydantic import BaseModel, ConfigDict

from secnode.runtime.rpc.jsonrpc import Dispatcher, Limits, Method


class _Params(BaseModel):
    model_config = ConfigDict(strict=True, extra="forbid")
    key: str
    wait: bool = False


class _Result(BaseModel):
    key: str


def _dispatcher(log: list[tuple[str, asyncio.Task[Any] | None]]) -> Dispatcher:
    released = asyncio.Event()

    async def call(params: Any) -> BaseModel:
        log.append((params.key, asyncio.current_task()))
        if params.wait:
            await released.wait()  # answered only once a later call of the batch has run
        else:
            released.set()
        return _Result(key=params.key)

    method = Method(
        "put",
        "a call that may wait",
        "",
        _Params,
        _Result,
        call,
        waits=True,
        answers_at_once=lambda params: not params.wait,
    )
    return Dispatcher({"put": method}, Limits())


def _batch(*calls: dict[str, Any]) -> bytes:
    return json.dumps(
        [{"jsonrpc": "2.0", "id": i, "method": "put", "params": p} for i, p in enumerate(calls)]
    ).encode()


@pytest.mark.asyncio
async def test_calls_that_answer_at_once_run_in_order_in_the_batch_task() -> None:
    log: list[tuple[str, asyncio.Task[Any] | None]] = []
    body = _batch({"key": "a"}, {"key": "b"}, {"nope": 1}, {"key": "c"})
    answer = json.loads(await _dispatcher(log).handle(body) or b"null")
    assert [entry.get("result", {}).get("key") for entry in answer] == ["a", "b", None, "c"]
    assert answer[2]["error"]["code"] == -32602
    assert [key for key, _ in log] == ["a", "b", "c"]
    assert {task for _, task in log} == {asyncio.current_task()}


@pytest.mark.asyncio
async def test_a_batch_with_a_waiting_call_runs_each_call_in_its_own_task() -> None:
    log: list[tuple[str, asyncio.Task[Any] | None]] = []
    body = _batch({"key": "waits", "wait": True}, {"key": "releases"})
    answer = await asyncio.wait_for(_dispatcher(log).handle(body), 5)
    assert [entry["result"]["key"] for entry in json.loads(answer or b"null")] == [
        "waits",
        "releases",
    ]
    assert [key for key, _ in log] == ["waits", "releases"]
    assert len({task for _, task in log}) == 2
