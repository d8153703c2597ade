"""The parts of a Responses request that become chat messages and tools: input items (messages,
content parts, function calls and their outputs), function tools, ``tool_choice`` and
``text.format``. Pure; each error names the field, as responses_fields.py's do."""

from __future__ import annotations

from typing import Any

from .errors import InvalidRequest

ROLES = frozenset({"user", "assistant", "system", "developer"})
STATELESS = (
    "this server keeps no responses: send the earlier turns' items in 'input' "
    "(the output items of a response can be sent back as they are)."
)


# --- input items -> chat messages -----------------------------------------------------------


def input_messages(value: object, messages: list[dict[str, Any]]) -> bool:
    """Append the chat messages of ``input`` to ``messages``; whether reasoning items were skipped
    (another server's hidden reasoning: nothing a chat provider can take)."""
    if isinstance(value, str):
        messages.append({"role": "user", "content": value})
        return False
    if not isinstance(value, list) or not value:
        raise InvalidRequest("'input' must be a string or a non-empty array of input items.", "input")
    skipped = False
    for i, item in enumerate(value):
        where = f"input[{i}]"
        if not isinstance(item, dict):
            raise InvalidRequest(f"{where} must be an object.", where)
        kind = item.get("type", "message" if "role" in item else None)
        if kind == "message":
            messages.append(_message(item, where))
        elif kind == "function_call":
            _function_call(item, where, messages)
        elif kind == "function_call_output":
            call_id = _text_field(item, "call_id", where)
            messages.append({"role": "tool", "tool_call_id": call_id, "content": _tool_output(item.get("output"), where)})
        elif kind == "reasoning":
            skipped = True
        elif kind == "item_reference":
            raise InvalidRequest(f"{where} is an item_reference: {STATELESS}", where)
        else:
            raise InvalidRequest(
                f"{where} is of type {kind!r}: this server takes message, function_call and "
                "function_call_output items (it runs no tools of its own).",
                f"{where}.type",
            )
    return skipped


def _text_field(item: dict[str, Any], name: str, where: str) -> str:
    value = item.get(name)
    if not isinstance(value, str):
        raise InvalidRequest(f"{where}.{name} must be a string.", f"{where}.{name}")
    return value


def _message(item: dict[str, Any], where: str) -> dict[str, Any]:
    role = item.get("role")
    if role not in ROLES:
        raise InvalidRequest(f"{where}.role must be one of {', '.join(sorted(ROLES))}; got {role!r}.", f"{where}.role")
    content = item.get("content")
    if isinstance(content, str):
        return {"role": role, "content": content}
    if not isinstance(content, list):
        raise InvalidRequest(f"{where}.content must be a string or an array of content parts.", f"{where}.content")
    parts = [_part(part, f"{where}.content[{j}]") for j, part in enumerate(content)]
    if role == "assistant":
        # An earlier answer sent back (output_text and refusal parts): chat's string and refusal.
        message: dict[str, Any] = {"role": role, "content": "".join(p["text"] for p in parts if p["type"] == "text")}
        refusals = [p["refusal"] for p in parts if p["type"] == "refusal"]
        if refusals:
            message["refusal"] = "".join(refusals)
        return message
    if any(p["type"] == "refusal" for p in parts):
        raise InvalidRequest(f"{where}: only an assistant message holds a refusal.", f"{where}.content")
    if role != "user" and all(p["type"] == "text" for p in parts):
        # Instructions as one string: what every OpenAI-compatible server takes.
        return {"role": role, "content": "\n".join(p["text"] for p in parts)}
    return {"role": role, "content": parts}


def _part(part: object, where: str) -> dict[str, Any]:
    if not isinstance(part, dict):
        raise InvalidRequest(f"{where} must be an object.", where)
    kind = part.get("type")
    if kind in ("input_text", "output_text"):
        return {"type": "text", "text": _text_field(part, "text", where)}
    if kind == "refusal":
        return {"type": "refusal", "refusal": _text_field(part, "refusal", where)}
    if kind == "input_image":
        url = part.get("image_url")
        if not isinstance(url, str):
            raise InvalidRequest(f"{where}: images are taken by 'image_url' (a URL or a data: URL); this server keeps no files.", where)
        image: dict[str, Any] = {"url": url}
        if part.get("detail") in ("low", "high", "auto"):
            image["detail"] = part["detail"]
        return {"type": "image_url", "image_url": image}
    if kind == "input_file":
        data = part.get("file_data")
        if not isinstance(data, str):
            raise InvalidRequest(f"{where}: files are taken as 'file_data' (base64); this server keeps no files.", where)
        file = {"file_data": data}
        if isinstance(part.get("filename"), str):
            file["filename"] = part["filename"]
        return {"type": "file", "file": file}
    raise InvalidRequest(f"{where} is a content part of type {kind!r}, which this server does not take.", f"{where}.type")


def _function_call(item: dict[str, Any], where: str, messages: list[dict[str, Any]]) -> None:
    """A call the model made, sent back: a tool call of the assistant message before it (chat
    wants one assistant message holding every call of a turn, its tool results after it)."""
    call = {
        "id": _text_field(item, "call_id", where), "type": "function",
        "function": {"name": _text_field(item, "name", where), "arguments": _text_field(item, "arguments", where)},
    }
    last = messages[-1] if messages else None
    if last is not None and last["role"] == "assistant":
        last.setdefault("tool_calls", []).append(call)
        if not last.get("content"):
            last["content"] = None
    else:
        messages.append({"role": "assistant", "content": None, "tool_calls": [call]})


def _tool_output(output: object, where: str) -> str | list[dict[str, Any]]:
    if isinstance(output, str):
        return output
    if not isinstance(output, list):
        raise InvalidRequest(f"{where}.output must be a string or an array of content parts.", f"{where}.output")
    parts = [_part(part, f"{where}.output[{j}]") for j, part in enumerate(output)]
    if any(p["type"] != "text" for p in parts):
        raise InvalidRequest(f"{where}.output: a tool's result is text here (chat providers take no images in it).", f"{where}.output")
    return parts


# --- tools, tool choice, text format -------------------------------------------------------


def tools(value: object) -> list[dict[str, Any]]:
    """Function tools in chat's shape (``{"type": "function", "function": {...}}``)."""
    if value is None:
        return []
    if not isinstance(value, list):
        raise InvalidRequest("'tools' must be an array.", "tools")
    out = []
    for i, tool in enumerate(value):
        where = f"tools[{i}]"
        if not isinstance(tool, dict) or tool.get("type") != "function":
            kind = tool.get("type") if isinstance(tool, dict) else None
            raise InvalidRequest(
                f"{where} is a {kind!r} tool: this server takes function tools only (the tools OpenAI runs on "
                "its own servers, such as web search or file search, are not available through it).",
                f"{where}.type",
            )
        function: dict[str, Any] = {"name": _text_field(tool, "name", where)}
        for key in ("description", "parameters", "strict"):
            if tool.get(key) is not None:
                function[key] = tool[key]
        out.append({"type": "function", "function": function})
    return out


def tool_choice(choice: object) -> Any:
    """``tool_choice`` in chat's shape."""
    if choice in ("auto", "none", "required"):
        return choice
    if isinstance(choice, dict) and choice.get("type") == "function" and isinstance(choice.get("name"), str):
        return {"type": "function", "function": {"name": choice["name"]}}
    if isinstance(choice, dict) and choice.get("type") == "allowed_tools" and isinstance(choice.get("tools"), list):
        names = [t.get("name") for t in choice["tools"] if isinstance(t, dict) and t.get("type") == "function"]
        if len(names) == len(choice["tools"]) and all(isinstance(n, str) for n in names):
            allowed = [{"type": "function", "function": {"name": n}} for n in names]
            return {"type": "allowed_tools", "allowed_tools": {"mode": choice.get("mode", "auto"), "tools": allowed}}
    raise InvalidRequest(
        "'tool_choice' must be 'auto', 'none', 'required', a function ({'type': 'function', 'name': ...}) "
        "or allowed function tools.",
        "tool_choice",
    )


def text_format(text: object, body: dict[str, Any]) -> dict[str, Any]:
    """``text.format`` as chat's ``response_format`` (and ``text.verbosity``); what the response echoes."""
    if text is None:
        return {"format": {"type": "text"}}
    if not isinstance(text, dict):
        raise InvalidRequest("'text' must be an object.", "text")
    form = text.get("format") or {"type": "text"}
    kind = form.get("type") if isinstance(form, dict) else None
    if kind == "json_schema":
        if not isinstance(form.get("name"), str) or not isinstance(form.get("schema"), dict):
            raise InvalidRequest("'text.format' of type json_schema needs a 'name' and a 'schema' object.", "text.format")
        schema = {k: form[k] for k in ("name", "schema", "description", "strict") if form.get(k) is not None}
        body["response_format"] = {"type": "json_schema", "json_schema": schema}
    elif kind == "json_object":
        body["response_format"] = {"type": "json_object"}
    elif kind != "text":
        raise InvalidRequest("'text.format' must be of type text, json_schema or json_object.", "text.format")
    if text.get("verbosity") is not None:
        body["verbosity"] = text["verbosity"]
    return {**text, "format": form}
