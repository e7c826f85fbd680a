"""The demo: a provincial bloc whose applicants go through every stage, with real rules.

Dates are counted back from today so the deadlines shown by ``due`` are always live.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import TYPE_CHECKING, Any

from memberflow.errors import MoveRefused
from memberflow.i18n import _
from memberflow.workflow.dates import add_months, format_date, today

if TYPE_CHECKING:
    from memberflow.app.service import Service

ORGANIZATIONS = [
    ("TU", "Tỉnh ủy (tỉnh mẫu)", "province_committee", None),
    ("DBK", "Đảng bộ Khối các cơ quan và doanh nghiệp tỉnh", "committee_above", "TU"),
    ("SGD", "Đảng bộ Sở Giáo dục và Đào tạo", "grassroots", "DBK"),
    ("SGD-VP", "Chi bộ Văn phòng Sở", "branch", "SGD"),
    ("SGD-THPT", "Chi bộ Trường THPT Chuyên Lê Quý Đôn", "branch", "SGD"),
    ("SYT", "Đảng bộ Sở Y tế", "grassroots", "DBK"),
    ("SYT-BV", "Chi bộ Bệnh viện Đa khoa tỉnh", "branch", "SYT"),
    ("STC", "Chi bộ cơ sở Sở Tài chính", "grassroots", "DBK"),
]
BRANCHES = ["SGD-VP", "SGD-THPT", "SYT-BV", "STC"]
SECRETARY = {"SGD-VP": "bithu.vp", "SGD-THPT": "bithu.thpt", "SYT-BV": "bithu.bv",
             "STC": "bithu.stc"}
COMMITTEE = {"SGD-VP": "danguy.sgd", "SGD-THPT": "danguy.sgd", "SYT-BV": "danguy.syt",
             "STC": "chiuy.stc"}
USERS: list[tuple[str, str, str, str | None]] = [
    ("bithu.vp", "Nguyễn Thị Hương", "branch_secretary", "SGD-VP"),
    ("bithu.thpt", "Trần Văn Đức", "branch_secretary", "SGD-THPT"),
    ("bithu.bv", "Lê Thị Thu Hà", "branch_secretary", "SYT-BV"),
    ("bithu.stc", "Phạm Quốc Việt", "branch_secretary", "STC"),
    ("danguy.sgd", "Hoàng Minh Tuấn", "grassroots_committee", "SGD"),
    ("danguy.syt", "Đỗ Thị Lan", "grassroots_committee", "SYT"),
    ("chiuy.stc", "Vũ Đình Khải", "grassroots_committee", "STC"),
    ("btv.khoi", "Bùi Thanh Sơn", "standing_committee_above", "DBK"),
    ("ubkt.khoi", "Ngô Thị Mai", "inspection_commission", "DBK"),
    ("bantochuc", "Đặng Văn Hùng", "organization_department", "TU"),
    ("quantri", "Trịnh Công Minh", "administrator", None),
    ("kiemtoan", "Lương Thị Diệu", "auditor", None),
]
# Each person with the gender their name says (a Vietnamese reader notices at once).
MEMBERS = [("Nguyễn Văn An", "male"), ("Trần Thị Bích", "female"), ("Lê Hoàng Nam", "male"),
           ("Phạm Thị Ngọc Ánh", "female"), ("Hoàng Văn Thắng", "male"), ("Vũ Thị Hạnh", "female"),
           ("Đinh Công Tráng", "male"), ("Lý Thị Hoa", "female")]
APPLICANTS = [("Nguyễn Thị Thu Trang", "female"), ("Trần Minh Khôi", "male"),
              ("Lê Thị Mỹ Duyên", "female"), ("Phạm Đức Anh", "male"), ("Hoàng Thị Yến", "female"),
              ("Võ Quang Huy", "male"), ("Đặng Thị Kim Ngân", "female"), ("Bùi Văn Long", "male"),
              ("Đỗ Thị Phương Thảo", "female"), ("Hồ Sỹ Mạnh", "male"),
              ("Ngô Thị Ánh Tuyết", "female"), ("Dương Văn Toàn", "male"),
              ("Lý Thị Kiều Oanh", "female"), ("Mai Xuân Trường", "male"),
              ("Trịnh Thị Hồng Nhung", "female"), ("Phan Thanh Tùng", "male"),
              ("Chu Thị Lệ Quyên", "female"), ("Lâm Văn Sang", "male"), ("Tạ Thị Huyền", "female"),
              ("Quách Minh Đức", "male"), ("Kiều Thị Thanh Tâm", "female")]

# (trigger, days after the application starts, acting side, inputs, documents)
ADMISSION = [
    ("record_training", 0, "secretary", {"certificate_date": -20}, ["CN-NTVĐ"]),
    ("prepare_dossier", 15, "secretary", {}, ["1-KNĐ", "2-KNĐ", "3-KNĐ"]),
    ("verify_background", 45, "committee",
     {"verification_conclusion": "Lý lịch rõ ràng, gia đình chấp hành tốt chủ trương"}, ["2-KNĐ"]),
    ("record_branch_vote", 60, "secretary", {"votes_for": 9, "votes_eligible": 10},
     ["5-KNĐ", "6-KNĐ"]),
    ("record_committee_vote", 70, "committee", {"votes_for": 7, "votes_eligible": 9}, ["8-KNĐ"]),
    ("decide_admission", 90, "standing", {"decision_number": "QĐ-ĐUK"}, ["9-KNĐ"]),
    ("hold_ceremony", 100, "secretary", {}, []),
]
# (trigger, days after the probation ends, acting side, inputs, documents)
RECOGNITION = [
    ("complete_probation", 0, "secretary", {}, []),
    ("record_recognition_vote", 7, "secretary", {"votes_for": 10, "votes_eligible": 11},
     ["10-KNĐ", "11-KNĐ", "12-KNĐ", "13-KNĐ"]),
    ("record_recognition_committee_vote", 14, "committee", {"votes_for": 8, "votes_eligible": 9},
     ["15-KNĐ"]),
    ("recognize_official", 25, "standing", {"decision_number": "QĐ-CNCT"}, ["QĐ-CNCT"]),
]


@dataclass
class DemoReport:
    summary: list[dict[str, Any]] = field(default_factory=list)
    featured_case: int = 0
    featured_name: str = ""
    sample_case: int = 0
    sample_actor: str = ""
    refusals: list[str] = field(default_factory=list)
    featured_history: list[dict[str, Any]] = field(default_factory=list)


class _Bloc:
    """Runs the scenario; each helper advances one case the way the officers would."""

    def __init__(self, service: Service, echo: Callable[[str], None]) -> None:
        self.service = service
        self.echo = echo
        self.today = today()
        self.members: dict[str, list[int]] = {}
        self.report = DemoReport()

    def ago(self, months: int = 0, days: int = 0) -> date:
        return add_months(self.today, -months) - timedelta(days=days)

    def actor(self, side: str, branch: str) -> str:
        return {"secretary": SECRETARY[branch], "committee": COMMITTEE[branch],
                "standing": "btv.khoi"}[side]

    def setup(self) -> None:
        directory = self.service.store.directory
        for code, name, kind, parent in ORGANIZATIONS:
            directory.add_organization(code, name, kind, parent)
        for username, name, role, org in USERS:  # org None: the whole installation
            directory.add_user(username, name)
            directory.grant(username, role, org)
        self.echo(_("Bloc: {count} organizations, {count2} officers.").format(
                      count=len(ORGANIZATIONS), count2=len(USERS)))
        for index, (name, gender) in enumerate(MEMBERS):
            branch = BRANCHES[index % len(BRANCHES)]
            person = self.person(name, date(1975 + index, 3 + index, 10), gender)
            case_id = self.service.open_case("bantochuc", person, branch, "membership",
                                             self.ago(months=30))
            self.move(case_id, "register_existing_member", self.ago(months=30), "bantochuc", {
                "admission_date": date(2005 + index, 5, 19).isoformat(),
                "official_since": date(2006 + index, 5, 19).isoformat(),
                "party_card_number": f"{index + 1:08d}"}, [])
            self.members.setdefault(branch, []).append(person)
        self.echo(_("Registered {count} official members from paper records.").format(count=len(MEMBERS)))

    def person(self, name: str, born: date, gender: str, youth: bool = True) -> int:
        return self.service.store.directory.add_person(
            full_name=name, birth_date=born, gender=gender,
            ethnicity="Kinh", religion="Không", education="university",
            youth_union=youth, trade_union=True)

    def move(self, case_id: int, trigger: str, on: date, actor: str, inputs: dict[str, Any],
             documents: list[str]) -> None:
        attached = {code: f"{code}/{case_id}" for code in documents}
        self.service.advance(actor, case_id, trigger, on, inputs, attached)

    def applicant(self, index: int, born: date | None = None) -> tuple[int, str, str]:
        name, gender = APPLICANTS[index]
        branch = BRANCHES[index % len(BRANCHES)]
        person = self.person(name, born or date(1996 + index % 6, 1 + index % 12, 5 + index), gender)
        return person, name, branch

    def admit(self, case_id: int, branch: str, start: date, until: str = "hold_ceremony",
              certificate: date | None = None) -> date:
        """Walk the admission steps up to ``until``; returns the date of the last step."""
        introducers = ",".join(f"{p}:{24 + 12 * i}" for i, p in enumerate(self.members[branch][:2]))
        on = start
        for trigger, offset, side, inputs, docs in ADMISSION:
            on = start + timedelta(days=offset)
            values = dict(inputs)
            if trigger == "record_training":
                values["certificate_date"] = (certificate or on + timedelta(days=-20)).isoformat()
            elif trigger == "prepare_dossier":
                values["introducers"] = introducers
            elif trigger == "decide_admission":
                values["decision_number"] = f"{100 + case_id}-QĐ/ĐUK"
            elif trigger == "hold_ceremony":
                values["helper"] = self.members[branch][0]
            self.move(case_id, trigger, on, self.actor(side, branch), values, docs)
            if trigger == until:
                break
        return on

    def recognize(self, case_id: int, branch: str, ceremony: date, decided_late: int = 0) -> None:
        end = add_months(ceremony, 12)
        for trigger, offset, side, inputs, docs in RECOGNITION:
            values = dict(inputs)
            if trigger == "recognize_official":
                offset += decided_late
                values["decision_number"] = f"{500 + case_id}-QĐ/ĐUK"
            self.move(case_id, trigger, end + timedelta(days=offset), self.actor(side, branch),
                      values, docs)

    def refused(self, case_id: int, trigger: str, on: date, actor: str, inputs: dict[str, Any],
                docs: list[str]) -> None:
        try:
            self.move(case_id, trigger, on, actor, inputs, docs)
        except MoveRefused as refusal:
            self.report.refusals.append(str(refusal))
            self.echo(_("  case {case_id}: refused as the rules require — {refusal}").format(
                          case_id=case_id, refusal=refusal))
        else:
            raise AssertionError(f"demo expected {trigger} on case {case_id} to be refused")

    def open(self, person: int, branch: str, on: date) -> int:
        return self.service.open_case(SECRETARY[branch], person, branch, "membership", on)


def run_demo(service: Service, echo: Callable[[str], None]) -> DemoReport:
    bloc = _Bloc(service, echo)
    bloc.setup()
    _admitted_and_recognized(bloc)
    _in_probation(bloc)
    _in_application(bloc)
    _refused_and_removed(bloc)
    _screened(bloc)
    _summarize(bloc)
    return bloc.report


def _admitted_and_recognized(bloc: _Bloc) -> None:
    for index in range(4):
        person, name, branch = bloc.applicant(index)
        start = bloc.ago(months=19, days=index * 3)
        case_id = bloc.open(person, branch, start)
        ceremony = bloc.admit(case_id, branch, start)
        # One decision is recorded late: membership still counts from the end of probation.
        bloc.recognize(case_id, branch, ceremony, decided_late=20 if index == 1 else 0)
        if index == 0:
            bloc.report.featured_case, bloc.report.featured_name = case_id, name
    bloc.echo(_("4 applicants admitted, served 12 months of probation and were recognized."))


def _in_probation(bloc: _Bloc) -> None:
    for index in range(4, 8):
        person, _case, branch = bloc.applicant(index)
        case_id = bloc.open(person, branch, bloc.ago(months=9, days=index))
        bloc.admit(case_id, branch, bloc.ago(months=9, days=index))
    person, _case, branch = bloc.applicant(8)
    start = bloc.ago(months=16)
    case_id = bloc.open(person, branch, start)
    ceremony = bloc.admit(case_id, branch, start)
    bloc.move(case_id, "complete_probation", add_months(ceremony, 12), SECRETARY[branch], {}, [])
    bloc.echo(_("4 members on probation; 1 finished probation and awaits the recognition vote."))


def _in_application(bloc: _Bloc) -> None:
    stops = ["open", "record_training", "prepare_dossier", "verify_background",
             "record_branch_vote", "record_committee_vote", "decide_admission"]
    for offset, until in enumerate(stops):
        person, _case, branch = bloc.applicant(9 + offset)
        start = bloc.ago(days=110 if until == "decide_admission" else 100 - offset * 5)
        case_id = bloc.open(person, branch, start)
        if until != "open":
            bloc.admit(case_id, branch, start, until=until)
    bloc.echo(_("{count} applications in progress, one at each step before the ceremony.").format(
                  count=len(stops)))


def _refused_and_removed(bloc: _Bloc) -> None:
    report = bloc.report
    # Too young: 17 years 11 months on the day of the branch vote.
    start = bloc.ago(days=80)
    vote_day = start + timedelta(days=60)
    person, _case, branch = bloc.applicant(16, born=add_months(vote_day, -(17 * 12 + 11)))
    young = bloc.open(person, branch, start)
    bloc.admit(young, branch, start, until="verify_background")
    bloc.refused(young, "record_branch_vote", vote_day, SECRETARY[branch],
                 {"votes_for": 10, "votes_eligible": 10}, ["5-KNĐ", "6-KNĐ"])
    report.sample_case, report.sample_actor = young, SECRETARY[branch]

    # Certificate valid when recorded, expired by the vote; the course is retaken.
    start = bloc.ago(months=5)
    person, _case, branch = bloc.applicant(17)
    late = bloc.open(person, branch, start)
    bloc.admit(late, branch, start, until="verify_background", certificate=bloc.ago(months=64))
    bloc.refused(late, "record_branch_vote", bloc.ago(months=3), SECRETARY[branch],
                 {"votes_for": 9, "votes_eligible": 10}, ["5-KNĐ", "6-KNĐ"])
    bloc.move(late, "renew_training", bloc.ago(months=2), SECRETARY[branch],
              {"certificate_date": bloc.ago(months=2, days=5).isoformat()}, ["CN-NTVĐ"])
    bloc.move(late, "record_branch_vote", bloc.ago(months=1), SECRETARY[branch],
              {"votes_for": 9, "votes_eligible": 10}, ["5-KNĐ", "6-KNĐ"])

    # The branch vote falls short of 2/3: recorded as a rejection.
    person, _case, branch = bloc.applicant(18)
    start = bloc.ago(months=4)
    short = bloc.open(person, branch, start)
    bloc.admit(short, branch, start, until="verify_background")
    bloc.refused(short, "record_branch_vote", start + timedelta(days=60), SECRETARY[branch],
                 {"votes_for": 5, "votes_eligible": 10}, ["5-KNĐ", "6-KNĐ"])
    bloc.move(short, "record_failed_branch_vote", start + timedelta(days=60), SECRETARY[branch],
              {"votes_for": 5, "votes_eligible": 10}, ["6-KNĐ"])
    bloc.move(short, "reject_application", start + timedelta(days=61), SECRETARY[branch],
              {"reason": "Chi bộ biểu quyết không đạt 2/3 (5/10)"}, [])

    # A probationary member struck off for three months' absence.
    person, _case, branch = bloc.applicant(19)
    start = bloc.ago(months=11)
    struck = bloc.open(person, branch, start)
    bloc.admit(struck, branch, start)
    bloc.move(struck, "strike_off", bloc.ago(days=20), "btv.khoi", {
        "ground": "absence_or_unpaid_dues", "branch_votes_for": 9, "branch_votes_eligible": 10,
        "committee_votes_for": 7, "committee_votes_eligible": 9, "standing_votes_for": 5,
        "standing_votes_eligible": 7, "decision_number": f"{900 + struck}-QĐ/ĐUK"}, ["QĐ-XT"])

    # An applicant withdraws.
    person, _case, branch = bloc.applicant(20)
    start = bloc.ago(months=2)
    gone = bloc.open(person, branch, start)
    bloc.admit(gone, branch, start, until="record_training")
    bloc.move(gone, "withdraw_application", start + timedelta(days=30), SECRETARY[branch],
              {"reason": "Chuyển công tác ra khỏi tỉnh, xin dừng"}, [])
    bloc.echo(_("1 struck off, 1 rejected by the branch vote, 1 withdrawn; 3 moves refused by rules."))
    bloc.echo(_("  (refusals above were judged on {today} rules in force)").format(
                  today=format_date(bloc.today)))


def _screened(bloc: _Bloc) -> None:
    """The year-end review: every registered member rated for two years, then screened."""
    from memberflow.app.screening import Screening, YearRecord

    screening = Screening(bloc.service)
    year = bloc.today.year
    members = [person for people in bloc.members.values() for person in people]
    weak, absent = members[1], members[2]
    records = [YearRecord(person, y, 45 if person == weak else 82, None,
                          {"absence_months": 4 if person == absent and y == year else 0})
               for person in members for y in (year - 1, year)]
    screening.record("bantochuc", records)
    listed = screening.screen(year)
    results = screening.propose("bantochuc", listed, bloc.today)
    bloc.echo(_("Screening {year}: {count} ratings recorded, {count2} members listed, {sum} proposals to "
                "strike off made.").format(
                  year=year, count=len(records), count2=len(listed),
                  sum=sum(r.outcome == 'moved' for r in results)))


def _summarize(bloc: _Bloc) -> None:
    service = bloc.service
    definition = service.definition(service.store.definitions.latest("membership")["id"])
    counts = Counter(service.store.cases.count_by_state())
    for state in definition.states.values():
        if counts.get(state.name):
            bloc.report.summary.append({"stage": state.stage, "state": state.name,
                                        "label": state.labels.vi, "cases": counts[state.name]})
