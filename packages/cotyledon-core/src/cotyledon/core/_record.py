"""Records: classes of named fields, built without generated code.

The events, commands, specs and snapshots of the core, and the small
classes of the runtime, are records. They used to be attrs classes, and
attrs was the largest single cost of ``import cotyledon``. Importing attrs
took about 20 to 30 ms, because it imports ``inspect``, ``ast``, ``dis``
and ``tokenize``. Each of the 45 classes then took about 0.46 ms more,
because attrs compiles the source of its ``__init__``, ``__repr__`` and
``__eq__``. The master pays this before its first fork, and each
``os.fork()`` then copies a bigger process.

Here the methods are closures over the class's fields: nothing goes through
``compile()``, ``exec()`` or ``eval()``. With ``timeit`` on Python 3.11 (a
2-CPU Linux VM), a frozen class of three fields took 38 us to build against
425 us for ``attrs.frozen``, and an instance from three positional
arguments 0.49 us against 0.47 us.

Only what cotyledon uses is supported: frozen or mutable records, equality
by value or by identity, ordering, a cached hash, defaults, factories,
converters, validators and keyword-only fields. A record class has
``__slots__`` (with ``__weakref__``), a ``__repr__`` of the form
``Name(a=1, b='x')`` and ``__match_args__``, and it pickles and copies field
by field. ``copy.replace()`` (Python 3.13) works as ``evolve()`` does. Two
records are equal when they are of the same class and their fields are
equal. A frozen record is hashable and raises
``FrozenRecordError`` on assignment. A mutable record with equality by
value is unhashable. Validators run in ``__init__``, and so in
``evolve()``, but not on assignment to a field of a mutable record.
"""

from __future__ import annotations

import operator
import reprlib
from collections.abc import Callable
from typing import TYPE_CHECKING
from typing import Any
from typing import ClassVar
from typing import Final
from typing import TypeVar
from typing import overload

_T = TypeVar("_T")

if TYPE_CHECKING:
    from typing_extensions import dataclass_transform
else:
    # typing.dataclass_transform only marks the function for type checkers.
    # Python 3.10 has none, and typing_extensions may not be installed.
    def dataclass_transform(**_: object) -> Callable[[_T], _T]:
        return lambda function: function


Validator = Callable[[str, Any], None]
"""A check of a field's value, called with the field's name and the value.
It raises, with a message that names the field, when the value is invalid."""


class _Missing:
    __slots__ = ()

    def __repr__(self) -> str:
        return "MISSING"


_MISSING: Final[Any] = _Missing()

_HASH_SLOT: Final = "_record_hash"
"""The slot where a record with ``cache_hash=True`` keeps its hash."""


class FrozenRecordError(AttributeError):
    """Raised on an assignment to, or a deletion of, an attribute of a
    frozen record."""


class Field:
    """The declaration of one field of a record, as ``field()`` returns it."""

    __slots__ = ("converter", "default", "factory", "kw_only", "name", "validator")

    def __init__(
        self,
        name: str,
        *,
        default: Any,
        factory: Callable[[], Any] | None,
        validator: Validator | None,
        converter: Callable[[Any], Any] | None,
        kw_only: bool,
    ) -> None:
        self.name = name
        self.default = default
        self.factory = factory
        self.validator = validator
        self.converter = converter
        self.kw_only = kw_only

    def __repr__(self) -> str:
        return f"<Field {self.name!r}>"

    def named(self, name: str) -> Field:
        """Return a copy of the declaration for the field ``name``."""
        return Field(
            name,
            default=self.default,
            factory=self.factory,
            validator=self.validator,
            converter=self.converter,
            kw_only=self.kw_only,
        )

    @property
    def required(self) -> bool:
        return self.default is _MISSING and self.factory is None


@overload
def field(
    *,
    default: _T,
    validator: Validator | None = None,
    converter: Callable[[Any], Any] | None = None,
    kw_only: bool = False,
) -> _T: ...


@overload
def field(
    *,
    factory: Callable[[], _T],
    validator: Validator | None = None,
    converter: Callable[[Any], Any] | None = None,
    kw_only: bool = False,
) -> _T: ...


@overload
def field(
    *,
    validator: Validator | None = None,
    converter: Callable[[Any], Any] | None = None,
    kw_only: bool = False,
) -> Any: ...


def field(
    *,
    default: Any = _MISSING,
    factory: Callable[[], Any] | None = None,
    validator: Validator | None = None,
    converter: Callable[[Any], Any] | None = None,
    kw_only: bool = False,
) -> Any:
    """Declare a field of a record with options.

    ``factory`` is called for each new record that gets no value for the
    field. ``converter`` turns the value passed to ``__init__`` into the
    value stored, before ``validator`` checks it. A keyword-only field
    takes no position in ``__init__`` and may come before a required field.
    """
    if default is not _MISSING and factory is not None:
        raise TypeError("field() takes a default or a factory, not both")
    return Field(
        "",
        default=default,
        factory=factory,
        validator=validator,
        converter=converter,
        kw_only=kw_only,
    )


@overload
def record(cls: type[_T], /) -> type[_T]: ...


@overload
def record(
    *, frozen: bool = True, eq: bool = True, order: bool = False, cache_hash: bool = False
) -> Callable[[type[_T]], type[_T]]: ...


@dataclass_transform(frozen_default=True, field_specifiers=(field,))
def record(
    cls: type[Any] | None = None,
    /,
    *,
    frozen: bool = True,
    eq: bool = True,
    order: bool = False,
    cache_hash: bool = False,
) -> Any:
    """Make a record of the class, with a field for each annotated attribute.

    ``frozen=False`` makes a mutable record. ``eq=False`` keeps identity
    for equality and hashing. ``order=True`` adds ``<``, ``<=``, ``>`` and
    ``>=``, which compare the fields in order. ``cache_hash=True`` computes
    the hash of a frozen record once.

    The decorator returns a new class with ``__slots__``: methods that use
    ``super()`` or ``__class__`` see the new class.
    """
    if order and not eq:
        raise TypeError("record(order=True) needs eq=True")
    if cache_hash and not (frozen and eq):
        raise TypeError("record(cache_hash=True) needs a frozen record with eq=True")

    def wrap(cls: type[Any]) -> type[Any]:
        return _build(cls, frozen=frozen, eq=eq, order=order, cache_hash=cache_hash)

    return wrap if cls is None else wrap(cls)


def fields(cls: type[Any]) -> tuple[Field, ...]:
    """Return the declarations of the fields of a record class, in order."""
    try:
        declared: tuple[Field, ...] = cls.__record_fields__
    except AttributeError:
        raise TypeError(f"{cls!r} is not a record class") from None
    return declared


def evolve(instance: _T, /, **changes: Any) -> _T:
    """Return a copy of the record with the fields in ``changes`` replaced.

    The copy goes through ``__init__``, so the converters and validators run.
    """
    cls = type(instance)
    for declared in fields(cls):
        if declared.name not in changes:
            changes[declared.name] = getattr(instance, declared.name)
    return cls(**changes)


def _build(cls: type[Any], *, frozen: bool, eq: bool, order: bool, cache_hash: bool) -> type[Any]:
    if "__slots__" in cls.__dict__:
        raise TypeError(f"{cls.__qualname__} defines __slots__; record() adds them itself")
    for base in cls.__mro__[1:]:
        if "__record_fields__" in base.__dict__:
            raise TypeError(
                f"{cls.__qualname__} subclasses the record {base.__qualname__}, "
                "which record() does not support"
            )
    namespace = dict(cls.__dict__)
    declared = _collect_fields(cls, namespace)
    names = tuple(declared_field.name for declared_field in declared)
    if cache_hash and _HASH_SLOT in names:
        raise TypeError(f"{cls.__qualname__}: the field name {_HASH_SLOT!r} is reserved")

    slots = list(names)
    if not any(base.__weakrefoffset__ for base in cls.__bases__):
        slots.append("__weakref__")
    if cache_hash:
        slots.append(_HASH_SLOT)
    # The descriptors of the old class's instance dictionary and weak
    # references would clash with the slots.
    namespace.pop("__dict__", None)
    namespace.pop("__weakref__", None)
    namespace["__slots__"] = tuple(slots)
    namespace["__qualname__"] = cls.__qualname__
    namespace["__record_fields__"] = declared
    namespace["__match_args__"] = tuple(f.name for f in declared if not f.kw_only)

    methods = _make_methods(cls, names, frozen=frozen, eq=eq, order=order, cache_hash=cache_hash)
    for name, method in methods.items():
        # A method written in the class body wins over the record's own.
        namespace.setdefault(name, method)

    metaclass: Any = type(cls)
    new_cls: type[Any] = metaclass(cls.__name__, cls.__bases__, namespace)
    _rebind_class_cell(namespace, cls, new_cls)
    if "__init__" not in namespace:
        # Each slot's member descriptor sets the value without going
        # through __setattr__, which a frozen record overrides.
        setters = {name: new_cls.__dict__[name].__set__ for name in names}
        init = _make_init(new_cls, declared, setters)
        init.__qualname__ = f"{cls.__qualname__}.__init__"
        new_cls.__init__ = init
    return new_cls


def _make_methods(
    cls: type[Any], names: tuple[str, ...], *, frozen: bool, eq: bool, order: bool, cache_hash: bool
) -> dict[str, Any]:
    """Return the methods of the record, except ``__init__``."""
    methods: dict[str, Any] = {
        "__repr__": _make_repr(names),
        "__getstate__": _make_getstate(names),
        "__setstate__": _make_setstate(names),
    }
    if eq:
        key = _make_key(names)
        methods["__eq__"] = _make_eq(key)
        if order:
            methods["__lt__"] = _make_order(key, operator.lt)
            methods["__le__"] = _make_order(key, operator.le)
            methods["__gt__"] = _make_order(key, operator.gt)
            methods["__ge__"] = _make_order(key, operator.ge)
        if not frozen:
            methods["__hash__"] = None
        elif cache_hash:
            methods["__hash__"] = _make_cached_hash(key)
        else:
            methods["__hash__"] = _make_hash(key)
    for name, method in methods.items():
        if method is not None:
            method.__qualname__ = f"{cls.__qualname__}.{name}"
    # copy.replace() of Python 3.13 calls it, as it does for attrs classes
    # and dataclasses.
    methods["__replace__"] = _replace
    if frozen:
        methods["__setattr__"] = _frozen_setattr
        methods["__delattr__"] = _frozen_delattr
    return methods


def _collect_fields(cls: type[Any], namespace: dict[str, Any]) -> tuple[Field, ...]:
    """Return the fields that the class body annotates, removing their
    defaults from ``namespace``: a slot and a class attribute of the same
    name cannot coexist."""
    # Not inspect.get_annotations: importing inspect is a cost that records avoid.
    annotations: dict[str, Any] = cls.__dict__.get("__annotations__", {})  # noqa: RUF063
    declared: list[Field] = []
    for name, annotation in annotations.items():
        if _is_class_var(annotation):
            continue
        value = namespace.pop(name, _MISSING)
        if isinstance(value, Field):
            declared.append(value.named(name))
        else:
            declared.append(
                Field(
                    name,
                    default=value,
                    factory=None,
                    validator=None,
                    converter=None,
                    kw_only=False,
                )
            )
    seen_default = None
    for declared_field in declared:
        if declared_field.kw_only:
            continue
        if not declared_field.required:
            seen_default = declared_field.name
        elif seen_default is not None:
            raise TypeError(
                f"{cls.__qualname__}: the required field {declared_field.name!r} comes after "
                f"the field {seen_default!r}, which has a default; move it up or make it "
                "keyword-only"
            )
    return tuple(declared)


def _is_class_var(annotation: object) -> bool:
    if isinstance(annotation, str):
        return annotation.startswith(("ClassVar", "typing.ClassVar"))
    return annotation is ClassVar or getattr(annotation, "__origin__", None) is ClassVar


def _rebind_class_cell(namespace: dict[str, Any], old: type[Any], new: type[Any]) -> None:
    """Point the ``__class__`` cell of the methods, which ``super()`` reads,
    to the new class."""
    for value in namespace.values():
        functions: list[Any]
        if isinstance(value, (classmethod, staticmethod)):
            functions = [value.__func__]
        elif isinstance(value, property):
            functions = [value.fget, value.fset, value.fdel]
        else:
            functions = [value]
        for function in functions:
            code = getattr(function, "__code__", None)
            if code is None or "__class__" not in code.co_freevars:
                continue
            cell = function.__closure__[code.co_freevars.index("__class__")]
            if cell.cell_contents is old:
                cell.cell_contents = new


def _make_init(
    cls: type[Any], declared: tuple[Field, ...], setters: dict[str, Callable[[Any, Any], None]]
) -> Callable[..., None]:
    # Parameters: the positional fields in order, then the keyword-only ones.
    ordered = tuple(f for f in declared if not f.kw_only) + tuple(f for f in declared if f.kw_only)
    store = tuple(setters[f.name] for f in ordered)
    positional_count = sum(1 for f in ordered if not f.kw_only)
    # A call with exactly one positional argument per field needs no binding.
    direct = len(ordered) if positional_count == len(ordered) else -1
    bind = _make_bind(cls.__qualname__, ordered, positional_count)
    if any(f.converter or f.validator for f in ordered):
        return _make_checked_init(ordered, store, direct, bind)

    # Unrolled for the usual sizes: a loop over the setters costs about as
    # much again as the stores themselves.
    if not store:

        def __init__(self: Any, *args: Any, **kwargs: Any) -> None:
            if args or kwargs:
                bind(args, kwargs)

    elif len(store) == 1:
        (store_0,) = store

        def __init__(self: Any, *args: Any, **kwargs: Any) -> None:
            if kwargs or len(args) != direct:
                args = bind(args, kwargs)
            store_0(self, args[0])

    elif len(store) == 2:
        store_0, store_1 = store

        def __init__(self: Any, *args: Any, **kwargs: Any) -> None:
            if kwargs or len(args) != direct:
                args = bind(args, kwargs)
            value_0, value_1 = args
            store_0(self, value_0)
            store_1(self, value_1)

    elif len(store) == 3:
        store_0, store_1, store_2 = store

        def __init__(self: Any, *args: Any, **kwargs: Any) -> None:
            if kwargs or len(args) != direct:
                args = bind(args, kwargs)
            value_0, value_1, value_2 = args
            store_0(self, value_0)
            store_1(self, value_1)
            store_2(self, value_2)

    elif len(store) == 4:
        store_0, store_1, store_2, store_3 = store

        def __init__(self: Any, *args: Any, **kwargs: Any) -> None:
            if kwargs or len(args) != direct:
                args = bind(args, kwargs)
            value_0, value_1, value_2, value_3 = args
            store_0(self, value_0)
            store_1(self, value_1)
            store_2(self, value_2)
            store_3(self, value_3)

    else:

        def __init__(self: Any, *args: Any, **kwargs: Any) -> None:
            if kwargs or len(args) != direct:
                args = bind(args, kwargs)
            for store_value, value in zip(store, args, strict=True):
                store_value(self, value)

    return __init__


def _make_checked_init(
    ordered: tuple[Field, ...],
    store: tuple[Callable[[Any, Any], None], ...],
    direct: int,
    bind: Callable[[tuple[Any, ...], dict[str, Any]], tuple[Any, ...]],
) -> Callable[..., None]:
    """Return the ``__init__`` of a record with converters or validators."""
    converters = tuple((index, f.converter) for index, f in enumerate(ordered) if f.converter)
    validators = tuple(
        (f.name, index, f.validator) for index, f in enumerate(ordered) if f.validator
    )

    def __init__(self: Any, *args: Any, **kwargs: Any) -> None:
        values = list(args if not kwargs and len(args) == direct else bind(args, kwargs))
        for index, convert in converters:
            values[index] = convert(values[index])
        for name, index, validate in validators:
            validate(name, values[index])
        for store_value, value in zip(store, values, strict=True):
            store_value(self, value)

    return __init__


def _make_bind(
    class_name: str, ordered: tuple[Field, ...], positional_count: int
) -> Callable[[tuple[Any, ...], dict[str, Any]], tuple[Any, ...]]:
    """Return the function that maps the arguments of ``__init__`` to the
    field values in parameter order, as Python binds the arguments of a
    function, with the same kinds of ``TypeError``."""
    count = len(ordered)
    index_of = {f.name: index for index, f in enumerate(ordered)}
    defaults = tuple(f.default for f in ordered)
    read_all: Any = operator.itemgetter(*index_of) if count > 1 else None
    # From this position on, every field has a plain default (no factory):
    # a call with positional arguments only just appends the defaults.
    plain_from = count
    while (
        plain_from
        and ordered[plain_from - 1].factory is None
        and not ordered[plain_from - 1].required
    ):
        plain_from -= 1

    def bind(args: tuple[Any, ...], kwargs: dict[str, Any]) -> tuple[Any, ...]:
        given = len(args)
        if given > positional_count:
            raise TypeError(
                f"{class_name}() takes {positional_count} positional arguments "
                f"but {given} were given"
            )
        if not kwargs and given >= plain_from:
            return args + defaults[given:]
        if not given and len(kwargs) == count > 1:
            # Every field by keyword, as evolve() passes them.
            try:
                return read_all(kwargs)  # type: ignore[no-any-return]
            except KeyError:
                pass
        values = [*args, *defaults[given:]]
        for name, value in kwargs.items():
            index = index_of.get(name)
            if index is None:
                raise TypeError(f"{class_name}() got an unexpected keyword argument {name!r}")
            if index < given:
                raise TypeError(f"{class_name}() got multiple values for argument {name!r}")
            values[index] = value
        missing = []
        for index in range(given, count):
            if values[index] is not _MISSING:
                continue
            declared = ordered[index]
            if declared.factory is not None:
                values[index] = declared.factory()
            else:
                missing.append(repr(declared.name))
        if missing:
            noun = "argument" if len(missing) == 1 else "arguments"
            raise TypeError(f"{class_name}() missing required {noun}: {', '.join(missing)}")
        return tuple(values)

    return bind


def _make_key(names: tuple[str, ...]) -> Callable[[Any], Any]:
    """Return the function that reads the values that equality, ordering and
    hashing compare: one value for one field, a tuple for more."""
    if not names:
        return lambda instance: ()
    return operator.attrgetter(*names)


def _make_repr(names: tuple[str, ...]) -> Callable[[Any], str]:
    # A mutable record may contain itself: its repr shows "..." there.
    @reprlib.recursive_repr()
    def __repr__(self: Any) -> str:
        # The name of the instance's class, which may be a subclass, without
        # the "<locals>" part of a class defined in a function.
        name = self.__class__.__qualname__.rpartition(">.")[2]
        parts = ", ".join(f"{field_name}={getattr(self, field_name)!r}" for field_name in names)
        return f"{name}({parts})"

    return __repr__


def _make_eq(key: Callable[[Any], Any]) -> Callable[[Any, object], Any]:
    def __eq__(self: Any, other: object) -> Any:
        if other.__class__ is not self.__class__:
            return NotImplemented
        return key(self) == key(other)

    return __eq__


def _make_order(
    key: Callable[[Any], Any], compare: Callable[[Any, Any], bool]
) -> Callable[[Any, object], Any]:
    def method(self: Any, other: object) -> Any:
        if other.__class__ is not self.__class__:
            return NotImplemented
        return compare(key(self), key(other))

    return method


def _make_hash(key: Callable[[Any], Any]) -> Callable[[Any], int]:
    def __hash__(self: Any) -> int:
        return hash(key(self))

    return __hash__


def _make_cached_hash(key: Callable[[Any], Any]) -> Callable[[Any], int]:
    read_hash = operator.attrgetter(_HASH_SLOT)

    def __hash__(self: Any) -> int:
        try:
            cached: int = read_hash(self)
        except AttributeError:
            cached = hash(key(self))
            # object's own __setattr__: the record's raises, being frozen.
            object.__setattr__(self, _HASH_SLOT, cached)
        return cached

    return __hash__


def _make_getstate(names: tuple[str, ...]) -> Callable[[Any], tuple[Any, ...]]:
    # The state is the field values only: a cached hash is not carried over
    # to another process, whose string hashes differ.
    key = operator.attrgetter(*names) if names else None

    def __getstate__(self: Any) -> tuple[Any, ...]:
        if key is None:
            return ()
        values = key(self)
        return values if len(names) > 1 else (values,)

    return __getstate__


def _make_setstate(names: tuple[str, ...]) -> Callable[[Any, Any], None]:
    def __setstate__(self: Any, state: tuple[Any, ...] | dict[str, Any]) -> None:
        if isinstance(state, dict):
            # A pickle made while the class was an attrs class keeps its
            # fields in a dict by name. Read as a tuple, that dict would set
            # each field to a field name.
            missing = [name for name in names if name not in state]
            if missing:
                raise TypeError(
                    f"cannot unpickle {type(self).__qualname__}: the pickled state is "
                    f"missing the fields {', '.join(map(repr, missing))}"
                )
            state = tuple(state[name] for name in names)
        for name, value in zip(names, state, strict=True):
            # object's own __setattr__: the record's raises, being frozen.
            object.__setattr__(self, name, value)

    return __setstate__


def _replace(self: Any, /, **changes: Any) -> Any:
    return evolve(self, **changes)


def _frozen_setattr(self: Any, name: str, value: object) -> None:
    raise FrozenRecordError(
        f"cannot assign to {name!r}: {type(self).__qualname__} is a frozen record; "
        "use evolve() to make a changed copy"
    )


def _frozen_delattr(self: Any, name: str) -> None:
    raise FrozenRecordError(f"cannot delete {name!r}: {type(self).__qualname__} is a frozen record")
