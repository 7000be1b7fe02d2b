/**
 * Loopback: what only ever means this machine. One definition for the two
 * checks that need it: the address a Runtime without a token may listen on
 * (`isLoopbackBindHost`, at start) and the `Host` names every request may
 * carry (`isLoopbackHostName`, against DNS rebinding; `http/Hosts.ts`).
 *
 * Both take `127.0.0.0/8` in dotted decimal (as Node's `net.isIPv4` does: no
 * leading zeros, octets up to 255; anything else is a name, which a resolver
 * may map anywhere), `::1` and `localhost`. Where they part, on purpose:
 * - `*.localhost` is a loopback Host name (browsers resolve it to loopback
 *   themselves, RFC 6761), but not an address to listen on: the system
 *   resolver may send it to DNS.
 * - `::ffff:127.x.y.z` (IPv4-mapped) may be listened on (a socket bound to it
 *   takes only connections to 127.x.y.z), but is not a Host name a client of
 *   this machine sends: no browser or tool names loopback so.
 */

/** `127.0.0.0/8` as four decimal octets 0-255 without leading zeros. */
export const isLoopbackIpv4 = (address: string): boolean => {
  const octets = address.split(".")
  return octets.length === 4 && octets[0] === "127" &&
    octets.every((octet) => /^(0|[1-9][0-9]{0,2})$/.test(octet) && Number(octet) <= 255)
}

const withoutBrackets = (address: string): string =>
  address.startsWith("[") && address.endsWith("]") ? address.slice(1, -1) : address

/**
 * A loopback address or `localhost`: the only hosts a Runtime without a token
 * may listen on. IPv6 with or without brackets; case does not matter.
 */
export const isLoopbackBindHost = (host: string): boolean => {
  const value = host.toLowerCase()
  if (value === "localhost" || isLoopbackIpv4(value)) return true
  const ipv6 = withoutBrackets(value)
  return ipv6 === "::1" || (ipv6.startsWith("::ffff:") && isLoopbackIpv4(ipv6.slice("::ffff:".length)))
}

/**
 * `localhost`, `*.localhost`, `127.0.0.0/8` and `[::1]`: the `Host` names that
 * only ever mean this machine. `name` as a Host header gives it, without its
 * port: lower case, IPv6 in brackets, no trailing dot (`Hosts.hostName`).
 */
export const isLoopbackHostName = (name: string): boolean =>
  name === "localhost" || name.endsWith(".localhost") || name === "[::1]" || isLoopbackIpv4(name)
