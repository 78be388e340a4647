"""The ``llm`` agent: any OpenAI-compatible chat-completions endpoint, with tool calls.

Each turn sends the journey's current step and context and offers the model one tool per action
type the step allows (its JSON schema comes from the action's parameter schema) plus a few
control tools (finish the step with one of its outcomes, wait for the customer, hand to a
person). The model's tool calls become the turn: action calls are proposals, which then take the
same path as every other agent's (parameter validation, policy engine, executor); a control call
says what happens next.

Whatever the model does wrong — an unknown tool, arguments that are not JSON or do not fit the
schema, no tool call, a malformed answer, a timeout — becomes a hand-off to a person with an
exception kind (``llm_*``), which opens an exception case. The runtime never crashes on it.

Endpoint, model and key: ``Agent.config`` (``base_url``, ``model``, ``api_key``,
``timeout_seconds``) or the settings ``LLM_BASE_URL``, ``LLM_MODEL``, ``LLM_API_KEY``,
``LLM_TIMEOUT_SECONDS``.
"""

from __future__ import annotations

import json
from typing import Any

import httpx
from django.conf import settings

from ..actions import ACTION_SPECS, ActionParamsError, Param, validate_params
from ..models.domain import ExceptionKind
from .base import AgentTransientError, Proposal, Snapshot, Turn

CONTROL_TOOLS = {"finish_step", "wait_for_customer", "hand_to_person"}
JSON_TYPES = {"str": "string", "choice": "string", "int": "integer", "decimal": "string", "bool": "boolean"}


def param_json_schema(param: Param) -> dict[str, Any]:
    schema: dict[str, Any] = {"type": JSON_TYPES[param.type]}
    if param.type == "choice":
        schema["enum"] = list(param.choices)
    if param.type == "decimal":
        schema["pattern"] = r"^\d+(\.\d{1,2})?$"
        schema["description"] = (param.help or "amount") + (f", at least {param.min}" if param.min else "")
    elif param.type in ("str", "choice"):
        schema["maxLength"] = param.max_length
        if param.help:
            schema["description"] = param.help
    elif param.type == "int" and param.min is not None:
        schema["minimum"] = int(param.min)
    return schema


def action_tool(action: str) -> dict[str, Any]:
    spec = ACTION_SPECS[action]
    return {
        "type": "function",
        "function": {
            "name": action,
            "description": f"{spec.name}: {spec.description}",
            "parameters": {
                "type": "object",
                "properties": {
                    **{name: param_json_schema(p) for name, p in spec.params.items()},
                    "explanation": {"type": "string", "description": "Why, for the people who review it."},
                },
                "required": [*(name for name, p in spec.params.items() if p.required), "explanation"],
                "additionalProperties": False,
            },
        },
    }


def control_tools(step: dict[str, Any]) -> list[dict[str, Any]]:
    outcomes = sorted(step.get("next", {}))
    return [
        {
            "type": "function",
            "function": {
                "name": "finish_step",
                "description": "The step is done; say which outcome it had.",
                "parameters": {
                    "type": "object",
                    "properties": {"outcome": {"type": "string", "enum": outcomes}, "note": {"type": "string"}},
                    "required": ["outcome"],
                    "additionalProperties": False,
                },
            },
        },
        {
            "type": "function",
            "function": {
                "name": "wait_for_customer",
                "description": "Wait for the customer's reply (after sending them a message).",
                "parameters": {"type": "object", "properties": {}, "additionalProperties": False},
            },
        },
        {
            "type": "function",
            "function": {
                "name": "hand_to_person",
                "description": "A person must take over; say why.",
                "parameters": {
                    "type": "object",
                    "properties": {"reason": {"type": "string"}},
                    "required": ["reason"],
                    "additionalProperties": False,
                },
            },
        },
    ]


def _handoff(kind: str, reason: str) -> Turn:
    return Turn(then="handoff", reason=f"The model {reason}", exception_kind=kind)


class LlmAgent:
    def next_turn(self, snapshot: Snapshot) -> Turn:
        from ..models import Journey

        config = snapshot.agent_config or {}
        base_url = str(config.get("base_url") or settings.LLM_BASE_URL or "").rstrip("/")
        if not base_url:
            return _handoff(
                ExceptionKind.LLM_NOT_CONFIGURED, "has no endpoint: set LLM_BASE_URL or the agent's base_url."
            )
        version = Journey.objects.select_related("version").get(pk=snapshot.journey_id).version
        step = version.step(snapshot.step) or {"key": snapshot.step, "actions": [], "next": {}}
        allowed = [a for a in step.get("actions", []) if a in ACTION_SPECS]
        tools = [action_tool(a) for a in allowed] + control_tools(step)
        body = {
            "model": config.get("model") or settings.LLM_MODEL,
            "messages": self._messages(snapshot, version, step, allowed),
            "tools": tools,
            "tool_choice": "required",
            "temperature": 0,
        }
        headers = {"Content-Type": "application/json"}
        key = config.get("api_key") or settings.LLM_API_KEY
        if key:
            headers["Authorization"] = f"Bearer {key}"
        timeout = float(config.get("timeout_seconds") or settings.LLM_TIMEOUT_SECONDS)
        try:
            response = httpx.post(f"{base_url}/chat/completions", json=body, headers=headers, timeout=timeout)
        except httpx.TimeoutException:
            return _handoff(ExceptionKind.LLM_TIMEOUT, f"did not answer within {timeout:g} s.")
        except httpx.HTTPError as exc:
            raise AgentTransientError(f"chat-completions endpoint unreachable: {type(exc).__name__}") from exc
        if response.status_code == 429 or response.status_code >= 500:
            raise AgentTransientError(f"chat-completions endpoint answered HTTP {response.status_code}")
        if response.status_code != 200:
            return _handoff(
                ExceptionKind.LLM_BAD_ANSWER, f"endpoint refused the request (HTTP {response.status_code})."
            )
        try:
            message = response.json()["choices"][0]["message"]
            calls = message.get("tool_calls") or []
            if not isinstance(calls, list):
                raise TypeError("tool_calls is not a list")
        except (ValueError, KeyError, IndexError, TypeError, AttributeError):
            return _handoff(ExceptionKind.LLM_BAD_ANSWER, "gave an answer that is not a chat completion.")
        if not calls:
            return _handoff(ExceptionKind.LLM_NO_TOOL_CALL, "answered without calling a tool.")
        return self._turn(calls, step, allowed)

    def _messages(self, snapshot: Snapshot, version: Any, step: dict[str, Any], allowed: list[str]) -> list[dict]:
        system = (
            f"You are a bank's customer-service agent running the journey “{version.definition.name}” for "
            f"customer {snapshot.customer} on {snapshot.channel}. Current step: “{step.get('title', snapshot.step)}”"
            f" — {step.get('does', '')} Actions you may propose here: {', '.join(allowed) or 'none'}. "
            "Every action is checked by the bank's policy and may need a person's approval. Call tools only. "
            "When the step is done, call finish_step with its outcome; if unsure, hand_to_person."
        )
        state = {
            "request": snapshot.request,
            "facts": snapshot.facts,
            "results_of_this_step": snapshot.results,
            "customer_reply": snapshot.reply,
            "guidance_from_people": snapshot.guidance,
        }
        return [
            {"role": "system", "content": system},
            {"role": "user", "content": json.dumps(state, default=str)},
        ]

    def _turn(self, calls: list[Any], step: dict[str, Any], allowed: list[str]) -> Turn:
        proposals: list[Proposal] = []
        control: tuple[str, dict[str, Any]] | None = None
        for call in calls:
            try:
                name = call["function"]["name"]
                raw = call["function"].get("arguments") or "{}"
                args = json.loads(raw) if isinstance(raw, str) else raw
                if not isinstance(args, dict):
                    raise TypeError("arguments are not an object")
            except (KeyError, TypeError, ValueError, AttributeError):
                return _handoff(ExceptionKind.LLM_INVALID_TOOL_CALL, "made a tool call that could not be read.")
            if name in CONTROL_TOOLS:
                control = (name, args)
                continue
            if name not in allowed:
                return _handoff(
                    ExceptionKind.LLM_UNKNOWN_TOOL, f"called {str(name)[:60]!r}, which is not a tool of this step."
                )
            explanation = str(args.pop("explanation", "") or f"The model chose {ACTION_SPECS[name].name.lower()}.")
            try:
                params = validate_params(name, args)
            except ActionParamsError as exc:
                return _handoff(ExceptionKind.LLM_INVALID_ARGUMENTS, f"called {name} with bad arguments: {exc}")
            proposals.append(Proposal(action=name, params=params, explanation=explanation[:2000]))
        if control is None:
            return Turn(proposals=proposals, then="continue")
        name, args = control
        if name == "wait_for_customer":
            return Turn(proposals=proposals, then="wait_customer")
        if name == "hand_to_person":
            return Turn(
                proposals=proposals,
                then="handoff",
                reason=f"The model asked for a person: {str(args.get('reason', ''))[:300]}",
                exception_kind="agent_handoff",
            )
        outcome = args.get("outcome")
        target = step.get("next", {}).get(outcome) if isinstance(outcome, str) else None
        if target is None:
            return _handoff(
                ExceptionKind.LLM_INVALID_ARGUMENTS, f"finished the step with an unknown outcome {str(outcome)[:60]!r}."
            )
        note = str(args.get("note") or f"Step finished: {outcome}.")[:500]
        if target == "complete":
            return Turn(proposals=proposals, then="complete", note=note)
        if target == "person":
            return Turn(proposals=proposals, then="handoff", reason=note, exception_kind="agent_handoff")
        return Turn(proposals=proposals, then="goto", goto=target, note=note)
