"""Reading a pydantic `ValidationError` as (field, message) problems: one rule for every edge.

The genesis file, the node's config.toml and the RPC parameters are validated by strict pydantic
models; each reports a failure as problems that name the field by its dotted path
(``accounts.3.roles``) and never echo the input (which may be large). The path of a problem with
the whole document is empty; callers that print a line name it (``(document)``, ``(file)``).
"""

from __future__ import annotations

from pydantic import ValidationError

VALUE_ERROR_PREFIX = "Value error, "
"""What pydantic puts before the message of a `ValueError` raised in a validator."""


def validation_problems(
    exc: ValidationError, *, bare_value_errors: bool = False
) -> list[tuple[str, str]]:
    """(dotted field path, message) per error of `exc`, in pydantic's order.

    With `bare_value_errors`, the message of a validator's own `ValueError` loses pydantic's
    ``"Value error, "`` prefix (the RPC answers do this; the genesis and config errors keep it).
    """
    problems = []
    for error in exc.errors(include_input=False, include_url=False):
        message = error["msg"]
        if bare_value_errors and error["type"] == "value_error":
            message = message.removeprefix(VALUE_ERROR_PREFIX)
        problems.append((".".join(str(part) for part in error["loc"]), message))
    return problems


def describe_validation_error(exc: ValidationError, whole: str) -> str:
    """The problems of `exc` on one line, ``"field: message; field: message"``; a problem with
    the whole document (empty path) is put under the name `whole`."""
    return "; ".join(f"{field or whole}: {message}" for field, message in validation_problems(exc))
