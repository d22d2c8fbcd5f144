"""Azərsu ASC, the water utility: a household head's water subscription and monthly m3.

Everything but the code, the operation and the example is shared with the other utilities
(ehis.sources.utility); the contract, with its unit, is azersu.wsdl/azersu.xsd.
"""

from ehis.sources.utility import consumption_source

SOURCE = consumption_source(__file__, "azersu", "GetWaterConsumption", example_fin="H2HG2DK")
