"""Templates: named lists of outputs for POST /jobs `{"template": NAME}`. The built-in ones (the seed's
five methods, `web`, `hls`) are read-only; saved ones live in the job store, per API key."""

from __future__ import annotations

import json
from typing import Annotated

from fastapi import HTTPException, Path, Response
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, ConfigDict, Field

from mediaflow.api.deps import OwnerDep, SettingsDep, StoreDep
from mediaflow.api.openapi import Tag
from mediaflow.api.routes import authenticated_router
from mediaflow.jobs.model import utcnow
from mediaflow.media.outputs import builtin_templates
from mediaflow.media.outputs.params import NAME_PATTERN
from mediaflow.media.outputs.spec import OutputList, dimension_problems
from mediaflow.store.templates import MAX_TEMPLATES_PER_OWNER, StoredTemplate

router = authenticated_router(Tag.TEMPLATES)
TemplateName = Annotated[str, Path(pattern=NAME_PATTERN, description="Letters, digits, '-' and '_', at most 64.")]


class TemplateBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    description: str = Field(default="", max_length=500)
    outputs: OutputList


class NewTemplate(TemplateBody):
    name: str = Field(pattern=NAME_PATTERN)


class TemplateResponse(BaseModel):
    name: str
    description: str
    builtin: bool
    outputs: list[dict]


class TemplatesResponse(BaseModel):
    templates: list[TemplateResponse]


def _saved(template: StoredTemplate) -> TemplateResponse:
    return TemplateResponse(
        name=template.name, description=template.description, builtin=False, outputs=json.loads(template.outputs)
    )


def _builtin(name: str) -> TemplateResponse | None:
    found = builtin_templates().get(name)
    return None if found is None else TemplateResponse(name=name, description=found[0], builtin=True, outputs=found[1])


@router.get("/templates", response_model=TemplatesResponse, summary="Built-in templates, then your saved ones")
async def list_templates(store: StoreDep, owner: OwnerDep) -> TemplatesResponse:
    builtins = [_builtin(name) for name in builtin_templates()]
    return TemplatesResponse(templates=[*builtins, *(_saved(t) for t in await store.templates.list(owner))])


@router.get(
    "/templates/{name}",
    response_model=TemplateResponse,
    summary="One template",
    responses={404: {"description": "No such template"}},
)
async def get_template(name: TemplateName, store: StoreDep, owner: OwnerDep) -> TemplateResponse:
    found = _builtin(name) or ((saved := await store.templates.get(owner, name)) and _saved(saved))
    if not found:
        raise HTTPException(404, detail=f"no template named {name!r}; GET /templates lists them")
    return found


@router.post(
    "/templates",
    status_code=201,
    response_model=TemplateResponse,
    summary="Save a template",
    responses={
        409: {"description": "The name is taken (or is a built-in's)"},
        422: {"description": "Invalid outputs; the message says what is accepted"},
    },
)
async def create_template(
    body: NewTemplate, store: StoreDep, owner: OwnerDep, settings: SettingsDep
) -> TemplateResponse:
    return await _put(body.name, body, store, owner, settings, create_only=True)


@router.put(
    "/templates/{name}",
    response_model=TemplateResponse,
    summary="Save or replace a template",
    responses={
        409: {"description": "A built-in template is read-only"},
        422: {"description": "Invalid outputs; the message says what is accepted"},
    },
)
async def replace_template(
    name: TemplateName, body: TemplateBody, store: StoreDep, owner: OwnerDep, settings: SettingsDep
) -> TemplateResponse:
    return await _put(name, body, store, owner, settings, create_only=False)


@router.delete(
    "/templates/{name}",
    status_code=204,
    summary="Remove a saved template",
    responses={404: {"description": "No such template"}, 409: {"description": "A built-in template"}},
)
async def delete_template(name: TemplateName, store: StoreDep, owner: OwnerDep) -> Response:
    _refuse_builtin(name)
    if not await store.templates.delete(owner, name):
        raise HTTPException(404, detail=f"no saved template named {name!r}")
    return Response(status_code=204)


def _refuse_builtin(name: str) -> None:
    if name in builtin_templates():
        raise HTTPException(
            409, detail=f"{name!r} is a built-in template and cannot be changed; save yours under another name"
        )


async def _put(
    name: str, body: TemplateBody, store, owner: str | None, settings, *, create_only: bool
) -> TemplateResponse:
    _refuse_builtin(name)
    problems = dimension_problems(body.outputs, settings.MAX_INPUT_DIMENSION)
    if problems:  # the same 422 shape as the model's own checks
        raise RequestValidationError(
            [{"type": "value_error", "loc": ("body", "outputs"), "msg": p, "input": None} for p in problems]
        )
    if (
        await store.templates.get(owner, name) is None
        and len(await store.templates.list(owner)) >= MAX_TEMPLATES_PER_OWNER
    ):
        raise HTTPException(409, detail=f"at most {MAX_TEMPLATES_PER_OWNER} saved templates; remove one first")
    now = utcnow()
    template = StoredTemplate(
        name=name,
        owner=owner,
        description=body.description,
        created_at=now,
        updated_at=now,
        outputs=json.dumps([o.model_dump(mode="json") for o in body.outputs]),
    )
    if not await store.templates.put(template, create_only=create_only):
        raise HTTPException(409, detail=f"a template named {name!r} exists; PUT /templates/{name} replaces it")
    return _saved(template)
