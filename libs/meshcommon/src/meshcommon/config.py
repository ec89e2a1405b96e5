"""Settings every service shares, as pydantic-settings base classes.

Each service declares one ``Settings`` class that inherits from these and sets its own
``env_prefix`` (``AGENT_``, ``WHOOSH_``, ``MONITOR_``), so a field means the same thing and
has the same type in every service that has it.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import BeforeValidator, Field, model_validator
from pydantic_settings import BaseSettings, NoDecode

from meshcommon.kademlia import DHT_PROTOCOL_ID
from meshcommon.limits import MAX_MESSAGE_BYTES
from meshcommon.swarm_key import SwarmKey, SwarmKeyError, read_swarm_key


def split_comma_list(value: object) -> object:
    """``"a, b,,c"`` -> ``["a", "b", "c"]``; lists pass through."""
    if isinstance(value, str):
        return [item.strip() for item in value.replace("\n", ",").split(",") if item.strip()]
    return value


# A list read from one environment variable as comma-separated values (not JSON).
CommaList = Annotated[list[str], NoDecode, BeforeValidator(split_comma_list)]


class ServiceSettings(BaseSettings):
    """The HTTP side of every service."""

    host: str = Field(default="0.0.0.0", description="HTTP listen address")
    port: int = Field(default=8080, description="HTTP port")
    log_level: str = Field(default="INFO", description="DEBUG, INFO, WARNING, ERROR")


class PeerSettings(ServiceSettings):
    """What a libp2p peer of the mesh (the agent, the monitor) needs: where it listens,
    which addresses it advertises and dials, and where it finds the other peers."""

    # libp2p
    p2p_host: str = Field(default="0.0.0.0", description="libp2p TCP listen address")
    p2p_port: int = Field(default=9000, description="libp2p TCP port")
    identity_path: str = Field(
        default="",
        description="Ed25519 seed file: a stable peer ID across restarts; empty = new ID per start",
    )
    identity_secret_file: str = Field(
        default="",
        description="Secret (at least 32 bytes) the identity is derived from with the scope: "
        "the same peer ID on any host, no storage (e.g. a Swarm secret in /run/secrets/)",
    )
    identity_scope: str = Field(
        default="",
        description="With the secret file: what this identity belongs to, e.g. "
        "{{.Service.Name}}/{{.Task.Slot}} on Swarm (one peer ID per task slot)",
    )
    p2p_overrides: str = Field(
        default="all",
        description="meshcommon's replacements of slow py-libp2p code paths: all, none, a "
        "list (tcp,yamux,...) or all,-name; to measure one or rule it out (see README)",
    )
    pnet_key_file: str = Field(
        default="",
        description="libp2p private network: swarm.key file (kubo/go/js format; `python -m "
        "meshcommon.swarm_key` makes one); only peers with the key connect. Empty = open mesh",
    )
    pnet_accept_key_files: CommaList = Field(
        default_factory=list,
        description="During a key rotation: more swarm.key files accepted inbound (dials use "
        "the key file above), comma-separated",
    )
    gossip_degree: int = Field(
        default=6,
        ge=1,
        le=32,
        description="GossipSub mesh degree D (each message goes to about D peers; the mesh "
        "keeps between 2D/3 and 2D): fewer means fewer frames per hop, more means more paths",
    )
    idontwant_min_bytes: int = Field(
        default=512,
        ge=0,
        description="GossipSub v1.2: announce a received message of at least this many bytes "
        "with IDONTWANT to the mesh peers (js-libp2p 512, go-libp2p 1024)",
    )
    max_message_bytes: int = Field(
        default=MAX_MESSAGE_BYTES,
        description="Larger gossip payloads are rejected (counted, logged)",
    )
    validate_gossip: bool = Field(
        default=True,
        description="Validate gossip before forwarding it (size, JSON, the schema of known "
        "types, node_id = signer) and graylist peers that keep sending invalid messages "
        "(GossipSub v1.1 scoring); off only to measure its cost",
    )

    # Kademlia DHT: peers find each other without WHOOSH (meshcommon.p2p.dht)
    dht: bool = Field(
        default=True,
        description="Kademlia peer discovery: random walks from whoever this peer is "
        "connected to find the others (no WHOOSH needed); false = off",
    )
    dht_server: bool = Field(
        default=True,
        description="Answer other peers' DHT queries (server mode); false = only ask",
    )
    dht_protocol: str = Field(
        default=DHT_PROTOCOL_ID,
        description="The DHT's libp2p protocol ID: the mesh's own, so it never merges with "
        "the public IPFS DHT (/ipfs/kad/1.0.0); every peer of a mesh must use the same",
    )
    dht_refresh_s: float = Field(
        default=600.0,
        gt=0,
        description="The longest pause between two random walks: a walk that found a new "
        "peer is followed by another 2 s later, one that found nothing new by a pause twice "
        "the last, up to this",
    )
    dht_request_timeout_s: float = Field(
        default=5.0, gt=0, description="One DHT query: open the stream, ask, read the answer"
    )

    # Multiaddr policy: what is advertised and what is dialled
    overlay_cidrs: CommaList = Field(
        default_factory=list, description="Preferred networks, comma-separated CIDRs"
    )
    overlay_interface: str = Field(default="", description="Interface whose networks are preferred")
    overlay_only: bool = Field(
        default=True,
        description="With overlay networks configured, advertise and dial only addresses in "
        "them (e.g. not the node-local docker_gwbridge address other nodes cannot reach)",
    )
    allow_loopback: bool = Field(default=False, description="Advertise/dial 127.x (local runs)")
    announce_addrs: CommaList = Field(
        default_factory=list, description="Advertise these multiaddrs instead of interface ones"
    )

    # Bootstrap: WHOOSH's list (retried, cached on disk) plus static multiaddrs
    whoosh_url: str = Field(
        default="",
        description="WHOOSH base URL, e.g. http://whoosh:8080; empty = static peers only",
    )
    bootstrap_peers: CommaList = Field(
        default_factory=list, description="Static multiaddrs ending in /p2p/<peer_id>"
    )
    bootstrap_refresh_s: float = Field(
        default=10.0,
        gt=0,
        description="How often the bootstrap list is fetched and missing peers are dialled",
    )
    bootstrap_cache_path: str = Field(
        default="",
        description="Last good bootstrap list, used while WHOOSH is unreachable; empty = no cache",
    )
    bootstrap_attempts: int = Field(default=5, ge=1, description="Tries per WHOOSH fetch")
    bootstrap_backoff_initial_s: float = Field(default=0.2, description="First retry delay")
    bootstrap_backoff_max_s: float = Field(default=2.0, description="Longest retry delay")
    bootstrap_timeout_s: float = Field(default=3.0, description="HTTP timeout per WHOOSH try")

    # Dialling peers: in the background, bounded, each failing peer backing off alone
    dial_concurrency: int = Field(default=8, ge=1, description="Dials in flight at once")
    dial_backoff_initial_s: float = Field(
        default=2.0, gt=0, description="Per-peer backoff after a failed dial"
    )
    dial_backoff_max_s: float = Field(
        default=60.0, gt=0, description="Longest per-peer dial backoff"
    )

    @property
    def bootstrap_fetch_budget_s(self) -> float:
        """The longest one fetch of the bootstrap list can take beyond its wait for news:
        every attempt timing out, with the longest backoff between attempts."""
        attempts = self.bootstrap_attempts
        return attempts * self.bootstrap_timeout_s + (attempts - 1) * self.bootstrap_backoff_max_s

    def pnet_keys(self) -> tuple[SwarmKey, ...]:
        """The private network's keys, the one dials use first; () for an open mesh.
        ``SwarmKeyError`` (one line naming the file and the format) when a file is
        missing or malformed: the service must not start then."""
        prefix = str(self.model_config.get("env_prefix", ""))
        if not self.pnet_key_file:
            if self.pnet_accept_key_files:
                raise SwarmKeyError(
                    f"{prefix}PNET_ACCEPT_KEY_FILES is set but {prefix}PNET_KEY_FILE is not "
                    "(the extra keys of a rotation need the key dials use)"
                )
            return ()
        files = [self.pnet_key_file, *self.pnet_accept_key_files]
        return tuple(read_swarm_key(f) for f in files)

    @model_validator(mode="after")
    def _one_identity_source(self) -> PeerSettings:
        """A seed file and a derived identity exclude each other; a derivation needs both
        halves, and a scope still holding a template was never expanded (Swarm expands
        templates only in a service's spec, not in compose or a shell)."""
        prefix = str(self.model_config.get("env_prefix", ""))
        secret, scope = f"{prefix}IDENTITY_SECRET_FILE", f"{prefix}IDENTITY_SCOPE"
        template = "{{.Service.Name}}/{{.Task.Slot}}"
        if self.identity_secret_file and self.identity_path:
            raise ValueError(f"set {prefix}IDENTITY_PATH or {secret}, not both")
        if self.identity_secret_file and not self.identity_scope.strip():
            raise ValueError(f"{secret} needs {scope} (on Swarm: {template})")
        if self.identity_scope and not self.identity_secret_file:
            raise ValueError(f"{scope} is set but {secret} is not")
        if "{{" in self.identity_scope:
            raise ValueError(
                f"{scope}={self.identity_scope!r} holds a template nobody expanded: Swarm "
                f"expands {template} in a service's environment, compose and shells do not"
            )
        return self
