"""Turning POST /jobs's `outputs` or `template`, or POST /process's method, into what a job record
carries: the outputs as validated JSON, the template's name, and one queued state per output."""

from __future__ import annotations

import json

from mediaflow.jobs.model import Method
from mediaflow.jobs.outputs import encode_states, initial_states
from mediaflow.media.outputs import OutputSpec, builtin_templates, method_outputs, parse_outputs
from mediaflow.media.outputs.spec import dimension_problems
from mediaflow.settings import Settings
from mediaflow.store.templates import TemplateStore


class OutputsRequestError(ValueError):
    """Outputs or template refused; the text says what is accepted."""


async def resolve_outputs(
    outputs: list[OutputSpec] | None,
    template: str | None,
    owner: str | None,
    settings: Settings,
    templates: TemplateStore | None,
) -> dict[str, str | None]:
    if outputs is not None and template is not None:
        raise OutputsRequestError("give outputs (a list) or template (a name), not both")
    if outputs is None and template is None:
        raise OutputsRequestError(
            "give outputs (a list of 1 to 16 outputs) or template (the name of a built-in or saved template; "
            "GET /templates lists them)"
        )
    if template is not None:
        outputs = await template_outputs(template, owner, templates)
    assert outputs is not None
    problems = dimension_problems(outputs, settings.MAX_INPUT_DIMENSION)
    if problems:
        raise OutputsRequestError("; ".join(problems))
    return _record_fields(outputs, template)


def method_job_fields(method: Method, fmt: str) -> dict[str, str | None]:
    """A POST /process job: one output, its method's built-in template in `fmt`. It is made whole on
    the worker that claims it (the seed's one encode, stored under the seed's key), never in chunks."""
    spec = [
        {**output, "parallel": False} if output["type"] == "video" else output for output in method_outputs(method, fmt)
    ]
    return _record_fields(parse_outputs(spec), Method(method).value)


def _record_fields(outputs: list[OutputSpec], template: str | None) -> dict[str, str | None]:
    spec = [output.model_dump(mode="json") for output in outputs]
    return {"template": template, "outputs_spec": json.dumps(spec), "outputs": encode_states(initial_states(spec))}


async def template_outputs(name: str, owner: str | None, templates: TemplateStore | None) -> list[OutputSpec]:
    builtin = builtin_templates().get(name)
    if builtin is not None:
        return parse_outputs(builtin[1])
    saved = await templates.get(owner, name) if templates is not None and len(name) <= 64 else None
    if saved is None:
        names = list(builtin_templates()) + ([t.name for t in await templates.list(owner)] if templates else [])
        raise OutputsRequestError(f"unknown template {name!r}; choose one of: {', '.join(names)}")
    return parse_outputs(json.loads(saved.outputs))
