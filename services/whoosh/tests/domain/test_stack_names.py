from whoosh.domain.stack_names import matches_stack_name, without_stack_prefix


def test_a_name_matches_itself_and_under_any_stack_prefix() -> None:
    assert matches_stack_name("chorus", "chorus")
    assert matches_stack_name("CHORUS_chorus", "chorus")
    assert matches_stack_name("CHORUS_chorus_net", "chorus_net")
    assert not matches_stack_name("CHORUS_chorus-gateway", "chorus")
    assert not matches_stack_name("xchorus", "chorus")


def test_the_stack_prefix_comes_off_only_for_its_own_stack() -> None:
    assert without_stack_prefix("CHORUS_chorus_net", "CHORUS") == "chorus_net"
    assert without_stack_prefix("chorus_net", "") == "chorus_net"
    assert without_stack_prefix("OTHER_chorus_net", "CHORUS") == "OTHER_chorus_net"
