import msgspec
import pytest


def plain(value):
    """An output value as plain JSON data, for comparing with expectations and references."""
    return msgspec.json.decode(msgspec.json.encode(value))


@pytest.fixture(params=[1, 3], ids=["1-worker", "3-workers"])
def workers(request):
    return request.param
