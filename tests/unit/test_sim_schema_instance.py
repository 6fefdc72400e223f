"""The simulator's JSON Schema example instances, checked by an independent validator.

Every generated instance is validated with the ``jsonschema`` package (tests
only: the simulator does not depend on it), on the schemas LangChain writes for
tools and structured output (Pydantic models, TypedDicts, functions) and on
random schemas of the supported subset (hypothesis).
"""

from __future__ import annotations

import datetime
import enum
import uuid
from typing import Annotated, Any, Literal

import jsonschema
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from langchain_core.tools import tool
from langchain_core.utils.function_calling import convert_to_json_schema, convert_to_openai_tool
from pydantic import BaseModel, Field
from typing_extensions import TypedDict

from langchain_kimi.testing._schema_instance import (
    NOTHING,
    SchemaError,
    example_instance,
    fits_leaf,
    is_leaf,
)


def assert_fits(schema: Any, instance: Any) -> None:
    validator = jsonschema.validators.validator_for(schema)
    validator(schema, format_checker=validator.FORMAT_CHECKER).validate(instance)


# --- what LangChain writes ------------------------------------------------------------


class Color(enum.Enum):
    RED = "red"
    GREEN = "green"


class Address(BaseModel):
    street: str
    city: str = Field(description="The city")
    zip_code: str = Field(pattern=r"^\d{5}$")


class Person(BaseModel):
    """A person, with every kind of field LangChain users write."""

    name: str = Field(min_length=2, max_length=40)
    age: int = Field(ge=0, le=150)
    score: float = Field(gt=0, lt=1)
    step: int = Field(multiple_of=5, gt=7)
    nickname: str | None = None
    tags: list[str] = Field(min_length=2)
    unique_ids: set[int]
    color: Color
    mood: Literal["happy", "sad"]
    home: Address
    previous: list[Address] = []
    extra: dict[str, int]
    either: int | str
    born: datetime.date
    seen: datetime.datetime
    key: uuid.UUID
    pair: tuple[int, str]
    active: bool = True


class Node(BaseModel):
    """A recursive schema: children are Nodes."""

    label: str
    children: list[Node] = []
    parent: Node | None = None


class Movie(TypedDict):
    """A TypedDict, as create_agent's response_format takes."""

    title: Annotated[str, ..., "The title"]
    year: Annotated[int, ..., "Release year"]


class MagicInput(BaseModel):
    input: int = Field(..., gt=-1000, lt=1000)


@tool
def my_adder_tool(a: int, b: int) -> int:
    """Tool that adds two integers."""
    return a + b


@tool
def no_arguments() -> int:
    """Takes nothing."""
    return 5


def _schemas() -> list[tuple[str, dict[str, Any]]]:
    return [
        ("pydantic, every field kind", Person.model_json_schema()),
        ("recursive pydantic", Node.model_json_schema()),
        ("typeddict", convert_to_json_schema(Movie)),
        ("tool args, bounded int", convert_to_openai_tool(MagicInput)["function"]["parameters"]),
        ("tool args, two ints", convert_to_openai_tool(my_adder_tool)["function"]["parameters"]),
        ("tool without arguments", convert_to_openai_tool(no_arguments)["function"]["parameters"]),
    ]


@pytest.mark.parametrize(("name", "schema"), _schemas(), ids=[name for name, _ in _schemas()])
def test_instances_of_langchain_schemas_validate(name: str, schema: dict[str, Any]) -> None:
    instance = example_instance(schema)
    assert_fits(schema, instance)


def test_pydantic_accepts_the_instance_it_described() -> None:
    person = Person.model_validate(example_instance(Person.model_json_schema()))
    assert len(person.tags) >= 2 and person.step % 5 == 0 and person.step > 7
    assert isinstance(person.home, Address) and person.home.zip_code.isdigit()
    Node.model_validate(example_instance(Node.model_json_schema()))


def test_the_instance_is_deterministic() -> None:
    schema = Person.model_json_schema()
    assert example_instance(schema) == example_instance(schema)


def test_proposed_values_are_used_where_they_fit_and_only_there() -> None:
    schema = {
        "type": "object",
        "properties": {
            "city": {"type": "string"},
            "count": {"type": "integer", "maximum": 10},
            "unit": {"enum": ["C", "F"]},
        },
        "required": ["city", "count", "unit"],
    }
    proposals = {("city",): "Oslo", ("count",): 99, ("unit",): "F"}
    picked = example_instance(schema, pick=lambda path, leaf: proposals.get(path, NOTHING))
    # 99 breaks "maximum": the generated example stands in for it.
    assert picked["city"] == "Oslo" and picked["unit"] == "F"
    assert picked["count"] != 99
    assert_fits(schema, picked)


def test_a_proposal_chooses_the_branch_of_a_union() -> None:
    schema = {"anyOf": [{"type": "integer"}, {"type": "string"}, {"type": "null"}]}
    assert example_instance(schema, pick=lambda path, leaf: "Oslo") == "Oslo"
    assert example_instance(schema) == 1


@pytest.mark.parametrize(
    ("schema", "expected"),
    [
        ({"type": "integer", "minimum": 5, "exclusiveMinimum": True}, 6),  # draft 4
        ({"type": "number", "exclusiveMinimum": 0, "exclusiveMaximum": 1}, 0.5),
        ({"type": "integer", "multipleOf": 7, "minimum": 8}, 14),
        ({"type": "string", "format": "date"}, "2025-01-01"),
        ({"type": "string", "maxLength": 3}, "exa"),
        ({"type": "string", "pattern": r"^[A-Z]{2}-\d{3}(x|yz)?$"}, "AA-000x"),
        ({"type": ["null", "boolean"]}, True),
        ({"const": "fixed"}, "fixed"),
        ({"nullable": True, "type": "string"}, "example"),
        ({"type": "array", "items": False, "prefixItems": [{"type": "null"}]}, [None]),
    ],
)
def test_keywords_of_the_subset(schema: dict[str, Any], expected: Any) -> None:
    instance = example_instance(schema)
    assert instance == expected
    assert_fits(schema, instance)


def test_unique_items_are_distinct_formatted_strings_too() -> None:
    schema = {
        "type": "array",
        "uniqueItems": True,
        "minItems": 3,
        "items": {"format": "date", "type": "string"},
    }
    instance = example_instance(schema)
    assert instance == ["2025-01-01", "2025-01-02", "2025-01-03"]
    assert_fits(schema, instance)


def test_refs_siblings_and_all_of() -> None:
    schema = {
        "$defs": {"Base": {"type": "object", "properties": {"a": {"type": "integer"}}}},
        "allOf": [
            {"$ref": "#/$defs/Base"},
            {"properties": {"b": {"type": "string"}}, "required": ["b"]},
        ],
        "required": ["a"],
    }
    instance = example_instance(schema)
    assert set(instance) == {"a", "b"}
    assert_fits(schema, instance)
    old_style = {"definitions": {"X": {"type": "boolean"}}, "$ref": "#/definitions/X"}
    assert example_instance(old_style) is True


@pytest.mark.parametrize(
    ("schema", "message"),
    [
        ({"$ref": "https://example.com/schema.json"}, "another document"),
        ({"$ref": "#/$defs/Missing"}, "points to nothing"),
        (False, "no value fits"),
        ({"type": "integer", "minimum": 3, "maximum": 2}, "no integer fits"),
        ({"type": "string", "format": "date", "minLength": 11}, "does not fit the schema"),
        ({"type": "string", "pattern": r"^(q)\1$"}, "no example string fits"),  # back-reference
        ({"type": "string", "pattern": r"^\d{5}$", "maxLength": 3}, "no example string fits"),
        ({"type": "array", "maxItems": 1, "minItems": 2}, "cannot hold minItems=2"),
        ({"enum": []}, "empty enum"),
        (
            {
                "$defs": {
                    "L": {
                        "type": "object",
                        "properties": {"next": {"$ref": "#/$defs/L"}},
                        "required": ["next"],
                    }
                },
                "$ref": "#/$defs/L",
            },
            "requires itself without end",
        ),
    ],
)
def test_schemas_it_cannot_fill_raise_naming_the_place(schema: Any, message: str) -> None:
    with pytest.raises(SchemaError, match=message):
        example_instance(schema)


def test_fits_leaf_and_is_leaf() -> None:
    assert fits_leaf(3, {"type": "integer", "exclusiveMaximum": 4})
    assert not fits_leaf(True, {"type": "integer"})
    assert not fits_leaf(1, {"enum": [True]})
    assert not fits_leaf("ab", {"type": "string", "pattern": "^a$"})
    assert fits_leaf(0.3, {"type": "number", "multipleOf": 0.1})
    assert is_leaf({"type": ["string", "null"]}) and is_leaf({"enum": [1]})
    assert not is_leaf({"type": "object"}) and not is_leaf({"anyOf": [{"type": "string"}]})


# --- random schemas of the subset -------------------------------------------------------


def _leaf() -> st.SearchStrategy[dict[str, Any]]:
    bounds = st.tuples(st.integers(-50, 50), st.integers(0, 40))
    integer = bounds.flatmap(
        lambda b: st.fixed_dictionaries(
            {"type": st.just("integer")},
            optional={
                "minimum": st.just(b[0]),
                "maximum": st.just(b[0] + b[1] + 2),
                "exclusiveMinimum": st.just(b[0] - 1),
            },
        )
    )
    number = st.fixed_dictionaries(
        {"type": st.just("number")},
        optional={"exclusiveMinimum": st.just(-0.5), "maximum": st.just(0.75)},
    )
    # A format and a length bound can contradict each other (a 12-character
    # date): the strategy draws one or the other, and such contradictions are
    # tested on their own.
    string = st.one_of(
        st.fixed_dictionaries(
            {"type": st.just("string")}, optional={"minLength": st.integers(0, 12)}
        ),
        st.fixed_dictionaries(
            {
                "type": st.just("string"),
                "format": st.sampled_from(["date", "date-time", "uuid", "email", "uri", "ipv4"]),
            }
        ),
    )
    return st.one_of(
        integer,
        number,
        string,
        st.just({"type": "boolean"}),
        st.just({"type": "null"}),
        st.lists(st.text(min_size=1, max_size=5), min_size=1, max_size=4, unique=True).map(
            lambda members: {"enum": members}
        ),
        st.sampled_from([{"type": ["string", "null"]}, {"type": "integer", "multipleOf": 3}]),
    )


def _extend(children: st.SearchStrategy[dict[str, Any]]) -> st.SearchStrategy[dict[str, Any]]:
    names = st.text(alphabet="abcdefgh_", min_size=1, max_size=6)
    objects = st.dictionaries(names, children, max_size=4).flatmap(
        lambda props: st.fixed_dictionaries(
            {
                "type": st.just("object"),
                "properties": st.just(props),
                "required": st.sets(st.sampled_from(sorted(props)) if props else st.nothing()).map(
                    sorted
                ),
            },
            optional={"additionalProperties": st.just(False)},
        )
    )
    arrays = st.tuples(children, st.integers(0, 3), st.integers(0, 2)).map(
        lambda t: {"type": "array", "items": t[0], "minItems": t[1], "maxItems": t[1] + t[2]}
    )
    unions = st.lists(children, min_size=1, max_size=3).map(
        lambda branches: {"anyOf": [*branches, {"type": "null"}]}
    )
    return st.one_of(objects, arrays, unions)


SCHEMAS = st.recursive(_leaf(), _extend, max_leaves=12)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(SCHEMAS, st.booleans())
def test_random_schemas_of_the_subset_get_valid_instances(
    schema: dict[str, Any], through_ref: bool
) -> None:
    if through_ref:  # the same schema, reached through $defs
        schema = {"$defs": {"Target": schema}, "$ref": "#/$defs/Target"}
    instance = example_instance(schema)
    assert_fits(schema, instance)
