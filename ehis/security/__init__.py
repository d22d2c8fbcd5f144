"""Test PKI, XML signing and verification, and hardened XML parsing."""
