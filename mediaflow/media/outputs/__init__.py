"""One job, many outputs: the spec a client writes, the ffmpeg runs that make each output, templates.

`spec` validates (pydantic), `video`/`audio`/`ladder`/`images` build argv lists, `templates` holds
the built-in templates, `executor.run_outputs` runs them. Nothing here touches a store or storage.
"""

from mediaflow.media.outputs.executor import OutputResult, OutputsProgress, plan_output, run_outputs
from mediaflow.media.outputs.files import OutputFile, mime_type
from mediaflow.media.outputs.plan import OutputError, OutputPlan, Source, Step
from mediaflow.media.outputs.spec import MAX_OUTPUTS, MAX_RENDITIONS, OUTPUT_TYPES, OutputSpec, parse_outputs
from mediaflow.media.outputs.templates import builtin_template, builtin_templates, method_outputs

__all__ = [
    "MAX_OUTPUTS",
    "MAX_RENDITIONS",
    "OUTPUT_TYPES",
    "OutputError",
    "OutputFile",
    "OutputPlan",
    "OutputResult",
    "OutputSpec",
    "OutputsProgress",
    "Source",
    "Step",
    "builtin_template",
    "builtin_templates",
    "method_outputs",
    "mime_type",
    "parse_outputs",
    "plan_output",
    "run_outputs",
]
