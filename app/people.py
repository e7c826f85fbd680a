"""People: registering applicants and members, and showing their records to those who may see
them.

A person belongs to the organization that registered them and to every organization one of
their cases is at; an officer sees the people of their subtrees, an auditor everyone. The
fields the definition marks sensitive (``personal_data``) are shown only to its roles.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Any

from memberflow.errors import BadInput, NotFound, NotPermitted
from memberflow.i18n import _
from memberflow.workflow.directory import person_fields
from memberflow.workflow.personal_data import DEFAULT, PersonalData

if TYPE_CHECKING:
    from memberflow.app.application import Application
    from memberflow.app.csv_files import Imported
    from memberflow.app.principal import Principal

DEFINITION = "membership"  # whose personal_data rule applies to a person with no case yet


@dataclass(frozen=True)
class PersonView:
    record: dict[str, Any]  # the person's fields the principal may see
    cases: list[int]
    hidden: tuple[str, ...]  # sensitive fields left out


class People:
    def __init__(self, app: Application) -> None:
        self.app = app
        self.access = app.access
        self.directory = app.store.directory

    # -- registering --------------------------------------------------------------------------
    def registering_organization(self, principal: Principal, org_code: str | None) -> int | None:
        """Where a person the principal registers belongs: the organization named (one the
        principal works at or above), else the one organization of their officer grants."""
        self.access.require_officer(principal)
        if org_code is not None:
            organization = self.directory.organization(org_code)
            if not self.access.roles_at(principal, organization["id"]):
                raise NotPermitted(_("{user} holds no grant at {org} or above, so cannot register "
                                     "people there").format(user=principal.username, org=org_code))
            return organization["id"]
        places = sorted({g.organization_code for g in self.access.grants(principal)
                         if g.officer and g.organization_code})
        if len(places) > 1:
            raise BadInput(_("say where the person belongs with --org: {user} works at {orgs}")
                           .format(user=principal.username, orgs=", ".join(places)))
        return self.directory.organization(places[0])["id"] if places else None

    def add(self, principal: Principal, org_code: str | None, full_name: str, birth_date: date,
            **fields: Any) -> int:
        organization_id = self.registering_organization(principal, org_code)
        return self.directory.add_person(organization_id=organization_id,
                                         **person_fields(full_name, birth_date, **fields))

    def import_file(self, principal: Principal, org_code: str | None, path: Path) -> Imported:
        from memberflow.app.csv_files import import_people

        organization_id = self.registering_organization(principal, org_code)
        return import_people(self.directory, organization_id, path)

    # -- reads --------------------------------------------------------------------------------
    def _organizations_of(self, person: dict[str, Any]) -> list[int]:
        cases = self.app.store.cases.of_person(person["id"])
        found = [c.organization_id for c in reversed(cases)]
        return list(dict.fromkeys([*found, person["organization_id"]] if person["organization_id"]
                                  else found))

    def _readable(self, principal: Principal, person_id: int) -> tuple[dict[str, Any], list[int]]:
        person = self.directory.person(person_id)
        places = self._organizations_of(person)
        if self.access.is_auditor(principal) or \
                any(self.access.officer_roles_at(principal, org) for org in places):
            return person, places
        raise NotPermitted(_("{user} holds no grant covering person {person}: it takes an officer "
                             "role where the person belongs, or auditor")
                           .format(user=principal.username, person=person_id))

    def personal_data(self, person_id: int | None = None) -> PersonalData:
        """The rule of the person's newest case's definition, else the newest published one."""
        cases = self.app.store.cases.of_person(person_id) if person_id is not None else []
        service = self.app.service
        if cases:
            definition = service.definition(cases[-1].definition_id)
        else:
            try:
                definition = service.definition(self.app.store.definitions.latest(DEFINITION)["id"])
            except NotFound:  # no such definition installed: the default rule
                return DEFAULT
        return definition.personal_data or DEFAULT

    def sensitive_shown(self, principal: Principal, organization_id: int | None,
                        rule: PersonalData | None = None) -> bool:
        rule = rule or self.personal_data()
        return self.access.may_see(principal, organization_id, rule.shown_to)

    def show(self, principal: Principal, person_id: int) -> PersonView:
        person, places = self._readable(principal, person_id)
        rule = self.personal_data(person_id)
        shown = any(self.sensitive_shown(principal, org, rule) for org in places) or \
            self.sensitive_shown(principal, None, rule)
        cases = [c.id for c in self.app.store.cases.of_person(person_id)]
        return self._view(person, cases, rule, shown)

    def listing(self, principal: Principal, limit: int) -> list[PersonView]:
        """The people the principal sees, by id."""
        scope = self.access.visible_organizations(principal)
        rule = self.personal_data()
        auditor_sees = self.sensitive_shown(principal, None, rule)
        views = []
        for person in self.directory.people(limit, scope):
            shown = auditor_sees or self.sensitive_shown(principal, person["organization_id"], rule)
            views.append(self._view(person, [], rule, shown))
        return views

    @staticmethod
    def _view(person: dict[str, Any], cases: list[int], rule: PersonalData, shown: bool) -> PersonView:
        hidden = () if shown else tuple(f for f in rule.sensitive if f in person)
        record = {k: v for k, v in person.items() if k not in hidden}
        return PersonView(record, cases, hidden)

    def conceal_evidence(self, evidence: dict[str, Any], shown: bool) -> None:
        """Sensitive fields of the applicant's snapshot in an event's evidence, unless shown."""
        if shown:
            return
        applicant = evidence.get("applicant")
        if isinstance(applicant, dict):
            for key in self.personal_data().sensitive:
                applicant.pop(key, None)
