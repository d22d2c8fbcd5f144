"""Parsing of untrusted XML: no entities, no DTDs, no network, a size limit.

Everything a source or a caller sends goes through `parse_untrusted`; zeep gets the same
rules through `zeep.Settings` (see ehis.adapters.soap).
"""

from __future__ import annotations

from lxml import etree

MAX_XML_BYTES = 2 * 1024 * 1024

_PARSER = etree.XMLParser(
    resolve_entities=False,
    no_network=True,
    load_dtd=False,
    dtd_validation=False,
    huge_tree=False,
    remove_comments=True,
    remove_pis=True,
)


class UnsafeXml(ValueError):
    """The document is too large, declares a DTD or entities, or is not well formed."""


def hardened_parser() -> etree.XMLParser:
    """The shared parser (lxml parsers are reusable within one thread; asyncio runs in one)."""
    return _PARSER


def parse_untrusted(data: bytes, *, max_bytes: int = MAX_XML_BYTES) -> etree._Element:
    if len(data) > max_bytes:
        raise UnsafeXml(f"document is {len(data)} bytes; the limit is {max_bytes}")
    if b"<!DOCTYPE" in data or b"<!ENTITY" in data:
        raise UnsafeXml("document declares a DTD or entities")
    try:
        root = etree.fromstring(data, parser=_PARSER)
    except etree.XMLSyntaxError as exc:
        raise UnsafeXml(f"not well-formed XML: {exc.msg}") from None
    if root is None:
        raise UnsafeXml("empty document")
    return root
