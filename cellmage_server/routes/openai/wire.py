"""The Chat Completions wire format: SSE frames out, and a whole ``chat.completion`` assembled
from the chunks of a streamed one (the server always streams from the provider, so a client's
``stream: false`` is answered from the same chunks, with the same timeouts, cancel and usage).
Pure: no I/O.
"""

from __future__ import annotations

import json
from typing import Any

DONE = b"data: [DONE]\n\n"
PING = b": ping\n\n"


def data_frame(payload: str) -> str:
    """One SSE event whose data is the JSON text ``payload`` (already one line)."""
    return "data: " + payload + "\n\n"


def frames_to_chunks(frames: str) -> list[dict[str, Any]]:
    """The chunks of ``data_frame`` events, in order."""
    return [json.loads(f[6:]) for f in frames.split("\n\n") if f.startswith("data: ")]


class Assembler:
    """Folds ``chat.completion.chunk`` objects into one ``chat.completion``."""

    def __init__(self) -> None:
        self._head: dict[str, Any] = {}
        self._choices: dict[int, dict[str, Any]] = {}
        self._content: dict[int, list[str]] = {}
        self._refusal: dict[int, list[str]] = {}
        self._tools: dict[int, dict[int, dict[str, Any]]] = {}
        self._usage: dict[str, Any] | None = None

    def add(self, chunk: dict[str, Any]) -> None:
        for key in ("id", "created", "model", "system_fingerprint", "service_tier"):
            if chunk.get(key) is not None and key not in self._head:
                self._head[key] = chunk[key]
        if chunk.get("usage"):
            self._usage = chunk["usage"]
        for part in chunk.get("choices") or ():
            index = part.get("index", 0)
            choice = self._choices.setdefault(
                index, {"index": index, "message": {"role": "assistant"}, "finish_reason": None, "logprobs": None}
            )
            delta = part.get("delta") or {}
            if delta.get("role"):
                choice["message"]["role"] = delta["role"]
            if delta.get("content"):
                self._content.setdefault(index, []).append(delta["content"])
            if delta.get("refusal"):
                self._refusal.setdefault(index, []).append(delta["refusal"])
            for call in delta.get("tool_calls") or ():
                self._tool_call(index, call)
            if delta.get("function_call"):  # the deprecated single function call
                target = choice["message"].setdefault("function_call", {"name": "", "arguments": ""})
                target["name"] += delta["function_call"].get("name") or ""
                target["arguments"] += delta["function_call"].get("arguments") or ""
            if part.get("finish_reason"):
                choice["finish_reason"] = part["finish_reason"]
            logprobs = part.get("logprobs")
            if logprobs:
                kept = choice["logprobs"] = choice["logprobs"] or {"content": [], "refusal": None}
                kept["content"].extend(logprobs.get("content") or ())

    def _tool_call(self, index: int, call: dict[str, Any]) -> None:
        calls = self._tools.setdefault(index, {})
        entry = calls.setdefault(
            call.get("index", len(calls)), {"id": None, "type": "function", "function": {"name": "", "arguments": ""}}
        )
        if call.get("id"):
            entry["id"] = call["id"]
        if call.get("type"):
            entry["type"] = call["type"]
        function = call.get("function") or {}
        entry["function"]["name"] += function.get("name") or ""
        entry["function"]["arguments"] += function.get("arguments") or ""

    def result(self) -> dict[str, Any]:
        choices = []
        for index in sorted(self._choices):
            choice = self._choices[index]
            message = choice["message"]
            message["content"] = "".join(self._content[index]) if index in self._content else None
            message["refusal"] = "".join(self._refusal[index]) if index in self._refusal else None
            if index in self._tools:
                message["tool_calls"] = [self._tools[index][k] for k in sorted(self._tools[index])]
            choices.append(choice)
        return {
            "id": self._head.get("id", "chatcmpl-cellmage"),
            "object": "chat.completion",
            "created": self._head.get("created", 0),
            "model": self._head.get("model", ""),
            "choices": choices,
            "usage": self._usage,
            **{k: self._head[k] for k in ("system_fingerprint", "service_tier") if k in self._head},
        }
