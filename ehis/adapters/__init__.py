"""Adapters to the source systems: one generic SOAP adapter (soap.py), driven by the catalogue."""
