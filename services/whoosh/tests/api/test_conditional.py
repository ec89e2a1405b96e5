from whoosh.api.conditional import MAX_WAIT_S, etag_matches, preferred_wait_s


def test_prefer_wait_is_read_capped_and_never_negative() -> None:
    assert preferred_wait_s(None) == 0
    assert preferred_wait_s("wait=10") == 10
    assert preferred_wait_s("respond-async, wait=2.5") == 2.5
    assert preferred_wait_s('wait="3"') == 3
    assert preferred_wait_s("wait=100000") == MAX_WAIT_S
    for bad in ("wait=-1", "wait=abc", "wait=nan", "wait=inf", "handling=lenient"):
        assert preferred_wait_s(bad) == 0, bad


def test_if_none_match_names_the_tag() -> None:
    assert etag_matches('"abc"', '"abc"')
    assert etag_matches('W/"abc"', '"abc"')  # weak comparison
    assert etag_matches('"x", "abc"', '"abc"')
    assert etag_matches("*", '"abc"')
    assert not etag_matches(None, '"abc"')
    assert not etag_matches('"abd"', '"abc"')
