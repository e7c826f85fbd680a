from conftest import World


def test_official_path_reaches_official_member(world: World) -> None:
    case_id = world.official_case()
    record = world.store.cases.load(case_id)
    assert record.state == "official_member"
    assert record.seq == 12
