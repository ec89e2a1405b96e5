// A js-libp2p 2.9 peer (TCP, noise, yamux, GossipSub, identify, ping) for the interop
// tests: an independent libp2p implementation talking to the mesh.
//
//   node --import ./polyfill.mjs peer.mjs HOST PORT
//
// Prints {"addr", "peer_id"} once listening, then takes one command per stdin line and
// answers with one JSON line:
//   go N SIZE RATE   publish N messages of SIZE bytes on the coordination topic, RATE/s
//   stats            {"count", "big", "senders"}: messages received from others (big: > 50 KB)
//                    and the peer IDs they came from
//   peers            {"peers": [...]}: the peer IDs this node has a connection to
//   ping PEER_ID     {"rtts": [...]}: 10 pings over the existing connection
//   dial MULTIADDR   {"dialled": PEER_ID}: connect to a peer (e.g. one agent of the mesh), or
//                    {"error": "..."} when the dial fails (e.g. refused by a private network)
//   say TOPIC TEXT   {"published": true}: publish the rest of the line as it is on TOPIC
//   idontwant        {"protocols": {peer: outbound protocol}, "mesh": [...], "sent",
//                    "received"}: GossipSub v1.2 IDONTWANT message IDs announced to and
//                    received from peers (counted around gossipsub's own handlers)
//   sub TOPIC        {"subscribed": TOPIC}: subscribe to one more topic (e.g. a misspelt one)
//   quit
// It exits by itself after 120 s, so a crashed test never leaves it running.
import { createLibp2p } from 'libp2p'
import { tcp } from '@libp2p/tcp'
import { noise } from '@chainsafe/libp2p-noise'
import { yamux } from '@chainsafe/libp2p-yamux'
import { gossipsub } from '@chainsafe/libp2p-gossipsub'
import { identify } from '@libp2p/identify'
import { ping } from '@libp2p/ping'
import { peerIdFromString } from '@libp2p/peer-id'
import { multiaddr } from '@multiformats/multiaddr'
import readline from 'node:readline'
import { readFileSync } from 'node:fs'
import { preSharedKey } from '@libp2p/pnet'

const [host, port] = process.argv.slice(2)
const TOPICS = ['CHORUS/coordination/v1', 'hmmm/meta-discussion/v1', 'CHORUS/context-feedback/v1']
setTimeout(() => { console.log(JSON.stringify({ timeout: true })); process.exit(2) }, 120000)
// PNET_KEY_FILE: a swarm.key (libp2p private network, @libp2p/pnet); unset: an open peer.
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
    pubsub: gossipsub({ allowPublishToZeroTopicPeers: true, emitSelf: false, heartbeatInterval: 1000 })
  }
})
const got = { count: 0, big: 0 }
const senders = new Set()
node.services.pubsub.addEventListener('message', (evt) => {
  got.count++
  if (evt.detail.data.length > 50000) got.big++
  if (evt.detail.from) senders.add(evt.detail.from.toString())
})
for (const t of TOPICS) node.services.pubsub.subscribe(t)
// IDONTWANT counted around gossipsub's own methods (it keeps no total of what it sends).
const gs = node.services.pubsub
const idw = { sent: 0, received: 0 }
const sendIDontWants = gs.sendIDontWants.bind(gs)
gs.sendIDontWants = (msgId, topic, source) => {
  const mesh = new Set(gs.mesh.get(topic) ?? [])
  mesh.delete(source)
  for (const id of mesh) if (gs.streamsOutbound.get(id)?.protocol === '/meshsub/1.2.0') idw.sent++
  return sendIDontWants(msgId, topic, source)
}
const handleIdontwant = gs.handleIdontwant.bind(gs)
gs.handleIdontwant = (id, idontwant) => {
  for (const { messageIDs } of idontwant) idw.received += messageIDs?.length ?? 0
  return handleIdontwant(id, idontwant)
}
console.log(JSON.stringify({ addr: node.getMultiaddrs()[0].toString(), peer_id: node.peerId.toString() }))
const rl = readline.createInterface({ input: process.stdin })
for await (const line of rl) {
  const [cmd, ...args] = line.trim().split(' ')
  if (cmd === 'quit') break
  if (cmd === 'dial') {
    try {
      const conn = await node.dial(multiaddr(args[0]), { signal: AbortSignal.timeout(10000) })
      console.log(JSON.stringify({ dialled: conn.remotePeer.toString() }))
    } catch (e) {
      console.log(JSON.stringify({ error: `${e.name}: ${e.message}` }))
    }
  }
  if (cmd === 'peers') console.log(JSON.stringify({ peers: node.getPeers().map(p => p.toString()) }))
  if (cmd === 'say') {
    const text = line.trim().slice(cmd.length + args[0].length + 2)
    await node.services.pubsub.publish(args[0], new TextEncoder().encode(text))
    console.log(JSON.stringify({ published: true }))
  }
  if (cmd === 'idontwant') {
    const protocols = {}
    for (const [id, stream] of gs.streamsOutbound) protocols[id] = stream.protocol
    console.log(JSON.stringify({ protocols, mesh: gs.getMeshPeers(TOPICS[0]), ...idw }))
  }
  if (cmd === 'sub') {
    node.services.pubsub.subscribe(args[0])
    console.log(JSON.stringify({ subscribed: args[0] }))
  }
  if (cmd === 'stats') console.log(JSON.stringify({ ...got, senders: [...senders] }))
  if (cmd === 'ping') {
    const rtts = []
    for (let i = 0; i < 10; i++) rtts.push(await node.services.ping.ping(peerIdFromString(args[0])))
    console.log(JSON.stringify({ rtts }))
  }
  if (cmd === 'go') {
    const [n, size, rate] = args.map(Number)
    const start = Date.now()
    let errors = 0
    for (let i = 0; i < n; i++) {
      try { await node.services.pubsub.publish(TOPICS[0], new Uint8Array(size).fill(120)) } catch (e) { errors++ }
      const delay = start + (i + 1) * 1000 / rate - Date.now()
      if (delay > 0) await new Promise(r => setTimeout(r, delay))
    }
    console.log(JSON.stringify({ sent: n, errors }))
  }
}
await node.stop()
process.exit(0)
