"""Azərişiq ASC, the electricity distributor: a household head's electricity subscription and monthly kWh.

Everything but the code, the operation and the example is shared with the other utilities
(ehis.sources.utility); the contract, with its unit, is azerishiq.wsdl/azerishiq.xsd.
"""

from ehis.sources.utility import consumption_source

SOURCE = consumption_source(__file__, "azerishiq", "GetElectricityConsumption", example_fin="N9YQMYF")
