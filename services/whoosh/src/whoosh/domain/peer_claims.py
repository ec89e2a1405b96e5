"""Whether a health answer proves its peer ID: the agent's signed peer record. Pure.

Anyone can copy a peer ID into ``/api/health``; only the key holder can sign a record of it
(``meshcommon.peer_record``). WHOOSH lists, for a peer ID, only the addresses a valid record
of that peer ID signed. A claim is refused, with its reason, when:

- the record is invalid (``garbled``, ``bad_signature``, ``wrong_peer_id``,
  ``unsupported_key_type``, ``wrong_payload_type``, ``too_large``, ``from_the_future``);
- the record is valid but names none of the addresses WHOOSH reached that host at, and
  another host proves the same peer ID with a record that names its own address
  (``replayed``: a copy of the real agent's answer served by another host;
  ``agent_status.shadow_unproven`` decides it once a round has every answer). Alone, such
  an answer is listed with the addresses its record signs (``elsewhere``): they are the key
  holder's, never the answering host's, and an agent that announces other addresses than
  the one it is reached at (AGENT_ANNOUNCE_ADDRS, an address off the agents' network) is
  still seen, and named by the finding that fits;
- there is no record (``missing``), unless ``WHOOSH_UNSIGNED_HEALTH=accept`` (a mixed fleet
  during an upgrade): then the answer is listed as ``signed: false``, and only while no
  host proves the same peer ID with a record (``shadow_unproven``).

Nothing else of a refused answer is trusted: its status keeps the claimed peer ID only.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final, Literal

from multiaddr import Multiaddr

from meshcommon.models import AgentHealth
from meshcommon.peer_record import REASONS, RecordRejected, SignedPeerRecord

UnsignedPolicy = Literal["reject", "accept"]

REASON_MISSING: Final = "missing"
REASON_REPLAYED: Final = "replayed"
# Every reason a claim is refused for (the metric's label values).
CLAIM_REASONS: Final = (REASON_MISSING, *REASONS, REASON_REPLAYED)
# An AgentStatus.reason of a refused claim: "record_<reason>".
STATUS_PREFIX: Final = "record_"


@dataclass(frozen=True)
class RecordCheck:
    """What an answer's record proves. ``signed``: a valid record of the claimed peer ID
    that names the address WHOOSH reached; then ``addresses`` are what it signed."""

    signed: bool
    reason: str | None = None  # one of CLAIM_REASONS when not signed
    detail: str = ""
    seq: int | None = None
    addresses: tuple[str, ...] = ()  # transport multiaddrs, as signed
    # Signed, but naming none of the address this host was reached at: the key holder's
    # addresses, served by this host (a replay, unless no host proves the peer ID better).
    elsewhere: bool = False

    @property
    def proven(self) -> bool:
        """A valid record that names the host it came from: this host holds the key."""
        return self.signed and not self.elsewhere

    @property
    def status_reason(self) -> str | None:
        return STATUS_PREFIX + self.reason if self.reason else None


def check_claim(
    health: AgentHealth,
    opened: SignedPeerRecord | RecordRejected | None,
    reached_ip: str | None,
) -> RecordCheck:
    """``opened``: the verifier's answer for ``health.peer_record`` (None: no record);
    ``reached_ip``: the address WHOOSH's connection reached (None: unknown)."""
    if opened is None:
        return RecordCheck(False, REASON_MISSING, "the health answer carries no peer_record")
    if isinstance(opened, RecordRejected):
        return RecordCheck(False, opened.reason, opened.detail)
    if reached_ip is None or not _names_ip(opened.addresses, reached_ip):
        signed = ", ".join(opened.addresses[:4]) or "none"
        return RecordCheck(
            True,
            detail=f"a valid record of {opened.peer_id} (seq {opened.seq}) that names none "
            f"of the address this host was reached at ({reached_ip or 'unknown'}); it "
            f"signs: {signed}",
            seq=opened.seq,
            addresses=opened.addresses,
            elsewhere=True,
        )
    return RecordCheck(True, seq=opened.seq, addresses=opened.addresses)


def _names_ip(addresses: Sequence[str], ip_text: str) -> bool:
    try:
        ip = ipaddress.ip_address(ip_text.split("%", 1)[0])
    except ValueError:
        return False
    for addr in addresses:
        try:
            ma = Multiaddr(addr)
            proto = "ip6" if ip.version == 6 else "ip4"
            if ipaddress.ip_address(ma.value_for_protocol(proto)) == ip:
                return True
        except Exception:  # no such part in this address
            continue
    return False


def unsigned_ok() -> RecordCheck:
    """An answer without a record, listed because ``WHOOSH_UNSIGNED_HEALTH=accept``."""
    return RecordCheck(False, None, "no peer_record; listed as WHOOSH_UNSIGNED_HEALTH=accept")


def refused_health(health: AgentHealth) -> AgentHealth:
    """What is kept of an answer whose claim is refused: the claimed peer ID, to name it."""
    return AgentHealth(peer_id=health.peer_id)


def accepted_unsigned(check: RecordCheck, policy: UnsignedPolicy) -> bool:
    return check.reason == REASON_MISSING and policy == "accept"
