"""ledger.validation: the one reading of pydantic errors used by genesis, config and RPC params."""

from __future__ import annotations

import pytest
from pydantic import BaseModel, ConfigDict, ValidationError, field_validator, model_validator

from ledger.validation import describe_validation_error, validation_problems


class _Line(BaseModel):
    model_config = ConfigDict(strict=True, extra="forbid")
    sku: str
    quantity: int

    @field_validator("quantity")
    @classmethod
    def _positive(cls, value: int) -> int:
        if value < 1:
            raise ValueError(f"quantity {value} is not positive")
        return value


class _Order(BaseModel):
    model_config = ConfigDict(strict=True, extra="forbid")
    lines: list[_Line]
    note: str = ""

    @model_validator(mode="after")
    def _some_lines(self) -> _Order:
        if not self.lines:
            raise ValueError("an order has at least one line")
        return self


def _error(document: object) -> ValidationError:
    with pytest.raises(ValidationError) as caught:
        _Order.model_validate(document)
    return caught.value


def test_problems_name_the_dotted_field_path() -> None:
    problems = validation_problems(_error({"lines": [{"sku": "tea", "quantity": 0}], "x": 1}))
    assert problems == [
        ("lines.0.quantity", "Value error, quantity 0 is not positive"),
        ("x", "Extra inputs are not permitted"),
    ]


def test_bare_value_errors_drop_only_pydantics_prefix() -> None:
    exc = _error({"lines": [{"sku": 5, "quantity": 0}]})
    assert validation_problems(exc, bare_value_errors=True) == [
        ("lines.0.sku", "Input should be a valid string"),
        ("lines.0.quantity", "quantity 0 is not positive"),
    ]


def test_a_problem_with_the_whole_document_has_an_empty_path() -> None:
    exc = _error({"lines": []})
    assert validation_problems(exc, bare_value_errors=True) == [
        ("", "an order has at least one line")
    ]
    assert describe_validation_error(exc, "(document)") == (
        "(document): Value error, an order has at least one line"
    )


def test_description_joins_problems_without_echoing_the_input() -> None:
    huge = ["x" * 1_000]
    exc = _error({"lines": [{"sku": "tea", "quantity": 1}], "note": huge, "extra": huge})
    text = describe_validation_error(exc, "(file)")
    assert text == "note: Input should be a valid string; extra: Extra inputs are not permitted"
    assert "xxxxx" in str(exc) and "xxxxx" not in text  # pydantic's own text shows the input
