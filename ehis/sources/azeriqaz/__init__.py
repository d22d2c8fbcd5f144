"""Azəriqaz İB, the gas distributor: a household head's gas subscription and monthly m3.

Everything but the code, the operation and the example is shared with the other utilities
(ehis.sources.utility); the contract, with its unit, is azeriqaz.wsdl/azeriqaz.xsd.
"""

from ehis.sources.utility import consumption_source

SOURCE = consumption_source(__file__, "azeriqaz", "GetGasConsumption", example_fin="EZKAHMJ")
