"""The resource id registry: ids in use are never handed out twice."""
import pytest

from aiges.errors import AigesError
from aiges.resources import MAX_ID, ResourceIds


def refused(fn, *args) -> tuple[int, int, str]:
    with pytest.raises(AigesError) as info:
        fn(*args)
    return info.value.code, info.value.http_status, info.value.message


def test_assigned_ids_start_at_1_and_skip_ids_in_use():
    ids = ResourceIds()
    assert ids.reserve(2) == 2
    assert ids.reserve() == 1
    assert ids.reserve() == 3      # 2 is being loaded
    ids.load_done(1, ok=True)
    assert ids.loaded() == [1]     # 2 and 3 are still loading
    ids.load_done(3, ok=False)     # a failed load frees its id
    assert ids.loaded() == [1]
    assert ids.reserve() == 4      # not handed out again soon
    assert ids.reserve(3) == 3


def test_ids_in_use_conflict():
    ids = ResourceIds()
    ids.reserve(7)
    assert refused(ids.reserve, 7) == (10107, 409, "resource 7 is already being loaded")
    assert refused(ids.begin_unload, 7) == (10107, 409, "resource 7 is being loaded")
    ids.load_done(7, ok=True)
    assert refused(ids.reserve, 7) == (10107, 409, "resource 7 is already loaded")
    ids.begin_unload(7)
    assert refused(ids.begin_unload, 7) == (10107, 409, "resource 7 is being unloaded")
    assert refused(ids.reserve, 7)[1] == 409
    assert ids.loaded() == []
    ids.unload_done(7, ok=True)
    assert refused(ids.begin_unload, 7) == (10107, 404, "resource 7 is not loaded")
    assert ids.reserve(7) == 7


def test_a_failed_unload_keeps_the_id():
    ids = ResourceIds()
    ids.load_done(ids.reserve(), ok=True)
    ids.begin_unload(1)
    ids.unload_done(1, ok=False)
    assert ids.loaded() == [1]
    assert ids.reserve() == 2


def test_assigned_ids_wrap_around_past_the_largest():
    ids = ResourceIds()
    ids.reserve(1)
    ids._next = MAX_ID
    assert ids.reserve() == MAX_ID
    assert ids.reserve() == 2


def test_each_id_has_its_own_token_until_it_is_unloaded():
    ids = ResourceIds()
    one, two = ids.reserve(), ids.reserve()
    token = ids.token(one)
    assert isinstance(token, str) and len(token) >= 20 and token != ids.token(two)
    assert ids.owned(one, token) and not ids.owned(two, token)
    assert not ids.owned(one, "") and not ids.owned(one, token[:-1])
    assert not ids.owned(one, "\udcff")  # undecodable header bytes: refused, not a crash
    ids.load_done(one, ok=True)
    ids.begin_unload(one)
    ids.unload_done(one, ok=False)        # still loaded: the same token unloads it later
    assert ids.owned(one, token)
    ids.begin_unload(one)
    ids.unload_done(one, ok=True)
    assert refused(ids.owned, one, token) == (10107, 404, "resource 1 is not loaded")
    assert ids.reserve(one) == one and ids.token(one) != token
