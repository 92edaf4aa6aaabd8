/**
 * Which IP addresses the gateway may contact on a stranger's say-so (server-side request
 * forgery guard): public unicast ones only, per the IANA special-purpose registries (RFC 6890
 * and updates). An IPv6 address that carries an IPv4 one (mapped, compatible, translated,
 * NAT64, 6to4) is judged by the IPv4 address it carries, whichever way it is written:
 * `::ffff:7f00:1`, `::ffff:127.0.0.1` and `64:ff9b::127.0.0.1` are all 127.0.0.1.
 */
import { BlockList, isIPv4, isIPv6 } from 'node:net'

const IPV4_LOOPBACK = new BlockList()
IPV4_LOOPBACK.addSubnet('127.0.0.0', 8, 'ipv4')

const IPV4_NOT_PUBLIC = new BlockList()
for (const [net, prefix] of [
  ['0.0.0.0', 8], // "this network"
  ['10.0.0.0', 8], ['172.16.0.0', 12], ['192.168.0.0', 16], // private
  ['100.64.0.0', 10], // carrier-grade NAT
  ['169.254.0.0', 16], // link-local (cloud metadata services)
  ['192.0.0.0', 24], // IETF protocol assignments
  ['192.0.2.0', 24], ['198.51.100.0', 24], ['203.0.113.0', 24], // documentation
  ['192.88.99.0', 24], // 6to4 relay anycast (deprecated)
  ['198.18.0.0', 15], // benchmarking
  ['224.0.0.0', 4], // multicast
  ['240.0.0.0', 4] // reserved, and the limited broadcast 255.255.255.255
] as const) IPV4_NOT_PUBLIC.addSubnet(net, prefix, 'ipv4')

/** Everything outside it (ULA, link-local, site-local, multicast, discard, local NAT64 ...) is not public. */
const IPV6_GLOBAL_UNICAST = new BlockList()
IPV6_GLOBAL_UNICAST.addSubnet('2000::', 3, 'ipv6')

const IPV6_NOT_PUBLIC = new BlockList()
for (const [net, prefix] of [
  ['2001::', 23], // IETF protocol assignments, Teredo 2001::/32 among them
  ['2001:db8::', 32], ['3fff::', 20], // documentation
  ['5f00::', 16] // segment routing SIDs
] as const) IPV6_NOT_PUBLIC.addSubnet(net, prefix, 'ipv6')

/** The eight 16-bit groups of a valid IPv6 address, in any textual form (a zone id is ignored). */
export function ipv6Groups (address: string): number[] {
  let text = address.replace(/%.*$/, '')
  const dotted = /(\d+)\.(\d+)\.(\d+)\.(\d+)$/.exec(text)
  if (dotted !== null) {
    const [a, b, c, d] = dotted.slice(1).map(Number)
    text = text.slice(0, dotted.index) + `${((a << 8) | b).toString(16)}:${((c << 8) | d).toString(16)}`
  }
  const parse = (part: string): number[] => part === '' ? [] : part.split(':').map(g => parseInt(g, 16))
  const [head, tail] = text.split('::')
  if (tail === undefined) return parse(head)
  const [h, t] = [parse(head), parse(tail)]
  return [...h, ...new Array<number>(8 - h.length - t.length).fill(0), ...t]
}

const isIpv6Loopback = (g: number[]): boolean => g.slice(0, 7).every(x => x === 0) && g[7] === 1

const dottedQuad = (hi: number, lo: number): string => `${hi >> 8}.${hi & 255}.${lo >> 8}.${lo & 255}`

/** The IPv4 address an IPv6 address carries, and the name of the form that carries it. */
function embeddedIpv4 (g: number[]): { form: string, ipv4: string } | undefined {
  const zero = (from: number, to: number): boolean => g.slice(from, to).every(x => x === 0)
  if (zero(0, 5) && g[5] === 0xffff) return { form: 'IPv4-mapped', ipv4: dottedQuad(g[6], g[7]) }
  if (zero(0, 6)) return { form: 'IPv4-compatible', ipv4: dottedQuad(g[6], g[7]) }
  if (zero(0, 4) && g[4] === 0xffff && g[5] === 0) return { form: 'IPv4-translated', ipv4: dottedQuad(g[6], g[7]) }
  if (g[0] === 0x64 && g[1] === 0xff9b && zero(2, 6)) return { form: 'NAT64', ipv4: dottedQuad(g[6], g[7]) }
  if (g[0] === 0x2002) return { form: '6to4', ipv4: dottedQuad(g[1], g[2]) }
  return undefined
}

function ipv4Problem (address: string, allowLoopback: boolean): string | undefined {
  if (IPV4_LOOPBACK.check(address, 'ipv4')) return allowLoopback ? undefined : 'a loopback address'
  if (IPV4_NOT_PUBLIC.check(address, 'ipv4')) return 'a private or reserved address'
  return undefined
}

/**
 * Why `address` may not be contacted, or undefined when it may. `allowLoopback` (tests and local
 * development) admits 127.0.0.0/8 and ::1 as written, never an IPv4 loopback address inside IPv6.
 */
export function addressProblem (address: string, allowLoopback = false): string | undefined {
  if (isIPv4(address)) {
    const problem = ipv4Problem(address, allowLoopback)
    return problem === undefined ? undefined : `${address} is ${problem}`
  }
  if (!isIPv6(address)) return `${address} is not an IP address`
  const groups = ipv6Groups(address)
  if (isIpv6Loopback(groups)) return allowLoopback ? undefined : `${address} is a loopback address`
  const embedded = embeddedIpv4(groups)
  if (embedded !== undefined) {
    const problem = ipv4Problem(embedded.ipv4, false)
    return problem === undefined ? undefined : `${address} is ${embedded.form} for ${embedded.ipv4}, ${problem}`
  }
  const plain = address.replace(/%.*$/, '')
  if (!IPV6_GLOBAL_UNICAST.check(plain, 'ipv6') || IPV6_NOT_PUBLIC.check(plain, 'ipv6')) return `${address} is a private or reserved address`
  return undefined
}

/** Whether `address` is loopback as written (127.0.0.0/8 or ::1): the only hosts plain http may reach. */
export function isLoopbackAddress (address: string): boolean {
  return isIPv4(address) ? IPV4_LOOPBACK.check(address, 'ipv4') : isIPv6(address) && isIpv6Loopback(ipv6Groups(address))
}
