// js-libp2p's signed peer records (@libp2p/peer-record), for tests/interop/test_peer_records.py.
//   node record.mjs seal <seq> <multiaddr>...   -> {"peer_id", "seq", "envelope"} (base64)
//   node record.mjs open <base64 envelope>      -> {"peer_id", "signer", "seq", "multiaddrs"}
// "open" is RecordEnvelope.openAndCertify (signature checked for the peer-record domain).
import { generateKeyPair } from '@libp2p/crypto/keys'
import { peerIdFromPrivateKey, peerIdFromPublicKey } from '@libp2p/peer-id'
import { PeerRecord, RecordEnvelope } from '@libp2p/peer-record'
import { multiaddr } from '@multiformats/multiaddr'

const [command, ...args] = process.argv.slice(2)
const out = (doc) => process.stdout.write(JSON.stringify(doc) + '\n')

if (command === 'seal') {
  const [seq, ...addrs] = args
  const key = await generateKeyPair('Ed25519')
  const peerId = peerIdFromPrivateKey(key)
  const record = new PeerRecord({ peerId, multiaddrs: addrs.map((a) => multiaddr(a)), seqNumber: BigInt(seq) })
  const envelope = await RecordEnvelope.seal(record, key)
  out({ peer_id: peerId.toString(), seq, envelope: Buffer.from(envelope.marshal()).toString('base64') })
} else if (command === 'open') {
  try {
    const envelope = await RecordEnvelope.openAndCertify(Buffer.from(args[0], 'base64'), PeerRecord.DOMAIN)
    const record = PeerRecord.createFromProtobuf(envelope.payload)
    out({
      peer_id: record.peerId.toString(),
      signer: peerIdFromPublicKey(envelope.publicKey).toString(),
      payload_type: Buffer.from(envelope.payloadType).toString('hex'),
      seq: record.seqNumber.toString(),
      multiaddrs: record.multiaddrs.map((m) => m.toString())
    })
  } catch (err) {
    out({ error: `${err.name}: ${err.message}` })
  }
} else {
  process.stderr.write('usage: record.mjs seal <seq> <multiaddr>... | open <base64>\n')
  process.exit(2)
}
