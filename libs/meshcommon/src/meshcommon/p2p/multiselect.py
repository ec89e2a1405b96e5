"""multistream-select with the handshake and the first protocol in one write.

Replaces ``MultiselectClient.select_one_of`` (py-libp2p 0.8.1): upstream writes the
handshake, waits for the answer, then writes the protocol and waits again, so every new
stream (ping, identify, pubsub) costs two round trips through the whole stack; an idle
libp2p ping took 4-28 ms, most of it opening its stream. multistream-select 1.0 allows
sending both at once, as go-libp2p's ``SelectProtoOrFail`` and js-libp2p do. Answers are
checked exactly as upstream; anything unexpected (a peer restarting the handshake, a
non-standard communicator) goes back to the upstream code path.

Installed on the host by the ``mss`` override (``overrides``). Upstream fix: the same
pipelining in ``select_one_of``.
"""

from __future__ import annotations

from typing import Any

import trio
from libp2p.custom_types import TProtocol
from libp2p.io.exceptions import IOException
from libp2p.protocol_muxer.exceptions import (
    MultiselectClientError,
    MultiselectCommunicatorError,
    ProtocolNotSupportedError,
)
from libp2p.protocol_muxer.multiselect_client import (
    MULTISELECT_PROTOCOL_ID,
    PROTOCOL_NOT_FOUND_MSG,
    MultiselectClient,
    is_valid_handshake,
)
from libp2p.protocol_muxer.multiselect_communicator import MultiselectCommunicator
from libp2p.utils.varint import encode_delim


class PipelinedMultiselectClient(MultiselectClient):
    """``MultiselectClient.select_one_of`` with the handshake and the first proposed
    protocol sent together (multistream-select 1.0 allows it; go-libp2p's
    ``SelectProtoOrFail`` and js-libp2p do the same). Upstream writes the handshake,
    waits for the answer, then writes the protocol and waits again: two round trips
    through the whole stack for every new stream (ping, identify, pubsub...). Answers are
    checked exactly as upstream; anything unexpected (a peer restarting the handshake,
    a non-standard communicator) falls back to the upstream code path.
    Installed on the host by the ``mss`` override (``overrides``)."""

    async def select_one_of(
        self, protocols: Any, communicator: Any, negotiate_timeout: int = 5
    ) -> TProtocol:
        if not protocols or not isinstance(communicator, MultiselectCommunicator):
            return await super().select_one_of(protocols, communicator, negotiate_timeout)
        first: TProtocol = protocols[0]
        first_str = str(first) if first is not None else ""
        with trio.move_on_after(negotiate_timeout):
            try:
                await communicator.read_writer.write(
                    encode_delim(MULTISELECT_PROTOCOL_ID.encode())
                    + encode_delim(first_str.encode())
                )
            except (IOException, AssertionError, ValueError) as error:
                raise MultiselectClientError(f"handshake write failed: {error}") from error
            try:
                handshake = await communicator.read()
                if not is_valid_handshake(handshake):
                    raise MultiselectClientError(
                        f"multiselect protocol ID mismatch: expected "
                        f"{MULTISELECT_PROTOCOL_ID}, got {handshake!r}"
                    )
                response = await communicator.read()
            except MultiselectCommunicatorError as error:
                raise MultiselectClientError(f"protocol read failed: {error}") from error
            if response == first_str:
                return first
            errors: list[str] = []
            if response == PROTOCOL_NOT_FOUND_MSG:
                errors.append(f"protocol not supported: {first}, response={response!r}")
            elif response == MULTISELECT_PROTOCOL_ID:
                # The peer restarted the handshake: upstream's retry logic handles it.
                await self.handshake(communicator)
                try:
                    return await self.try_select(communicator, first)
                except ProtocolNotSupportedError as error:
                    errors.append(str(error))
            else:
                raise MultiselectClientError(
                    f"unrecognized response: {response!r}, expected {first_str!r} or "
                    f"{PROTOCOL_NOT_FOUND_MSG!r}, protocol={first}"
                )
            for protocol in protocols[1:]:
                try:
                    return await self.try_select(communicator, protocol)
                except ProtocolNotSupportedError as error:
                    errors.append(str(error))
            raise MultiselectClientError(
                f"protocols not supported: tried {list(protocols)}: {errors[-1] if errors else ''}"
            )
        raise MultiselectClientError(
            f"response timed out after {negotiate_timeout}s, protocols tried: {list(protocols)}"
        )
