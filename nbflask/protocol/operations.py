"""How the kernel host's operations are declared, sent, received and checked.

nbflask.protocol.host_api declares the operations with what is here: `@operation` and
`@notice` mark the methods of a declaring class, `HostError`s list the errors each may answer
with, and the parameter types `RawFrames`, `RawFrame` and `WorkerPid` say what does not travel
as JSON. `declared` reads a declaring class into `Operation`s, which both processes use:

- the host implements every declared method under its declared name and signature, checked
  as its class is made (`implements`), and answers a request (`read_request`) only if it names
  a declared operation and its arguments fit the declared parameters (`Operation.bind`);
- the worker's client gets a method per declared operation it does not write itself
  (`client_of`), with the declared signature, sending it (`Operation.request`).

On the wire (a worker's DEALER socket, the host's ROUTER): a request is one JSON frame, `{"op":
name, "args": {parameter: value}}`, followed by the raw frames of its `RawFrames` or `RawFrame`
parameter, if it has one (a kernel message handed over as the kernel sent it). A reply is one
JSON frame, `{"ok": true, "result": ...}` or `{"ok": false, "status", "message", "reason"}`,
followed by the raw frames of a result that carries some (a `Framed` one).
"""

from __future__ import annotations

import functools
import inspect
import json
import typing
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Annotated, Any, NamedTuple, Protocol, TypeVar

from ..api_error import APIError


class _Marker(NamedTuple):
    """What an `Annotated` parameter type tells the protocol beyond its Python type."""

    meaning: str


RAW = _Marker("sent as raw frames after the request's JSON, not in it")
SENDER = _Marker("the sending web worker's pid: the client fills it in")

RawFrame = Annotated[bytes, RAW]  # the one raw frame after the request (a kernel message's header)
RawFrames = Annotated[list[bytes], RAW]  # every raw frame after the request (a whole kernel message)
WorkerPid = Annotated[int, SENDER]  # so the host forgets what a worker held if it dies; 0: none


class HostError(NamedTuple):
    """An error an operation may answer with, as the API answers it: the HTTP status and the
    Jupyter `reason`. Declared per operation so callers know what to expect; the host logs one
    that an operation raised without declaring it (see `Operation.declares`)."""

    status: int
    reason: str | None
    meaning: str

    def error(self, message: str) -> APIError:
        """This error, with `message`, to raise."""
        return APIError(self.status, message, self.reason)


class Framed(Protocol):
    """A result that carries raw frames after the reply's JSON (a kernel's messages)."""

    def to_wire(self) -> tuple[Any, list[bytes]]: ...

    @classmethod
    def from_wire(cls, value: Any, frames: list[bytes]) -> Framed: ...


class BadRequest(ValueError):
    """A request the host cannot take: not JSON, no declared operation, arguments that do not fit."""


@dataclass(frozen=True)
class _Options:
    """What `@operation` says beyond the signature (see `operation`)."""

    errors: tuple[HostError, ...] = ()
    timeout: float = 10.0
    plus_argument: str | None = None
    plus_kernel_start: bool = False
    notice: bool = False


F = TypeVar("F", bound=Callable[..., Any])


def operation(*errors: HostError, timeout: float = 10.0, plus_argument: str | None = None,
              plus_kernel_start: bool = False) -> Callable[[F], F]:
    """Declare a method a host operation answering with `errors` (besides those any operation
    may). The client waits `timeout` seconds for the answer, plus the seconds of argument
    `plus_argument` (the host waits that long by design), plus kernels.startup_timeout if
    `plus_kernel_start` (it may wait for a kernel to start, or for one starting to let go)."""
    options = _Options(errors, timeout, plus_argument, plus_kernel_start)

    def declare(method: F) -> F:
        method.__host_operation__ = options  # type: ignore[attr-defined]
        return method

    return declare


def notice(method: F) -> F:
    """Declare a method a notice: sent without waiting, never answered."""
    method.__host_operation__ = _Options(notice=True)  # type: ignore[attr-defined]
    return method


@dataclass(frozen=True)
class Operation:
    """One declared operation (or notice), as both sides use it: its signature, options and
    wire form."""

    name: str
    declared: Callable[..., Any]  # the method of the declaring class
    signature: inspect.Signature  # of `declared`, without `self`
    options: _Options
    raw: str | None  # the parameter of the raw frames after the request
    raw_one: bool  # ... a RawFrame (exactly one), else RawFrames (all)
    sender: str | None  # the WorkerPid parameter
    framed: type[Framed] | None  # the result type, if it carries raw frames

    @classmethod
    def of(cls, method: Callable[..., Any]) -> Operation:
        hints = typing.get_type_hints(method, include_extras=True)
        parameters = list(inspect.signature(method).parameters.values())[1:]
        marked: dict[_Marker, list[str]] = {RAW: [], SENDER: []}
        for parameter in parameters:
            if parameter.kind is not parameter.POSITIONAL_OR_KEYWORD:
                raise TypeError(f"host operation {method.__name__}: {parameter.name} is not plain")
            for mark in getattr(hints[parameter.name], "__metadata__", ()):
                marked.get(mark, []).append(parameter.name)
        if len(marked[RAW]) > 1 or len(marked[SENDER]) > 1:
            raise TypeError(f"host operation {method.__name__}: at most one raw and one sender parameter")
        raw = marked[RAW][0] if marked[RAW] else None
        result = hints["return"]
        framed = result if isinstance(result, type) and hasattr(result, "from_wire") else None
        return cls(method.__name__, method, inspect.signature(method).replace(parameters=parameters),
                   method.__host_operation__, raw, raw is not None and hints[raw] == RawFrame,
                   marked[SENDER][0] if marked[SENDER] else None, framed)

    @property
    def notice(self) -> bool:
        return self.options.notice

    def declares(self, error: APIError) -> bool:
        """Whether `error` is one this operation says it may answer with."""
        return any((error.status, error.reason) == (known.status, known.reason)
                   for known in self.options.errors)

    def timeout(self, arguments: dict[str, Any], startup_timeout: float) -> float:
        """Seconds the client waits for the answer to a request with these arguments."""
        seconds = self.options.timeout
        if self.options.plus_argument:
            seconds += float(arguments[self.options.plus_argument])
        if self.options.plus_kernel_start:
            seconds += startup_timeout
        return seconds

    # The client's side ---------------------------------------------------------------------

    def request(self, arguments: dict[str, Any], sender: int) -> list[bytes]:
        """The request's frames, for arguments bound to the declared signature."""
        frames: list[bytes] = []
        if self.raw is not None:
            frames = [arguments.pop(self.raw)] if self.raw_one else arguments.pop(self.raw)
        if self.sender is not None:
            arguments[self.sender] = sender
        return [json.dumps({"op": self.name, "args": arguments}).encode(), *frames]

    def result_from_wire(self, value: Any, frames: list[bytes]) -> Any:
        return self.framed.from_wire(value, frames) if self.framed else value

    # The host's side -----------------------------------------------------------------------

    def bind(self, arguments: Any, frames: list[bytes]) -> dict[str, Any]:
        """The keyword arguments of the implementation for a received request; BadRequest if
        they do not fit the declared parameters (missing, unknown, frames where none go)."""
        if not isinstance(arguments, dict):
            raise BadRequest(f"'{self.name}': args must be a JSON object")
        arguments = dict(arguments)
        if self.raw is not None:
            if self.raw_one and len(frames) != 1:
                raise BadRequest(f"'{self.name}' takes one raw frame after the request, not {len(frames)}")
            arguments[self.raw] = frames[0] if self.raw_one else frames
        elif frames:
            raise BadRequest(f"'{self.name}' takes no raw frames after the request")
        try:
            self.signature.bind(**arguments)
        except TypeError as exc:
            raise BadRequest(f"'{self.name}': {exc}") from None
        return arguments

    def result_to_wire(self, value: Any) -> tuple[Any, list[bytes]]:
        return value.to_wire() if self.framed else (value, [])


@functools.cache
def declared(api: type) -> dict[str, Operation]:
    """The operations (or notices) a declaring class declares, by name: the same objects each time."""
    return {name: Operation.of(method) for name, method in vars(api).items()
            if hasattr(method, "__host_operation__")}


def read_request(body: bytes, *declarations: Mapping[str, Operation]) -> tuple[Operation, Any]:
    """The declared operation a request names, and its arguments as sent (see `Operation.bind`)."""
    try:
        request = json.loads(body)
    except (ValueError, RecursionError) as exc:
        raise BadRequest(f"not JSON: {exc}") from None
    name = request.get("op") if isinstance(request, dict) else None
    if isinstance(name, str):
        for operations in declarations:
            if name in operations:
                return operations[name], request.get("args", {})
    raise BadRequest(f"no host operation is named {name!r}")


def _shape(method: Callable[..., Any]) -> tuple[Any, ...]:
    """A method's parameters (name, kind, default, type) and result type, to compare."""
    hints = typing.get_type_hints(method, include_extras=True)
    parameters = list(inspect.signature(method).parameters.values())
    return (tuple((p.name, p.kind, p.default, hints.get(p.name)) for p in parameters),
            hints.get("return"))


def _written(method: Callable[..., Any]) -> str:
    """A method's signature as written in its source, for messages."""
    def annotation(value: Any) -> str:
        return value if isinstance(value, str) else inspect.formatannotation(value)

    signature = inspect.signature(method)
    parameters = []
    for p in signature.parameters.values():
        text = p.name if p.annotation is p.empty else f"{p.name}: {annotation(p.annotation)}"
        parameters.append(text if p.default is p.empty else f"{text} = {p.default!r}")
    result = "" if signature.return_annotation is signature.empty else (
        f" -> {annotation(signature.return_annotation)}")
    return f"{method.__qualname__}({', '.join(parameters)}){result}"


def _check(cls: type, op: Operation, method: Any, extra: tuple[str, ...] = ()) -> None:
    """TypeError unless `method` takes (self, *extra, the declared parameters) and returns the
    declared result, with the declared types and defaults."""
    if method is op.declared or not callable(method):
        raise TypeError(f"{cls.__name__} does not implement the host operation {op.name!r}")
    (_, *declared), result = _shape(op.declared)
    (_, *own), own_result = _shape(method)
    named = [parameter[0] for parameter in own[:len(extra)]]
    if named != list(extra) or own[len(extra):] != declared or own_result != result:
        raise TypeError(f"{cls.__name__}: {_written(method)} differs from its declaration"
                        f" {_written(op.declared)}")


C = TypeVar("C", bound=type)


def implements(*apis: type) -> Callable[[C], C]:
    """Class decorator of the host's server: TypeError, as the class is made, unless it
    implements every operation and notice `apis` declare, under the declared signature."""
    def check(cls: C) -> C:
        for api in apis:
            for op in declared(api).values():
                _check(cls, op, getattr(cls, op.name, None))
        return cls

    return check


def client_of(api: type, notices: type) -> Callable[[C], C]:
    """Class decorator of the worker's client: each operation `api` declares that the class
    does not define itself becomes a method of the declared signature that hands its
    arguments to `cls._request(op, arguments)`; each of `notices`, one that takes the socket to
    send it on first and hands them to `cls._notify(sock, op, arguments)`. A method the class
    does define must have the declared signature (a notice's with `sock` first): TypeError
    otherwise."""
    def make(cls: C) -> C:
        for op in (*declared(api).values(), *declared(notices).values()):
            extra = ("sock",) if op.notice else ()
            if op.name in vars(cls):
                _check(cls, op, vars(cls)[op.name], extra)
            else:
                setattr(cls, op.name, _method(cls, op))
        return cls

    return make


def _method(cls: type, op: Operation) -> Callable[..., Any]:
    """The client's method for `op`: Python source made for its declared parameters (as
    dataclasses does for `__init__`), so a call binds its arguments as fast as any call, and a
    wrong one fails as any would; it hands them to `_request` or, with the socket first, `_notify`.
    Its name, docstring and types are the declaration's."""
    parameters = op.signature.parameters
    defaults = {name: p.default for name, p in parameters.items() if p.default is not p.empty}
    written = [f"{name}=_defaults[{name!r}]" if name in defaults else name for name in parameters]
    arguments = "{" + ", ".join(f"{name!r}: {name}" for name in parameters) + "}"
    if op.notice:
        source = f"def {op.name}(self, sock, {', '.join(written)}):\n    self._notify(sock, _op, {arguments})"
    else:
        source = f"def {op.name}(self, {', '.join(written)}):\n    return self._request(_op, {arguments})"
    namespace = {**op.declared.__globals__, "_op": op, "_defaults": defaults}  # its types resolve
    exec(source, namespace)
    method = namespace[op.name]
    functools.update_wrapper(method, op.declared)
    del method.__wrapped__  # its own signature: the declaration's, and a notice's socket
    method.__annotations__ = {"sock": "Any", **op.declared.__annotations__} if op.notice else dict(
        op.declared.__annotations__)
    method.__qualname__ = f"{cls.__qualname__}.{op.name}"
    return method
