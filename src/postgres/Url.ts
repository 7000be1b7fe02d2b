/**
 * The PostgreSQL store's URL, checked and shown without its password. No
 * imports: the bin's configuration checks `--store` with it before (and
 * without) loading the store's packages.
 */

/** The URL with its password, if any, as `***`: what messages and logs show. */
export const maskUrl = (url: string): string => url.replace(/^([a-z]+:\/\/[^:@/]*:)[^@/]*@/i, "$1***@")

/** Why `url` cannot be a PostgreSQL store's URL, or undefined when it can. */
export const urlProblem = (url: string): string | undefined => {
  let parsed: URL
  try {
    parsed = new URL(url)
  } catch {
    return "not a URL (postgres://user[:password]@host[:port]/database)"
  }
  if (parsed.protocol !== "postgres:" && parsed.protocol !== "postgresql:") {
    return "the URL must start with postgres:// or postgresql://"
  }
  if (parsed.hostname === "") return "the URL names no host"
  if (parsed.pathname.length <= 1) return "the URL names no database (…/database)"
  return undefined
}
