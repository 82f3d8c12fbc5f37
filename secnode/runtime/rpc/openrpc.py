"""The OpenRPC 1.2.6 document of the API, generated from the method table.

Params and result schemas come from the same pydantic models that validate requests
(`model_json_schema` via `models_json_schema`), so the document cannot drift from the code.
Shared schemas live in `components.schemas` and are referenced as
"#/components/schemas/<Model>"; the error table (secnode.runtime.rpc.errors) is `components.errors`.
Each param is a content descriptor built from one field of the method's params model, in field
order (which is also the positional order: `paramStructure` is "either").
"""

from __future__ import annotations

from collections.abc import Mapping
from importlib.metadata import PackageNotFoundError, version
from typing import Any, Final

from pydantic.json_schema import models_json_schema

from secnode.runtime.rpc.errors import ALL_ERRORS, ErrorCode
from secnode.runtime.rpc.jsonrpc import Method

OPENRPC_VERSION: Final = "1.2.6"
_REF_PREFIX: Final = "#/components/schemas/"

_INFO_DESCRIPTION: Final = (
    "JSON-RPC 2.0 API of a SEC chain node (POST /rpc). Bytes are lowercase hex without 0x, "
    "addresses are checksummed sec1 text, amounts are integers in fen. Application errors use "
    "codes -32000..-32099 (components.errors); see docs/rpc.md."
)


def _package_version() -> str:
    try:
        return version("secchain")
    except PackageNotFoundError:
        return "0+unknown"


def _error_object(error: ErrorCode) -> dict[str, Any]:
    return {"code": error.code, "message": error.name, "data": error.meaning}


def _resolve(reference: Mapping[str, Any], schemas: Mapping[str, Any]) -> Mapping[str, Any]:
    ref = reference.get("$ref")
    if isinstance(ref, str) and ref.startswith(_REF_PREFIX):
        resolved: Mapping[str, Any] = schemas[ref[len(_REF_PREFIX) :]]
        return resolved
    return reference


def _params(model_schema: Mapping[str, Any]) -> list[dict[str, Any]]:
    properties: Mapping[str, Any] = model_schema.get("properties", {})
    required = set(model_schema.get("required", []))
    descriptors = []
    for name, schema in properties.items():
        descriptor: dict[str, Any] = {"name": name, "required": name in required, "schema": schema}
        if "description" in schema:
            descriptor["description"] = schema["description"]
        descriptors.append(descriptor)
    return descriptors


def build_document(methods: Mapping[str, Method]) -> dict[str, Any]:
    """The OpenRPC document for `methods` (in table order)."""
    pairs: list[tuple[Any, Any]] = []
    for method in methods.values():
        pairs.append((method.params, "validation"))
        pairs.append((method.result, "serialization"))
    references, top = models_json_schema(pairs, ref_template=_REF_PREFIX + "{model}")
    schemas: dict[str, Any] = dict(top.get("$defs", {}))
    codes = {error.code: error for error in ALL_ERRORS}
    entries = []
    for method in methods.values():
        params_schema = _resolve(references[(method.params, "validation")], schemas)
        result_schema = references[(method.result, "serialization")]
        entries.append(
            {
                "name": method.name,
                "summary": method.summary,
                "description": method.description,
                "paramStructure": "either",
                "params": _params(params_schema),
                "result": {"name": "result", "schema": result_schema},
                "errors": [
                    {"$ref": f"#/components/errors/{codes[code].name}"} for code in method.errors
                ],
            }
        )
    return {
        "openrpc": OPENRPC_VERSION,
        "info": {
            "title": "SEC chain node JSON-RPC",
            "version": _package_version(),
            "description": _INFO_DESCRIPTION,
        },
        "methods": entries,
        "components": {
            "schemas": schemas,
            "errors": {error.name: _error_object(error) for error in ALL_ERRORS},
        },
    }
