// A js-libp2p 2.9 peer with @libp2p/kad-dht (server mode, the mesh's protocol ID) for the
// interop tests: given one agent's multiaddr, it finds the others through the DHT alone
// and connects to them.
//
//   node --import ./polyfill.mjs dht.mjs HOST PORT SEED_MULTIADDR EXPECTED_IDS WITHIN_S
//
// PNET_KEY_FILE: a swarm.key (a closed mesh). DHT_PROTOCOL: the DHT's protocol ID
// (default /chorus/kad/1.0.0). Prints {"addr", "peer_id"} once listening, then walks the
// DHT (its own ID, then random keys) and dials every peer the walks name, until it is
// connected to every peer of EXPECTED_IDS (comma-separated: only to know when to stop,
// never dialled by ID) or WITHIN_S seconds passed; then prints one JSON line
// {"found": [...], "connected": [...], "walks": N, "elapsed_ms": T} and exits.
import { createLibp2p } from 'libp2p'
import { tcp } from '@libp2p/tcp'
import { noise } from '@chainsafe/libp2p-noise'
import { yamux } from '@chainsafe/libp2p-yamux'
import { identify } from '@libp2p/identify'
import { ping } from '@libp2p/ping'
import { kadDHT, passthroughMapper } from '@libp2p/kad-dht'
import { multiaddr } from '@multiformats/multiaddr'
import { readFileSync } from 'node:fs'
import { randomBytes } from 'node:crypto'
import { preSharedKey } from '@libp2p/pnet'

const [host, port, seed, expected, withinS] = process.argv.slice(2)
setTimeout(() => { console.log(JSON.stringify({ timeout: true })); process.exit(2) }, 180000)
const pnet = process.env.PNET_KEY_FILE
  ? { connectionProtector: preSharedKey({ psk: readFileSync(process.env.PNET_KEY_FILE) }) }
  : {}
const node = await createLibp2p({
  ...pnet,
  addresses: { listen: [`/ip4/${host}/tcp/${port}`] },
  transports: [tcp()],
  connectionEncrypters: [noise()],
  streamMuxers: [yamux()],
  services: {
    identify: identify(),
    ping: ping(),
    // Loopback addresses are what the test mesh has: keep them (the default mapper of
    // a public DHT drops private addresses).
    dht: kadDHT({
      protocol: process.env.DHT_PROTOCOL ?? '/chorus/kad/1.0.0',
      clientMode: false,
      peerInfoMapper: passthroughMapper
    })
  }
})
console.log(JSON.stringify({ addr: node.getMultiaddrs()[0].toString(), peer_id: node.peerId.toString() }))

const started = Date.now()
const deadline = started + Number(withinS) * 1000
const found = new Map() // peer ID -> multiaddrs, as the DHT's answers named them
let walks = 0
await node.dial(multiaddr(seed), { signal: AbortSignal.timeout(10000) })

async function walk (key) {
  walks++
  try {
    for await (const event of node.services.dht.getClosestPeers(key, { signal: AbortSignal.timeout(10000) })) {
      const peers = event.name === 'PEER_RESPONSE' ? event.closer : event.name === 'FINAL_PEER' ? [event.peer] : []
      for (const p of peers) {
        if (!p.id.equals(node.peerId)) found.set(p.id.toString(), p.multiaddrs)
      }
    }
  } catch (e) { /* a walk that ends early still named peers */ }
}

function connected () {
  return new Set(node.getConnections().map(c => c.remotePeer.toString()))
}

let own = true
while (Date.now() < deadline) {
  await walk(own ? node.peerId.toMultihash().bytes : randomBytes(32))
  own = !own
  const linked = connected()
  for (const [id, addrs] of found) {
    if (linked.has(id) || addrs.length === 0) continue
    try {
      await node.dial(addrs, { signal: AbortSignal.timeout(5000) })
    } catch (e) { /* tried again after the next walk */ }
  }
  const now = connected()
  if (expected.split(',').every(id => now.has(id))) break
  await new Promise(resolve => setTimeout(resolve, 500))
}
console.log(JSON.stringify({
  found: [...found.keys()],
  connected: [...connected()],
  walks,
  elapsed_ms: Date.now() - started
}))
await node.stop()
process.exit(0)
