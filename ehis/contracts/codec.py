"""XML <-> Python for a contract's messages, compiled once from its XSD.

The XSD is the source of truth: xmlschema reads it at start-up and this module compiles each
global element into a small plan (child order, multiplicity, value type). Per message the plan
turns a validated lxml element into plain dicts (decode) or a dict into an lxml element in the
schema's order (encode). Measured on din's person answer: xmlschema's own decode and encode cost
about 0.5 ms each, a compiled plan a few tens of microseconds; the hub's whole CPU budget for a
source call is 1.5 ms, so the plan is what runs per message and xmlschema only at load.

Validation stays libxml2's (`Codec.validate`, lxml's XMLSchema on the same files): the plan
trusts its input to be valid. Contracts keep to the subset the plan supports, which load refuses
to compile otherwise: sequences of elements (optional and repeated ones included), simple types,
and simple content; no choice, all, any, mixed content, or attributes on data elements.

Compiling costs about 35 ms a contract (xmlschema reads the shared schemas again for each), so
the plans are kept as JSON in a cache directory keyed by the SHA-256 of every schema file the
contract reads: a worker serving twenty sources starts without xmlschema once the cache is warm,
and any change to a schema file misses the cache. The cache is data, never code (no pickle).

Decoded dicts are keyed by the elements' local names; an absent optional element is None, a
repeated one (maxOccurs > 1) is always a list. Values: xs:date -> date, xs:dateTime -> datetime,
xs:decimal -> Decimal, the integer types -> int, xs:boolean -> bool, anything else -> str.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

from lxml import etree

XS = "http://www.w3.org/2001/XMLSchema"
INTEGERS = frozenset({
    "integer", "int", "long", "short", "byte", "nonNegativeInteger", "positiveInteger", "nonPositiveInteger",
    "negativeInteger", "unsignedLong", "unsignedInt", "unsignedShort", "unsignedByte",
})


class ContractViolation(ValueError):
    """A message does not match its contract (said by libxml2 with the first reason), or a value
    cannot be encoded as the contract's type."""


class UnsupportedSchema(TypeError):
    """The XSD uses a construct the compiled plans do not support (see the module docstring)."""


def _from_bool(text: str) -> bool:
    return text.strip() in ("true", "1")


def _to_text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return format(value, "f")
    return str(value)


_PARSERS: dict[str, Callable[[str], Any]] = {
    "date": lambda text: date.fromisoformat(text.strip()),
    "dateTime": lambda text: datetime.fromisoformat(text.strip()),
    "decimal": lambda text: Decimal(text.strip()),
    "boolean": _from_bool,
    **{name: (lambda text: int(text.strip())) for name in INTEGERS},
}


PLAN_VERSION = 1  # bump when the plan's shape changes: old cache entries are then ignored


def cache_dir() -> Path:
    """Where compiled plans are kept: $EHIS_CONTRACT_CACHE, else the user's cache directory."""
    configured = os.environ.get("EHIS_CONTRACT_CACHE")
    if configured:
        return Path(configured)
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "ehis" / "contracts"


@dataclass(frozen=True, slots=True)
class Node:
    """The plan of one element: its tag, dict key, occurrence and either children or a value type."""

    tag: str
    key: str
    required: bool
    many: bool
    children: tuple[Node, ...] | None  # None: a simple value
    builtin: str = "string"  # the XSD built-in a simple value derives from

    @property
    def parse(self) -> Callable[[str], Any]:
        return _PARSERS.get(self.builtin, str)

    def to_json(self) -> list[Any]:
        kids = None if self.children is None else [c.to_json() for c in self.children]
        return [self.tag, self.key, self.required, self.many, kids, self.builtin]

    @classmethod
    def from_json(cls, data: list[Any]) -> Node:
        tag, key, required, many, kids, builtin = data
        return cls(tag, key, required, many, None if kids is None else tuple(cls.from_json(k) for k in kids), builtin)


def _builtin_name(xsd_type: Any) -> str:
    """The nearest XSD built-in type a simple type derives from (xs:int for a restricted int)."""
    while xsd_type is not None and xsd_type.target_namespace != XS:
        xsd_type = getattr(xsd_type, "base_type", None) or getattr(xsd_type, "primitive_type", None)
    return xsd_type.local_name if xsd_type is not None else "string"


def _compile(element: Any, seen: tuple[str, ...] = ()) -> Node:
    name = element.name
    if name in seen:
        raise UnsupportedSchema(f"{name} is recursive")
    xsd_type = element.type
    required = element.min_occurs > 0
    many = element.max_occurs is None or element.max_occurs > 1
    key = etree.QName(name).localname
    if xsd_type.is_simple() or xsd_type.has_simple_content():
        if xsd_type.is_complex() and xsd_type.attributes:
            raise UnsupportedSchema(f"{name} has attributes")
        simple = xsd_type if xsd_type.is_simple() else xsd_type.content
        return Node(name, key, required, many, None, _builtin_name(simple))
    if xsd_type.attributes:
        raise UnsupportedSchema(f"{name} has attributes")
    if getattr(xsd_type, "mixed", False):
        raise UnsupportedSchema(f"{name} has mixed content")
    group = xsd_type.content
    _check_sequences(group, name)
    children = tuple(_compile(child, (*seen, name)) for child in group.iter_elements())
    return Node(name, key, required, many, children)


def _check_sequences(group: Any, owner: str) -> None:
    if group.model != "sequence":
        raise UnsupportedSchema(f"{owner} uses xs:{group.model}; only sequences are supported")
    for item in group:
        if hasattr(item, "model"):
            _check_sequences(item, owner)
        elif getattr(item, "name", None) is None:
            raise UnsupportedSchema(f"{owner} contains a wildcard")


def _compile_all(xsd: Path, namespace: str) -> dict[str, Node]:
    import xmlschema  # only when compiling: a warm cache never imports it

    schema = xmlschema.XMLSchema(str(xsd))
    plans: dict[str, Node] = {}
    for name, element in schema.maps.elements.items():
        try:
            plans[name] = _compile(element)
        except UnsupportedSchema:
            if etree.QName(name).namespace == namespace:
                raise
            # an imported schema's element this contract does not use as a message (X-Road's own)
    return plans


def _schema_files(xsd: Path, seen: dict[Path, bytes] | None = None) -> dict[Path, bytes]:
    """The XSD and every schema it imports or includes, by path (what the plans depend on)."""
    seen = {} if seen is None else seen
    path = xsd.resolve()
    if path in seen:
        return seen
    seen[path] = path.read_bytes()
    for ref in etree.fromstring(seen[path]).iter("{http://www.w3.org/2001/XMLSchema}import",
                                                 "{http://www.w3.org/2001/XMLSchema}include"):
        location = ref.get("schemaLocation")
        if location and "://" not in location:
            _schema_files(path.parent / location, seen)
    return seen


def _cached_plans(xsd: Path, cache: Path) -> dict[str, Node]:
    files = _schema_files(xsd)
    key = hashlib.sha256(str(PLAN_VERSION).encode() + b"".join(files[p] for p in sorted(files))).hexdigest()
    entry = cache / f"{key}.json"
    try:
        return {tag: Node.from_json(plan) for tag, plan in json.loads(entry.read_text(encoding="utf-8")).items()}
    except (OSError, ValueError, TypeError):
        pass  # missing or unreadable: compile, and keep it for next time
    namespace = etree.fromstring(files[xsd.resolve()]).get("targetNamespace", "")
    plans = _compile_all(xsd, namespace)
    try:
        cache.mkdir(parents=True, exist_ok=True)
        tmp = entry.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_text(json.dumps({tag: node.to_json() for tag, node in plans.items()}), encoding="utf-8")
        os.replace(tmp, entry)  # atomic: a concurrent start reads the whole entry or none
    except OSError:
        pass  # a read-only home: compile every time
    return plans


class Codec:
    """The messages of one schema file (and the schemas it imports): validate, decode, encode."""

    def __init__(self, xsd: Path, cache: Path | None = None):
        self.path = xsd
        document = etree.parse(str(xsd))
        self.validator = etree.XMLSchema(document)
        self.namespace: str = document.getroot().get("targetNamespace", "")
        self._plans = _cached_plans(xsd, cache if cache is not None else cache_dir())
        self._nsmaps: dict[str, dict[str | None, str]] = {}


    def qname(self, local: str) -> str:
        return f"{{{self.namespace}}}{local}"

    def knows(self, tag: str) -> bool:
        return tag in self._plans

    def validate(self, element: etree._Element) -> None:
        if not self.validator.validate(element):
            error = self.validator.error_log.last_error
            raise ContractViolation(error.message if error is not None else "does not match the contract")

    def decode(self, element: etree._Element) -> dict[str, Any]:
        """A valid global element as a dict (see the module docstring for the shape)."""
        plan = self._plans.get(element.tag)
        if plan is None or plan.children is None:
            raise ContractViolation(f"{element.tag} is not a message of this contract")
        return _decode_children(plan, element)

    def encode(self, tag: str, data: Mapping[str, Any]) -> etree._Element:
        """`data` as the global element `tag` (a Clark name, or a local name in this contract's namespace)."""
        plan = self._plans.get(tag) or self._plans.get(self.qname(tag))
        if plan is None or plan.children is None:
            raise ContractViolation(f"{tag} is not a message of this contract")
        element = etree.Element(plan.tag, nsmap=self._nsmap(plan))
        _encode_children(plan, element, data)
        return element

    def _nsmap(self, plan: Node) -> dict[str | None, str]:
        """Every namespace a message uses, declared once on its root (not again on each child)."""
        found = self._nsmaps.get(plan.tag)
        if found is None:
            own = etree.QName(plan.tag).namespace
            others = sorted(_namespaces(plan) - {own})
            found = self._nsmaps[plan.tag] = {None: own, **{f"n{i}": ns for i, ns in enumerate(others)}}
        return found


def _namespaces(plan: Node) -> set[str]:
    found = {etree.QName(plan.tag).namespace or ""}
    for child in plan.children or ():
        found |= _namespaces(child)
    return found


def _decode_children(plan: Node, element: etree._Element) -> dict[str, Any]:
    assert plan.children is not None
    result: dict[str, Any] = {}
    children = [c for c in element if isinstance(c.tag, str)]
    i = 0
    for child_plan in plan.children:
        values = []
        while i < len(children) and children[i].tag == child_plan.tag:
            values.append(_decode_value(child_plan, children[i]))
            i += 1
            if not child_plan.many:
                break
        result[child_plan.key] = values if child_plan.many else (values[0] if values else None)
    if i != len(children):
        raise ContractViolation(f"unexpected element {children[i].tag} in {plan.tag}")
    return result


def _decode_value(plan: Node, element: etree._Element) -> Any:
    if plan.children is None:
        return plan.parse(element.text or "")
    return _decode_children(plan, element)


def _encode_children(plan: Node, parent: etree._Element, data: Mapping[str, Any]) -> None:
    assert plan.children is not None
    unknown = set(data) - {c.key for c in plan.children}
    if unknown:
        raise ContractViolation(f"{etree.QName(plan.tag).localname} has no field(s) {', '.join(sorted(unknown))}")
    for child in plan.children:
        value = data.get(child.key)
        values = (list(value) if value is not None else []) if child.many else ([] if value is None else [value])
        if child.required and not values:
            raise ContractViolation(f"{etree.QName(plan.tag).localname}.{child.key} is required")
        for item in values:
            element = etree.SubElement(parent, child.tag)
            if child.children is None:
                element.text = _to_text(item)
            else:
                if not isinstance(item, Mapping):
                    raise ContractViolation(f"{child.key} must be a mapping, not {type(item).__name__}")
                _encode_children(child, element, item)
