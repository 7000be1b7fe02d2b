/**
 * The Host check against DNS rebinding: a page on a name its attacker points
 * at 127.0.0.1 sends that name as `Host`, and no `Origin` or `Sec-Fetch-*` on
 * a simple GET, so only the Host tells it from a Backend. Allowed: loopback
 * names (`Loopback.ts`), the bound address, and the operator's `--allowed-hosts`.
 * A request with more than one `Host` is malformed (RFC 9112 §3.2) and refused
 * before this check: Node keeps only the first in `headers`, so it is counted
 * in the raw headers (`hostHeaderCount`).
 */
import { isLoopbackHostName } from "../Loopback.js"

export interface HostPolicy {
  /** `*`: any Host; only with a token (refused without: at start by `resolveConfig`, embedded by `Server.ts`). */
  readonly any: boolean
  /** Lower-case names (IPv6 in brackets), ports left out. */
  readonly names: ReadonlySet<string>
}

/** The name of a `Host` header, lower case, without port or trailing dot; undefined when malformed. */
export const hostName = (host: string | undefined): string | undefined => {
  if (host === undefined) return undefined
  const value = host.trim().toLowerCase()
  if (value === "") return undefined
  let name: string
  let port: string
  if (value.startsWith("[")) {
    const end = value.indexOf("]")
    if (end < 0) return undefined
    name = value.slice(0, end + 1)
    port = value.slice(end + 1)
    if (port !== "" && !port.startsWith(":")) return undefined
    port = port.slice(1)
  } else {
    const colon = value.indexOf(":")
    name = colon < 0 ? value : value.slice(0, colon)
    port = colon < 0 ? "" : value.slice(colon + 1)
    if (colon >= 0 && port === "") return undefined
  }
  if (port !== "" && !/^[0-9]{1,5}$/.test(port)) return undefined
  if (name.endsWith(".")) name = name.slice(0, -1)
  return name === "" ? undefined : name
}

/** A bound address as a Host name: IPv6 in brackets; the wildcards mean no particular name. */
export const boundHostName = (address: string): string | undefined => {
  const name = address.includes(":") ? `[${address.toLowerCase()}]` : address.toLowerCase()
  return name === "0.0.0.0" || name === "[::]" ? undefined : name
}

/** Whether `allowed` (the `--allowed-hosts` entries) has `*`: any Host, which needs a token. */
export const allowsAnyHost = (allowed: ReadonlyArray<string>): boolean => allowed.some((entry) => entry.trim() === "*")

export const makeHostPolicy = (allowed: ReadonlyArray<string>, bound: string | undefined): HostPolicy => {
  const names = new Set<string>()
  for (const entry of allowed) {
    const name = hostName(entry)
    if (name !== undefined && name !== "*") names.add(name)
  }
  if (bound !== undefined) {
    const name = boundHostName(bound)
    if (name !== undefined) names.add(name)
  }
  return { any: allowsAnyHost(allowed), names }
}

export const hostAllowed = (policy: HostPolicy, host: string | undefined): boolean => {
  if (policy.any) return true
  const name = hostName(host)
  return name !== undefined && (isLoopbackHostName(name) || policy.names.has(name))
}

/**
 * How many `Host` headers a request carries, from the raw header list of its
 * source (Node's `IncomingMessage.rawHeaders`: name, value, name, value...);
 * undefined when the source has none (another platform), so not checked there.
 */
export const hostHeaderCount = (source: unknown): number | undefined => {
  if (typeof source !== "object" || source === null || !("rawHeaders" in source)) return undefined
  const rawHeaders: unknown = source.rawHeaders
  if (!Array.isArray(rawHeaders)) return undefined
  let count = 0
  for (let i = 0; i < rawHeaders.length; i += 2) {
    const name: unknown = rawHeaders[i]
    if (typeof name === "string" && name.toLowerCase() === "host") count++
  }
  return count
}
