"""The checkpoints' Merkle tree against RFC 6962's test vectors, and its audit paths."""

from __future__ import annotations

import pytest

from ehis.audit import merkle

# the leaves and roots of the Certificate Transparency test vectors (RFC 6962 reference code)
LEAVES = [b"", b"\x00", b"\x10", b"\x20\x21", b"\x30\x31", b"\x40\x41\x42\x43",
          b"\x50\x51\x52\x53\x54\x55\x56\x57", bytes(range(0x60, 0x70))]
ROOTS = {
    1: "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
    2: "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
    3: "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
    4: "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    5: "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
    6: "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
    7: "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
    8: "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
}


@pytest.mark.parametrize("size", sorted(ROOTS))
def test_roots_match_rfc_6962(size: int) -> None:
    assert merkle.root([merkle.leaf_hash(d) for d in LEAVES[:size]]).hex() == ROOTS[size]


def test_every_audit_path_leads_to_the_root_and_nothing_else_does() -> None:
    for size in range(1, 40):
        leaves = [merkle.leaf_hash(bytes([n])) for n in range(size)]
        root = merkle.root(leaves)
        for index in range(size):
            path = merkle.inclusion_path(index, leaves)
            assert len(path) <= size.bit_length()
            assert merkle.root_from_path(index, size, leaves[index], path) == root
            other = merkle.leaf_hash(b"another record")
            assert merkle.root_from_path(index, size, other, path) != root
            if size > 1:
                assert merkle.root_from_path((index + 1) % size, size, leaves[index], path) != root
    assert merkle.root_from_path(5, 5, leaves[0], []) is None
