"""TopN against a full sort of all counts, on random occurrence sequences."""

from hypothesis import given
from hypothesis import strategies as st

from utopia.rules.ranking import TopN


def full_sort(occurrences, n):
    counts, reached = {}, {}
    for position, item in enumerate(occurrences):
        counts[item] = counts.get(item, 0) + 1
        reached[item] = position
    return sorted(counts.items(), key=lambda kv: (-kv[1], reached[kv[0]]))[:n]


def test_ties_go_to_who_reached_the_count_first():
    top = TopN(2)
    for item in ["a", "b", "b", "a"]:
        top.add(item)
    assert top.ranked() == [("b", 2), ("a", 2)]


def test_add_says_whether_the_top_changed():
    top = TopN(1)
    assert [top.add(x) for x in ["a", "b", "b", "a"]] == [True, False, True, False]
    assert top.ranked() == [("b", 2)]


@given(st.lists(st.sampled_from("abcdefg"), max_size=200), st.integers(1, 4))
def test_matches_a_full_sort_after_every_occurrence(occurrences, n):
    top = TopN(n)
    for i, item in enumerate(occurrences):
        top.add(item)
        assert top.ranked() == full_sort(occurrences[: i + 1], n)
