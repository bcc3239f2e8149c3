"""Sample: confirm a ticket while its event has capacity, reject it after.

events + tickets -> ticket desk per event (tickets wait for their event) -> ticket-response (alert, key ticket id)
"""

from bytewax.dataflow import Dataflow

from utopia.io.kafka_io import kafka_entry_point
from utopia.models import Event, Ticket
from utopia.rules.tickets import TicketDesk, desk_tickets
from utopia.steps import FlowIO, keyed_state, read, write
from utopia.steps.keys import BY_EVENT


def build(io: FlowIO) -> Dataflow:
    flow = Dataflow("purchase_event_ticket")
    events_and_tickets = read("events_and_tickets", flow, io, {Event: [], Ticket: ["eventid"]})
    responses = keyed_state(
        "ticket_desk_per_event",
        events_and_tickets,
        BY_EVENT,
        TicketDesk,
        value_of_runs={Ticket: desk_tickets},
        dead_letters=io,
    )
    write("ticket_response", responses, io, "ticket-response")
    return flow


flow = kafka_entry_point(build)
