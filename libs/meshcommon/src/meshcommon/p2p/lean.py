"""Import py-libp2p 0.8.1 without the parts a TCP + noise + yamux + GossipSub host never runs.

Replaces: ``libp2p/__init__.py`` importing every transport, security protocol, discovery
mechanism and DHT of the library, ~1.5 s of CPU and ~26 MiB per process here (measured with
``python -X importtime``), though a mesh peer runs a fraction of them. Upstream fix: lazy
imports in ``libp2p/__init__.py`` (PEP 562 ``__getattr__``) and in ``libp2p.abc``.

Why
---
``import libp2p`` (any ``libp2p.x`` import runs ``libp2p/__init__.py`` first) eagerly
imports QUIC (aioquic, pylsqpack, service_identity, pyOpenSSL), TLS + AutoTLS (x509,
requests, urllib3), WebSocket (trio_websocket, wsproto), relay/DCUtR, Kademlia DHT,
IPNS records, bitswap, mDNS (zeroconf), UPnP (miniupnpc), persistent peerstores
(sqlite3/leveldb/rocksdb back ends), secio (fastecdsa) ... about 300 libp2p modules and
~40 third-party packages. Our host uses TCP, noise, yamux, identify(+push), ping and
GossipSub, nothing else.

How
---
``install()`` puts a finder at the front of ``sys.meta_path`` **before libp2p is first
imported**. For the module names listed in ``DENY`` it returns a *stand-in module*
instead of executing the real file:

* every attribute of a stand-in is a placeholder class (created on first access and
  cached) so that ``from libp2p.transport.quic.stream import QUICStream`` and type
  annotations, ``isinstance(x, QUICStream)`` (always False: no instance can exist),
  ``except (YamuxError, QUICStreamClosedError)`` (never matches) and subclassing keep
  working at import time;
* *using* one -- calling it, instantiating it, reading a real attribute -- raises
  ``LeanImportError`` naming the feature and how to turn it back on, so a missing
  feature is a clear error, never a silent no-op;
* stand-ins are packages (they have ``__path__ = []``), and the finder also answers
  for every submodule below a denied prefix.

Names in ``HOLLOW`` are packages whose ``__init__`` only re-exports heavy siblings
(e.g. ``libp2p.relay.circuit_v2/__init__`` imports DCUtR, the relay transport, the
DHT ...). They are created *without running* ``__init__`` but with their real
``__path__``, so a light submodule such as ``libp2p.relay.circuit_v2.nat`` (imported by
``basic_host`` for ``is_private_ip``) still loads from its real file.

Nothing in site-packages is edited; removing the ``install()`` call restores the stock
behaviour. ``uninstall()`` removes the finder (stand-ins already imported stay).

Contract for the caller
-----------------------
``new_host()`` must be given ``sec_opt`` (noise only) and ``muxer_opt`` (yamux only):
the library's defaults construct TLS and secio transports, which are stand-ins here and
would raise ``LeanImportError`` (deliberately: loud, at start-up). ``lean_host_options``
builds both. Do not pass ``enable_quic/enable_mDNS/enable_upnp/bootstrap/
enable_autotls`` or a ``/ws``/``/quic`` listen address.

DNS: ``Swarm.__init__`` builds a multiaddr ``DNSResolver`` (dnspython: ~35 ms, ~2.5 MiB of
Python heap) that only ``/dns*`` multiaddrs use. With ``lazy_dns=True`` (default)
``multiaddr.resolvers.dns`` is a small stand-in whose ``DNSResolver`` imports the real
module and creates the real resolver on first use, so /dns4 dials still work.

Remote key types: ``LAZY_KEYS`` (default True) keeps ``libp2p.crypto.rsa``,
``secp256k1`` and ``ecc`` importable *on first use* (a peer presenting an RSA or
secp256k1 identity, e.g. an old go-ipfs node), at a one-off ~50 ms import cost then;
ed25519 peers never load them.
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.machinery
import importlib.util
import sys
import threading
import types
from collections.abc import Sequence
from typing import Any

from meshcommon.p2p.pin import PINNED_LIBP2P_VERSION, installed_libp2p_version

__all__ = [
    "DENY",
    "HOLLOW",
    "LeanImportError",
    "install",
    "installed",
    "lean_host_options",
    "uninstall",
]

# prefix -> (feature, what to do instead).  Every submodule below a prefix is denied too.
DENY: dict[str, str] = {
    # transports other than TCP
    "libp2p.transport.quic": "QUIC transport (aioquic)",
    "libp2p.transport.websocket": "WebSocket transport (trio_websocket)",
    "libp2p.transport.webtransport": "WebTransport (aioquic)",
    "libp2p.transport.webrtc": "WebRTC transport",
    # security transports other than noise
    "libp2p.security.tls": "TLS security transport / AutoTLS (cryptography.x509, requests)",
    "libp2p.security.secio": "secio security transport (fastecdsa)",
    "libp2p.security.pnet": "private networks / PSK (new_host(psk=...); pycryptodome)",
    # host extras that new_host() only builds when asked
    "libp2p.discovery.mdns": "mDNS discovery (zeroconf)",
    "libp2p.discovery.upnp": "UPnP (miniupnpc)",
    "libp2p.discovery.bootstrap": "bootstrap discovery (new_host(bootstrap=...))",
    "libp2p.discovery.random_walk": "random-walk discovery",
    "libp2p.discovery.rendezvous": "rendezvous discovery",
    "libp2p.relay.circuit_v2.transport": "circuit relay v2 transport",
    "libp2p.relay.circuit_v2.dcutr": "DCUtR hole punching",
    "libp2p.relay.circuit_v2.discovery": "relay discovery",
    "libp2p.relay.circuit_v2.protocol": "circuit relay v2 protocol",
    "libp2p.relay.circuit_v2.resources": "circuit relay v2 resources",
    "libp2p.relay.circuit_v2.performance_tracker": "circuit relay v2",
    "libp2p.relay.circuit_v2.relay_selector": "circuit relay v2",
    "libp2p.relay.circuit_v2.reservation_store": "circuit relay v2",
    # Kademlia: the mesh's DHT (meshcommon.p2p.dht) uses only libp2p.kad_dht.pb (the wire
    # messages); py-libp2p's KadDHT and its stores stay out (see meshcommon.p2p.dht).
    "libp2p.kad_dht.kad_dht": "py-libp2p's KadDHT (the mesh runs meshcommon.p2p.dht)",
    "libp2p.kad_dht.peer_routing": "py-libp2p's KadDHT peer routing",
    "libp2p.kad_dht.provider_store": "py-libp2p's KadDHT provider store",
    "libp2p.kad_dht.value_store": "py-libp2p's KadDHT value store",
    "libp2p.kad_dht.routing_table": "py-libp2p's KadDHT routing table",
    "libp2p.kad_dht.diagnostics": "py-libp2p's KadDHT diagnostics",
    "libp2p.records": "IPNS/DHT records (cbor2)",
    "libp2p.bitswap": "bitswap",
    "libp2p.peer.persistent": "persistent peerstores (sqlite/leveldb/rocksdb)",
}

# Packages whose __init__ is skipped (real __path__ kept, so light submodules still load).
HOLLOW: tuple[str, ...] = (
    "libp2p.kad_dht",  # __init__ imports KadDHT; its pb submodule is what the mesh uses
    "libp2p.relay",
    "libp2p.relay.circuit_v2",
)

# Optional remote-key support, imported on first use instead of at start-up.
LAZY_MODULES: tuple[str, ...] = (
    "libp2p.crypto.rsa",  # pycryptodome + cryptography serialization
    "libp2p.crypto.secp256k1",  # coincurve
    "libp2p.crypto.ecc",  # fastecdsa
)


# The stand-in lists follow py-libp2p 0.8.1's module layout (which module imports which).
# On another version install() does nothing unless force=True (meshcommon.p2p.pin stops the
# process first, unless MESH_LIBP2P_UNPINNED=1): re-check with `python -X importtime` and
# the functional test before widening this.
TESTED_LIBP2P_VERSIONS: tuple[str, ...] = (PINNED_LIBP2P_VERSION,)


class LeanImportError(ImportError):
    """A libp2p feature that this module left out was used."""


def _denied_prefix(fullname: str) -> str | None:
    for prefix in DENY:
        if fullname == prefix or fullname.startswith(prefix + "."):
            return prefix
    return None


def _fail(module: str, name: str) -> LeanImportError:
    prefix = _denied_prefix(module) or module
    feature = DENY.get(prefix, prefix)
    return LeanImportError(
        f"{module}.{name}: {feature} is not loaded in this process (meshcommon.p2p.lean stand-in). "
        f"Remove {prefix!r} from lean.DENY, or do not call lean.install(), "
        "to use it."
    )


class _PlaceholderMeta(type):
    """Metaclass of placeholder classes: usable in annotations, isinstance, except and as
    a base class at import time; any real use raises LeanImportError."""

    _lean_module: str
    _lean_name: str

    def __call__(cls, *args: Any, **kwargs: Any) -> Any:
        if "_lean_placeholder" in cls.__dict__:
            raise _fail(cls._lean_module, cls._lean_name)
        return super().__call__(*args, **kwargs)  # a real subclass of a placeholder

    def __getattr__(cls, name: str) -> Any:
        # Class attributes used at import time (enum members, nested classes, constants
        # in default arguments) become placeholders too; dunders behave normally.
        if name.startswith("__") and name.endswith("__"):
            raise AttributeError(name)
        return _placeholder(cls._lean_module, f"{cls._lean_name}.{name}")

    def __instancecheck__(cls, obj: Any) -> bool:
        if "_lean_placeholder" in cls.__dict__:
            return False
        return super().__instancecheck__(obj)

    def __or__(cls, other: Any) -> Any:  # "QUICConfig | None" in evaluated annotations
        return Any

    __ror__ = __or__

    def __getitem__(cls, item: Any) -> Any:  # Generic-style subscripts
        return cls

    def __repr__(cls) -> str:
        return f"<meshcommon.p2p.lean placeholder {cls._lean_module}.{cls._lean_name}>"


def _placeholder(module: str, name: str) -> type:
    # Exception subclass: a placeholder may sit in an ``except (...)`` tuple, where a
    # non-exception class would raise TypeError the first time that clause is checked.
    return _PlaceholderMeta(
        name.rsplit(".", 1)[-1],
        (Exception,),
        {
            "_lean_placeholder": True,
            "_lean_module": module,
            "_lean_name": name,
            "__module__": module,
        },
    )


class _StandInModule(types.ModuleType):
    __lean_stub__ = True

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__") and name.endswith("__"):
            raise AttributeError(name)
        ph = _placeholder(self.__name__, name)
        setattr(self, name, ph)  # same object on every access
        return ph


class _LazyModule(types.ModuleType):
    """Imports the real module on first attribute access that needs a *value*.

    ``from libp2p.crypto.rsa import RSAPublicKey`` (module level, in serialization.py)
    gets a lazy class; ``RSAPublicKey.from_bytes`` (also module level) gets a deferred
    function. Only calling one (a peer with an RSA key) imports the real module."""

    __lean_lazy__ = True

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__") and name.endswith("__"):
            raise AttributeError(name)
        proxy = _lazy_class(self.__name__, name)
        setattr(self, name, proxy)
        return proxy


def _load_real(modname: str) -> types.ModuleType:
    with _finder.lock:
        mod = sys.modules.get(modname)
        if mod is not None and not getattr(mod, "__lean_lazy__", False):
            return mod
        if modname == LAZY_DNS_MODULE:
            _dnspython_without_quic()
        _finder.bypass.add(modname)
        try:
            sys.modules.pop(modname, None)
            real = importlib.import_module(modname)
        finally:
            _finder.bypass.discard(modname)
        parent, _, child = modname.rpartition(".")
        if parent in sys.modules:
            setattr(sys.modules[parent], child, real)
        return real


class _LazyMeta(type):
    _lean_module: str
    _lean_name: str

    def _real(cls) -> Any:
        return getattr(_load_real(cls._lean_module), cls._lean_name)

    def __call__(cls, *args: Any, **kwargs: Any) -> Any:
        return cls._real()(*args, **kwargs)

    def __getattr__(cls, name: str) -> Any:
        if name.startswith("__") and name.endswith("__"):
            raise AttributeError(name)
        mod = sys.modules.get(cls._lean_module)
        if mod is not None and not getattr(mod, "__lean_lazy__", False):
            return getattr(cls._real(), name)

        def deferred(*args: Any, **kwargs: Any) -> Any:
            return getattr(cls._real(), name)(*args, **kwargs)

        deferred.__name__ = deferred.__qualname__ = f"{cls._lean_name}.{name}"
        return deferred

    def __instancecheck__(cls, obj: Any) -> bool:
        mod = sys.modules.get(cls._lean_module)
        if mod is None or getattr(mod, "__lean_lazy__", False):
            return False  # the real class was never imported: no instance exists
        return isinstance(obj, cls._real())

    def __subclasscheck__(cls, sub: Any) -> bool:
        mod = sys.modules.get(cls._lean_module)
        if mod is None or getattr(mod, "__lean_lazy__", False):
            return False
        return issubclass(sub, cls._real())


def _lazy_class(module: str, name: str) -> type:
    return _LazyMeta(name, (), {"_lean_module": module, "_lean_name": name, "__module__": module})


LAZY_DNS_MODULE = "multiaddr.resolvers.dns"


def _make_lazy_dns_module(module: types.ModuleType) -> None:
    """Fill the ``multiaddr.resolvers.dns`` stand-in (see module docstring)."""

    class DNSResolver:
        """Stand-in for multiaddr's DNSResolver: the real one (and dnspython) is imported
        and built on first use."""

        MAX_RECURSIVE_DEPTH = 32
        DEFAULT_TIMEOUT = 5.0

        def __init__(self) -> None:
            self._lean_real: Any = None

        def _lean_get(self) -> Any:
            if self._lean_real is None:
                self._lean_real = _load_real(LAZY_DNS_MODULE).DNSResolver()
            return self._lean_real

        async def resolve(self, maddr: Any, options: dict[str, Any] | None = None) -> Any:
            return await self._lean_get().resolve(maddr, options)

        def __getattr__(self, name: str) -> Any:
            if name.startswith("_lean"):
                raise AttributeError(name)
            return getattr(self._lean_get(), name)

    def __getattr__(name: str) -> Any:  # any other name: the real module
        if name.startswith("__") and name.endswith("__"):
            raise AttributeError(name)
        return getattr(_load_real(LAZY_DNS_MODULE), name)

    module.DNSResolver = DNSResolver  # type: ignore[attr-defined]
    module.DNSADDR_TXT_PREFIX = "dnsaddr="  # type: ignore[attr-defined]
    module.__getattr__ = __getattr__  # type: ignore[method-assign]
    module.__lean_lazy__ = True  # type: ignore[attr-defined]


class _Loader(importlib.abc.Loader):
    def __init__(self, kind: str) -> None:
        self.kind = kind

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> types.ModuleType:
        if self.kind == "lazydns":
            return types.ModuleType(spec.name)
        if self.kind == "deny":
            mod: types.ModuleType = _StandInModule(spec.name)
            mod.__path__ = []  # a package: submodules resolve through the finder
        elif self.kind == "lazy":
            mod = _LazyModule(spec.name)
        else:  # hollow: a real package directory, __init__ not executed
            mod = types.ModuleType(spec.name)
            mod.__path__ = list(spec.submodule_search_locations or [])
        return mod

    def exec_module(self, module: types.ModuleType) -> None:
        module.__doc__ = f"meshcommon.p2p.lean {self.kind} stand-in for {module.__name__}"
        if self.kind == "lazydns":
            _make_lazy_dns_module(module)


class _LeanFinder(importlib.abc.MetaPathFinder):
    def __init__(self) -> None:
        self.lock = threading.RLock()
        self.bypass: set[str] = set()
        self.lazy_keys = True
        self.lazy_dns = True
        self.stood_in: list[str] = []

    def find_spec(
        self, fullname: str, path: Sequence[str] | None, target: types.ModuleType | None = None
    ) -> importlib.machinery.ModuleSpec | None:
        if fullname in self.bypass:
            return None
        if fullname == LAZY_DNS_MODULE and self.lazy_dns:
            self.stood_in.append(fullname)
            return importlib.machinery.ModuleSpec(fullname, _Loader("lazydns"))
        if not fullname.startswith("libp2p."):
            return None
        if _denied_prefix(fullname) is not None:
            self.stood_in.append(fullname)
            return importlib.machinery.ModuleSpec(fullname, _Loader("deny"), is_package=True)
        if self.lazy_keys and fullname in LAZY_MODULES:
            self.stood_in.append(fullname)
            return importlib.machinery.ModuleSpec(fullname, _Loader("lazy"))
        if fullname in HOLLOW:
            real = importlib.machinery.PathFinder.find_spec(fullname, path)
            if real is None:
                return None
            self.stood_in.append(fullname)
            spec = importlib.machinery.ModuleSpec(
                fullname, _Loader("hollow"), origin=real.origin, is_package=True
            )
            spec.submodule_search_locations = real.submodule_search_locations
            return spec
        return None


_finder = _LeanFinder()


def installed() -> bool:
    return _finder in sys.meta_path


def install(*, lazy_keys: bool = True, lazy_dns: bool = True, force: bool = False) -> bool:
    """Install the finder. Must run before the first ``import libp2p`` (checked).

    Returns True if installed; False without libp2p or on another libp2p version."""
    if installed():
        return True
    if not force:
        found = installed_libp2p_version()
        if found is None or found not in TESTED_LIBP2P_VERSIONS:
            # Absent: nothing to shape. Another version: pin.check_libp2p_version has
            # stopped the process already, or MESH_LIBP2P_UNPINNED=1 asked to go on with
            # the full library (the stand-ins follow 0.8.1's layout).
            return False
    loaded = [m for m in sys.modules if m == "libp2p" or m.startswith("libp2p.")]
    if loaded:  # too late to save anything; never half-install
        import warnings

        warnings.warn(
            "lean.install() after libp2p was imported ("
            + ", ".join(sorted(loaded)[:3])
            + "): nothing to do",
            stacklevel=2,
        )
        return False
    if lazy_dns and LAZY_DNS_MODULE in sys.modules:
        lazy_dns = False  # someone already imported it for real: nothing to save
    _finder.lazy_keys, _finder.lazy_dns = lazy_keys, lazy_dns
    sys.meta_path.insert(0, _finder)
    if not lazy_dns:
        _dnspython_without_quic()
    return True


def _dnspython_without_quic() -> None:
    """dnspython (multiaddr's DNS resolver) imports DNS-over-QUIC support -- aioquic,
    pyOpenSSL, x509 -- whenever aioquic is installed. Nothing here resolves over QUIC;
    ``dns._features.force`` is dnspython's documented switch for optional features."""
    import dns._features

    dns._features.force("doq", False)


def uninstall() -> None:
    if installed():
        sys.meta_path.remove(_finder)


def stood_in() -> list[str]:
    """Module names this process got as stand-ins (for logs and tests)."""
    return list(_finder.stood_in)


def lean_host_options(key_pair: Any) -> dict[str, Any]:
    """``new_host`` keyword arguments for noise security and yamux (preferred) or mplex
    muxing: what go-, js- and rust-libp2p peers speak. No TLS, secio or plaintext.

    Works with or without ``install()``; with it, these are required."""
    from libp2p.crypto.x25519 import create_new_key_pair as x25519_key_pair
    from libp2p.custom_types import TProtocol
    from libp2p.security.noise.transport import PROTOCOL_ID as NOISE_ID
    from libp2p.security.noise.transport import Transport as NoiseTransport
    from libp2p.stream_muxer.mplex.mplex import MPLEX_PROTOCOL_ID, Mplex
    from libp2p.stream_muxer.yamux.yamux import PROTOCOL_ID as YAMUX_ID
    from libp2p.stream_muxer.yamux.yamux import Yamux

    noise = NoiseTransport(key_pair, noise_privkey=x25519_key_pair().private_key)
    return {
        "sec_opt": {TProtocol(NOISE_ID): noise},
        "muxer_opt": {TProtocol(YAMUX_ID): Yamux, TProtocol(MPLEX_PROTOCOL_ID): Mplex},
    }
