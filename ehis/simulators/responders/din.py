"""Internal Affairs (din): GetPerson from the synthetic population.

Three outcomes, as the contract says: GetPersonResponse for a FIN the registry holds,
the PersonNotFound fault for a well-formed FIN it does not (those starting with "0", see
ehis.simulators.population), the InvalidFin fault for a malformed one.
"""

from __future__ import annotations

from lxml import etree

from ehis.identifiers import FIN_PATTERN
from ehis.simulators import population
from ehis.simulators.journal import Outcome
from ehis.simulators.population import Person
from ehis.simulators.responders import Operation, Responder
from ehis.simulators.soap import SoapFault

NS = "urn:az:gov:din:person:v1"
NSMAP = {"din": NS}
INVALID_FIN_REASON = "a FIN is 7 characters: digits and Latin capital letters except I and O"


def get_person(request: etree._Element) -> etree._Element:
    fin = (request.findtext(_q("fin")) or "").strip()
    if not FIN_PATTERN.fullmatch(fin):
        raise SoapFault("invalid FIN", detail=_invalid_fin(INVALID_FIN_REASON), outcome=Outcome.INVALID)
    person = population.find(fin)
    if person is None:
        raise SoapFault("no person with this FIN in the registry", detail=_not_found(fin),
                        outcome=Outcome.NOT_FOUND)
    response = etree.Element(_q("GetPersonResponse"), nsmap=NSMAP)
    response.append(person_element(person))
    return response


def person_element(p: Person) -> etree._Element:
    """`din:person` with every field of the contract, in the schema's order."""
    person = etree.Element(_q("person"), nsmap=NSMAP)
    _add(person, fin=p.fin, surname=p.surname, name=p.name, patronymic=p.patronymic,
         birthDate=p.birth_date.isoformat(), sex=p.sex, citizenship=p.citizenship)
    d = p.document
    _add(etree.SubElement(person, _q("document")), type=d.type, series=d.series, number=d.number,
         issueDate=d.issue_date.isoformat(), issuingBody=d.issuing_body, expiryDate=d.expiry_date.isoformat())
    a = p.address
    _add(etree.SubElement(person, _q("registeredAddress")), text=a.text, districtCode=a.district_code,
         districtName=a.district_name)
    return person


def _not_found(fin: str) -> etree._Element:
    element = etree.Element(_q("PersonNotFound"), nsmap=NSMAP)
    _add(element, fin=fin)
    return element


def _invalid_fin(reason: str) -> etree._Element:
    element = etree.Element(_q("InvalidFin"), nsmap=NSMAP)
    _add(element, reason=reason)
    return element


def _add(parent: etree._Element, **children: str) -> None:
    for name, text in children.items():
        etree.SubElement(parent, _q(name)).text = text


def _q(name: str) -> str:
    return f"{{{NS}}}{name}"


RESPONDER = Responder("din", NS, (Operation("GetPerson", get_person, subject="fin"),))
