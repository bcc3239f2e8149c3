"""A step that takes another step's items `in_order` applies them with its own records in input order.

The items come from every shard of the step before, which says how far it has sent (`Front`);
nothing is applied while something earlier could still arrive, however the items are delivered.
"""

from utopia.steps import Placed, Sequenced
from utopia.steps.sharding import SHARDS
from utopia.steps.shards import Front, KeyedStep, Mark, OrderedLogic


class Log:
    """A state that writes down what it was given, in the order it was given."""

    def __init__(self, key):
        self.seen = []

    def apply(self, item):
        self.seen.append(item.value)
        return [("k", item.value)]


def logic():
    return OrderedLogic(None, KeyedStep("test", Log, None, (), None))


def fronts(end, lane=0):
    return [(None, Front(lane, end, shard)) for shard in range(SHARDS)]


def applied(result):
    return [value for batch in result[0] for _, value in batch]


def test_items_wait_until_every_shard_before_and_the_own_input_have_passed_them():
    shard = logic()
    # An item of shard 3 at position 5 arrives before the own record at position 2.
    assert applied(shard.on_batch([[("k", Sequenced(0, 5, "ticket at 5", 1))]])) == []
    assert applied(shard.on_batch([[("k", Placed(0, 2, "event at 2")), (None, Mark(0, 10))]])) == []
    # Every shard but one has sent everything before 10: the item at 5 could still be preceded.
    assert applied(shard.on_batch([fronts(10)[:-1]])) == []
    assert applied(shard.on_batch([fronts(10)[-1:]])) == ["event at 2", "ticket at 5"]


def test_items_released_at_one_position_go_in_the_order_of_sub_after_the_own_record_there():
    shard = logic()
    batch = [
        ("k", Sequenced(0, 7, "second released", 4)),
        ("k", Sequenced(0, 7, "first released", 3)),
        ("k", Placed(0, 7, "the event that released them")),
        (None, Mark(0, 8)),
    ]
    assert applied(shard.on_batch([batch + fronts(8)])) == [
        "the event that released them",
        "first released",
        "second released",
    ]


def test_the_end_of_the_input_applies_what_still_waits_in_order():
    shard = logic()
    shard.on_batch([[("k", Sequenced(0, 9, "late", 0)), ("k", Sequenced(0, 3, "early", 0))]])
    assert applied(shard.on_eof()) == ["early", "late"]
