"""EHİS Connector: the ministry's hub to the state information systems behind EHİS."""

__version__ = "0.1.0"
