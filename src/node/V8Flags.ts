/**
 * V8 settings of the bin, applied before anything else is loaded. With
 * allocation-site pretenuring on (V8's default), V8 came to allocate node:http's
 * per-request objects in the old generation under load: they died there, and
 * every young collection then scanned them and kept what they pointed to.
 * Young collections took 4 to 6 ms instead of about 1, and the input lane
 * with a canned answer cost 40 to 46 µs of CPU a request instead of 24
 * (docs/benchmarks.md). Embedders who serve HTTP from their own process can
 * pass `--no-allocation-site-pretenuring` to node.
 */
import { setFlagsFromString } from "node:v8"

setFlagsFromString("--no-allocation-site-pretenuring")
