"""Tests of records: ``record``, ``field`` and ``evolve``."""

from __future__ import annotations

import copy
import pickle
import sys
import weakref
from typing import ClassVar

import pytest

from cotyledon.core import FrozenRecordError
from cotyledon.core import evolve
from cotyledon.core import field
from cotyledon.core import record
from cotyledon.core._record import fields


def _positive(name: str, value: int) -> None:
    if value <= 0:
        raise ValueError(f"{name} must be > 0, got {value!r}")


# Module-level classes: pickle finds a class by its qualified name.
@record
class Point:
    x: int
    y: int
    label: str = "origin"


@record
class Empty:
    pass


@record
class Other:
    x: int
    y: int
    label: str = "origin"


@record(frozen=False)
class Counter:
    count: int = 0
    seen: list[str] = field(factory=list)


@record(eq=False)
class Handle:
    name: str


@record(order=True, cache_hash=True)
class Version:
    major: int
    minor: int


@record
class Checked:
    size: int = field(validator=_positive)
    tags: frozenset[str] = field(default=frozenset(), converter=frozenset, kw_only=True)
    limit: int = field(default=1, validator=_positive, kw_only=True)


@record
class Single:
    value: object


def test_record_positional_and_keyword_arguments() -> None:
    assert Point(1, 2).label == "origin"
    assert Point(1, y=2, label="a") == Point(1, 2, "a")
    assert Point(label="b", y=2, x=1) == Point(1, 2, "b")


def test_record_argument_errors() -> None:
    with pytest.raises(TypeError, match=r"Point\(\) missing required argument: 'y'"):
        Point(1)  # type: ignore[call-arg]
    with pytest.raises(TypeError, match=r"missing required arguments: 'x', 'y'"):
        Point()  # type: ignore[call-arg]
    with pytest.raises(TypeError, match=r"takes 3 positional arguments but 4 were given"):
        Point(1, 2, "a", "b")  # type: ignore[call-arg]
    with pytest.raises(TypeError, match=r"unexpected keyword argument 'z'"):
        Point(1, 2, z=3)  # type: ignore[call-arg]
    with pytest.raises(TypeError, match=r"multiple values for argument 'x'"):
        Point(1, 2, x=3)  # type: ignore[misc]
    with pytest.raises(TypeError, match=r"takes 0 positional arguments but 1 were given"):
        Empty(1)  # type: ignore[call-arg]


def test_record_kw_only_fields() -> None:
    checked = Checked(3, limit=2)
    assert checked.limit == 2
    assert checked.tags == frozenset()
    with pytest.raises(TypeError, match=r"takes 1 positional arguments but 2 were given"):
        Checked(3, frozenset())  # type: ignore[call-arg]


def test_record_match_args_skip_kw_only() -> None:
    assert Point.__match_args__ == ("x", "y", "label")
    assert Checked.__match_args__ == ("size",)
    match Point(1, 2):
        case Point(x, y):
            assert (x, y) == (1, 2)
        case _:
            pytest.fail("Point(1, 2) did not match its own pattern")


def test_record_repr() -> None:
    assert repr(Point(1, 2)) == "Point(x=1, y=2, label='origin')"
    assert repr(Empty()) == "Empty()"
    assert repr(Counter()) == "Counter(count=0, seen=[])"


def test_record_repr_of_local_class() -> None:
    @record
    class Local:
        value: int

    assert repr(Local(1)) == "Local(value=1)"


def test_record_repr_of_subclass() -> None:
    class Labelled(Point):
        pass

    assert repr(Labelled(1, 2)) == "Labelled(x=1, y=2, label='origin')"


def test_record_repr_of_record_containing_itself() -> None:
    @record(frozen=False)
    class Node:
        next: object = None

    node = Node()
    node.next = node

    assert repr(node) == "Node(next=...)"


def test_record_eq_by_type_and_values() -> None:
    assert Point(1, 2) == Point(1, 2)
    assert Point(1, 2) != Point(1, 3)
    assert Empty() == Empty()
    assert Single(1) == Single(1)
    assert Single(1) != Single(2)


def test_record_eq_across_types_is_false() -> None:
    # Same field names and values, different record classes.
    assert Point(1, 2) != Other(1, 2)  # type: ignore[comparison-overlap]
    assert not (Point(1, 2) == Other(1, 2))  # type: ignore[comparison-overlap]  # noqa: SIM201
    assert Point(1, 2) != (1, 2, "origin")  # type: ignore[comparison-overlap]


def test_record_eq_false_keeps_identity() -> None:
    first = Handle("a")
    assert first == first  # noqa: PLR0124
    assert first != Handle("a")
    assert hash(first) == object.__hash__(first)


def test_frozen_record_hash() -> None:
    assert hash(Point(1, 2)) == hash(Point(1, 2))
    assert len({Point(1, 2), Point(1, 2), Point(2, 1)}) == 2
    assert hash(Single("a")) == hash(Single("a"))
    assert hash(Empty()) == hash(Empty())


def test_mutable_record_is_unhashable() -> None:
    with pytest.raises(TypeError, match="unhashable"):
        hash(Counter())


def test_cached_hash() -> None:
    version = Version(1, 2)
    assert hash(version) == hash(Version(1, 2))
    assert hash(version) == hash(version)
    assert {version: "a"}[Version(1, 2)] == "a"


def test_record_order() -> None:
    assert Version(1, 2) < Version(1, 3)
    assert Version(1, 3) > Version(1, 2)
    assert Version(1, 2) <= Version(1, 2)
    assert Version(2, 0) >= Version(1, 9)
    assert sorted([Version(2, 0), Version(1, 5), Version(1, 2)]) == [
        Version(1, 2),
        Version(1, 5),
        Version(2, 0),
    ]


def test_record_order_across_types_raises() -> None:
    with pytest.raises(TypeError):
        Version(1, 2) < (1, 3)  # type: ignore[operator]  # noqa: B015


def test_record_without_order_has_no_less_than() -> None:
    with pytest.raises(TypeError):
        Point(1, 2) < Point(1, 3)  # type: ignore[operator]  # noqa: B015


def test_frozen_record_rejects_assignment() -> None:
    point = Point(1, 2)
    with pytest.raises(FrozenRecordError, match=r"cannot assign to 'x': Point is a frozen"):
        point.x = 3  # type: ignore[misc]
    with pytest.raises(FrozenRecordError, match=r"cannot delete 'x'"):
        del point.x
    with pytest.raises(AttributeError):
        point.other = 1  # type: ignore[attr-defined]
    assert point.x == 1


def test_frozen_record_error_is_attribute_error() -> None:
    assert issubclass(FrozenRecordError, AttributeError)


def test_mutable_record_assignment() -> None:
    counter = Counter()
    counter.count += 1
    counter.seen.append("a")
    assert counter == Counter(1, ["a"])


def test_record_factory_makes_new_value_each_time() -> None:
    first = Counter()
    first.seen.append("a")
    assert Counter().seen == []


def test_record_slots_and_weakref() -> None:
    point = Point(1, 2)
    assert vars(Point)["__slots__"] == ("x", "y", "label", "__weakref__")
    assert not hasattr(point, "__dict__")
    assert weakref.ref(point)() is point


def test_record_class_var_is_not_a_field() -> None:
    @record
    class WithClassVar:
        limit: ClassVar[int] = 3
        value: int

    assert WithClassVar(1).limit == 3
    assert [f.name for f in fields(WithClassVar)] == ["value"]


def test_record_validators_and_converter() -> None:
    checked = Checked(2, tags=["a", "a"])  # type: ignore[arg-type]
    assert checked.tags == frozenset({"a"})
    with pytest.raises(ValueError, match=r"size must be > 0, got 0"):
        Checked(0)
    with pytest.raises(ValueError, match=r"limit must be > 0, got -1"):
        Checked(1, limit=-1)


def test_evolve_replaces_fields() -> None:
    point = Point(1, 2, "a")
    moved = evolve(point, y=5)
    assert moved == Point(1, 5, "a")
    assert point == Point(1, 2, "a")
    assert type(moved) is Point


def test_evolve_runs_validators() -> None:
    with pytest.raises(ValueError, match=r"limit must be > 0, got 0"):
        evolve(Checked(1), limit=0)


def test_evolve_rejects_unknown_field() -> None:
    with pytest.raises(TypeError, match=r"unexpected keyword argument 'z'"):
        evolve(Point(1, 2), z=3)


def test_record_replace_method() -> None:
    # copy.replace() of Python 3.13 calls __replace__.
    point = Point(1, 2, "a")
    assert point.__replace__(y=5) == Point(1, 5, "a")  # type: ignore[attr-defined]
    with pytest.raises(ValueError, match=r"limit must be > 0, got 0"):
        Checked(1).__replace__(limit=0)  # type: ignore[attr-defined]


@pytest.mark.skipif(sys.version_info < (3, 13), reason="copy.replace() is new in Python 3.13")
def test_copy_replace_of_record() -> None:
    point = Point(1, 2, "a")
    moved = copy.replace(point, y=5)  # type: ignore[attr-defined]
    assert moved == Point(1, 5, "a")
    assert type(moved) is Point
    assert copy.replace(Counter(1, ["a"]), count=2) == Counter(2, ["a"])  # type: ignore[attr-defined]


def test_evolve_rejects_non_record() -> None:
    with pytest.raises(TypeError, match=r"is not a record class"):
        evolve(object())


@pytest.mark.parametrize("protocol", range(pickle.HIGHEST_PROTOCOL + 1))
def test_record_pickle_round_trip(protocol: int) -> None:
    for value in (Point(1, 2), Empty(), Counter(2, ["a"]), Version(1, 2), Checked(3, limit=2)):
        copied = pickle.loads(pickle.dumps(value, protocol=protocol))
        assert copied == value
        assert type(copied) is type(value)


def test_record_pickle_drops_cached_hash() -> None:
    version = Version(1, 2)
    hash(version)
    assert pickle.loads(pickle.dumps(version)).__getstate__() == (1, 2)
    assert hash(pickle.loads(pickle.dumps(version))) == hash(version)


def _new_instance(cls: type[object]) -> object:
    return cls.__new__(cls)


class _AttrsPickled:
    """Pickles as an attrs class of slots did: a new instance of the class,
    then a dict of the field values by name as its state. (Pickle accepts
    copyreg.__newobj__ for instances of the class alone.)"""

    def __init__(self, cls: type[object], state: dict[str, object]) -> None:
        self.cls = cls
        self.state = state

    def __reduce__(self) -> tuple[object, ...]:
        return (_new_instance, (self.cls,), self.state)


def test_record_unpickles_state_by_name() -> None:
    data = pickle.dumps(_AttrsPickled(Version, {"major": 1, "minor": 2}))
    version = pickle.loads(data)
    assert version == Version(1, 2)
    assert hash(version) == hash(Version(1, 2))


def test_record_unpickle_rejects_missing_field() -> None:
    data = pickle.dumps(_AttrsPickled(Point, {"x": 1, "label": "a"}))
    with pytest.raises(TypeError, match=r"pickled state is missing the fields 'y'"):
        pickle.loads(data)


def test_record_copy_and_deepcopy() -> None:
    counter = Counter(1, ["a"])
    shallow = copy.copy(counter)
    deep = copy.deepcopy(counter)
    assert shallow == counter
    assert shallow.seen is counter.seen
    assert deep == counter
    assert deep.seen is not counter.seen
    point = Point(1, 2)
    assert copy.copy(point) == point
    assert copy.deepcopy(point) == point


def test_record_method_with_super() -> None:
    class Base:
        def describe(self) -> str:
            return "base"

    @record
    class Derived(Base):
        value: int

        def describe(self) -> str:
            return "derived of " + super().describe()

    assert Derived(1).describe() == "derived of base"


def test_record_keeps_methods_of_class_body() -> None:
    @record
    class Custom:
        value: int

        def __repr__(self) -> str:
            return "custom"

    assert repr(Custom(1)) == "custom"


def test_record_rejects_required_field_after_default() -> None:
    with pytest.raises(TypeError, match=r"required field 'b' comes after the field 'a'"):

        @record
        class Wrong:
            a: int = 1
            b: int  # type: ignore[misc]


def test_record_rejects_record_base() -> None:
    with pytest.raises(TypeError, match=r"subclasses the record Point"):

        @record
        class Child(Point):
            z: int = 0


def test_field_rejects_default_and_factory() -> None:
    with pytest.raises(TypeError, match=r"a default or a factory, not both"):
        field(default=1, factory=int)  # type: ignore[call-overload]


def test_record_rejects_bad_options() -> None:
    with pytest.raises(TypeError, match=r"order=True\) needs eq=True"):
        record(order=True, eq=False)
    with pytest.raises(TypeError, match=r"cache_hash=True\) needs a frozen record"):
        record(frozen=False, cache_hash=True)
