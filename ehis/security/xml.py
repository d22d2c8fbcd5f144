"""Parsing of untrusted XML: no entities, no DTDs, no network, bounded size and shape.

Everything a source or a caller sends goes through `parse_untrusted`. The limits are checked
before anything costly (signature verification canonicalises the whole document, and its cost
grows with the number of elements, attributes and namespace declarations), so one hostile
answer costs at most a bounded parse.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

from lxml import etree

MAX_XML_BYTES = 2 * 1024 * 1024


@dataclass(frozen=True)
class Limits:
    """How big an untrusted document may be. The defaults fit every contract of the hub with room."""

    max_bytes: int = MAX_XML_BYTES
    max_depth: int = 48
    max_elements: int = 50_000
    max_attributes: int = 64  # on one element
    max_namespaces: int = 64  # declared on one element
    max_total_attributes: int = 100_000


DEFAULT_LIMITS = Limits()
_local = threading.local()


class UnsafeXml(ValueError):
    """The document is too large or too deep, declares a DTD or entities, or is not well formed."""


def hardened_parser() -> etree.XMLParser:
    """This thread's parser (lxml parsers may be reused within a thread, not shared across threads)."""
    parser = getattr(_local, "parser", None)
    if parser is None:
        parser = _local.parser = etree.XMLParser(
            resolve_entities=False,
            no_network=True,
            load_dtd=False,
            dtd_validation=False,
            huge_tree=False,
            remove_comments=True,
            remove_pis=True,
        )
    return parser


def parse_untrusted(data: bytes, limits: Limits = DEFAULT_LIMITS) -> etree._Element:
    """The document's root element, or `UnsafeXml` saying which rule it breaks.

    A DTD is refused in every encoding: the check is on the parsed document (its doctype), not
    on the bytes, which a UTF-16 or UTF-32 document would pass.
    """
    if len(data) > limits.max_bytes:
        raise UnsafeXml(f"document is {len(data)} bytes; the limit is {limits.max_bytes}")
    try:
        tree = etree.fromstring(data, parser=hardened_parser()).getroottree()
    except etree.XMLSyntaxError as exc:
        raise UnsafeXml(f"not well-formed XML: {exc.msg}") from None
    except ValueError as exc:  # e.g. a str with an encoding declaration
        raise UnsafeXml(f"not an XML document: {exc}") from None
    if tree.docinfo.doctype or tree.docinfo.internalDTD is not None:
        raise UnsafeXml("document declares a DTD or entities")
    root = tree.getroot()
    if root is None:
        raise UnsafeXml("empty document")
    few_namespaces = ((tree.docinfo.encoding or "").upper() in ASCII_COMPATIBLE
                      and data.count(b"xmlns") <= limits.max_namespaces)
    check_shape(root, limits, few_namespaces=few_namespaces)
    return root


#: Encodings in which every namespace declaration is the bytes `xmlns` (not UTF-16, UTF-32, EBCDIC).
ASCII_COMPATIBLE = frozenset({"UTF-8", "US-ASCII", "ASCII", "ISO-8859-1"})


def check_shape(root: etree._Element, limits: Limits = DEFAULT_LIMITS, *, few_namespaces: bool = False) -> None:
    """Refuse a document deeper, larger or wider than `limits` allows (one walk over it).

    `few_namespaces`: the document holds at most `max_namespaces` declarations in all (its bytes
    say so), so no element can declare more and the per-element count, reading lxml's `nsmap`
    (two thirds of the walk's cost), is skipped.
    """
    elements = attributes = depth = 0
    namespaces = None if few_namespaces else [0]  # in scope above the root: none
    for event, element in etree.iterwalk(root, events=("start", "end")):
        if event == "end":
            depth -= 1
            if namespaces is not None:
                namespaces.pop()
            continue
        depth += 1
        elements += 1
        if depth > limits.max_depth:
            raise UnsafeXml(f"document is nested deeper than {limits.max_depth} levels")
        if elements > limits.max_elements:
            raise UnsafeXml(f"document has more than {limits.max_elements} elements")
        count = len(element.attrib)
        attributes += count
        if count > limits.max_attributes:
            raise UnsafeXml(f"an element has {count} attributes; the limit is {limits.max_attributes}")
        if attributes > limits.max_total_attributes:
            raise UnsafeXml(f"document has more than {limits.max_total_attributes} attributes")
        if namespaces is None:
            continue
        in_scope = len(element.nsmap)
        if in_scope - namespaces[-1] > limits.max_namespaces:
            raise UnsafeXml(f"an element declares more than {limits.max_namespaces} namespaces")
        namespaces.append(in_scope)

