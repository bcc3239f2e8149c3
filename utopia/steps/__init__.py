"""The steps every dataflow is made of: read and decode topics, keep state per key, write outputs.

Records travel in batches (a list per source poll), so the Python cost per record stays small:
Bytewax's own per-item overhead is paid once per batch and shard, not once per record. The keyed
steps still apply records one at a time in input order to a small pure state object per key
(utopia.steps.state lists what such a class may have), so the business rules read as if there
were no batching. The family, one module each, all on one engine (utopia.steps.engine):

- `keyed_state`, `items_per_key`, `rekey` (utopia.steps.keyed): records, or another step's items, per key;
- `join_as_of` (utopia.steps.joins): lookups from another step answered as of their place in the input;
- `per_shard`, `per_shard_join_as_of` (utopia.steps.broadcast): one state per shard of customers, with
  the records all of them need broadcast to every shard;
- `in_order` (utopia.steps.ordering): another step's items merged with the step's own records in input order;
- `everywhere`, `shortcut` (utopia.steps.learning): facts every worker learns, and records that skip a step with them;
- `read`, `write` (utopia.steps.ends).
"""

from utopia.steps.broadcast import per_shard, per_shard_join_as_of
from utopia.steps.ends import FlowIO, read, write
from utopia.steps.engine import KeyFields
from utopia.steps.items import Item, Lookup, Out, Placed, Sent, Sequenced
from utopia.steps.joins import join_as_of
from utopia.steps.keyed import items_per_key, keyed_state, rekey
from utopia.steps.learning import everywhere, shortcut
from utopia.steps.ordering import in_order
from utopia.steps.shards import recovery_requested

__all__ = [
    "FlowIO",
    "Item",
    "KeyFields",
    "Lookup",
    "Out",
    "Placed",
    "Sent",
    "Sequenced",
    "everywhere",
    "in_order",
    "items_per_key",
    "join_as_of",
    "keyed_state",
    "per_shard",
    "per_shard_join_as_of",
    "read",
    "recovery_requested",
    "rekey",
    "shortcut",
    "write",
]
